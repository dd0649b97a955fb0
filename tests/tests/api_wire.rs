//! Vault wire compatibility and hostile input on the HTTP API.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use e2e::{Server, raw_call};
use serde_json::json;

#[test]
fn envelope_headers_and_kv_v2_shapes_match_vault() {
    let server = Server::dev();
    let root = server.root();
    let w = server.call(
        "POST",
        "secret/data/prod/api",
        Some(root),
        Some(r#"{"options":{},"data":{"user":"svc","password":"s3cr3t-value"}}"#),
    );
    assert_eq!(w.status, 200);
    assert_eq!(w.content_type.as_deref(), Some("application/json"));
    assert_eq!(w.cache_control.as_deref(), Some("no-store"));
    for field in [
        "request_id",
        "lease_id",
        "renewable",
        "lease_duration",
        "data",
        "wrap_info",
        "warnings",
        "auth",
    ] {
        assert!(
            w.body.get(field).is_some(),
            "envelope lacks {field}: {}",
            w.raw
        );
    }
    assert_eq!(w.body["data"]["version"], 1);
    assert_eq!(w.body["data"]["destroyed"], false);
    assert_eq!(w.body["data"]["deletion_time"], "");

    let r = server.get("secret/data/prod/api", Some(root));
    assert_eq!(r.body["data"]["data"]["password"], "s3cr3t-value");
    assert_eq!(r.body["data"]["metadata"]["version"], 1);
    assert!(
        r.body["data"]["metadata"]["created_time"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    // Second version, read of a specific version.
    server.put(
        "secret/data/prod/api",
        Some(root),
        r#"{"data":{"password":"v2"}}"#,
    );
    assert_eq!(
        server
            .get("secret/data/prod/api?version=1", Some(root))
            .body["data"]["data"]["password"],
        "s3cr3t-value"
    );
    assert_eq!(
        server.get("secret/data/prod/api", Some(root)).body["data"]["metadata"]["version"],
        2
    );
    assert_eq!(
        server
            .get("secret/data/prod/api?version=9", Some(root))
            .status,
        404
    );

    // Soft delete → 404 with the full envelope; undelete brings it back; destroy is final.
    let d = server.call("DELETE", "secret/data/prod/api", Some(root), None);
    assert_eq!(d.status, 204);
    assert!(d.raw.is_empty());
    let gone = server.get("secret/data/prod/api", Some(root));
    assert_eq!(gone.status, 404);
    assert!(gone.body.get("errors").is_none(), "{}", gone.raw);
    assert_eq!(gone.body["data"]["data"], serde_json::Value::Null);
    assert_ne!(gone.body["data"]["metadata"]["deletion_time"], "");
    assert_eq!(
        server
            .put(
                "secret/undelete/prod/api",
                Some(root),
                r#"{"versions":[2]}"#
            )
            .status,
        204
    );
    assert_eq!(
        server.get("secret/data/prod/api", Some(root)).body["data"]["data"]["password"],
        "v2"
    );
    assert_eq!(
        server
            .put("secret/destroy/prod/api", Some(root), r#"{"versions":[1]}"#)
            .status,
        204
    );
    let destroyed = server.get("secret/data/prod/api?version=1", Some(root));
    assert_eq!(destroyed.status, 404);
    assert_eq!(destroyed.body["data"]["metadata"]["destroyed"], true);
    assert_eq!(
        server
            .put(
                "secret/undelete/prod/api",
                Some(root),
                r#"{"versions":[1]}"#
            )
            .status,
        204
    );
    assert_eq!(
        server
            .get("secret/data/prod/api?version=1", Some(root))
            .status,
        404
    );

    // Metadata: versions map, custom metadata, max_versions pruning.
    let m = server.get("secret/metadata/prod/api", Some(root));
    assert_eq!(m.body["data"]["current_version"], 2);
    assert_eq!(m.body["data"]["versions"]["1"]["destroyed"], true);
    assert_eq!(
        server
            .put(
                "secret/metadata/prod/api",
                Some(root),
                r#"{"max_versions":2,"custom_metadata":{"owner":"team-a"}}"#
            )
            .status,
        204
    );
    server.put(
        "secret/data/prod/api",
        Some(root),
        r#"{"data":{"password":"v3"}}"#,
    );
    let m = server.get("secret/metadata/prod/api", Some(root));
    assert_eq!(m.body["data"]["oldest_version"], 2);
    assert_eq!(m.body["data"]["custom_metadata"]["owner"], "team-a");
    assert!(m.body["data"]["versions"].get("1").is_none());
    assert_eq!(
        server.get("secret/data/prod/api", Some(root)).body["data"]["metadata"]["custom_metadata"]
            ["owner"],
        "team-a"
    );

    // LIST and GET ?list=true; 404 when empty.
    server.put("secret/data/prod/db", Some(root), r#"{"data":{"x":"y"}}"#);
    server.put(
        "secret/data/prod/shared/tls",
        Some(root),
        r#"{"data":{"x":"y"}}"#,
    );
    let l = server.call("LIST", "secret/metadata/prod", Some(root), None);
    assert_eq!(l.body["data"]["keys"], json!(["api", "db", "shared/"]));
    let l2 = server.get("secret/metadata/prod/?list=true", Some(root));
    assert_eq!(l2.body["data"]["keys"], json!(["api", "db", "shared/"]));
    assert_eq!(
        server
            .call("LIST", "secret/metadata/nothing", Some(root), None)
            .status,
        404
    );

    // Metadata delete removes every version.
    assert_eq!(
        server
            .call("DELETE", "secret/metadata/prod/db", Some(root), None)
            .status,
        204
    );
    assert_eq!(server.get("secret/data/prod/db", Some(root)).status, 404);
    assert_eq!(
        server.get("secret/metadata/prod/db", Some(root)).status,
        404
    );

    // Missing item: 404 with an empty error list.
    let missing = server.get("secret/data/nope", Some(root));
    assert_eq!(missing.status, 404);
    assert_eq!(missing.raw, r#"{"errors":[]}"#);

    // The mount preflight `vault kv` does.
    let mount = server.get("sys/internal/ui/mounts/secret/prod/api", Some(root));
    assert_eq!(mount.body["data"]["options"]["version"], "2");
    assert_eq!(mount.body["data"]["type"], "kv");
}

#[test]
fn check_and_set() {
    let server = Server::dev();
    let root = server.root();
    let create = |cas: u64| {
        server.put(
            "secret/data/cas",
            Some(root),
            &json!({"options": {"cas": cas}, "data": {"v": cas}}).to_string(),
        )
    };
    assert_eq!(create(0).status, 200);
    let again = create(0);
    assert_eq!(again.status, 400);
    assert_eq!(
        again.errors(),
        vec!["check-and-set parameter did not match the current version"]
    );
    assert_eq!(create(1).status, 200);
    assert_eq!(create(5).status, 400);
    server.put(
        "secret/metadata/cas",
        Some(root),
        r#"{"cas_required":true}"#,
    );
    let no_cas = server.put("secret/data/cas", Some(root), r#"{"data":{"v":1}}"#);
    assert_eq!(
        no_cas.errors(),
        vec!["check-and-set parameter required for this call"]
    );
    assert_eq!(
        server.get("secret/metadata/cas", Some(root)).body["data"]["current_version"],
        2
    );
}

#[test]
fn bad_input_gets_vault_errors_and_changes_nothing() {
    let server = Server::dev();
    let root = server.root();
    server.put(
        "secret/data/keep",
        Some(root),
        r#"{"data":{"v":"original"}}"#,
    );
    let cases: &[(&str, &str, Option<&str>, u16)] = &[
        ("PUT", "secret/data/keep", Some("{not json"), 400),
        (
            "PUT",
            "secret/data/keep",
            Some(r#"{"data":"a string"}"#),
            400,
        ),
        ("PUT", "secret/data/keep", Some(r#"{"data":null}"#), 400),
        ("PUT", "secret/data/keep", Some(r#"{}"#), 400),
        (
            "PUT",
            "secret/data/keep",
            Some(r#"{"data":{"v":1},"options":{"cas":"one"}}"#),
            400,
        ),
        ("PUT", "secret/data/keep", Some(r#"[1,2,3]"#), 400),
        ("PUT", "secret/data/a//b", Some(r#"{"data":{"v":1}}"#), 400),
        (
            "PUT",
            "secret/data/a/../keep",
            Some(r#"{"data":{"v":1}}"#),
            400,
        ),
        (
            "PUT",
            "secret/data/a/%2e%2e/keep",
            Some(r#"{"data":{"v":1}}"#),
            400,
        ),
        (
            "PUT",
            "secret/data/%ff%fe",
            Some(r#"{"data":{"v":1}}"#),
            400,
        ),
        ("PUT", "secret/data/a%00b", Some(r#"{"data":{"v":1}}"#), 400),
        (
            "PUT",
            "secret/metadata/keep",
            Some(r#"{"max_versions":"ten"}"#),
            400,
        ),
        (
            "PUT",
            "secret/metadata/keep",
            Some(r#"{"unknown_field":1}"#),
            400,
        ),
        (
            "PUT",
            "secret/delete/keep",
            Some(r#"{"versions":"1"}"#),
            400,
        ),
        ("PUT", "secret/delete/keep", Some(r#"{}"#), 400),
        ("GET", "secret/data/keep?version=abc", None, 400),
        ("GET", "secret/keep", None, 404),
        ("GET", "secret/", None, 404),
        ("PATCH", "secret/data/keep", Some("{}"), 405),
        ("GET", "sys/health?activecode=abc", None, 400),
        (
            "PUT",
            "sys/init",
            Some(r#"{"secret_shares":5,"secret_threshold":3}"#),
            400,
        ),
        ("GET", "nothing/here", None, 404),
    ];
    for (method, path, body, want) in cases {
        let r = server.call(method, path, Some(root), *body);
        assert_eq!(r.status, *want, "{method} {path} {body:?} → {}", r.raw);
        if *want != 405 {
            assert_eq!(
                r.content_type.as_deref(),
                Some("application/json"),
                "{method} {path}"
            );
        }
        if r.status == 400 {
            assert!(!r.errors().is_empty(), "{method} {path}: no message");
        }
    }
    let r = server.get("secret/data/keep", Some(root));
    assert_eq!(r.body["data"]["data"]["v"], "original");
    assert_eq!(r.body["data"]["metadata"]["version"], 1);
    // JSON errors never echo the input back.
    let r = server.put(
        "secret/data/keep",
        Some(root),
        r#"{"data":{"v":1},"options":{"cas":"hunter2-secret"}}"#,
    );
    assert_eq!(r.status, 400, "{}", r.raw);
    assert!(
        r.errors()[0].starts_with("failed to parse JSON input"),
        "{}",
        r.raw
    );
    assert!(!r.raw.contains("hunter2"), "{}", r.raw);
}

/// Sends a raw HTTP/1.1 request and returns the response head + body as text. Write errors are
/// ignored: the server may answer and close before the whole body is sent.
fn raw_http(addr: &str, head: &str, body_len: usize) -> String {
    use std::io::{Read, Write};
    let host = addr.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let head = head.to_owned();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(head.as_bytes());
        let chunk = vec![b'x'; 64 * 1024];
        let mut sent = 0;
        while sent < body_len {
            if writer.write_all(&chunk).is_err() {
                break;
            }
            sent += chunk.len();
        }
    });
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
        if response.windows(4).any(|w| w == b"\r\n\r\n") && response.ends_with(b"}") {
            break;
        }
    }
    drop(stream);
    let _ = sender.join();
    String::from_utf8_lossy(&response).into_owned()
}

#[test]
fn oversized_bodies_get_413() {
    let server = Server::dev();
    let root = server.root();
    let len = 2 * 1024 * 1024;
    // Declared too large: refused before reading.
    let declared = raw_http(
        &server.addr,
        &format!(
            "PUT /v1/secret/data/big HTTP/1.1\r\nHost: x\r\nX-Vault-Token: {root}\r\nContent-Length: {len}\r\n\r\n"
        ),
        len,
    );
    assert!(declared.starts_with("HTTP/1.1 413"), "{declared}");
    assert!(
        declared.contains(r#"{"errors":["request body too large"]}"#),
        "{declared}"
    );
    // Streamed without a length: cut off at the limit.
    let chunked = raw_http(
        &server.addr,
        &format!(
            "PUT /v1/secret/data/big HTTP/1.1\r\nHost: x\r\nX-Vault-Token: {root}\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\n"
        ),
        len,
    );
    assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked}");
    assert_eq!(server.get("secret/data/big", Some(root)).status, 404);
    // Header flood: refused, server still fine.
    let huge_header = raw_http(
        &server.addr,
        &format!(
            "GET /v1/sys/health HTTP/1.1\r\nHost: x\r\nX-Junk: {}\r\n\r\n",
            "h".repeat(200 * 1024)
        ),
        0,
    );
    assert!(!huge_header.starts_with("HTTP/1.1 200"), "{huge_header}");
    assert_eq!(server.get("sys/health", None).status, 200);
}

#[test]
fn tokens_missing_wrong_expired_and_policy_limited() {
    let server = Server::dev();
    let root = server.root();
    server.put("secret/data/x", Some(root), r#"{"data":{"v":"1"}}"#);
    for token in [
        None,
        Some("vcs_wrong"),
        Some(""),
        Some(&"a".repeat(5000)[..]),
    ] {
        let r = server.get("secret/data/x", token);
        assert_eq!(r.status, 403, "{token:?}");
        assert_eq!(r.errors(), vec!["permission denied", "invalid token"]);
    }
    // Bearer header works like X-Vault-Token.
    let mut req = ureq::http::Request::builder()
        .uri(server.url("secret/data/x"))
        .header("Authorization", format!("Bearer {root}"));
    req = req.header("X-Vault-Request", "true");
    let resp = ureq::Agent::new_with_defaults()
        .run(req.body(()).unwrap())
        .unwrap();
    assert_eq!(resp.status(), 200);

    // A child token without policies for KV may only look itself up.
    let child = server.put(
        "auth/token/create",
        Some(root),
        r#"{"policies":["nothing"],"ttl":"10m"}"#,
    );
    assert_eq!(child.status, 200, "{}", child.raw);
    let auth = &child.body["auth"];
    let child_token = auth["client_token"].as_str().unwrap();
    assert!(child_token.starts_with("vcs_"));
    assert_eq!(auth["policies"], json!(["default", "nothing"]));
    assert_eq!(auth["token_type"], "service");
    assert!(auth["lease_duration"].as_u64().unwrap() <= 600);
    // The same token with its checksum broken is refused.
    let mut typo = child_token.to_owned();
    let last = typo.pop().unwrap();
    typo.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(
        server.get("auth/token/lookup-self", Some(&typo)).errors(),
        vec!["permission denied", "invalid token"]
    );
    let denied = server.get("secret/data/x", Some(child_token));
    assert_eq!(denied.status, 403);
    assert_eq!(denied.errors(), vec!["permission denied"]);
    let me = server.get("auth/token/lookup-self", Some(child_token));
    assert_eq!(me.status, 200);
    assert_eq!(me.body["data"]["accessor"], auth["accessor"]);
    assert_eq!(me.body["data"]["path"], "auth/token/create");
    assert!(me.body["data"]["expire_time"].is_string());
    // A non-root token cannot mint tokens with policies it lacks.
    assert_eq!(
        server
            .put(
                "auth/token/create",
                Some(child_token),
                r#"{"policies":["root"]}"#
            )
            .status,
        403
    );

    // Lookup and revoke by accessor.
    let by_acc = server.put(
        "auth/token/lookup-accessor",
        Some(root),
        &json!({"accessor": auth["accessor"]}).to_string(),
    );
    assert_eq!(by_acc.body["data"]["id"], "");
    assert_eq!(
        by_acc.body["data"]["policies"],
        json!(["default", "nothing"])
    );
    let renewed = server.put(
        "auth/token/renew-self",
        Some(child_token),
        r#"{"increment":"5m"}"#,
    );
    assert_eq!(renewed.status, 200, "{}", renewed.raw);
    assert!(renewed.body["auth"]["lease_duration"].as_u64().unwrap() > 0);
    assert_eq!(
        server
            .put(
                "auth/token/revoke-accessor",
                Some(root),
                &json!({"accessor": auth["accessor"]}).to_string()
            )
            .status,
        204
    );
    let gone = server.get("auth/token/lookup-self", Some(child_token));
    assert_eq!(gone.errors(), vec!["permission denied", "invalid token"]);

    // Use-limited tokens stop working after their uses.
    let limited = server.put("auth/token/create", Some(root), r#"{"num_uses":2}"#);
    let limited = limited.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(server.get("secret/data/x", Some(&limited)).status, 200);
    assert_eq!(server.get("secret/data/x", Some(&limited)).status, 200);
    assert_eq!(server.get("secret/data/x", Some(&limited)).status, 403);

    // revoke-self.
    let t = server.put("auth/token/create", Some(root), "{}");
    let t = t.body["auth"]["client_token"].as_str().unwrap().to_owned();
    assert_eq!(
        server.put("auth/token/revoke-self", Some(&t), "").status,
        204
    );
    assert_eq!(server.get("auth/token/lookup-self", Some(&t)).status, 403);
}

#[test]
fn health_codes_and_head() {
    let server = Server::dev();
    let r = server.get("sys/health", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.body["initialized"], true);
    assert_eq!(server.get("sys/health?activecode=299", None).status, 299);
    let head = raw_call(&server.url("sys/health"), "HEAD", None, None);
    assert_eq!(head.status, 200);
    assert!(head.raw.is_empty());
    let seal = server.get("sys/seal-status", None);
    assert_eq!(seal.body["type"], "shamir");
    assert_eq!(seal.body["t"], 1);
    assert_eq!(seal.body["n"], 1);
    assert_eq!(seal.body["progress"], 0);
}

#[test]
fn audit_log_records_requests_without_secrets() {
    let mut server = Server::dev();
    let root = server.root().to_owned();
    server.put(
        "secret/data/audited",
        Some(&root),
        r#"{"data":{"pw":"audit-canary-value"}}"#,
    );
    server.get("secret/data/audited", Some(&root));
    server.get("secret/data/audited", Some("vcs_bogus"));
    server.terminate();
    let log = std::fs::read_to_string(server.audit_log()).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["path"] == "secret/data/audited" && l["status"] == 200)
    );
    assert!(
        lines
            .iter()
            .any(|l| l["path"] == "secret/data/audited" && l["status"] == 403)
    );
    assert!(lines.iter().all(|l| l["request_id"].is_string()));
    assert!(!log.contains("audit-canary-value"));
    assert!(!log.contains(&root));
    let stderr = std::fs::read_to_string(&server.stderr_log).unwrap();
    assert!(!stderr.contains("audit-canary-value"));
    assert!(!stderr.contains(&root));
}

#[test]
fn unwritable_audit_log_fails_requests_closed_before_they_act() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (mut child, addr, token) = dev_with_audit_log(&data, "/dev/full");
    let write = raw_call(
        &format!("{addr}/v1/secret/data/audited"),
        "PUT",
        Some(&token),
        Some(br#"{"data":{"v":"never-stored"}}"#.to_vec()),
    );
    assert_eq!(write.status, 500, "{}", write.raw);
    assert_eq!(write.errors(), vec!["internal error"]);
    // Unaudited status calls still answer.
    assert_eq!(
        raw_call(&format!("{addr}/v1/sys/health"), "GET", None, None).status,
        200
    );
    let _ = child.kill();
    let _ = child.wait();
    // Restarted with a working audit log: the refused write never happened.
    let server = Server::dev_on(&data, &[]);
    assert_eq!(server.get("secret/data/audited", Some(&token)).status, 404);
}

/// `vaultd dev` on `data` with its audit log at `audit_log`: the child, its address and root token.
fn dev_with_audit_log(
    data: &std::path::Path,
    audit_log: &str,
) -> (std::process::Child, String, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(e2e::binary("vaultd"))
        .args([
            "dev",
            "--listen",
            "127.0.0.1:0",
            "--audit-log",
            audit_log,
            "--data-dir",
        ])
        .arg(data)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (mut addr, mut token) = (String::new(), String::new());
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(a) = line.strip_prefix("export VAULTCTL_ADDR=") {
            addr = a.to_owned();
        }
        if let Some(t) = line.strip_prefix("export VAULTCTL_TOKEN=") {
            token = t.to_owned();
            break;
        }
    }
    (child, addr, token)
}

#[test]
fn reads_are_audited_request_line_first_and_fail_closed_without_spending_a_use() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server = Server::dev_on(&data, &[]);
    let root = server.root().to_owned();
    server.put(
        "secret/data/held",
        Some(&root),
        r#"{"data":{"v":"held-canary"}}"#,
    );
    let once = server.put("auth/token/create", Some(&root), r#"{"num_uses":1}"#);
    let once = once.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // A read's two lines: the request line, then its response line, as for every request.
    let read = server.get("secret/data/held", Some(&root));
    assert_eq!(read.status, 200);
    let log = std::fs::read_to_string(server.audit_log()).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let id = &read.body["request_id"];
    let of_read: Vec<&serde_json::Value> =
        lines.iter().filter(|l| &l["request_id"] == id).collect();
    assert_eq!(of_read.len(), 2, "{log}");
    assert_eq!(of_read[0]["type"], "request");
    assert_eq!(of_read[1]["type"], "response");
    assert_eq!(of_read[1]["status"], 200);
    server.terminate();

    // With an audit log that cannot be written, a read releases nothing and spends no use.
    let (mut child, addr, _) = dev_with_audit_log(&data, "/dev/full");
    for token in [&root, &once] {
        let r = raw_call(
            &format!("{addr}/v1/secret/data/held"),
            "GET",
            Some(token),
            None,
        );
        assert_eq!(r.status, 500, "{}", r.raw);
        assert!(!r.raw.contains("held-canary"));
    }
    let _ = child.kill();
    let _ = child.wait();
    let server = Server::dev_on(&data, &[]);
    assert_eq!(server.get("secret/data/held", Some(&once)).status, 200);
    assert_eq!(server.get("secret/data/held", Some(&once)).status, 403);
}

#[test]
fn token_uses_and_lifetimes_hold_under_concurrency() {
    let server = Server::dev();
    let root = server.root().to_owned();
    server.put("secret/data/x", Some(&root), r#"{"data":{"v":"1"}}"#);
    // A one-use token, spent by 16 concurrent requests: exactly one succeeds.
    let once = server.put("auth/token/create", Some(&root), r#"{"num_uses":1}"#);
    let once = once.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = server.url("secret/data/x");
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (url, token) = (url.clone(), once.clone());
            std::thread::spawn(move || raw_call(&url, "GET", Some(&token), None).status)
        })
        .collect();
    let ok = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|s| *s == 200)
        .count();
    assert_eq!(ok, 1, "a one-use token was used {ok} times");

    // Renewing never resurrects a revoked token.
    let t = server.put("auth/token/create", Some(&root), r#"{"ttl":"10m"}"#);
    let t_token = t.body["auth"]["client_token"].as_str().unwrap().to_owned();
    let accessor = t.body["auth"]["accessor"].as_str().unwrap().to_owned();
    let renew_url = server.url("auth/token/renew-self");
    let renewers: Vec<_> = (0..8)
        .map(|_| {
            let (url, token) = (renew_url.clone(), t_token.clone());
            std::thread::spawn(move || {
                raw_call(&url, "PUT", Some(&token), Some(b"{}".to_vec())).status
            })
        })
        .collect();
    server.put(
        "auth/token/revoke-accessor",
        Some(&root),
        &json!({ "accessor": accessor }).to_string(),
    );
    for r in renewers {
        r.join().unwrap();
    }
    assert_eq!(
        server.get("auth/token/lookup-self", Some(&t_token)).status,
        403,
        "revoked token came back"
    );

    // A child of a short-lived parent is capped by the parent, renewals included.
    let doc = "[policies.minter]\nrules = [{ path = \"auth/token/create\", capabilities = [\"update\"] }]\n";
    server.apply_policy(doc);
    let parent = server.put(
        "auth/token/create",
        Some(&root),
        r#"{"ttl":"2m","explicit_max_ttl":"2m","policies":["minter","p"]}"#,
    );
    let parent = parent.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let child = server.put(
        "auth/token/create",
        Some(&parent),
        r#"{"ttl":"1h","policies":["p"]}"#,
    );
    assert_eq!(child.status, 200, "{}", child.raw);
    let child_token = child.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let renewed = server.put(
        "auth/token/renew-self",
        Some(&child_token),
        r#"{"increment":"24h"}"#,
    );
    assert!(
        renewed.body["auth"]["lease_duration"].as_u64().unwrap() <= 120,
        "{}",
        renewed.raw
    );
    let me = server.get("auth/token/lookup-self", Some(&child_token));
    assert!(
        me.body["data"]["explicit_max_ttl"].as_u64().unwrap() <= 120,
        "{}",
        me.raw
    );
    // A use-limited parent cannot mint an unlimited child.
    let limited = server.put(
        "auth/token/create",
        Some(&root),
        r#"{"num_uses":3,"policies":["minter","p"]}"#,
    );
    let limited = limited.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = server.put("auth/token/create", Some(&limited), r#"{"policies":["p"]}"#);
    assert_eq!(r.status, 400, "{}", r.raw);
}
