//! `--version`, `vaultctl completions` and the man pages of both binaries: generated from the
//! clap definitions, and usable by the tools that read them (bash, `man`).

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use std::process::Command;

use e2e::binary;

fn run(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(binary(program)).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn version_names_the_release_and_the_commit() {
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| text(&o.stdout).trim().to_owned());
    for program in ["vaultctl", "vaultd"] {
        let out = run(program, &["--version"]);
        assert!(out.status.success(), "{out:?}");
        let line = text(&out.stdout);
        let expected_commit = head.clone().unwrap_or_else(|| "unknown".into());
        assert_eq!(
            line.trim(),
            format!(
                "{program} {} (commit {expected_commit})",
                env!("CARGO_PKG_VERSION")
            )
        );
    }
}

#[test]
fn bash_loads_the_completion_script() {
    let script = format!(
        "source <({} completions bash) && complete -p vaultctl",
        binary("vaultctl").display()
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let registered = text(&out.stdout);
    assert!(
        registered.starts_with("complete ") && registered.trim_end().ends_with(" vaultctl"),
        "{registered}"
    );
    // The script completes subcommands: ask bash for the words after `vaultctl po`.
    let script = format!(
        "source <({} completions bash)\nCOMP_WORDS=(vaultctl po); COMP_CWORD=1; COMP_LINE='vaultctl po'; COMP_POINT=${{#COMP_LINE}}\n\
         _vaultctl vaultctl po vaultctl\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"",
        binary("vaultctl").display()
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout).trim(), "policy", "{out:?}");
}

#[test]
fn every_shell_gets_a_script_and_an_unknown_one_is_a_usage_error() {
    for shell in ["zsh", "fish", "powershell"] {
        let out = run("vaultctl", &["completions", shell]);
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = text(&out.stdout);
        assert!(
            script.contains("vaultctl") && script.contains("policy"),
            "{shell}"
        );
    }
    let out = run("vaultctl", &["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty());
}

#[test]
fn man_pages_render_for_both_binaries() {
    let dir = tempfile::tempdir().unwrap();
    for (program, pages) in [
        (
            "vaultctl",
            &[
                "vaultctl",
                "vaultctl-exec",
                "vaultctl-kv-put",
                "vaultctl-policy-test",
            ][..],
        ),
        (
            "vaultd",
            &[
                "vaultd",
                "vaultd-server",
                "vaultd-dev",
                "vaultd-operator-migrate",
            ][..],
        ),
    ] {
        let out = run(program, &["man", "--dir", dir.path().to_str().unwrap()]);
        assert!(out.status.success(), "{out:?}");
        let listed = text(&out.stdout);
        for page in pages {
            let path = dir.path().join(format!("{page}.1"));
            assert!(listed.contains(path.to_str().unwrap()), "{listed}");
            let rendered = Command::new("man")
                .arg("-l")
                .arg(&path)
                .env("MANWIDTH", "100")
                .env("MANPAGER", "cat")
                .env("PAGER", "cat")
                .output()
                .unwrap();
            assert!(rendered.status.success(), "{page}: {rendered:?}");
            let page_text = text(&rendered.stdout);
            let invocation = page.replace('-', " ");
            assert!(
                page_text.contains("NAME") && page_text.contains("SYNOPSIS"),
                "{page}: {page_text}"
            );
            // man justifies lines: compare with white space collapsed.
            let words = page_text.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                words.contains(&format!("SYNOPSIS {invocation}")),
                "{page}: {page_text}"
            );
        }
    }
    // No page for the `help` pseudo-command.
    assert!(!dir.path().join("vaultctl-help.1").exists());
    // A directory that cannot be created: a clear error, exit 1.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let out = run(
        "vaultctl",
        &["man", "--dir", file.join("sub").to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("writing man pages"), "{out:?}");
}
