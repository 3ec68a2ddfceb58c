//! The on-disk cache of compiled modules, shared by all backends of a server: a new session
//! or a parallel worker loads a module's machine code instead of compiling it again.
//!
//! - One file per (module content, engine): `<sha256 of the wasm>-<engine hash>.cwasm`. The
//!   engine hash covers every wasmtime setting that changes the code (and wasmtime's version),
//!   so a server with other settings or another CPU never picks up a foreign file.
//! - A file is what `Module::serialize` gave, followed by the CRC-32 of those bytes (4 bytes,
//!   little-endian). A file whose seal does not match is deleted and the module is compiled
//!   again. The seal guards against damage (a truncated or overwritten file), not against
//!   forgery: only the server's OS user can write the directory. A CRC is what that needs and
//!   costs a hundredth of a SHA-256 on a new session's first call (`examples/module_load.rs`).
//! - Files are written under a temporary name and renamed, so a reader never sees half a file.
//! - After each write the oldest files (by modification time; a hit refreshes it) are deleted
//!   until the directory fits its size limit.
//!
//! Turning the files back into a module is `unsafe` (the code runs as it is), so the
//! extension crate does that step; this module only reads, checks and writes bytes.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

const SEAL_LEN: usize = 4;
const EXTENSION: &str = "cwasm";
/// Part of every file name's settings hash: files sealed another way (earlier releases used a
/// SHA-256) get other names, so they are never read as damaged, only pruned in time.
const SEAL_FORMAT: &str = "seal: crc32 little-endian";

/// What a `Hash` value feeds a hasher, kept to be digested by SHA-256 in one go: the same
/// digest as feeding SHA-256 piece by piece (so the same file names), without SHA-256's cost
/// per call on the hundreds of one-byte writes wasmtime's settings make (about 30 µs of a new
/// session's first call).
struct FedBytes(Vec<u8>);

impl Hasher for FedBytes {
    fn write(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    /// The first 8 bytes (little-endian) of the SHA-256 of everything fed.
    fn finish(&self) -> u64 {
        let digest = Sha256::digest(&self.0);
        u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
    }
}

/// What names the engine's settings in cache file names: a hash of every wasmtime setting
/// that changes the code (and of the seal's format). Hashing the settings walks wasmtime's
/// whole configuration, so a backend computes it once.
pub fn engine_tag(engine: &Engine) -> u64 {
    let mut fed = FedBytes(Vec::with_capacity(4096));
    engine.precompile_compatibility_hash().hash(&mut fed);
    SEAL_FORMAT.hash(&mut fed);
    fed.finish()
}

/// The cache file name of the module whose wasm hashes to `module_hash`, compiled by an
/// engine with [`engine_tag`] `engine_tag`.
pub fn file_name(module_hash: &[u8; 32], engine_tag: u64) -> String {
    format!("{}-{engine_tag:016x}.{EXTENSION}", hex::encode(module_hash))
}

/// The bytes to write for `serialized` module code: the code, then its CRC-32.
pub fn seal(mut serialized: Vec<u8>) -> Vec<u8> {
    let checksum = crc32fast::hash(&serialized);
    serialized.extend_from_slice(&checksum.to_le_bytes());
    serialized
}

/// What looking up a cache file found.
#[derive(Debug)]
pub enum Lookup {
    /// A file whose seal matched, open at its start.
    Found(CacheFile),
    Missing,
    /// A file whose seal did not match; it has been deleted.
    Damaged,
}

/// An open cache file whose seal matched when it was opened. Files are only ever created
/// under a temporary name and renamed into place, never written where they are, so the
/// open file keeps the content that was checked (deleting it does not change an open file).
#[derive(Debug)]
pub struct CacheFile {
    file: fs::File,
    code_len: usize,
}

impl CacheFile {
    /// The open file (the code, then the seal), for a caller that maps it.
    pub fn into_file(self) -> fs::File {
        self.file
    }

