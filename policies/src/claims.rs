//! Claim matchers and matching a token's claims against a role.
//!
//! A matcher is written in TOML as a string (exact), an integer or a boolean (exact, typed), or a
//! list of those (any of). JSON types are respected: the matcher `"74"` does not match the claim
//! `74` and the matcher `74` does not match the claim `"74"` (GitHub and GitLab send their ids as
//! strings). When the token's claim is an array, the claim matches if any element matches.
//! Strings of the claims a role lists in `glob_claims` are patterns in which `*` matches any run
//! of characters, `/` included, and nothing else is special.
//!
//! Claim names are top-level claim keys taken literally (dots included, so
//! `oidc.circleci.com/project-id` works); a name starting with `/` is a JSON pointer (RFC 6901)
//! into nested claims, as in `/kubernetes.io/namespace`.

use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use thiserror::Error;

use crate::explain::Check;
use crate::role::Role;

/// Longest rendering of a token value kept in [`ClaimError::detail`].
const MAX_RENDERED: usize = 200;

/// One accepted value of a claim.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ClaimValue {
    /// A JSON string (a glob pattern when the claim is in `glob_claims`).
    String(String),
    /// A JSON integer.
    Integer(i64),
    /// A JSON boolean.
    Bool(bool),
}

/// What a role requires of one claim.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ClaimMatcher {
    /// Exactly this value (`ref = "refs/heads/main"`).
    Exact(ClaimValue),
    /// Any of these values (`event_name = ["push", "workflow_dispatch"]`); never empty in a
    /// validated document.
    AnyOf(Vec<ClaimValue>),
}

impl ClaimMatcher {
    /// The accepted values.
    pub fn alternatives(&self) -> &[ClaimValue] {
        match self {
            ClaimMatcher::Exact(value) => std::slice::from_ref(value),
            ClaimMatcher::AnyOf(values) => values,
        }
    }

    /// Whether some alternative is a glob of only `*`, so any string passes.
    pub(crate) fn accepts_any_string(&self, glob: bool) -> bool {
        glob && self
            .strings()
            .any(|s| !s.is_empty() && s.bytes().all(|b| b == b'*'))
    }

    /// Whether some alternative is a glob holding `*`.
    pub(crate) fn has_wildcard(&self, glob: bool) -> bool {
        glob && self.strings().any(|s| s.contains('*'))
    }

    /// The string alternatives.
    pub(crate) fn strings(&self) -> impl Iterator<Item = &str> {
        self.alternatives().iter().filter_map(|value| match value {
            ClaimValue::String(s) => Some(s.as_str()),
            _ => None,
        })
    }

    /// Whether a token value (a scalar, not an array) matches one alternative.
    pub(crate) fn matches_scalar(&self, glob: bool, value: &Value) -> bool {
        self.alternatives()
            .iter()
            .any(|alternative| match (alternative, value) {
                (ClaimValue::String(want), Value::String(have)) if glob => glob_matches(want, have),
                (ClaimValue::String(want), Value::String(have)) => want == have,
                (ClaimValue::Integer(want), Value::Number(have)) => have.as_i64() == Some(*want),
                (ClaimValue::Bool(want), Value::Bool(have)) => want == have,
                _ => false,
            })
    }

    fn accepts_type_of(&self, value: &Value) -> bool {
        self.alternatives().iter().any(|alternative| {
            matches!(
                (alternative, value),
                (ClaimValue::String(_), Value::String(_))
                    | (ClaimValue::Integer(_), Value::Number(_))
                    | (ClaimValue::Bool(_), Value::Bool(_))
            )
        })
    }

    fn expected_types(&self) -> String {
        let mut names: Vec<&str> = Vec::new();
        for alternative in self.alternatives() {
            let name = match alternative {
                ClaimValue::String(_) => "a string",
                ClaimValue::Integer(_) => "an integer",
                ClaimValue::Bool(_) => "a boolean",
            };
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names.join(" or ")
    }

    fn render(&self, glob: bool) -> String {
        let kind = if glob { "glob " } else { "" };
        match self {
            ClaimMatcher::Exact(value) => format!("{kind}{}", render_value(value)),
            ClaimMatcher::AnyOf(values) => {
                let list: Vec<String> = values.iter().map(render_value).collect();
                format!("{kind}one of [{}]", list.join(", "))
            }
        }
    }
}

fn render_value(value: &ClaimValue) -> String {
    match value {
        ClaimValue::String(s) => Value::String(s.clone()).to_string(),
        ClaimValue::Integer(i) => i.to_string(),
        ClaimValue::Bool(b) => b.to_string(),
    }
}

/// Why a token's claims do not satisfy a role.
///
/// `Display` says which claim failed and how, never what the role expected: it goes back to the
/// client, and expected values (repository ids, branch names) are the role's business.
/// [`ClaimError::detail`] gives the whole story for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ClaimError {
    /// The claims are not a JSON object.
    #[error("the token's claims are not a JSON object")]
    NotAnObject,

