//! `vectors`: vector maths on PostgreSQL arrays for plwasm (embeddings, feature vectors).

use plwasm_guest::{export, Error};

fn same_length(a: &[f64], b: &[f64]) -> Result<(), Error> {
    if a.len() == b.len() {
        Ok(())
    } else {
        Err(Error::new("22000", format!("vectors have different lengths: {} and {}", a.len(), b.len())))
    }
}

/// Dot product; an ERROR (22000) if the lengths differ.
#[export]
fn dot(a: &[f64], b: &[f64]) -> Result<f64, Error> {
    same_length(a, b)?;
    Ok(a.iter().zip(b).map(|(x, y)| x * y).sum())
}

/// Cosine similarity in [-1, 1]; NULL when either vector is all zeros.
#[export]
fn cosine_similarity(a: &[f64], b: &[f64]) -> Result<Option<f64>, Error> {
    same_length(a, b)?;
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    Ok((aa > 0.0 && bb > 0.0).then(|| ab / (aa.sqrt() * bb.sqrt())))
}

/// Euclidean length.
#[export]
fn l2_norm(a: &[f64]) -> f64 {
    a.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// `a` scaled to unit length (an all-zero vector stays as it is).
#[export]
fn l2_normalize(a: &[f64]) -> Vec<f64> {
    let norm = l2_norm(a);
    if norm == 0.0 {
        a.to_vec()
    } else {
        a.iter().map(|x| x / norm).collect()
    }
}

/// Every element times `k` (single precision in, single precision out).
#[export]
fn scale(a: &[f32], k: f32) -> Vec<f32> {
    a.iter().map(|x| x * k).collect()
}

/// Running totals.
#[export]
fn cumulative_sum(a: &[i64]) -> Vec<i64> {
    a.iter()
        .scan(0i64, |total, x| {
            *total = total.wrapping_add(*x);
            Some(*total)
        })
        .collect()
}

/// Sum of an integer array as bigint (no overflow below 2^31 elements).
#[export]
fn int_sum(a: &[i32]) -> i64 {
    a.iter().map(|x| *x as i64).sum()
}

/// 1-based positions that sort `a` ascending (NaN last), like numpy's argsort.
#[export]
fn argsort(a: &[f64]) -> Vec<i32> {
    let mut order: Vec<i32> = (1..=a.len() as i32).collect();
    order.sort_by(|i, j| a[*i as usize - 1].total_cmp(&a[*j as usize - 1]));
    order
}

/// The element at 1-based `position`. Out of range, the Rust index panics, and the panic
/// becomes an ERROR (38000) that carries the panic message.
#[export]
fn element(a: &[f64], position: i32) -> f64 {
    a[(position as usize).wrapping_sub(1)]
}
