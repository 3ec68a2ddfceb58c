//! `json_tools`: jsonb helpers for plwasm, on serde_json.

use plwasm_guest::{export, Error, Jsonb};
use serde_json::{Map, Value};

fn parse(doc: &str) -> Result<Value, Error> {
    serde_json::from_str(doc).map_err(|e| Error::invalid_input(format!("invalid JSON from the server: {e}")))
}

fn to_jsonb(value: &Value) -> Jsonb<String> {
    Jsonb(value.to_string())
}

/// Nested objects and arrays flattened into one object with dotted keys:
/// `{"a": {"b": 1}, "c": [true]}` → `{"a.b": 1, "c.0": true}`.
#[export]
fn jsonb_flatten(doc: Jsonb<&str>) -> Result<Jsonb<String>, Error> {
    fn walk(prefix: &str, value: &Value, out: &mut Map<String, Value>) {
        let key = |k: &str| if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
        match value {
            Value::Object(map) if !map.is_empty() => map.iter().for_each(|(k, v)| walk(&key(k), v, out)),
            Value::Array(items) if !items.is_empty() => {
                items.iter().enumerate().for_each(|(i, v)| walk(&key(&i.to_string()), v, out))
            }
            leaf => {
                out.insert(prefix.to_string(), leaf.clone());
            }
        }
    }
    let mut out = Map::new();
    walk("", &parse(doc.0)?, &mut out);
    Ok(to_jsonb(&Value::Object(out)))
}

/// The value at a JSON Pointer (RFC 6901, e.g. `/items/0/name`), or NULL if there is none.
#[export]
fn jsonb_pointer(doc: Jsonb<&str>, pointer: &str) -> Result<Option<Jsonb<String>>, Error> {
    Ok(parse(doc.0)?.pointer(pointer).map(to_jsonb))
}

/// The sum of every number anywhere in the document.
#[export]
fn jsonb_sum_numbers(doc: Jsonb<&str>) -> Result<f64, Error> {
    fn sum(value: &Value) -> f64 {
        match value {
            Value::Number(n) => n.as_f64().unwrap_or(0.0),
            Value::Array(items) => items.iter().map(sum).sum(),
            Value::Object(map) => map.values().map(sum).sum(),
            _ => 0.0,
        }
    }
    Ok(sum(&parse(doc.0)?))
}

/// The object with the given top-level keys removed (a comma-separated list).
#[export]
fn jsonb_redact(doc: Jsonb<&str>, keys: &str) -> Result<Jsonb<String>, Error> {
    let mut value = parse(doc.0)?;
    if let Value::Object(map) = &mut value {
        for key in keys.split(',').map(str::trim) {
            map.shift_remove(key);
        }
    }
    Ok(to_jsonb(&value))
}
