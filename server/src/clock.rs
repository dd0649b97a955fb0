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
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339_at(now.as_secs(), now.subsec_nanos())
}

/// [`rfc3339`] of a Unix time, with the date and time of day formatted once per second and
/// thread (every audit line has two timestamps; the calendar arithmetic is most of their cost).
fn rfc3339_at(secs: u64, nanos: u32) -> String {
    use std::cell::RefCell;
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let mut text = SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != secs {
            let whole = rfc3339_from_unix(secs);
            // "…:SS" without the final "Z".
            let prefix = whole.strip_suffix('Z').unwrap_or(&whole).to_owned();
            *cached = (secs, prefix);
        }
        let mut text = String::with_capacity(cached.1.len() + 11);
        text.push_str(&cached.1);
        text
    });
    if nanos != 0 {
        // As the `time` crate writes it: the fraction without trailing zeros.
        let mut digits = [b'0'; 9];
        let mut rest = nanos;
        for digit in digits.iter_mut().rev() {
            *digit = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        let len = 9 - digits.iter().rev().take_while(|d| **d == b'0').count();
        text.push('.');
        text.extend(digits[..len].iter().map(|d| char::from(*d)));
    }
    text.push('Z');
    text
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
    fn fast_timestamps_match_the_time_crate() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut cases = vec![
            (0, 0),
            (1_796_209_486, 0),
            (1_796_209_486, 1),
            (1_796_209_486, 999_999_999),
        ];
        for _ in 0..2000 {
            let secs = next() % 4_102_444_800;
            let nanos = match next() % 4 {
                0 => 0,
                1 => (next() % 1000) as u32 * 1_000_000,
                2 => (next() % 1_000_000) as u32 * 1000,
                _ => (next() % 1_000_000_000) as u32,
            };
            cases.push((secs, nanos));
            // The same second again, as the per-thread cache sees it.
            cases.push((secs, (next() % 1_000_000_000) as u32));
        }
        for (secs, nanos) in cases {
            let expected = rfc3339(
                time::OffsetDateTime::from_unix_timestamp(secs as i64).expect("in range")
                    + time::Duration::nanoseconds(i64::from(nanos)),
            );
            assert_eq!(rfc3339_at(secs, nanos), expected, "{secs}.{nanos:09}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration(&json!(30)), Some(30));
        assert_eq!(parse_duration(&json!("90")), Some(90));
        assert_eq!(parse_duration(&json!("1h30m")), Some(5400));
        assert_eq!(parse_duration(&json!("soon")), None);
        assert_eq!(parse_duration(&json!(-1)), None);
    }
}
