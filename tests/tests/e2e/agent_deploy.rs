//! The deployment files in `deploy/` and the `Dockerfile`: the Kubernetes
//! manifests parse and carry what a working agent needs (state volume,
//! readiness on /readyz, resource requests, downward-API env), and every
//! `--flag` they, the systemd unit and the Dockerfile use exists in
//! `skein-agent --help`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;
use skein_e2e::agent::agent_binary;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn docs(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repo().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{file}: {e}")))
        .collect()
}

use serde::Deserialize;

fn help_flags() -> BTreeSet<String> {
    let out = Command::new(agent_binary())
        .arg("--help")
        .output()
        .expect("skein-agent --help");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    flags_in(&text)
}

/// Every `--flag` token in `text`.
fn flags_in(text: &str) -> BTreeSet<String> {
    text.split(|c: char| c.is_whitespace() || c == '"' || c == ',' || c == '[' || c == ']')
        .filter(|t| t.starts_with("--") && t.len() > 2)
        .map(|t| t.split('=').next().unwrap_or(t).to_string())
        .collect()
}

fn str_of<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str()
        .unwrap_or_else(|| panic!("missing string at {path:?}"))
}

fn agent_container(doc: &Value) -> &Value {
    doc["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .expect("containers")
        .iter()
        .find(|c| c["name"] == "skein-agent")
        .expect("a skein-agent container")
}

fn args_of(c: &Value) -> Vec<String> {
    c["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string arg").to_string())
        .collect()
}

fn check_agent_container(file: &str, doc: &Value, known: &BTreeSet<String>) -> Vec<String> {
    for key in ["apiVersion", "kind"] {
        assert!(doc[key].as_str().is_some(), "{file}: {key}");
    }
    assert!(!str_of(doc, &["metadata", "name"]).is_empty());
    let selector = &doc["spec"]["selector"]["matchLabels"];
    let labels = &doc["spec"]["template"]["metadata"]["labels"];
    assert!(
        selector.as_mapping().is_some_and(|m| !m.is_empty()),
        "{file}: selector"
    );
    for (k, v) in selector.as_mapping().expect("matchLabels") {
        assert_eq!(&labels[k], v, "{file}: the selector matches the pod labels");
    }
    let c = agent_container(doc);
    assert!(!str_of(c, &["image"]).is_empty());
    assert_eq!(
        str_of(c, &["readinessProbe", "httpGet", "path"]),
        "/readyz",
        "{file}"
    );
    assert_eq!(
        str_of(c, &["livenessProbe", "httpGet", "path"]),
        "/healthz",
        "{file}"
    );
    for r in ["cpu", "memory"] {
        assert!(
            c["resources"]["requests"][r].as_str().is_some(),
            "{file}: requests.{r}"
        );
    }
    let args = args_of(c);
    for a in &args {
        let flag = a.split('=').next().unwrap_or(a);
        assert!(
            flag.starts_with("--"),
            "{file}: argument '{a}' is not a --flag"
        );
        assert!(
            known.contains(flag),
            "{file}: {flag} is not in skein-agent --help"
        );
    }
    // The admin port must be reachable for the kubelet's probes.
    assert!(
        args.iter().any(|a| a.starts_with("--admin-addr=0.0.0.0:")),
        "{file}: admin on all interfaces"
    );
    // The state dir is a mounted volume.
    let state = args
        .iter()
        .find_map(|a| a.strip_prefix("--state-dir="))
        .unwrap_or_else(|| panic!("{file}: --state-dir"));
    let mount = c["volumeMounts"]
        .as_sequence()
        .expect("volumeMounts")
        .iter()
        .find(|m| m["mountPath"] == state)
        .unwrap_or_else(|| panic!("{file}: a volume mounted at {state}"));
    let vol_name = str_of(mount, &["name"]);
    let volumes = doc["spec"]["template"]["spec"]["volumes"]
        .as_sequence()
        .expect("volumes");
    assert!(
        volumes.iter().any(|v| v["name"] == vol_name),
        "{file}: volume {vol_name} declared"
    );
    args
}

#[test]
fn kubernetes_manifests_are_complete_and_use_real_flags() {
    let known = help_flags();
    assert!(
        known.contains("--buffer-max-bytes") && known.contains("--tail"),
        "{known:?}"
    );

    let sidecar = docs("deploy/kubernetes/agent-sidecar.yaml");
    let deploy = sidecar
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    let args = check_agent_container("agent-sidecar.yaml", deploy, &known);
    assert!(
        args.iter().any(|a| a.starts_with("--service=")),
        "the sidecar registers its service"
    );
    let spec = &deploy["spec"]["template"]["spec"];
    assert!(
        spec["containers"].as_sequence().expect("containers").len() >= 2,
        "app + agent"
    );
    let state_vol = spec["volumes"]
        .as_sequence()
        .expect("volumes")
        .iter()
        .find(|v| v["emptyDir"].is_mapping())
        .expect("an emptyDir state volume");
    assert!(state_vol["name"].as_str().is_some());
    let env: Vec<&str> = agent_container(deploy)["env"]
        .as_sequence()
        .expect("env")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    for var in ["K8S_POD_NAME", "K8S_NAMESPACE_NAME"] {
        assert!(env.contains(&var), "downward-API {var}");
    }

    let ds = docs("deploy/kubernetes/agent-daemonset.yaml");
    let ds = ds
        .iter()
        .find(|d| d["kind"] == "DaemonSet")
        .expect("a DaemonSet");
    let args = check_agent_container("agent-daemonset.yaml", ds, &known);
    assert!(
        args.iter().any(|a| a.starts_with("--tail=")),
        "the DaemonSet tails host logs"
    );
    let c = agent_container(ds);
    assert!(c["volumeMounts"]
        .as_sequence()
        .expect("mounts")
        .iter()
        .any(|m| m["mountPath"] == "/var/log"));
}

#[test]
fn systemd_unit_and_dockerfile_use_real_flags() {
    let known = help_flags();
    let unit =
        std::fs::read_to_string(repo().join("deploy/systemd/skein-agent.service")).expect("unit");
    for section in ["[Unit]", "[Service]", "[Install]"] {
        assert!(unit.contains(section), "{section}");
    }
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    assert!(exec.starts_with("/usr/local/bin/skein-agent"));
    for flag in flags_in(exec) {
        assert!(
            known.contains(&flag),
            "systemd unit: {flag} is not in skein-agent --help"
        );
    }
    assert!(
        unit.lines().any(|l| l.trim() == "KillSignal=SIGTERM"),
        "SIGTERM deregisters"
    );

    let docker = std::fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile");
    let froms: Vec<&str> = docker.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert!(froms.len() >= 2, "multi-stage: {froms:?}");
    assert!(
        froms.last().is_some_and(|f| f.contains("distroless")),
        "a distroless final image"
    );
    for bin in ["skein-collector", "skein-agent"] {
        assert!(docker.contains(&format!("--bin {bin}")), "builds {bin}");
        assert!(
            docker.contains(&format!("/usr/local/bin/{bin}")),
            "ships {bin}"
        );
    }
}
