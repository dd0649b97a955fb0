//! Path patterns and the ACL evaluator, with Vault's semantics.
//!
//! A pattern is an exact path (`secret/data/prod/api`), a prefix ending in `*`
//! (`secret/data/prod/*`; `*` is allowed only as the last character), and may hold `+` segments
//! that match exactly one path segment (`secret/data/+/config`).
//!
//! For a request path the ACL picks one rule: an exact rule if there is one, otherwise the most
//! specific matching wildcard rule, ranked as Vault ranks them (the later the first wildcard the
//! better; then no trailing `*` over a trailing `*`; then fewer `+`; then longer; then
//! lexicographically larger). Only that rule's capabilities count, so a narrow rule can take
//! away what a broad one gives. `deny` in the chosen rule denies everything; no match denies.
//!
//! Patterns are compiled once per [`Acl`]: exact rules go into a hash map, wildcard rules into a
//! list sorted most specific first, so a lookup is one hash probe plus a scan that stops at the
//! first match, with no allocation.
//!
//! A pattern may be *templated* with `{{claims.NAME}}` (a verified claim of the token's JWT
//! login) and `{{role}}` (its role), as in `secret/data/ci/{{claims.repository_id}}/*`: the
//! ACL of a token is compiled with its own values substituted ([`TemplateContext`]). A value
//! is substituted only when it is a JSON string or integer of [`MAX_TEMPLATE_VALUE`] bytes at
//! most, not empty, made of safe characters (no `/`, `*`, `+`, `{`, `}`, white space or control
//! characters, and not `.`/`..`); otherwise — or for a token without login claims — the rule
//! matches nothing. A rule that denies cannot be templated: a deny that matched nothing for an
//! odd claim value would silently stop denying.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::capability::{Capability, CapabilitySet};
use crate::error::PolicyError;
use crate::policy::Policy;

const MAX_PATTERN_LEN: usize = 1024;
/// Longest claim value substituted into a templated path.
pub const MAX_TEMPLATE_VALUE: usize = 128;

/// What a templated pattern is rendered with: the token's role and the verified claims of
/// its JWT login. Tokens that did not come from a JWT login have neither.
#[derive(Debug, Clone, Copy, Default)]
pub struct TemplateContext<'a> {
    /// The role the token logged in with.
    pub role: Option<&'a str>,
    /// The verified claims of that login.
    pub claims: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

/// Why a template could not be rendered for a token (for `explain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateMiss {
    /// The token has no login claims (or no role): it did not come from a JWT login.
    NoLoginContext,
    /// The token lacks the claim.
    MissingClaim(String),
    /// The claim is not a string or integer, or holds characters a path cannot.
    UnsafeValue(String),
}

impl fmt::Display for TemplateMiss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateMiss::NoLoginContext => f.write_str(
                "the token did not come from a JWT login, so templated rules match nothing",
            ),
            TemplateMiss::MissingClaim(name) => write!(f, "the token has no claim {name:?}"),
            TemplateMiss::UnsafeValue(name) => write!(
                f,
                "claim {name:?} is not a plain string or integer of safe characters (no /, *, +, .., braces, spaces)"
            ),
        }
    }
}

/// One `{{…}}` placeholder of a pattern.
enum Placeholder<'a> {
    Role,
    Claim(&'a str),
}

/// The placeholders of `pattern` with their byte ranges, or why the templating is invalid.
fn placeholders(
    pattern: &str,
) -> Result<Vec<(std::ops::Range<usize>, Placeholder<'_>)>, &'static str> {
    let mut out = Vec::new();
    let mut rest = 0;
    while let Some(open) = pattern[rest..].find("{{").map(|i| i + rest) {
        let close = pattern[open..]
            .find("}}")
            .map(|i| i + open)
            .ok_or("a `{{` without its `}}`")?;
        let inner = &pattern[open + 2..close];
        let placeholder = match inner {
            "role" => Placeholder::Role,
            _ => {
                let name = inner
                    .strip_prefix("claims.")
                    .ok_or("templates are `{{claims.NAME}}` or `{{role}}`")?;
                let valid = !name.is_empty()
                    && name.len() <= 64
                    && name.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':')
                    });
                if !valid {
                    return Err("a claim name in a template is 1-64 of `A-Z a-z 0-9 _ - . :`");
                }
                Placeholder::Claim(name)
            }
        };
        out.push((open..close + 2, placeholder));
        rest = close + 2;
    }
    if pattern[rest..].contains("}}") {
        return Err("a `}}` without its `{{`");
    }
    Ok(out)
}

