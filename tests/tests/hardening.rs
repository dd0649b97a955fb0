//! Operational hardening against real `vaultd server` processes: TLS with the CLI trusting a
//! given CA, plain HTTP refused off loopback, slow clients dropped, the connection cap, and a
//! graceful exit on SIGTERM.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use e2e::Server;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn tls_with_rustls_and_vaultctl_ca_cert() {
    let tmp = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    let cert_path = tmp.path().join("cert.pem");
    let key_path = tmp.path().join("key.pem");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let server = Server::production_with(&format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert_path.display(),
        key_path.display()
    ));
    assert!(server.addr.starts_with("https://"), "{}", server.addr);

    // Without the CA, the handshake is refused; with it, vaultctl talks to vaultd.
    let mut untrusted = std::process::Command::new(e2e::binary("vaultctl"));
    untrusted
        .args(["status"])
        .env("VAULTCTL_ADDR", &server.addr)
        .env_remove("VAULTCTL_CACERT")
        .env_remove("VAULT_CACERT");
    let out = e2e::run_with_stdin(untrusted, b"");
    assert_eq!(out.status, Some(1), "{out:?}");
    assert!(out.stderr.contains("--ca-cert"), "{}", out.stderr);

    let mut trusted = std::process::Command::new(e2e::binary("vaultctl"));
    trusted
        .args([
            "--ca-cert",
            cert_path.to_str().unwrap(),
            "--format",
            "json",
            "operator",
            "init",
        ])
        .env("VAULTCTL_ADDR", &server.addr);
    let out = e2e::run_with_stdin(trusted, b"");
    assert_eq!(out.status, Some(0), "{out:?}");
    assert!(out.stdout.contains("root_token"));

    // Plain HTTP to the TLS port gets no answer.
    let plain = server.addr.replace("https://", "http://");
    let mut stream = TcpStream::connect(plain.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    assert!(!String::from_utf8_lossy(&buf).contains("\"initialized\""));
}

#[test]
fn plain_http_is_refused_off_loopback_unless_disabled_explicitly() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(e2e::binary("vaultd"))
        .args(["server", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(tmp.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refusing plain HTTP"), "{stderr}");
    let bad_config = tmp.path().join("bad.toml");
    std::fs::write(
        &bad_config,
        "listen = \"127.0.0.1:0\"\ndata_dir = \"/tmp/x\"\nunknown_key = 1\n",
    )
    .unwrap();
    let out = std::process::Command::new(e2e::binary("vaultd"))
        .args(["server", "--config"])
        .arg(&bad_config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown_key"));
}

#[test]
fn slow_clients_are_dropped() {
    let server = Server::production_with("[limits]\nheader_read_timeout = \"1s\"\n");
    let host = server.addr.trim_start_matches("http://").to_owned();
    let mut slow = TcpStream::connect(&host).unwrap();
    slow.write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "slow client kept for {waited:?}"
    );
    assert!(!String::from_utf8_lossy(&buf).contains("\"initialized\""));
    assert_eq!(server.get("sys/health", None).status, 501);
}

#[test]
fn connection_cap_holds_extra_connections_until_one_closes() {
    let server = Server::production_with("[limits]\nmax_connections = 2\n");
    let host = server.addr.trim_start_matches("http://").to_owned();
    let idle_a = TcpStream::connect(&host).unwrap();
    let _idle_b = TcpStream::connect(&host).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let url = server.url("sys/health");
    let third = std::thread::spawn(move || {
        let started = Instant::now();
        let r = e2e::raw_call(&url, "GET", None, None);
        (r.status, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        !third.is_finished(),
        "a third connection was served while two were open"
    );
    drop(idle_a);
    let (status, waited) = third.join().unwrap();
    assert_eq!(status, 501);
    assert!(waited >= Duration::from_millis(700));
}

#[test]
fn sigterm_drains_and_exits_cleanly() {
    let mut server = Server::dev();
    assert_eq!(server.get("sys/health", None).status, 200);
    assert_eq!(server.terminate(), Some(0));
}