    /// The module code, read into memory (seal left off).
    pub fn into_code(mut self) -> io::Result<Vec<u8>> {
        let mut code = Vec::new();
        code.try_reserve_exact(self.code_len).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
        (&mut self.file).take(self.code_len as u64).read_to_end(&mut code)?;
        if code.len() != self.code_len {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        Ok(code)
    }
}

/// Bytes read at a time while checking a seal (no copy of the whole file is made). Small, as
/// a new session's first call pays for every fresh page of the buffer.
const CHECK_CHUNK: usize = 16 * 1024;

/// Opens file `name` in `dir` and checks its seal, reading it through once. A hit refreshes
/// the file's modification time, so that pruning deletes the least recently used files first.
pub fn open(dir: &Path, name: &str) -> io::Result<Lookup> {
    let path = dir.join(name);
    let mut file = match no_follow().read(true).open(&path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Lookup::Missing),
        Err(err) => return Err(err),
    };
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    // A file that cannot be read through (EIO) counts as damaged too.
    let code_len = match usize::try_from(metadata.len()).ok().and_then(|len| len.checked_sub(SEAL_LEN)) {
        Some(code_len) if seal_matches(&mut file, code_len).unwrap_or(false) => code_len,
        _ => {
            let _ = fs::remove_file(&path);
            return Ok(Lookup::Damaged);
        }
    };
    if let Ok(file) = no_follow().append(true).open(&path) {
        let _ = file.set_modified(SystemTime::now());
    }
    file.seek(SeekFrom::Start(0))?;
    Ok(Lookup::Found(CacheFile { file, code_len }))
}

/// Whether the `code_len` bytes at the start of `file` are followed by their seal.
fn seal_matches(file: &mut fs::File, code_len: usize) -> io::Result<bool> {
    let mut hasher = crc32fast::Hasher::new();
    let mut chunk = vec![0u8; code_len.min(CHECK_CHUNK)];
    let mut left = code_len;
    while left > 0 {
        let want = left.min(chunk.len());
        file.read_exact(&mut chunk[..want])?;
        hasher.update(&chunk[..want]);
        left -= want;
    }
    let mut seal = [0u8; SEAL_LEN];
    file.read_exact(&mut seal)?;
    Ok(seal == hasher.finalize().to_le_bytes())
}

/// Writes `module`'s code as file `name` in `dir` (made if missing), then deletes the least
/// recently used files until the directory holds at most `max_bytes`. A module larger than
/// `max_bytes` is not written. Returns whether the file was written.
pub fn write(dir: &Path, name: &str, module: &Module, max_bytes: u64) -> io::Result<bool> {
    write_sealed(dir, name, &seal(module.serialize().map_err(io::Error::other)?), max_bytes)
}

/// Writes `sealed` as file `name` in `dir` (see [`write`]).
fn write_sealed(dir: &Path, name: &str, sealed: &[u8], max_bytes: u64) -> io::Result<bool> {
    if sealed.len() as u64 > max_bytes {
        return Ok(false);
    }
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let temporary = dir.join(format!("{name}.{}.tmp", std::process::id()));
    // A temporary file left by a backend of the same pid that died is ours to replace.
    let _ = fs::remove_file(&temporary);
    let written = no_follow().write(true).create_new(true).mode(0o600).open(&temporary).and_then(|mut file| {
        file.write_all(sealed)?;
        file.sync_all()
    });
    let renamed = written.and_then(|()| fs::rename(&temporary, dir.join(name)));
    if let Err(err) = renamed {
        let _ = fs::remove_file(&temporary);
        return Err(err);
    }
    // The rename itself is durable once the directory is synced.
    fs::File::open(dir)?.sync_all()?;
    prune(dir, max_bytes)?;
    Ok(true)
}

/// What an inline body's module text decoded to: the binary's [`crate::body::content_hash`]
/// (which names its compiled code) and its size. Kept beside the compiled modules as a
/// small sealed file named by [`crate::body::text_key`], so a new session finds the compiled
/// module of a body without decoding the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    pub hash: [u8; 32],
    pub size: u64,
}