/// A claim value fit to stand in a path, as text.
fn safe_value(value: &serde_json::Value) -> Option<String> {
    let text = match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        _ => return None,
    };
    let safe = !text.is_empty()
        && text.len() <= MAX_TEMPLATE_VALUE
        && text != "."
        && text != ".."
        && text.chars().all(|c| {
            !c.is_control() && !c.is_whitespace() && !matches!(c, '/' | '*' | '+' | '{' | '}')
        });
    safe.then_some(text)
}

/// A validated path pattern. Reads and writes as the string it was written as.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathPattern(String);

impl PathPattern {
    /// Validates `pattern`: not empty, no leading `/`, `*` only as the last character, `+` only
    /// as a whole segment, templates only as `{{claims.NAME}}` or `{{role}}`, no control
    /// characters.
    pub fn new(pattern: &str) -> Result<Self, PolicyError> {
        let invalid = |reason| PolicyError::InvalidPathPattern {
            pattern: pattern.to_owned(),
            reason,
        };
        if pattern.is_empty() {
            return Err(invalid("a path pattern cannot be empty"));
        }
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(invalid("a path pattern is limited to 1024 bytes"));
        }
        if pattern.starts_with('/') {
            return Err(invalid(
                "write paths without a leading `/`, as in `secret/data/app`",
            ));
        }
        if pattern.chars().any(char::is_control) {
            return Err(invalid("control characters are not allowed"));
        }
        // Check the templating, then the shape with every placeholder standing for a value.
        let holes = placeholders(pattern).map_err(invalid)?;
        let mut shaped = pattern.to_owned();
        for (range, _) in holes.iter().rev() {
            shaped.replace_range(range.clone(), "v");
        }
        let base = shaped.strip_suffix('*').unwrap_or(&shaped);
        if base.contains('*') {
            return Err(invalid(
                "`*` is only allowed as the last character, where it matches any suffix",
            ));
        }
        if base
            .split('/')
            .any(|segment| segment.contains('+') && segment != "+")
        {
            return Err(invalid(
                "`+` must be a whole path segment, as in `secret/data/+/config`",
            ));
        }
        Ok(Self(pattern.to_owned()))
    }

    /// A pattern from this crate's own constants, which the tests validate.
    pub(crate) fn trusted(pattern: &'static str) -> Self {
        Self(pattern.to_owned())
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the pattern holds `{{…}}` placeholders.
    pub fn is_templated(&self) -> bool {
        self.0.contains("{{")
    }

    /// The claim names its `{{claims.NAME}}` placeholders use.
    pub fn template_claims(&self) -> Vec<&str> {
        placeholders(&self.0)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(_, placeholder)| match placeholder {
                Placeholder::Claim(name) => Some(name),
                Placeholder::Role => None,
            })
            .collect()
    }

    /// The pattern with `context`'s values in its placeholders (itself when it has none), or
    /// why it cannot be rendered for this token — then the rule matches nothing.
    pub fn render(&self, context: &TemplateContext<'_>) -> Result<PathPattern, TemplateMiss> {
        if !self.is_templated() {
            return Ok(self.clone());
        }
        let holes = placeholders(&self.0).map_err(|_| TemplateMiss::NoLoginContext)?;
        let mut rendered = self.0.clone();
        for (range, placeholder) in holes.iter().rev() {
            let value = match placeholder {
                Placeholder::Role => context
                    .role
                    .map(|r| serde_json::Value::String(r.to_owned()))
                    .ok_or(TemplateMiss::NoLoginContext)?,
                Placeholder::Claim(name) => context
                    .claims
                    .ok_or(TemplateMiss::NoLoginContext)?
                    .get(*name)
                    .cloned()
                    .ok_or_else(|| TemplateMiss::MissingClaim((*name).to_owned()))?,
            };
            let name = match placeholder {
                Placeholder::Role => "role",
                Placeholder::Claim(name) => name,
            };
            let text =
                safe_value(&value).ok_or_else(|| TemplateMiss::UnsafeValue(name.to_owned()))?;
            rendered.replace_range(range.clone(), &text);
        }
        // A safe value cannot make the pattern invalid; refuse anything that would anyway.
        PathPattern::new(&rendered).map_err(|_| TemplateMiss::UnsafeValue("(rendered path)".into()))
    }

    /// Whether the pattern ends in `*` (matches every path starting with the rest).
    pub fn is_prefix(&self) -> bool {
        self.0.ends_with('*')
    }

    /// Whether the pattern has no wildcard at all.
    pub fn is_exact(&self) -> bool {
        !self.is_prefix() && !self.has_segment_wildcards()
    }

    /// Whether the pattern holds `+` segments.
    pub fn has_segment_wildcards(&self) -> bool {
        self.base().split('/').any(|segment| segment == "+")
    }

    /// Whether the pattern matches `path` (a leading `/` on `path` is ignored).
    ///
    /// For one-off checks; an [`Acl`] compiles its patterns once.
    pub fn matches(&self, path: &str) -> bool {
        let path = path.trim_start_matches('/');
        if self.is_exact() {
            return self.0 == path;
        }
        Matcher::compile(self).matches(path)
    }

    /// The pattern without its trailing `*`.
    fn base(&self) -> &str {
        self.0.strip_suffix('*').unwrap_or(&self.0)
    }

    /// Vault's ranking of wildcard patterns: larger is more specific.
    fn specificity(&self) -> Specificity {
        let base = self.base();
        let first_wildcard = base.find('+').unwrap_or(base.len());
        Specificity {
            first_wildcard,
            not_prefix: !self.is_prefix(),
            fewer_segment_wildcards: Reverse(base.split('/').filter(|s| *s == "+").count()),
            len: base.len(),
            base: base.to_owned(),
        }
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for PathPattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PathPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        PathPattern::new(&text).map_err(serde::de::Error::custom)
    }
}