    /// The token lacks a claim the role requires (absent or `null`).
    #[error("claim `{claim}` is missing from the token")]
    Missing {
        /// The claim name as the role writes it.
        claim: String,
        /// What the role accepts, rendered (for the audit log only).
        expected: String,
    },

    /// The claim's JSON type is not one the role accepts (a number where a string is expected).
    #[error(
        "claim `{claim}` has the wrong type: the role expects {expected_type}, the token has {found_type}"
    )]
    WrongType {
        /// The claim name as the role writes it.
        claim: String,
        /// The types the role accepts, such as `a string`.
        expected_type: String,
        /// The type the token has, such as `a number`.
        found_type: &'static str,
        /// What the role accepts, rendered (for the audit log only).
        expected: String,
        /// The token's value, rendered and truncated (for the audit log only).
        found: String,
    },

    /// The claim's value is none of the values the role accepts.
    #[error("claim `{claim}` does not match the role")]
    NoMatch {
        /// The claim name as the role writes it.
        claim: String,
        /// What the role accepts, rendered (for the audit log only).
        expected: String,
        /// The token's value, rendered and truncated (for the audit log only).
        found: String,
    },
}

impl ClaimError {
    /// The claim that failed, if the failure is about one claim.
    pub fn claim(&self) -> Option<&str> {
        match self {
            ClaimError::NotAnObject => None,
            ClaimError::Missing { claim, .. }
            | ClaimError::WrongType { claim, .. }
            | ClaimError::NoMatch { claim, .. } => Some(claim),
        }
    }

    /// The full reason, with the expected and the actual value: for the audit log and for
    /// `vaultctl policy test`, never for the client that tried to log in.
    pub fn detail(&self) -> String {
        match self {
            ClaimError::NotAnObject => self.to_string(),
            ClaimError::Missing { claim, expected } => {
                format!("claim `{claim}` is missing from the token; the role accepts {expected}")
            }
            ClaimError::WrongType {
                claim,
                expected_type,
                found_type,
                expected,
                found,
            } => format!(
                "claim `{claim}` is {found_type} ({found}) but the role expects {expected_type}: {expected}"
            ),
            ClaimError::NoMatch {
                claim,
                expected,
                found,
            } => format!("claim `{claim}` is {found}; the role accepts {expected}"),
        }
    }
}

/// One thing a role requires of a token's claims, in the order [`match_claims`] checks them.
struct Binding<'a> {
    /// The claim name as the role writes it.
    name: &'a str,
    matcher: std::borrow::Cow<'a, ClaimMatcher>,
    glob: bool,
    /// An exact `sub` binding, which accepts either GitHub subject form.
    subject: bool,
}

/// The role's bindings: the audience, `bound_subject`, then each entry of `claims` in name
/// order.
fn bindings(role: &Role) -> impl Iterator<Item = Binding<'_>> {
    let audiences = ClaimMatcher::AnyOf(
        role.audiences
            .iter()
            .map(|aud| ClaimValue::String(aud.clone()))
            .collect(),
    );
    let audience = Binding {
        name: "aud",
        matcher: std::borrow::Cow::Owned(audiences),
        glob: false,
        subject: false,
    };
    let bound_subject = role.bound_subject.as_ref().map(|subject| Binding {
        name: "sub",
        matcher: std::borrow::Cow::Owned(ClaimMatcher::Exact(ClaimValue::String(subject.clone()))),
        glob: false,
        subject: true,
    });
    let claims = role.claims.iter().map(|(name, matcher)| Binding {
        name,
        matcher: std::borrow::Cow::Borrowed(matcher),
        glob: role.is_glob(name),
        subject: name == "sub" && !role.is_glob(name),
    });
    std::iter::once(audience).chain(bound_subject).chain(claims)
}

