//! Lint: legal documents that are probably unsafe.
//!
//! Each [`Warning`] has a stable [`LintCode`] (documented in `docs/policies.md`) and a message
//! saying what to change. Lint reads a merged document; a policy a role names that the document
//! does not hold is skipped here ([`crate::Document::validate`] reports it).

use std::fmt;

use serde::Serialize;

use crate::claims::{ClaimMatcher, ClaimValue, glob_matches};
use crate::document::Document;
use crate::role::Role;

/// What a [`Warning`] is about. The kebab-case names ([`LintCode::as_str`]) are stable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LintCode {
    /// The role binds repositories or projects by name only (`repository`, `project_path`,
    /// `sub`), which a rename or a deleted-and-recreated namespace hands to someone else.
    MutableIdentity,
    /// A glob has a `*` in the owner (GitHub) or top-level group (GitLab) part, so it accepts
    /// repositories of other owners.
    OwnerWildcard,
    /// `sub` is matched with a glob; `sub` is a concatenation, and globbing it is how delimiter
    /// confusions get in.
    SubjectGlob,
    /// The role grants writes or prefix reads without pinning the ref, environment or event
    /// (GitHub) or a protected ref or environment (GitLab).
    UnpinnedPrivilegedRole,
    /// `event_name` accepts `pull_request_target`, whose runs carry base-repository trust while
    /// often running fork code.
    PullRequestTarget,
    /// A GitLab role does not require `ref_protected = "true"`.
    GitlabUnprotectedRef,
    /// A claim that GitHub and GitLab send as a string is matched with an integer or a boolean,
    /// so it never matches.
    ClaimTypeMismatch,
    /// The role grants the `root` policy.
    RootPolicy,
    /// The role binds a whole organisation or group (`repository_owner_id`, `namespace_id`)
    /// but no repository or project, and one of its rules is not keyed by a repository or
    /// project claim: every repository of the organisation gets that rule.
    OrgWideUnkeyedRule,
    /// `sub` is bound in GitHub's legacy form only (`repo:OWNER/REPO:…`), while repositories
    /// created after 2026-07-15 send `repo:OWNER@ID/REPO@ID:…`.
    LegacySubjectOnly,
}

impl LintCode {
    /// The stable name, such as `mutable-identity`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LintCode::MutableIdentity => "mutable-identity",
            LintCode::OwnerWildcard => "owner-wildcard",
            LintCode::SubjectGlob => "subject-glob",
            LintCode::UnpinnedPrivilegedRole => "unpinned-privileged-role",
            LintCode::PullRequestTarget => "pull-request-target",
            LintCode::GitlabUnprotectedRef => "gitlab-unprotected-ref",
            LintCode::ClaimTypeMismatch => "claim-type-mismatch",
            LintCode::RootPolicy => "root-policy",
            LintCode::OrgWideUnkeyedRule => "org-wide-unkeyed-rule",
            LintCode::LegacySubjectOnly => "legacy-subject-only",
        }
    }
}

impl fmt::Display for LintCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding of [`lint`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// What kind of problem this is.
    pub code: LintCode,
    /// The entry it is about, such as `roles.deploy`.
    pub subject: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "warning[{}] {}: {}",
            self.code, self.subject, self.message
        )
    }
}

/// Claims GitHub and GitLab send as JSON strings even though they hold numbers or booleans.
const STRING_TYPED_CLAIMS: [&str; 19] = [
    "repository_id",
    "repository_owner_id",
    "actor_id",
    "run_id",
    "run_number",
    "run_attempt",
    "project_id",
    "namespace_id",
    "job_project_id",
    "job_namespace_id",
    "user_id",
    "pipeline_id",
    "job_id",
    "ref_protected",
    "environment_protected",
    "target_ref_protected",
    "enterprise_id",
    "check_run_id",
    "project_namespace_id",
];

/// Claims sent as JSON numbers (GitLab's `runner_id`).
const NUMBER_TYPED_CLAIMS: [&str; 1] = ["runner_id"];

/// Claims that hold `owner/name` paths (or whose first `/`-separated part is an owner).
const OWNER_PATH_CLAIMS: [&str; 8] = [
    "repository",
    "repository_owner",
    "project_path",
    "job_project_path",
    "namespace_path",
    "job_namespace_path",
    "workflow_ref",
    "job_workflow_ref",
];

