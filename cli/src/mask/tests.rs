#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::GeneralPurpose;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

use super::*;

fn mask(secrets: &[&str], text: &[u8]) -> Vec<u8> {
    MaskSet::new(secrets).mask(text)
}

fn mask_str(secrets: &[&str], text: &str) -> String {
    String::from_utf8(mask(secrets, text.as_bytes())).unwrap()
}

/// Feeds `text` one byte per write and returns the output after each write and at the end.
fn trickle(set: &MaskSet, text: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut masker = StreamMasker::new(set);
    let mut out = Vec::new();
    let mut after_each = Vec::new();
    for byte in text {
        masker.write(&[*byte], &mut out).unwrap();
        after_each.push(out.clone());
    }
    masker.finish(&mut out).unwrap();
    (after_each, out)
}

#[test]
fn raw_value_is_masked_everywhere() {
    assert_eq!(
        mask_str(&["hunter22"], "pw=hunter22; again hunter22."),
        "pw=***; again ***."
    );
}

#[test]
fn short_and_empty_values_are_reported_or_ignored() {
    let set = MaskSet::new(["abc", "", "long enough", "x"]);
    assert_eq!(set.too_short(), &[0, 3]);
    assert_eq!(set.mask(b"abc x long enough"), b"abc x ***");
}

#[test]
fn no_secrets_means_passthrough() {
    let set = MaskSet::new(Vec::<&[u8]>::new());
    assert!(set.is_empty());
    assert_eq!(set.mask(b"anything at all"), b"anything at all");
}

#[test]
fn debug_shows_only_the_count() {
    let set = MaskSet::new(["correct horse battery"]);
    let shown = format!("{set:?}");
    assert!(shown.starts_with("MaskSet { patterns: "), "{shown}");
    assert!(!shown.contains("horse"), "{shown}");
}

#[test]
fn base64_at_every_alignment_and_padding() {
    let secret = b"s3cr3t-t0ken!?";
    let set = MaskSet::new([secret]);
    let engines: [(&str, GeneralPurpose); 4] = [
        ("standard", STANDARD),
        ("standard unpadded", STANDARD_NO_PAD),
        ("url-safe", URL_SAFE),
        ("url-safe unpadded", URL_SAFE_NO_PAD),
    ];
    for (name, engine) in &engines {
        for prefix_len in 0..=5 {
            for suffix_len in 0..=3 {
                let mut data = vec![b'P'; prefix_len];
                data.extend_from_slice(secret);
                data.extend(std::iter::repeat_n(b'S', suffix_len));
                let encoded = engine.encode(&data);
                let masked = String::from_utf8(set.mask(encoded.as_bytes())).unwrap();
                // Characters fully determined by the secret's bytes (see variants.rs).
                let first = (4 * prefix_len).div_ceil(3);
                let last = 4 * (prefix_len + secret.len()) / 3;
                let (before, after) = masked.split_once("***").unwrap_or_else(|| {
                    panic!("{name}, prefix {prefix_len}, suffix {suffix_len}: {masked}")
                });
                assert!(before.len() <= first, "{name} {prefix_len}: {masked}");
                assert!(encoded.starts_with(before));
                assert!(encoded.len() - after.len() >= last, "{name}: {masked}");
                assert!(encoded.ends_with(after));
                assert!(!after.contains("***"));
            }
        }
    }
}

#[test]
fn base64_of_echo_output_is_masked_whole() {
    // `echo "$SECRET" | base64`: the trailing newline's bits are masked too.
    let encoded = STANDARD.encode(b"s3cr3t-t0ken\n");
    assert_eq!(
        mask_str(&["s3cr3t-t0ken"], &format!("[{encoded}]")),
        "[***]"
    );
}

#[test]
fn json_escaped_forms() {
    let secret = "pa\"ss\\wo\nrd/<é>\u{1}";
    let set = MaskSet::new([secret]);
    let serde = serde_json::to_string(secret).unwrap();
    assert_eq!(set.mask(serde.as_bytes()), b"\"***\"");
    for escaped in [
        r#"pa\"ss\\wo\nrd\/<é>\u0001"#, // PHP with JSON_UNESCAPED_UNICODE
        r#"pa\"ss\\wo\nrd/\u003cé\u003e\u0001"#, // Go
        r#"pa\"ss\\wo\nrd/<\u00e9>\u0001"#, // Python
        r#"pa\u0022ss\\wo\nrd/\u003C\u00E9\u003E\u0001"#, // System.Text.Json
    ] {
        let text = format!("{{\"key\":\"{escaped}\"}}");
        assert_eq!(
            String::from_utf8(set.mask(text.as_bytes())).unwrap(),
            "{\"key\":\"***\"}",
            "{escaped}"
        );
    }
}