impl Binding<'_> {
    fn check(&self, claims: &Value) -> Result<(), ClaimError> {
        if self.subject {
            match_subject(&self.matcher, claims)
        } else {
            match_claim(
                self.name,
                &self.matcher,
                self.glob,
                lookup(claims, self.name),
            )
        }
    }
}

/// Checks `claims` (the token's payload) against everything `role` requires of them: the
/// audience (`aud`, a string or an array, must hold one of the role's `audiences`),
/// `bound_subject` (exact `sub`), then each entry of `claims` in name order.
///
/// Signature, issuer and time checks are the server's job and are not done here.
pub fn match_claims(role: &Role, claims: &Value) -> Result<(), ClaimError> {
    if !claims.is_object() {
        return Err(ClaimError::NotAnObject);
    }
    bindings(role).try_for_each(|binding| binding.check(claims))
}

/// Every binding of `role` checked against `claims`, none skipped after a failure, each with
/// what it wants, what the token has and, for a failure that is nearly a match, why (letter
/// case, a number where a string is bound, the other GitHub subject form, a trailing slash).
/// For `vaultctl policy test`; the login itself runs [`match_claims`].
pub fn check_bindings(role: &Role, claims: &Value) -> Vec<Check> {
    bindings(role)
        .map(|binding| {
            let value = lookup(claims, binding.name).filter(|v| !v.is_null());
            let result = binding.check(claims);
            let direct =
                binding.subject && match_claim("sub", &binding.matcher, false, value).is_ok();
            let hint = match &result {
                Ok(()) if binding.subject && !direct => Some(
                    "matched through GitHub's other subject form of the same repository (the \
                     token's own repository ids agree)"
                        .to_owned(),
                ),
                Ok(()) => None,
                Err(_) => value.and_then(|v| near_miss(&binding, v)),
            };
            Check {
                name: binding.name.to_owned(),
                passed: result.is_ok(),
                wanted: binding.matcher.render(binding.glob),
                found: value.map_or_else(|| "no such claim".to_owned(), render_json),
                hint,
            }
        })
        .collect()
}

/// Why a failed binding is nearly a match, if it is.
fn near_miss(binding: &Binding<'_>, value: &Value) -> Option<String> {
    let scalars: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        scalar => vec![scalar],
    };
    scalars.into_iter().find_map(|have| {
        binding
            .matcher
            .alternatives()
            .iter()
            .find_map(|want| near_miss_of(binding, want, have))
    })
}

fn near_miss_of(binding: &Binding<'_>, want: &ClaimValue, have: &Value) -> Option<String> {
    let same = |pattern: &str, text: &str| {
        if binding.glob {
            glob_matches(pattern, text)
        } else {
            pattern == text
        }
    };
    match (want, have) {
        (ClaimValue::String(want), Value::Number(n)) if *want == n.to_string() => Some(format!(
            "the token has the number {n} where the role binds the string {want:?}: write the \
             binding without quotes"
        )),
        (ClaimValue::Integer(want), Value::String(text)) if *text == want.to_string() => {
            Some(format!(
                "the token has the string {text:?} where the role binds the integer {want}: \
                 quote it in the role"
            ))
        }
        (ClaimValue::String(want), Value::String(text)) => {
            if same(&want.to_lowercase(), &text.to_lowercase()) {
                return Some("differs only in letter case; claims match case-sensitively".into());
            }
            if same(want.trim_end_matches('/'), text.trim_end_matches('/')) {
                return Some("differs only by a trailing slash".into());
            }
            let (want_form, want_legacy) = github_subject_form(want)?;
            let (have_form, have_legacy) = github_subject_form(text)?;
            if binding.name != "sub" || want_form == have_form || !same(&want_legacy, &have_legacy)
            {
                return None;
            }
            let why = if binding.glob {
                "globs are not converted between the forms; bind `repository_id` and \
                 `repository_owner_id` instead"
            } else {
                "either form is accepted only when the token's `repository`, `repository_id` \
                 and `repository_owner_id` agree with its subject, and here they do not"
            };
            Some(format!(
                "the token's subject is in GitHub's {have_form} form and the role binds the \
                 {want_form} form; {why}"
            ))
        }
        _ => None,
    }
}

