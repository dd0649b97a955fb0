//! Capabilities (`read`, `update`, …) and small bit sets of them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One thing a rule can allow on a path, as in Vault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    /// Write to a path that does not exist yet.
    Create,
    /// Read (`GET`).
    Read,
    /// Write to a path that exists (`POST`/`PUT`).
    Update,
    /// Delete.
    Delete,
    /// List keys (`LIST`).
    List,
    /// Partial update (`PATCH`).
    Patch,
    /// Use root-protected endpoints.
    Sudo,
    /// Deny everything on the path; overrides every other capability.
    Deny,
}

impl Capability {
    /// Every capability, in the order documents usually list them.
    pub const ALL: [Capability; 8] = [
        Capability::Create,
        Capability::Read,
        Capability::Update,
        Capability::Delete,
        Capability::List,
        Capability::Patch,
        Capability::Sudo,
        Capability::Deny,
    ];

    /// The name used in documents and on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Capability::Create => "create",
            Capability::Read => "read",
            Capability::Update => "update",
            Capability::Delete => "delete",
            Capability::List => "list",
            Capability::Patch => "patch",
            Capability::Sudo => "sudo",
            Capability::Deny => "deny",
        }
    }

    const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of capabilities. Reads and writes as a list of names (`["read", "list"]`).
///
/// A set holding [`Capability::Deny`] allows nothing, whatever else it holds; see
/// [`CapabilitySet::allows`].
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CapabilitySet(u8);

impl CapabilitySet {
    /// No capability at all.
    pub const EMPTY: CapabilitySet = CapabilitySet(0);
    /// Just `deny`: what a denied or unmatched path gets.
    pub const DENY: CapabilitySet = CapabilitySet(Capability::Deny.bit());
    /// Every capability but `deny`: what the root policy gets everywhere.
    pub const ALL: CapabilitySet = CapabilitySet(!Capability::Deny.bit());

    /// Whether `capability` is in the set (as written, even if the set also holds `deny`).
    pub const fn contains(self, capability: Capability) -> bool {
        self.0 & capability.bit() != 0
    }

    /// Whether the set grants `capability`: it holds it and does not hold `deny`.
    pub const fn allows(self, capability: Capability) -> bool {
        !self.is_denied() && self.contains(capability)
    }

    /// Whether the set holds `deny` (so it allows nothing).
    pub const fn is_denied(self) -> bool {
        self.contains(Capability::Deny)
    }

    /// Whether the set holds nothing.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Adds `capability`.
    pub fn insert(&mut self, capability: Capability) {
        self.0 |= capability.bit();
    }

    /// The union of both sets.
    #[must_use]
    pub const fn union(self, other: CapabilitySet) -> CapabilitySet {
        CapabilitySet(self.0 | other.0)
    }

    /// The capabilities in the set, in [`Capability::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL
            .into_iter()
            .filter(move |c| self.contains(*c))
    }
}

impl FromIterator<Capability> for CapabilitySet {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        let mut set = CapabilitySet::EMPTY;
        for capability in iter {
            set.insert(capability);
        }
        set
    }
}

impl<const N: usize> From<[Capability; N]> for CapabilitySet {
    fn from(capabilities: [Capability; N]) -> Self {
        capabilities.into_iter().collect()
    }
}

impl fmt::Debug for CapabilitySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for CapabilitySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, capability) in self.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            f.write_str(capability.as_str())?;
        }
        Ok(())
    }
}

impl Serialize for CapabilitySet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for CapabilitySet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Vec::<Capability>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_overrides_everything() {
        let set = CapabilitySet::from([Capability::Read, Capability::Deny]);
        assert!(set.contains(Capability::Read));
        assert!(!set.allows(Capability::Read));
        assert!(CapabilitySet::ALL.allows(Capability::Sudo));
        assert!(!CapabilitySet::ALL.is_denied());
    }

    #[test]
    fn serde_round_trip_uses_names() {
        let set = CapabilitySet::from([Capability::List, Capability::Read]);
        let json = serde_json::to_string(&set).expect("serializes");
        assert_eq!(json, r#"["read","list"]"#);
        let back: CapabilitySet = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, set);
        let err = serde_json::from_str::<CapabilitySet>(r#"["reed"]"#).expect_err("unknown");
        assert!(err.to_string().contains("reed"), "{err}");
    }

    #[test]
    fn display_lists_names() {
        let set = CapabilitySet::from([Capability::Update, Capability::Create]);
        assert_eq!(set.to_string(), "create, update");
    }
}