/// Field order is the ranking order (derived `Ord` compares fields top to bottom).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Specificity {
    first_wildcard: usize,
    not_prefix: bool,
    fewer_segment_wildcards: Reverse<usize>,
    len: usize,
    base: String,
}

/// A compiled wildcard pattern.
#[derive(Debug, Clone)]
enum Matcher {
    /// `literal*` with no `+`: a plain string prefix.
    Prefix(String),
    /// Has `+` segments; `prefix` when it ends in `*`, in which case the last part matches as a
    /// prefix of its segment and any further segments are accepted.
    Segments { parts: Vec<Part>, prefix: bool },
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    AnySegment,
}

impl Matcher {
    fn compile(pattern: &PathPattern) -> Matcher {
        let base = pattern.base();
        if !pattern.has_segment_wildcards() {
            return Matcher::Prefix(base.to_owned());
        }
        let parts = base
            .split('/')
            .map(|segment| match segment {
                "+" => Part::AnySegment,
                literal => Part::Literal(literal.to_owned()),
            })
            .collect();
        Matcher::Segments {
            parts,
            prefix: pattern.is_prefix(),
        }
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            Matcher::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Matcher::Segments { parts, prefix } => segments_match(parts, *prefix, path),
        }
    }
}

fn segments_match(parts: &[Part], prefix: bool, path: &str) -> bool {
    let mut segments = path.split('/');
    let last = parts.len().saturating_sub(1);
    for (index, part) in parts.iter().enumerate() {
        let Some(segment) = segments.next() else {
            return false;
        };
        let matched = match part {
            Part::AnySegment => true,
            Part::Literal(literal) if prefix && index == last => segment.starts_with(literal),
            Part::Literal(literal) => segment == literal,
        };
        if !matched {
            return false;
        }
    }
    prefix || segments.next().is_none()
}

#[derive(Debug, Clone)]
struct WildcardRule {
    pattern: PathPattern,
    matcher: Matcher,
    capabilities: CapabilitySet,
}

/// The access decision structure for one token: the union of its policies, compiled.
///
/// Build it once per set of policies (the server can cache it per token) and query it per
/// request. Paths are API paths without `/v1/`, such as `secret/data/prod/api`; a leading `/` is
/// ignored.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    root: bool,
    exact: HashMap<String, CapabilitySet>,
    /// Most specific first.
    wildcard: Vec<WildcardRule>,
}

