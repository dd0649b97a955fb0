//! Reading user input: `K=V` arguments, secrets from stdin and files, version lists,
//! `key=value` pairs.
//!
//! Error messages here never repeat an argument that might be a secret: a malformed `K=V`
//! is named by its position, not its text.

use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use zeroize::{Zeroize, Zeroizing};

use crate::error::Error;
use crate::secret::Secret;

/// Longest single line read from stdin (keys, tokens, passphrases).
const MAX_LINE_BYTES: u64 = 64 * 1024;

/// Where the value of one `K=…` argument comes from.
#[derive(Debug)]
pub enum ValueSource {
    /// `K=V`: the value was on the command line.
    Literal(Secret),
    /// `K=@file`: the exact content of a file.
    File(PathBuf),
    /// `K=-`: stdin.
    Stdin,
}

/// One parsed `K=V`, `K=@file` or `K=-` argument.
#[derive(Debug)]
pub struct DataArg {
    /// The field name.
    pub key: String,
    /// Where its value comes from.
    pub source: ValueSource,
}

/// Parses `kv put` data arguments. Rejects a missing `=`, an empty key, duplicate keys and
/// more than one `K=-`.
pub fn parse_data_args(args: Vec<String>) -> Result<Vec<DataArg>, Error> {
    let action = "parsing the data arguments";
    let mut parsed: Vec<DataArg> = Vec::with_capacity(args.len());
    let mut stdin_key: Option<String> = None;
    for (index, mut arg) in args.into_iter().enumerate() {
        let position = index + 1;
        let Some((key, value)) = arg.split_once('=') else {
            arg.zeroize();
            return Err(Error::failed(
                action,
                format!("data argument {position} has no '='"),
                "write each field as KEY=VALUE, KEY=@FILE or KEY=- (value from stdin)",
            ));
        };
        if key.is_empty() {
            arg.zeroize();
            return Err(Error::failed(
                action,
                format!("data argument {position} has an empty key"),
                "write each field as KEY=VALUE, KEY=@FILE or KEY=-",
            ));
        }
        let key = key.to_owned();
        let source = match value {
            "-" => {
                if let Some(first) = &stdin_key {
                    return Err(Error::failed(
                        action,
                        format!("both {first:?} and {key:?} ask for stdin"),
                        "only one field can be read from stdin; use KEY=@FILE for the others",
                    ));
                }
                stdin_key = Some(key.clone());
                ValueSource::Stdin
            }
            file if file.starts_with('@') => {
                let name = &file[1..];
                if name.is_empty() {
                    return Err(Error::failed(
                        action,
                        format!("field {key:?} names no file after '@'"),
                        "write KEY=@PATH",
                    ));
                }
                ValueSource::File(PathBuf::from(name))
            }
            literal => ValueSource::Literal(Secret::new(literal.to_owned())),
        };
        arg.zeroize();
        if parsed.iter().any(|earlier| earlier.key == key) {
            return Err(Error::failed(
                action,
                format!("field {key:?} is given twice"),
                "give each field once",
            ));
        }
        parsed.push(DataArg { key, source });
    }
    if parsed.is_empty() {
        return Err(Error::failed(
            action,
            "no data given",
            "add at least one KEY=VALUE, KEY=@FILE or KEY=-",
        ));
    }
    Ok(parsed)
}

/// Reads every value: files exactly as they are, stdin up to EOF minus one trailing newline.
pub fn load_data(
    args: Vec<DataArg>,
    stdin: &mut dyn Read,
) -> Result<BTreeMap<String, Secret>, Error> {
    let mut data = BTreeMap::new();
    for DataArg { key, source } in args {
        let value = match source {
            ValueSource::Literal(value) => value,
            ValueSource::File(path) => read_secret_file(&path, &format!("reading field {key:?}"))?,
            ValueSource::Stdin => read_value_from_stdin(stdin, &key)?,
        };
        data.insert(key, value);
    }
    Ok(data)
}

