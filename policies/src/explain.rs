//! `vaultctl policy test`: could a token with these claims log in, and what would it get?
//!
//! [`explain`] checks claims against a role, every binding on its own line; the server adds
//! the checks of a real token (format, algorithm, signature, times, `jti`) with
//! [`Explanation::with_token_checks`], and [`time_checks`] is the part of those that needs no
//! key, so the CLI can run it offline.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::capability::CapabilitySet;
use crate::claims::check_bindings;
use crate::document::Document;
use crate::duration::HumanDuration;
use crate::paths::TemplateContext;

/// The answer of [`explain`]. Serializes to JSON for `--format json` (and from the server's
/// answer back); `Display` is the text form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// The role asked about.
    pub role: String,
    /// Whether every check passed.
    pub can_login: bool,
    /// The first failing check, in full (this is an operator tool, so expected values are
    /// shown).
    pub failure: Option<String>,
    /// `None` when only claims were given; `Some(true)` when a token's signature was verified
    /// by its issuer's key; `Some(false)` when a token was decoded without (or failed)
    /// verification, so its claims are only what it says.
    #[serde(default)]
    pub signature_verified: Option<bool>,
    /// Every check, in order: the token's own (when a token was given), then `iss`, `aud`,
    /// `bound_subject` and each claim binding of the role.
    #[serde(default)]
    pub checks: Vec<Check>,
    /// The policies a token of the role carries (including `default`), whether or not these
    /// claims could log in.
    pub policies: Vec<String>,
    /// The rules of those policies.
    pub rules: Vec<GrantedRule>,
    /// The role's token TTL and maximum TTL, if the role exists.
    pub ttl: Option<HumanDuration>,
    /// The role's maximum TTL, if the role exists.
    pub max_ttl: Option<HumanDuration>,
    /// Other remarks, such as policies the document does not define.
    pub notes: Vec<String>,
}

/// One check of a login and how it went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// What was checked: a claim as the role names it (`aud`, `ref`,
    /// `/kubernetes.io/namespace`) or a property of the token (`signature`, `exp`).
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// What the role or the issuer wants, rendered.
    pub wanted: String,
    /// What the token has, rendered.
    pub found: String,
    /// Why a failure is nearly a match (letter case, a number where a string is bound, the
    /// other GitHub subject form, a trailing slash), or how a pass came about.
    pub hint: Option<String>,
}

impl Check {
    /// A check that passed.
    pub fn pass(name: &str, wanted: impl Into<String>, found: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            passed: true,
            wanted: wanted.into(),
            found: found.into(),
            hint: None,
        }
    }

    /// A check that failed.
    pub fn fail(name: &str, wanted: impl Into<String>, found: impl Into<String>) -> Self {
        Self {
            passed: false,
            ..Self::pass(name, wanted, found)
        }
    }

    /// This check, passed or failed as `passed` says.
    fn outcome(
        passed: bool,
        name: &str,
        wanted: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        Self {
            passed,
            ..Self::pass(name, wanted, found)
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.passed { "ok  " } else { "FAIL" };
        write!(
            f,
            "{mark}  {}: wants {}; token has {}",
            self.name, self.wanted, self.found
        )?;
        match (&self.hint, self.passed) {
            (Some(hint), false) => write!(f, " (near miss: {hint})"),
            (Some(hint), true) => write!(f, " ({hint})"),
            (None, _) => Ok(()),
        }
    }
}

/// One rule a granted policy holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantedRule {
    /// The policy holding the rule.
    pub policy: String,
    /// The rule's path pattern.
    pub path: String,
    /// The rule's capabilities.
    pub capabilities: CapabilitySet,
    /// For a templated rule: the path it renders to with these claims.
    #[serde(default)]
    pub renders_to: Option<String>,
    /// For a templated rule that cannot be rendered with these claims: why it matches nothing.
    #[serde(default)]
    pub matches_nothing: Option<String>,
}

