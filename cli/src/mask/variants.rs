//! The forms under which a secret value can reach a log: the value itself, each of its lines,
//! and their base64, JSON-string, URL, shell-quoted and XML encodings.
//!
//! Every function here appends candidates to a list; [`super::MaskSet::new`] drops the ones
//! shorter than [`MIN_LEN`] and the duplicates (a form equal to the raw value is a duplicate).

use base64::Engine as _;
use base64::engine::GeneralPurpose;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

/// Values (and lines, and encoded forms) shorter than this are not masked: masking `a` or
/// `on` would shred every log line while hiding next to nothing.
pub const MIN_LEN: usize = 4;

/// The byte strings masked for one secret value: the whole value and, for a multi-line value,
/// each line (without its `\r`) that is at least [`MIN_LEN`] bytes long, and the whole value
/// with its line breaks as they reach the log when written with `\r\n`, through a
/// pseudo-terminal (which turns `\n` into `\r\n`, so `\r\n` into `\r\r\n`), or with plain `\n`.
pub(super) fn units(value: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    let mut units = vec![Zeroizing::new(value.to_vec())];
    if value.contains(&b'\n') {
        let lines: Vec<&[u8]> = value
            .split(|&byte| byte == b'\n')
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
            .collect();
        let kept = value.split(|&byte| byte == b'\n');
        for newline in [&b"\n"[..], b"\r\n", b"\r\r\n"] {
            units.push(Zeroizing::new(lines.join(newline)));
        }
        // Through a pty as stored: each `\n` gains a `\r`, whatever was before it.
        units.push(Zeroizing::new(kept.collect::<Vec<_>>().join(&b"\r\n"[..])));
        units.extend(
            lines
                .iter()
                .filter(|line| line.len() >= MIN_LEN)
                .map(|line| Zeroizing::new(line.to_vec())),
        );
    }
    units
}

/// Appends `unit` and every encoded form of it; the base64 forms go to `base64`, which are
/// also looked for across line breaks.
pub(super) fn push_forms(unit: &[u8], forms: &mut Vec<Vec<u8>>, base64: &mut Vec<Vec<u8>>) {
    forms.push(unit.to_vec());
    push_base64(unit, base64);
    push_json(unit, forms);
    push_url(unit, forms);
    push_shell(unit, forms);
    forms.push(xml_escape(unit));
}

/// Base64 of `unit` wherever it sits in the encoded data.
///
/// The encoder reads its input in 3-byte groups, so `base64(prefix + unit + suffix)` depends
/// on `prefix.len() % 3` (the alignment) but otherwise contains, for that alignment, a fixed
/// run of characters computed from `unit`'s bytes alone: that run is the *core*. The first
/// and last characters around it mix in bits of the prefix or the suffix. When the unit ends
/// the data (optionally followed by the `\n` that `echo` adds) the rest of the output is fixed
/// too, so those *tails* are added, padded and unpadded, to hide the last bits as well.
fn push_base64(unit: &[u8], forms: &mut Vec<Vec<u8>>) {
    const ALPHABETS: [(GeneralPurpose, GeneralPurpose); 2] =
        [(STANDARD_NO_PAD, STANDARD), (URL_SAFE_NO_PAD, URL_SAFE)];
    let mut data = Zeroizing::new(Vec::with_capacity(unit.len() + 3));
    for align in 0..3 {
        data.clear();
        data.resize(align, 0);
        data.extend_from_slice(unit);
        // Character i encodes bits 6i..6i+6 of the data: the first one past the prefix
        // bytes, and the last one before any suffix byte.
        let core = (4 * align).div_ceil(3)..4 * (align + unit.len()) / 3;
        for (unpadded, padded) in &ALPHABETS {
            let encoded = Zeroizing::new(unpadded.encode(&data[..]));
            if let Some(core) = encoded.as_bytes().get(core.clone()) {
                forms.push(core.to_vec());
            }
            for ending in [&b""[..], b"\n"] {
                data.extend_from_slice(ending);
                for engine in [unpadded, padded] {
                    let encoded = Zeroizing::new(engine.encode(&data[..]));
                    if let Some(tail) = encoded.as_bytes().get(core.start..) {
                        forms.push(tail.to_vec());
                    }
                }
                data.truncate(align + unit.len());
            }
        }
    }
}

/// How one JSON encoder escapes a string.
#[derive(Clone, Copy)]
struct JsonStyle {
    /// `/` becomes `\/` (PHP).
    slash: bool,
    /// `<`, `>`, `&` become `\u003c` and so on, U+2028/2029 are escaped (Go, Rails).
    html: bool,
    /// Non-ASCII characters become `\uXXXX`, as UTF-16 (Python, PHP).
    ascii_only: bool,
    /// System.Text.Json's default: uppercase hex, `"` as `\u0022`, and `'`, `+`, `` ` `` escaped.
    dotnet: bool,
}

/// JSON string escaping as serde_json, JavaScript and other common encoders write it between
/// the quotes.
fn push_json(unit: &[u8], forms: &mut Vec<Vec<u8>>) {
    let serde = JsonStyle {
        slash: false,
        html: false,
        ascii_only: false,
        dotnet: false,
    };
    let styles = [
        serde,
        JsonStyle {
            slash: true,
            ..serde
        },
        JsonStyle {
            slash: true,
            ascii_only: true,
            ..serde
        },
        JsonStyle {
            html: true,
            ..serde
        },
        JsonStyle {
            ascii_only: true,
            ..serde
        },
        JsonStyle {
            html: true,
            ascii_only: true,
            dotnet: true,
            ..serde
        },
    ];
    for style in styles {
        forms.push(json_escape(unit, style));
    }
}

