//! The store end to end: init, unseal, restart, wrong keys, encryption at rest, record
//! binding and durability under SIGKILL, against real `vaultd server` processes.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use e2e::{Server, all_file_bytes, contains};
use serde_json::json;

#[test]
fn init_unseal_restart_keeps_data_and_comes_back_sealed() {
    let mut server = Server::production();
    assert_eq!(server.get("sys/health", None).status, 501);
    assert_eq!(server.get("sys/init", None).body["initialized"], false);
    let (key, root) = server.init();

    // Sealed after init, as Vault: every non-sys path answers 503.
    assert_eq!(server.get("sys/health", None).status, 503);
    let sealed = server.get("secret/data/app", Some(&root));
    assert_eq!(sealed.status, 503);
    assert_eq!(sealed.errors(), vec!["Vault is sealed"]);

    server.unseal(&key);
    assert_eq!(server.get("sys/health", None).status, 200);
    let w = server.put(
        "secret/data/app",
        Some(&root),
        r#"{"data":{"password":"correct-horse-battery"}}"#,
    );
    assert_eq!(w.status, 200, "{}", w.raw);

    server.terminate();
    server.restart();
    let status = server.get("sys/seal-status", None);
    assert_eq!(status.body["sealed"], true);
    assert_eq!(status.body["initialized"], true);
    assert_eq!(server.get("secret/data/app", Some(&root)).status, 503);

    // Hex form of the same key works too.
    let raw = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(&key)
            .unwrap()
    };
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    server.unseal(&hex);
    let r = server.get("secret/data/app", Some(&root));
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.body["data"]["data"]["password"], "correct-horse-battery");

    // Sealing again drops access.
    assert_eq!(server.put("sys/seal", Some(&root), "").status, 204);
    assert_eq!(server.get("secret/data/app", Some(&root)).status, 503);
}

#[test]
fn wrong_unseal_key_init_twice_and_bad_unseal_bodies_are_refused() {
    let server = Server::production();
    let r = server.put("sys/unseal", None, r#"{"key":"AAAA"}"#);
    assert_eq!(r.status, 400, "unseal before init: {}", r.raw);

    let (key, root) = server.init();
    let again = server.put(
        "sys/init",
        None,
        r#"{"secret_shares":1,"secret_threshold":1}"#,
    );
    assert_eq!(again.status, 400);
    assert_eq!(again.errors(), vec!["Vault is already initialized"]);

    let wrong = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode([7u8; 32])
    };
    let r = server.put("sys/unseal", None, &json!({ "key": wrong }).to_string());
    assert_eq!(r.status, 400);
    assert!(r.errors()[0].contains("incorrect"), "{}", r.raw);
    assert_eq!(server.get("sys/seal-status", None).body["sealed"], true);

    for bad in [
        r#"{"key":"not base64!"}"#,
        r#"{"key":12}"#,
        r#"{"kye":"x"}"#,
        "{",
        r#"{}"#,
        r#"{"passphrase":"no passphrase slot exists"}"#,
    ] {
        let r = server.put("sys/unseal", None, bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.raw);
        assert_eq!(server.get("sys/seal-status", None).body["sealed"], true);
    }

    server.unseal(&key);
    // Unseal when unsealed is harmless.
    server.unseal(&key);
    assert_eq!(
        server.get("auth/token/lookup-self", Some(&root)).status,
        200
    );
}

#[test]
fn passphrase_slot_unseals_with_argon2id() {
    let mut server = Server::production();
    let r = server.put(
        "sys/init",
        None,
        r#"{"secret_shares":1,"secret_threshold":1,"passphrase":"a long operator passphrase"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    let wrong = server.put(
        "sys/unseal",
        None,
        r#"{"passphrase":"a wrong operator passphrase"}"#,
    );
    assert_eq!(wrong.status, 400);
    let ok = server.put(
        "sys/unseal",
        None,
        r#"{"passphrase":"a long operator passphrase"}"#,
    );
    assert_eq!(ok.status, 200, "{}", ok.raw);
    assert_eq!(ok.body["sealed"], false);
    server.terminate();
    server.restart();
    let ok = server.put(
        "sys/unseal",
        None,
        r#"{"passphrase":"a long operator passphrase"}"#,
    );
    assert_eq!(ok.body["sealed"], false);
}

