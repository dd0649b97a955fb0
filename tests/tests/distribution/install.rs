//! `scripts/install.sh` (POSIX sh, run by `sh`) against the release served from loopback:
//! installs the platform's archive; refuses a tampered one and an unknown platform, installing
//! nothing.

use super::*;

fn install_sh(args: &[&str], path_prefix: Option<&Path>) -> std::process::Output {
    let mut path = std::env::var("PATH").unwrap_or_default();
    if let Some(dir) = path_prefix {
        path = format!("{}:{path}", dir.display());
    }
    output(
        Command::new("sh")
            .arg(repo_root().join("scripts/install.sh"))
            .args(args)
            .env_clear()
            .env("PATH", path)
            .env("HOME", std::env::temp_dir()),
    )
}

#[test]
fn install_sh_installs_the_release_for_this_platform() {
    let release = FileServer::serve(release_root());
    let prefix = tempfile::tempdir().unwrap();
    let out = install_sh(
        &[
            "--version",
            VERSION,
            "--base-url",
            &release.release_url(),
            "--prefix",
            prefix.path().to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("checksum verified"),
        "{}",
        text(&out.stderr)
    );
    for bin in ["vaultctl", "vaultd"] {
        let version = output(Command::new(prefix.path().join("bin").join(bin)).arg("--version"));
        assert!(
            text(&version.stdout).starts_with(&format!("{bin} {VERSION}")),
            "{bin}: {}",
            text(&version.stdout)
        );
    }
    let man = prefix.path().join("share/man/man1");
    assert!(man.join("vaultctl.1").is_file() && man.join("vaultd.1").is_file());
    let completion = prefix
        .path()
        .join("share/bash-completion/completions/vaultctl");
    let loaded = output(Command::new("bash").arg("-c").arg(format!(
        "source '{}' && complete -p vaultctl",
        completion.display()
    )));
    assert!(loaded.status.success(), "{}", text(&loaded.stderr));
    assert!(
        prefix
            .path()
            .join("share/zsh/site-functions/_vaultctl")
            .is_file()
    );
    assert!(
        prefix
            .path()
            .join("share/fish/vendor_completions.d/vaultctl.fish")
            .is_file()
    );

    // No --version: the release's SHA256SUMS names the version for this platform.
    let latest = tempfile::tempdir().unwrap();
    let out = install_sh(
        &[
            "--base-url",
            &release.release_url(),
            "--prefix",
            latest.path().to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&archive_name()),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn install_sh_refuses_a_tampered_archive_and_installs_nothing() {
    let release = FileServer::serve(tampered_release_root());
    let empty = tempfile::tempdir().unwrap();
    let prefix = empty.path().join("prefix");
    let out = install_sh(
        &[
            "--base-url",
            &release.release_url(),
            "--prefix",
            prefix.to_str().unwrap(),
        ],
        None,
    );
    assert!(!out.status.success(), "a tampered archive was installed");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("checksum mismatch for {}", archive_name())),
        "{stderr}"
    );
    assert!(!prefix.exists(), "something was installed");

    // An existing installation stays as it was.
    let existing = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(existing.path().join("bin")).unwrap();
    std::fs::write(existing.path().join("bin/vaultctl"), "previous").unwrap();
    let out = install_sh(
        &[
            "--base-url",
            &release.release_url(),
            "--prefix",
            existing.path().to_str().unwrap(),
        ],
        None,
    );
    assert!(!out.status.success());
    assert_eq!(
        std::fs::read_to_string(existing.path().join("bin/vaultctl")).unwrap(),
        "previous"
    );
}

#[test]
fn install_sh_refuses_an_unknown_platform() {
    let release = FileServer::serve(release_root());
    for (os, arch) in [("Linux", "riscv64"), ("SunOS", "x86_64")] {
        // `uname` answering for another machine.
        let shim = tempfile::tempdir().unwrap();
        let uname = shim.path().join("uname");
        std::fs::write(
            &uname,
            format!("#!/bin/sh\ncase \"$1\" in -s) echo {os} ;; -m) echo {arch} ;; esac\n"),
        )
        .unwrap();
        let mut perms = std::fs::metadata(&uname).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&uname, perms).unwrap();
        let prefix = shim.path().join("prefix");
        let out = install_sh(
            &[
                "--base-url",
                &release.release_url(),
                "--prefix",
                prefix.to_str().unwrap(),
            ],
            Some(shim.path()),
        );
        assert!(!out.status.success(), "{os}/{arch} was accepted");
        let stderr = text(&out.stderr);
        assert!(stderr.contains("unknown platform"), "{os}/{arch}: {stderr}");
        assert!(!prefix.exists());
    }
}
