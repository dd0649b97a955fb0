//! A string that holds key material: tokens, unseal keys, passphrases, secret values.
//!
//! `Debug` never shows the value, the memory is zeroized on drop, and the type does not
//! implement `Serialize`, `Display` or `Clone`: putting a secret on the wire goes through
//! [`Exposed`], which has to be written out at the place it happens.

use std::fmt;

use serde::{Serialize, Serializer};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A secret string, redacted in `Debug` and wiped from memory on drop.
pub struct Secret(String);

impl Secret {
    /// Wraps a value; the caller gives up its copy.
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The secret value. Every call site is a place where the secret leaves this type.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for Secret {}

/// Serializes the wrapped secret as a plain JSON string, for request bodies only.
pub struct Exposed<'a>(pub &'a Secret);

impl Serialize for Exposed<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.expose())
    }
}

impl fmt::Debug for Exposed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let secret = Secret::new("hunter2".to_owned());
        assert_eq!(format!("{secret:?}"), "[REDACTED]");
        assert_eq!(format!("{:?}", Some(&secret)), "Some([REDACTED])");
        assert_eq!(format!("{:?}", Exposed(&secret)), "[REDACTED]");
    }

    #[test]
    fn exposed_serializes_the_value() {
        let secret = Secret::new("s3\"cret".to_owned());
        let json = serde_json::to_string(&Exposed(&secret)).expect("serializes");
        assert_eq!(json, r#""s3\"cret""#);
    }
}
