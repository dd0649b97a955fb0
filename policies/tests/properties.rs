//! Property tests of the ACL evaluator (against a direct transcription of Vault's algorithm)
//! and of claim matching.

use std::collections::BTreeMap;

use policies::claims::glob_matches;
use policies::{
    Acl, Capability, CapabilitySet, ClaimMatcher, ClaimValue, PathPattern, Policy, Role, Rule,
    match_claims,
};
use proptest::prelude::*;
use serde_json::json;

// ---------------------------------------------------------------------------------------------
// Generators

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["a", "b", "c", "ab"]).prop_map(String::from),
        1 => Just("+".to_owned()),
    ]
}

/// Valid patterns over a tiny alphabet so that they collide and overlap often. The first
/// segment is always a literal, so paths under `zzz/` are never covered.
fn pattern() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["a", "b", "ab"]),
        prop::collection::vec(segment(), 0..4),
        0..3u8,
    )
        .prop_map(|(first, rest, suffix)| {
            let mut pattern = std::iter::once(first.to_owned())
                .chain(rest)
                .collect::<Vec<_>>()
                .join("/");
            match suffix {
                1 => pattern.push('*'),
                2 => pattern.push_str("/*"),
                _ => {}
            }
            pattern
        })
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec!["a", "b", "c", "ab", "abc", ""]),
        1..6,
    )
    .prop_map(|segments| segments.join("/"))
}

fn capabilities() -> impl Strategy<Value = CapabilitySet> {
    prop::collection::vec(any::<bool>(), 8).prop_map(|bits| {
        Capability::ALL
            .into_iter()
            .zip(bits)
            .filter(|(_, on)| *on)
            .map(|(capability, _)| capability)
            .collect()
    })
}

fn rules() -> impl Strategy<Value = Vec<(String, CapabilitySet)>> {
    prop::collection::vec((pattern(), capabilities()), 0..12)
}

