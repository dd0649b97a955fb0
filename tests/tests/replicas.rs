//! Several vaultd replicas on one PostgreSQL database (a real cluster this test starts): all
//! active, no leader, every correctness-critical step atomic in the database.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use e2e::Server;
use e2e::issuer::TestIssuer;
use e2e::postgres::PgCluster;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const AUD: &str = "https://vault.example.com";

/// A production replica on `url`, with extra config lines.
fn replica(cluster: &PgCluster, url: &str, extra: &str) -> Server {
    Server::production_with(&(cluster.replica_config(url) + extra))
}

fn write(server: &Server, token: &str, path: &str, body: Value) -> e2e::Resp {
    server.put(
        &format!("secret/data/{path}"),
        Some(token),
        &body.to_string(),
    )
}

/// Two unsealed replicas on a fresh database, and the root token.
fn two_replicas(cluster: &PgCluster, extra: &str) -> (Server, Server, String, String) {
    let url = cluster.database();
    let a = replica(cluster, &url, extra);
    let b = replica(cluster, &url, extra);
    assert_eq!(b.get("sys/init", None).body["initialized"], false);
    let (key, root) = a.init();
    // Exactly one replica initialises the shared store; the other sees it at once.
    assert_eq!(b.get("sys/init", None).body["initialized"], true);
    let again = b.put(
        "sys/init",
        None,
        r#"{"secret_shares":1,"secret_threshold":1}"#,
    );
    assert_eq!(again.status, 400, "{}", again.raw);
    a.unseal(&key);
    // Sealed replicas answer 503 until unsealed on their own.
    assert_eq!(b.get("sys/health", None).status, 503);
    b.unseal(&key);
    (a, b, key, root)
}

/// Runs `vaultd server` with `config` (plus a loopback listen line) and expects it to refuse
/// to start with one `vaultd: …` line; returns that line.
fn refused_start(dir: &std::path::Path, config: &str) -> String {
    let path = dir.join("vaultd.toml");
    std::fs::write(&path, format!("listen = \"127.0.0.1:0\"\n{config}")).unwrap();
    let out = std::process::Command::new(e2e::binary("vaultd"))
        .args(["server", "--config"])
        .arg(&path)
        .env_remove("VAULTD_STORAGE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{config}: started");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let last = stderr.lines().last().unwrap_or_default().to_owned();
    assert!(last.starts_with("vaultd: "), "{stderr}");
    last
}

