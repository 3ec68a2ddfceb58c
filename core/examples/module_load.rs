//! What a new session pays to get a module from the code cache, step by step, outside
//! PostgreSQL: `cargo run --release -p plwasm-core --example module_load [module.wasm]`
//! (default: the time-series module `udf-examples/build.sh` builds).
//!
//! Each step runs in this one process, 200 times, and the median is printed; a new backend
//! meets colder caches, so these are lower bounds of what it pays.

use std::time::Instant;

use plwasm_core::body::content_hash;
use plwasm_core::code_cache::{self, Lookup};
use plwasm_core::engine::{engine_config, EngineSettings};
use plwasm_core::wasmtime::{Engine, Module};
use sha2::{Digest, Sha256};

const ROUNDS: usize = 200;

fn median_ms(mut step: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            step();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[ROUNDS / 2]
}

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| "udf-examples/build/timeseries.wasm".into());
    let wasm = std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err} (run udf-examples/build.sh)"));
    let engine = Engine::new(&engine_config(&EngineSettings::default())).unwrap();
    let module = Module::new(&engine, &wasm).unwrap();
    let dir = std::env::temp_dir().join(format!("plwasm-module-load-{}", std::process::id()));
    let hash = content_hash(&wasm);
    let name = code_cache::file_name(&hash, code_cache::engine_tag(&engine));
    assert!(code_cache::write(&dir, &name, &module, 1 << 30).unwrap());
    let file_len = std::fs::metadata(dir.join(&name)).unwrap().len();

    let open = || match code_cache::open(&dir, &name).unwrap() {
        Lookup::Found(file) => file,
        other => panic!("{other:?}"),
    };
    let raw_read_ms = median_ms(|| drop(std::fs::read(dir.join(&name)).unwrap()));
    let open_ms = median_ms(|| drop(open()));
    let read_ms = median_ms(|| drop(open().into_code().unwrap()));
    let code = open().into_code().unwrap();
    let sha_ms = median_ms(|| {
        std::hint::black_box(Sha256::digest(&code));
    });
    // SAFETY: `code` is what Module::serialize wrote, read back from a file only this process
    // writes, and never changes while a module maps it.
    let deserialize_ms = median_ms(|| drop(unsafe { Module::deserialize(&engine, &code) }.unwrap()));
    // SAFETY: as above.
    let mapped_ms = median_ms(|| drop(unsafe { Module::deserialize_open_file(&engine, open().into_file()) }.unwrap()));
    std::fs::remove_dir_all(&dir).unwrap();

    println!("| step ({} kB of wasm, a {} kB cache file) | median ms |", wasm.len() / 1000, file_len / 1000);
    println!("|---|---:|");
    println!("| read the file (`std::fs::read`, for scale) | {raw_read_ms:.3} |");
    println!("| open the file and check its seal (`code_cache::open`) | {open_ms:.3} |");
    println!("| ... and read the code into memory (`CacheFile::into_code`) | {read_ms:.3} |");
    println!("| (a SHA-256 of the code, the seal plwasm used before) | {sha_ms:.3} |");
    println!("| `Module::deserialize` of those bytes: the copy plwasm falls back to | {deserialize_ms:.3} |");
    println!(
        "| open, check, then `Module::deserialize_open_file`: the file mapped, what plwasm does | {mapped_ms:.3} |"
    );
}
