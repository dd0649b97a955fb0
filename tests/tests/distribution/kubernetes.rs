//! `deploy/kubernetes/`: every manifest passes kubernetes-validate (strict, offline, against the
//! schemas it bundles), a broken one does not, and the pod specs keep the properties the
//! deployment relies on (non-root, read-only root, probes on sys/health, one sled replica, the
//! unseal key from a secret) with configs vaultd accepts.

use super::*;

fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join("deploy/kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "no manifests in deploy/kubernetes");
    files
}

fn validate(files: &[PathBuf]) -> std::process::Output {
    output(
        Command::new(ci_tools().join("kubernetes-validate"))
            .arg("--strict")
            .args(files),
    )
}

#[test]
fn kubernetes_manifests_pass_kubernetes_validate() {
    let files = manifests();
    let out = validate(&files);
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{report}");
    let resources: usize = files.iter().map(|f| yaml_documents(f).len()).sum();
    assert_eq!(
        report.matches(" passed for resource ").count(),
        resources,
        "{report}"
    );

    // The validator does reject: an unknown field in a pod spec fails the strict check.
    let broken = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(&files[0]).unwrap();
    let file = broken.path().join("broken.yaml");
    std::fs::write(
        &file,
        original.replacen(
            "automountServiceAccountToken: false",
            "automountServiceAccountTokens: false",
            1,
        ),
    )
    .unwrap();
    assert!(
        !validate(&[file]).status.success(),
        "a broken manifest passed"
    );
}

/// Every (kind, document) of the manifests.
fn resources() -> Vec<(String, Value)> {
    manifests()
        .iter()
        .flat_map(|f| yaml_documents(f))
        .map(|d| (d["kind"].as_str().unwrap().to_owned(), d))
        .collect()
}

#[test]
fn kubernetes_workloads_run_vaultd_unprivileged_with_health_probes() {
    let all = resources();
    let workloads: Vec<&Value> = all
        .iter()
        .filter(|(k, _)| k == "StatefulSet" || k == "Deployment")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(workloads.len(), 2, "one StatefulSet and one Deployment");
    for workload in workloads {
        let name = workload["metadata"]["name"].as_str().unwrap();
        let pod = &workload["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}");
        assert_ne!(pod["securityContext"]["runAsUser"], 0, "{name}");
        let containers = pod["containers"]
            .as_array()
            .unwrap()
            .iter()
            .chain(pod["initContainers"].as_array().into_iter().flatten());
        for container in containers {
            let security = &container["securityContext"];
            assert_eq!(
                security["readOnlyRootFilesystem"], true,
                "{name}: {container}"
            );
            assert_eq!(security["allowPrivilegeEscalation"], false, "{name}");
            assert_eq!(security["capabilities"]["drop"], json!(["ALL"]), "{name}");
        }
        let vaultd = &pod["containers"][0];
        assert_eq!(
            vaultd["readinessProbe"]["httpGet"]["path"], "/v1/sys/health",
            "{name}"
        );
        assert!(vaultd["livenessProbe"].is_object(), "{name}");

        // Pods, Service and PodDisruptionBudget agree on the labels.
        let labels = &workload["spec"]["template"]["metadata"]["labels"];
        assert_eq!(
            &workload["spec"]["selector"]["matchLabels"], labels,
            "{name}"
        );
        for kind in ["Service", "PodDisruptionBudget"] {
            let selects = all.iter().any(|(k, d)| {
                k == kind
                    && (d["spec"]["selector"] == *labels
                        || d["spec"]["selector"]["matchLabels"] == *labels)
            });
            assert!(selects, "no {kind} selects the pods of {name}");
        }

        // The unseal key comes from a Secret, copied owner-only into the file
        // VAULTD_UNSEAL_KEY_FILE names (optional: there is no key before `operator init`).
        let config_map = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|v| v["configMap"]["name"].as_str())
            .unwrap();
        let (_, config) = all
            .iter()
            .find(|(k, d)| k == "ConfigMap" && d["metadata"]["name"] == config_map)
            .unwrap();
        let toml = config["data"]["vaultd.toml"].as_str().unwrap();
        let unseal_env = vaultd["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "VAULTD_UNSEAL_KEY_FILE")
            .unwrap_or_else(|| panic!("{name}: no VAULTD_UNSEAL_KEY_FILE"));
        assert_eq!(
            unseal_env["valueFrom"]["secretKeyRef"],
            json!({"name": "vaultd-unseal", "key": "unseal_key_file", "optional": true}),
            "{name}"
        );
        let unseal_volume = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["secret"]["secretName"] == "vaultd-unseal")
            .unwrap_or_else(|| panic!("{name}: the unseal key secret is not mounted"));
        assert_eq!(unseal_volume["secret"]["optional"], true, "{name}");
        let copies_into_run = pod["initContainers"][0]["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["mountPath"] == "/run/vaultd");
        assert!(
            copies_into_run,
            "{name}: the init container does not write /run/vaultd"
        );
        assert_config_accepted(name, toml);
        match workload["kind"].as_str().unwrap() {
            "StatefulSet" => {
                assert_eq!(
                    workload["spec"]["replicas"], 1,
                    "sled is one process's store"
                );
                assert!(workload["spec"]["volumeClaimTemplates"].is_array());
                assert_eq!(
                    pod["securityContext"]["fsGroupChangePolicy"],
                    "OnRootMismatch"
                );
            }
            _ => {
                assert!(toml.contains("storage_url = \"postgresql://"), "{name}");
                assert!(
                    workload["spec"]["replicas"].as_u64().unwrap() >= 2,
                    "{name}"
                );
            }
        }
    }
}

/// vaultd parses the config (no unknown or mistyped key) and gets as far as the files a
/// cluster mounts: it stops at the first one missing here.
fn assert_config_accepted(name: &str, toml: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vaultd.toml");
    std::fs::write(&file, toml).unwrap();
    let out = output(
        Command::new(e2e::binary("vaultd"))
            .args(["server", "--config"])
            .arg(&file)
            .env_remove("VAULTD_STORAGE_URL")
            .env("VAULTD_STORAGE_PASSWORD", "not-used")
            .env("VAULTD_UNSEAL_KEY_FILE", "/run/vaultd/unseal-key")
            .stdin(std::process::Stdio::null()),
    );
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success(),
        "{name}: vaultd started without its files"
    );
    assert!(
        !stderr.contains("unknown field") && !stderr.contains("invalid type"),
        "{name}: vaultd refuses the config: {stderr}"
    );
    assert!(
        stderr.contains("/vaultd/tls/tls.crt") || stderr.contains("/run/vaultd/unseal-key"),
        "{name}: {stderr}"
    );
}
