//! Property tests: random secrets, embedded raw or encoded (by independent encoders) in random
//! bytes, streamed in random pieces, against a brute-force reference.
#![allow(clippy::unwrap_used)]

use std::ops::Range;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use proptest::prelude::*;

use super::*;

/// Bytes secrets are made of: letters and digits, and the characters encoders care about.
/// No `*`: a secret containing `***` could be spelled again by the mask itself.
fn secret_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        6 => prop::sample::select(&b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[..]),
        3 => prop::sample::select(&b" \"\\'$`/+=%&<>~!?#\n\r\t-_.:;@"[..]),
        1 => any::<u8>().prop_filter("no *", |&byte| byte != b'*'),
    ]
}

fn secret() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(secret_byte(), 1..=40)
}

/// Surrounding output: mostly printable, some binary.
fn filler() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => b' '..=b'~',
            1 => any::<u8>(),
        ],
        0..40,
    )
}

#[derive(Debug, Clone)]
enum Encoding {
    Raw,
    /// One line of a multi-line value.
    Line(usize),
    /// The whole value with its line breaks rewritten: through a pty (every `\n` gains a
    /// `\r`), or written with `\r\n`, `\n`, or `\r\n` through a pty.
    LineBreaks(usize),
    Base64 {
        url_safe: bool,
        padded: bool,
        prefix: Vec<u8>,
        suffix: Vec<u8>,
        /// Wrapped at this column with this line break, as `base64` and PEM do.
        wrap: Option<(usize, &'static str)>,
    },
    Json,
    Url {
        space_plus: bool,
        /// The characters this encoder keeps literal besides letters and digits.
        kept: &'static [u8],
        lowercase_hex: bool,
    },
    ShellSingle,
    ShellDouble,
}

/// What URL encoders keep literal besides letters and digits: RFC 3986, Python's `quote()`,
/// `encodeURIComponent`, `encodeURI`, forms, PHP `urlencode`, Go path segments.
const URL_ENCODERS: &[&[u8]] = &[
    b"-._~",
    b"-._~/",
    b"-._~!*'()",
    b"-._~!*'();/?:@&=+$,#",
    b"-._*",
    b"-._",
    b"-._~$&+:=@",
];

fn encoding() -> impl Strategy<Value = Encoding> {
    let bytes = |max| prop::collection::vec(any::<u8>(), 0..=max);
    prop_oneof![
        Just(Encoding::Raw),
        (0..4usize).prop_map(Encoding::Line),
        (0..4usize).prop_map(Encoding::LineBreaks),
        (
            any::<bool>(),
            any::<bool>(),
            bytes(5),
            bytes(3),
            prop::option::of((
                1..80usize,
                prop::sample::select(&["\n", "\r\n", "\r\r\n"][..])
            )),
        )
            .prop_map(
                |(url_safe, padded, prefix, suffix, wrap)| Encoding::Base64 {
                    url_safe,
                    padded,
                    prefix,
                    suffix,
                    wrap,
                }
            ),
        Just(Encoding::Json),
        (
            any::<bool>(),
            prop::sample::select(URL_ENCODERS),
            any::<bool>(),
        )
            .prop_map(|(space_plus, kept, lowercase_hex)| Encoding::Url {
                space_plus,
                kept,
                lowercase_hex,
            }),
        Just(Encoding::ShellSingle),
        Just(Encoding::ShellDouble),
    ]
}

/// `secret` encoded as `encoding`, and the part of it that must never survive masking (empty
/// when nothing is required, e.g. for values under 4 bytes).
fn embed(secret: &[u8], encoding: &Encoding) -> (Vec<u8>, Vec<u8>) {
    let masked = |text: Vec<u8>, needle: Vec<u8>| {
        if secret.len() >= MIN_LEN && needle.len() >= MIN_LEN {
            (text, needle)
        } else {
            (text, Vec::new())
        }
    };
    match encoding {
        Encoding::Raw => masked(secret.to_vec(), secret.to_vec()),
        Encoding::Line(index) => {
            let lines: Vec<&[u8]> = secret.split(|&byte| byte == b'\n').collect();
            if lines.len() == 1 {
                return masked(secret.to_vec(), secret.to_vec());
            }
            let line = lines[index % lines.len()];
            let line = line.strip_suffix(b"\r").unwrap_or(line).to_vec();
            masked(line.clone(), line)
        }
        Encoding::LineBreaks(kind) => {
            let stored: Vec<&[u8]> = secret.split(|&byte| byte == b'\n').collect();
            let stripped: Vec<&[u8]> = stored
                .iter()
                .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
                .collect();
            let text = match kind {
                _ if stored.len() == 1 => secret.to_vec(),
                0 => stored.join(&b"\r\n"[..]),
                1 => stripped.join(&b"\r\n"[..]),
                2 => stripped.join(&b"\n"[..]),
                _ => stripped.join(&b"\r\r\n"[..]),
            };
            masked(text.clone(), text)
        }
        Encoding::Base64 {
            url_safe,
            padded,
            prefix,
            suffix,
            wrap,
        } => {
            let engine = match (url_safe, padded) {
                (false, true) => STANDARD,
                (false, false) => STANDARD_NO_PAD,
                (true, true) => URL_SAFE,
                (true, false) => URL_SAFE_NO_PAD,
            };
            let encode = |fill: Option<u8>| {
                let mut data = prefix.clone();
                if let Some(fill) = fill {
                    data.fill(fill);
                }
                data.extend_from_slice(secret);
                let mut tail = suffix.clone();
                if let Some(fill) = fill {
                    tail.fill(fill);
                }
                data.extend_from_slice(&tail);
                engine.encode(&data).into_bytes()
            };
            // The characters that depend on the secret alone are those that do not change
            // when every prefix and suffix bit is flipped.
            let (actual, zeros, ones) = (encode(None), encode(Some(0x00)), encode(Some(0xff)));
            let run = longest_run(&zeros, &ones);
            let needle = actual[run].to_vec();
            let actual = match wrap {
                Some((column, newline)) => actual
                    .chunks(*column)
                    .flat_map(|line| [line, newline.as_bytes()])
                    .flatten()
                    .copied()
                    .collect(),
                None => actual,
            };
            masked(actual, needle)
        }
        Encoding::Json => match std::str::from_utf8(secret) {
            Ok(text) => {
                let quoted = serde_json::to_string(text).unwrap().into_bytes();
                let inner = quoted[1..quoted.len() - 1].to_vec();
                masked(quoted, inner)
            }
            Err(_) => masked(secret.to_vec(), secret.to_vec()),
        },
        Encoding::Url {
            space_plus,
            kept,
            lowercase_hex,
        } => {
            let mut out = Vec::new();
            for &byte in secret {
                match byte {
                    _ if byte.is_ascii_alphanumeric() || kept.contains(&byte) => out.push(byte),
                    b' ' if *space_plus => out.push(b'+'),
                    _ if *lowercase_hex => out.extend_from_slice(format!("%{byte:02x}").as_bytes()),
                    _ => out.extend_from_slice(format!("%{byte:02X}").as_bytes()),
                }
            }
            masked(out.clone(), out)
        }
        Encoding::ShellSingle => {
            let mut inner = Vec::new();
            for &byte in secret {
                if byte == b'\'' {
                    inner.extend_from_slice(b"'\\''");
                } else {
                    inner.push(byte);
                }
            }
            let quoted = [&b"'"[..], &inner, b"'"].concat();
            masked(quoted, inner)
        }
        Encoding::ShellDouble => {
            let mut inner = Vec::new();
            for &byte in secret {
                if matches!(byte, b'\\' | b'"' | b'$' | b'`') {
                    inner.push(b'\\');
                }
                inner.push(byte);
            }
            let quoted = [&b"\""[..], &inner, b"\""].concat();
            masked(quoted, inner)
        }
    }
}

fn longest_run(a: &[u8], b: &[u8]) -> Range<usize> {
    let mut best = 0..0;
    let mut start = 0;
    for index in 0..=a.len() {
        if index == a.len() || a[index] != b[index] {
            if index - start > best.len() {
                best = start..index;
            }
            start = index + 1;
        }
    }
    best
}

#[derive(Debug, Clone)]
struct Case {
    secrets: Vec<Vec<u8>>,
    data: Vec<u8>,
    /// Byte strings that must not appear in the output.
    needles: Vec<Vec<u8>>,
    /// Write sizes, used in turn until the data runs out.
    pieces: Vec<usize>,
}

/// How a stored value wraps its secrets: plain, or as the string leaves of JSON text nested
/// in objects, arrays and strings that hold JSON (as a service-account key file does).
#[derive(Debug, Clone)]
enum Nesting {
    Object(String),
    Array,
    /// JSON text stored inside a JSON string.
    Text,
}

/// A stored value and the secrets inside it that must be masked wherever they appear.
fn stored_value() -> impl Strategy<Value = (Vec<u8>, Vec<Vec<u8>>)> {
    let nesting = prop_oneof![
        "k[a-z]{0,5}".prop_map(Nesting::Object),
        Just(Nesting::Array),
        Just(Nesting::Text),
    ];
    prop_oneof![
        2 => secret().prop_map(|secret| (secret.clone(), vec![secret])),
        1 => (
            prop::collection::vec(secret(), 1..=3),
            prop::collection::vec(nesting, 0..=3),
            any::<u32>(),
        )
            .prop_map(|(leaves, nesting, number)| {
                // JSON strings are UTF-8: the leaf as the child would read it back.
                let leaves: Vec<String> = leaves
                    .iter()
                    .map(|leaf| String::from_utf8_lossy(leaf).into_owned())
                    .collect();
                let mut items: Vec<serde_json::Value> =
                    leaves.iter().cloned().map(serde_json::Value::from).collect();
                items.push(serde_json::Value::from(number));
                let mut value = serde_json::Value::Array(items);
                for level in nesting {
                    value = match level {
                        Nesting::Object(key) => serde_json::json!({ key: value, "n": number }),
                        Nesting::Array => serde_json::json!([value, null, true]),
                        Nesting::Text => serde_json::json!([value.to_string()]),
                    };
                }
                let units = leaves.into_iter().map(String::into_bytes).collect();
                (value.to_string().into_bytes(), units)
            }),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(stored_value(), 1..=3),
        prop::collection::vec((filler(), any::<prop::sample::Index>(), encoding()), 0..6),
        filler(),
        prop::collection::vec(1..48usize, 1..12),
    )
        .prop_map(|(values, embedded, last, pieces)| {
            let secrets: Vec<Vec<u8>> = values.iter().map(|(value, _)| value.clone()).collect();
            // What the child may print: a plain value, or one leaf of a structured one.
            let units: Vec<Vec<u8>> = values.into_iter().flat_map(|(_, units)| units).collect();
            let mut data = Vec::new();
            let mut needles = Vec::new();
            for (filler, which, encoding) in embedded {
                data.extend_from_slice(&filler);
                let (text, needle) = embed(which.get::<Vec<u8>>(&units), &encoding);
                data.extend_from_slice(&text);
                if !needle.is_empty() {
                    needles.push(needle);
                }
            }
            data.extend_from_slice(&last);
            for unit in secrets.iter().chain(&units) {
                if unit.len() >= MIN_LEN {
                    needles.push(unit.clone());
                }
            }
            Case {
                secrets,
                data,
                needles,
                pieces,
            }
        })
}

/// Every occurrence of every pattern, found one position at a time, merged when overlapping
/// or touching.
fn reference_runs(patterns: &[Vec<u8>], data: &[u8]) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for start in 0..data.len() {
        for pattern in patterns {
            if data[start..].starts_with(pattern) {
                let end = start + pattern.len();
                match runs.last_mut() {
                    Some(last) if start <= last.end => last.end = last.end.max(end),
                    _ => runs.push(start..end),
                }
            }
        }
    }
    runs
}

