//! Vault semantics that stock clients rely on and that a security boundary depends on: folder
//! ACLs on list, the token tree, `delete_version_after`, the `?list=` flag, presented tokens.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use e2e::{Resp, Server};
use serde_json::json;

fn token_with(server: &Server, body: &str) -> String {
    let r = server.put("auth/token/create", Some(server.root()), body);
    assert_eq!(r.status, 200, "{}", r.raw);
    r.body["auth"]["client_token"].as_str().unwrap().to_owned()
}

fn child_of(server: &Server, parent: &str, body: &str) -> Resp {
    server.put("auth/token/create", Some(parent), body)
}

fn client_token(r: &Resp) -> String {
    assert_eq!(r.status, 200, "{}", r.raw);
    r.body["auth"]["client_token"].as_str().unwrap().to_owned()
}

fn write_secret(server: &Server, path: &str) {
    let r = server.put(
        &format!("secret/data/{path}"),
        Some(server.root()),
        r#"{"data":{"k":"value-1234"}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.raw);
}

#[test]
fn folder_wildcard_rule_grants_list_of_the_folder() {
    let server = Server::dev();
    write_secret(&server, "team/a");
    write_secret(&server, "other/b");
    server.apply_policy(
        "[policies.team-list]\nrules = [{ path = \"secret/metadata/team/*\", capabilities = [\"list\"] }]\n",
    );
    let token = token_with(&server, r#"{"policies":["team-list"]}"#);
    for (method, path) in [
        ("LIST", "secret/metadata/team/"),
        ("LIST", "secret/metadata/team"),
        ("GET", "secret/metadata/team/?list=true"),
    ] {
        let r = server.call(method, path, Some(&token), None);
        assert_eq!(r.status, 200, "{method} {path}: {}", r.raw);
        assert_eq!(r.body["data"]["keys"], json!(["a"]), "{}", r.raw);
    }
    // The rule is for the folder's contents, not its siblings.
    assert_eq!(
        server
            .call("LIST", "secret/metadata/other/", Some(&token), None)
            .status,
        403
    );
    assert_eq!(
        server
            .call("LIST", "secret/metadata/", Some(&token), None)
            .status,
        403
    );
}

#[test]
fn deny_on_a_folder_wins_over_a_broader_list_rule() {
    let server = Server::dev();
    write_secret(&server, "private/hidden-name");
    write_secret(&server, "public/x");
    server.apply_policy(
        "[policies.lister]\nrules = [\n  { path = \"secret/metadata/*\", capabilities = [\"list\"] },\n  { path = \"secret/metadata/private/*\", capabilities = [\"deny\"] },\n]\n",
    );
    let token = token_with(&server, r#"{"policies":["lister"]}"#);
    let public = server.call("LIST", "secret/metadata/public/", Some(&token), None);
    assert_eq!(public.status, 200, "{}", public.raw);
    assert_eq!(public.body["data"]["keys"], json!(["x"]));
    for path in ["secret/metadata/private/", "secret/metadata/private"] {
        let r = server.call("LIST", path, Some(&token), None);
        assert_eq!(r.status, 403, "{path}: {}", r.raw);
        assert!(!r.raw.contains("hidden-name"), "{}", r.raw);
    }
}

#[test]
fn dev_read_policy_lists_the_dev_folder() {
    let server = Server::dev();
    write_secret(&server, "dev/app");
    // The dev role's policy, on a token created with it.
    let token = token_with(&server, r#"{"policies":["dev-read"]}"#);
    let r = server.call("LIST", "secret/metadata/dev/", Some(&token), None);
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.body["data"]["keys"], json!(["app"]));
}

#[test]
fn read_with_a_trailing_slash_does_not_read_the_secret() {
    let server = Server::dev();
    write_secret(&server, "x");
    let ok = server.get("secret/data/x", Some(server.root()));
    assert_eq!(ok.body["data"]["data"]["k"], "value-1234", "{}", ok.raw);
    let r = server.get("secret/data/x/", Some(server.root()));
    assert_ne!(r.status, 200, "{}", r.raw);
    assert!(!r.raw.contains("value-1234"), "{}", r.raw);
    // A policy on `secret/data/x` alone does not reach `secret/data/x/`.
    server.apply_policy(
        "[policies.x-only]\nrules = [{ path = \"secret/data/x\", capabilities = [\"read\"] }]\n",
    );
    let token = token_with(&server, r#"{"policies":["x-only"]}"#);
    assert_eq!(server.get("secret/data/x", Some(&token)).status, 200);
    assert_eq!(server.get("secret/data/x/", Some(&token)).status, 403);
}

#[test]
fn list_flag_accepts_vaults_boolean_forms_and_refuses_others() {
    let server = Server::dev();
    write_secret(&server, "f/a");
    for yes in ["1", "t", "T", "TRUE", "true", "True"] {
        let r = server.get(
            &format!("secret/metadata/f?list={yes}"),
            Some(server.root()),
        );
        assert_eq!(r.body["data"]["keys"], json!(["a"]), "{yes}: {}", r.raw);
    }
    // An empty value is no flag at all, as in Vault.
    for no in ["0", "f", "F", "FALSE", "false", "False", ""] {
        let r = server.get(&format!("secret/metadata/f?list={no}"), Some(server.root()));
        assert_eq!(r.status, 404, "{no}: {}", r.raw); // a read of metadata of `f`
    }
    for bad in ["yes", "2", "tru", "on", "true%20"] {
        let r = server.get(
            &format!("secret/metadata/f?list={bad}"),
            Some(server.root()),
        );
        assert_eq!(r.status, 400, "{bad:?}: {}", r.raw);
    }
}

#[test]
fn revoking_a_parent_revokes_its_descendants() {
    let server = Server::dev();
    server.apply_policy(
        "[policies.minter]\nrules = [{ path = \"auth/token/create\", capabilities = [\"update\"] }]\n",
    );
    let parent = token_with(
        &server,
        r#"{"ttl":"1h","renewable":false,"policies":["minter"]}"#,
    );
    let child = client_token(&child_of(
        &server,
        &parent,
        r#"{"ttl":"700h","policies":["minter"]}"#,
    ));
    let grandchild = client_token(&child_of(&server, &child, r#"{"policies":["minter"]}"#));
    // Capped by the parent's remaining life.
    let me = server.get("auth/token/lookup-self", Some(&child));
    assert!(
        me.body["data"]["ttl"].as_u64().unwrap() <= 3600,
        "{}",
        me.raw
    );
    assert!(
        me.body["data"]["explicit_max_ttl"].as_u64().unwrap() <= 3600,
        "{}",
        me.raw
    );
    assert_eq!(
        server
            .get("auth/token/lookup-self", Some(&grandchild))
            .status,
        200
    );

    let r = server.put("auth/token/revoke-self", Some(&parent), "{}");
    assert_eq!(r.status, 204, "{}", r.raw);
    for (name, t) in [
        ("parent", &parent),
        ("child", &child),
        ("grandchild", &grandchild),
    ] {
        let r = server.get("auth/token/lookup-self", Some(t));
        assert_eq!(
            r.status, 403,
            "{name} still works after the parent's revoke-self"
        );
    }
}

#[test]
fn revoke_by_token_and_accessor_cascade_and_revoke_orphan_does_not() {
    let server = Server::dev();
    server.apply_policy(
        "[policies.minter]\nrules = [{ path = \"auth/token/create\", capabilities = [\"update\"] }]\n",
    );
    let root = server.root().to_owned();
    // revoke (by token) cascades.
    let a = token_with(&server, r#"{"policies":["minter"]}"#);
    let a_child = client_token(&child_of(&server, &a, r#"{"policies":["minter"]}"#));
    let r = server.put(
        "auth/token/revoke",
        Some(&root),
        &json!({ "token": a }).to_string(),
    );
    assert_eq!(r.status, 204, "{}", r.raw);
    assert_eq!(
        server.get("auth/token/lookup-self", Some(&a_child)).status,
        403
    );

    // revoke-accessor cascades.
    let b = server.put(
        "auth/token/create",
        Some(&root),
        r#"{"policies":["minter"]}"#,
    );
    let b_accessor = b.body["auth"]["accessor"].as_str().unwrap().to_owned();
    let b = client_token(&b);
    let b_child = client_token(&child_of(&server, &b, r#"{"policies":["minter"]}"#));
    let r = server.put(
        "auth/token/revoke-accessor",
        Some(&root),
        &json!({ "accessor": b_accessor }).to_string(),
    );
    assert_eq!(r.status, 204, "{}", r.raw);
    assert_eq!(
        server.get("auth/token/lookup-self", Some(&b_child)).status,
        403
    );

    // revoke-orphan revokes the token alone; its children live on.
    let c = token_with(&server, r#"{"policies":["minter"]}"#);
    let c_child = client_token(&child_of(&server, &c, r#"{"policies":["minter"]}"#));
    let r = server.put(
        "auth/token/revoke-orphan",
        Some(&root),
        &json!({ "token": c }).to_string(),
    );
    assert_eq!(r.status, 204, "{}", r.raw);
    assert_eq!(server.get("auth/token/lookup-self", Some(&c)).status, 403);
    let orphan = server.get("auth/token/lookup-self", Some(&c_child));
    assert_eq!(orphan.status, 200, "{}", orphan.raw);
    assert_eq!(orphan.body["data"]["orphan"], true, "{}", orphan.raw);
    // revoke-orphan needs sudo: a token with update alone on the path is refused.
    server.apply_policy(
        "[policies.orphaner]\nrules = [{ path = \"auth/token/revoke-orphan\", capabilities = [\"update\"] }]\n",
    );
    let d = token_with(&server, r#"{"policies":["orphaner"]}"#);
    let r = server.put(
        "auth/token/revoke-orphan",
        Some(&d),
        &json!({ "token": c_child }).to_string(),
    );
    assert_eq!(r.status, 403, "{}", r.raw);
    assert_eq!(
        server.get("auth/token/lookup-self", Some(&c_child)).status,
        200
    );
}

#[test]
fn child_lookup_names_its_parent_relation() {
    let server = Server::dev();
    server.apply_policy(
        "[policies.minter]\nrules = [{ path = \"auth/token/create*\", capabilities = [\"update\"] }]\n",
    );
    let parent = token_with(&server, r#"{"policies":["minter"]}"#);
    let child = client_token(&child_of(&server, &parent, r#"{"policies":["minter"]}"#));
    let me = server.get("auth/token/lookup-self", Some(&child));
    assert_eq!(me.body["data"]["orphan"], false, "{}", me.raw);
    let orphan = client_token(&server.put(
        "auth/token/create-orphan",
        Some(&parent),
        r#"{"policies":["minter"]}"#,
    ));
    let r = server.put("auth/token/revoke-self", Some(&parent), "{}");
    assert_eq!(r.status, 204);
    let me = server.get("auth/token/lookup-self", Some(&orphan));
    assert_eq!(me.status, 200, "create-orphan made a child: {}", me.raw);
    assert_eq!(me.body["data"]["orphan"], true, "{}", me.raw);
}

#[test]
fn use_limited_token_cannot_multiply_its_uses_through_children() {
    let server = Server::dev();
    write_secret(&server, "u/s");
    server.apply_policy(
        "[policies.minter-reader]\nrules = [\n  { path = \"auth/token/create\", capabilities = [\"update\"] },\n  { path = \"secret/data/u/*\", capabilities = [\"read\"] },\n]\n",
    );
    let limited = token_with(&server, r#"{"num_uses":3,"policies":["minter-reader"]}"#);
    let mut reads = 0;
    for body in [
        r#"{"num_uses":2,"policies":["minter-reader"]}"#,
        r#"{"num_uses":1,"policies":["minter-reader"]}"#,
    ] {
        let r = child_of(&server, &limited, body);
        if r.status == 200 {
            let child = client_token(&r);
            while server.get("secret/data/u/s", Some(&child)).status == 200 {
                reads += 1;
            }
        }
    }
    while server.get("secret/data/u/s", Some(&limited)).status == 200 {
        reads += 1;
    }
    assert!(reads <= 3, "a 3-use token yielded {reads} reads");
    assert!(reads >= 1, "the limited token never read");
}

#[test]
fn revoke_refuses_a_token_with_a_bad_checksum() {
    let server = Server::dev();
    let t = token_with(&server, r#"{"policies":["default"]}"#);
    let mut bad = t.clone().into_bytes();
    let last = bad.len() - 1;
    bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
    let bad = String::from_utf8(bad).unwrap();
    let r = server.put(
        "auth/token/revoke",
        Some(server.root()),
        &json!({ "token": bad }).to_string(),
    );
    assert_eq!(r.status, 400, "{}", r.raw);
    assert!(r.raw.contains("checksum"), "{}", r.raw);
    assert_eq!(server.get("auth/token/lookup-self", Some(&t)).status, 200);
}

#[test]
fn versions_older_than_delete_version_after_read_as_deleted() {
    let server = Server::dev();
    let root = server.root().to_owned();
    // As in Vault, the setting applies to versions written after it.
    let r = server.put(
        "secret/metadata/short/lived",
        Some(&root),
        r#"{"delete_version_after":"1s"}"#,
    );
    assert_eq!(r.status, 204, "{}", r.raw);
    write_secret(&server, "short/lived");
    let fresh = server.get("secret/data/short/lived", Some(&root));
    assert_eq!(fresh.status, 200, "{}", fresh.raw);
    assert_eq!(fresh.body["data"]["data"]["k"], "value-1234");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let old = server.get("secret/data/short/lived", Some(&root));
    assert_eq!(old.status, 404, "{}", old.raw);
    assert!(!old.raw.contains("value-1234"), "{}", old.raw);
    let deletion_time = old.body["data"]["metadata"]["deletion_time"]
        .as_str()
        .unwrap();
    assert!(deletion_time.ends_with('Z'), "{}", old.raw);
    // Undelete brings it back, as for any soft-deleted version.
    let r = server.put(
        "secret/undelete/short/lived",
        Some(&root),
        r#"{"versions":[1]}"#,
    );
    assert_eq!(r.status, 204, "{}", r.raw);
    assert_eq!(
        server.get("secret/data/short/lived", Some(&root)).status,
        200
    );
    // Turned off (0s), versions written afterwards live on.
    let r = server.put(
        "secret/metadata/short/lived",
        Some(&root),
        r#"{"delete_version_after":"0s"}"#,
    );
    assert_eq!(r.status, 204);
    write_secret(&server, "short/lived");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let v2 = server.get("secret/data/short/lived", Some(&root));
    assert_eq!(v2.status, 200, "{}", v2.raw);
    assert_eq!(
        v2.body["data"]["metadata"]["deletion_time"], "",
        "{}",
        v2.raw
    );
}