/// Which GitHub subject form `subject` is in (`"legacy"` or `"immutable"`), and the subject
/// with any `@ID` parts removed.
pub(crate) fn github_subject_form(subject: &str) -> Option<(&'static str, String)> {
    let rest = subject.strip_prefix("repo:")?;
    let (name_part, tail) = rest.split_once(':')?;
    let (owner, repo) = name_part.split_once('/')?;
    let strip = |part: &str| -> Option<String> {
        match part.rsplit_once('@') {
            Some((name, id)) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
                Some(name.to_owned())
            }
            _ => None,
        }
    };
    match (strip(owner), strip(repo)) {
        (Some(owner), Some(repo)) => Some(("immutable", format!("repo:{owner}/{repo}:{tail}"))),
        (None, None) => Some(("legacy", subject.to_owned())),
        _ => None,
    }
}

/// An exact `sub` binding accepts GitHub's subject in either form for the same repository:
/// legacy `repo:OWNER/REPO:…` or immutable `repo:OWNER@OWNER_ID/REPO@REPO_ID:…` (repositories
/// created after 2026-07-15). The other form is derived from the token's own signed
/// `repository_owner_id`, `repository_id` and `repository` claims, and only when they agree
/// with the subject, so a binding written in one form never matches another repository.
fn match_subject(matcher: &ClaimMatcher, claims: &Value) -> Result<(), ClaimError> {
    let first = match_claim("sub", matcher, false, claims.get("sub"));
    if first.is_ok() {
        return first;
    }
    match other_subject_form(claims) {
        Some(other)
            if match_claim("sub", matcher, false, Some(&Value::String(other.clone()))).is_ok() =>
        {
            Ok(())
        }
        _ => first,
    }
}

/// The token's `sub` in GitHub's other subject form, when its id claims make it derivable.
pub(crate) fn other_subject_form(claims: &Value) -> Option<String> {
    let sub = claims.get("sub")?.as_str()?;
    let owner_id = claims.get("repository_owner_id")?.as_str()?;
    let repo_id = claims.get("repository_id")?.as_str()?;
    let repository = claims.get("repository")?.as_str()?;
    let rest = sub.strip_prefix("repo:")?;
    let (name_part, tail) = rest.split_once(':')?;
    let (owner_part, repo_part) = name_part.split_once('/')?;
    match (owner_part.split_once('@'), repo_part.split_once('@')) {
        // Immutable → legacy: the ids must be the token's own.
        (Some((owner, oid)), Some((repo, rid))) => {
            (oid == owner_id && rid == repo_id && format!("{owner}/{repo}") == repository)
                .then(|| format!("repo:{owner}/{repo}:{tail}"))
        }
        // Legacy → immutable: the name must be the token's own repository.
        (None, None) => (name_part == repository)
            .then(|| format!("repo:{owner_part}@{owner_id}/{repo_part}@{repo_id}:{tail}")),
        _ => None,
    }
}

/// Finds a claim by name: a JSON pointer when the name starts with `/`, else a top-level key.
pub(crate) fn lookup<'a>(claims: &'a Value, name: &str) -> Option<&'a Value> {
    if name.starts_with('/') {
        claims.pointer(name)
    } else {
        claims.get(name)
    }
}

fn match_claim(
    name: &str,
    matcher: &ClaimMatcher,
    glob: bool,
    value: Option<&Value>,
) -> Result<(), ClaimError> {
    let value = match value {
        None | Some(Value::Null) => {
            return Err(ClaimError::Missing {
                claim: name.to_owned(),
                expected: matcher.render(glob),
            });
        }
        Some(value) => value,
    };
    let (matched, type_ok) = match value {
        Value::Array(items) => (
            items.iter().any(|item| matcher.matches_scalar(glob, item)),
            items.is_empty() || items.iter().any(|item| matcher.accepts_type_of(item)),
        ),
        scalar => (
            matcher.matches_scalar(glob, scalar),
            matcher.accepts_type_of(scalar),
        ),
    };
    if matched {
        return Ok(());
    }
    let found = render_json(value);
    if type_ok {
        Err(ClaimError::NoMatch {
            claim: name.to_owned(),
            expected: matcher.render(glob),
            found,
        })
    } else {
        Err(ClaimError::WrongType {
            claim: name.to_owned(),
            expected_type: matcher.expected_types(),
            found_type: json_type(value),
            expected: matcher.render(glob),
            found,
        })
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn render_json(value: &Value) -> String {
    let mut text = value.to_string();
    if text.len() > MAX_RENDERED {
        let mut cut = MAX_RENDERED;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// Matches `text` against `pattern`, where `*` matches any run of characters (including `/`
/// and the empty run) and every other character matches itself.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was and which text position it is currently stretched to.
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            backtrack = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star, stretched)) = backtrack {
            backtrack = Some((star, stretched + 1));
            p = star + 1;
            t = stretched + 1;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|b| *b == b'*')
}

impl Serialize for ClaimValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ClaimValue::String(s) => serializer.serialize_str(s),
            ClaimValue::Integer(i) => serializer.serialize_i64(*i),
            ClaimValue::Bool(b) => serializer.serialize_bool(*b),
        }
    }
}