#[test]
fn url_encoded_forms() {
    let secret = "p@ss w/rd&x=1~";
    for encoded in [
        "p%40ss%20w%2Frd%26x%3D1~",
        "p%40ss+w%2Frd%26x%3D1~",
        "p%40ss%20w%2frd%26x%3d1~",
        "p%40ss+w%2frd%26x%3d1~",
        "p%40ss+w%2Frd%26x%3D1%7E", // HTML forms encode `~`
    ] {
        let text = format!("https://host/?q={encoded}&next=1");
        assert_eq!(
            mask_str(&[secret], &text),
            "https://host/?q=***&next=1",
            "{encoded}"
        );
    }
}

#[test]
fn shell_quoted_forms() {
    let secret = r#"it's "a" $x `y` \z"#;
    for (quoted, masked) in [
        (r#"'it'\''s "a" $x `y` \z'"#, "'***'"),
        (r#"'it'"'"'s "a" $x `y` \z'"#, "'***'"),
        (r#""it's \"a\" \$x \`y\` \\z""#, "\"***\""),
    ] {
        let text = format!("+ deploy --password {quoted} --verbose");
        assert_eq!(
            mask_str(&[secret], &text),
            format!("+ deploy --password {masked} --verbose")
        );
    }
}

#[test]
fn xml_escaped_form() {
    assert_eq!(
        mask_str(&["a<b>&\"c\""], "<v>a&lt;b&gt;&amp;&quot;c&quot;</v>"),
        "<v>***</v>"
    );
}

#[test]
fn each_line_of_a_multi_line_value() {
    let key = "-----BEGIN KEY-----\r\nMIIBOgIBAAJBAKj34GkxFhD9\r\nQ==\r\n-----END KEY-----\r\n";
    let set = MaskSet::new([key]);
    assert_eq!(set.mask(key.as_bytes()), b"***");
    assert_eq!(
        set.mask(b"line: MIIBOgIBAAJBAKj34GkxFhD9 end"),
        b"line: *** end"
    );
    // `Q==` is under 4 bytes: only the whole value masks it.
    assert_eq!(set.mask(b"Q=="), b"Q==");
}

#[test]
fn touching_and_overlapping_matches_collapse() {
    assert_eq!(mask_str(&["abcd"], "xabcdabcdx"), "x***x");
    assert_eq!(mask_str(&["abcd"], "xabcd-abcdx"), "x***-***x");
    assert_eq!(mask_str(&["abcdef", "defghi"], "_abcdefghi_"), "_***_");
    assert_eq!(mask_str(&["aaaa"], "aaaaaaaaa b"), "*** b");
    assert_eq!(mask_str(&["abcd", "xabcdy"], "xabcdy"), "***");
}

#[test]
fn binary_passes_through_unchanged() {
    let mut data: Vec<u8> = (0..=255).collect();
    data.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28, 0xe2, 0x82]);
    let set = MaskSet::new(["not present here"]);
    assert_eq!(set.mask(&data), data);

    let set = MaskSet::new([&[0x00, 0xff, 0x80, 0x01][..]]);
    let mut expected = data.clone();
    data.splice(10..10, [0x00, 0xff, 0x80, 0x01]);
    expected.splice(10..10, *b"***");
    assert_eq!(set.mask(&data), expected);
}

#[test]
fn one_byte_writes_give_the_same_output() {
    let set = MaskSet::new(["abcdef", "defghi", "s3cr3t"]);
    let text = b"abcdefghi s3cr3s3cr3t abcdeX abcdef";
    let (_, out) = trickle(&set, text);
    assert_eq!(out, set.mask(text));
    assert_eq!(out, b"*** s3cr3*** abcdeX ***");
}

#[test]
fn only_a_possible_secret_start_is_held_back() {
    let set = MaskSet::new(["s3cr3t-value"]);
    let mut masker = StreamMasker::new(&set);
    let mut out = Vec::new();
    masker.write(b"hello world\n", &mut out).unwrap();
    assert_eq!(out, b"hello world\n");
    masker.write(b"token: s3cr", &mut out).unwrap();
    assert_eq!(out, b"hello world\ntoken: ");
    assert_eq!(masker.held_len(), 4);
    masker.write(b"3", &mut out).unwrap();
    assert_eq!(out, b"hello world\ntoken: ");
    masker.write(b"x", &mut out).unwrap();
    assert_eq!(out, b"hello world\ntoken: s3cr3x");
    masker.write(b" s3cr3t-v", &mut out).unwrap();
    masker.write(b"alue!", &mut out).unwrap();
    assert_eq!(out, b"hello world\ntoken: s3cr3x ***!");
    masker.write(b" s3c", &mut out).unwrap();
    masker.finish(&mut out).unwrap();
    assert_eq!(out, b"hello world\ntoken: s3cr3x ***! s3c");
}

#[test]
fn a_run_reaching_into_held_bytes_is_written_at_once() {
    // `abcd` is complete, but `cd` could still start `cdef`.
    let set = MaskSet::new(["abcd", "cdef"]);
    let mut masker = StreamMasker::new(&set);
    let mut out = Vec::new();
    masker.write(b"xxabcd", &mut out).unwrap();
    assert_eq!(out, b"xx***");
    masker.write(b"ef", &mut out).unwrap();
    masker.write(b"!", &mut out).unwrap();
    assert_eq!(out, b"xx***!");
}

#[test]
fn works_through_an_arc() {
    let set = Arc::new(MaskSet::new(["shared-secret"]));
    let mut stdout = StreamMasker::new(Arc::clone(&set));
    let mut stderr = StreamMasker::new(set);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    stdout.write(b"a shared-sec", &mut out).unwrap();
    stderr.write(b"b shared-secret", &mut err).unwrap();
    stdout.write(b"ret", &mut out).unwrap();
    stdout.finish(&mut out).unwrap();
    stderr.finish(&mut err).unwrap();
    assert_eq!((out, err), (b"a ***".to_vec(), b"b ***".to_vec()));
}

#[test]
fn long_patterns_and_long_writes() {
    let jwt = format!("eyJhbGciOiJSUzI1NiJ9.{}.sig_nature", "x".repeat(900));
    let set = MaskSet::new([jwt.as_str(), "short-one"]);
    let mut text = "log line\n".repeat(5000);
    text.push_str(&jwt);
    text.push_str("\nshort-one\n");
    text.push_str(&"tail\n".repeat(100));
    let expected = text.replace(&jwt, "***").replace("short-one", "***");
    for chunk in [1, 7, 4096, 65536] {
        let mut masker = StreamMasker::new(&set);
        let mut out = Vec::new();
        for piece in text.as_bytes().chunks(chunk) {
            masker.write(piece, &mut out).unwrap();
        }
        masker.finish(&mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), expected, "chunk {chunk}");
    }
}