/// The view of `data` the masker matches base64 forms on: every `\n` and up to two `\r`
/// before it left out (and, for a stream that may go on, up to two `\r` at the very end),
/// except a line break right after another (an empty line), which stays and ends the view's
/// words. Returns the characters and where each one is in `data`.
fn reference_view(data: &[u8], may_go_on: bool) -> (Vec<u8>, Vec<usize>) {
    let mut left_out = vec![false; data.len()];
    let leave_crs_before = |left_out: &mut Vec<bool>, mut at: usize| {
        for _ in 0..2 {
            if at > 0 && data[at - 1] == b'\r' {
                left_out[at - 1] = true;
                at -= 1;
            }
        }
    };
    for at in 0..data.len() {
        if data[at] == b'\n' {
            let crs = data[..at]
                .iter()
                .rev()
                .take(2)
                .take_while(|&&byte| byte == b'\r')
                .count();
            if at > crs && data[at - crs - 1] == b'\n' {
                continue;
            }
            left_out[at] = true;
            leave_crs_before(&mut left_out, at);
        }
    }
    if may_go_on {
        leave_crs_before(&mut left_out, data.len());
    }
    (0..data.len())
        .filter(|&at| !left_out[at])
        .map(|at| (data[at], at))
        .unzip()
}

/// [`reference_runs`] plus the base64 forms found in the view, merged.
fn reference_all_runs(set: &MaskSet, data: &[u8]) -> Vec<Range<usize>> {
    let mut runs = reference_runs(&set.patterns, data);
    if let Some(wrapped) = &set.wrapped {
        let (view, at) = reference_view(data, false);
        for run in reference_runs(wrapped.patterns(), &view) {
            runs.push(at[run.start]..at[run.end - 1] + 1);
        }
    }
    runs.sort_by_key(|run| run.start);
    let mut merged: Vec<Range<usize>> = Vec::new();
    for run in runs {
        match merged.last_mut() {
            Some(last) if run.start <= last.end => last.end = last.end.max(run.end),
            _ => merged.push(run),
        }
    }
    merged
}

