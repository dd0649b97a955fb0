//! Stock Vault clients work unchanged against vaultd. `scripts/test.sh` installs hvac; set
//! `VAULTCTL_TEST_SKIP_HVAC=1` to run without Python (the test then says it was skipped).

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use e2e::Server;
use std::process::Command;

#[test]
fn hvac_reads_and_writes_kv_v2_with_a_token() {
    if std::env::var_os("VAULTCTL_TEST_SKIP_HVAC").is_some() {
        eprintln!("skipped: VAULTCTL_TEST_SKIP_HVAC is set");
        return;
    }
    let server = Server::dev();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/hvac_kv.py");
    let out = Command::new("python3")
        .arg(script)
        .env("VAULT_ADDR", &server.addr)
        .env("VAULT_TOKEN", server.root())
        .output()
        .expect("python3 is needed for this test (or set VAULTCTL_TEST_SKIP_HVAC=1)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "hvac failed (install it with `pip install hvac`):\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"));
}
