//! Roles (`[roles.NAME]`): which tokens may log in, and what they get.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::claims::ClaimMatcher;
use crate::duration::HumanDuration;
use crate::error::PolicyError;

/// Claims that name the repository or project a pipeline runs for; a role must bind one of
/// them (or `sub` exactly) so that not every pipeline of the issuer can log in.
pub const IDENTITY_CLAIMS: [&str; 8] = [
    "repository",
    "repository_id",
    "project_path",
    "project_id",
    "job_project_path",
    "job_project_id",
    // A whole organisation or group by its immutable id: with templated paths
    // (`secret/data/ci/{{claims.repository_id}}/*`) one role serves every repository in it.
    "repository_owner_id",
    "namespace_id",
];

/// Claims the role must not list in `claims`, with where they belong instead.
const RESERVED_CLAIMS: [(&str, &str); 5] = [
    ("aud", "list audiences in `audiences`"),
    ("iss", "the issuer URL is set on the issuer"),
    ("exp", "token lifetime is checked by the server"),
    ("iat", "token lifetime is checked by the server"),
    ("nbf", "token lifetime is checked by the server"),
];

/// Default token TTL: 15 minutes.
pub const DEFAULT_TTL: HumanDuration = HumanDuration::from_secs(15 * 60);
/// Default maximum token TTL (renewals included): 1 hour.
pub const DEFAULT_MAX_TTL: HumanDuration = HumanDuration::from_secs(60 * 60);

/// A login role: a token of `issuer` whose claims match may log in and gets `policies`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// Name of an issuer (`[issuers.NAME]`).
    pub issuer: String,
    /// Accepted `aud` values; the token's `aud` must hold one of them exactly. Required.
    pub audiences: Vec<String>,
    /// Required claims: claim name → matcher (see [`crate::claims`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, ClaimMatcher>,
    /// Names of entries in `claims` whose strings are `*` globs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub glob_claims: Vec<String>,
    /// Policies the issued token gets (plus `default`, see [`Role::granted_policies`]).
    #[serde(default)]
    pub policies: Vec<String>,
    /// Lifetime of an issued token.
    #[serde(default = "default_ttl")]
    pub ttl: HumanDuration,
    /// Longest a token can live, renewals included.
    #[serde(default = "default_max_ttl")]
    pub max_ttl: HumanDuration,
    /// How many requests the token may make; absent means unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_uses: Option<u32>,
    /// Exact `sub` the token must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_subject: Option<String>,
}

fn default_ttl() -> HumanDuration {
    DEFAULT_TTL
}

fn default_max_ttl() -> HumanDuration {
    DEFAULT_MAX_TTL
}

impl Role {
    /// Whether the strings of claim `name` are globs.
    pub fn is_glob(&self, name: &str) -> bool {
        self.glob_claims.iter().any(|glob| glob == name)
    }

    /// The matcher for the top-level claim `name`, whether the role writes it as `name` or as
    /// the pointer `/name`, with whether it is a glob.
    pub fn claim(&self, name: &str) -> Option<(&ClaimMatcher, bool)> {
        self.claims
            .iter()
            .find(|(key, _)| top_level_name(key) == name)
            .map(|(key, matcher)| (matcher, self.is_glob(key)))
    }

    /// The policies an issued token carries: the role's, plus `default`, sorted, without
    /// duplicates.
    pub fn granted_policies(&self) -> Vec<String> {
        let mut policies = self.policies.clone();
        policies.push("default".to_owned());
        policies.sort();
        policies.dedup();
        policies
    }

    /// How the role binds a repository/project identity, if it does: a human-readable
    /// description such as ``claims.repository_id``.
    pub fn identity_binding(&self) -> Option<String> {
        // A glob binds an identity only with a literal owner: text before the first `*` that,
        // for path-like claims, includes the `/` after the owner or group. `*/*` binds nothing.
        let binds = |name: &str| {
            self.claim(name).is_some_and(|(matcher, glob)| {
                !matcher.accepts_any_string(glob)
                    && (!glob
                        || matcher.strings().all(|pattern| match pattern.find('*') {
                            None => true,
                            Some(0) => false,
                            Some(at) => {
                                !name.ends_with("path") && name != "repository"
                                    || pattern[..at].contains('/')
                            }
                        }))
            })
        };
        if let Some(name) = IDENTITY_CLAIMS.into_iter().find(|name| binds(name)) {
            return Some(format!("claims.{name}"));
        }
        let exact_subject = self
            .claim("sub")
            .is_some_and(|(matcher, glob)| !matcher.has_wildcard(glob));
        if exact_subject {
            return Some("claims.sub".to_owned());
        }
        self.bound_subject
            .as_ref()
            .map(|_| "bound_subject".to_owned())
    }