const DECODED_EXTENSION: &str = "decoded";
const DECODED_LEN: usize = 32 + 8;

/// The file name of the [`Decoded`] record of the module text with `text_key`.
pub fn decoded_name(text_key: &[u8; 32]) -> String {
    format!("{}.{DECODED_EXTENSION}", hex::encode(text_key))
}

/// Writes a [`Decoded`] record as file `name` in `dir` (see [`write`]).
pub fn write_decoded(dir: &Path, name: &str, decoded: &Decoded, max_bytes: u64) -> io::Result<bool> {
    let mut bytes = Vec::with_capacity(DECODED_LEN + SEAL_LEN);
    bytes.extend_from_slice(&decoded.hash);
    bytes.extend_from_slice(&decoded.size.to_le_bytes());
    write_sealed(dir, name, &seal(bytes), max_bytes)
}

/// Reads the [`Decoded`] record in file `name` of `dir`: `None` when it is missing; a file
/// that is damaged, or not a record, is deleted and counts as missing.
pub fn read_decoded(dir: &Path, name: &str) -> io::Result<Option<Decoded>> {
    let Lookup::Found(file) = open(dir, name)? else { return Ok(None) };
    let bytes = file.into_code()?;
    let Some((hash, size)) = bytes.split_first_chunk::<32>().filter(|_| bytes.len() == DECODED_LEN) else {
        let _ = fs::remove_file(dir.join(name));
        return Ok(None);
    };
    Ok(Some(Decoded { hash: *hash, size: u64::from_le_bytes(size.try_into().expect("8 bytes")) }))
}

/// Options that refuse to follow a symbolic link at the file itself (`O_NOFOLLOW`); with
/// `create_new` (`O_EXCL`) a file is only ever created, never opened through a link.
fn no_follow() -> fs::OpenOptions {
    let mut options = fs::OpenOptions::new();
    options.custom_flags(libc::O_NOFOLLOW);
    options
}