fn wait_for(what: &str, deadline: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while started.elapsed() < deadline {
        if check() {
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what}: not within {deadline:?}");
}

#[test]
fn replicas_share_data_tokens_policies_and_key_rotation() {
    let cluster = PgCluster::start();
    let (a, b, _key, root) = two_replicas(&cluster, "");

    // Write on A, read on B.
    let w = write(
        &a,
        &root,
        "shared/app",
        json!({"data": {"password": "from-a"}}),
    );
    assert_eq!(w.status, 200, "{}", w.raw);
    let r = b.get("secret/data/shared/app", Some(&root));
    assert_eq!(r.body["data"]["data"]["password"], "from-a", "{}", r.raw);

    // A token revoked on A is refused by B on its next request (no token cache).
    let t = a.put(
        "auth/token/create",
        Some(&root),
        r#"{"policies":["default"]}"#,
    );
    let token = t.body["auth"]["client_token"].as_str().unwrap().to_owned();
    assert_eq!(b.get("auth/token/lookup-self", Some(&token)).status, 200);
    let revoked = a.put("auth/token/revoke-self", Some(&token), "{}");
    assert_eq!(revoked.status, 204);
    assert_eq!(b.get("auth/token/lookup-self", Some(&token)).status, 403);

    // A policy applied on A is in force on B within 2 s.
    let reader = b.put(
        "auth/token/create",
        Some(&root),
        r#"{"policies":["shared-read"]}"#,
    );
    let reader = reader.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(b.get("secret/data/shared/app", Some(&reader)).status, 403);
    a.apply_policy_as(
        &root,
        "[policies.shared-read]\nrules = [{ path = \"secret/data/shared/*\", capabilities = [\"read\"] }]\n",
    );
    let took = wait_for("policy in force on B", Duration::from_secs(2), || {
        b.get("secret/data/shared/app", Some(&reader)).status == 200
    });
    eprintln!("policy applied on A was in force on B after {took:?}");

    // A rotation on A; then writes on B (which learns the new key version from the first
    // record it cannot open) and reads on A.
    let rotated = a.put("sys/rotate", Some(&root), "{}");
    assert_eq!(rotated.status, 200, "{}", rotated.raw);
    let w = write(
        &a,
        &root,
        "shared/after-rotation",
        json!({"data": {"v": "a2"}}),
    );
    assert_eq!(w.status, 200);
    let r = b.get("secret/data/shared/after-rotation", Some(&root));
    assert_eq!(r.body["data"]["data"]["v"], "a2", "{}", r.raw);
    let w = write(&b, &root, "shared/from-b", json!({"data": {"v": "b2"}}));
    assert_eq!(w.status, 200, "{}", w.raw);
    let r = a.get("secret/data/shared/from-b", Some(&root));
    assert_eq!(r.body["data"]["data"]["v"], "b2", "{}", r.raw);
    // Rotations on both replicas: each gets its own version, nothing becomes unreadable.
    let ra = a.put("sys/rotate", Some(&root), "{}");
    let rb = b.put("sys/rotate", Some(&root), "{}");
    assert_ne!(ra.body["data"]["term"], rb.body["data"]["term"]);
    for (server, path) in [(&a, "shared/app"), (&b, "shared/from-b")] {
        let r = server.get(&format!("secret/data/{path}"), Some(&root));
        assert_eq!(r.status, 200, "{}", r.raw);
    }
    let w = write(&a, &root, "shared/final", json!({"data": {"v": "x"}}));
    assert_eq!(w.status, 200);
    assert_eq!(b.get("secret/data/shared/final", Some(&root)).status, 200);

    // Sealing one replica does not seal the other.
    assert_eq!(a.put("sys/seal", Some(&root), "{}").status, 204);
    assert_eq!(a.get("sys/health", None).status, 503);
    assert_eq!(b.get("sys/health", None).status, 200);
    assert_eq!(b.get("secret/data/shared/app", Some(&root)).status, 200);
}

#[test]
fn concurrent_cas_logins_and_use_counts_across_replicas_land_once() {
    let cluster = PgCluster::start();
    let issuer = TestIssuer::start();
    // Production replicas refuse plain-HTTP issuers: give them the issuer's keys as a file.
    let jwks_file = cluster.dir().with_file_name("jwks.json");
    issuer.write_jwks_file(&jwks_file);
    let (a, b, _key, root) = two_replicas(
        &cluster,
        "[limits]\nlogin_rate_per_second = 1000\nlogin_burst = 1000\n",
    );
    a.apply_policy_as(&root, &format!(
        "[issuers.ci]\nissuer = \"{}\"\njwks_file = \"{}\"\nalgorithms = [\"RS256\"]\n\
         [roles.deploy]\nissuer = \"ci\"\naudiences = [\"{AUD}\"]\nclaims = {{ repository_id = \"74\" }}\npolicies = [\"cas-read\"]\n\
         [policies.cas-read]\nrules = [{{ path = \"secret/data/cas/*\", capabilities = [\"read\"] }}]\n",
        issuer.url,
        jwks_file.display()
    ));

    // Concurrent cas writes split over both replicas: exactly one wins per version.
    let created = write(&a, &root, "cas/x", json!({"data": {"n": 0}}));
    assert_eq!(created.status, 200);
    for round in 1..=5u64 {
        let winners: Vec<u16> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let server = if i % 2 == 0 { &a } else { &b };
                    let root = &root;
                    scope.spawn(move || {
                        write(
                            server,
                            root,
                            "cas/x",
                            json!({"options": {"cas": round}, "data": {"writer": i}}),
                        )
                        .status
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            winners.iter().filter(|s| **s == 200).count(),
            1,
            "round {round}: {winners:?}"
        );
        assert!(
            winners.iter().all(|s| *s == 200 || *s == 400),
            "{winners:?}"
        );
    }
    let meta = b.get("secret/metadata/cas/x", Some(&root));
    assert_eq!(meta.body["data"]["current_version"], 6, "{}", meta.raw);

    // One JWT sent to A and B at once logs in exactly once.
    for _ in 0..5 {
        let jwt = issuer.sign("rsa1", &issuer.github_claims(AUD, "acme/api", "74"));
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            let handles: Vec<_> = [&a, &b, &a, &b]
                .into_iter()
                .map(|server| {
                    let body = json!({"role": "deploy", "jwt": jwt}).to_string();
                    scope.spawn(move || server.put("auth/jwt/login", None, &body).status)
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "{statuses:?}"
        );
    }

    // A use-limited token spent through both replicas never exceeds its uses.
    let limited = a.put(
        "auth/token/create",
        Some(&root),
        r#"{"num_uses":10,"policies":["cas-read"]}"#,
    );
    let limited = limited.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let successes: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let server = if i % 2 == 0 { &a } else { &b };
                let limited = &limited;
                scope.spawn(move || {
                    (0..5)
                        .filter(|_| server.get("secret/data/cas/x", Some(limited)).status == 200)
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(successes, 10, "a 10-use token read {successes} times");
}

#[test]
fn a_database_outage_fails_closed_and_service_returns_without_restart() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let tmp = tempfile::tempdir().unwrap();
    let key_file = tmp.path().join("unseal-key");
    let a = replica(&cluster, &url, "");
    let (key, root) = a.init();
    a.unseal(&key);
    e2e::postgres::write_private(&key_file, key.as_bytes());
    assert_eq!(
        write(&a, &root, "outage/before", json!({"data": {"v": "1"}})).status,
        200
    );

    cluster.stop_server();
    let started = Instant::now();
    let r = a.get("secret/data/outage/before", Some(&root));
    assert_eq!(r.status, 503, "{}", r.raw);
    assert_eq!(r.errors(), vec!["storage backend unavailable"]);
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
    assert_ne!(a.get("sys/health", None).status, 200);
    let w = write(&a, &root, "outage/during", json!({"data": {"v": "2"}}));
    assert_eq!(w.status, 503, "{}", w.raw);

    // A replica started while the database is down: unhealthy, then unsealed by its key
    // file and healthy once the database is back.
    let late = replica(
        &cluster,
        &url,
        &format!("unseal_key_file = \"{}\"\n", key_file.display()),
    );
    assert_ne!(late.get("sys/health", None).status, 200);

    cluster.start_server();
    wait_for("A serves again", Duration::from_secs(20), || {
        a.get("secret/data/outage/before", Some(&root)).status == 200
    });
    assert_eq!(a.get("secret/data/outage/during", Some(&root)).status, 404);
    wait_for(
        "the late replica is healthy",
        Duration::from_secs(20),
        || late.get("sys/health", None).status == 200,
    );
    let r = late.get("secret/data/outage/before", Some(&root));
    assert_eq!(r.body["data"]["data"]["v"], "1", "{}", r.raw);
}

#[test]
fn kill_9_of_one_replica_loses_no_acknowledged_write() {
    let cluster = PgCluster::start();
    let (mut a, b, _key, root) = two_replicas(&cluster, "");
    let acked: Vec<String> = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut acked = Vec::new();
            for i in 0..10_000 {
                let path = format!("kill/k{i}");
                let body = json!({"data": {"i": i}}).to_string().into_bytes();
                let url = a.url(&format!("secret/data/{path}"));
                match e2e::try_call(&url, "PUT", Some(&root), Some(body)) {
                    Ok(r) if r.status == 200 => acked.push(path),
                    _ => break,
                }
            }
            acked
        });
        std::thread::sleep(Duration::from_millis(700));
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &a.pid().to_string()])
            .status();
        writer.join().unwrap()
    });
    a.kill9();
    assert!(
        acked.len() > 5,
        "only {} writes before the kill",
        acked.len()
    );
    for path in &acked {
        let r = b.get(&format!("secret/data/{path}"), Some(&root));
        assert_eq!(r.status, 200, "acknowledged {path} lost: {}", r.raw);
    }
    eprintln!("{} acknowledged writes, all there through B", acked.len());
}

