// Shared by the build scripts of `vaultd` and `vaultctl` (`include!`d): sets
// `VAULTCTL_GIT_COMMIT` for `--version` to the short commit of the checkout, or to
// `$VAULTCTL_GIT_COMMIT` when set (release builds from an archive), or to "unknown".

fn main() {
    println!("cargo:rerun-if-env-changed=VAULTCTL_GIT_COMMIT");
    let git = |args: &[&str]| -> Option<String> {
        let out = std::process::Command::new("git").args(args).output().ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
    };
    // Rebuild when HEAD moves: HEAD itself and the branch ref it points at.
    // (Only paths that exist: Cargo reruns a script on every build for a missing one.)
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    for path in ["HEAD", "packed-refs"]
        .into_iter()
        .chain(branch.as_deref())
    {
        if let Some(p) = git(&["rev-parse", "--git-path", path])
            && std::path::Path::new(&p).exists()
        {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    let commit = std::env::var("VAULTCTL_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=VAULTCTL_GIT_COMMIT={commit}");
}
