//! Stock Vault clients work unchanged against vaultd. `scripts/test.sh` installs hvac, and the
//! test fails when Python or hvac is missing: a compatibility test that passes without running
//! the client would prove nothing. Without Python, skip it explicitly with
//! `cargo test -- --skip hvac`, which the test summary then shows as filtered out.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use e2e::Server;
use std::process::Command;

#[test]
fn hvac_reads_and_writes_kv_v2_with_a_token() {
    let server = Server::dev();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/hvac_kv.py");
    let out = Command::new("python3")
        .arg(script)
        .env("VAULT_ADDR", &server.addr)
        .env("VAULT_TOKEN", server.root())
        .output()
        .expect("python3 is needed for this test (or run with `-- --skip hvac`)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "hvac failed (install it with `pip install hvac`):\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"));
}
