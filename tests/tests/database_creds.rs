//! Dynamic PostgreSQL users against a real PostgreSQL cluster the test starts (`initdb` +
//! `pg_ctl`): minted users log in and can do what the role grants; every way a lease ends
//! (revoke, token revoke-self, a parent's revoke, revoke-accessor, TTL, a vaultd restart in
//! between, PostgreSQL down at the time) drops the user; bad input leaves nothing behind; and
//! no password reaches vaultd's log, the audit log or an error message.
//!
//! The admin user is a `CREATEROLE` role, not a superuser, as an operator would set it up.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use e2e::Server;
use e2e::postgres::PgCluster;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const ADMIN_PASSWORD: &str = "adminPassw0rd-never-logged-7f3a";

/// A target cluster with database `app` (table `widgets`) and the admin role vaultd uses.
fn target() -> PgCluster {
    let cluster = PgCluster::start();
    cluster.psql(
        "postgres",
        &format!("CREATE ROLE vault_admin LOGIN CREATEROLE PASSWORD '{ADMIN_PASSWORD}'"),
    );
    cluster.psql("postgres", "CREATE DATABASE app OWNER vault_admin");
    cluster.psql(
        "app",
        "CREATE TABLE widgets (id int); INSERT INTO widgets VALUES (1), (2)",
    );
    cluster.psql(
        "app",
        "GRANT SELECT, INSERT ON widgets TO vault_admin WITH GRANT OPTION",
    );
    cluster.allow_password_logins();
    cluster
}

fn configure(server: &Server, cluster: &PgCluster, allowed_roles: Value) {
    let r = write(
        server,
        "database/config/app",
        json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": format!("postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/app?sslmode=disable", cluster.port),
            "username": "vault_admin",
            "password": ADMIN_PASSWORD,
            "allowed_roles": allowed_roles,
        }),
    );
    assert_eq!(r.status, 204, "{}", r.raw);
}

const READ_WIDGETS: &str = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT SELECT ON widgets TO \"{{name}}\";";

fn role(server: &Server, name: &str, extra: Value) -> e2e::Resp {
    let mut body = json!({"db_name": "app", "creation_statements": [READ_WIDGETS]});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    write(server, &format!("database/roles/{name}"), body)
}

fn write(server: &Server, path: &str, body: Value) -> e2e::Resp {
    server.put(path, Some(server.root()), &body.to_string())
}

fn creds(server: &Server, token: &str, role: &str) -> e2e::Resp {
    server.get(&format!("database/creds/{role}"), Some(token))
}

/// (lease_id, username, password) of a successful creds response.
fn minted(r: &e2e::Resp) -> (String, String, String) {
    assert_eq!(r.status, 200, "{}", r.raw);
    let s = |v: &Value| v.as_str().unwrap().to_owned();
    (
        s(&r.body["lease_id"]),
        s(&r.body["data"]["username"]),
        s(&r.body["data"]["password"]),
    )
}

fn lease_call(server: &Server, token: &str, action: &str, body: Value) -> e2e::Resp {
    server.put(
        &format!("sys/leases/{action}"),
        Some(token),
        &body.to_string(),
    )
}

fn child_token(server: &Server, parent: &str, body: Value) -> (String, String) {
    let r = server.put("auth/token/create", Some(parent), &body.to_string());
    assert_eq!(r.status, 200, "{}", r.raw);
    (
        r.body["auth"]["client_token"].as_str().unwrap().to_owned(),
        r.body["auth"]["accessor"].as_str().unwrap().to_owned(),
    )
}

fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn metric(server: &Server, name: &str) -> Option<f64> {
    let r = e2e::raw_call(
        &server.url("sys/metrics?format=prometheus"),
        "GET",
        Some(server.root()),
        None,
    );
    r.raw
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Asserts that none of `secrets` appears in vaultd's logs (of every start) or audit log.
fn assert_never_logged(server: &Server, secrets: &[&str]) {
    let log: String = std::fs::read_dir(server.stderr_log.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".stderr"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(log.contains("lease"), "vaultd's log was read");
    let audit = std::fs::read_to_string(server.audit_log()).unwrap_or_default();
    assert!(
        audit.contains("database/creds"),
        "the audit log records the requests"
    );
    for secret in secrets {
        assert!(!log.contains(secret), "a password reached vaultd's log");
        assert!(!audit.contains(secret), "a password reached the audit log");
    }
}

#[test]
fn minted_users_log_in_and_are_dropped_however_their_lease_ends() {
    let cluster = target();
    let server = Server::dev();
    configure(&server, &cluster, json!("deploy"));
    let r = role(
        &server,
        "deploy",
        json!({"default_ttl": "1h", "max_ttl": "2h"}),
    );
    assert_eq!(r.status, 204, "{}", r.raw);
    let mut passwords = Vec::new();

    // The lease envelope, and a user that can do what the statements granted, no more.
    let r = creds(&server, server.root(), "deploy");
    let (lease, user, password) = minted(&r);
    passwords.push(password.clone());
    assert!(lease.starts_with("database/creds/deploy/"), "{lease}");
    assert_eq!(r.body["renewable"], json!(true));
    assert_eq!(r.body["lease_duration"], json!(3600));
    assert!(user.starts_with("v-deploy-") && user.len() <= 63, "{user}");
    let url = r.body["data"]["url"].as_str().unwrap();
    assert_eq!(
        url,
        format!(
            "postgresql://{user}:{password}@127.0.0.1:{}/app?sslmode=disable",
            cluster.port
        )
    );
    assert_eq!(
        cluster.psql_as(&user, &password, "app", "SELECT count(*) FROM widgets"),
        Ok("2".into())
    );
    let insert = cluster.psql_as(&user, &password, "app", "INSERT INTO widgets VALUES (3)");
    assert!(insert.unwrap_err().contains("permission denied"));
    assert_eq!(
        cluster.psql(
            "postgres",
            &format!("SELECT rolvaliduntil IS NOT NULL FROM pg_roles WHERE rolname = '{user}'")
        ),
        "t",
        "VALID UNTIL is the backstop"
    );
    let looked = lease_call(&server, server.root(), "lookup", json!({"lease_id": lease}));
    assert_eq!(looked.status, 200, "{}", looked.raw);
    assert!(looked.body["data"]["ttl"].as_u64().unwrap() > 3500);
    let renewed = lease_call(
        &server,
        server.root(),
        "renew",
        json!({"lease_id": lease, "increment": "3h"}),
    );
    assert_eq!(renewed.status, 200, "{}", renewed.raw);
    let duration = renewed.body["lease_duration"].as_u64().unwrap();
    assert!(
        (7190..=7200).contains(&duration),
        "capped by max_ttl: {duration}"
    );

    // Lease revoke.
    let r = lease_call(&server, server.root(), "revoke", json!({"lease_id": lease}));
    assert_eq!(r.status, 204, "{}", r.raw);
    assert!(!cluster.role_exists(&user), "revoke dropped the user");
    let gone = lease_call(&server, server.root(), "lookup", json!({"lease_id": lease}));
    assert_eq!(gone.status, 400, "{}", gone.raw);

    // Token revoke-self (what `vaultctl exec` does at exit) drops the user before answering.
    server.apply_policy(
        "[policies.db-deploy]\nrules = [{ path = \"database/creds/deploy\", capabilities = [\"read\"] }]\n[policies.token-maker]\nrules = [{ path = \"auth/token/create\", capabilities = [\"update\"] }]\n",
    );
    let (job, _) = child_token(
        &server,
        server.root(),
        json!({"policies": ["db-deploy"], "ttl": "10m"}),
    );
    let r = creds(&server, &job, "deploy");
    let (lease, user, password) = minted(&r);
    passwords.push(password.clone());
    assert!(
        r.body["lease_duration"].as_u64().unwrap() <= 600,
        "capped by the token's lifetime: {}",
        r.raw
    );
    // The token that obtained the lease may look it up; another may not.
    assert_eq!(
        lease_call(&server, &job, "lookup", json!({"lease_id": lease})).status,
        200
    );
    let (other, _) = child_token(&server, server.root(), json!({"policies": ["db-deploy"]}));
    assert_eq!(
        lease_call(&server, &other, "lookup", json!({"lease_id": lease})).status,
        403
    );
    assert_eq!(
        lease_call(&server, &other, "revoke", json!({"lease_id": lease})).status,
        403
    );
    assert!(cluster.role_exists(&user));
    let r = server.put("auth/token/revoke-self", Some(&job), "");
    assert_eq!(r.status, 204, "{}", r.raw);
    assert!(!cluster.role_exists(&user), "revoke-self dropped the user");

    // Revoking a parent drops the users its descendants obtained.
    let (parent, _) = child_token(
        &server,
        server.root(),
        json!({"policies": ["db-deploy", "token-maker"]}),
    );
    let (grandchild, _) = child_token(&server, &parent, json!({"policies": ["db-deploy"]}));
    let (_, user_a, password) = minted(&creds(&server, &grandchild, "deploy"));
    passwords.push(password);
    let (_, user_b, password) = minted(&creds(&server, &parent, "deploy"));
    passwords.push(password);
    let r = server.put(
        "auth/token/revoke",
        Some(server.root()),
        &json!({"token": parent}).to_string(),
    );
    assert_eq!(r.status, 204, "{}", r.raw);
    assert!(!cluster.role_exists(&user_a) && !cluster.role_exists(&user_b));

    // revoke-accessor too.
    let (token, accessor) = child_token(&server, server.root(), json!({"policies": ["db-deploy"]}));
    let (_, user, password) = minted(&creds(&server, &token, "deploy"));
    passwords.push(password);
    let r = server.put(
        "auth/token/revoke-accessor",
        Some(server.root()),
        &json!({"accessor": accessor}).to_string(),
    );
    assert_eq!(r.status, 204, "{}", r.raw);
    assert!(!cluster.role_exists(&user));

    // The policy decides: no rule for this role, no user.
    let (plain, _) = child_token(&server, server.root(), json!({"policies": ["default"]}));
    assert_eq!(creds(&server, &plain, "deploy").status, 403);

    // Concurrent mints (each GRANTs on the same table) all succeed; revoke-prefix (sudo) then
    // ends every lease of the role at once.
    let url = server.url("database/creds/deploy");
    let burst: Vec<_> = (0..6)
        .map(|_| {
            let (url, root) = (url.clone(), server.root().to_owned());
            std::thread::spawn(move || e2e::raw_call(&url, "GET", Some(&root), None))
        })
        .collect();
    let mut users = Vec::new();
    for handle in burst {
        let (_, user, password) = minted(&handle.join().unwrap());
        users.push(user);
        passwords.push(password);
    }
    let r = server.put(
        "sys/leases/revoke-prefix/database/creds/deploy",
        Some(server.root()),
        "",
    );
    assert_eq!(r.status, 204, "{}", r.raw);
    assert!(users.iter().all(|u| !cluster.role_exists(u)));
    assert_eq!(metric(&server, "vaultd_leases_active"), Some(0.0));

    // The admin password is never shown, and no password is ever logged.
    let read = server.get("database/config/app", Some(server.root()));
    assert_eq!(read.status, 200, "{}", read.raw);
    assert_eq!(
        read.body["data"]["connection_details"]["username"],
        json!("vault_admin")
    );
    assert!(!read.raw.contains(ADMIN_PASSWORD), "{}", read.raw);
    let mut secrets: Vec<&str> = passwords.iter().map(String::as_str).collect();
    secrets.push(ADMIN_PASSWORD);
    assert_never_logged(&server, &secrets);
}

#[test]
fn bad_input_is_refused_clearly_and_leaves_nothing_behind() {
    let cluster = target();
    let server = Server::dev();
    let url = format!(
        "postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/app?sslmode=disable",
        cluster.port
    );
    let refused = |path: &str, body: Value, needle: &str| {
        let r = write(&server, path, body);
        assert_eq!(r.status, 400, "{path}: {}", r.raw);
        let message = r.errors().join(" ");
        assert!(
            message.contains(needle),
            "{path}: {message:?} should name {needle:?}"
        );
        assert!(!r.raw.contains(ADMIN_PASSWORD), "{}", r.raw);
        message
    };
    let base = json!({"connection_url": url, "username": "vault_admin", "password": ADMIN_PASSWORD, "allowed_roles": ["deploy", "broken"]});
    let with = |extra: Value| {
        let mut b = base.clone();
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    refused(
        "database/config/app",
        with(json!({"plugin_name": "mysql-database-plugin"})),
        "postgresql-database-plugin",
    );
    refused(
        "database/config/app",
        base.clone(),
        "plugin_name is required",
    );
    let closed = json!({"plugin_name": "postgresql-database-plugin", "connection_url": "postgresql://{{username}}:{{password}}@127.0.0.1:1/app?sslmode=disable", "username": "vault_admin", "password": ADMIN_PASSWORD});
    refused("database/config/app", closed, "verify_connection");
    let wrong =
        with(json!({"plugin_name": "postgresql-database-plugin", "password": "not-the-password"}));
    refused("database/config/app", wrong, "verify_connection");
    let literal = with(
        json!({"plugin_name": "postgresql-database-plugin", "connection_url": format!("postgresql://vault_admin:{ADMIN_PASSWORD}@127.0.0.1:{}/app", cluster.port)}),
    );
    let message = refused("database/config/app", literal, "must not hold a password");
    assert!(!message.contains(ADMIN_PASSWORD));
    refused(
        "database/config/app",
        with(json!({"plugin_name": "postgresql-database-plugin", "bogus_field": 1})),
        "bogus_field",
    );
    assert_eq!(
        server
            .get("database/config/app", Some(server.root()))
            .status,
        404,
        "nothing stored"
    );
    assert_eq!(
        write(
            &server,
            "database/config/app",
            with(json!({"plugin_name": "postgresql-database-plugin"}))
        )
        .status,
        204
    );

    let statements = json!([READ_WIDGETS]);
    refused(
        "database/roles/deploy",
        json!({"db_name": "nope", "creation_statements": statements}),
        "unknown db_name",
    );
    refused(
        "database/roles/other",
        json!({"db_name": "app", "creation_statements": statements}),
        "allowed_roles",
    );
    refused(
        "database/roles/deploy",
        json!({"db_name": "app", "creation_statements": ["CREATE ROLE fixed LOGIN"]}),
        "{{name}}",
    );
    refused(
        "database/roles/deploy",
        json!({"db_name": "app", "creation_statements": ["CREATE ROLE \"{{nmae}}\""]}),
        "unknown placeholder",
    );
    refused(
        "database/roles/deploy",
        json!({"db_name": "app", "creation_statements": statements, "default_ttl": "2h", "max_ttl": "1h"}),
        "max_ttl",
    );
    refused(
        "database/roles/deploy",
        json!({"db_name": "app", "creation_statements": statements, "bogus": true}),
        "bogus",
    );
    assert_eq!(
        server
            .get("database/roles/deploy", Some(server.root()))
            .status,
        404,
        "nothing stored"
    );
    assert_eq!(
        server
            .get("database/creds/deploy", Some(server.root()))
            .status,
        400,
        "unknown role"
    );

    // Creation that fails half-way (the GRANT after CREATE ROLE): no role, no lease.
    let halfway = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}'; GRANT SELECT ON missing_table TO \"{{name}}\";";
    let r = write(
        &server,
        "database/roles/broken",
        json!({"db_name": "app", "creation_statements": halfway}),
    );
    assert_eq!(r.status, 204, "{}", r.raw);
    let before = cluster.psql(
        "postgres",
        "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-%'",
    );
    let r = creds(&server, server.root(), "broken");
    assert_eq!(r.status, 400, "{}", r.raw);
    let message = r.errors().join(" ");
    assert!(
        message.contains("missing_table") && message.contains("nothing was left behind"),
        "{message}"
    );
    assert_eq!(
        cluster.psql(
            "postgres",
            "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-%'"
        ),
        before,
        "no orphan role"
    );
    assert_eq!(
        metric(&server, "vaultd_leases_active"),
        Some(0.0),
        "no lease left"
    );
    assert_eq!(
        metric(&server, "vaultd_leases_pending_revocation"),
        Some(0.0)
    );

    // A connection with outstanding leases cannot be deleted (they could not be revoked).
    assert_eq!(role(&server, "deploy", json!({})).status, 204);
    let (lease, _, password) = minted(&creds(&server, server.root(), "deploy"));
    let r = server.call("DELETE", "database/config/app", Some(server.root()), None);
    assert_eq!(r.status, 400, "{}", r.raw);
    assert_eq!(
        lease_call(&server, server.root(), "revoke", json!({"lease_id": lease})).status,
        204
    );
    assert_eq!(
        server
            .call("DELETE", "database/config/app", Some(server.root()), None)
            .status,
        204
    );
    assert_never_logged(&server, &[ADMIN_PASSWORD, &password]);
}

#[test]
fn rotate_root_sets_a_new_admin_password_that_keeps_working() {
    let cluster = target();
    let server = Server::dev();
    configure(&server, &cluster, json!(["deploy"]));
    let r = write(&server, "database/rotate-root/app", json!({}));
    assert_eq!(r.status, 204, "{}", r.raw);
    assert!(
        cluster
            .psql_as("vault_admin", ADMIN_PASSWORD, "app", "SELECT 1")
            .is_err(),
        "the old admin password no longer works"
    );
    assert_eq!(role(&server, "deploy", json!({})).status, 204);
    let (lease, user, password) = minted(&creds(&server, server.root(), "deploy"));
    assert!(
        cluster.role_exists(&user),
        "vaultd still logs in as the admin"
    );
    assert_eq!(
        lease_call(&server, server.root(), "revoke", json!({"lease_id": lease})).status,
        204
    );
    assert!(!cluster.role_exists(&user));
    assert_never_logged(&server, &[ADMIN_PASSWORD, &password]);
}

#[test]
fn leases_end_at_their_ttl_survive_restarts_and_are_retried_while_postgres_is_down() {
    let cluster = target();
    let mut server = Server::dev();
    configure(&server, &cluster, json!("*"));
    assert_eq!(
        role(&server, "short", json!({"default_ttl": 2, "max_ttl": 2})).status,
        204
    );
    assert_eq!(role(&server, "deploy", json!({})).status, 204);

    // TTL: the sweeper drops the user.
    let (_, short_user, short_password) = minted(&creds(&server, server.root(), "short"));
    assert!(cluster.role_exists(&short_user));
    wait_for("the expired lease's user dropped", 15, || {
        !cluster.role_exists(&short_user)
    });

    // A restart keeps the lease, and a revoke after it still drops the user.
    let (lease, user, password) = minted(&creds(&server, server.root(), "deploy"));
    server.kill9();
    server.restart();
    let looked = lease_call(&server, server.root(), "lookup", json!({"lease_id": lease}));
    assert_eq!(
        looked.status, 200,
        "the lease survived the restart: {}",
        looked.raw
    );
    assert_eq!(
        lease_call(&server, server.root(), "revoke", json!({"lease_id": lease})).status,
        204
    );
    assert!(!cluster.role_exists(&user));

    // PostgreSQL down at revoke time: queued, counted, retried until PostgreSQL is back.
    let (lease, user, password_2) = minted(&creds(&server, server.root(), "deploy"));
    cluster.stop_server();
    let r = lease_call(&server, server.root(), "revoke", json!({"lease_id": lease}));
    assert_eq!(r.status, 503, "{}", r.raw);
    assert!(r.errors().join(" ").contains("retries"), "{}", r.raw);
    assert_eq!(
        metric(&server, "vaultd_leases_pending_revocation"),
        Some(1.0)
    );
    let looked = lease_call(&server, server.root(), "lookup", json!({"lease_id": lease}));
    assert_eq!(
        looked.body["data"]["revocation_pending"],
        json!(true),
        "{}",
        looked.raw
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        metric(&server, "vaultd_lease_revocation_failures_total").unwrap() >= 2.0,
        "retried"
    );
    // Not forgotten across a restart either.
    server.kill9();
    server.restart();
    cluster.start_server();
    wait_for("the queued revocation done", 40, || {
        !cluster.role_exists(&user)
    });
    wait_for("the pending count back to 0", 10, || {
        metric(&server, "vaultd_leases_pending_revocation") == Some(0.0)
    });

    // vaultd killed between CREATE ROLE (committed here by the statements themselves) and
    // handing out the credential: the half-made lease is found and its user dropped.
    let slow =
        "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}'; COMMIT; SELECT pg_sleep(4);";
    assert_eq!(
        write(
            &server,
            "database/roles/slow",
            json!({"db_name": "app", "creation_statements": slow})
        )
        .status,
        204
    );
    let url = server.url("database/creds/slow");
    let root = server.root().to_owned();
    let request = std::thread::spawn(move || {
        e2e::try_call(&url, "GET", Some(&root), None)
            .ok()
            .map(|r| r.status)
    });
    let mut orphan = String::new();
    wait_for("the slow role created", 10, || {
        orphan = cluster.psql(
            "postgres",
            "SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-slow-%'",
        );
        !orphan.is_empty()
    });
    server.kill9();
    assert_ne!(
        request.join().unwrap(),
        Some(200),
        "no credential was handed out"
    );
    server.restart();
    wait_for("the half-made lease's user dropped", 50, || {
        !cluster.role_exists(&orphan)
    });
    assert_never_logged(
        &server,
        &[ADMIN_PASSWORD, &short_password, &password, &password_2],
    );
}

/// `vaultctl exec --credential`: the command gets PGUSER/PGPASSWORD (and env-file fields of the
/// same lease), `psql` logs in with them, their values are masked, and the user is gone when
/// exec ends — whether exec logged in itself (the token's revocation ends the lease) or was
/// given a token (exec revokes the lease).
#[test]
fn exec_injects_a_minted_user_and_drops_it_when_the_command_ends() {
    let cluster = target();
    let server = Server::dev();
    configure(&server, &cluster, json!(["migrate"]));
    assert_eq!(
        role(&server, "migrate", json!({"default_ttl": "10m"})).status,
        204
    );
    server.apply_policy(
        "[policies.dev-read]\nrules = [\n  { path = \"secret/data/dev/*\", capabilities = [\"read\"] },\n  { path = \"database/creds/migrate\", capabilities = [\"read\"] },\n]\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("deploy.env");
    std::fs::write(
        &env_file,
        "DATABASE_URL=database/creds/migrate#url\nDB_USER=database/creds/migrate#username\n",
    )
    .unwrap();
    let seen = dir.path().join("seen");
    let script = format!(
        "set -e; \"{psql}\" -h 127.0.0.1 -p {port} -d app -At -w -c 'SELECT count(*) FROM widgets'; \
         test \"$PGUSER\" = \"$DB_USER\"; \"{psql}\" \"$DATABASE_URL\" -At -w -c 'SELECT current_user' > /dev/null; \
         printf '%s' \"$PGUSER\" > {seen}; echo \"user=$PGUSER password=$PGPASSWORD url=$DATABASE_URL\"",
        psql = cluster.psql_binary().display(),
        port = cluster.port,
        seen = seen.display(),
    );
    for obtained in [true, false] {
        let mut cmd = std::process::Command::new(e2e::binary("vaultctl"));
        cmd.args([
            "exec",
            "--credential",
            "database/creds/migrate",
            "--env-file",
        ])
        .arg(&env_file);
        if obtained {
            cmd.args(["--role", "dev"]);
        }
        cmd.args(["--", "sh", "-c", &script])
            .env("VAULTCTL_ADDR", &server.addr)
            .env_remove("VAULT_TOKEN")
            .current_dir("/tmp");
        if obtained {
            let jwt = server
                .put("sys/dev/oidc/token", Some(server.root()), "{}")
                .body["data"]["jwt"]
                .as_str()
                .unwrap()
                .to_owned();
            cmd.env_remove("VAULTCTL_TOKEN").env("VAULTCTL_JWT", jwt);
        } else {
            cmd.env("VAULTCTL_TOKEN", server.root());
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "obtained={obtained}: {stdout}\n{stderr}"
        );
        assert!(
            stdout.starts_with("2\n"),
            "the minted user reads widgets: {stdout}"
        );
        let user = std::fs::read_to_string(&seen).unwrap();
        assert!(user.starts_with("v-migrate-"), "{user}");
        // Every minted value is masked in the command's output.
        assert!(!stdout.contains(&user), "{stdout}");
        assert!(stdout.contains("user=*** password=*** url=***"), "{stdout}");
        // One lease for every reference: one user, and it is gone now.
        assert!(
            !cluster.role_exists(&user),
            "obtained={obtained}: {user} still exists"
        );
        assert!(cluster.roles_like("v-migrate-").is_empty());
    }
    // `vaultctl env` refuses dynamic credentials: they would die with its token.
    let out = server.vaultctl(
        Some(server.root()),
        b"",
        &["env", "--env-file", env_file.to_str().unwrap()],
    );
    assert_eq!(out.status, Some(1), "{out:?}");
    assert!(out.stderr.contains("vaultctl exec"), "{out:?}");
    assert!(cluster.roles_like("v-migrate-").is_empty());
}
