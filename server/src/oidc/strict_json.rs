//! JSON with unique member names. RFC 7519 §4 lets a JWT parser refuse duplicate claim names,
//! and we do, in the header and the payload at every depth: a verifier that keeps the last
//! duplicate while another component (a proxy, a log pipeline, a second parser) keeps the
//! first would see different claims for the same signed bytes.

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses `bytes` as JSON, refusing any object that repeats a member name, and the member names
/// serde_json reserves for its own markers (raw values, arbitrary-precision numbers), which
/// its `Value` parser would expand. One pass: otherwise the value it returns is what
/// `serde_json::from_slice::<Value>` returns for the same bytes.
pub(super) fn parse(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice::<Unique>(bytes).map(|unique| unique.0)
}

/// A JSON value whose objects have unique member names.
struct Unique(Value);

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

    fn visit_bool<E>(self, v: bool) -> Result<Unique, E> {
        Ok(Unique(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Unique, E> {
        Ok(Unique(Value::Number(v.into())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Unique, E> {
        Ok(Unique(Value::Number(v.into())))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Unique, E> {
        Ok(Unique(
            Number::from_f64(v).map_or(Value::Null, Value::Number),
        ))
    }
    fn visit_str<E>(self, v: &str) -> Result<Unique, E> {
        Ok(Unique(Value::String(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Unique, E> {
        Ok(Unique(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<Unique, E> {
        Ok(Unique(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
        let mut items = Vec::new();
        while let Some(Unique(item)) = seq.next_element::<Unique>()? {
            items.push(item);
        }
        Ok(Unique(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if name.starts_with("$serde_json::private::") {
                return Err(de::Error::custom("reserved member name"));
            }
            if members.contains_key(&name) {
                // The name itself is attacker-chosen and stays out of the message.
                return Err(de::Error::custom("duplicate member name"));
            }
            let Unique(value) = map.next_value::<Unique>()?;
            members.insert(name, value);
        }
        Ok(Unique(Value::Object(members)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused_at_any_depth() {
        assert!(parse(br#"{"a":1,"b":{"c":[1,{"d":2}]}}"#).is_ok());
        assert!(parse(br#"{"sub":"x","sub":"y"}"#).is_err());
        assert!(parse(br#"{"a":{"b":1,"b":2}}"#).is_err());
        assert!(parse(br#"[{"k":1,"k":1}]"#).is_err());
        // Escapes name the same member: "s\u0075b" is "sub".
        assert!(parse(br#"{"sub":"x","s\u0075b":"y"}"#).is_err());
        assert!(parse(b"{").is_err());
        assert!(parse(br#"{"a":1} x"#).is_err(), "trailing input");
        // serde_json's own markers are refused, not expanded into another value.
        assert!(parse(br#"{"x":{"$serde_json::private::RawValue":"[1]"}}"#).is_err());
        assert!(parse(br#"{"$serde_json::private::Number":"1"}"#).is_err());
    }

    #[test]
    fn the_value_is_what_serde_json_parses() {
        for text in [
            r#"{"iss":"https://t.example","aud":["a","b"],"exp":1700000000,"iat":-5,"f":1.5}"#,
            r#"{"big":18446744073709551615,"neg":-9223372036854775808,"e":1e300,"z":0.0}"#,
            r#"{"esc":"a\"b\\c\u00e9\ud83d\ude00","nested":{"x":[null,true,false,[],{}]}}"#,
            r#"[1,"two",3.25]"#,
            r#""just a string""#,
            "null",
        ] {
            let expected: Value = serde_json::from_str(text).expect("valid JSON");
            assert_eq!(parse(text.as_bytes()).expect("parses"), expected, "{text}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(
            parse(deep.as_bytes()).is_err(),
            "serde_json's recursion limit holds"
        );
    }
}
