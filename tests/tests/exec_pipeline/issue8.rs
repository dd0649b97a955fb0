//! Issue 8, items 10–17: structured secrets, wrapped base64, URL and CRLF forms, refused
//! variable names, revocation on every exit path, single signal delivery, `::add-mask::`
//! escaping. Every check for an absent secret first checks that the text around it is there.

use super::*;

const NESTED_PASS: &str = "n3sted-Pa55word!";
const SA_KEY_ID: &str = "8c1e1d2e3f4a5b6c7d8e9f00";
const PEM_LINE: &str = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7";

/// A job whose root token can read `secret/prod/<name>` holding `data`.
fn job_with(name: &str, data: serde_json::Value) -> (Job, Vec<(String, String)>) {
    let j = job();
    let root = j.server.root().to_owned();
    let r = j.server.put(
        &format!("secret/data/prod/{name}"),
        Some(&root),
        &json!({ "data": data }).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    (j, vec![("VAULTCTL_TOKEN".to_owned(), root)])
}

/// Asserts that `marker` is in `text` (so the search below is meaningful) and that none of
/// `secrets` is.
fn assert_masked(text: &str, markers: &[&str], secrets: &[&str]) {
    for marker in markers {
        assert!(
            text.contains(marker),
            "{marker:?} missing from output:\n{text}"
        );
    }
    for (index, secret) in secrets.iter().enumerate() {
        assert!(!text.contains(secret), "secret #{index} leaked");
    }
}

#[test]
fn structured_secrets_are_masked_leaf_by_leaf() {
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{PEM_LINE}\n-----END PRIVATE KEY-----\n");
    let sa_key =
        json!({"type": "service_account", "private_key_id": SA_KEY_ID, "private_key": pem})
            .to_string();
    let (j, env) = job_with(
        "structured",
        json!({"db": {"user": "app", "pass": NESTED_PASS}, "SA_KEY": sa_key}),
    );
    let script = r#"
import json, os
db = json.loads(os.environ["db"])
print("pass:", db["pass"])
sa = json.loads(os.environ["SA_KEY"])
print("key id:", sa["private_key_id"])
print("pem:")
print(sa["private_key"])
print("user:", db["user"])
"#;
    let out = j.run(
        &env,
        &[
            "exec",
            "--secret",
            "prod/structured",
            "--",
            "python3",
            "-c",
            script,
        ],
    );
    assert_eq!(out.status, Some(0), "{out:?}");
    assert_masked(
        &out.stdout,
        &["pass: ***", "key id: ***", "pem:\n", "user: app"],
        &[NESTED_PASS, SA_KEY_ID, PEM_LINE],
    );
}
