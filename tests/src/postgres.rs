//! A real PostgreSQL cluster for the tests: `initdb` + `pg_ctl` into a temp dir under `/tmp`
//! on a free loopback port, stopped on drop. Debian's `postgresql` package provides the
//! binaries (in `/usr/lib/postgresql/<version>/bin`, not on `PATH`); `initdb` refuses to run
//! as root, so as root the cluster is created and run as the `postgres` user via `runuser`.
//!
//! The cluster has a superuser `postgres` (trust on loopback, for the harness only) and a
//! password role `vaultd`; each [`PgCluster::database`] is a fresh database owned by `vaultd`,
//! as the operations guide tells operators to set it up.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The password of the `vaultd` role in test clusters (never a real secret).
pub const VAULTD_PASSWORD: &str = "vaultd-test-password";

/// The directory holding `initdb`, `pg_ctl` and `psql`, newest version first.
pub fn bin_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BIN_DIR") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A running cluster. Stopped (immediately) and removed on drop.
pub struct PgCluster {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
    as_postgres: bool,
    _tmp: tempfile::TempDir,
}

impl PgCluster {
    /// Creates and starts a cluster. Panics with what to install when PostgreSQL is missing.
    pub fn start() -> PgCluster {
        let bin = bin_dir().expect(
            "PostgreSQL is needed for this test: apt-get install postgresql (or set PG_BIN_DIR)",
        );
        let as_postgres = is_root();
        let tmp = cluster_dir("vaultd-pg-", as_postgres);
        let dir = tmp.path().join("cluster");
        let port = free_port();
        let cluster = PgCluster {
            bin,
            dir,
            port,
            as_postgres,
            _tmp: tmp,
        };
        let out = cluster.run_tool(
            "initdb",
            &[
                "-D",
                &cluster.dir.display().to_string(),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=trust",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        assert!(out.status.success(), "initdb failed: {}", show(&out));
        // The vaultd role logs in with a password (scram), as in production; the harness's
        // superuser is trusted on loopback only.
        let hba = "host all vaultd 127.0.0.1/32 scram-sha-256\nhost all postgres 127.0.0.1/32 trust\nhost replication postgres 127.0.0.1/32 trust\nlocal all all trust\n";
        std::fs::write(cluster.dir.join("pg_hba.conf"), hba).unwrap();
        cluster.start_server();
        cluster.psql(
            "postgres",
            &format!("CREATE ROLE vaultd LOGIN PASSWORD '{VAULTD_PASSWORD}'"),
        );
        cluster
    }

    fn run_tool(&self, tool: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args).current_dir("/tmp").output().unwrap()
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn start_server(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").display().to_string();
        let out = self.run_tool(
            "pg_ctl",
            &[
                "-D",
                &self.dir.display().to_string(),
                "-o",
                &opts,
                "-l",
                &log,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        assert!(out.status.success(), "pg_ctl start failed: {}", show(&out));
        wait_until("PostgreSQL listening", 30, || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
    }

    /// Stops the server at once (`immediate`: like a crash, no checkpoint).
    pub fn stop_server(&self) {
        let out = self.run_tool(
            "pg_ctl",
            &[
                "-D",
                &self.dir.display().to_string(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        assert!(out.status.success(), "pg_ctl stop failed: {}", show(&out));
    }

    /// A streaming standby of this cluster (a base backup with `-R`), started on its own port.
    /// Made synchronous: from the return of this call, a commit on the primary returns only
    /// once the standby has it.
    pub fn start_synchronous_standby(&self) -> PgCluster {
        let tmp = cluster_dir("vaultd-pg-standby-", self.as_postgres);
        let standby = PgCluster {
            bin: self.bin.clone(),
            dir: tmp.path().join("cluster"),
            port: free_port(),
            as_postgres: self.as_postgres,
            _tmp: tmp,
        };
        let out = standby.run_tool(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-D",
                &standby.dir.display().to_string(),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
        );
        assert!(out.status.success(), "pg_basebackup failed: {}", show(&out));
        // Tell the primary to wait for a standby (any) on every commit.
        standby.start_server();
        self.psql(
            "postgres",
            "ALTER SYSTEM SET synchronous_standby_names = '*'",
        );
        self.psql("postgres", "SELECT pg_reload_conf()");
        wait_until("the standby synchronous", 30, || {
            self.psql(
                "postgres",
                "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'",
            ) == "1"
        });
        standby
    }

    /// Promotes a standby to primary and waits until it accepts writes.
    pub fn promote(&self) {
        let out = self.run_tool(
            "pg_ctl",
            &["-D", &self.dir.display().to_string(), "-w", "promote"],
        );
        assert!(
            out.status.success(),
            "pg_ctl promote failed: {}",
            show(&out)
        );
        wait_until("the standby out of recovery", 30, || {
            self.psql("postgres", "SELECT pg_is_in_recovery()") == "f"
        });
    }

    /// Turns on TLS with `cert_pem`/`key_pem` (the server's chain and key) and reloads.
    pub fn enable_tls(&self, cert_pem: &str, key_pem: &str) {
        let cert = self.dir.join("server.crt");
        let key = self.dir.join("server.key");
        std::fs::write(&cert, cert_pem).unwrap();
        std::fs::write(&key, key_pem).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        if self.as_postgres {
            chown_to_postgres(&[&cert, &key]);
        }
        self.psql("postgres", "ALTER SYSTEM SET ssl = on");
        self.psql(
            "postgres",
            &format!("ALTER SYSTEM SET ssl_cert_file = '{}'", cert.display()),
        );
        self.psql(
            "postgres",
            &format!("ALTER SYSTEM SET ssl_key_file = '{}'", key.display()),
        );
        self.psql("postgres", "SELECT pg_reload_conf()");
        wait_until("ssl on", 10, || self.psql("postgres", "SHOW ssl") == "on");
    }

    /// Lets every role log in over loopback with a password (scram), as the users a database
    /// engine mints must; reloads the configuration.
    pub fn allow_password_logins(&self) {
        let hba = self.dir.join("pg_hba.conf");
        let mut rules = std::fs::read_to_string(&hba).unwrap();
        rules.push_str("host all all 127.0.0.1/32 scram-sha-256\n");
        std::fs::write(&hba, rules).unwrap();
        self.psql("postgres", "SELECT pg_reload_conf()");
    }

    /// Runs `sql` in `database` as `user` with `password` over loopback (psql); the output,
    /// or psql's error.
    pub fn psql_as(
        &self,
        user: &str,
        password: &str,
        database: &str,
        sql: &str,
    ) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "5")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", user])
            .args([
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-w",
                "-c",
                sql,
            ])
            .current_dir("/tmp")
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// The cluster's `psql` binary.
    pub fn psql_binary(&self) -> PathBuf {
        self.bin.join("psql")
    }

    /// Roles whose name starts with `prefix`.
    pub fn roles_like(&self, prefix: &str) -> Vec<String> {
        self.psql(
            "postgres",
            &format!(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname, '{prefix}') ORDER BY 1"
            ),
        )
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect()
    }

    /// Whether a role named `name` exists in the cluster.
    pub fn role_exists(&self, name: &str) -> bool {
        self.psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_roles WHERE rolname = '{name}'"),
        ) == "1"
    }

    /// Runs one SQL statement as the superuser in `database`; panics on failure.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let out = self.run_tool(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-c",
                sql,
            ],
        );
        assert!(out.status.success(), "psql {sql:?} failed: {}", show(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A fresh database owned by `vaultd`; returns its storage URL (password not included:
    /// pass [`VAULTD_PASSWORD`] through `VAULTD_STORAGE_PASSWORD` or a password file).
    pub fn database(&self) -> String {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("vaultd_{}_{n}", std::process::id());
        self.psql("postgres", &format!("CREATE DATABASE {name} OWNER vaultd"));
        self.url(&name)
    }

    /// The storage URL of `database` on this cluster, as the `vaultd` role.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgresql://vaultd@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `vaultd.toml` lines for a replica on `url`: the URL and a password file (mode 0600).
    pub fn replica_config(&self, url: &str) -> String {
        let password_file = self.dir.with_file_name("vaultd-password");
        if !password_file.exists() {
            write_private(&password_file, VAULTD_PASSWORD.as_bytes());
        }
        format!(
            "storage_url = \"{url}\"\nstorage_password_file = \"{}\"\n",
            password_file.display()
        )
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.run_tool(
            "pg_ctl",
            &[
                "-D",
                &self.dir.display().to_string(),
                "-m",
                "immediate",
                "stop",
            ],
        );
    }
}

/// When the suite runs against PostgreSQL (`VAULTD_TEST_PG_PORT`, set by `scripts/test.sh`
/// around a cluster it started), a fresh database on that cluster for one `vaultd dev`, as the
/// environment that selects it. `None`: the suite runs on sled.
pub fn shared_database_env() -> Option<Vec<(String, String)>> {
    let port: u16 = std::env::var("VAULTD_TEST_PG_PORT").ok()?.parse().ok()?;
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("suite_{}_{n}", std::process::id());
    let bin = bin_dir().expect("VAULTD_TEST_PG_PORT is set but no PostgreSQL binaries were found");
    let out = Command::new(bin.join("psql"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
        ])
        .args(["-v", "ON_ERROR_STOP=1", "-At", "-c"])
        .arg(format!("CREATE DATABASE {name} OWNER vaultd"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "CREATE DATABASE failed: {}",
        show(&out)
    );
    Some(vec![
        (
            "VAULTD_STORAGE_URL".into(),
            format!("postgresql://vaultd@127.0.0.1:{port}/{name}?sslmode=disable"),
        ),
        ("VAULTD_STORAGE_PASSWORD".into(), VAULTD_PASSWORD.into()),
    ])
}

/// The database name of a storage URL made by [`PgCluster::url`].
pub fn database_of(url: &str) -> String {
    let tail = url.rsplit('/').next().unwrap_or_default();
    tail.split('?').next().unwrap_or_default().to_owned()
}

/// Writes `bytes` to a new file only its owner may read (as key and password files must be).
pub fn write_private(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    std::io::Write::write_all(&mut f, bytes).unwrap();
}

/// A temp dir under /tmp for a cluster, owned by `postgres` when the cluster runs as it.
fn cluster_dir(prefix: &str, as_postgres: bool) -> tempfile::TempDir {
    let tmp = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .unwrap();
    if as_postgres {
        chown_to_postgres(&[tmp.path()]);
    }
    tmp
}

/// Polls `done` every 50 ms; panics naming `what` after `secs` seconds.
fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Gives `paths` to the `postgres` user (the cluster runs as it when the tests run as root).
fn chown_to_postgres(paths: &[&Path]) {
    let status = Command::new("chown")
        .arg("postgres:postgres")
        .args(paths)
        .status()
        .unwrap();
    assert!(status.success(), "chown to postgres failed for {paths:?}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn show(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
