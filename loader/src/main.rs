//! `plwasm-load`: loads a wasm module into a database with `plwasm.install_module`, from the
//! client side (no server file access needed).
//!
//! ```text
//! plwasm-load [--name NAME] [--dsn "host=/tmp port=5432 dbname=app"] FILE.wasm|FILE.wat
//! ```
//!
//! The module name defaults to the file name without its extension. Without `--dsn`, the
//! connection comes from PGHOST, PGPORT, PGUSER, PGDATABASE (as for psql). A `.wat` file is
//! assembled on the client first.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, PartialEq, Eq)]
struct Args {
    file: PathBuf,
    name: String,
    dsn: String,
}

const USAGE: &str = "usage: plwasm-load [--name NAME] [--dsn CONNINFO] FILE.wasm|FILE.wat";

/// Parses the command line; `env` supplies PG* variables for the default connection.
fn parse_args(args: &[String], env: impl Fn(&str) -> Option<String>) -> Result<Args, String> {
    let mut file = None;
    let mut name = None;
    let mut dsn = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--name" => name = Some(iter.next().ok_or("--name needs a value")?.clone()),
            "--dsn" => dsn = Some(iter.next().ok_or("--dsn needs a value")?.clone()),
            "-h" | "--help" => return Err(USAGE.to_string()),
            other if other.starts_with("--") => return Err(format!("unknown option {other}\n{USAGE}")),
            other if file.is_none() => file = Some(PathBuf::from(other)),
            other => return Err(format!("unexpected argument {other}\n{USAGE}")),
        }
    }
    let file = file.ok_or_else(|| USAGE.to_string())?;
    let name = match name {
        Some(name) => name,
        None => file
            .file_stem()
            .and_then(|s| s.to_str())
            .map(|s| s.replace('-', "_"))
            .ok_or_else(|| format!("cannot derive a module name from {}; use --name", file.display()))?,
    };
    let dsn = dsn.unwrap_or_else(|| default_dsn(env));
    Ok(Args { file, name, dsn })
}

/// A libpq-style connection string from PGHOST, PGPORT, PGUSER and PGDATABASE.
fn default_dsn(env: impl Fn(&str) -> Option<String>) -> String {
    let user = env("PGUSER").or_else(|| env("USER")).unwrap_or_else(|| "postgres".into());
    let parts = [
        ("host", env("PGHOST").or_else(|| Some("/var/run/postgresql".into()))),
        ("port", env("PGPORT")),
        ("dbname", env("PGDATABASE").or_else(|| Some(user.clone()))),
        ("user", Some(user)),
    ];
    parts
        .iter()
        .filter_map(|(key, value)| {
            value.as_ref().map(|v| format!("{key}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The module's bytes: the file itself, or the binary a `.wat` file assembles to.
fn read_module(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    if path.extension().is_some_and(|ext| ext == "wat") {
        let text = String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8", path.display()))?;
        return wat::parse_str(&text).map_err(|err| format!("{}: {err}", path.display()));
    }
    Ok(bytes)
}

/// Installs the module; returns its size and SHA-256 (hex).
fn run(args: &Args) -> Result<(usize, String), String> {
    let wasm = read_module(&args.file)?;
    let mut client =
        postgres::Client::connect(&args.dsn, postgres::NoTls).map_err(|err| format!("cannot connect: {err}"))?;
    let row =
        client.query_one("SELECT plwasm.install_module($1, $2)", &[&args.name, &wasm]).map_err(|err| {
            match err.as_db_error() {
                Some(db) => {
                    let mut message = format!("{}: {}", db.severity(), db.message());
                    if let Some(detail) = db.detail() {
                        message.push_str(&format!("\nDETAIL: {detail}"));
                    }
                    if let Some(hint) = db.hint() {
                        message.push_str(&format!("\nHINT: {hint}"));
                    }
                    message
                }
                None => err.to_string(),
            }
        })?;
    Ok((wasm.len(), row.get::<_, String>(0)))
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&argv, |key| std::env::var(key).ok()) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok((size, hash)) => {
            println!("installed wasm module \"{}\" ({size} bytes, sha256 {hash})", args.name);
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("plwasm-load: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn name_defaults_to_the_file_stem() {
        let args = parse_args(&strings(&["dir/text-utils.wasm", "--dsn", "host=/tmp"]), |_| None).unwrap();
        assert_eq!(
            args,
            Args { file: "dir/text-utils.wasm".into(), name: "text_utils".into(), dsn: "host=/tmp".into() }
        );
        let named = parse_args(&strings(&["--name", "m", "x.wasm", "--dsn", "d"]), |_| None).unwrap();
        assert_eq!(named.name, "m");
    }

    #[test]
    fn connection_defaults_come_from_pg_variables() {
        let env = |key: &str| match key {
            "PGHOST" => Some("/tmp".to_string()),
            "PGPORT" => Some("54329".to_string()),
            "PGUSER" => Some("o'brien".to_string()),
            _ => None,
        };
        let args = parse_args(&strings(&["m.wasm"]), env).unwrap();
        assert_eq!(args.dsn, r"host='/tmp' port='54329' dbname='o\'brien' user='o\'brien'");
    }

    #[test]
    fn bad_command_lines_are_refused() {
        assert!(parse_args(&[], |_| None).is_err());
        assert!(parse_args(&strings(&["a.wasm", "b.wasm"]), |_| None).is_err());
        assert!(parse_args(&strings(&["--bogus", "a.wasm"]), |_| None).is_err());
        assert!(parse_args(&strings(&["a.wasm", "--name"]), |_| None).is_err());
    }

    #[test]
    fn wat_files_are_assembled() {
        let dir = std::env::temp_dir().join(format!("plwasm-load-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.wat");
        std::fs::write(&path, "(module (func (export \"f\") (result i32) i32.const 1))").unwrap();
        let wasm = read_module(&path).unwrap();
        assert!(wasm.starts_with(b"\0asm"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