#[test]
fn many_secrets_use_the_large_set_path() {
    let secrets: Vec<String> = (0..2000)
        .map(|i| format!("secret-number-{i:05}-x"))
        .collect();
    let set = MaskSet::new(&secrets);
    assert!(set.len() > secrets.len());
    let text = format!("a {} b {} c", secrets[7], secrets[1999]);
    assert_eq!(set.mask(text.as_bytes()), b"a *** b *** c");
}

#[test]
fn slow_path_without_an_automaton_agrees() {
    let set = MaskSet::new(["abcdef", "defghi", "s3cr3t"]);
    let mut slow = MaskSet::from_patterns(set.patterns.clone(), Vec::new());
    slow.automaton = None;
    let text = b"abcdefghi s3cr3s3cr3t abcdeX abcdef";
    assert_eq!(slow.mask(text), set.mask(text));
    assert_eq!(trickle(&slow, text).1, set.mask(text));
}

#[test]
fn structured_secret_leaves_are_masked_one_by_one() {
    let value = r#"{"user":"app","pass":"n3sted-Pa55","hosts":["db-1.internal",7],
        "key":"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq\nhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n",
        "inner":"{\"token\":\"deep-t0ken-value\"}"}"#;
    let set = MaskSet::new([value]);
    let text = format!(
        "pass=n3sted-Pa55 host=db-1.internal user=app b64={} line=hkiG9w0BAQEFAASC token=deep-t0ken-value json={}",
        STANDARD.encode("n3sted-Pa55"),
        serde_json::to_string("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq\nhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n").unwrap(),
    );
    assert_eq!(
        String::from_utf8(set.mask(text.as_bytes())).unwrap(),
        "pass=*** host=*** user=app b64=*** line=*** token=*** json=\"***\""
    );
    // A string that holds JSON (a service-account key stored as text) is unpacked too.
    let as_text =
        serde_json::to_string(&serde_json::json!({"private_key_id": "0123abcd-id"})).unwrap();
    assert_eq!(
        MaskSet::new([as_text.as_str()]).mask(b"id 0123abcd-id"),
        b"id ***"
    );
    // Not JSON, or broken JSON: only the value itself.
    assert_eq!(
        MaskSet::new(["{not json \"abcdefgh\""]).mask(b"abcdefgh"),
        b"abcdefgh"
    );
}

