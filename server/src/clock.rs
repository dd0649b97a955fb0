//! Time helpers: Unix seconds and Vault's RFC 3339 timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Current time as RFC 3339 with nanoseconds, as Vault writes `created_time`.
pub(crate) fn rfc3339_now() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

pub(crate) fn rfc3339_from_unix(secs: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .map(rfc3339)
        .unwrap_or_default()
}

/// Unix seconds of an RFC 3339 timestamp.
pub(crate) fn unix_from_rfc3339(text: &str) -> Option<u64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(|t| u64::try_from(t.unix_timestamp()).ok())
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Parses a Vault duration: an integer number of seconds, or a Go-style duration like `1h30m`.
pub(crate) fn parse_duration(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) if s.is_empty() => Some(0),
        serde_json::Value::String(s) => s
            .parse::<u64>()
            .ok()
            .or_else(|| humantime::parse_duration(s).ok().map(|d| d.as_secs())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations() {
        assert_eq!(parse_duration(&json!(30)), Some(30));
        assert_eq!(parse_duration(&json!("90")), Some(90));
        assert_eq!(parse_duration(&json!("1h30m")), Some(5400));
        assert_eq!(parse_duration(&json!("soon")), None);
        assert_eq!(parse_duration(&json!(-1)), None);
    }
}