#[test]
fn bad_storage_settings_give_one_clear_line_at_start() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let tmp = tempfile::tempdir().unwrap();
    let run = |config: &str| refused_start(tmp.path(), config);
    let password_line = cluster.replica_config(&url);
    let password_line = password_line.lines().nth(1).unwrap();
    let e = run(&format!("storage_url = \"not a url\"\n{password_line}\n"));
    assert!(e.contains("not a valid PostgreSQL URL"), "{e}");
    let e = run("storage_url = \"postgresql://vaultd:hunter2@127.0.0.1/db\"\n");
    assert!(e.contains("must not contain a password"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
    let e = run(&format!("storage_url = \"{url}\"\n"));
    assert!(e.contains("password"), "no password: {e}");
    let wrong = tmp.path().join("wrong-password");
    e2e::postgres::write_private(&wrong, b"not-the-password");
    let e = run(&format!(
        "storage_url = \"{url}\"\nstorage_password_file = \"{}\"\n",
        wrong.display()
    ));
    assert!(e.contains("password authentication failed"), "{e}");
    assert!(!e.contains("not-the-password"), "{e}");
    // A database the role may not create tables in (PostgreSQL 15: not its owner).
    cluster.psql("postgres", "CREATE DATABASE not_owned");
    let not_owned = url.replace(
        url.rsplit('/').next().unwrap().split('?').next().unwrap(),
        "not_owned",
    );
    let e = run(&format!("storage_url = \"{not_owned}\"\n{password_line}\n"));
    assert!(e.contains("lacks a privilege"), "{e}");
    assert!(e.contains("ownership of the database"), "{e}");
    // A schema written by a newer vaultd.
    let db = e2e::postgres::database_of(&url);
    let ok = replica(&cluster, &url, "");
    assert_eq!(ok.get("sys/init", None).status, 200);
    drop(ok);
    cluster.psql(&db, "INSERT INTO vaultd_schema (version) VALUES (99)");
    let e = run(&format!("storage_url = \"{url}\"\n{password_line}\n"));
    assert!(e.contains("newer vaultd"), "{e}");
}

#[test]
fn operator_migrate_moves_a_store_to_postgres_and_back_without_re_entering_a_secret() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let mut server = Server::dev_sled();
    let root = server.root().to_owned();
    let w = write(
        &server,
        &root,
        "moved/app",
        json!({"data": {"password": "moved-value"}}),
    );
    assert_eq!(w.status, 200, "{}", w.raw);
    let data_dir = server.data_dir.clone();
    let key = std::fs::read_to_string(data_dir.join("dev-unseal-key")).unwrap();
    server.terminate();

    let migrate = |args: &[&str]| {
        let out = std::process::Command::new(e2e::binary("vaultd"))
            .args(["operator", "migrate"])
            .args(args)
            .env("VAULTD_STORAGE_PASSWORD", e2e::postgres::VAULTD_PASSWORD)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let dir = data_dir.display().to_string();
    let (ok, stdout, stderr) = migrate(&["--from-data-dir", &dir, "--to-storage-url", &url]);
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("copied "), "{stdout}");
    // A second copy into the now non-empty database is refused.
    let (ok, _, stderr) = migrate(&["--from-data-dir", &dir, "--to-storage-url", &url]);
    assert!(!ok);
    assert!(stderr.contains("not empty"), "{stderr}");

    // A replica on the database opens with the same unseal key and root token.
    let replica = replica(&cluster, &url, "");
    replica.unseal(key.trim());
    let r = replica.get("secret/data/moved/app", Some(&root));
    assert_eq!(
        r.body["data"]["data"]["password"], "moved-value",
        "{}",
        r.raw
    );
    drop(replica);

    // And back to a new data dir.
    let back = tempfile::tempdir().unwrap();
    let back_dir = back.path().join("data");
    let back_dir_text = back_dir.display().to_string();
    let (ok, _, stderr) = migrate(&["--from-storage-url", &url, "--to-data-dir", &back_dir_text]);
    assert!(ok, "{stderr}");
    let server = Server::production_with_env("", &[("VAULTD_DATA_DIR", &back_dir_text)]);
    server.unseal(key.trim());
    let r = server.get("secret/data/moved/app", Some(&root));
    assert_eq!(
        r.body["data"]["data"]["password"], "moved-value",
        "{}",
        r.raw
    );
}

