//! Path policies (`[policies.NAME]`) and the built-in `root` and `default` policies.

use serde::{Deserialize, Serialize};

use crate::capability::{Capability, CapabilitySet};
use crate::error::PolicyError;
use crate::paths::PathPattern;

/// Names of the policies every server has without a document defining them.
pub const BUILTIN_POLICIES: [&str; 2] = ["default", "root"];

/// A named list of path rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The rules; see [`crate::paths`] for how one is chosen per path.
    pub rules: Vec<Rule>,
    /// Set only on the built-in `root` policy; never read from or written to a document.
    #[serde(skip)]
    root: bool,
}

/// One `{ path = "…", capabilities = […] }` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Exact path, trailing-`*` prefix, or with `+` segments.
    pub path: PathPattern,
    /// What the rule allows; `deny` in it denies everything on the paths it is chosen for.
    pub capabilities: CapabilitySet,
}

impl Policy {
    /// Whether any rule's path is templated (its ACL depends on the token's claims).
    pub fn is_templated(&self) -> bool {
        self.rules.iter().any(|rule| rule.path.is_templated())
    }

    /// A policy with these rules.
    pub fn new(rules: Vec<Rule>) -> Self {
        Policy { rules, root: false }
    }

    /// The built-in policy called `name`, if there is one:
    ///
    /// - `root` allows everything on every path (its one rule, `*` with every capability, is
    ///   shown for display; the ACL treats it as a blanket allow that no deny can narrow);
    /// - `default` lets a token look itself up (`auth/token/lookup-self`: read), renew itself
    ///   (`auth/token/renew-self`: update) and revoke itself (`auth/token/revoke-self`: update).
    pub fn builtin(name: &str) -> Option<Policy> {
        match name {
            "root" => Some(Policy {
                rules: vec![Rule {
                    path: pattern("*"),
                    capabilities: CapabilitySet::ALL,
                }],
                root: true,
            }),
            "default" => Some(Policy::new(vec![
                Rule {
                    path: pattern("auth/token/lookup-self"),
                    capabilities: CapabilitySet::from([Capability::Read]),
                },
                Rule {
                    path: pattern("auth/token/renew-self"),
                    capabilities: CapabilitySet::from([Capability::Update]),
                },
                Rule {
                    path: pattern("auth/token/revoke-self"),
                    capabilities: CapabilitySet::from([Capability::Update]),
                },
            ])),
            _ => None,
        }
    }

    /// Whether this is the built-in root policy.
    pub fn is_root(&self) -> bool {
        self.root
    }

    /// Checks what the schema cannot: at least one rule, and at least one capability per rule.
    pub(crate) fn check(&self, name: &str) -> Result<(), PolicyError> {
        let invalid = |field: String, reason: &str| PolicyError::InvalidField {
            table: "policies",
            name: name.to_owned(),
            field,
            reason: reason.to_owned(),
        };
        if self.rules.is_empty() {
            return Err(invalid(
                "rules".into(),
                "a policy needs at least one rule; an empty policy grants nothing",
            ));
        }
        for (index, rule) in self.rules.iter().enumerate() {
            if rule.capabilities.is_empty() {
                return Err(invalid(
                    format!("rules[{index}].capabilities"),
                    "list at least one capability (or `deny`)",
                ));
            }
            if rule.path.is_templated() && rule.capabilities.is_denied() {
                return Err(invalid(
                    format!("rules[{index}].path"),
                    "a deny rule cannot be templated: for a claim it cannot use, it would deny nothing",
                ));
            }
        }
        Ok(())
    }

    /// Whether the policy grants a write (`create`, `update`, `delete`, `patch`, `sudo`)
    /// anywhere, or `read`/`list` under a trailing `*`. Used by the lint.
    pub(crate) fn is_privileged(&self) -> bool {
        const WRITES: [Capability; 5] = [
            Capability::Create,
            Capability::Update,
            Capability::Delete,
            Capability::Patch,
            Capability::Sudo,
        ];
        self.root
            || self.rules.iter().any(|rule| {
                let caps = rule.capabilities;
                !caps.is_denied()
                    && (WRITES.iter().any(|c| caps.contains(*c))
                        || (rule.path.is_prefix() && caps.contains(Capability::Read)))
            })
    }
}

/// The built-in patterns are constants; `builtins_exist_and_others_do_not` re-validates them.
fn pattern(text: &'static str) -> PathPattern {
    PathPattern::trusted(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_exist_and_others_do_not() {
        for name in BUILTIN_POLICIES {
            let policy = Policy::builtin(name).expect("built in");
            assert!(policy.check(name).is_ok());
            for rule in &policy.rules {
                assert!(PathPattern::new(rule.path.as_str()).is_ok());
            }
        }
        assert!(Policy::builtin("root").is_some_and(|p| p.is_root()));
        assert!(Policy::builtin("default").is_some_and(|p| !p.is_root()));
        assert!(Policy::builtin("admin").is_none());
    }

    #[test]
    fn privileged_detection() {
        let read_exact: Policy =
            toml::from_str(r#"rules = [{ path = "secret/data/a", capabilities = ["read"] }]"#)
                .expect("parses");
        assert!(!read_exact.is_privileged());
        let read_prefix: Policy =
            toml::from_str(r#"rules = [{ path = "secret/data/*", capabilities = ["read"] }]"#)
                .expect("parses");
        assert!(read_prefix.is_privileged());
        let write: Policy =
            toml::from_str(r#"rules = [{ path = "secret/data/a", capabilities = ["update"] }]"#)
                .expect("parses");
        assert!(write.is_privileged());
        let denied: Policy = toml::from_str(
            r#"rules = [{ path = "secret/data/*", capabilities = ["update", "deny"] }]"#,
        )
        .expect("parses");
        assert!(!denied.is_privileged());
    }

    #[test]
    fn empty_rules_or_capabilities_are_rejected() {
        assert!(Policy::new(vec![]).check("p").is_err());
        let policy: Policy =
            toml::from_str(r#"rules = [{ path = "secret/data/a", capabilities = [] }]"#)
                .expect("parses");
        let err = policy.check("p").expect_err("rejected").to_string();
        assert!(err.contains("rules[0].capabilities"), "{err}");
    }
}
