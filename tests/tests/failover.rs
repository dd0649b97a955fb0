//! A primary failover under write load: vaultd replicas on a multi-host URL with
//! `target_session_attrs=read-write` follow a synchronous standby promoted to primary, and no
//! acknowledged write is lost.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use e2e::Server;
use e2e::postgres::PgCluster;
use serde_json::json;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[test]
fn replicas_follow_a_promoted_synchronous_standby_and_lose_no_acknowledged_write() {
    let primary = PgCluster::start();
    let single = primary.database();
    let db = e2e::postgres::database_of(&single);
    let standby = primary.start_synchronous_standby();
    let url = format!(
        "postgresql://vaultd@127.0.0.1:{},127.0.0.1:{}/{db}?sslmode=disable&target_session_attrs=read-write",
        primary.port, standby.port
    );
    let a = Server::production_with(&primary.replica_config(&url));
    let b = Server::production_with(&primary.replica_config(&url));
    let init = a.put(
        "sys/init",
        None,
        r#"{"secret_shares":1,"secret_threshold":1}"#,
    );
    assert_eq!(init.status, 200, "{}", init.raw);
    let key = init.body["keys_base64"][0].as_str().unwrap().to_owned();
    let root = init.body["root_token"].as_str().unwrap().to_owned();
    for server in [&a, &b] {
        let r = server.put("sys/unseal", None, &json!({ "key": key }).to_string());
        assert_eq!(r.body["sealed"], false, "{}", r.raw);
    }

    let acked = Mutex::new(Vec::new());
    let failed = Mutex::new(0usize);
    let stop = AtomicBool::new(false);
    let outage = std::thread::scope(|scope| {
        for (w, server) in [(0, &a), (1, &b)] {
            let (acked, failed, stop, root) = (&acked, &failed, &stop, &root);
            scope.spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let path = format!("failover/w{w}-{i}");
                    let url = server.url(&format!("secret/data/{path}"));
                    let body = json!({"data": {"i": i}}).to_string().into_bytes();
                    match e2e::try_call(&url, "PUT", Some(root), Some(body)) {
                        Ok(r) if r.status == 200 => acked.lock().unwrap().push(path),
                        _ => *failed.lock().unwrap() += 1,
                    }
                    i += 1;
                }
            });
        }
        std::thread::sleep(Duration::from_millis(800));
        let before = acked.lock().unwrap().len();
        assert!(before > 10, "only {before} writes before the failover");
        // The primary dies (no checkpoint, like a crash); the standby is promoted.
        let started = Instant::now();
        primary.stop_server();
        standby.promote();
        // Writes succeed again through both replicas.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let n = acked.lock().unwrap().len();
            std::thread::sleep(Duration::from_millis(300));
            if acked.lock().unwrap().len() > n + 10 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "writes did not resume after the failover"
            );
        }
        let outage = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        outage
    });
    let acked = acked.into_inner().unwrap();
    let failed = failed.into_inner().unwrap();
    for path in &acked {
        let r = b.get(&format!("secret/data/{path}"), Some(&root));
        assert_eq!(
            r.status, 200,
            "acknowledged {path} lost in the failover: {}",
            r.raw
        );
    }
    eprintln!(
        "failover: {} acknowledged writes all on the new primary; {failed} requests failed \
         during the failover; writes resumed within {outage:?}",
        acked.len()
    );
}
