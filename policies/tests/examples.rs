//! Every shipped example parses, validates once merged, lints clean, and does what its comments
//! say.

use policies::{Capability, Document, explain, lint, match_claims, parse_document};
use serde_json::{Value, json};

const EXAMPLES: [(&str, &str); 6] = [
    ("issuers.toml", include_str!("../examples/issuers.toml")),
    (
        "github-branch-deploy.toml",
        include_str!("../examples/github-branch-deploy.toml"),
    ),
    (
        "github-environment-deploy.toml",
        include_str!("../examples/github-environment-deploy.toml"),
    ),
    (
        "github-tag-release.toml",
        include_str!("../examples/github-tag-release.toml"),
    ),
    (
        "gitlab-protected-branch.toml",
        include_str!("../examples/gitlab-protected-branch.toml"),
    ),
    ("admin.toml", include_str!("../examples/admin.toml")),
];

fn merged() -> Document {
    let mut document = Document::default();
    for (name, text) in EXAMPLES {
        let parsed = parse_document(text).unwrap_or_else(|err| panic!("{name}: {err}"));
        for key in parsed.roles.keys() {
            assert!(
                !document.roles.contains_key(key),
                "{name}: role {key} collides"
            );
        }
        for key in parsed.policies.keys() {
            assert!(
                !document.policies.contains_key(key),
                "{name}: policy {key} collides"
            );
        }
        for key in parsed.issuers.keys() {
            assert!(
                !document.issuers.contains_key(key),
                "{name}: issuer {key} collides"
            );
        }
        document.merge(parsed);
    }
    document
}

#[test]
fn examples_validate_and_lint_clean() {
    let document = merged();
    document.validate().expect("merged examples validate");
    let warnings = lint(&document);
    assert!(
        warnings.is_empty(),
        "{}",
        warnings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(document.issuers.len(), 2);
    assert_eq!(document.roles.len(), 4);
}

#[test]
fn examples_round_trip_through_json() {
    let document = merged();
    let json = serde_json::to_string_pretty(&document).expect("serializes");
    let back: Document = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, document);
    back.validate().expect("still valid");
}

fn github_claims(extra: Value) -> Value {
    // Shaped like GitHub's documented example token.
    let mut claims = json!({
        "iss": "https://token.actions.githubusercontent.com",
        "aud": "https://vault.example.com",
        "sub": "repo:octo-org/octo-repo:ref:refs/heads/main",
        "repository": "octo-org/octo-repo",
        "repository_id": "74",
        "repository_owner": "octo-org",
        "repository_owner_id": "65",
        "ref": "refs/heads/main",
        "ref_type": "branch",
        "event_name": "push",
        "runner_environment": "github-hosted",
        "jti": "example-id",
        "iat": 1_632_492_967,
        "exp": 1_632_493_867
    });
    if let (Some(base), Value::Object(extra)) = (claims.as_object_mut(), extra) {
        base.extend(extra);
    }
    claims
}

#[test]
fn github_branch_deploy() {
    let document = merged();
    let role = &document.roles["github-api-staging"];
    assert_eq!(match_claims(role, &github_claims(json!({}))), Ok(()));
    let pr_target = github_claims(json!({"event_name": "pull_request_target"}));
    let err = match_claims(role, &pr_target).expect_err("pull_request_target refused");
    assert_eq!(
        err.to_string(),
        "claim `event_name` does not match the role"
    );
    let numeric = github_claims(json!({"repository_id": 74}));
    assert!(match_claims(role, &numeric).is_err());

    let acl = document.acl(role.granted_policies().iter().map(String::as_str));
    assert!(acl.allows("secret/data/staging/api", Capability::Read));
    assert!(acl.allows("secret/data/staging/shared/db", Capability::Read));
    assert!(acl.allows("secret/metadata/staging/shared/", Capability::List));
    assert!(acl.allows("secret/data/staging/api/last-deploy", Capability::Update));
    assert!(!acl.allows("secret/data/staging/api", Capability::Update));
    assert!(!acl.allows("secret/data/prod/api", Capability::Read));
}

#[test]
fn github_environment_deploy() {
    let document = merged();
    let claims = github_claims(json!({
        "environment": "production",
        "sub": "repo:octo-org/octo-repo:environment:production"
    }));
    let explanation = explain(&document, "github-api-production", &claims);
    assert!(explanation.can_login, "{explanation}");
    let no_env = github_claims(json!({}));
    let explanation = explain(&document, "github-api-production", &no_env);
    assert!(!explanation.can_login);
    assert!(
        explanation
            .failure
            .unwrap_or_default()
            .contains("environment")
    );

    let acl = document.acl(["api-production-read", "default"]);
    assert!(acl.allows("secret/data/prod/shared/db", Capability::Read));
    assert!(!acl.allows("secret/data/prod/shared/root-ca-key", Capability::Read));
    assert!(acl.allows("auth/token/renew-self", Capability::Update));
}

#[test]
fn github_tag_release() {
    let document = merged();
    let role = &document.roles["github-cli-release"];
    let tag = github_claims(json!({
        "repository_id": "892",
        "ref": "refs/tags/v1.4.0",
        "ref_type": "tag",
        "job_workflow_ref": "octo-org/cli/.github/workflows/release.yml@refs/tags/v1.4.0"
    }));
    assert_eq!(match_claims(role, &tag), Ok(()));
    let mut other_workflow = tag.clone();
    other_workflow["job_workflow_ref"] =
        json!("octo-org/cli/.github/workflows/debug.yml@refs/tags/v1.4.0");
    assert_eq!(
        match_claims(role, &other_workflow)
            .expect_err("other workflow")
            .claim(),
        Some("job_workflow_ref")
    );
    let mut branch = tag;
    branch["ref"] = json!("refs/heads/v2-work");
    assert!(match_claims(role, &branch).is_err());
}

#[test]
fn gitlab_protected_branch() {
    let document = merged();
    let claims = json!({
        "iss": "https://gitlab.example.com",
        "aud": "https://vault.example.com",
        "sub": "project_path:my-group/my-project:ref_type:branch:ref:main",
        "namespace_id": "72",
        "namespace_path": "my-group",
        "project_id": "20",
        "project_path": "my-group/my-project",
        "pipeline_source": "push",
        "ref": "main",
        "ref_type": "branch",
        "ref_protected": "true",
        "runner_id": 1
    });
    let explanation = explain(&document, "gitlab-app-deploy", &claims);
    assert!(explanation.can_login, "{explanation}");
    let mut unprotected = claims;
    unprotected["ref_protected"] = json!("false");
    let explanation = explain(&document, "gitlab-app-deploy", &unprotected);
    assert!(!explanation.can_login);
}

#[test]
fn admin_policies() {
    let document = merged();
    let admin = document.acl(["admin"]);
    assert!(admin.allows("secret/data/anything", Capability::Update));
    assert!(admin.allows("auth/token/create", Capability::Sudo));
    assert!(!admin.allows("sys/seal", Capability::Update));
    let auditor = document.acl(["auditor"]);
    assert!(auditor.allows("secret/metadata/prod/api", Capability::Read));
    assert!(!auditor.allows("secret/data/prod/api", Capability::Read));
}
