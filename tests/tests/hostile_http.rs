//! Arbitrary bytes as HTTP bodies, paths and headers against a real vaultd: every answer is a
//! clear 4xx (never a 500 or a crash), and the server keeps serving.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use e2e::{Lcg, Server, raw_call};

fn random_bytes(rng: &mut Lcg, max: usize) -> Vec<u8> {
    let n = (rng.next_u64() as usize) % (max + 1);
    let alphabet =
        b"{}[]\":,0123456789eE.-+ \n\ttruefalsnul\\u00ffabcdata options cas versions jwt role";
    (0..n)
        .map(|_| {
            if rng.next_u64().is_multiple_of(4) {
                (rng.next_u64() % 256) as u8
            } else {
                alphabet[(rng.next_u64() as usize) % alphabet.len()]
            }
        })
        .collect()
}

#[test]
fn random_bodies_get_clear_errors_and_change_nothing() {
    let server = Server::dev();
    let root = server.root().to_owned();
    server.put(
        "secret/data/keep",
        Some(&root),
        r#"{"data":{"v":"original"}}"#,
    );
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("seed {seed}");
    let mut rng = Lcg(seed);
    let endpoints = [
        ("PUT", "secret/data/keep"),
        ("PUT", "secret/metadata/keep"),
        ("PUT", "secret/delete/keep"),
        ("PUT", "secret/destroy/keep"),
        ("PUT", "auth/token/create"),
        ("PUT", "auth/token/lookup"),
        ("PUT", "auth/token/renew-self"),
        ("PUT", "auth/token/revoke-accessor"),
        ("PUT", "auth/jwt/login"),
        ("PUT", "sys/unseal"),
        ("PUT", "sys/init"),
        ("PUT", "sys/vaultctl/policy"),
        ("PUT", "sys/vaultctl/policy-test"),
        ("PUT", "sys/dev/oidc/token"),
    ];
    for round in 0..40 {
        for (method, path) in endpoints {
            let body = random_bytes(&mut rng, 300);
            let r = raw_call(&server.url(path), method, Some(&root), Some(body));
            assert!(
                (400..500).contains(&r.status) || r.status == 200 || r.status == 204,
                "round {round} {method} {path} (seed {seed}): {} {}",
                r.status,
                r.raw
            );
            assert_eq!(
                r.content_type.as_deref().unwrap_or("application/json"),
                "application/json"
            );
        }
        // Random paths, percent-encoded so any byte reaches the server.
        let p: String = random_bytes(&mut rng, 40)
            .iter()
            .map(|b| match b {
                b'a'..=b'z' | b'0'..=b'9' | b'/' | b'.' => (*b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let r = raw_call(
            &format!("{}/v1/secret/data/{p}", server.addr),
            "GET",
            Some(&root),
            None,
        );
        assert!(
            r.status < 500,
            "GET secret/data/{p}: {} {}",
            r.status,
            r.raw
        );
    }
    let r = server.get("secret/data/keep", Some(&root));
    assert_eq!(r.body["data"]["data"]["v"], "original");
    assert_eq!(server.get("sys/health", None).status, 200);
}