fn policy(rules: &[(String, CapabilitySet)]) -> Policy {
    Policy::new(
        rules
            .iter()
            .map(|(path, capabilities)| Rule {
                path: PathPattern::new(path).expect("generated patterns are valid"),
                capabilities: *capabilities,
            })
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// Reference model: Vault's `AllowOperation`/`CheckAllowedFromNonExactPaths`, transcribed
// plainly (no compilation, no sorting ahead of time).

fn model(rules: &[(String, CapabilitySet)], path: &str) -> CapabilitySet {
    model_op(rules, path, false)
}

/// `list`: a request for `folder/` may also be decided by an exact rule for `folder`; then the
/// wildcard rules chosen for `folder` (Vault's) and for `folder/`: a deny in either wins,
/// else the union of what they grant.
fn model_op(rules: &[(String, CapabilitySet)], path: &str, list: bool) -> CapabilitySet {
    let path = path.trim_start_matches('/');
    let mut merged: BTreeMap<&str, CapabilitySet> = BTreeMap::new();
    for (pattern, capabilities) in rules {
        let entry = merged.entry(pattern).or_default();
        *entry = if entry.is_denied() || capabilities.is_denied() {
            CapabilitySet::DENY
        } else {
            entry.union(*capabilities)
        };
    }
    let is_exact = |p: &str| !p.ends_with('*') && !p.split('/').any(|s| s == "+");
    let normalise = |caps: Option<CapabilitySet>| match caps {
        Some(caps) if !caps.is_empty() && !caps.is_denied() => caps,
        _ => CapabilitySet::DENY,
    };
    let exact = |target: &str| {
        merged
            .iter()
            .find(|(pattern, _)| is_exact(pattern) && **pattern == target)
            .map(|(_, caps)| *caps)
    };
    let wildcard = |target: &str| {
        let mut best: Option<(Descr, CapabilitySet)> = None;
        for (pattern, caps) in &merged {
            if is_exact(pattern) {
                continue;
            }
            if let Some(descr) = vault_match(pattern, target) {
                let better = match &best {
                    None => true,
                    Some((current, _)) => vault_less(current, &descr),
                };
                if better {
                    best = Some((descr, *caps));
                }
            }
        }
        best.map(|(_, caps)| caps)
    };
    let folder = path.strip_suffix('/').filter(|_| list);
    if let Some(caps) = exact(path).or_else(|| folder.and_then(exact)) {
        return normalise(Some(caps));
    }
    let Some(folder) = folder else {
        return normalise(wildcard(path));
    };
    let chosen = [wildcard(folder), wildcard(path)];
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

struct Descr {
    first_wc_or_glob: usize,
    wildcards: usize,
    is_prefix: bool,
    wc_path: String,
}

fn vault_match(pattern: &str, path: &str) -> Option<Descr> {
    let is_prefix = pattern.ends_with('*');
    let wc_path = pattern.strip_suffix('*').unwrap_or(pattern).to_owned();
    if !pattern.contains('+') {
        // A prefix rule from the radix tree.
        let matched = path.starts_with(&wc_path);
        return matched.then_some(Descr {
            first_wc_or_glob: wc_path.len(),
            wildcards: 0,
            is_prefix: true,
            wc_path,
        });
    }
    let path_parts: Vec<&str> = path.split('/').collect();
    let acl_parts: Vec<&str> = wc_path.split('/').collect();
    if path_parts.len() < acl_parts.len() {
        return None;
    }
    if !is_prefix && path_parts.len() != acl_parts.len() {
        return None;
    }
    let mut wildcards = 0;
    for (i, acl_part) in acl_parts.iter().enumerate() {
        let last = i == acl_parts.len() - 1;
        let matched = *acl_part == "+"
            || *acl_part == path_parts[i]
            || (is_prefix && last && path_parts[i].starts_with(acl_part));
        if !matched {
            return None;
        }
        if *acl_part == "+" {
            wildcards += 1;
        }
    }
    Some(Descr {
        first_wc_or_glob: pattern.find('+').unwrap_or(usize::MAX),
        wildcards,
        is_prefix,
        wc_path,
    })
}

/// Vault's `less`: whether `i` has lower priority than `j`.
fn vault_less(i: &Descr, j: &Descr) -> bool {
    if i.first_wc_or_glob != j.first_wc_or_glob {
        return i.first_wc_or_glob < j.first_wc_or_glob;
    }
    if i.is_prefix != j.is_prefix {
        return i.is_prefix;
    }
    if i.wildcards != j.wildcards {
        return i.wildcards > j.wildcards;
    }
    if i.wc_path.len() != j.wc_path.len() {
        return i.wc_path.len() < j.wc_path.len();
    }
    i.wc_path < j.wc_path
}

// ---------------------------------------------------------------------------------------------
// ACL properties

proptest! {
    #[test]
    fn acl_agrees_with_vault_model(
        policies in prop::collection::vec(rules(), 1..4),
        path in path(),
    ) {
        let all: Vec<(String, CapabilitySet)> = policies.iter().flatten().cloned().collect();
        let compiled: Vec<Policy> = policies.iter().map(|rules| policy(rules)).collect();
        let acl = Acl::from_policies(&compiled);
        prop_assert_eq!(acl.capabilities(&path), model(&all, &path));
    }

    #[test]
    fn deny_on_the_chosen_pattern_always_wins(rules in rules(), path in path()) {
        let base = policy(&rules);
        let acl = Acl::from_policies([&base]);
        let chosen = acl.matching_rule(&path).map(str::to_owned);
        // Deny the exact path, and separately the pattern that was chosen: both deny.
        let target = path.trim_start_matches('/');
        if !target.is_empty() {
            let deny = policy(&[(target.to_owned(), CapabilitySet::DENY)]);
            let acl = Acl::from_policies([&base, &deny]);
            prop_assert_eq!(acl.capabilities(&path), CapabilitySet::DENY);
            for capability in Capability::ALL {
                prop_assert!(!acl.allows(&path, capability));
            }
        }
        if let Some(chosen) = chosen {
            let deny = policy(&[(chosen, CapabilitySet::from([Capability::Deny, Capability::Read]))]);
            let acl = Acl::from_policies([&deny, &base]);
            prop_assert_eq!(acl.capabilities(&path), CapabilitySet::DENY);
        }
    }

    #[test]
    fn unrelated_rules_never_change_a_decision(
        rules in rules(),
        extra in pattern(),
        extra_caps in capabilities(),
        path in path(),
    ) {
        let extra_pattern = PathPattern::new(&extra).expect("valid");
        prop_assume!(!extra_pattern.matches(&path));
        let before = Acl::from_policies([&policy(&rules)]);
        let after = Acl::from_policies([&policy(&rules), &policy(&[(extra, extra_caps)])]);
        prop_assert_eq!(before.capabilities(&path), after.capabilities(&path));
        for capability in Capability::ALL.into_iter().filter(|c| *c != Capability::List) {
            prop_assert_eq!(before.allows(&path, capability), after.allows(&path, capability));
        }
    }

    #[test]
    fn root_allows_everything(rules in rules(), path in path()) {
        let root = Policy::builtin("root").expect("built in");
        let deny_all = policy(&[("a*".to_owned(), CapabilitySet::DENY)]);
        let acl = Acl::from_policies([&policy(&rules), &deny_all, &root]);
        prop_assert_eq!(acl.capabilities(&path), CapabilitySet::ALL);
        for capability in Capability::ALL.into_iter().filter(|c| *c != Capability::Deny) {
            prop_assert!(acl.allows(&path, capability));
        }
    }

    #[test]
    fn uncovered_paths_are_denied(rules in rules(), path in path()) {
        let acl = Acl::from_policies([&policy(&rules), &Policy::builtin("default").expect("built in")]);
        let uncovered = format!("zzz/{path}");
        prop_assert_eq!(acl.capabilities(&uncovered), CapabilitySet::DENY);
        for capability in Capability::ALL {
            prop_assert!(!acl.allows(&uncovered, capability));
        }
    }

    #[test]
    fn exact_rule_beats_every_wildcard(rules in rules(), path in path(), caps in capabilities()) {
        let target = path.trim_start_matches('/').to_owned();
        prop_assume!(!target.is_empty() && !caps.is_empty() && !caps.is_denied());
        let mut rules: Vec<_> = rules.into_iter().filter(|(p, _)| *p != target).collect();
        rules.push((target.clone(), caps));
        let acl = Acl::from_policies([&policy(&rules)]);
        prop_assert_eq!(acl.capabilities(&path), caps);
        prop_assert_eq!(acl.matching_rule(&path), Some(target.as_str()));
    }

    #[test]
    fn list_on_a_folder_agrees_with_vault_model(rules in rules(), path in path()) {
        let acl = Acl::from_policies([&policy(&rules)]);
        let folder = format!("{}/", path.trim_end_matches('/'));
        let expected = model_op(&rules, &folder, true);
        prop_assert_eq!(acl.allows(&folder, Capability::List), expected.allows(Capability::List));
    }
}

// ---------------------------------------------------------------------------------------------
// Templated rules: rendering for one token, then the plain ACL

/// Claim values: safe ones that collide with the pattern alphabet, and every kind of unsafe
/// one (a separator, wildcards, traversal, empty, blank).
fn claim_value() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "a", "b", "ab", "c", "74", "a/b", "74/../75", "*", "+", "", ".", "..", "a b", "{x}",
    ])
    .prop_map(String::from)
}