fn json_escape(unit: &[u8], style: JsonStyle) -> Vec<u8> {
    let mut out = Vec::with_capacity(unit.len() + 8);
    let push_u = |out: &mut Vec<u8>, unit: u16| {
        let hex = if style.dotnet {
            format!("\\u{unit:04X}")
        } else {
            format!("\\u{unit:04x}")
        };
        out.extend_from_slice(hex.as_bytes());
    };
    for chunk in unit.utf8_chunks() {
        for ch in chunk.valid().chars() {
            match ch {
                '"' if style.dotnet => push_u(&mut out, 0x22),
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '/' if style.slash => out.extend_from_slice(b"\\/"),
                '\u{8}' => out.extend_from_slice(b"\\b"),
                '\u{c}' => out.extend_from_slice(b"\\f"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\0'..='\u{1f}' => push_u(&mut out, ch as u16),
                '<' | '>' | '&' if style.html => push_u(&mut out, ch as u16),
                '\'' | '+' | '`' if style.dotnet => push_u(&mut out, ch as u16),
                '\u{2028}' | '\u{2029}' if style.html => push_u(&mut out, ch as u16),
                _ if style.ascii_only && !ch.is_ascii() => {
                    let mut units = [0u16; 2];
                    for &unit in ch.encode_utf16(&mut units).iter() {
                        push_u(&mut out, unit);
                    }
                }
                _ => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        // A JSON encoder cannot take invalid UTF-8; keep such bytes so the rest still lines up.
        out.extend_from_slice(chunk.invalid());
    }
    out
}

/// Percent-encoding as URL libraries write it, each keeping its own set of characters
/// literal; space as `%20` and as `+`; upper- and lowercase hex.
fn push_url(unit: &[u8], forms: &mut Vec<Vec<u8>>) {
    /// RFC 3986 unreserved: Python `quote(safe="")` and `quote_plus`, Go `QueryEscape`, .NET
    /// `EscapeDataString`, PHP `rawurlencode`, curl.
    const RFC3986: &[u8] = b"-._~";
    /// Python's `quote()` default (`safe="/"`).
    const PYTHON_QUOTE: &[u8] = b"-._~/";
    /// JavaScript's `encodeURIComponent`.
    const URI_COMPONENT: &[u8] = b"-._~!*'()";
    /// JavaScript's `encodeURI`.
    const URI: &[u8] = b"-._~!*'();/?:@&=+$,#";
    /// HTML forms (WHATWG `application/x-www-form-urlencoded`), Java `URLEncoder`, Ruby.
    const FORM: &[u8] = b"-._*";
    /// PHP `urlencode`.
    const PHP: &[u8] = b"-._";
    /// Go `url.PathEscape` (a path segment).
    const GO_SEGMENT: &[u8] = b"-._~$&+:=@";
    /// Go `url.URL` paths (`EscapedPath`).
    const GO_PATH: &[u8] = b"-._~$&+,/:;=@";
    for kept in [
        RFC3986,
        PYTHON_QUOTE,
        URI_COMPONENT,
        URI,
        FORM,
        PHP,
        GO_SEGMENT,
        GO_PATH,
    ] {
        for space_plus in [false, true] {
            for upper in [false, true] {
                forms.push(percent_encode(unit, kept, space_plus, upper));
            }
        }
    }
}

fn percent_encode(unit: &[u8], kept: &[u8], space_plus: bool, upper: bool) -> Vec<u8> {
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut out = Vec::with_capacity(unit.len() * 3);
    for &byte in unit {
        if byte.is_ascii_alphanumeric() || kept.contains(&byte) {
            out.push(byte);
        } else if byte == b' ' && space_plus {
            out.push(b'+');
        } else {
            out.extend_from_slice(&[
                b'%',
                digits[usize::from(byte >> 4)],
                digits[usize::from(byte & 0xf)],
            ]);
        }
    }
    out
}

/// What shells print between quotes, e.g. in `set -x` traces: bash's single quotes
/// (`'` as `'\''`), dash's (`'` as `'"'"'`), and double quotes (`\`, `"`, `$`, `` ` ``
/// escaped with a backslash).
fn push_shell(unit: &[u8], forms: &mut Vec<Vec<u8>>) {
    forms.push(replace_each(unit, |byte| {
        (byte == b'\'').then_some(&b"'\\''"[..])
    }));
    forms.push(replace_each(unit, |byte| {
        (byte == b'\'').then_some(&b"'\"'\"'"[..])
    }));
    forms.push(replace_each(unit, |byte| match byte {
        b'\\' => Some(&b"\\\\"[..]),
        b'"' => Some(b"\\\""),
        b'$' => Some(b"\\$"),
        b'`' => Some(b"\\`"),
        _ => None,
    }));
}

fn xml_escape(unit: &[u8]) -> Vec<u8> {
    replace_each(unit, |byte| match byte {
        b'&' => Some(&b"&amp;"[..]),
        b'<' => Some(b"&lt;"),
        b'>' => Some(b"&gt;"),
        b'"' => Some(b"&quot;"),
        b'\'' => Some(b"&apos;"),
        _ => None,
    })
}

fn replace_each(unit: &[u8], replacement: impl Fn(u8) -> Option<&'static [u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(unit.len() + 8);
    for &byte in unit {
        match replacement(byte) {
            Some(with) => out.extend_from_slice(with),
            None => out.push(byte),
        }
    }
    out
}