fn read_value_from_stdin(stdin: &mut dyn Read, key: &str) -> Result<Secret, Error> {
    let action = format!("reading field {key:?} from stdin");
    let mut bytes = Zeroizing::new(Vec::new());
    stdin
        .read_to_end(&mut bytes)
        .map_err(|e| Error::failed(&action, e.to_string(), "pipe the value into vaultctl"))?;
    // `echo "$VALUE" | vaultctl kv put …` must store $VALUE, not $VALUE plus a newline.
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    utf8_secret(std::mem::take(&mut *bytes), &action)
}

/// Reads a whole file as a secret string (content kept exactly).
pub fn read_secret_file(path: &Path, action: &str) -> Result<Secret, Error> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::failed(
            action,
            format!("cannot read {}: {e}", path.display()),
            "check the file name and its permissions",
        )
    })?;
    utf8_secret(bytes, action)
}

fn utf8_secret(bytes: Vec<u8>, action: &str) -> Result<Secret, Error> {
    String::from_utf8(bytes).map(Secret::new).map_err(|e| {
        e.into_bytes().zeroize();
        Error::failed(
            action,
            "the value is not UTF-8 text",
            "base64-encode binary data before storing it",
        )
    })
}

/// How a single-line secret is cleaned up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trim {
    /// Drop only the line terminator (passphrases may have significant spaces).
    LineEnd,
    /// Drop surrounding whitespace (keys and tokens have none).
    Whitespace,
}

/// Reads one line (a key, a token, a passphrase) and refuses an empty one.
pub fn read_line_secret(reader: &mut dyn BufRead, trim: Trim, what: &str) -> Result<Secret, Error> {
    let action = format!("reading the {what} from stdin");
    let mut bytes = Zeroizing::new(Vec::new());
    reader
        .take(MAX_LINE_BYTES)
        .read_until(b'\n', &mut bytes)
        .map_err(|e| Error::failed(&action, e.to_string(), format!("pipe the {what} in")))?;
    let secret = utf8_secret(std::mem::take(&mut *bytes), &action)?;
    let cleaned = match trim {
        Trim::LineEnd => secret.expose().trim_end_matches(['\n', '\r']),
        Trim::Whitespace => secret.expose().trim(),
    };
    if cleaned.is_empty() {
        return Err(Error::failed(
            action,
            format!("no {what} on stdin"),
            format!("pipe the {what} in, one line"),
        ));
    }
    Ok(Secret::new(cleaned.to_owned()))
}

/// A validated, sorted, de-duplicated list of KV versions (`1,2,5`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionList(pub Vec<u64>);

/// clap value parser for `--versions 1,2`.
pub fn parse_versions(raw: &str) -> Result<VersionList, String> {
    let mut versions = Vec::new();
    for part in raw.split(',') {
        let part = part.trim();
        let version: u64 = part
            .parse()
            .map_err(|_| format!("{part:?} is not a version number (expected e.g. 1,2,3)"))?;
        if version == 0 {
            return Err("versions start at 1".to_owned());
        }
        versions.push(version);
    }
    versions.sort_unstable();
    versions.dedup();
    Ok(VersionList(versions))
}

/// clap value parser for non-secret `key=value` pairs (`--metadata`, `--custom-metadata`).
pub fn parse_key_value(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        Some(_) => Err("the key before '=' is empty".to_owned()),
        None => Err("expected KEY=VALUE".to_owned()),
    }
}