    /// Checks one role on its own (references to issuers and policies are checked by
    /// [`crate::Document::validate`]).
    pub(crate) fn check(&self, name: &str) -> Result<(), PolicyError> {
        let invalid = |field: &str, reason: String| PolicyError::InvalidField {
            table: "roles",
            name: name.to_owned(),
            field: field.to_owned(),
            reason,
        };
        if self.issuer.trim().is_empty() {
            return Err(invalid(
                "issuer",
                "name the issuer (`[issuers.NAME]`)".into(),
            ));
        }
        if self.audiences.is_empty() {
            return Err(invalid(
                "audiences",
                "list at least one audience; tokens minted for other services must not log in here"
                    .into(),
            ));
        }
        if self.audiences.iter().any(|aud| aud.is_empty()) {
            return Err(invalid("audiences", "an audience cannot be empty".into()));
        }
        self.check_claims(name)?;
        if self.policies.iter().any(|policy| policy.is_empty()) {
            return Err(invalid("policies", "a policy name cannot be empty".into()));
        }
        if self.policies.iter().any(|policy| policy == "root") {
            return Err(invalid(
                "policies",
                "a pipeline role cannot grant `root`; write a policy with the paths it needs"
                    .into(),
            ));
        }
        if self.ttl.as_duration().is_zero() {
            return Err(invalid("ttl", "must be longer than zero".into()));
        }
        if self.max_ttl.as_duration().is_zero() {
            return Err(invalid("max_ttl", "must be longer than zero".into()));
        }
        if self.ttl > self.max_ttl {
            return Err(invalid(
                "ttl",
                format!(
                    "{} is longer than max_ttl ({}); lower ttl or raise max_ttl",
                    self.ttl, self.max_ttl
                ),
            ));
        }
        if self.num_uses == Some(0) {
            return Err(invalid(
                "num_uses",
                "must be at least 1; leave it out for unlimited uses".into(),
            ));
        }
        if self.bound_subject.as_deref().is_some_and(str::is_empty) {
            return Err(invalid("bound_subject", "cannot be empty".into()));
        }
        if self.identity_binding().is_none() {
            return Err(PolicyError::UnboundIdentity {
                role: name.to_owned(),
            });
        }
        Ok(())
    }

    fn check_claims(&self, name: &str) -> Result<(), PolicyError> {
        let invalid = |field: String, reason: String| PolicyError::InvalidField {
            table: "roles",
            name: name.to_owned(),
            field,
            reason,
        };
        for (claim, matcher) in &self.claims {
            let field = format!("claims.{claim}");
            if claim.is_empty() || claim == "/" {
                return Err(invalid(field, "a claim name cannot be empty".into()));
            }
            if claim.starts_with('/') && !is_valid_pointer(claim) {
                return Err(invalid(
                    field,
                    "names starting with `/` are JSON pointers; `~` must be written `~0` and a \
                     `/` inside a key `~1`"
                        .into(),
                ));
            }
            if let Some((_, hint)) = RESERVED_CLAIMS
                .iter()
                .find(|(reserved, _)| *reserved == top_level_name(claim))
            {
                return Err(invalid(field, format!("cannot be matched here: {hint}")));
            }
            if matcher.alternatives().is_empty() {
                return Err(invalid(
                    field,
                    "an empty list matches nothing; list the accepted values".into(),
                ));
            }
        }
        let mut seen: Vec<&str> = Vec::new();
        for glob in &self.glob_claims {
            if seen.contains(&glob.as_str()) {
                return Err(invalid(
                    "glob_claims".into(),
                    format!("`{glob}` is listed twice"),
                ));
            }
            seen.push(glob);
            let Some(matcher) = self.claims.get(glob) else {
                return Err(invalid(
                    "glob_claims".into(),
                    format!("`{glob}` is not a key of `claims`"),
                ));
            };
            if matcher.strings().count() != matcher.alternatives().len() {
                return Err(invalid(
                    format!("claims.{glob}"),
                    "glob claims take strings only".into(),
                ));
            }
        }
        Ok(())
    }
}

/// `repository` for both `repository` and `/repository`; other names unchanged.
pub(crate) fn top_level_name(name: &str) -> &str {
    match name.strip_prefix('/') {
        Some(rest) if !rest.contains('/') && !rest.contains('~') => rest,
        _ => name,
    }
}