/// `text` with its line breaks (`\n`, `\r\n`) left out.
fn unwrapped(text: &[u8]) -> Vec<u8> {
    text.iter()
        .copied()
        .filter(|&byte| byte != b'\n' && byte != b'\r')
        .collect()
}

fn wrap(encoded: &str, column: usize, newline: &str) -> String {
    let lines: Vec<String> = encoded
        .as_bytes()
        .chunks(column)
        .map(|line| String::from_utf8(line.to_vec()).unwrap())
        .collect();
    lines.join(newline) + newline
}

#[test]
fn wrapped_base64_is_masked_at_any_column_and_offset() {
    // 60 bytes: `base64` splits its encoding over two 76-column lines.
    let secret = "AKIA-very-long-service-credential-0123456789-abcdefghijklmno";
    let set = MaskSet::new([secret]);
    for prefix_len in [0, 1, 2, 100, 1001] {
        // A docker config.json with the secret at any offset.
        let filler = "{\"auths\":{\"registry.example.com\":{\"auth\":\"".repeat(30);
        let document = format!("{}{secret}\"}}}}}}", &filler[..prefix_len]);
        for engine in [STANDARD, URL_SAFE_NO_PAD] {
            let encoded = engine.encode(&document);
            for column in [1, 2, 3, 4, 5, 7, 16, 63, 64, 76] {
                for newline in ["\n", "\r\n", "\r\r\n"] {
                    let text = format!("begin\n{}end\n", wrap(&encoded, column, newline));
                    let masked = set.mask(text.as_bytes());
                    let shown = String::from_utf8_lossy(&masked);
                    assert!(
                        shown.starts_with("begin\n") && shown.ends_with("end\n"),
                        "{shown}"
                    );
                    assert!(shown.contains("***"), "column {column}: {shown}");
                    // The characters only the secret determines (see base64_at_every_alignment…)
                    // must not be readable even with the line breaks taken out.
                    let offset = document.find(secret).unwrap();
                    let first = (4 * offset).div_ceil(3);
                    let last = 4 * (offset + secret.len()) / 3;
                    let core = &encoded.as_bytes()[first..last];
                    assert!(
                        !contains(&unwrapped(&masked), core),
                        "column {column}, offset {offset}: {shown}"
                    );
                    assert_eq!(trickle(&set, text.as_bytes()).1, masked, "column {column}");
                }
            }
        }
    }
}

#[test]
fn a_line_ending_in_base64_is_held_only_while_it_may_go_on() {
    let secret = "wrapped-secret-value-that-spans-lines-0123456789";
    let set = MaskSet::new([secret]);
    let encoded = STANDARD.encode(secret);
    let (first, second) = encoded.split_at(20);
    let mut masker = StreamMasker::new(&set);
    let mut out = Vec::new();
    masker.write(b"plain line\n", &mut out).unwrap();
    assert_eq!(out, b"plain line\n");
    masker
        .write(format!("{first}\n").as_bytes(), &mut out)
        .unwrap();
    // The whole line could be the start of the encoding: nothing of it is written yet.
    assert_eq!(out, b"plain line\n");
    masker
        .write(format!("{second}\n").as_bytes(), &mut out)
        .unwrap();
    masker.write(b"done.\n", &mut out).unwrap();
    assert_eq!(out, b"plain line\n***\ndone.\n");
}

