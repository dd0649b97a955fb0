//! Reliability under crashes and load: SIGKILL at random points during a stream of
//! acknowledged writes and token issuances, and 64 concurrent clients mixing logins, reads and
//! writes. Bounded in time; everything runs against real vaultd processes on loopback.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use e2e::issuer::TestIssuer;
use e2e::{Lcg, Server};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn seed() -> u64 {
    std::env::var("VAULTCTL_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

#[test]
fn sigkill_at_random_points_loses_no_acknowledged_write() {
    let seed = seed();
    eprintln!("seed {seed} (set VAULTCTL_TEST_SEED to replay)");
    let mut rng = Lcg(seed);
    let mut server = Server::dev();
    let root = server.root().to_owned();
    let acknowledged: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let tokens: Arc<Mutex<Vec<String>>> = Arc::default();
    for round in 0..4 {
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for worker in 0..4 {
            let url = server.url("");
            let (root, acknowledged, tokens, stop) = (
                root.clone(),
                acknowledged.clone(),
                tokens.clone(),
                stop.clone(),
            );
            workers.push(std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let path = format!("secret/data/crash/{round}-{worker}-{i}");
                    let body = json!({"data": {"n": i, "pad": "p".repeat((i % 7) as usize * 100)}})
                        .to_string();
                    let r = std::panic::catch_unwind(|| {
                        e2e::raw_call(
                            &format!("{url}{path}"),
                            "PUT",
                            Some(&root),
                            Some(body.into_bytes()),
                        )
                    });
                    match r {
                        Ok(resp) if resp.status == 200 => {
                            acknowledged.lock().unwrap().push((path, i))
                        }
                        _ => break, // the server is gone
                    }
                    if i.is_multiple_of(5) {
                        let r = std::panic::catch_unwind(|| {
                            e2e::raw_call(
                                &format!("{url}auth/token/create"),
                                "POST",
                                Some(&root),
                                Some(b"{}".to_vec()),
                            )
                        });
                        match r {
                            Ok(resp) if resp.status == 200 => tokens.lock().unwrap().push(
                                resp.body["auth"]["client_token"]
                                    .as_str()
                                    .unwrap()
                                    .to_owned(),
                            ),
                            _ => break,
                        }
                    }
                    i += 1;
                }
            }));
        }
        // Kill at a random point once writes are flowing (a fresh server on PostgreSQL first
        // opens its connections).
        let before = acknowledged.lock().unwrap().len();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while acknowledged.lock().unwrap().len() == before {
            assert!(
                std::time::Instant::now() < deadline,
                "no write acknowledged"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(100 + rng.next_u64() % 500));
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().unwrap();
        }
        server.restart();
        let acked = acknowledged.lock().unwrap().clone();
        assert!(!acked.is_empty());
        for (path, n) in &acked {
            let r = server.get(path, Some(&root));
            assert_eq!(
                r.status, 200,
                "round {round}: lost acknowledged write {path} (seed {seed}): {}",
                r.raw
            );
            assert_eq!(r.body["data"]["data"]["n"], *n);
        }
        for t in tokens.lock().unwrap().iter() {
            assert_eq!(
                server.get("auth/token/lookup-self", Some(t)).status,
                200,
                "lost a token (seed {seed})"
            );
        }
        // No torn record: everything listed opens.
        let listed = server.call("LIST", "secret/metadata/crash", Some(&root), None);
        for key in listed.body["data"]["keys"].as_array().unwrap() {
            let r = server.get(
                &format!("secret/data/crash/{}", key.as_str().unwrap()),
                Some(&root),
            );
            assert!(
                r.status == 200 || r.status == 404,
                "torn record {key}: {} (seed {seed})",
                r.raw
            );
        }
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn sixty_four_clients_mixing_logins_reads_and_writes() {
    let issuer = Arc::new(TestIssuer::start());
    let server = Server::dev_with_env(&[("VAULTD_LOGIN_RATE_PER_SECOND", "0")]);
    let root = server.root().to_owned();
    let doc = format!(
        "[issuers.ci]\nissuer = \"{}\"\n[roles.load]\nissuer = \"ci\"\naudiences = [\"load\"]\nclaims = {{ repository_id = \"74\" }}\npolicies = [\"rw\"]\n[policies.rw]\nrules = [{{ path = \"secret/data/load/*\", capabilities = [\"create\", \"read\", \"update\"] }}]\n",
        issuer.url
    );
    server.apply_policy(&doc);
    let rss_before = rss_kib(server.pid());
    let deadline = Instant::now() + Duration::from_secs(4);
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let last_written: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let counts = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut clients = Vec::new();
    for c in 0..64 {
        let (issuer, url, errors, last_written, counts) = (
            issuer.clone(),
            server.url(""),
            errors.clone(),
            last_written.clone(),
            counts.clone(),
        );
        clients.push(std::thread::spawn(move || {
            let mut n = 0u64;
            let mut token = String::new();
            while Instant::now() < deadline {
                if n.is_multiple_of(10) {
                    let jwt = issuer.sign("rsa1", &issuer.github_claims("load", "acme/api", "74"));
                    let r = e2e::raw_call(
                        &format!("{url}auth/jwt/login"),
                        "PUT",
                        None,
                        Some(json!({"role": "load", "jwt": jwt}).to_string().into_bytes()),
                    );
                    if r.status != 200 {
                        errors
                            .lock()
                            .unwrap()
                            .push(format!("login {}: {}", r.status, r.raw));
                        return;
                    }
                    token = r.body["auth"]["client_token"].as_str().unwrap().to_owned();
                }
                let path = format!("secret/data/load/client-{c}");
                let w = e2e::raw_call(
                    &format!("{url}{path}"),
                    "PUT",
                    Some(&token),
                    Some(json!({"data": {"n": n}}).to_string().into_bytes()),
                );
                if w.status != 200 {
                    errors
                        .lock()
                        .unwrap()
                        .push(format!("write {}: {}", w.status, w.raw));
                    return;
                }
                let r = e2e::raw_call(&format!("{url}{path}"), "GET", Some(&token), None);
                if r.status != 200 || r.body["data"]["data"]["n"] != n {
                    errors
                        .lock()
                        .unwrap()
                        .push(format!("read {}: {}", r.status, r.raw));
                    return;
                }
                counts.fetch_add(3, Ordering::Relaxed);
                n += 1;
            }
            last_written
                .lock()
                .unwrap()
                .push((format!("secret/data/load/client-{c}"), n - 1));
        }));
    }
    for c in clients {
        c.join().unwrap();
    }
    let errors = errors.lock().unwrap();
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    for (path, n) in last_written.lock().unwrap().iter() {
        assert_eq!(
            server.get(path, Some(&root)).body["data"]["data"]["n"],
            *n,
            "lost write at {path}"
        );
    }
    let rss_after = rss_kib(server.pid());
    eprintln!(
        "{} requests in 4 s; RSS {rss_before} KiB -> {rss_after} KiB",
        counts.load(Ordering::Relaxed)
    );
    assert!(rss_after < 512 * 1024, "vaultd RSS grew to {rss_after} KiB");
}

#[test]
fn login_rate_limit_answers_429() {
    let server = Server::dev_with_env(&[("VAULTD_LOGIN_RATE_PER_SECOND", "1")]);
    let mut limited = 0;
    for _ in 0..150 {
        let r = server.put("auth/jwt/login", None, r#"{"role":"dev","jwt":"x.y.z"}"#);
        if r.status == 429 {
            limited += 1;
            assert_eq!(r.errors(), vec!["rate limit exceeded"]);
        }
    }
    assert!(limited >= 40, "only {limited} of 150 rate-limited");
    // Other endpoints are not limited.
    assert_eq!(server.get("sys/health", None).status, 200);
}