impl Serialize for ClaimMatcher {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ClaimMatcher::Exact(value) => value.serialize(serializer),
            ClaimMatcher::AnyOf(values) => serializer.collect_seq(values),
        }
    }
}

const EXPECTING: &str = "a string, an integer, a boolean, or a list of them";

/// Visits one scalar; `visit_seq` is only accepted by [`ClaimMatcher`].
struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = ClaimValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, an integer or a boolean")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ClaimValue, E> {
        Ok(ClaimValue::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<ClaimValue, E> {
        Ok(ClaimValue::String(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ClaimValue, E> {
        Ok(ClaimValue::Integer(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ClaimValue, E> {
        i64::try_from(v)
            .map(ClaimValue::Integer)
            .map_err(|_| E::custom(format!("integer {v} is too large")))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<ClaimValue, E> {
        Ok(ClaimValue::Bool(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ClaimValue, E> {
        Err(E::custom(format!(
            "floating-point claim values ({v}) are not supported; use a string, an integer or a boolean"
        )))
    }
}

impl<'de> Deserialize<'de> for ClaimValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

impl<'de> Deserialize<'de> for ClaimMatcher {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MatcherVisitor;

        impl<'de> Visitor<'de> for MatcherVisitor {
            type Value = ClaimMatcher;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTING)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ClaimMatcher, E> {
                ScalarVisitor.visit_str(v).map(ClaimMatcher::Exact)
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<ClaimMatcher, E> {
                ScalarVisitor.visit_string(v).map(ClaimMatcher::Exact)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ClaimMatcher, E> {
                ScalarVisitor.visit_i64(v).map(ClaimMatcher::Exact)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ClaimMatcher, E> {
                ScalarVisitor.visit_u64(v).map(ClaimMatcher::Exact)
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ClaimMatcher, E> {
                ScalarVisitor.visit_bool(v).map(ClaimMatcher::Exact)
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ClaimMatcher, E> {
                ScalarVisitor.visit_f64(v).map(ClaimMatcher::Exact)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ClaimMatcher, A::Error> {
                let mut values = Vec::new();
                while let Some(value) = seq.next_element::<ClaimValue>()? {
                    values.push(value);
                }
                Ok(ClaimMatcher::AnyOf(values))
            }
        }

        deserializer.deserialize_any(MatcherVisitor)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_exact_sub_accepts_both_github_subject_forms_of_the_same_repository() {
        let role_with = |sub: &str| {
            crate::parse_document(&format!(
                "[issuers.gh]\nissuer = \"https://token.actions.githubusercontent.com\"\n\
                 [roles.r]\nissuer = \"gh\"\naudiences = [\"a\"]\nclaims = {{ sub = \"{sub}\" }}\npolicies = []\n"
            ))
            .expect("parses")
            .roles
            .remove("r")
            .expect("role")
        };
        let token = |sub: &str, owner_id: &str, repo_id: &str, repository: &str| {
            json!({"aud": "a", "sub": sub, "repository_owner_id": owner_id,
                   "repository_id": repo_id, "repository": repository})
        };
        let legacy = role_with("repo:octo-org/api:ref:refs/heads/main");
        let immutable = role_with("repo:octo-org@1001/api@74:ref:refs/heads/main");
        let new_form = token(
            "repo:octo-org@1001/api@74:ref:refs/heads/main",
            "1001",
            "74",
            "octo-org/api",
        );
        let old_form = token(
            "repo:octo-org/api:ref:refs/heads/main",
            "1001",
            "74",
            "octo-org/api",
        );
        for role in [&legacy, &immutable] {
            assert_eq!(match_claims(role, &new_form), Ok(()));
            assert_eq!(match_claims(role, &old_form), Ok(()));
        }
        // Ids in the subject that are not the token's own: no derived form.
        let forged = token(
            "repo:octo-org@9/api@9:ref:refs/heads/main",
            "1001",
            "74",
            "octo-org/api",
        );
        assert!(match_claims(&legacy, &forged).is_err());
        // Another repository that took the old name gets new ids: the immutable binding refuses it.
        let squatter = token(
            "repo:octo-org/api:ref:refs/heads/main",
            "2002",
            "99",
            "octo-org/api",
        );
        assert!(match_claims(&immutable, &squatter).is_err());
        // The rest of the subject still has to match.
        let other_ref = token(
            "repo:octo-org@1001/api@74:ref:refs/heads/dev",
            "1001",
            "74",
            "octo-org/api",
        );
        assert!(match_claims(&legacy, &other_ref).is_err());
    }

    fn role(extra: &str) -> Role {
        let text =
            format!("issuer = \"github\"\naudiences = [\"https://vault.example.com\"]\n{extra}");
        toml::from_str(&text).expect("role parses")
    }

    fn token(extra: Value) -> Value {
        let mut claims =
            json!({ "aud": "https://vault.example.com", "sub": "repo:o/r:ref:refs/heads/main" });
        if let (Some(base), Value::Object(extra)) = (claims.as_object_mut(), extra) {
            base.extend(extra);
        }
        claims
    }

    #[test]
    fn glob_semantics() {
        assert!(glob_matches("refs/tags/v*", "refs/tags/v1.2.3"));
        assert!(glob_matches("octo-org/*", "octo-org/a/b"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a*b*c", "axxbyyc"));
        assert!(glob_matches("a*b", "abab"));
        assert!(!glob_matches("a*b", "abac"));
        assert!(!glob_matches("refs/tags/v*", "refs/heads/v1"));
        assert!(glob_matches("exact", "exact"));
        assert!(!glob_matches("exact", "exactly"));
        assert!(glob_matches("a?c", "a?c"));
        assert!(!glob_matches("a?c", "abc"));
    }

    #[test]
    fn exact_any_of_and_typed_matching() {
        let role = role(
            "claims = { repository_id = \"74\", event_name = [\"push\", \"workflow_dispatch\"], run_attempt = 1, fork = false }",
        );
        let good = token(
            json!({"repository_id": "74", "event_name": "push", "run_attempt": 1, "fork": false}),
        );
        assert_eq!(match_claims(&role, &good), Ok(()));

        let number_id = token(
            json!({"repository_id": 74, "event_name": "push", "run_attempt": 1, "fork": false}),
        );
        let err = match_claims(&role, &number_id).expect_err("number is not a string");
        assert!(matches!(err, ClaimError::WrongType { .. }), "{err:?}");
        assert_eq!(err.claim(), Some("repository_id"));

        let string_attempt = token(
            json!({"repository_id": "74", "event_name": "push", "run_attempt": "1", "fork": false}),
        );
        assert!(matches!(
            match_claims(&role, &string_attempt),
            Err(ClaimError::WrongType { .. })
        ));

        let wrong_event = token(
            json!({"repository_id": "74", "event_name": "pull_request_target", "run_attempt": 1, "fork": false}),
        );
        let err = match_claims(&role, &wrong_event).expect_err("no match");
        assert!(matches!(err, ClaimError::NoMatch { .. }));
        assert!(!err.to_string().contains("push"), "{err}");
        assert!(err.detail().contains("push") && err.detail().contains("pull_request_target"));
    }

    #[test]
    fn missing_null_and_array_claims() {
        let role = role("claims = { environment = \"production\", groups = \"admins\" }");
        let missing = token(json!({"groups": ["admins"]}));
        let err = match_claims(&role, &missing).expect_err("missing");
        assert_eq!(
            err.to_string(),
            "claim `environment` is missing from the token"
        );
        assert!(!err.to_string().contains("production"));

        let null = token(json!({"environment": null, "groups": ["admins"]}));
        assert!(matches!(
            match_claims(&role, &null),
            Err(ClaimError::Missing { .. })
        ));

        let array_ok = token(json!({"environment": "production", "groups": ["dev", "admins"]}));
        assert_eq!(match_claims(&role, &array_ok), Ok(()));
        let array_no = token(json!({"environment": "production", "groups": ["dev"]}));
        assert!(matches!(
            match_claims(&role, &array_no),
            Err(ClaimError::NoMatch { .. })
        ));
        let array_type = token(json!({"environment": "production", "groups": [1, 2]}));
        assert!(matches!(
            match_claims(&role, &array_type),
            Err(ClaimError::WrongType { .. })
        ));
    }

    #[test]
    fn audience_and_bound_subject() {
        let role = role("bound_subject = \"repo:o/r:ref:refs/heads/main\"");
        assert_eq!(match_claims(&role, &token(json!({}))), Ok(()));
        let list_aud = json!({"aud": ["other", "https://vault.example.com"], "sub": "repo:o/r:ref:refs/heads/main"});
        assert_eq!(match_claims(&role, &list_aud), Ok(()));
        let wrong_aud =
            json!({"aud": "https://vault.example.com/", "sub": "repo:o/r:ref:refs/heads/main"});
        let err = match_claims(&role, &wrong_aud).expect_err("aud is exact");
        assert_eq!(err.claim(), Some("aud"));
        let no_aud = json!({"sub": "repo:o/r:ref:refs/heads/main"});
        assert!(matches!(
            match_claims(&role, &no_aud),
            Err(ClaimError::Missing { .. })
        ));
        let wrong_sub =
            json!({"aud": "https://vault.example.com", "sub": "repo:o/r:ref:refs/heads/dev"});
        assert_eq!(
            match_claims(&role, &wrong_sub).expect_err("sub").claim(),
            Some("sub")
        );
        assert_eq!(
            match_claims(&role, &json!([1])),
            Err(ClaimError::NotAnObject)
        );
    }

    #[test]
    fn glob_claims_and_json_pointers() {
        let role = role(
            "glob_claims = [\"ref\"]\nclaims = { ref = \"refs/tags/v*\", \"/kubernetes.io/namespace\" = \"ci\", \"oidc.circleci.com/project-id\" = \"p1\" }",
        );
        let good = token(json!({
            "ref": "refs/tags/v1.0",
            "kubernetes.io": {"namespace": "ci"},
            "oidc.circleci.com/project-id": "p1"
        }));
        assert_eq!(match_claims(&role, &good), Ok(()));
        let mut bad = good.clone();
        bad["ref"] = json!("refs/heads/main");
        assert_eq!(
            match_claims(&role, &bad).expect_err("glob").claim(),
            Some("ref")
        );
        let mut bad = good;
        bad["kubernetes.io"]["namespace"] = json!("prod");
        assert_eq!(
            match_claims(&role, &bad).expect_err("pointer").claim(),
            Some("/kubernetes.io/namespace")
        );
    }

    #[test]
    fn not_glob_unless_asked() {
        let role = role("claims = { ref = \"refs/tags/v*\" }");
        let literal = token(json!({"ref": "refs/tags/v*"}));
        assert_eq!(match_claims(&role, &literal), Ok(()));
        let other = token(json!({"ref": "refs/tags/v1"}));
        assert!(match_claims(&role, &other).is_err());
    }

    #[test]
    fn matcher_serde_round_trip() {
        let matcher: ClaimMatcher = serde_json::from_str(r#"["a", 1, true]"#).expect("parses");
        assert_eq!(
            matcher,
            ClaimMatcher::AnyOf(vec![
                ClaimValue::String("a".into()),
                ClaimValue::Integer(1),
                ClaimValue::Bool(true)
            ])
        );
        assert_eq!(
            serde_json::to_string(&matcher).expect("ok"),
            r#"["a",1,true]"#
        );
        assert!(serde_json::from_str::<ClaimMatcher>("1.5").is_err());
        assert!(serde_json::from_str::<ClaimMatcher>(r#"{"a":1}"#).is_err());
        assert!(serde_json::from_str::<ClaimMatcher>(r#"[["a"]]"#).is_err());
    }

    #[test]
    fn detail_truncates_long_values() {
        let role = role("claims = { ref = \"refs/heads/main\" }");
        let long = "x".repeat(10_000);
        let err = match_claims(&role, &token(json!({"ref": long}))).expect_err("no match");
        assert!(err.detail().len() < 400, "{}", err.detail().len());
    }
}
