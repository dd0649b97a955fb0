//! Structured secrets: a value that is JSON text (a KV value that is an object or an array, or
//! a string holding JSON such as a cloud service-account key). The child can parse it and print
//! one field, so every string leaf is masked on its own, as if it were a secret by itself.

use serde_json::Value;
use zeroize::Zeroizing;

use super::variants::MIN_LEN;

/// How deep strings holding JSON are unpacked (`"{\"k\": \"{\\\"inner\\\": …}\"}"`).
const MAX_STRING_NESTING: usize = 4;

/// Every string leaf of at least [`MIN_LEN`] bytes of `value` if it is a JSON object or array,
/// including the leaves of leaves that are themselves JSON text. Empty for anything else.
pub(super) fn leaves(value: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    let mut out = Vec::new();
    unpack(value, 0, &mut out);
    out
}

fn unpack(text: &[u8], nesting: usize, out: &mut Vec<Zeroizing<Vec<u8>>>) {
    let looks_structured = text
        .iter()
        .find(|byte| !byte.is_ascii_whitespace())
        .is_some_and(|&first| first == b'{' || first == b'[');
    if !looks_structured || nesting > MAX_STRING_NESTING {
        return;
    }
    // serde_json refuses nesting deeper than 128, so the walk below is bounded too.
    let Ok(mut parsed) = serde_json::from_slice::<Value>(text) else {
        return;
    };
    let mut strings = Vec::new();
    take_strings(&mut parsed, &mut strings);
    for leaf in strings {
        unpack(leaf.as_bytes(), nesting + 1, out);
        if leaf.len() >= MIN_LEN {
            out.push(Zeroizing::new(leaf.as_bytes().to_vec()));
        }
    }
}

/// Moves every string leaf out of `value` (object keys are names, not secrets).
fn take_strings(value: &mut Value, out: &mut Vec<Zeroizing<String>>) {
    match value {
        Value::String(text) => out.push(Zeroizing::new(std::mem::take(text))),
        Value::Array(items) => items.iter_mut().for_each(|item| take_strings(item, out)),
        Value::Object(map) => map.values_mut().for_each(|item| take_strings(item, out)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}
