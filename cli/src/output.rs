//! Printing results: aligned `key  value` tables for people, pretty JSON for scripts.

use std::io::{self, Write};

use clap::ValueEnum;
use serde_json::Value;

/// `--format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned `key  value` lines.
    #[default]
    Table,
    /// Pretty-printed JSON of the response data.
    Json,
}

/// What `--format` accepts: `table` and `json` everywhere; `vaultctl env` also takes
/// `dotenv`, `shell` and `github` (and defaults to `dotenv`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Aligned `key  value` lines.
    Table,
    /// JSON.
    Json,
    /// `NAME="value"` lines (vaultctl env).
    Dotenv,
    /// `export NAME='value'` lines (vaultctl env).
    Shell,
    /// Append to $GITHUB_ENV after registering masks (vaultctl env).
    Github,
}

/// Rows of `key  value`, printed with the values aligned.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<(String, String)>,
}

impl Table {
    /// An empty table.
    pub fn new() -> Self {
        Table::default()
    }

    /// Adds one row with a ready-made value.
    pub fn row(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.rows.push((key.into(), value.into()));
        self
    }

    /// Adds a JSON value; non-empty objects are flattened into `key.sub` rows.
    pub fn value(&mut self, key: &str, value: &Value) -> &mut Self {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (sub, inner) in map {
                    self.value(&format!("{key}.{sub}"), inner);
                }
            }
            other => {
                self.rows.push((key.to_owned(), cell(other)));
            }
        }
        self
    }

    /// Adds every field of an object: the `first` ones in that order, then the rest sorted.
    pub fn object(&mut self, object: &Value, first: &[&str]) -> &mut Self {
        let Some(map) = object.as_object() else {
            return self;
        };
        for key in first {
            if let Some(value) = map.get(*key) {
                self.value(key, value);
            }
        }
        for (key, value) in map {
            if !first.contains(&key.as_str()) {
                self.value(key, value);
            }
        }
        self
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Writes the rows, keys padded to a common width.
    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let width = self
            .rows
            .iter()
            .map(|(key, _)| key.chars().count())
            .max()
            .unwrap_or(0);
        let indent = format!("\n{:width$}  ", "");
        for (key, value) in &self.rows {
            // Continuation lines of multi-line values stay in the value column.
            let value = value.replace('\n', &indent);
            writeln!(out, "{key:<width$}  {value}")?;
        }
        Ok(())
    }
}

/// A JSON value as a table cell: strings bare, lists of scalars comma-separated, `null` as
/// `n/a`, anything else as compact JSON.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "n/a".to_owned(),
        Value::String(text) => text.clone(),
        Value::Array(items) if items.iter().all(is_scalar) => {
            items.iter().map(cell).collect::<Vec<_>>().join(",")
        }
        other => other.to_string(),
    }
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Array(_) | Value::Object(_) | Value::Null)
}

/// Writes pretty JSON and a newline.
pub fn write_json(out: &mut dyn Write, value: &Value) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)
}

/// Seconds as `1h30m`, `15m`, `45s`; `0` means no expiry.
pub fn duration(seconds: u64) -> String {
    if seconds == 0 {
        return "never expires".to_owned();
    }
    let (hours, minutes, secs) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    let mut text = String::new();
    if hours > 0 {
        text.push_str(&format!("{hours}h"));
    }
    if minutes > 0 {
        text.push_str(&format!("{minutes}m"));
    }
    if secs > 0 {
        text.push_str(&format!("{secs}s"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(table: &Table) -> String {
        let mut out = Vec::new();
        table.write(&mut out).expect("writes to memory");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn aligned_and_flattened() {
        let mut table = Table::new();
        table.object(
            &json!({"b": 1, "sealed": false, "meta": {"repo": "acme/api"}, "policies": ["a", "b"], "x": null}),
            &["sealed"],
        );
        assert_eq!(
            render(&table),
            "sealed     false\nb          1\nmeta.repo  acme/api\npolicies   a,b\nx          n/a\n"
        );
    }

    #[test]
    fn multi_line_values_stay_aligned() {
        let mut table = Table::new();
        table.row("key", "a\nb").row("k", "c");
        assert_eq!(render(&table), "key  a\n     b\nk    c\n");
    }

    #[test]
    fn cells() {
        assert_eq!(cell(&json!({})), "{}");
        assert_eq!(cell(&json!([{"a": 1}])), r#"[{"a":1}]"#);
        assert_eq!(cell(&json!("raw")), "raw");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(3600), "1h");
        assert_eq!(duration(5400), "1h30m");
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(0), "never expires");
    }
}