/// Explains whether a token of `claims` could log in to `role` of `document`: the issuer's
/// `iss`, the audience, `bound_subject` and every claim of the role are checked, in that order,
/// each reported; signatures and times are not (see [`Explanation::with_token_checks`]). The
/// policies and rules are listed even when the login would fail, so the author sees what the
/// role is for; templated rules show what they render to with these claims.
pub fn explain(document: &Document, role: &str, claims: &Value) -> Explanation {
    let mut explanation = Explanation {
        role: role.to_owned(),
        can_login: false,
        failure: None,
        signature_verified: None,
        checks: Vec::new(),
        policies: Vec::new(),
        rules: Vec::new(),
        ttl: None,
        max_ttl: None,
        notes: Vec::new(),
    };
    let Some(found) = document.roles.get(role) else {
        explanation.failure = Some(format!("no role named `{role}` is defined"));
        return explanation;
    };
    explanation.ttl = Some(found.ttl);
    explanation.max_ttl = Some(found.max_ttl);
    explanation.policies = found.granted_policies();
    let context = TemplateContext {
        role: Some(role),
        claims: claims.as_object(),
    };
    for name in &explanation.policies {
        match document.policy(name) {
            Some(policy) => {
                explanation.rules.extend(
                    policy
                        .rules
                        .iter()
                        .map(|rule| granted(name, rule, &context)),
                );
            }
            None => explanation
                .notes
                .push(format!("policy `{name}` is not defined in these documents")),
        }
    }
    let Some(issuer) = document.issuers.get(&found.issuer) else {
        explanation.failure = Some(format!(
            "the role's issuer `{}` is not defined",
            found.issuer
        ));
        return explanation;
    };
    let iss = claims.get("iss");
    explanation.checks.push(Check::outcome(
        iss.and_then(Value::as_str) == Some(issuer.issuer.as_str()),
        "iss",
        format!("{:?} (issuer `{}`)", issuer.issuer, found.issuer),
        iss.map_or_else(|| "no such claim".to_owned(), Value::to_string),
    ));
    if !claims.is_object() {
        explanation.failure = Some("the token's claims are not a JSON object".into());
        return explanation;
    }
    explanation.checks.extend(check_bindings(found, claims));
    explanation.settle();
    explanation
}

fn granted(policy: &str, rule: &crate::policy::Rule, context: &TemplateContext<'_>) -> GrantedRule {
    let (renders_to, matches_nothing) = if rule.path.is_templated() {
        match rule.path.render(context) {
            Ok(path) => (Some(path.as_str().to_owned()), None),
            Err(miss) => (None, Some(miss.to_string())),
        }
    } else {
        (None, None)
    };
    GrantedRule {
        policy: policy.to_owned(),
        path: rule.path.as_str().to_owned(),
        capabilities: rule.capabilities,
        renders_to,
        matches_nothing,
    }
}

impl Explanation {
    /// Puts the checks of a real token (format, algorithm, signature, times, `jti`) before the
    /// claim checks, and records whether its signature verified.
    pub fn with_token_checks(mut self, token_checks: Vec<Check>, signature_verified: bool) -> Self {
        // A failure no check shows (no such role, no such issuer) stays the verdict.
        let structural = self
            .failure
            .clone()
            .filter(|_| self.checks.iter().all(|c| c.passed));
        self.signature_verified = Some(signature_verified);
        self.checks.splice(0..0, token_checks);
        self.settle();
        if let Some(failure) = structural {
            self.failure.get_or_insert(failure);
            self.can_login = false;
        }
        self
    }

    /// `can_login` and `failure` from the checks.
    fn settle(&mut self) {
        let first_failure = self.checks.iter().find(|c| !c.passed);
        self.failure =
            first_failure.map(|c| format!("{}: wants {}; token has {}", c.name, c.wanted, c.found));
        self.can_login = first_failure.is_none() && !self.checks.is_empty();
    }
}

