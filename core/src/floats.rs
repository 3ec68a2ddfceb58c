//! NaNs at the boundary. Inside the guest, wasm leaves a NaN's sign and payload to the CPU
//! (x86-64 and AArch64 differ), and plwasm does not make the compiler fix them after every
//! float instruction: that costs a compare and a blend on each operation's critical path
//! (2.7 ns/row of a trivial float8 sum, BENCHMARKS.md). Instead every float4 or float8 value
//! the guest hands to PostgreSQL (a result, a result slot, an array element) is made the one
//! canonical quiet NaN here, so SQL sees the same bits on every machine.

use plwasm_contract::types::WasmType;

const F64_CANONICAL_NAN: u64 = 0x7ff8_0000_0000_0000;
const F32_CANONICAL_NAN: u32 = 0x7fc0_0000;

/// `bits` of an f64, with any NaN made the canonical one.
#[inline(always)]
pub fn canonical_f64(bits: u64) -> u64 {
    if f64::from_bits(bits).is_nan() {
        F64_CANONICAL_NAN
    } else {
        bits
    }
}

/// `bits` of an f32, with any NaN made the canonical one.
#[inline(always)]
pub fn canonical_f32(bits: u32) -> u32 {
    if f32::from_bits(bits).is_nan() {
        F32_CANONICAL_NAN
    } else {
        bits
    }
}

/// Makes every NaN among the little-endian `element` values in `data` canonical; integer
/// elements are left alone.
pub fn canonicalize_elements(element: WasmType, data: &mut [u8]) {
    match element {
        WasmType::F64 => {
            for chunk in data.chunks_exact_mut(8) {
                let bits = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
                chunk.copy_from_slice(&canonical_f64(bits).to_le_bytes());
            }
        }
        WasmType::F32 => {
            for chunk in data.chunks_exact_mut(4) {
                let bits = u32::from_le_bytes(chunk.try_into().unwrap_or_default());
                chunk.copy_from_slice(&canonical_f32(bits).to_le_bytes());
            }
        }
        WasmType::I32 | WasmType::I64 => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nan_becomes_the_canonical_one() {
        for bits in [0x7ff4_0000_0000_0001u64, 0xfff8_0000_0000_0000, 0x7fff_ffff_ffff_ffff, F64_CANONICAL_NAN] {
            assert_eq!(canonical_f64(bits), F64_CANONICAL_NAN, "{bits:#x}");
        }
        for bits in [0x7fa0_0001u32, 0xffc0_0000, F32_CANONICAL_NAN] {
            assert_eq!(canonical_f32(bits), F32_CANONICAL_NAN, "{bits:#x}");
        }
    }

    #[test]
    fn other_values_keep_their_bits() {
        for value in [0.0f64, -0.0, 1.5, f64::INFINITY, f64::NEG_INFINITY, f64::MIN_POSITIVE / 2.0] {
            assert_eq!(canonical_f64(value.to_bits()), value.to_bits());
        }
        assert_eq!(canonical_f32((-2.5f32).to_bits()), (-2.5f32).to_bits());
    }

    #[test]
    fn float_array_elements_are_canonicalized_and_integers_left_alone() {
        let mut floats: Vec<u8> = [1.0f64.to_bits(), 0xfff8_0000_0000_0001, 2.0f64.to_bits()]
            .iter()
            .flat_map(|bits| bits.to_le_bytes())
            .collect();
        canonicalize_elements(WasmType::F64, &mut floats);
        assert_eq!(&floats[8..16], &F64_CANONICAL_NAN.to_le_bytes());
        assert_eq!(&floats[0..8], &1.0f64.to_bits().to_le_bytes());
        let mut ints = 0xfff8_0000_0000_0001u64.to_le_bytes().to_vec();
        canonicalize_elements(WasmType::I64, &mut ints);
        assert_eq!(ints, 0xfff8_0000_0000_0001u64.to_le_bytes());
    }
}