impl Acl {
    /// Compiles the rules of `policies`. Identical patterns (within a policy or across
    /// policies) take the union of their capabilities, except that `deny` in any of them leaves
    /// only `deny`. The root policy ([`Policy::is_root`]) allows everything everywhere.
    pub fn from_policies<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> Acl {
        Self::from_policies_with(policies, &TemplateContext::default())
    }

    /// Like [`Acl::from_policies`], with templated rules rendered for one token's `context`;
    /// a templated rule that cannot be rendered for it is left out (it matches nothing).
    pub fn from_policies_with<'a>(
        policies: impl IntoIterator<Item = &'a Policy>,
        context: &TemplateContext<'_>,
    ) -> Acl {
        let mut root = false;
        let mut rendered: Vec<(PathPattern, CapabilitySet)> = Vec::new();
        for policy in policies {
            root |= policy.is_root();
            for rule in &policy.rules {
                if let Ok(path) = rule.path.render(context) {
                    rendered.push((path, rule.capabilities));
                }
            }
        }
        let mut merged: BTreeMap<&PathPattern, CapabilitySet> = BTreeMap::new();
        for (path, capabilities) in &rendered {
            let entry = merged.entry(path).or_insert(CapabilitySet::EMPTY);
            *entry = if entry.is_denied() || capabilities.is_denied() {
                CapabilitySet::DENY
            } else {
                entry.union(*capabilities)
            };
        }

        let mut exact = HashMap::new();
        let mut wildcard = Vec::new();
        for (pattern, capabilities) in merged {
            if pattern.is_exact() {
                exact.insert(pattern.as_str().to_owned(), capabilities);
            } else {
                wildcard.push(WildcardRule {
                    pattern: pattern.clone(),
                    matcher: Matcher::compile(pattern),
                    capabilities,
                });
            }
        }
        wildcard.sort_by_cached_key(|rule| Reverse(rule.pattern.specificity()));
        Acl {
            root,
            exact,
            wildcard,
        }
    }

    /// Whether the root policy is among the policies (everything is allowed).
    pub fn is_root(&self) -> bool {
        self.root
    }

    /// The capabilities the chosen rule gives on `path`: [`CapabilitySet::ALL`] for root,
    /// [`CapabilitySet::DENY`] when the chosen rule denies or no rule matches.
    ///
    /// This is the lookup for every operation but `list`; see [`Acl::allows`].
    pub fn capabilities(&self, path: &str) -> CapabilitySet {
        self.lookup(path, false)
    }

    /// Whether `capability` is allowed on `path`.
    ///
    /// For [`Capability::List`] on a folder (`secret/metadata/app/`): an exact rule for the
    /// folder, with or without the slash, decides, as in Vault; otherwise the most specific
    /// wildcard rule for the folder without the slash (Vault's choice) and the one for the
    /// folder with it are both consulted: a `deny` in either wins, else either may grant. So
    /// `secret/metadata/app/*` and `secret/metadata/+` grant the list, and a deny on
    /// `secret/metadata/app/*` holds against a broader `secret/metadata/*` — where Vault would
    /// let the broad rule list the folder.
    pub fn allows(&self, path: &str, capability: Capability) -> bool {
        self.lookup(path, capability == Capability::List)
            .allows(capability)
    }

    /// The pattern of the rule chosen for `path`, if any (for audit logs and `explain`).
    pub fn matching_rule(&self, path: &str) -> Option<&str> {
        let path = path.trim_start_matches('/');
        if let Some((pattern, _)) = self.exact.get_key_value(path) {
            return Some(pattern);
        }
        self.wildcard
            .iter()
            .find(|rule| rule.matcher.matches(path))
            .map(|rule| rule.pattern.as_str())
    }

    fn lookup(&self, path: &str, list: bool) -> CapabilitySet {
        if self.root {
            return CapabilitySet::ALL;
        }
        let path = path.trim_start_matches('/');
        let normalise = |capabilities: Option<CapabilitySet>| match capabilities {
            Some(c) if !c.is_empty() && !c.is_denied() => c,
            _ => CapabilitySet::DENY,
        };
        // Vault's `AllowOperation`: an exact rule for the path; for a list of `folder/`, an
        // exact rule for `folder`; then the most specific wildcard rule (for a list, first
        // for `folder` without the slash, then for `folder/`).
        let exact = self.exact.get(path).copied().or_else(|| {
            let trimmed = path.strip_suffix('/').filter(|_| list)?;
            self.exact.get(trimmed).copied()
        });
        if let Some(capabilities) = exact {
            return normalise(Some(capabilities));
        }
        let Some(folder) = path.strip_suffix('/').filter(|_| list) else {
            return normalise(self.best_wildcard(path));
        };
        // A list of `folder/`: Vault decides by the rule for `folder` when one matches, which
        // lets a broad `secret/metadata/*` list a folder that `folder/*` denies. Here the rule
        // for `folder/` is consulted too and an explicit deny in either wins; otherwise either
        // may grant (so `secret/metadata/+` and `secret/metadata/team/*` both list `team/`).
        let chosen = [self.best_wildcard(folder), self.best_wildcard(path)];
        if chosen.iter().flatten().any(|c| c.is_denied()) {
            return CapabilitySet::DENY;
        }
        normalise(Some(
            chosen
                .into_iter()
                .flatten()
                .fold(CapabilitySet::EMPTY, CapabilitySet::union),
        ))
    }

    fn best_wildcard(&self, path: &str) -> Option<CapabilitySet> {
        self.wildcard
            .iter()
            .find(|rule| rule.matcher.matches(path))
            .map(|rule| rule.capabilities)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Rule;

    fn rule(path: &str, capabilities: &[Capability]) -> Rule {
        Rule {
            path: PathPattern::new(path).expect("valid pattern"),
            capabilities: capabilities.iter().copied().collect(),
        }
    }

    fn acl(rules: Vec<Rule>) -> Acl {
        Acl::from_policies([&Policy::new(rules)])
    }

    #[test]
    fn list_of_a_folder_grants_as_vault_and_a_deny_on_either_path_wins() {
        let acl = acl(vec![
            rule("secret/metadata/*", &[Capability::List]),
            rule("secret/metadata/private/*", &[Capability::Deny]),
            rule("secret/metadata/team/*", &[Capability::List]),
            rule("secret/metadata/app", &[Capability::List]),
        ]);
        assert!(!acl.allows("secret/metadata/private/", Capability::List));
        assert!(acl.allows("secret/metadata/team/", Capability::List));
        assert!(acl.allows("secret/metadata/public/", Capability::List));
        // An exact rule on the folder's name also grants its list.
        assert!(acl.allows("secret/metadata/app/", Capability::List));
        let only_folder =
            super::tests::acl(vec![rule("secret/metadata/team/*", &[Capability::List])]);
        assert!(only_folder.allows("secret/metadata/team/", Capability::List));
        assert!(!only_folder.allows("secret/metadata/team", Capability::List));
        assert!(!only_folder.allows("secret/metadata/", Capability::List));
        // Vault's own way still grants: a `+` rule matches the folder without its slash.
        let plus = super::tests::acl(vec![rule("secret/metadata/+", &[Capability::List])]);
        assert!(plus.allows("secret/metadata/x/", Capability::List));
        // A broader rule without list does not hide a folder rule that grants it.
        let mixed = super::tests::acl(vec![
            rule("secret/metadata/*", &[Capability::Read]),
            rule("secret/metadata/team/*", &[Capability::List]),
        ]);
        assert!(mixed.allows("secret/metadata/team/", Capability::List));
        assert!(!mixed.allows("secret/metadata/other/", Capability::List));
    }

    fn claims(pairs: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        pairs.as_object().cloned().expect("an object")
    }

    #[test]
    fn templated_rules_render_per_token_and_unsafe_values_match_nothing() {
        let templated = acl(vec![rule(
            "secret/data/ci/{{claims.repository_id}}/*",
            &[Capability::Read],
        )]);
        // Without login claims, or without a context at all, the rule matches nothing.
        assert!(!templated.allows("secret/data/ci/74/x", Capability::Read));
        let policy = Policy::new(vec![rule(
            "secret/data/ci/{{claims.repository_id}}/*",
            &[Capability::Read],
        )]);
        let for_claims = |value: serde_json::Value| {
            let claims = claims(serde_json::json!({ "repository_id": value }));
            Acl::from_policies_with(
                [&policy],
                &TemplateContext {
                    role: Some("deploy"),
                    claims: Some(&claims),
                },
            )
        };
        let repo74 = for_claims(serde_json::json!("74"));
        assert!(repo74.allows("secret/data/ci/74/x", Capability::Read));
        assert!(!repo74.allows("secret/data/ci/75/x", Capability::Read));
        assert!(!repo74.allows("secret/data/ci/74", Capability::Read));
        // An integer claim renders as its digits.
        assert!(for_claims(serde_json::json!(74)).allows("secret/data/ci/74/x", Capability::Read));
        for unsafe_value in [
            serde_json::json!("74/../75"),
            serde_json::json!("*"),
            serde_json::json!("+"),
            serde_json::json!(""),
            serde_json::json!(".."),
            serde_json::json!("a b"),
            serde_json::json!("x}}y"),
            serde_json::json!(1.5),
            serde_json::json!(true),
            serde_json::json!(["74"]),
            serde_json::json!("7".repeat(MAX_TEMPLATE_VALUE + 1)),
        ] {
            let acl = for_claims(unsafe_value.clone());
            for path in [
                "secret/data/ci/75/x",
                "secret/data/ci/74/x",
                "secret/data/ci/x",
            ] {
                assert!(
                    !acl.allows(path, Capability::Read),
                    "{unsafe_value} → {path}"
                );
            }
        }
        // `{{role}}` too.
        let by_role = Policy::new(vec![rule(
            "secret/data/roles/{{role}}",
            &[Capability::Read],
        )]);
        let acl = Acl::from_policies_with(
            [&by_role],
            &TemplateContext {
                role: Some("deploy"),
                claims: None,
            },
        );
        assert!(acl.allows("secret/data/roles/deploy", Capability::Read));
    }

    #[test]
    fn template_syntax_is_checked() {
        for good in [
            "secret/data/ci/{{claims.repository_id}}/*",
            "secret/data/{{role}}/{{claims.ref_type}}-x",
            "secret/data/{{claims.oidc.circleci.com:project}}",
        ] {
            assert!(PathPattern::new(good).is_ok(), "{good}");
        }
        for bad in [
            "secret/{{claims.}}",
            "secret/{{claim.repository}}",
            "secret/{{claims.repository",
            "secret/claims}}",
            "secret/{{claims.a b}}",
            "secret/{{env.HOME}}",
        ] {
            assert!(PathPattern::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pattern_validation() {
        for good in [
            "secret/data/x",
            "secret/*",
            "*",
            "secret/+/x",
            "secret/+/x*",
            "a/+*",
        ] {
            assert!(PathPattern::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/secret",
            "sec*ret",
            "secret/*/x",
            "a/b+c/d",
            "a/{{x}}",
            "a\nb",
        ] {
            assert!(PathPattern::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn exact_prefix_and_segment_matching() {
        let exact = PathPattern::new("secret/data/a").expect("valid");
        assert!(exact.matches("secret/data/a"));
        assert!(exact.matches("/secret/data/a"));
        assert!(!exact.matches("secret/data/ab"));

        let prefix = PathPattern::new("secret/data/prod-*").expect("valid");
        assert!(prefix.matches("secret/data/prod-api/x/y"));
        assert!(!prefix.matches("secret/data/staging"));

        let segment = PathPattern::new("secret/data/+/config").expect("valid");
        assert!(segment.matches("secret/data/app/config"));
        assert!(!segment.matches("secret/data/app/x/config"));
        assert!(!segment.matches("secret/data/app/config/more"));

        let segment_prefix = PathPattern::new("secret/+/team-*").expect("valid");
        assert!(segment_prefix.matches("secret/data/team-a/x/y"));
        assert!(!segment_prefix.matches("secret/data/other"));
        assert!(!segment_prefix.matches("secret/data"));
    }

    #[test]
    fn most_specific_rule_wins() {
        let acl = acl(vec![
            rule("secret/*", &[Capability::Read, Capability::List]),
            rule("secret/data/prod/*", &[Capability::Deny]),
            rule("secret/data/prod/api", &[Capability::Read]),
            rule("secret/data/+/shared", &[Capability::Update]),
        ]);
        assert!(acl.allows("secret/data/dev/x", Capability::Read));
        assert!(!acl.allows("secret/data/prod/db", Capability::Read));
        assert!(acl.allows("secret/data/prod/api", Capability::Read));
        // `secret/data/+/shared`: first wildcard at 12, later than `secret/*` (7) but earlier
        // than `secret/data/prod/*` (17), so prod stays denied and dev gets update only.
        assert!(!acl.allows("secret/data/prod/shared", Capability::Update));
        assert!(acl.allows("secret/data/dev/shared", Capability::Update));
        assert!(!acl.allows("secret/data/dev/shared", Capability::Read));
        assert_eq!(
            acl.matching_rule("secret/data/dev/shared"),
            Some("secret/data/+/shared")
        );
    }

    #[test]
    fn vault_ordering_examples() {
        // foo/a* over foo/+ (later first wildcard)
        let a = acl(vec![
            rule("foo/+", &[Capability::Read]),
            rule("foo/a*", &[Capability::List]),
        ]);
        assert_eq!(a.matching_rule("foo/abc"), Some("foo/a*"));
        // foo/+ over foo/* (same first wildcard position, not a prefix)
        let b = acl(vec![
            rule("foo/*", &[Capability::Read]),
            rule("foo/+", &[Capability::List]),
        ]);
        assert_eq!(b.matching_rule("foo/x"), Some("foo/+"));
        assert_eq!(b.matching_rule("foo/x/y"), Some("foo/*"));
        // foo/bar/+/baz over foo/+/+/baz (fewer `+`; also later first wildcard)
        let c = acl(vec![
            rule("foo/+/+/baz", &[Capability::Read]),
            rule("foo/bar/+/baz", &[Capability::List]),
        ]);
        assert_eq!(c.matching_rule("foo/bar/x/baz"), Some("foo/bar/+/baz"));
        // foo/+/bar/ba* over foo/+/bar/b* (longer)
        let d = acl(vec![
            rule("foo/+/bar/b*", &[Capability::Read]),
            rule("foo/+/bar/ba*", &[Capability::List]),
        ]);
        assert_eq!(d.matching_rule("foo/x/bar/baz"), Some("foo/+/bar/ba*"));
    }

    #[test]
    fn identical_patterns_union_and_deny_wins() {
        let one = Policy::new(vec![rule("secret/data/a", &[Capability::Read])]);
        let two = Policy::new(vec![rule("secret/data/a", &[Capability::Update])]);
        let acl = Acl::from_policies([&one, &two]);
        assert_eq!(
            acl.capabilities("secret/data/a"),
            CapabilitySet::from([Capability::Read, Capability::Update])
        );
        let three = Policy::new(vec![rule("secret/data/a", &[Capability::Deny])]);
        let acl = Acl::from_policies([&one, &three, &two]);
        assert_eq!(acl.capabilities("secret/data/a"), CapabilitySet::DENY);
    }

    #[test]
    fn default_deny_and_root() {
        let acl = acl(vec![rule("secret/data/a", &[Capability::Read])]);
        assert_eq!(acl.capabilities("secret/data/b"), CapabilitySet::DENY);
        assert!(!acl.allows("sys/seal", Capability::Update));
        let root = Policy::builtin("root").expect("built in");
        let acl = Acl::from_policies([&root]);
        assert!(acl.is_root());
        assert!(acl.allows("sys/seal", Capability::Sudo));
    }

    #[test]
    fn list_uses_the_path_without_trailing_slash() {
        let acl = acl(vec![rule("secret/metadata/app", &[Capability::List])]);
        assert!(acl.allows("secret/metadata/app/", Capability::List));
        assert!(!acl.allows("secret/metadata/app/", Capability::Read));
        assert_eq!(
            acl.capabilities("secret/metadata/app/"),
            CapabilitySet::DENY
        );
    }

    #[test]
    fn default_policy_allows_token_self_service() {
        let default = Policy::builtin("default").expect("built in");
        let acl = Acl::from_policies([&default]);
        assert!(acl.allows("auth/token/lookup-self", Capability::Read));
        assert!(acl.allows("auth/token/renew-self", Capability::Update));
        assert!(acl.allows("auth/token/revoke-self", Capability::Update));
        assert!(!acl.allows("secret/data/x", Capability::Read));
    }
}
