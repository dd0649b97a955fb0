//! JSON with unique member names. RFC 7519 §4 lets a JWT parser refuse duplicate claim names,
//! and we do, in the header and the payload at every depth: a verifier that keeps the last
//! duplicate while another component (a proxy, a log pipeline, a second parser) keeps the
//! first would see different claims for the same signed bytes.

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;

/// Parses `bytes` as JSON only to check that no object repeats a member name.
pub(super) fn check_unique_members(bytes: &[u8]) -> Result<(), serde_json::Error> {
    serde_json::from_slice::<Unique>(bytes).map(|_| ())
}

/// Accepts any JSON value whose objects have unique member names.
struct Unique;

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_unit<E>(self) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
        while seq.next_element::<Unique>()?.is_some() {}
        Ok(Unique)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
        let mut names = HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if !names.insert(name) {
                // The name itself is attacker-chosen and stays out of the message.
                return Err(de::Error::custom("duplicate member name"));
            }
            map.next_value::<Unique>()?;
        }
        Ok(Unique)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused_at_any_depth() {
        assert!(check_unique_members(br#"{"a":1,"b":{"c":[1,{"d":2}]}}"#).is_ok());
        assert!(check_unique_members(br#"{"sub":"x","sub":"y"}"#).is_err());
        assert!(check_unique_members(br#"{"a":{"b":1,"b":2}}"#).is_err());
        assert!(check_unique_members(br#"[{"k":1,"k":1}]"#).is_err());
        // Escapes name the same member: "s\u0075b" is "sub".
        assert!(check_unique_members(br#"{"sub":"x","s\u0075b":"y"}"#).is_err());
        assert!(check_unique_members(b"{").is_err());
    }
}