/// Deletes the least recently used files of `dir` until the rest hold at most `max_bytes`.
/// Files that vanish meanwhile (another backend pruning) are skipped.
pub fn prune(dir: &Path, max_bytes: u64) -> io::Result<()> {
    let mut files: Vec<(SystemTime, u64, PathBuf)> = fs::read_dir(dir)?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let metadata = entry.metadata().ok().filter(fs::Metadata::is_file)?;
            Some((metadata.modified().ok()?, metadata.len(), entry.path()))
        })
        .collect();
    let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
    // Oldest first; equal times by name, so that the order does not depend on the listing.
    files.sort();
    for (_, len, path) in files {
        if total <= max_bytes {
            break;
        }
        match fs::remove_file(&path) {
            Ok(()) => total -= len,
            Err(err) if err.kind() == io::ErrorKind::NotFound => total -= len,
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Deletes every file in `dir`; returns how many. A missing directory holds none.
pub fn clear(dir: &Path) -> io::Result<u64> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err),
    };
    let mut deleted = 0;
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            match fs::remove_file(entry.path()) {
                Ok(()) => deleted += 1,
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const ADD_ONE: &str =
        r#"(module (func (export "add_one") (param i64) (result i64) local.get 0 i64.const 1 i64.add))"#;

    fn scratch_dir(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("plwasm-code-cache-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn engine(fuel: bool) -> Engine {
        let mut config = crate::engine::engine_config(&Default::default());
        config.consume_fuel(fuel);
        Engine::new(&config).unwrap()
    }

    #[test]
    fn a_seal_detects_any_change() {
        let dir = scratch_dir("seal");
        fs::create_dir_all(&dir).unwrap();
        let sealed = seal(b"machine code".to_vec());
        let found = |bytes: &[u8]| {
            fs::write(dir.join("f.cwasm"), bytes).unwrap();
            match open(&dir, "f.cwasm").unwrap() {
                Lookup::Found(file) => Some(file.into_code().unwrap()),
                Lookup::Damaged => None,
                Lookup::Missing => panic!("missing"),
            }
        };
        assert_eq!(found(&sealed).as_deref(), Some(&b"machine code"[..]));
        for i in 0..sealed.len() {
            let mut damaged = sealed.clone();
            damaged[i] ^= 1;
            assert_eq!(found(&damaged), None, "byte {i}");
            assert!(!dir.join("f.cwasm").exists(), "a damaged file is deleted");
        }
        assert_eq!(found(&sealed[..sealed.len() - 1]), None, "truncated");
        assert_eq!(found(&[sealed.as_slice(), b"x"].concat()), None, "appended to");
        assert_eq!(found(b"abc"), None, "shorter than a seal");
        assert_eq!(found(b""), None, "empty");
        // Larger than one read of the check, with a change in its last part.
        let large = seal((0..3 * CHECK_CHUNK + 5).map(|i| (i % 251) as u8).collect());
        assert_eq!(found(&large).map(|code| code.len()), Some(3 * CHECK_CHUNK + 5));
        let mut damaged = large.clone();
        damaged[3 * CHECK_CHUNK + 1] ^= 0x80;
        assert_eq!(found(&damaged), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_depend_on_the_module_and_on_code_generation_settings() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let (metered, unmetered) = (engine(true), engine(false));
        let name = file_name(&a, engine_tag(&metered));
        assert!(name.starts_with(&"01".repeat(32)) && name.ends_with(".cwasm"), "{name}");
        assert_eq!(name, file_name(&a, engine_tag(&engine(true))), "same settings, same name");
        assert_ne!(name, file_name(&b, engine_tag(&metered)));
        assert_ne!(name, file_name(&a, engine_tag(&unmetered)), "fuel metering changes the code");
    }

    /// SHA-256 fed each write as it comes: how tags were computed before [`FedBytes`].
    struct StreamedSha256(Sha256);

    impl Hasher for StreamedSha256 {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }

        fn finish(&self) -> u64 {
            u64::from_le_bytes(self.0.clone().finalize()[..8].try_into().unwrap())
        }
    }

    #[test]
    fn tags_are_those_of_sha256_fed_piece_by_piece() {
        // Existing cache files keep their names: the tag is unchanged by how it is computed.
        for fuel in [true, false] {
            let engine = engine(fuel);
            let mut streamed = StreamedSha256(Sha256::new());
            engine.precompile_compatibility_hash().hash(&mut streamed);
            SEAL_FORMAT.hash(&mut streamed);
            assert_eq!(engine_tag(&engine), streamed.finish());
        }
    }

    #[test]
    fn a_decoded_record_reads_back_and_a_damaged_or_foreign_one_is_deleted() {
        let dir = scratch_dir("decoded");
        let name = decoded_name(&[3; 32]);
        assert_eq!(name, format!("{}.decoded", "03".repeat(32)));
        assert_eq!(read_decoded(&dir, &name).unwrap(), None, "missing directory");
        let decoded = Decoded { hash: [9; 32], size: 12345 };
        assert!(write_decoded(&dir, &name, &decoded, 1 << 20).unwrap());
        assert_eq!(read_decoded(&dir, &name).unwrap(), Some(decoded));
        let path = dir.join(&name);
        let mut bytes = fs::read(&path).unwrap();
        bytes[40] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert_eq!(read_decoded(&dir, &name).unwrap(), None, "damaged");
        assert!(!path.exists(), "a damaged record is deleted");
        // Sealed, but not the size of a record (a module's code under a record's name).
        fs::write(&path, seal(b"machine code".to_vec())).unwrap();
        assert_eq!(read_decoded(&dir, &name).unwrap(), None, "not a record");
        assert!(!path.exists(), "a file that is not a record is deleted");
        assert!(!write_decoded(&dir, &name, &decoded, 10).unwrap(), "larger than the cache");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_written_module_reads_back_and_a_damaged_file_is_deleted() {
        let dir = scratch_dir("roundtrip");
        let engine = engine(true);
        let module = Module::new(&engine, ADD_ONE).unwrap();
        let name = file_name(&[7; 32], engine_tag(&engine));
        assert!(matches!(open(&dir, &name).unwrap(), Lookup::Missing));
        assert!(write(&dir, &name, &module, 1 << 30).unwrap());
        match open(&dir, &name).unwrap() {
            Lookup::Found(file) => assert_eq!(file.into_code().unwrap(), module.serialize().unwrap()),
            other => panic!("{other:?}"),
        }
        // Opened for mapping: the whole file, code and seal.
        let Lookup::Found(file) = open(&dir, &name).unwrap() else { panic!("missing") };
        let mut whole = Vec::new();
        file.into_file().read_to_end(&mut whole).unwrap();
        assert_eq!(whole, seal(module.serialize().unwrap()));
        let path = dir.join(&name);
        let mut bytes = fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x55;
        fs::write(&path, bytes).unwrap();
        assert!(matches!(open(&dir, &name).unwrap(), Lookup::Damaged));
        assert!(!path.exists(), "a damaged file is deleted");
        // Nothing else (no temporary file) is left behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symbolic_link_is_never_followed() {
        let dir = scratch_dir("symlink");
        let engine = engine(true);
        let module = Module::new(&engine, ADD_ONE).unwrap();
        let name = file_name(&[9; 32], engine_tag(&engine));
        // A valid cache file elsewhere, and a link to it under the cache file's name.
        let elsewhere = scratch_dir("symlink-target");
        assert!(write(&elsewhere, &name, &module, 1 << 30).unwrap());
        fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(elsewhere.join(&name), dir.join(&name)).unwrap();
        assert!(open(&dir, &name).is_err(), "reading through a link must fail");
        // Writing replaces the link itself; the link's target is untouched.
        let target_before = fs::read(elsewhere.join(&name)).unwrap();
        assert!(write(&dir, &name, &module, 1 << 30).unwrap());
        assert!(!fs::symlink_metadata(dir.join(&name)).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(elsewhere.join(&name)).unwrap(), target_before);
        fs::remove_dir_all(&dir).unwrap();
        fs::remove_dir_all(&elsewhere).unwrap();
    }

    #[test]
    fn pruning_deletes_the_least_recently_used_files_first() {
        let dir = scratch_dir("prune");
        fs::create_dir_all(&dir).unwrap();
        let now = SystemTime::now();
        for (i, age) in [(0, 30), (1, 10), (2, 20)] {
            let path = dir.join(format!("f{i}"));
            fs::write(&path, [0u8; 100]).unwrap();
            fs::File::options().append(true).open(&path).unwrap().set_modified(now - Duration::from_secs(age)).unwrap();
        }
        prune(&dir, 300).unwrap();
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 3, "within the limit nothing goes");
        prune(&dir, 150).unwrap();
        let mut left: Vec<String> =
            fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["f1"], "the two oldest went");
        assert_eq!(clear(&dir).unwrap(), 1);
        assert_eq!(clear(&dir).unwrap(), 0);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(clear(&dir).unwrap(), 0, "no directory, no files");
    }

    #[test]
    fn a_module_larger_than_the_limit_is_not_written() {
        let dir = scratch_dir("too-large");
        let engine = engine(true);
        let module = Module::new(&engine, ADD_ONE).unwrap();
        assert!(!write(&dir, "m.cwasm", &module, 64).unwrap());
        assert!(!dir.exists());
    }
}