/// Rules of which some hold a `{{claims.id}}` placeholder in place of a `b`. Templated rules
/// never deny (documents refuse that).
fn templated_rules() -> impl Strategy<Value = Vec<(String, CapabilitySet)>> {
    prop::collection::vec((pattern(), capabilities(), any::<bool>()), 0..10).prop_map(|rules| {
        rules
            .into_iter()
            .map(|(pattern, capabilities, templated)| {
                if templated && pattern.contains('b') && !capabilities.is_denied() {
                    (pattern.replacen('b', "{{claims.id}}", 1), capabilities)
                } else {
                    (pattern, capabilities)
                }
            })
            .collect()
    })
}

/// The model's rendering: the value substituted when it is safe, else the rule is dropped.
fn rendered_model(rules: &[(String, CapabilitySet)], value: &str) -> Vec<(String, CapabilitySet)> {
    let safe = !value.is_empty()
        && value != "."
        && value != ".."
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "/*+{}".contains(c));
    rules
        .iter()
        .filter_map(|(pattern, capabilities)| {
            if !pattern.contains("{{") {
                return Some((pattern.clone(), *capabilities));
            }
            let rendered = pattern.replace("{{claims.id}}", value);
            (safe && PathPattern::new(&rendered).is_ok()).then_some((rendered, *capabilities))
        })
        .collect()
}

