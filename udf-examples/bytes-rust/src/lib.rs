//! `checksums`: checksums and hashes of bytea values for plwasm.

use plwasm_guest::export;
use sha2::{Digest, Sha256};

/// CRC-32 (IEEE, as zlib and PNG use) of `data`, as a non-negative bigint.
#[export]
fn crc32(data: &[u8]) -> i64 {
    crc32fast::hash(data) as i64
}

/// SHA-256 of `data` (the same bytes as PostgreSQL's built-in `sha256()`).
#[export]
fn sha256_wasm(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

/// 64-bit FNV-1a of `data`, a fast non-cryptographic hash, as a (signed) bigint.
#[export]
fn fnv1a64(data: &[u8]) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in data {
        hash ^= *byte as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash as i64
}

/// `data` XORed with `key` repeated (an empty key leaves `data` unchanged).
#[export]
fn xor_bytes(data: &[u8], key: &[u8]) -> Vec<u8> {
    if key.is_empty() {
        return data.to_vec();
    }
    data.iter().zip(key.iter().cycle()).map(|(d, k)| d ^ k).collect()
}
