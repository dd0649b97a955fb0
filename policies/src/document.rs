//! The document: parsing TOML, merging documents, and validating them.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::PolicyError;
use crate::issuer::Issuer;
use crate::paths::Acl;
use crate::policy::{BUILTIN_POLICIES, Policy};
use crate::role::Role;

const MAX_NAME_LEN: usize = 64;

/// A set of issuers, roles and policies, from one file or merged from several.
///
/// Serializes to JSON (and back) so the server can store it and show diffs; durations are
/// written as strings such as `"15m"`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// `[issuers.NAME]` tables.
    #[serde(default)]
    pub issuers: BTreeMap<String, Issuer>,
    /// `[roles.NAME]` tables.
    #[serde(default)]
    pub roles: BTreeMap<String, Role>,
    /// `[policies.NAME]` tables.
    #[serde(default)]
    pub policies: BTreeMap<String, Policy>,
}

/// Parses a TOML document holding any mix of `[issuers.NAME]`, `[roles.NAME]` and
/// `[policies.NAME]`, and checks everything that can be checked within it: names, unknown
/// fields, URLs, algorithms, durations, path patterns, claim matchers, and that every role binds
/// a repository or project identity.
///
/// References between entries (a role's issuer and policies) are not checked here, because a
/// set of documents may be split across files; merge them and call [`Document::validate`].
pub fn parse_document(text: &str) -> Result<Document, PolicyError> {
    let document: Document = toml::from_str(text).map_err(|err| locate_parse_error(text, &err))?;
    document.check_entries()?;
    Ok(document)
}

impl Document {
    /// Adds `other`'s entries, replacing entries of the same kind and name.
    pub fn merge(&mut self, other: Document) {
        self.issuers.extend(other.issuers);
        self.roles.extend(other.roles);
        self.policies.extend(other.policies);
    }

    /// Checks the whole document: everything [`parse_document`] checks, plus that every role's
    /// issuer is defined and every policy a role names is defined or built in.
    pub fn validate(&self) -> Result<(), PolicyError> {
        self.check_entries()?;
        for (name, role) in &self.roles {
            if !self.issuers.contains_key(&role.issuer) {
                return Err(PolicyError::UnknownIssuer {
                    role: name.clone(),
                    issuer: role.issuer.clone(),
                });
            }
            if let Some(policy) = role.policies.iter().find(|p| self.policy(p).is_none()) {
                return Err(PolicyError::UnknownPolicy {
                    role: name.clone(),
                    policy: policy.clone(),
                });
            }
        }
        Ok(())
    }