/// [`reference_hold`], or earlier if the view of what came so far ends in a proper prefix of a
/// base64 form.
fn reference_all_hold(set: &MaskSet, data: &[u8]) -> usize {
    let raw = reference_hold(&set.patterns, data);
    let Some(wrapped) = &set.wrapped else {
        return raw;
    };
    let (view, at) = reference_view(data, true);
    let in_view = reference_hold(wrapped.patterns(), &view);
    at.get(in_view).map_or(raw, |&start| start.min(raw))
}

/// The output for `data[..upto]` when the whole data has the given runs: runs starting
/// before `upto` count whole.
fn reference_output(runs: &[Range<usize>], data: &[u8], upto: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    for run in runs.iter().filter(|run| run.start < upto) {
        out.extend_from_slice(&data[at..run.start]);
        out.extend_from_slice(REDACTED);
        at = run.end;
    }
    if at < upto {
        out.extend_from_slice(&data[at..upto]);
    }
    out
}

/// Where the longest suffix of `data` that is a proper prefix of a pattern starts.
fn reference_hold(patterns: &[Vec<u8>], data: &[u8]) -> usize {
    (0..data.len())
        .find(|&start| {
            let suffix = &data[start..];
            patterns
                .iter()
                .any(|pattern| pattern.len() > suffix.len() && pattern.starts_with(suffix))
        })
        .unwrap_or(data.len())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_secret_or_encoding_survives_any_chunking(case in case()) {
        let set = MaskSet::new(&case.secrets);
        let mut masker = StreamMasker::new(&set);
        let mut out = Vec::new();
        let mut fed = 0;
        let mut outputs = Vec::new();
        for &size in case.pieces.iter().cycle() {
            if fed == case.data.len() {
                break;
            }
            let end = (fed + size).min(case.data.len());
            masker.write(&case.data[fed..end], &mut out).unwrap();
            fed = end;
            outputs.push((fed, out.clone()));
        }
        masker.finish(&mut out).unwrap();

        let (out_view, _) = reference_view(&out, false);
        for needle in &case.needles {
            prop_assert!(!contains(&out, needle), "{:?} survived in {:?}", needle, out);
            let base64 = needle.iter().all(|&byte| wrapped::is_base64(byte));
            prop_assert!(
                !base64 || !contains(&out_view, needle),
                "{:?} survived across lines in {:?}", needle, out
            );
        }

        let runs = reference_all_runs(&set, &case.data);
        let expected = reference_output(&runs, &case.data, case.data.len());
        prop_assert_eq!(&out, &expected);
        prop_assert_eq!(&set.mask(&case.data), &expected);

        // After each write: a prefix of the final output, with everything before the
        // held-back suffix already written.
        for (fed, so_far) in outputs {
            prop_assert!(expected.starts_with(&so_far));
            let hold = reference_all_hold(&set, &case.data[..fed]);
            let due = reference_output(&runs, &case.data, hold);
            prop_assert!(so_far.len() >= due.len(), "fed {}: {:?} < {:?}", fed, so_far, due);
        }
    }

    #[test]
    fn data_without_patterns_passes_unchanged(
        secrets in prop::collection::vec(secret(), 1..=4),
        data in prop::collection::vec(any::<u8>(), 0..400),
        pieces in prop::collection::vec(1..64usize, 1..8),
    ) {
        let set = MaskSet::new(&secrets);
        prop_assume!(reference_all_runs(&set, &data).is_empty());
        let mut masker = StreamMasker::new(&set);
        let mut out = Vec::new();
        let mut fed = 0;
        for &size in pieces.iter().cycle() {
            if fed == data.len() {
                break;
            }
            let end = (fed + size).min(data.len());
            masker.write(&data[fed..end], &mut out).unwrap();
            fed = end;
        }
        masker.finish(&mut out).unwrap();
        prop_assert_eq!(out, data);
    }

    #[test]
    fn one_chunk_and_random_chunks_agree(case in case(), seed in any::<u64>()) {
        let set = MaskSet::new(&case.secrets);
        let whole = set.mask(&case.data);
        let mut masker = StreamMasker::new(&set);
        let mut out = Vec::new();
        let mut rest = &case.data[..];
        let mut state = seed | 1;
        while !rest.is_empty() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let size = (state % 9) as usize;
            let (piece, next) = rest.split_at(size.min(rest.len()));
            masker.write(piece, &mut out).unwrap();
            rest = next;
        }
        masker.finish(&mut out).unwrap();
        prop_assert_eq!(out, whole);
    }
}
