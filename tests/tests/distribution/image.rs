//! The container image: `Containerfile` built with buildah (vfs storage in a folder of the
//! test's own) from a static vaultd built on this machine (`VAULTD_BINARY=context`: no registry
//! is reachable here to pull the builder image from), then the image's own binary run inside
//! the image's root file system: `vaultd --version`, its default config, and `vaultd dev`
//! answering `GET /v1/sys/health`.

use super::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// buildah with the test's private storage.
struct Buildah {
    root: tempfile::TempDir,
}

impl Buildah {
    fn cmd(&self) -> Command {
        let mut cmd = Command::new("buildah");
        cmd.arg("--storage-driver")
            .arg("vfs")
            .arg("--root")
            .arg(self.root.path().join("storage"))
            .arg("--runroot")
            .arg(self.root.path().join("run"));
        cmd
    }

    fn run(&self, args: &[&str]) -> String {
        let out = output(self.cmd().args(args));
        assert!(
            out.status.success(),
            "buildah {args:?} failed\nstdout:\n{}\nstderr:\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout).trim().to_owned()
    }
}

impl Drop for Buildah {
    fn drop(&mut self) {
        let _ = self.cmd().args(["rm", "--all"]).output();
    }
}

/// The static vaultd the image ships: `VAULTD_STATIC_BIN` (scripts/test.sh builds it), else
/// built here with scripts/build-static.sh.
fn static_vaultd() -> PathBuf {
    if let Ok(path) = std::env::var("VAULTD_STATIC_BIN") {
        return PathBuf::from(path);
    }
    let out = output(&mut Command::new(
        repo_root().join("scripts/build-static.sh"),
    ));
    assert!(
        out.status.success(),
        "scripts/build-static.sh failed: {}",
        text(&out.stderr)
    );
    PathBuf::from(text(&out.stdout).trim())
}

fn buildah_available() -> bool {
    Command::new("buildah")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn container_image_builds_and_its_binary_serves_health() {
    if !buildah_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "buildah is missing in CI: .ci/run installs it (apt-get install buildah)"
        );
        eprintln!(
            "\n!!! SKIPPED container_image_builds_and_its_binary_serves_health: buildah is not \
             installed (apt-get install buildah) !!!\n"
        );
        return;
    }
    let vaultd = static_vaultd();

    // The build context: the Containerfile, the image's files, and the static binary.
    let context = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo_root().join("Containerfile"),
        context.path().join("Containerfile"),
    )
    .unwrap();
    let copied = output(
        Command::new("cp")
            .arg("-R")
            .arg(repo_root().join("deploy"))
            .arg(context.path()),
    );
    assert!(copied.status.success());
    std::fs::copy(&vaultd, context.path().join("vaultd")).unwrap();

    let buildah = Buildah {
        root: tempfile::tempdir().unwrap(),
    };
    let tag = "localhost/vaultd:distribution-test";
    let started = Instant::now();
    buildah.run(&[
        "bud",
        "--build-arg",
        "VAULTD_BINARY=context",
        "--layers=false",
        "-f",
        &context.path().join("Containerfile").display().to_string(),
        "-t",
        tag,
        &context.path().display().to_string(),
    ]);
    let built_in = started.elapsed();
    let size = buildah.run(&["images", "--format", "{{.Size}}", tag]);
    println!(
        "container image: built in {} ms, {size} (static vaultd {} bytes)",
        built_in.as_millis(),
        std::fs::metadata(&vaultd).unwrap().len()
    );

    let config: Value =
        serde_json::from_str(&buildah.run(&["inspect", "--type", "image", tag])).unwrap();
    let image = &config["OCIv1"]["config"];
    assert_eq!(image["User"], "10001:10001", "{image}");
    assert!(image["ExposedPorts"]["8200/tcp"].is_object(), "{image}");
    assert!(image["Volumes"]["/vaultd/data"].is_object(), "{image}");
    assert_eq!(
        image["Entrypoint"],
        json!(["/usr/local/bin/vaultd", "server", "--config"])
    );
    assert_eq!(image["Cmd"], json!(["/etc/vaultd/vaultd.toml"]));

    let container = buildah.run(&["from", tag]);
    let in_image = |args: &[&str]| -> std::process::Output {
        output(
            buildah
                .cmd()
                .args(["run", "--isolation=chroot", &container, "--"])
                .args(args),
        )
    };
    // A run that fails: its error, as vaultd reports it. Under load `buildah run` has lost
    // the whole output of a process that exits at once (only buildah's own "subprocess exited
    // with status 1" came through), so a failing run whose stderr holds no line of vaultd's
    // is run again, up to three times; every run must fail.
    let failing_in_image = |args: &[&str]| -> std::process::Output {
        let mut attempts = 0;
        loop {
            let out = in_image(args);
            assert!(!out.status.success(), "{args:?} succeeded");
            attempts += 1;
            if text(&out.stderr).contains("vaultd: ") || attempts == 3 {
                return out;
            }
            eprintln!("no output of vaultd came through buildah; running {args:?} again");
        }
    };
    let version = in_image(&["/usr/local/bin/vaultd", "--version"]);
    assert!(
        text(&version.stdout).starts_with(&format!("vaultd {VERSION}")),
        "stdout: {}\nstderr: {}",
        text(&version.stdout),
        text(&version.stderr)
    );
    // The baked-in config parses and asks for the TLS files a deployment mounts.
    let server = failing_in_image(&[
        "/usr/local/bin/vaultd",
        "server",
        "--config",
        "/etc/vaultd/vaultd.toml",
    ]);
    assert!(
        text(&server.stderr).contains("/vaultd/tls/tls.crt"),
        "{}",
        text(&server.stderr)
    );

    // `vaultd dev` from the image answers health over loopback.
    let mut dev = buildah
        .cmd()
        .args(["run", "--isolation=chroot", &container, "--"])
        .args([
            "/usr/local/bin/vaultd",
            "dev",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            "/vaultd/data/dev",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = dev.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("export VAULTCTL_ADDR=") {
                let _ = tx.send(addr.to_owned());
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(60));
    let health = addr
        .as_ref()
        .map(|a| e2e::raw_call(&format!("{a}/v1/sys/health"), "GET", None, None));
    let _ = Command::new("kill")
        .args(["-TERM", &dev.id().to_string()])
        .status();
    let _ = dev.wait();
    let health = health.expect("vaultd dev in the image did not start");
    assert_eq!(health.status, 200, "{}", health.raw);
    assert_eq!(health.body["sealed"], false);
    assert_eq!(health.body["version"], VERSION);

    // It runs as the image's unprivileged user: root's folders are not its to write.
    let denied = failing_in_image(&[
        "/usr/local/bin/vaultd",
        "dev",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        "/etc/vaultd/data",
    ]);
    assert!(
        text(&denied.stderr).contains("ermission denied"),
        "{}",
        text(&denied.stderr)
    );
}