#[test]
fn no_secret_value_or_token_on_disk_in_clear() {
    let mut server = Server::dev_sled();
    let root = server.root().to_owned();
    let secret = "plaintext-canary-7f3a9c";
    let r = server.put(
        "secret/data/canary",
        Some(&root),
        &json!({"data": {"value": secret, "multi": format!("{secret}\nline2")}}).to_string(),
    );
    assert_eq!(r.status, 200);
    let created = server.put("auth/token/create", Some(&root), r#"{"policies":["x"]}"#);
    let child_token = created.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    server.terminate();
    let db_dir = server.data_dir.join("db");
    let files = all_file_bytes(&db_dir);
    assert!(!files.is_empty());
    for (path, bytes) in &files {
        assert!(
            !contains(bytes, secret.as_bytes()),
            "{} holds the secret",
            path.display()
        );
        assert!(
            !contains(bytes, child_token.as_bytes()),
            "{} holds a token",
            path.display()
        );
        assert!(
            !contains(bytes, root.as_bytes()),
            "{} holds the root token",
            path.display()
        );
    }
    // And the data is really there: restart and read it back.
    server.restart();
    let r = server.get("secret/data/canary", Some(&root));
    assert_eq!(r.body["data"]["data"]["value"], secret);
}

#[test]
fn data_dir_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::dev();
    let mode = std::fs::metadata(&server.data_dir)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    for (path, _) in all_file_bytes(&server.data_dir) {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{} is readable by others", path.display());
    }
}

#[test]
fn core_dumps_are_disabled() {
    let server = Server::dev();
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], &["0", "0"], "{core}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    assert!(!status.is_empty());
}

#[test]
fn group_readable_data_dir_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new(e2e::binary("vaultd"))
        .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("chmod 700"), "{stderr}");
}

#[test]
fn ciphertext_moved_to_another_record_fails_to_open() {
    use vaultd::store::{Backend, Tree, Write};
    let mut server = Server::dev_sled();
    let root = server.root().to_owned();
    for (path, value) in [("a", "value-of-a"), ("b", "value-of-b")] {
        let r = server.put(
            &format!("secret/data/{path}"),
            Some(&root),
            &json!({"data": {"v": value}}).to_string(),
        );
        assert_eq!(r.status, 200);
    }
    server.terminate();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let backend =
            vaultd::store::sled_backend::SledBackend::open(&server.data_dir.join("db")).unwrap();
        let version_key =
            |p: &str| [b"v\0".as_slice(), p.as_bytes(), b"\0", &1u64.to_be_bytes()].concat();
        let a = backend
            .get(Tree::Kv, &version_key("a"))
            .await
            .unwrap()
            .unwrap();
        backend
            .apply(vec![Write {
                tree: Tree::Kv,
                key: version_key("b"),
                value: Some(a),
            }])
            .await
            .unwrap();
        backend.sync().await.unwrap();
    });
    server.restart();
    let a = server.get("secret/data/a", Some(&root));
    assert_eq!(a.body["data"]["data"]["v"], "value-of-a");
    let b = server.get("secret/data/b", Some(&root));
    assert_eq!(b.status, 500, "swapped ciphertext must not open: {}", b.raw);
    assert_eq!(b.errors(), vec!["internal error"]);
    assert!(!b.raw.contains("value-of-a"));
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let mut server = Server::dev();
    let root = server.root().to_owned();
    let mut tokens = Vec::new();
    for round in 0..3 {
        for i in 0..20 {
            let r = server.put(
                &format!("secret/data/durable/{round}-{i}"),
                Some(&root),
                &json!({"data": {"n": i, "round": round}}).to_string(),
            );
            assert_eq!(r.status, 200);
        }
        let t = server.put("auth/token/create", Some(&root), r#"{"ttl":"1h"}"#);
        tokens.push(t.body["auth"]["client_token"].as_str().unwrap().to_owned());
        // SIGKILL straight after the last acknowledgement.
        server.kill9();
        server.restart();
        for r in 0..=round {
            for i in 0..20 {
                let got = server.get(&format!("secret/data/durable/{r}-{i}"), Some(&root));
                assert_eq!(got.status, 200, "lost write {r}-{i}: {}", got.raw);
                assert_eq!(got.body["data"]["data"]["n"], i);
            }
        }
        for t in &tokens {
            assert_eq!(server.get("auth/token/lookup-self", Some(t)).status, 200);
        }
    }
}

#[test]
fn rotation_keeps_old_records_readable() {
    let mut server = Server::dev();
    let root = server.root().to_owned();
    server.put("secret/data/before", Some(&root), r#"{"data":{"v":"old"}}"#);
    let r = server.put("sys/rotate", Some(&root), "");
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.body["data"]["term"], 2);
    server.put("secret/data/after", Some(&root), r#"{"data":{"v":"new"}}"#);
    server.terminate();
    server.restart();
    assert_eq!(
        server.get("secret/data/before", Some(&root)).body["data"]["data"]["v"],
        "old"
    );
    assert_eq!(
        server.get("secret/data/after", Some(&root)).body["data"]["data"]["v"],
        "new"
    );
    assert_eq!(
        server.get("sys/key-status", Some(&root)).body["data"]["term"],
        2
    );
}