    /// The policy called `name`: a built-in one (`root`, `default`) or one of the document's.
    pub fn policy(&self, name: &str) -> Option<Cow<'_, Policy>> {
        match Policy::builtin(name) {
            Some(builtin) => Some(Cow::Owned(builtin)),
            None => self.policies.get(name).map(Cow::Borrowed),
        }
    }

    /// The ACL for a token carrying the policies `names`. Names that resolve to no policy grant
    /// nothing.
    pub fn acl<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Acl {
        self.acl_with(names, &crate::paths::TemplateContext::default())
    }

    /// The ACL for one token: templated rules rendered with its role and login claims.
    pub fn acl_with<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
        context: &crate::paths::TemplateContext<'_>,
    ) -> Acl {
        let policies: Vec<Cow<'_, Policy>> = names
            .into_iter()
            .filter_map(|name| self.policy(name))
            .collect();
        Acl::from_policies_with(policies.iter().map(|policy| policy.as_ref()), context)
    }

    /// The claim names the templated rules of the named policies use: what a token from a
    /// login with these policies must carry.
    pub fn template_claims<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> std::collections::BTreeSet<String> {
        names
            .into_iter()
            .filter_map(|name| self.policy(name))
            .flat_map(|policy| {
                policy
                    .rules
                    .iter()
                    .flat_map(|rule| rule.path.template_claims())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The checks of each entry on its own.
    fn check_entries(&self) -> Result<(), PolicyError> {
        for (name, issuer) in &self.issuers {
            check_name("issuers", name)?;
            issuer.check(name)?;
        }
        for (name, role) in &self.roles {
            check_name("roles", name)?;
            // Login looks a role up by its lowercased name, as Vault does; a name with an
            // uppercase letter could never be reached.
            if name.chars().any(|c| c.is_ascii_uppercase()) {
                return Err(PolicyError::InvalidName {
                    table: "roles",
                    name: name.clone(),
                    reason: format!(
                        "role names are lowercase (logins match them case-insensitively); use `{}`",
                        name.to_ascii_lowercase()
                    ),
                });
            }
            role.check(name)?;
        }
        for (name, policy) in &self.policies {
            check_name("policies", name)?;
            if BUILTIN_POLICIES.contains(&name.as_str()) {
                return Err(PolicyError::InvalidName {
                    table: "policies",
                    name: name.clone(),
                    reason: format!("`{name}` is a built-in policy and cannot be redefined"),
                });
            }
            policy.check(name)?;
        }
        Ok(())
    }
}

/// Names are used in URLs and CLI arguments: 1 to 64 of `A–Z a–z 0–9 _ -`, starting with a
/// letter or digit.
fn check_name(table: &'static str, name: &str) -> Result<(), PolicyError> {
    let invalid = |reason: &str| PolicyError::InvalidName {
        table,
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(invalid("names are 1 to 64 characters long"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(invalid("names start with a letter or a digit"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(invalid(
            "names use only letters, digits, `-` and `_` (a `.` would make TOML nest tables)",
        ));
    }
    Ok(())
}

/// Turns a TOML error into a [`PolicyError::Parse`], naming the entry it is in.
///
/// The parser's own message has the line and column but not the table; finding the first entry
/// that fails on its own supplies that.
fn locate_parse_error(text: &str, err: &toml::de::Error) -> PolicyError {
    // One line: the parser's message and where, without its multi-line source excerpt.
    let reason = err.message().trim().replace('\n', " ");
    let message = match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("TOML parse error at line {line}, column {column}: {reason}")
        }
        None => format!("TOML parse error: {reason}"),
    };
    let context = toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|table| failing_entry(&table));
    PolicyError::Parse { context, message }
}

fn failing_entry(table: &toml::Table) -> Option<String> {
    fn first_failure<T: DeserializeOwned>(table: &toml::Table, section: &str) -> Option<String> {
        let entries = table.get(section)?.as_table()?;
        entries.iter().find_map(|(name, value)| {
            T::deserialize(value.clone())
                .is_err()
                .then(|| format!("[{section}.{}]", display_key(name)))
        })
    }
    first_failure::<Issuer>(table, "issuers")
        .or_else(|| first_failure::<Role>(table, "roles"))
        .or_else(|| first_failure::<Policy>(table, "policies"))
}

/// A table key as TOML would need it written.
fn display_key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        name.to_owned()
    } else {
        serde_json::Value::String(name.to_owned()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::Capability;

    const ISSUER: &str = r#"
[issuers.github]
issuer = "https://token.actions.githubusercontent.com"
"#;

    const ROLE_AND_POLICY: &str = r#"
[roles.deploy]
issuer = "github"
audiences = ["https://vault.example.com"]
claims = { repository_id = "74", ref = "refs/heads/main" }
policies = ["app-read"]

[policies.app-read]
rules = [{ path = "secret/data/app", capabilities = ["read"] }]
"#;

    #[test]
    fn split_documents_parse_then_validate_after_merge() {
        let mut document = parse_document(ROLE_AND_POLICY).expect("parses alone");
        let err = document.validate().expect_err("issuer missing");
        assert_eq!(
            err,
            PolicyError::UnknownIssuer {
                role: "deploy".into(),
                issuer: "github".into()
            }
        );
        document.merge(parse_document(ISSUER).expect("parses"));
        assert_eq!(document.validate(), Ok(()));
    }

    #[test]
    fn unknown_policy_is_reported_but_builtins_resolve() {
        let text =
            ROLE_AND_POLICY.replace("[\"app-read\"]", "[\"app-read\", \"nope\", \"default\"]");
        let mut document = parse_document(&text).expect("parses");
        document.merge(parse_document(ISSUER).expect("parses"));
        let err = document.validate().expect_err("unknown policy").to_string();
        assert!(err.contains("`nope`"), "{err}");
        let text = ROLE_AND_POLICY.replace("[\"app-read\"]", "[\"app-read\", \"default\"]");
        let mut document = parse_document(&text).expect("parses");
        document.merge(parse_document(ISSUER).expect("parses"));
        assert_eq!(document.validate(), Ok(()));
    }

    #[test]
    fn merge_upserts_by_name() {
        let mut base = parse_document(ROLE_AND_POLICY).expect("parses");
        let newer = parse_document(
            r#"
[policies.app-read]
rules = [{ path = "secret/data/app2", capabilities = ["list"] }]
"#,
        )
        .expect("parses");
        base.merge(newer);
        assert_eq!(base.policies.len(), 1);
        assert_eq!(
            base.policies["app-read"].rules[0].path.as_str(),
            "secret/data/app2"
        );
        assert_eq!(base.roles.len(), 1);
    }

    #[test]
    fn parse_errors_name_table_and_field() {
        let cases = [
            (
                "[roles.deploy]\nissuer = \"github\"\naudience = [\"x\"]\n",
                "[roles.deploy]",
                "audience",
            ),
            (
                "[roles.deploy]\nissuer = \"github\"\n",
                "[roles.deploy]",
                "audiences",
            ),
            (
                "[issuers.gh]\nissuer = \"https://a.example\"\nalgorithms = [\"HS256\"]\n",
                "[issuers.gh]",
                "HS256",
            ),
            (
                "[issuers.gh]\nissuer = \"https://a.example\"\nmax_token_lifetime = 60\n",
                "[issuers.gh]",
                "duration",
            ),
            (
                "[policies.p]\nrules = [{ path = \"a/*/b\", capabilities = [\"read\"] }]\n",
                "[policies.p]",
                "last character",
            ),
            (
                "[policies.p]\nrules = [{ path = \"a\", capabilities = [\"reed\"] }]\n",
                "[policies.p]",
                "reed",
            ),
        ];
        for (text, table, needle) in cases {
            let err = parse_document(text).expect_err(text);
            let message = err.to_string();
            assert!(matches!(err, PolicyError::Parse { .. }), "{message}");
            assert!(message.starts_with(&format!("in {table}: ")), "{message}");
            assert!(message.contains(needle), "{message}");
            assert!(message.contains("line"), "{message}");
        }
    }

    #[test]
    fn syntax_and_top_level_errors() {
        let err = parse_document("[roles.x\n")
            .expect_err("syntax")
            .to_string();
        assert!(err.contains("line 1"), "{err}");
        let err = parse_document("[role.x]\nissuer = \"a\"\n")
            .expect_err("unknown")
            .to_string();
        assert!(err.contains("unknown field `role`"), "{err}");
    }

    #[test]
    fn names_are_checked() {
        let err = parse_document(
            "[policies.root]\nrules = [{ path = \"a\", capabilities = [\"read\"] }]\n",
        )
        .expect_err("reserved")
        .to_string();
        assert!(err.contains("built-in"), "{err}");
        let err = parse_document(
            "[policies.\"a b\"]\nrules = [{ path = \"a\", capabilities = [\"read\"] }]\n",
        )
        .expect_err("space")
        .to_string();
        assert!(err.contains("invalid name"), "{err}");
        let long = format!(
            "[policies.{}]\nrules = [{{ path = \"a\", capabilities = [\"read\"] }}]\n",
            "a".repeat(65)
        );
        assert!(parse_document(&long).is_err());
    }

    #[test]
    fn role_names_with_uppercase_letters_are_refused_since_login_lowercases() {
        let text = ROLE_AND_POLICY.replace("[roles.deploy]", "[roles.Deploy-Prod]");
        let err = parse_document(&text).expect_err("uppercase").to_string();
        assert!(err.contains("lowercase"), "{err}");
        assert!(err.contains("`deploy-prod`"), "{err}");
        // Policies and issuers are looked up exactly, so case is theirs to choose.
        let text = ROLE_AND_POLICY.replace("app-read", "App-Read");
        assert!(parse_document(&text).is_ok());
    }

    #[test]
    fn json_round_trip() {
        let mut document = parse_document(ROLE_AND_POLICY).expect("parses");
        document.merge(parse_document(ISSUER).expect("parses"));
        let json = serde_json::to_string(&document).expect("serializes");
        let back: Document = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, document);
        assert!(json.contains("\"ttl\":\"15m\""), "{json}");
    }

    #[test]
    fn acl_from_names() {
        let document = parse_document(ROLE_AND_POLICY).expect("parses");
        let acl = document.acl(["app-read", "default", "missing"]);
        assert!(acl.allows("secret/data/app", Capability::Read));
        assert!(acl.allows("auth/token/lookup-self", Capability::Read));
        assert!(!acl.allows("secret/data/other", Capability::Read));
    }

    #[test]
    fn empty_document_is_valid() {
        let document = parse_document("").expect("parses");
        assert_eq!(document, Document::default());
        assert_eq!(document.validate(), Ok(()));
    }
}
