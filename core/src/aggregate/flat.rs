//! A `plwasm.state` in its flat form: what PostgreSQL stores, sends between parallel workers
//! and nodes, and reads back as text or binary input. After the varlena header:
//!
//! ```text
//! 0..4       "PWS" and format version 1
//! 4..36      the SHA-256 of the module whose aggregate made the state
//! 36         n: the length of the aggregate's export prefix (1..=255)
//! 37..37+n   the prefix (UTF-8)
//! 37+n..     the guest's own serialization of the state (its `prefix.serialize` result)
//! ```
//!
//! The header lets a support function refuse a state of another module or aggregate before
//! any guest sees it. The guest part is untrusted input to the guest's `deserialize`.

use crate::error::{PlWasmError, Result};

/// Magic and format version.
pub const MAGIC: [u8; 4] = *b"PWS\x01";
/// Bytes before the prefix.
const FIXED_HEADER: usize = 4 + 32 + 1;

/// A flat state, borrowed from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlatState<'a> {
    pub module_hash: [u8; 32],
    pub prefix: &'a str,
    pub payload: &'a [u8],
}

/// Bytes of the header for aggregate `prefix`.
pub fn header_len(prefix: &str) -> usize {
    FIXED_HEADER + prefix.len()
}

/// Writes the header for `prefix` of the module `module_hash` into `out` (exactly
/// [`header_len`] bytes).
pub fn write_header(out: &mut [u8], module_hash: &[u8; 32], prefix: &str) -> Result<()> {
    let len = u8::try_from(prefix.len())
        .ok()
        .filter(|len| *len > 0)
        .ok_or_else(|| PlWasmError::Internal { message: format!("aggregate prefix of {} bytes", prefix.len()) })?;
    if out.len() != header_len(prefix) {
        return Err(PlWasmError::Internal { message: "flat state header buffer of the wrong size".into() });
    }
    out[0..4].copy_from_slice(&MAGIC);
    out[4..36].copy_from_slice(module_hash);
    out[36] = len;
    out[FIXED_HEADER..].copy_from_slice(prefix.as_bytes());
    Ok(())
}

/// The flat state in `bytes` (after the varlena header), or why it is not one. `text` says
/// which input it came from, for the error's SQLSTATE.
pub fn parse(bytes: &[u8], text: bool) -> Result<FlatState<'_>> {
    let bad = |why: String| PlWasmError::MalformedState { why, text };
    if bytes.len() < FIXED_HEADER {
        return Err(bad(format!("A plwasm.state has at least {FIXED_HEADER} bytes; this one has {}.", bytes.len())));
    }
    if bytes[0..4] != MAGIC {
        return Err(bad("It does not start with plwasm's state header (format version 1).".into()));
    }
    let mut module_hash = [0u8; 32];
    module_hash.copy_from_slice(&bytes[4..36]);
    let len = bytes[36] as usize;
    let prefix = bytes
        .get(FIXED_HEADER..FIXED_HEADER + len)
        .filter(|p| !p.is_empty())
        .and_then(|p| std::str::from_utf8(p).ok())
        .ok_or_else(|| bad("Its aggregate name is empty, cut short or not UTF-8.".into()))?;
    Ok(FlatState { module_hash, prefix, payload: &bytes[FIXED_HEADER + len..] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let hash = [7u8; 32];
        let mut bytes = vec![0u8; header_len("stats_agg")];
        write_header(&mut bytes, &hash, "stats_agg").unwrap();
        bytes.extend_from_slice(b"guest bytes");
        let flat = parse(&bytes, false).unwrap();
        assert_eq!(flat, FlatState { module_hash: hash, prefix: "stats_agg", payload: b"guest bytes" });
    }

    #[test]
    fn malformed_states_are_refused() {
        let mut good = vec![0u8; header_len("p")];
        write_header(&mut good, &[1; 32], "p").unwrap();
        for (bytes, text) in [
            (Vec::new(), true),
            (b"PWS\x02".iter().copied().chain([0; 40]).collect::<Vec<u8>>(), false),
            (good[..good.len() - 1].to_vec(), false),
            (
                {
                    let mut zero_len = good.clone();
                    zero_len[36] = 0;
                    zero_len
                },
                true,
            ),
        ] {
            match parse(&bytes, text) {
                Err(PlWasmError::MalformedState { text: t, .. }) => assert_eq!(t, text),
                other => panic!("{bytes:?}: {other:?}"),
            }
        }
        assert!(write_header(&mut [0u8; 37], &[0; 32], "").is_err());
    }
}
