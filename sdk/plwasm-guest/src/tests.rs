//! The runtime's frame handling, natively: slots as the host writes them (through the
//! contract's layout), read and written by the SDK's conversions.

use plwasm_contract::batch;
use plwasm_contract::slot::{Slot, FLAG_NULL};

use crate::__private::{row_slots, FromSlot, IntoSlot};
use crate::{Date, Error, Jsonb, SetOf, Table, TimestampTz};

fn fixed(value: u64) -> Slot {
    Slot { flags: 0, len: 0, value }
}

fn pointing_at<T>(items: &[T]) -> Slot {
    Slot { flags: 0, len: items.len() as u32, value: items.as_ptr() as usize as u64 }
}

fn read<'a, T: FromSlot<'a>>(slot: &'a Slot) -> Option<T> {
    T::from_slot(slot).ok()
}

#[test]
fn fixed_width_arguments_read_as_the_host_writes_them() {
    // i32 values arrive sign-extended in the 64-bit value.
    assert_eq!(read::<i16>(&fixed((-3i64) as u64)), Some(-3));
    assert_eq!(read::<i32>(&fixed((-7i64) as u64)), Some(-7));
    assert_eq!(read::<i64>(&fixed(u64::MAX)), Some(-1));
    assert_eq!(read::<f32>(&fixed(2.5f32.to_bits() as u64)), Some(2.5));
    assert_eq!(read::<f64>(&fixed(1.5f64.to_bits())), Some(1.5));
    assert_eq!(read::<bool>(&fixed(1)), Some(true));
    assert_eq!(read::<Date>(&fixed((-1i64) as u64)), Some(Date(-1)));
    assert_eq!(read::<TimestampTz>(&fixed(42)), Some(TimestampTz(42)));
}

#[test]
fn fixed_width_results_are_written_sign_extended() {
    let mut slot = Slot::default();
    (-2i32).into_slot(&mut slot);
    assert_eq!(slot.value, (-2i64) as u64);
    0.5f32.into_slot(&mut slot);
    assert_eq!(slot.value, 0.5f32.to_bits() as u64);
    assert_eq!(slot.flags, 0);
}

#[test]
fn variable_length_arguments_are_borrowed_from_their_payload() {
    let text = "héllo";
    assert_eq!(read::<&str>(&pointing_at(text.as_bytes())), Some("héllo"));
    assert_eq!(read::<String>(&pointing_at(text.as_bytes())), Some("héllo".to_string()));
    assert_eq!(read::<Jsonb<&str>>(&pointing_at(b"{}")).map(|j| j.0), Some("{}"));
    let values = [1.0f64, 2.0, 3.0];
    assert_eq!(read::<&[f64]>(&pointing_at(&values)), Some(&values[..]));
    assert_eq!(read::<Vec<f64>>(&pointing_at(&values)), Some(values.to_vec()));
    let empty = Slot { flags: 0, len: 0, value: 0 };
    assert_eq!(read::<&[i32]>(&empty), Some(&[][..]), "an empty array needs no address");
}

#[test]
fn nulls_are_none_or_make_the_result_null() {
    let null = Slot::NULL;
    assert_eq!(read::<Option<i64>>(&null), Some(None));
    assert!(i64::from_slot(&null).is_err(), "a NULL for a non-Option argument");
    let mut result = Slot::default();
    i64::from_slot(&null).unwrap_err().into_result(&mut result);
    assert_eq!(result.flags, FLAG_NULL);
    let mut result = Slot::default();
    None::<String>.into_slot(&mut result);
    assert!(result.is_null());
}

#[test]
fn results_point_at_memory_kept_until_the_next_call() {
    let mut result = Slot::default();
    String::from("abc").into_slot(&mut result);
    assert_eq!(read::<&str>(&result), Some("abc"));
    let mut result = Slot::default();
    vec![4i64, 5].into_slot(&mut result);
    assert_eq!(read::<&[i64]>(&result), Some(&[4i64, 5][..]));
}

#[test]
fn sets_and_tables_are_rows_of_slots() {
    let mut result = Slot::default();
    SetOf(vec![Some(1i32), None, Some(3)]).into_slot(&mut result);
    assert_eq!(result.len, 3, "rows");
    // SAFETY: the SDK keeps the rows alive until the next call; 3 rows of one slot.
    let rows = unsafe { std::slice::from_raw_parts(result.value as usize as *const Slot, 3) };
    assert_eq!(rows[0].value, 1);
    assert!(rows[1].is_null());

    let mut result = Slot::default();
    Table(vec![(1i64, "a"), (2, "bc")]).into_slot(&mut result);
    assert_eq!(result.len, 2);
    // SAFETY: as above: 2 rows of two slots.
    let rows = unsafe { std::slice::from_raw_parts(result.value as usize as *const Slot, 4) };
    assert_eq!(rows[2].value, 2);
    assert_eq!(read::<&str>(&rows[3]), Some("bc"));
}

#[test]
fn batch_rows_decode_as_the_host_encodes_them() {
    // Two arguments: a float8 and a text; the text's bytes sit in the payload area.
    let payload = b"xyz\0\0\0\0\0tag".to_vec();
    let row = [batch::header(9, 0b00), 2.0f64.to_bits(), batch::payload_ref(8, 3)];
    let null_row = [batch::header(9, 0b10), 3.0f64.to_bits(), 0];
    let base = payload.as_ptr() as usize;
    let mut slots = vec![Slot::default(); 2];
    assert_eq!(row_slots(&row, base, &[false, true], &mut slots), 9);
    assert_eq!(read::<f64>(&slots[0]), Some(2.0));
    assert_eq!(read::<&str>(&slots[1]), Some("tag"));
    row_slots(&null_row, base, &[false, true], &mut slots);
    assert_eq!(read::<Option<&str>>(&slots[1]), Some(None));
}

#[test]
fn malformed_sqlstates_become_38000() {
    assert_eq!(Error::invalid_parameter("x").to_string(), "x (22023)");
    assert_eq!(Error::new("bad", "y").to_string(), "y (38000)");
}

#[derive(Debug, Default, PartialEq, crate::State)]
struct Summary {
    n: u64,
    mean: f64,
    seen: bool,
    last: Option<TimestampTz>,
    bins: std::collections::BTreeMap<i32, u64>,
    label: String,
    window: [f32; 3],
    samples: Vec<(i64, f64)>,
}

#[test]
fn derived_states_round_trip_and_refuse_bad_bytes() {
    use crate::State;
    let summary = Summary {
        n: 3,
        mean: 1.5,
        seen: true,
        last: Some(TimestampTz(9)),
        bins: [(-2, 1), (7, 2)].into_iter().collect(),
        label: "é".into(),
        window: [1.0, 2.0, 3.0],
        samples: vec![(1, 0.5), (2, 0.25)],
    };
    let bytes = summary.to_bytes();
    assert_eq!(Summary::from_bytes(&bytes), Ok(summary));
    assert_eq!(Summary::from_bytes(&Summary::default().to_bytes()), Ok(Summary::default()));
    // Cut short anywhere, or with bytes left over: an error, never a panic or a huge allocation.
    for cut in 0..bytes.len() {
        assert!(Summary::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(Summary::from_bytes(&longer).is_err());
    // A length far past the input is refused before allocating.
    let mut huge = Summary::default().to_bytes();
    huge[8 + 8 + 1 + 1..8 + 8 + 1 + 1 + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(Summary::from_bytes(&huge).is_err());
}