fn is_valid_pointer(pointer: &str) -> bool {
    let bytes = pointer.as_bytes();
    bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'~')
        .all(|(index, _)| matches!(bytes.get(index + 1), Some(b'0' | b'1')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(body: &str) -> Role {
        let audiences = if body.contains("audiences") {
            ""
        } else {
            "audiences = [\"aud\"]"
        };
        let text = format!("issuer = \"gh\"\n{audiences}\n{body}");
        toml::from_str(&text).expect("role parses")
    }

    #[test]
    fn wildcard_owners_do_not_bind_an_identity() {
        for claims in [
            r#"claims = { repository = "*/*" }
glob_claims = ["repository"]"#,
            r#"claims = { repository = "*-api" }
glob_claims = ["repository"]"#,
            r#"claims = { repository = "acme*" }
glob_claims = ["repository"]"#,
            r#"claims = { project_path = "*/web" }
glob_claims = ["project_path"]"#,
        ] {
            let err = check(claims).expect_err(claims);
            assert!(
                matches!(err, PolicyError::UnboundIdentity { .. }),
                "{claims}: {err}"
            );
        }
        let ok = r#"claims = { repository = "acme/*" }
glob_claims = ["repository"]"#;
        check(ok).expect("acme/* binds the owner");
    }

    #[test]
    fn roles_cannot_grant_root() {
        let err = check("claims = { repository_id = \"1\" }\npolicies = [\"root\"]")
            .expect_err("root refused");
        assert!(err.to_string().contains("root"), "{err}");
    }

    fn check(body: &str) -> Result<(), PolicyError> {
        role(body).check("r")
    }

    #[test]
    fn defaults() {
        let role = role("claims = { repository_id = \"1\" }");
        assert_eq!(role.ttl, DEFAULT_TTL);
        assert_eq!(role.max_ttl, DEFAULT_MAX_TTL);
        assert_eq!(role.granted_policies(), vec!["default".to_owned()]);
        assert!(role.check("r").is_ok());
    }

    #[test]
    fn identity_binding_rules() {
        assert!(check("claims = { repository_id = \"74\" }").is_ok());
        assert!(check("claims = { \"/project_id\" = \"20\" }").is_ok());
        assert!(check("claims = { sub = \"repo:o/r:ref:refs/heads/main\" }").is_ok());
        assert!(check("bound_subject = \"repo:o/r:environment:prod\"").is_ok());
        assert!(
            check("glob_claims = [\"repository\"]\nclaims = { repository = \"octo-org/*\" }")
                .is_ok()
        );

        for unbound in [
            "claims = { ref = \"refs/heads/main\" }",
            "glob_claims = [\"sub\"]\nclaims = { sub = \"repo:o/*\" }",
            "glob_claims = [\"repository\"]\nclaims = { repository = \"*\" }",
            "glob_claims = [\"repository\"]\nclaims = { repository = [\"o/r\", \"**\"] }",
        ] {
            let err = check(unbound).expect_err(unbound);
            assert!(matches!(err, PolicyError::UnboundIdentity { .. }), "{err}");
            assert!(err.to_string().contains("repository_id"), "{err}");
        }
    }

    #[test]
    fn field_checks_name_the_field() {
        let cases = [
            (
                "audiences = []\nclaims = { repository_id = \"1\" }",
                "audiences",
            ),
            (
                "claims = { repository_id = \"1\", aud = \"x\" }",
                "claims.aud",
            ),
            ("claims = { repository_id = [] }", "claims.repository_id"),
            (
                "claims = { repository_id = \"1\", \"/a~2\" = \"x\" }",
                "claims./a~2",
            ),
            (
                "claims = { repository_id = \"1\" }\nglob_claims = [\"ref\"]",
                "glob_claims",
            ),
            (
                "claims = { repository_id = \"1\", ref = [\"a\", 1] }\nglob_claims = [\"ref\"]",
                "claims.ref",
            ),
            ("claims = { repository_id = \"1\" }\nttl = \"2h\"", "ttl"),
            ("claims = { repository_id = \"1\" }\nttl = \"0s\"", "ttl"),
            (
                "claims = { repository_id = \"1\" }\nnum_uses = 0",
                "num_uses",
            ),
        ];
        for (body, field) in cases {
            let err = check(body).expect_err(body).to_string();
            assert!(err.contains(&format!("`{field}`")), "{body}: {err}");
            assert!(err.starts_with("[roles.r]"), "{err}");
        }
    }

    #[test]
    fn ttl_above_default_max_explains() {
        let err = check("claims = { repository_id = \"1\" }\nttl = \"2h\"")
            .expect_err("too long")
            .to_string();
        assert!(err.contains("max_ttl (1h)"), "{err}");
        assert!(
            check("claims = { repository_id = \"1\" }\nttl = \"2h\"\nmax_ttl = \"4h\"").is_ok()
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let text = "issuer = \"gh\"\naudiences = [\"a\"]\nclaim = { repository_id = \"1\" }";
        let err = toml::from_str::<Role>(text).expect_err("unknown field");
        assert!(err.to_string().contains("unknown field `claim`"), "{err}");
    }
}
