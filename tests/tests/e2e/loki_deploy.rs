//! `deploy/` is consistent: the compose file, Grafana provisioning,
//! Prometheus config and rules, Kubernetes manifests and the systemd unit
//! parse, and reference only files, ports, data source uids and
//! `skein-collector` flags that exist.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use skein_e2e::collector::collector_binary;
use yaml_rust2::{Yaml, YamlLoader};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .join("deploy")
}

fn yaml(rel: &str) -> Vec<Yaml> {
    let path = deploy().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{rel} does not parse: {e}"))
}

fn strs(y: &Yaml) -> Vec<String> {
    y.as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Long flags `skein-collector --help` lists.
fn collector_flags() -> BTreeSet<String> {
    let out = Command::new(collector_binary())
        .arg("--help")
        .output()
        .expect("running skein-collector --help");
    let help = String::from_utf8_lossy(&out.stdout);
    help.split_whitespace()
        .filter(|w| w.starts_with("--"))
        .map(|w| {
            w.trim_end_matches(',')
                .split(['=', '<', '['])
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// Every `--flag` in `args` must be a known collector flag; returns the
/// `--flag=value` values by flag.
fn check_flags(what: &str, args: &[String], known: &BTreeSet<String>) -> Vec<(String, String)> {
    let mut values = Vec::new();
    for a in args.iter().filter(|a| a.starts_with("--")) {
        let (flag, value) = a.split_once('=').unwrap_or((a.as_str(), ""));
        assert!(
            known.contains(flag),
            "{what}: unknown flag {flag} (known: {known:?})"
        );
        values.push((flag.to_string(), value.to_string()));
    }
    values
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {addr:?}"))
}

#[test]
fn compose_references_existing_files_ports_and_flags() {
    let flags = collector_flags();
    let doc = &yaml("docker-compose.yml")[0];
    let services = doc["services"].as_hash().expect("services");
    for name in ["collector", "prometheus", "grafana", "alertmanager"] {
        assert!(
            services.contains_key(&Yaml::String(name.into())),
            "compose lacks {name}"
        );
    }
    // every bind-mounted host path exists
    for (name, svc) in services {
        for v in strs(&svc["volumes"]) {
            let host = v.split(':').next().unwrap_or_default();
            if host.starts_with('.') {
                assert!(
                    deploy().join(host).exists(),
                    "{name:?}: mounted path {host} does not exist"
                );
            }
        }
    }
    let collector = &doc["services"]["collector"];
    let build = &collector["build"];
    let context = deploy().join(build["context"].as_str().expect("build context"));
    let dockerfile = context.join(build["dockerfile"].as_str().unwrap_or("Dockerfile"));
    assert!(
        dockerfile.exists(),
        "{} does not exist",
        dockerfile.display()
    );
    // The image's binaries are where the Dockerfile installs them, and the
    // service's command holds flags only (the entrypoint is the binary).
    let docker = std::fs::read_to_string(&dockerfile).expect("reading the Dockerfile");
    for svc in ["collector", "demo"] {
        let entry = strs(&doc["services"][svc]["entrypoint"]);
        assert_eq!(entry.len(), 1, "{svc}: entrypoint {entry:?}");
        assert!(
            docker.contains(&entry[0]),
            "{svc}: entrypoint {} is not installed by the Dockerfile",
            entry[0]
        );
        let args = strs(&doc["services"][svc]["command"]);
        for arg in &args {
            assert!(arg.starts_with("--"), "{svc}: {arg} is not a flag");
        }
        check_flags(svc, &args, &flags);
    }
    let command = strs(&collector["command"]);
    let values = check_flags("compose collector", &command, &flags);
    assert!(
        values
            .iter()
            .any(|(f, v)| f == "--alertmanager" && v == "http://alertmanager:9093"),
        "the compose collector must notify the compose Alertmanager"
    );
    let published: BTreeSet<u16> = strs(&collector["ports"])
        .iter()
        .map(|p| port_of(p))
        .collect();
    for (flag, value) in &values {
        if flag.ends_with("-addr") {
            assert!(
                published.contains(&port_of(value)),
                "{flag}={value} is not published ({published:?})"
            );
        }
    }
    for p in [4317, 4318, 16686] {
        assert!(published.contains(&p), "port {p} not published");
    }
}

#[test]
fn grafana_provisioning_is_consistent() {
    let compose = &yaml("docker-compose.yml")[0];
    let ds = &yaml("grafana/provisioning/datasources/skein.yml")[0];
    let list = ds["datasources"].as_vec().expect("datasources");
    let mut uids = BTreeSet::new();
    for d in list {
        let uid = d["uid"].as_str().expect("uid").to_string();
        let url = d["url"].as_str().expect("url");
        let host_port = url.trim_start_matches("http://");
        let (host, port) = host_port.split_once(':').expect("host:port");
        let svc = &compose["services"][host];
        assert!(!svc.is_badvalue(), "{uid}: {host} is not a compose service");
        match host {
            "collector" => {
                let cmd = strs(&svc["command"]);
                assert!(
                    cmd.iter()
                        .any(|a| a == &format!("--http-addr=0.0.0.0:{port}")),
                    "{uid}: collector does not serve HTTP on {port}"
                );
            }
            _ => assert!(
                strs(&svc["ports"])
                    .iter()
                    .any(|p| p.ends_with(&format!(":{port}"))),
                "{uid}: {host} does not expose {port}"
            ),
        }
        uids.insert(uid);
    }
    let jaeger = list
        .iter()
        .find(|d| d["type"].as_str() == Some("jaeger"))
        .expect("a Jaeger data source");
    let j = &jaeger["jsonData"];
    assert_eq!(j["nodeGraph"]["enabled"].as_bool(), Some(true));
    let t2l = &j["tracesToLogsV2"];
    assert_eq!(t2l["customQuery"].as_bool(), Some(true));
    assert!(uids.contains(t2l["datasourceUid"].as_str().expect("logs uid")));
    let query = t2l["query"].as_str().expect("custom query");
    assert!(
        query.contains("$${__span.traceId}") && !query.contains(" ${"),
        "variables must be escaped as $$ in provisioning: {query}"
    );
    // the custom query, once Grafana substituted it, is LogQL Skein accepts:
    // checked in the collector's LogQL parser tests; here the shape.
    assert!(query.starts_with("{service_name="));
    assert!(uids.contains(
        j["tracesToMetrics"]["datasourceUid"]
            .as_str()
            .expect("metrics uid")
    ));

    // dashboards provider path = where compose mounts the dashboards
    let prov = &yaml("grafana/provisioning/dashboards/skein.yml")[0];
    let path = prov["providers"][0]["options"]["path"]
        .as_str()
        .expect("path");
    let mounts = strs(&compose["services"]["grafana"]["volumes"]);
    let mount = mounts
        .iter()
        .find(|m| m.split(':').nth(1) == Some(path))
        .unwrap_or_else(|| panic!("grafana does not mount {path}: {mounts:?}"));
    let host_dir = deploy().join(mount.split(':').next().unwrap_or_default());
    let mut titles = BTreeSet::new();
    for entry in std::fs::read_dir(&host_dir).expect("dashboards dir") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("dashboard");
        let dash: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        titles.insert(dash["title"].as_str().unwrap_or_default().to_string());
        for panel in dash["panels"].as_array().expect("panels") {
            let uid = panel["datasource"]["uid"]
                .as_str()
                .expect("panel datasource uid");
            assert!(
                uids.contains(uid),
                "{}: unknown data source {uid}",
                path.display()
            );
            for t in panel["targets"].as_array().expect("targets") {
                assert!(t["expr"].as_str().is_some_and(|e| !e.is_empty()));
            }
        }
    }
    for want in ["Skein overview", "Services RED", "Liveness"] {
        assert!(
            titles.contains(want),
            "dashboard {want} missing: {titles:?}"
        );
    }
}

#[test]
fn prometheus_alertmanager_kubernetes_systemd() {
    let flags = collector_flags();
    // prometheus.yml: rule files exist, scrapes the collector's HTTP port
    let prom = &yaml("prometheus/prometheus.yml")[0];
    for f in strs(&prom["rule_files"]) {
        assert!(
            deploy().join("prometheus").join(&f).exists(),
            "rule file {f}"
        );
    }
    let jobs = prom["scrape_configs"].as_vec().expect("scrape_configs");
    let collector_job = jobs
        .iter()
        .find(|j| j["job_name"].as_str() == Some("skein-collector"))
        .expect("collector job");
    assert_eq!(
        strs(&collector_job["static_configs"][0]["targets"]),
        ["collector:16686"]
    );
    if Path::new("/usr/bin/promtool").exists() {
        for args in [
            vec!["check", "rules", "prometheus/skein-rules.yml"],
            vec!["check", "config", "prometheus/prometheus.yml"],
        ] {
            let out = Command::new("/usr/bin/promtool")
                .args(&args)
                .current_dir(deploy())
                .output()
                .expect("promtool");
            assert!(
                out.status.success(),
                "promtool {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    } else {
        eprintln!("promtool not installed: rule file only parsed");
        let rules = &yaml("prometheus/skein-rules.yml")[0];
        assert!(rules["groups"].as_vec().is_some_and(|g| !g.is_empty()));
    }
    let am = &yaml("alertmanager/alertmanager.yml")[0];
    assert!(am["route"]["receiver"].as_str().is_some());

    // kubernetes: Service ports, StatefulSet with a volume claim, known flags
    let docs = yaml("kubernetes/collector.yaml");
    let service = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("Service"))
        .expect("Service");
    let ports: BTreeSet<i64> = service["spec"]["ports"]
        .as_vec()
        .expect("ports")
        .iter()
        .filter_map(|p| p["port"].as_i64())
        .collect();
    assert_eq!(ports, BTreeSet::from([4317, 4318, 16686]));
    let sts = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("StatefulSet"))
        .expect("StatefulSet");
    assert!(sts["spec"]["volumeClaimTemplates"].as_vec().is_some());
    let container = &sts["spec"]["template"]["spec"]["containers"][0];
    check_flags("kubernetes collector", &strs(&container["args"]), &flags);

    // systemd: ExecStart flags exist
    let unit = std::fs::read_to_string(deploy().join("systemd/skein-collector.service"))
        .expect("unit file");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let args: Vec<String> = exec
        .split_whitespace()
        .skip(1)
        .map(str::to_string)
        .collect();
    check_flags("systemd unit", &args, &flags);
    assert!(deploy().join("README.md").exists());
}
