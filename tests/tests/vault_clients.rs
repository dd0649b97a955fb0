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

/// hvac's `secrets.database` (configure, create_role, generate_credentials) and its lease calls
/// (`sys.read_lease`, `renew_lease`, `revoke_lease`) against a real PostgreSQL cluster: the
/// credential hvac got logs in, and is gone after hvac revokes its lease.
#[test]
fn hvac_mints_postgres_users_and_manages_their_leases() {
    use e2e::postgres::PgCluster;
    let admin_password = "hvac-admin-Pa55word";
    let cluster = PgCluster::start();
    cluster.psql(
        "postgres",
        &format!("CREATE ROLE vault_admin LOGIN CREATEROLE PASSWORD '{admin_password}'"),
    );
    cluster.psql("postgres", "CREATE DATABASE app OWNER vault_admin");
    cluster.psql(
        "app",
        "CREATE TABLE widgets (id int) ; INSERT INTO widgets VALUES (7)",
    );
    cluster.psql(
        "app",
        "GRANT SELECT ON widgets TO vault_admin WITH GRANT OPTION",
    );
    cluster.allow_password_logins();
    let server = Server::dev();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/hvac_database.py");
    let run = |args: &[&str]| {
        let out = Command::new("python3")
            .arg(script)
            .args(args)
            .env("VAULT_ADDR", &server.addr)
            .env("VAULT_TOKEN", server.root())
            .output()
            .expect("python3 is needed for this test (or run with `-- --skip hvac`)");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "hvac failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let stdout = run(&["mint", &cluster.port.to_string(), admin_password]);
    let creds: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let user = creds["username"].as_str().unwrap();
    let password = creds["password"].as_str().unwrap();
    assert_eq!(
        cluster.psql_as(user, password, "app", "SELECT id FROM widgets"),
        Ok("7".into())
    );
    let stdout = run(&["end", creds["lease_id"].as_str().unwrap()]);
    assert!(stdout.contains("all checks passed"), "{stdout}");
    assert!(!cluster.role_exists(user), "revoke_lease dropped the user");
}