#[test]
fn blank_lines_after_a_base64_prefix_are_not_held_back() {
    let secret = "wrapped-secret-value-that-spans-lines-0123456789";
    let set = MaskSet::new([secret]);
    let encoded = STANDARD.encode(secret);
    // A word whose end may begin the encoding, then a long run of empty lines: an encoder never
    // writes an empty line inside an encoding, so at most a few lines are held.
    let bound = 4 * set.max_pattern_len();
    for newline in ["\n", "\r\n", "\r\r\n"] {
        let mut masker = StreamMasker::new(&set);
        let mut out = Vec::new();
        let mut input = format!("output {}", &encoded[..20]).into_bytes();
        masker.write(&input, &mut out).unwrap();
        for line in 0..100_000 {
            masker.write(newline.as_bytes(), &mut out).unwrap();
            input.extend_from_slice(newline.as_bytes());
            assert!(
                masker.held_len() <= bound && input.len() - out.len() <= bound,
                "{newline:?}, line {line}: {} bytes held, {} not written",
                masker.held_len(),
                input.len() - out.len()
            );
        }
        masker.write(b"done.\n", &mut out).unwrap();
        input.extend_from_slice(b"done.\n");
        masker.finish(&mut out).unwrap();
        assert!(
            out == input,
            "{newline:?}: the output differs from the input"
        );
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[test]
fn url_encodings_that_keep_some_characters_literal() {
    let secret = "p@ss/w+rd (x)!*'~";
    for (encoder, encoded) in [
        ("python quote()", "p%40ss/w%2Brd%20%28x%29%21%2A%27~"),
        ("python quote_plus()", "p%40ss%2Fw%2Brd+%28x%29%21%2A%27~"),
        ("encodeURIComponent", "p%40ss%2Fw%2Brd%20(x)!*'~"),
        ("encodeURI", "p@ss/w+rd%20(x)!*'~"),
        ("form encoding", "p%40ss%2Fw%2Brd+%28x%29%21*%27%7E"),
        ("go url.PathEscape", "p@ss%2Fw+rd%20%28x%29%21%2A%27~"),
        ("go url.URL path", "p@ss/w+rd%20%28x%29%21%2A%27~"),
        ("php urlencode", "p%40ss%2Fw%2Brd+%28x%29%21%2A%27%7E"),
    ] {
        let text = format!("GET https://host/?q={encoded}&next=1");
        assert_eq!(
            mask_str(&[secret], &text),
            "GET https://host/?q=***&next=1",
            "{encoder}"
        );
        let lower: String = text
            .split('%')
            .enumerate()
            .map(|(i, part)| match i {
                0 => part.to_owned(),
                _ => format!("%{}{}", part.get(..2).unwrap().to_lowercase(), &part[2..]),
            })
            .collect();
        assert_eq!(
            mask_str(&[secret], &lower),
            "GET https://host/?q=***&next=1",
            "{encoder}, lowercase hex"
        );
    }
}

#[test]
fn multi_line_values_are_masked_through_crlf_and_a_pty() {
    // Every line is under 4 bytes: only the whole value can be masked.
    let short_lines = "ab1\ncd2\nef3";
    let set = MaskSet::new([short_lines]);
    for (how, text) in [
        ("as stored", "[ab1\ncd2\nef3]"),
        ("written with CRLF", "[ab1\r\ncd2\r\nef3]"),
        ("through a pty", "[ab1\r\ncd2\r\nef3]"),
    ] {
        assert_eq!(set.mask(text.as_bytes()), b"[***]", "{how}");
    }
    // Stored with CRLF: a pty turns its `\r\n` into `\r\r\n`; a tool may print plain `\n`.
    let crlf = "ab1\r\ncd2\r\nef3";
    let set = MaskSet::new([crlf]);
    for text in [
        "[ab1\r\ncd2\r\nef3]",
        "[ab1\r\r\ncd2\r\r\nef3]",
        "[ab1\ncd2\nef3]",
    ] {
        assert_eq!(set.mask(text.as_bytes()), b"[***]", "{text:?}");
    }
}
