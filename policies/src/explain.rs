//! `vaultctl policy test`: could a token with these claims log in, and what would it get?

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::capability::CapabilitySet;
use crate::claims::match_claims;
use crate::document::Document;
use crate::duration::HumanDuration;

/// The answer of [`explain`]. Serializes to JSON for `--format json`; `Display` is the table
/// form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The role asked about.
    pub role: String,
    /// Whether the claims pass every check of the role (signature and time checks aside).
    pub can_login: bool,
    /// The first failing check, in full (this is an operator tool, so expected values are
    /// shown).
    pub failure: Option<String>,
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

/// One rule a granted policy holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GrantedRule {
    /// The policy holding the rule.
    pub policy: String,
    /// The rule's path pattern.
    pub path: String,
    /// The rule's capabilities.
    pub capabilities: CapabilitySet,
}

/// Explains whether a token of `claims` could log in to `role` of `document`: the issuer's
/// `iss`, the audience, `bound_subject` and every claim of the role are checked, in that order;
/// signatures and times are not. The policies and rules are listed even when the login would
/// fail, so the author sees what the role is for.
pub fn explain(document: &Document, role: &str, claims: &Value) -> Explanation {
    let mut explanation = Explanation {
        role: role.to_owned(),
        can_login: false,
        failure: None,
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
    for name in &explanation.policies {
        match document.policy(name) {
            Some(policy) => explanation
                .rules
                .extend(policy.rules.iter().map(|rule| GrantedRule {
                    policy: name.clone(),
                    path: rule.path.as_str().to_owned(),
                    capabilities: rule.capabilities,
                })),
            None => explanation
                .notes
                .push(format!("policy `{name}` is not defined in these documents")),
        }
    }
    explanation.failure = login_failure(document, &found.issuer, claims)
        .or_else(|| match_claims(found, claims).err().map(|err| err.detail()));
    explanation.can_login = explanation.failure.is_none();
    explanation
}

fn login_failure(document: &Document, issuer: &str, claims: &Value) -> Option<String> {
    let Some(issuer) = document.issuers.get(issuer) else {
        return Some(format!("the role's issuer `{issuer}` is not defined"));
    };
    match claims.get("iss") {
        Some(Value::String(iss)) if *iss == issuer.issuer => None,
        Some(other) => Some(format!(
            "claim `iss` is {other}; the role's issuer is {:?}",
            issuer.issuer
        )),
        None => Some(format!(
            "claim `iss` is missing from the token; the role's issuer is {:?}",
            issuer.issuer
        )),
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.failure {
            None => writeln!(f, "role {}: login would succeed", self.role)?,
            Some(failure) => writeln!(f, "role {}: login would fail: {failure}", self.role)?,
        }
        if let (Some(ttl), Some(max_ttl)) = (self.ttl, self.max_ttl) {
            writeln!(f, "token ttl {ttl}, max ttl {max_ttl}")?;
        }
        if !self.policies.is_empty() {
            writeln!(f, "policies: {}", self.policies.join(", "))?;
        }
        let width = self.rules.iter().map(|r| r.path.len()).max().unwrap_or(0);
        for rule in &self.rules {
            writeln!(
                f,
                "  {:<width$}  {}  ({})",
                rule.path, rule.capabilities, rule.policy
            )?;
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
        assert!(failure.contains("`iss`"), "{failure}");

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
}