/// Collects `key=value` pairs into a map, refusing duplicate keys.
pub fn pairs_to_map(
    pairs: Vec<(String, String)>,
    flag: &str,
) -> Result<BTreeMap<String, String>, Error> {
    let mut map = BTreeMap::new();
    for (key, value) in pairs {
        if map.contains_key(&key) {
            return Err(Error::failed(
                format!("parsing {flag}"),
                format!("key {key:?} is given twice"),
                "give each key once",
            ));
        }
        map.insert(key, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn data_args_forms() {
        let parsed = parse_data_args(args(&["a=1", "b=@/tmp/f", "c=-", "d=x=y", "e="]))
            .expect("valid arguments");
        assert_eq!(parsed.len(), 5);
        assert!(matches!(&parsed[0].source, ValueSource::Literal(v) if v.expose() == "1"));
        assert!(matches!(&parsed[1].source, ValueSource::File(p) if p == Path::new("/tmp/f")));
        assert!(matches!(parsed[2].source, ValueSource::Stdin));
        assert!(matches!(&parsed[3].source, ValueSource::Literal(v) if v.expose() == "x=y"));
        assert!(matches!(&parsed[4].source, ValueSource::Literal(v) if v.is_empty()));
    }

    #[test]
    fn data_args_errors_never_echo_the_argument() {
        let err = parse_data_args(args(&["ok=1", "hunter2"])).expect_err("no '='");
        let text = err.to_string();
        assert!(text.contains("argument 2"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(parse_data_args(args(&["=v"])).is_err());
        assert!(parse_data_args(args(&[])).is_err());
        assert!(parse_data_args(args(&["a=1", "a=2"])).is_err());
        assert!(parse_data_args(args(&["a=@"])).is_err());
    }

    #[test]
    fn only_one_stdin_value() {
        let err = parse_data_args(args(&["a=-", "b=-"])).expect_err("two stdin values");
        assert!(err.to_string().contains("stdin"));
    }

    #[test]
    fn stdin_value_loses_one_trailing_newline() {
        let parsed = parse_data_args(args(&["k=-"])).expect("valid");
        let mut stdin = Cursor::new(b"line1\nline2\n\n".to_vec());
        let data = load_data(parsed, &mut stdin).expect("loads");
        assert_eq!(data["k"].expose(), "line1\nline2\n");

        let parsed = parse_data_args(args(&["k=-"])).expect("valid");
        let mut stdin = Cursor::new(b"s3cret\r\n".to_vec());
        assert_eq!(
            load_data(parsed, &mut stdin).expect("loads")["k"].expose(),
            "s3cret"
        );
    }

    #[test]
    fn file_value_is_exact() {
        let path = std::env::temp_dir().join(format!("vaultctl-input-{}", std::process::id()));
        std::fs::write(&path, b"  pem\n\n").expect("write temp file");
        let parsed = parse_data_args(vec![format!("k=@{}", path.display())]).expect("valid");
        let data = load_data(parsed, &mut std::io::empty()).expect("loads");
        assert_eq!(data["k"].expose(), "  pem\n\n");
        std::fs::remove_file(&path).expect("remove temp file");
    }

    #[test]
    fn lines_from_stdin() {
        let mut input = Cursor::new(b"  abcd  \nrest".to_vec());
        let key = read_line_secret(&mut input, Trim::Whitespace, "unseal key").expect("a line");
        assert_eq!(key.expose(), "abcd");
        let mut input = Cursor::new(b" pass phrase \r\n".to_vec());
        let pass = read_line_secret(&mut input, Trim::LineEnd, "passphrase").expect("a line");
        assert_eq!(pass.expose(), " pass phrase ");
        let mut input = Cursor::new(b"\n".to_vec());
        assert!(read_line_secret(&mut input, Trim::Whitespace, "unseal key").is_err());
        assert!(read_line_secret(&mut std::io::empty(), Trim::LineEnd, "passphrase").is_err());
    }

    #[test]
    fn version_lists() {
        assert_eq!(parse_versions("3,1,2,1"), Ok(VersionList(vec![1, 2, 3])));
        assert_eq!(parse_versions("7"), Ok(VersionList(vec![7])));
        assert_eq!(parse_versions(" 1 , 2 "), Ok(VersionList(vec![1, 2])));
        assert!(parse_versions("").is_err());
        assert!(parse_versions("1,,2").is_err());
        assert!(parse_versions("0").is_err());
        assert!(parse_versions("-1").is_err());
        assert!(parse_versions("one").is_err());
    }

    #[test]
    fn key_value_pairs() {
        assert_eq!(
            parse_key_value("team=a=b"),
            Ok(("team".to_owned(), "a=b".to_owned()))
        );
        assert_eq!(parse_key_value("k="), Ok(("k".to_owned(), String::new())));
        assert!(parse_key_value("=v").is_err());
        assert!(parse_key_value("kv").is_err());
        let dup = vec![
            ("a".to_owned(), "1".to_owned()),
            ("a".to_owned(), "2".to_owned()),
        ];
        assert!(pairs_to_map(dup, "--metadata").is_err());
    }
}
