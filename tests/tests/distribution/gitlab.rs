//! The GitLab CI component (`templates/vaultctl.yml`): its spec parses as GitLab reads a
//! component (a `spec:` document, `---`, the jobs), its `$[[ inputs.… ]]` interpolate, and the
//! hidden job's before_script and script — install from the release with install.sh, then
//! `vaultctl exec` — run in a simulated GitLab job against `vaultd dev`.

use super::*;

fn component() -> PathBuf {
    repo_root().join("templates/vaultctl.yml")
}

/// `$[[ inputs.NAME ]]` in `text` replaced by the given input or the spec's default; an input
/// the spec does not declare, or a required one not given, fails the test (as GitLab refuses
/// the pipeline).
fn interpolate(text: &str, spec: &Value, given: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("$[[") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("]]").expect("unclosed $[[") + start;
        let expression = rest[start + 3..end].trim();
        let name = expression
            .strip_prefix("inputs.")
            .unwrap_or_else(|| panic!("unknown interpolation {expression:?}"));
        let declared = &spec["inputs"][name];
        assert!(
            declared.is_object(),
            "input {name} is used but not declared"
        );
        let value = given
            .iter()
            .find_map(|(k, v)| (*k == name).then(|| (*v).to_owned()))
            .or_else(|| declared["default"].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("required input {name} not given"));
        out.push_str(&value);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Interpolates every string (keys too) of a parsed document, as GitLab does after parsing.
fn interpolate_value(value: &Value, spec: &Value, given: &[(&str, &str)]) -> Value {
    match value {
        Value::String(s) => Value::String(interpolate(s, spec, given)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| interpolate_value(v, spec, given))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    (
                        interpolate(k, spec, given),
                        interpolate_value(v, spec, given),
                    )
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The component's two documents: its spec, and the job template after interpolation.
fn component_job(given: &[(&str, &str)]) -> (Value, Value) {
    let documents = yaml_documents(&component());
    assert_eq!(
        documents.len(),
        2,
        "a component is a spec document, ---, then the jobs"
    );
    let spec = documents[0]["spec"].clone();
    assert_eq!(
        documents[0].as_object().map(|o| o.len()),
        Some(1),
        "the first document holds only spec:"
    );
    let jobs = interpolate_value(&documents[1], &spec, given);
    (spec, jobs)
}

#[test]
fn gitlab_component_spec_declares_its_inputs_and_interpolates() {
    let (spec, jobs) = component_job(&[
        ("role", "web-deploy-prod"),
        ("audience", "https://vault.example.com"),
        ("url", "https://vault.example.com:8200"),
    ]);
    for required in ["role", "audience", "url"] {
        assert!(
            spec["inputs"][required].is_object(),
            "input {required} missing"
        );
        assert!(
            spec["inputs"][required].get("default").is_none(),
            "{required} must be given by the pipeline, not defaulted"
        );
    }
    assert_eq!(
        spec["inputs"]["version"]["default"], VERSION,
        "the component installs the release it belongs to"
    );
    let job = &jobs[".vaultctl"];
    assert!(job.is_object(), "no hidden .vaultctl job in {jobs}");
    assert_eq!(
        job["id_tokens"]["VAULTCTL_ID_TOKEN"]["aud"],
        "https://vault.example.com"
    );
    assert_eq!(job["variables"]["VAULTCTL_ROLE"], "web-deploy-prod");
    assert_eq!(
        job["variables"]["VAULTCTL_ADDR"],
        "https://vault.example.com:8200"
    );
    assert_eq!(job["variables"]["VAULTCTL_VERSION"], VERSION);
    assert!(
        !jobs.to_string().contains("$[["),
        "an input was left uninterpolated"
    );
    // Several includes, one template each.
    let (_, renamed) = component_job(&[
        ("role", "r"),
        ("audience", "a"),
        ("url", "u"),
        ("job_template", "vaultctl-staging"),
    ]);
    assert!(renamed[".vaultctl-staging"].is_object(), "{renamed}");
}

/// Runs the hidden job as a GitLab runner would: its variables and the CI_* variables in the
/// environment, `before_script` then `script` in one `bash -eo pipefail`.
fn run_job(ci: &Ci, job: &Value, id_token: &str, project: &Path) -> std::process::Output {
    let lines = |key: &str| -> Vec<String> {
        job[key]
            .as_array()
            .unwrap_or_else(|| panic!("job has no {key}"))
            .iter()
            .map(|l| l.as_str().unwrap().to_owned())
            .collect()
    };
    let mut script = lines("before_script");
    script.extend(lines("script"));
    let mut cmd = Command::new("bash");
    cmd.args(["-eo", "pipefail", "-c", &script.join("\n")])
        .current_dir(project)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", project)
        .env("CI", "true")
        .env("GITLAB_CI", "true")
        .env("CI_PROJECT_DIR", project)
        .env("CI_PROJECT_ID", "42")
        .env("CI_PROJECT_PATH", "acme/web")
        .env("CI_COMMIT_REF_NAME", "main")
        .env("CI_COMMIT_REF_PROTECTED", "true")
        .env("CI_JOB_ID", "31337")
        .env("CI_PIPELINE_ID", "9001")
        .env("CI_SERVER_URL", &ci.issuer.url)
        .env("VAULTCTL_ID_TOKEN", id_token);
    for (name, value) in job["variables"].as_object().unwrap() {
        cmd.env(name, value.as_str().unwrap());
    }
    output(&mut cmd)
}

#[test]
fn gitlab_component_job_installs_and_runs_vaultctl_exec() {
    let ci = ci();
    let release = FileServer::serve(release_root());
    let (_, jobs) = component_job(&[
        ("role", "gl-deploy"),
        ("audience", AUD),
        ("url", &ci.server.addr),
        ("install_url", &release.url),
        ("env_file", "deploy.env"),
        (
            "command",
            r#"sh -c 'echo "API_KEY has ${#API_KEY} chars = $API_KEY"'"#,
        ),
    ]);
    let job = &jobs[".vaultctl"];
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("deploy.env"),
        "API_KEY=secret/ci/app#API_KEY\n",
    )
    .unwrap();

    let id_token = ci
        .issuer
        .sign("rsa1", &ci.issuer.gitlab_claims(AUD, "acme/web", "42"));
    let out = run_job(&ci, job, &id_token, project.path());
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "job failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        project.path().join(".vaultctl/bin/vaultctl").is_file(),
        "vaultctl was not installed under the project"
    );
    assert!(stdout.contains(&format!("vaultctl {VERSION}")), "{stdout}");
    assert!(
        stdout.contains(&format!("API_KEY has {} chars = ***", API_KEY.len())),
        "{stdout}"
    );
    assert!(stderr.contains("logged in with role gl-deploy"), "{stderr}");
    assert_absent(
        &format!("{stdout}\n{stderr}"),
        &[API_KEY, &id_token],
        "the job log",
    );

    // A token for another audience: the job fails at the login and the command never runs.
    let wrong = ci.issuer.sign(
        "rsa1",
        &ci.issuer
            .gitlab_claims("https://other.example.com", "acme/web", "42"),
    );
    let out = run_job(&ci, job, &wrong, project.path());
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        !out.status.success(),
        "a job with the wrong audience got its secrets"
    );
    assert!(!stdout.contains("API_KEY has"), "the command ran: {stdout}");
    assert!(stderr.contains("aud"), "{stderr}");
}