proptest! {
    #[test]
    fn templated_rules_agree_with_the_model_after_substitution(
        rules in templated_rules(),
        value in claim_value(),
        path in path(),
    ) {
        let claims = json!({ "id": value });
        let context = policies::TemplateContext { role: Some("r"), claims: claims.as_object() };
        let acl = Acl::from_policies_with([&policy(&rules)], &context);
        prop_assert_eq!(acl.capabilities(&path), model(&rendered_model(&rules, &value), &path));
    }

    #[test]
    fn templated_rules_match_nothing_without_login_claims(rules in templated_rules(), path in path()) {
        let acl = Acl::from_policies([&policy(&rules)]);
        let untemplated: Vec<(String, CapabilitySet)> =
            rules.iter().filter(|(p, _)| !p.contains("{{")).cloned().collect();
        prop_assert_eq!(acl.capabilities(&path), model(&untemplated, &path));
    }

    #[test]
    fn a_templated_folder_never_grants_outside_the_value_folder(
        value in "[a-z0-9./*+ -]{0,6}",
        other in "[a-z0-9./*+-]{0,6}",
        own in any::<bool>(),
        rest in "[a-z0-9./]{0,6}",
    ) {
        // Paths under the value's own folder half the time, so grants are exercised too.
        let path = format!("ci/{}/{rest}", if own { &value } else { &other });
        let rules = vec![("ci/{{claims.id}}/*".to_owned(), CapabilitySet::from_iter([Capability::Read]))];
        let claims = json!({ "id": value });
        let context = policies::TemplateContext { role: Some("r"), claims: claims.as_object() };
        let acl = Acl::from_policies_with([&policy(&rules)], &context);
        if acl.allows(&path, Capability::Read) {
            let folder = format!("ci/{value}/");
            prop_assert!(path.starts_with(&folder), "{} granted for value {:?}", path, value);
            prop_assert!(!value.contains('/') && !value.is_empty() && value != "..");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Claim matching properties

/// A plain recursive glob matcher to check the iterative one against.
fn glob_reference(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| glob_reference(rest, &text[skip..])),
        Some((c, rest)) => text.first() == Some(c) && glob_reference(rest, &text[1..]),
    }
}

fn role(claims: BTreeMap<String, ClaimMatcher>, glob: &[&str]) -> Role {
    let mut role: Role = toml::from_str(
        "issuer = \"gh\"\naudiences = [\"aud\"]\nclaims = { repository_id = \"1\" }",
    )
    .expect("role parses");
    role.claims = claims;
    role.glob_claims = glob.iter().map(|s| (*s).to_owned()).collect();
    role
}

proptest! {
    #[test]
    fn glob_matches_reference(pattern in "[ab*/]{0,8}", text in "[ab/]{0,10}") {
        prop_assert_eq!(
            glob_matches(&pattern, &text),
            glob_reference(pattern.as_bytes(), text.as_bytes())
        );
    }

    #[test]
    fn numbers_and_strings_never_match_each_other(id in 0i64..1_000_000) {
        let as_string = role(
            BTreeMap::from([("repository_id".to_owned(), ClaimMatcher::Exact(ClaimValue::String(id.to_string())))]),
            &[],
        );
        let as_number = role(
            BTreeMap::from([("repository_id".to_owned(), ClaimMatcher::Exact(ClaimValue::Integer(id)))]),
            &[],
        );
        let string_claim = json!({"aud": "aud", "repository_id": id.to_string()});
        let number_claim = json!({"aud": "aud", "repository_id": id});
        prop_assert!(match_claims(&as_string, &string_claim).is_ok());
        prop_assert!(match_claims(&as_number, &number_claim).is_ok());
        prop_assert!(match_claims(&as_string, &number_claim).is_err());
        prop_assert!(match_claims(&as_number, &string_claim).is_err());
    }

    #[test]
    fn client_message_never_reveals_the_expected_value(
        expected in "[a-z]{6,12}",
        actual in "[a-z]{1,12}",
    ) {
        prop_assume!(expected != actual && !actual.contains(&expected));
        let role = role(
            BTreeMap::from([("ref".to_owned(), ClaimMatcher::Exact(ClaimValue::String(expected.clone())))]),
            &[],
        );
        let err = match_claims(&role, &json!({"aud": "aud", "ref": actual}))
            .expect_err("different values");
        prop_assert!(!err.to_string().contains(&expected));
        prop_assert!(err.detail().contains(&expected));
    }

    #[test]
    fn array_claims_match_if_any_element_does(
        values in prop::collection::vec("[a-c]{1,3}", 0..5),
        wanted in "[a-c]{1,3}",
    ) {
        let role = role(
            BTreeMap::from([("groups".to_owned(), ClaimMatcher::Exact(ClaimValue::String(wanted.clone())))]),
            &[],
        );
        let result = match_claims(&role, &json!({"aud": ["x", "aud"], "groups": values}));
        prop_assert_eq!(result.is_ok(), values.contains(&wanted));
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Arbitrary text into the document parser: a clear error or a document, never a panic.
    #[test]
    fn parser_never_panics_on_arbitrary_text(text in ".{0,400}") {
        if let Ok(document) = policies::parse_document(&text) {
            let _ = document.validate();
            let _ = policies::lint(&document);
        }
    }

    /// TOML-shaped noise with the real table names.
    #[test]
    fn parser_never_panics_on_toml_shaped_noise(
        table in "(issuers|roles|policies)\\.[a-z-]{1,8}",
        key in "[a-z_]{1,12}",
        value in "(\"[^\"\\\\]{0,20}\"|[0-9]{1,5}|true|\\[\\]|\\{\\})",
    ) {
        let text = format!("[{table}]\n{key} = {value}\n");
        if let Ok(document) = policies::parse_document(&text) {
            let _ = document.validate();
        }
    }
}