#[test]
fn tls_to_the_database_verifies_the_certificate_and_host_name() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let tmp = tempfile::tempdir().unwrap();
    // A private CA and a server certificate for "localhost".
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
    cluster.enable_tls(&server_cert.pem(), &server_key.serialize_pem());
    let ca_file = tmp.path().join("db-ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let tls_url = url
        .replace("127.0.0.1", "localhost")
        .replace("sslmode=disable", "sslmode=verify-full");

    // With the CA: the replica works over TLS.
    let ok = replica(
        &cluster,
        &tls_url,
        &format!("storage_ca_file = \"{}\"\n", ca_file.display()),
    );
    let (key, root) = ok.init();
    ok.unseal(&key);
    assert_eq!(
        write(&ok, &root, "tls/x", json!({"data": {"v": "over-tls"}})).status,
        200
    );
    let sessions = cluster.psql(
        "postgres",
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
         WHERE ssl AND usename = 'vaultd'",
    );
    assert_ne!(sessions, "0", "vaultd's sessions are not encrypted");
    drop(ok);

    // Without it (web PKI roots) or for the wrong host name: refused at start, one line.
    let run = |config: String| {
        refused_start(
            tmp.path(),
            &format!("{}{config}", cluster.replica_config(&tls_url)),
        )
    };
    let e = run(String::new());
    assert!(e.contains("PostgreSQL TLS"), "{e}");
    let other_ca_key = rcgen::KeyPair::generate().unwrap();
    let mut other_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    other_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let other_ca = other_params.self_signed(&other_ca_key).unwrap();
    let other_file = tmp.path().join("other-ca.pem");
    std::fs::write(&other_file, other_ca.pem()).unwrap();
    let e = run(format!("storage_ca_file = \"{}\"\n", other_file.display()));
    assert!(e.contains("PostgreSQL TLS"), "{e}");
}