const GITLAB_CLAIMS: [&str; 7] = [
    "project_id",
    "project_path",
    "namespace_id",
    "namespace_path",
    "job_project_id",
    "job_project_path",
    "ref_protected",
];

const GITHUB_CLAIMS: [&str; 4] = [
    "repository",
    "repository_id",
    "repository_owner",
    "repository_owner_id",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Platform {
    GitHub,
    GitLab,
    Other,
}

/// Looks for risky but legal patterns in `document`; see [`LintCode`] for the list.
pub fn lint(document: &Document) -> Vec<Warning> {
    let mut warnings = Vec::new();
    for (name, role) in &document.roles {
        let mut warn = |code: LintCode, message: String| {
            warnings.push(Warning {
                code,
                subject: format!("roles.{name}"),
                message,
            });
        };
        let platform = platform(role);
        lint_identity(role, &mut warn);
        lint_claim_types(role, &mut warn);
        lint_globs(role, &mut warn);
        lint_event_name(role, &mut warn);
        if platform == Platform::GitLab && !requires_string_true(role, "ref_protected") {
            warn(
                LintCode::GitlabUnprotectedRef,
                "GitLab role without `ref_protected = \"true\"`: any branch, including one a \
                 developer pushes, can log in; add `ref_protected = \"true\"` (a string: GitLab \
                 sends it as \"true\"/\"false\")"
                    .into(),
            );
        }
        lint_org_wide(document, role, &mut warn);
        lint_legacy_subject(role, &mut warn);
        if role.policies.iter().any(|p| p == "root") {
            warn(
                LintCode::RootPolicy,
                "grants `root`: a pipeline token could do anything, including reading every \
                 secret and changing policies; grant a narrow policy instead"
                    .into(),
            );
        }
        let privileged = role.policies.iter().any(|policy| {
            document
                .policy(policy)
                .is_some_and(|policy| policy.is_privileged())
        });
        if privileged && !pins_run_context(role, platform) {
            let how = match platform {
                Platform::GitLab => {
                    "pin `ref` with `ref_protected = \"true\"`, or `environment` with \
                     `environment_protected = \"true\"`"
                }
                _ => "pin `ref`, `environment` or `event_name`",
            };
            warn(
                LintCode::UnpinnedPrivilegedRole,
                format!(
                    "its policies grant writes or prefix reads, but any branch, event or \
                     environment of the bound repository can log in; {how}"
                ),
            );
        }
    }
    warnings
}

fn platform(role: &Role) -> Platform {
    let subject_starts = |prefix: &str| {
        role.bound_subject
            .as_deref()
            .into_iter()
            .chain(role.claim("sub").into_iter().flat_map(|(m, _)| m.strings()))
            .any(|sub| sub.starts_with(prefix))
    };
    if GITLAB_CLAIMS.iter().any(|c| role.claim(c).is_some()) || subject_starts("project_path:") {
        Platform::GitLab
    } else if GITHUB_CLAIMS.iter().any(|c| role.claim(c).is_some()) || subject_starts("repo:") {
        Platform::GitHub
    } else {
        Platform::Other
    }
}

fn lint_identity(role: &Role, warn: &mut impl FnMut(LintCode, String)) {
    let immutable = ["repository_id", "project_id", "job_project_id"]
        .iter()
        .any(|claim| {
            role.claim(claim)
                .is_some_and(|(m, glob)| !m.has_wildcard(glob))
        })
        || subjects(role).any(is_immutable_github_subject);
    if !immutable {
        warn(
            LintCode::MutableIdentity,
            "binds the repository or project by name only; a renamed or deleted repository's \
             name can be taken by someone else. Bind `repository_id` (GitHub) or `project_id` \
             (GitLab) as well"
                .into(),
        );
    }
}

/// Claims that name one repository or project: what an organisation-wide role's rules
/// should be keyed by.
const REPOSITORY_KEYS: [&str; 6] = [
    "repository_id",
    "repository",
    "project_id",
    "project_path",
    "job_project_id",
    "job_project_path",
];

fn lint_org_wide(document: &Document, role: &Role, warn: &mut impl FnMut(LintCode, String)) {
    let binds_owner = ["repository_owner_id", "namespace_id"]
        .iter()
        .any(|claim| role.claim(claim).is_some());
    let binds_repository = REPOSITORY_KEYS
        .iter()
        .any(|claim| role.claim(claim).is_some())
        || role.claim("sub").is_some()
        || role.bound_subject.is_some();
    if !binds_owner || binds_repository {
        return;
    }
    for name in &role.policies {
        let Some(policy) = document.policy(name) else {
            continue;
        };
        for rule in &policy.rules {
            let keyed = rule
                .path
                .template_claims()
                .iter()
                .any(|claim| REPOSITORY_KEYS.contains(claim));
            if !keyed && !rule.capabilities.is_denied() {
                warn(
                    LintCode::OrgWideUnkeyedRule,
                    format!(
                        "binds a whole organisation, and policy `{name}` grants `{}` to every \
                         repository in it; key the path by the repository, as in \
                         `secret/data/ci/{{{{claims.repository_id}}}}/*`",
                        rule.path
                    ),
                );
            }
        }
    }
}

fn lint_legacy_subject(role: &Role, warn: &mut impl FnMut(LintCode, String)) {
    let claimed = role
        .claim("sub")
        .into_iter()
        .flat_map(|(matcher, glob)| matcher.strings().map(move |s| (s, glob)));
    let bound: Vec<(&str, bool)> = role
        .bound_subject
        .as_deref()
        .map(|s| (s, false))
        .into_iter()
        .chain(claimed)
        .collect();
    let form = |subject: &str| crate::claims::github_subject_form(subject).map(|(form, _)| form);
    let legacy_only = bound.iter().any(|(s, _)| form(s) == Some("legacy"))
        && !bound.iter().any(|(s, _)| form(s) == Some("immutable"));
    if !legacy_only {
        return;
    }
    let glob = bound.iter().any(|(_, glob)| *glob);
    let how = if glob {
        "a glob is not converted between the forms, so such tokens are refused"
    } else {
        "an exact binding accepts the immutable form too when the token's `repository`, \
         `repository_id` and `repository_owner_id` agree with it"
    };
    warn(
        LintCode::LegacySubjectOnly,
        format!(
            "binds `sub` in GitHub's legacy form only (`repo:OWNER/REPO:…`); repositories \
             created after 2026-07-15 send `repo:OWNER@OWNER_ID/REPO@REPO_ID:…` ({how}). Bind \
             `repository_id` and `repository_owner_id` instead, or also the immutable form"
        ),
    );
}

fn lint_claim_types(role: &Role, warn: &mut impl FnMut(LintCode, String)) {
    for claim in STRING_TYPED_CLAIMS {
        let Some((matcher, _)) = role.claim(claim) else {
            continue;
        };
        if let Some(value) = matcher
            .alternatives()
            .iter()
            .find(|v| !matches!(v, ClaimValue::String(_)))
        {
            let (shown, quoted) = match value {
                ClaimValue::Integer(i) => (i.to_string(), format!("\"{i}\"")),
                ClaimValue::Bool(b) => (b.to_string(), format!("\"{b}\"")),
                ClaimValue::String(s) => (s.clone(), s.clone()),
            };
            warn(
                LintCode::ClaimTypeMismatch,
                format!(
                    "`{claim}` is sent as a JSON string, so `{shown}` never matches it; write \
                     {claim} = {quoted}"
                ),
            );
        }
    }
    for claim in NUMBER_TYPED_CLAIMS {
        let Some((matcher, _)) = role.claim(claim) else {
            continue;
        };
        if let Some(ClaimValue::String(s)) = matcher
            .alternatives()
            .iter()
            .find(|v| !matches!(v, ClaimValue::Integer(_)))
        {
            warn(
                LintCode::ClaimTypeMismatch,
                format!(
                    "`{claim}` is sent as a JSON number, so \"{s}\" never matches it; write \
                     {claim} = {s} without quotes"
                ),
            );
        }
    }
}

fn lint_globs(role: &Role, warn: &mut impl FnMut(LintCode, String)) {
    for claim in OWNER_PATH_CLAIMS {
        let Some((matcher, glob)) = role.claim(claim) else {
            continue;
        };
        if !glob {
            continue;
        }
        let whole_is_owner = matches!(
            claim,
            "repository_owner" | "namespace_path" | "job_namespace_path"
        );
        for pattern in matcher.strings() {
            if owner_has_wildcard(pattern, whole_is_owner) {
                warn(
                    LintCode::OwnerWildcard,
                    format!(
                        "`{claim}` pattern {pattern:?} has a `*` in the owner/namespace part, \
                         so repositories of other owners match; spell the owner out"
                    ),
                );
            }
        }
    }
    if let Some((matcher, _)) = role
        .claim("sub")
        .filter(|(matcher, glob)| matcher.has_wildcard(*glob))
    {
        warn(
            LintCode::SubjectGlob,
            "`sub` is matched with a glob; `sub` joins several values, so a `*` can stretch \
             across them. Match the individual claims (`repository_id`, `ref`, `environment`) \
             instead"
                .into(),
        );
        let owner_wildcard = matcher.strings().any(|pattern| {
            let rest = pattern
                .strip_prefix("repo:")
                .or_else(|| pattern.strip_prefix("project_path:"))
                .unwrap_or(pattern);
            owner_has_wildcard(rest, false)
        });
        if owner_wildcard {
            warn(
                LintCode::OwnerWildcard,
                "`sub` pattern has a `*` in the owner/namespace part, so repositories of other \
                 owners match"
                    .into(),
            );
        }
    }
}

/// Whether `*` appears before the first `/` (the owner or top-level group), or anywhere when the
/// whole value is the owner.
fn owner_has_wildcard(pattern: &str, whole_is_owner: bool) -> bool {
    let owner = if whole_is_owner {
        pattern
    } else {
        pattern.split('/').next().unwrap_or(pattern)
    };
    owner.contains('*')
}

fn lint_event_name(role: &Role, warn: &mut impl FnMut(LintCode, String)) {
    let Some((matcher, glob)) = role.claim("event_name") else {
        return;
    };
    let accepts = matcher.strings().any(|value| {
        if glob {
            glob_matches(value, "pull_request_target")
        } else {
            value == "pull_request_target"
        }
    });
    if accepts {
        warn(
            LintCode::PullRequestTarget,
            "`event_name` accepts `pull_request_target`: such runs have the base repository's \
             trust and are often made to run a fork's code; remove it, or require a protected \
             `environment`"
                .into(),
        );
    }
}

/// Whether the role pins the run context: see [`LintCode::UnpinnedPrivilegedRole`].
fn pins_run_context(role: &Role, platform: Platform) -> bool {
    let pinned = |claim: &str| {
        role.claim(claim)
            .is_some_and(|(matcher, glob)| !matcher.accepts_any_string(glob))
    };
    match platform {
        Platform::GitLab => {
            (pinned("ref") && requires_string_true(role, "ref_protected"))
                || (pinned("environment") && requires_string_true(role, "environment_protected"))
        }
        Platform::GitHub | Platform::Other => {
            pinned("ref")
                || pinned("environment")
                || pinned("event_name")
                || subjects(role).any(|sub| sub.contains(":ref:") || sub.contains(":environment:"))
        }
    }
}

/// Whether the role requires `claim` to be exactly the string `"true"`.
fn requires_string_true(role: &Role, claim: &str) -> bool {
    matches!(
        role.claim(claim),
        Some((ClaimMatcher::Exact(ClaimValue::String(value)), _)) if value == "true"
    ) || matches!(
        role.claim(claim),
        Some((ClaimMatcher::AnyOf(values), _))
            if values.len() == 1 && values[0] == ClaimValue::String("true".into())
    )
}

/// Exact subjects the role requires (`bound_subject` and non-glob `sub` strings).
fn subjects(role: &Role) -> impl Iterator<Item = &str> {
    let claimed = role
        .claim("sub")
        .filter(|(matcher, glob)| !matcher.has_wildcard(*glob))
        .into_iter()
        .flat_map(|(matcher, _)| matcher.strings());
    role.bound_subject.as_deref().into_iter().chain(claimed)
}

/// `repo:OWNER@OWNER_ID/REPO@REPO_ID:…`, GitHub's immutable subject format.
fn is_immutable_github_subject(subject: &str) -> bool {
    let Some(rest) = subject.strip_prefix("repo:") else {
        return false;
    };
    let repo = rest.split(':').next().unwrap_or_default();
    let has_id = |part: &str| {
        part.rsplit_once('@').is_some_and(|(name, id)| {
            !name.is_empty() && !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())
        })
    };
    match repo.split_once('/') {
        Some((owner, name)) => has_id(owner) && has_id(name),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::parse_document;

    const BASE: &str = r#"
[issuers.github]
issuer = "https://token.actions.githubusercontent.com"

[policies.read-one]
rules = [{ path = "secret/data/app", capabilities = ["read"] }]

[policies.write]
rules = [{ path = "secret/data/app", capabilities = ["update"] }]

[policies.read-all]
rules = [{ path = "secret/data/app/*", capabilities = ["read"] }]
"#;

    fn codes(role: &str) -> Vec<LintCode> {
        let text = format!("{BASE}\n[roles.r]\nissuer = \"github\"\naudiences = [\"a\"]\n{role}");
        let document = parse_document(&text).expect("parses");
        document.validate().expect("valid");
        lint(&document).into_iter().map(|w| w.code).collect()
    }

    #[test]
    fn clean_github_role() {
        assert_eq!(
            codes(
                "claims = { repository_id = \"74\", ref = \"refs/heads/main\" }\npolicies = [\"write\"]"
            ),
            vec![]
        );
        assert_eq!(
            codes("claims = { repository_id = \"74\" }\npolicies = [\"read-one\"]"),
            vec![]
        );
    }

    #[test]
    fn mutable_identity() {
        assert_eq!(
            codes("claims = { repository = \"o/r\" }\npolicies = [\"read-one\"]"),
            vec![LintCode::MutableIdentity]
        );
        assert_eq!(
            codes("bound_subject = \"repo:o/r:ref:refs/heads/main\"\npolicies = [\"read-one\"]"),
            vec![LintCode::MutableIdentity, LintCode::LegacySubjectOnly]
        );
        assert_eq!(
            codes(
                "bound_subject = \"repo:o@65/r@74:ref:refs/heads/main\"\npolicies = [\"read-one\"]"
            ),
            vec![]
        );
    }

    #[test]
    fn owner_wildcards_and_subject_globs() {
        let found = codes(
            "glob_claims = [\"repository\"]\nclaims = { repository_id = \"74\", repository = \"*/api\" }",
        );
        assert_eq!(found, vec![LintCode::OwnerWildcard]);
        let found = codes(
            "glob_claims = [\"repository\"]\nclaims = { repository_id = \"74\", repository = \"octo-org/*\" }",
        );
        assert_eq!(found, vec![]);
        let found = codes(
            "glob_claims = [\"sub\"]\nclaims = { repository_id = \"74\", sub = \"repo:*/r:*\" }",
        );
        assert_eq!(
            found,
            vec![
                LintCode::SubjectGlob,
                LintCode::OwnerWildcard,
                LintCode::LegacySubjectOnly
            ]
        );
    }

    #[test]
    fn unpinned_privileged_roles() {
        assert_eq!(
            codes("claims = { repository_id = \"74\" }\npolicies = [\"write\"]"),
            vec![LintCode::UnpinnedPrivilegedRole]
        );
        assert_eq!(
            codes("claims = { repository_id = \"74\" }\npolicies = [\"read-all\"]"),
            vec![LintCode::UnpinnedPrivilegedRole]
        );
        assert_eq!(
            codes(
                "claims = { repository_id = \"74\", environment = \"prod\" }\npolicies = [\"read-all\"]"
            ),
            vec![]
        );
        // A role granting `root` no longer loads at all (see role.rs); the lint stays as a
        // second line for documents built in code.
    }

    #[test]
    fn pull_request_target() {
        assert_eq!(
            codes(
                "claims = { repository_id = \"74\", event_name = [\"push\", \"pull_request_target\"] }"
            ),
            vec![LintCode::PullRequestTarget]
        );
        assert_eq!(
            codes(
                "glob_claims = [\"event_name\"]\nclaims = { repository_id = \"74\", event_name = \"pull_request*\" }"
            ),
            vec![LintCode::PullRequestTarget]
        );
    }

    #[test]
    fn subjects_bound_in_the_legacy_github_form_only_are_flagged() {
        let legacy = "bound_subject = \"repo:octo-org/api:ref:refs/heads/main\"\nclaims = { repository_id = \"74\" }";
        assert!(codes(legacy).contains(&LintCode::LegacySubjectOnly));
        let legacy_claim =
            "claims = { repository_id = \"74\", sub = \"repo:octo-org/api:environment:prod\" }";
        assert!(codes(legacy_claim).contains(&LintCode::LegacySubjectOnly));
        let both = "claims = { repository_id = \"74\", sub = [\"repo:octo-org/api:environment:prod\", \"repo:octo-org@1001/api@74:environment:prod\"] }";
        assert!(!codes(both).contains(&LintCode::LegacySubjectOnly));
        let immutable = "claims = { sub = \"repo:octo-org@1001/api@74:environment:prod\" }";
        assert!(!codes(immutable).contains(&LintCode::LegacySubjectOnly));
        let no_sub = "claims = { repository_id = \"74\" }";
        assert!(!codes(no_sub).contains(&LintCode::LegacySubjectOnly));
        let document = parse_document(&format!(
            "{BASE}\n[roles.r]\nissuer = \"github\"\naudiences = [\"a\"]\nglob_claims = [\"sub\"]\n\
             claims = {{ repository_id = \"74\", sub = \"repo:octo-org/api:*\" }}\npolicies = [\"read-one\"]\n"
        ))
        .expect("parses");
        let warning = lint(&document)
            .into_iter()
            .find(|w| w.code == LintCode::LegacySubjectOnly)
            .expect("flagged");
        assert!(
            warning.message.contains("glob is not converted"),
            "{warning}"
        );
    }

    #[test]
    fn org_wide_roles_with_rules_not_keyed_by_repository_are_flagged() {
        let doc = |rules: &str| {
            format!(
                "{BASE}\n[roles.org]\nissuer = \"github\"\naudiences = [\"a\"]\n\
                 claims = {{ repository_owner_id = \"1001\", ref = \"refs/heads/main\" }}\n\
                 policies = [\"p\"]\n[policies.p]\nrules = [{rules}]\n"
            )
        };
        let keyed = crate::parse_document(&doc(
            "{ path = \"secret/data/ci/{{claims.repository_id}}/*\", capabilities = [\"read\"] }",
        ))
        .expect("parses");
        assert!(
            !lint(&keyed)
                .iter()
                .any(|w| w.code == LintCode::OrgWideUnkeyedRule)
        );
        let shared = crate::parse_document(&doc(
            "{ path = \"secret/data/shared/*\", capabilities = [\"read\"] }",
        ))
        .expect("parses");
        let found: Vec<_> = lint(&shared)
            .into_iter()
            .filter(|w| w.code == LintCode::OrgWideUnkeyedRule)
            .collect();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].message.contains("secret/data/shared/*"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn typed_claims_that_never_match() {
        let found = codes("claims = { repository_id = 74 }");
        assert_eq!(found, vec![LintCode::ClaimTypeMismatch]);
        assert_eq!(
            codes("claims = { repository_id = \"74\", check_run_id = 9 }"),
            vec![LintCode::ClaimTypeMismatch]
        );
        let text = format!(
            "{BASE}\n[roles.r]\nissuer = \"github\"\naudiences = [\"a\"]\nclaims = {{ repository_id = 74 }}"
        );
        let warnings = lint(&parse_document(&text).expect("parses"));
        assert!(
            warnings[0].message.contains("repository_id = \"74\""),
            "{}",
            warnings[0]
        );
    }

    #[test]
    fn gitlab_roles() {
        assert_eq!(
            codes(
                "claims = { project_id = \"20\", ref = \"main\", ref_protected = \"true\" }\npolicies = [\"write\"]"
            ),
            vec![]
        );
        assert_eq!(
            codes("claims = { project_id = \"20\", ref = \"main\" }\npolicies = [\"write\"]"),
            vec![
                LintCode::GitlabUnprotectedRef,
                LintCode::UnpinnedPrivilegedRole
            ]
        );
        assert_eq!(
            codes("claims = { project_id = \"20\", ref = \"main\", ref_protected = true }"),
            vec![LintCode::ClaimTypeMismatch, LintCode::GitlabUnprotectedRef]
        );
    }

    #[test]
    fn warning_display_and_json() {
        let warning = Warning {
            code: LintCode::RootPolicy,
            subject: "roles.r".into(),
            message: "m".into(),
        };
        assert_eq!(warning.to_string(), "warning[root-policy] roles.r: m");
        let json = serde_json::to_string(&warning).expect("serializes");
        assert!(json.contains("\"code\":\"root-policy\""), "{json}");
    }
}