/// The time checks of a JWT's registered claims, as vaultd's login runs them: `exp` (required,
/// passed until `exp + leeway`), `nbf` (if present), `iat` (required, not in the future beyond
/// `leeway`), the lifetime `exp - iat` within the issuer's `max_lifetime`, and `jti` (required:
/// vaultd spends it). `now` is in seconds since the Unix epoch.
pub fn time_checks(claims: &Value, now: u64, leeway: u64, max_lifetime: u64) -> Vec<Check> {
    let time = |name: &str| claims.get(name).map(|v| (v.as_u64(), v));
    let mut checks = Vec::new();
    let exp = time("exp");
    let iat = time("iat");
    checks.push(match exp {
        Some((Some(exp), _)) => Check::outcome(
            now <= exp.saturating_add(leeway),
            "exp",
            format!("not expired ({leeway}s leeway)"),
            relative("expires", "expired", exp, now),
        ),
        Some((None, raw)) => Check::fail("exp", "a NumericDate (whole seconds)", raw.to_string()),
        None => Check::fail("exp", "a NumericDate (whole seconds)", "no such claim"),
    });
    if let Some(nbf) = time("nbf") {
        checks.push(match nbf {
            (Some(nbf), _) => Check::outcome(
                nbf <= now.saturating_add(leeway),
                "nbf",
                format!("already valid ({leeway}s leeway)"),
                relative("becomes valid", "valid since", nbf, now),
            ),
            (None, raw) => Check::fail("nbf", "a NumericDate (whole seconds)", raw.to_string()),
        });
    }
    checks.push(match iat {
        Some((Some(iat), _)) => Check::outcome(
            iat <= now.saturating_add(leeway),
            "iat",
            format!("not in the future ({leeway}s leeway)"),
            relative("issued", "issued", iat, now),
        ),
        Some((None, raw)) => Check::fail("iat", "a NumericDate (whole seconds)", raw.to_string()),
        None => Check::fail("iat", "a NumericDate (whole seconds)", "no such claim"),
    });
    if let (Some((Some(exp), _)), Some((Some(iat), _))) = (exp, iat) {
        let lifetime = exp.saturating_sub(iat);
        checks.push(Check::outcome(
            lifetime <= max_lifetime,
            "lifetime",
            format!(
                "exp - iat at most {} (the issuer's max_token_lifetime)",
                HumanDuration::from_secs(max_lifetime)
            ),
            HumanDuration::from_secs(lifetime).to_string(),
        ));
    }
    checks.push(match claims.get("jti") {
        Some(Value::String(jti)) if !jti.is_empty() && jti.len() <= 256 => {
            Check::pass("jti", "a unique id (each token logs in once)", "one")
        }
        Some(_) => Check::fail("jti", "a string of 1-256 characters", "another value"),
        None => Check::fail(
            "jti",
            "a unique id (each token logs in once)",
            "no such claim",
        ),
    });
    checks
}