#[test]
fn a_database_without_tls_is_refused_when_the_url_asks_for_it() {
    // No TLS on the server: a URL that asks for verify-full (or says nothing) must not fall
    // back to plain text, where the password would travel in the clear.
    let cluster = PgCluster::start();
    let url = cluster.database();
    let tmp = tempfile::tempdir().unwrap();
    for tls_url in [
        url.replace("sslmode=disable", "sslmode=verify-full"),
        url.replace("?sslmode=disable", ""),
    ] {
        let path = tmp.path().join("vaultd.toml");
        std::fs::write(
            &path,
            format!(
                "listen = \"127.0.0.1:0\"\n{}",
                cluster.replica_config(&tls_url)
            ),
        )
        .unwrap();
        let mut child = std::process::Command::new(e2e::binary("vaultd"))
            .args(["server", "--config"])
            .arg(&path)
            .env_remove("VAULTD_STORAGE_URL")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // It must exit at once with an error; a vaultd still running has started in plain text.
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        let status = status.unwrap_or_else(|| panic!("{tls_url}: started without TLS"));
        assert!(!status.success(), "{tls_url}: {stderr}");
        assert!(stderr.contains("TLS"), "{tls_url}: {stderr}");
    }
    let sessions = cluster.psql(
        "postgres",
        "SELECT count(*) FROM pg_stat_activity WHERE usename = 'vaultd'",
    );
    assert_eq!(sessions, "0", "a plain-text session was opened");
}
