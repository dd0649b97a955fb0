//! Durations written as human strings (`"15m"`, `"1h30m"`) in documents and JSON.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A [`Duration`] that reads and writes as a human string such as `"15m"` or `"1h 30m"`.
///
/// Bare numbers are rejected: `ttl = 900` could mean seconds or minutes, and a string says which.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(Duration);

impl HumanDuration {
    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    /// Parses `"15m"`, `"1h30m"`, `"90s"`, `"2h 5m"`, ….
    pub fn parse(text: &str) -> Result<Self, String> {
        humantime::parse_duration(text.trim())
            .map(Self)
            .map_err(|err| {
                format!(
                    "invalid duration {text:?} ({err}); write it like \"15m\", \"1h30m\" or \"90s\""
                )
            })
    }

    /// The duration.
    pub const fn as_duration(self) -> Duration {
        self.0
    }

    /// Whole seconds (sub-second parts are dropped).
    pub const fn as_secs(self) -> u64 {
        self.0.as_secs()
    }
}

impl From<Duration> for HumanDuration {
    fn from(duration: Duration) -> Self {
        Self(duration)
    }
}

impl From<HumanDuration> for Duration {
    fn from(duration: HumanDuration) -> Self {
        duration.0
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = HumanDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"15m\"")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<HumanDuration, E> {
                HumanDuration::parse(text).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_round_trip() {
        for text in ["15m", "1h", "1h 30m", "90s", "2days"] {
            let parsed = HumanDuration::parse(text).expect("valid duration");
            let again = HumanDuration::parse(&parsed.to_string()).expect("printed form parses");
            assert_eq!(parsed, again);
        }
        assert_eq!(
            HumanDuration::parse("1h30m"),
            Ok(HumanDuration::from_secs(5400))
        );
    }

    #[test]
    fn rejects_bare_numbers_and_garbage() {
        assert!(HumanDuration::parse("900").is_err());
        assert!(HumanDuration::parse("soon").is_err());
        let err = serde_json::from_str::<HumanDuration>("900").expect_err("number rejected");
        assert!(err.to_string().contains("duration string"), "{err}");
    }

    #[test]
    fn serializes_as_string() {
        let json = serde_json::to_string(&HumanDuration::from_secs(900)).expect("serializes");
        assert_eq!(json, "\"15m\"");
    }
}