/// `at` relative to `now`: "expires in 4m" or "expired 3m ago".
fn relative(future: &str, past: &str, at: u64, now: u64) -> String {
    if at > now {
        format!("{future} in {} ({at})", HumanDuration::from_secs(at - now))
    } else {
        format!("{past} {} ago ({at})", HumanDuration::from_secs(now - at))
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.signature_verified == Some(false) {
            writeln!(
                f,
                "NOT VERIFIED: the token's signature was not checked or did not verify; these \
                 are the claims it states, not claims its issuer signed"
            )?;
        }
        let verdict = if self.can_login {
            "login would succeed"
        } else {
            "login would FAIL"
        };
        writeln!(f, "role {}: {verdict}", self.role)?;
        if self.checks.is_empty()
            && let Some(failure) = &self.failure
        {
            writeln!(f, "  {failure}")?;
        }
        for check in &self.checks {
            writeln!(f, "  {check}")?;
        }
        if let (Some(ttl), Some(max_ttl)) = (self.ttl, self.max_ttl) {
            writeln!(f, "token ttl {ttl}, max ttl {max_ttl}")?;
        }
        if !self.policies.is_empty() {
            writeln!(f, "policies: {}", self.policies.join(", "))?;
        }
        let width = self.rules.iter().map(|r| r.path.len()).max().unwrap_or(0);
        for rule in &self.rules {
            write!(
                f,
                "  {:<width$}  {}  ({})",
                rule.path, rule.capabilities, rule.policy
            )?;
            match (&rule.renders_to, &rule.matches_nothing) {
                (Some(path), _) => writeln!(f, " -> {path}")?,
                (None, Some(why)) => writeln!(f, " -> matches nothing: {why}")?,
                (None, None) => writeln!(f)?,
            }
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::document::parse_document;

    const DOC: &str = r#"
[issuers.github]
issuer = "https://token.actions.githubusercontent.com"

[roles.deploy]
issuer = "github"
audiences = ["https://vault.example.com"]
claims = { repository_id = "74", ref = "refs/heads/main" }
policies = ["app"]
ttl = "10m"

[policies.app]
rules = [
  { path = "secret/data/app/*", capabilities = ["read"] },
  { path = "secret/data/app/admin", capabilities = ["deny"] },
]
"#;

    fn claims() -> Value {
        json!({
            "iss": "https://token.actions.githubusercontent.com",
            "aud": "https://vault.example.com",
            "repository_id": "74",
            "ref": "refs/heads/main",
        })
    }

    #[test]
    fn successful_login_lists_rules() {
        let document = parse_document(DOC).expect("parses");
        let explanation = explain(&document, "deploy", &claims());
        assert!(explanation.can_login, "{explanation}");
        assert_eq!(explanation.policies, vec!["app", "default"]);
        assert_eq!(explanation.rules.len(), 2 + 3);
        assert_eq!(explanation.ttl, Some(HumanDuration::from_secs(600)));
        let text = explanation.to_string();
        assert!(text.contains("login would succeed"), "{text}");
        assert!(text.contains("secret/data/app/*"), "{text}");
    }

    #[test]
    fn failures_name_the_check_in_full() {
        let document = parse_document(DOC).expect("parses");
        let mut wrong_ref = claims();
        wrong_ref["ref"] = json!("refs/heads/dev");
        let explanation = explain(&document, "deploy", &wrong_ref);
        assert!(!explanation.can_login);
        let failure = explanation.failure.clone().unwrap_or_default();
        assert!(
            failure.contains("refs/heads/dev") && failure.contains("refs/heads/main"),
            "{failure}"
        );
        assert_eq!(explanation.policies, vec!["app", "default"]);

        let mut wrong_iss = claims();
        wrong_iss["iss"] = json!("https://gitlab.com");
        let failure = explain(&document, "deploy", &wrong_iss)
            .failure
            .unwrap_or_default();
        assert!(failure.starts_with("iss:"), "{failure}");

        let missing = explain(&document, "nope", &claims());
        assert!(!missing.can_login);
        assert!(
            missing
                .failure
                .unwrap_or_default()
                .contains("no role named")
        );
    }

    #[test]
    fn serializes_to_json() {
        let document = parse_document(DOC).expect("parses");
        let json = serde_json::to_value(explain(&document, "deploy", &claims())).expect("json");
        assert_eq!(json["can_login"], json!(true));
        assert_eq!(json["rules"][0]["capabilities"], json!(["read"]));
    }
    fn check<'a>(explanation: &'a Explanation, name: &str) -> &'a Check {
        explanation
            .checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no check {name}: {explanation}"))
    }

    #[test]
    fn every_binding_is_reported_even_after_a_failure() {
        let document = parse_document(DOC).expect("parses");
        let mut claims = claims();
        claims["ref"] = json!("refs/heads/dev");
        claims["repository_id"] = json!("75");
        let explanation = explain(&document, "deploy", &claims);
        let names: Vec<&str> = explanation.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["iss", "aud", "ref", "repository_id"]);
        assert!(check(&explanation, "iss").passed && check(&explanation, "aud").passed);
        assert!(!check(&explanation, "ref").passed && !check(&explanation, "repository_id").passed);
        let text = explanation.to_string();
        assert_eq!(text.matches("FAIL  ").count(), 2, "{text}");
        assert!(
            text.contains("ref: wants \"refs/heads/main\"; token has \"refs/heads/dev\""),
            "{text}"
        );
    }

    #[test]
    fn near_misses_are_named() {
        let document = parse_document(DOC).expect("parses");
        let mut claims = claims();
        claims["repository_id"] = json!(74);
        claims["ref"] = json!("refs/heads/Main");
        claims["aud"] = json!("https://vault.example.com/");
        let explanation = explain(&document, "deploy", &claims);
        let hint = |name: &str| check(&explanation, name).hint.clone().unwrap_or_default();
        assert!(hint("repository_id").contains("number 74"), "{explanation}");
        assert!(hint("ref").contains("letter case"), "{explanation}");
        assert!(hint("aud").contains("trailing slash"), "{explanation}");
        assert!(!explanation.can_login);

        let doc = parse_document(
            "[issuers.gh]\nissuer = \"https://token.actions.githubusercontent.com\"\n\
             [roles.r]\nissuer = \"gh\"\naudiences = [\"a\"]\nglob_claims = [\"sub\"]\n\
             claims = { sub = \"repo:octo-org/api:*\", run_attempt = 1, repository_owner_id = \"1001\" }\npolicies = []\n",
        )
        .expect("parses");
        let token = json!({
            "iss": "https://token.actions.githubusercontent.com", "aud": "a",
            "sub": "repo:octo-org@1001/api@74:ref:refs/heads/main", "run_attempt": "1", "repository_owner_id": "1001",
        });
        let explanation = explain(&doc, "r", &token);
        let sub = check(&explanation, "sub");
        assert!(!sub.passed);
        let hint = sub.hint.clone().unwrap_or_default();
        assert!(
            hint.contains("immutable form") && hint.contains("legacy form"),
            "{hint}"
        );
        let attempt = check(&explanation, "run_attempt")
            .hint
            .clone()
            .unwrap_or_default();
        assert!(attempt.contains("string \"1\""), "{attempt}");
    }

    #[test]
    fn templated_rules_show_their_rendering_or_why_they_match_nothing() {
        let document = parse_document(&format!(
            "{DOC}\n[policies.ci]\nrules = [{{ path = \"secret/data/ci/{{{{claims.repository_id}}}}/*\", capabilities = [\"read\"] }}]\n"
        ))
        .expect("parses");
        let mut document = document;
        if let Some(role) = document.roles.get_mut("deploy") {
            role.policies.push("ci".into());
        }
        let explanation = explain(&document, "deploy", &claims());
        let rule = explanation
            .rules
            .iter()
            .find(|r| r.policy == "ci")
            .expect("ci rule");
        assert_eq!(rule.renders_to.as_deref(), Some("secret/data/ci/74/*"));
        assert!(explanation.to_string().contains("-> secret/data/ci/74/*"));
        for bad in [
            json!("74/../75"),
            json!("*"),
            json!("+"),
            json!(""),
            json!(["74"]),
        ] {
            let mut claims = claims();
            claims["repository_id"] = bad.clone();
            let explanation = explain(&document, "deploy", &claims);
            let rule = explanation
                .rules
                .iter()
                .find(|r| r.policy == "ci")
                .expect("ci rule");
            assert_eq!(rule.renders_to, None, "{bad}");
            assert!(
                rule.matches_nothing
                    .as_deref()
                    .is_some_and(|why| why.contains("repository_id")),
                "{bad}: {rule:?}"
            );
        }
    }

    #[test]
    fn time_checks_mirror_the_login() {
        let now = 1_800_000_000;
        let good = json!({"exp": now + 300, "iat": now - 10, "nbf": now - 10, "jti": "x"});
        let checks = time_checks(&good, now, 60, 3600);
        assert!(checks.iter().all(|c| c.passed), "{checks:?}");
        assert_eq!(checks.len(), 5);
        let within_leeway = json!({"exp": now - 59, "iat": now - 100, "jti": "x"});
        assert!(
            time_checks(&within_leeway, now, 60, 3600)
                .iter()
                .all(|c| c.passed)
        );
        let expired = json!({"exp": now - 61, "iat": now - 100, "jti": "x"});
        let exp = time_checks(&expired, now, 60, 3600)
            .into_iter()
            .find(|c| c.name == "exp")
            .expect("exp");
        assert!(!exp.passed);
        assert!(exp.found.contains("expired 1m 1s ago"), "{}", exp.found);
        let future = json!({"exp": now + 900, "iat": now + 61, "nbf": now + 61, "jti": "x"});
        let failed: Vec<String> = time_checks(&future, now, 60, 3600)
            .into_iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect();
        assert_eq!(failed, ["nbf", "iat"]);
        let long = json!({"exp": now + 7200, "iat": now, "jti": "x"});
        assert!(
            time_checks(&long, now, 60, 3600)
                .iter()
                .any(|c| c.name == "lifetime" && !c.passed)
        );
        let bare = json!({"exp": "soon"});
        let failed = time_checks(&bare, now, 60, 3600)
            .into_iter()
            .filter(|c| !c.passed)
            .count();
        assert_eq!(failed, 3, "exp type, iat and jti missing");
    }

    #[test]
    fn token_checks_come_first_and_a_missing_role_stays_a_failure() {
        let document = parse_document(DOC).expect("parses");
        let token = vec![Check::fail(
            "signature",
            "a signature by the issuer",
            "does not verify",
        )];
        let explanation =
            explain(&document, "deploy", &claims()).with_token_checks(token.clone(), false);
        assert!(!explanation.can_login);
        assert_eq!(explanation.checks[0].name, "signature");
        assert!(
            explanation
                .failure
                .unwrap_or_default()
                .starts_with("signature:")
        );
        let passing = vec![Check::pass(
            "signature",
            "a signature by the issuer",
            "verifies",
        )];
        let explanation =
            explain(&document, "deploy", &claims()).with_token_checks(passing.clone(), true);
        assert!(explanation.can_login, "{explanation}");
        let missing = explain(&document, "nope", &claims()).with_token_checks(passing, true);
        assert!(!missing.can_login);
        assert!(
            missing
                .failure
                .unwrap_or_default()
                .contains("no role named")
        );
        let unverified =
            explain(&document, "deploy", &claims()).with_token_checks(Vec::new(), false);
        assert!(unverified.to_string().starts_with("NOT VERIFIED"));
    }

    #[test]
    fn round_trips_through_json() {
        let document = parse_document(DOC).expect("parses");
        let explanation = explain(&document, "deploy", &claims());
        let json = serde_json::to_string(&explanation).expect("json");
        let back: Explanation = serde_json::from_str(&json).expect("parses back");
        assert_eq!(back, explanation);
    }
}
