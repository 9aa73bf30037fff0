//! Start, stop, kill and restart the real `skein-agent` binary, pointed at
//! a running [`Collector`](crate::Collector).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a start may take until all three listeners are logged.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a SIGTERM'd agent may take to exit (its drain deadline is 5 s).
pub const TERM_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Default)]
struct Addrs {
    otlp_grpc: String,
    otlp_http: String,
    admin: String,
}

/// A running (or stopped) agent with its own state dir. Dropping it kills
/// the process.
pub struct Agent {
    name: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    state_dir: PathBuf,
    _tmp: tempfile::TempDir,
    child: Option<Child>,
    addrs: Addrs,
    log: Arc<Mutex<Vec<String>>>,
    http: reqwest::blocking::Client,
}

/// Builder for [`Agent`]: the collector it forwards to, extra flags and env.
pub struct AgentBuilder {
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl AgentBuilder {
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn args<S: AsRef<str>>(mut self, a: &[S]) -> Self {
        self.args.extend(a.iter().map(|s| s.as_ref().to_string()));
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Start on a fresh temporary state dir and ephemeral ports.
    pub fn start(self) -> Agent {
        let tmp = tempfile::Builder::new()
            .prefix("skein-agent-e2e-")
            .tempdir()
            .expect("creating a temporary state dir");
        let test = std::thread::current()
            .name()
            .unwrap_or("test")
            .rsplit("::")
            .next()
            .unwrap_or("test")
            .to_string();
        let mut a = Agent {
            name: format!("agent:{test}"),
            args: self.args,
            env: self.env,
            state_dir: tmp.path().join("state"),
            _tmp: tmp,
            child: None,
            addrs: Addrs::default(),
            log: Arc::new(Mutex::new(Vec::new())),
            http: crate::http_client()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("HTTP client"),
        };
        a.spawn(false);
        a
    }
}

impl Agent {
    /// An agent forwarding to `collector` (its HTTP API and OTLP/gRPC).
    pub fn builder(collector: &crate::Collector) -> AgentBuilder {
        AgentBuilder {
            args: vec![
                "--collector".into(),
                collector.http_base(),
                "--collector-otlp".into(),
                collector.grpc_endpoint(),
                "--batch-timeout".into(),
                "50ms".into(),
            ],
            env: Vec::new(),
        }
    }

    /// An agent forwarding to explicit addresses (e.g. nothing listening).
    pub fn builder_for(http_base: &str, grpc_endpoint: &str) -> AgentBuilder {
        AgentBuilder {
            args: vec![
                "--collector".into(),
                http_base.into(),
                "--collector-otlp".into(),
                grpc_endpoint.into(),
                "--batch-timeout".into(),
                "50ms".into(),
            ],
            env: Vec::new(),
        }
    }

    /// `http://127.0.0.1:PORT` of the agent's OTLP/gRPC receiver.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.addrs.otlp_grpc)
    }

    /// `http://127.0.0.1:PORT` of the agent's OTLP/HTTP receiver.
    pub fn otlp_http_base(&self) -> String {
        format!("http://{}", self.addrs.otlp_http)
    }

    /// `http://127.0.0.1:PORT` of the admin endpoint.
    pub fn admin_base(&self) -> String {
        format!("http://{}", self.addrs.admin)
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// `GET /status` as JSON.
    pub fn status(&self) -> Value {
        let url = format!("{}/status", self.admin_base());
        let resp = self
            .http
            .get(&url)
            .send()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        resp.json()
            .unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
    }

    /// `GET /metrics` as text.
    pub fn metrics(&self) -> String {
        let url = format!("{}/metrics", self.admin_base());
        let resp = self
            .http
            .get(&url)
            .send()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        resp.text().expect("metrics text")
    }

    /// The value of one sample line of `/metrics` (`name{labels}`), 0 when absent.
    pub fn metric(&self, series: &str) -> f64 {
        metric_value(&self.metrics(), series)
    }

    /// GET an admin path; the status code.
    pub fn admin_status(&self, path: &str) -> u16 {
        let url = format!("{}{path}", self.admin_base());
        self.http
            .get(&url)
            .send()
            .map(|r| r.status().as_u16())
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }

    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("kill9: the agent is not running");
        signal(&child, libc::SIGKILL);
        let _ = child.wait();
    }

    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self
            .child
            .take()
            .expect("terminate: the agent is not running");
        let sent = Instant::now();
        signal(&child, libc::SIGTERM);
        loop {
            if let Some(status) = child.try_wait().expect("waiting for the agent") {
                return status;
            }
            if sent.elapsed() > TERM_TIMEOUT {
                signal(&child, libc::SIGKILL);
                let _ = child.wait();
                panic!(
                    "[{}] did not exit within {TERM_TIMEOUT:?} of SIGTERM",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Start again on the same state dir (new ports).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart: stop the agent first");
        self.spawn(false);
    }

    /// Start again on the same state dir and the same ports.
    pub fn restart_same_ports(&mut self) {
        assert!(self.child.is_none(), "restart: stop the agent first");
        self.spawn(true);
    }

    fn spawn(&mut self, same_ports: bool) {
        let bin = agent_binary();
        let mut cmd = Command::new(bin);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SKEIN_") {
                cmd.env_remove(key);
            }
        }
        let port = |a: &str| {
            if same_ports {
                a.to_string()
            } else {
                "127.0.0.1:0".to_string()
            }
        };
        cmd.arg("--state-dir")
            .arg(&self.state_dir)
            .args(["--otlp-grpc-addr", &port(&self.addrs.otlp_grpc)])
            .args(["--otlp-http-addr", &port(&self.addrs.otlp_http)])
            .args(["--admin-addr", &port(&self.addrs.admin)])
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
        let log = Arc::new(Mutex::new(Vec::new()));
        self.log = log.clone();
        let prefix = format!("[{} pid {}]", self.name, child.id());
        let forwarders = [
            forward(child.stderr.take().expect("piped stderr"), &prefix, &log),
            forward(child.stdout.take().expect("piped stdout"), &prefix, &log),
        ];
        let started = Instant::now();
        let addrs = loop {
            if let Some(addrs) = listening(&log.lock().unwrap()) {
                break addrs;
            }
            if let Some(status) = child.try_wait().expect("polling the agent") {
                for f in forwarders {
                    let _ = f.join();
                }
                panic!(
                    "{prefix} exited with {status} before listening:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
            if started.elapsed() > START_TIMEOUT {
                signal(&child, libc::SIGKILL);
                let _ = child.wait();
                panic!("{prefix} did not log its listeners within {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.addrs = addrs;
        self.child = Some(child);
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGKILL);
            let _ = child.wait();
        }
    }
}

/// The value of `series` (exact text before the value) in Prometheus text.
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series)
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .unwrap_or(0.0)
}

fn signal(child: &Child, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: kill(2) on our own child, not yet reaped (we reap only through `Child`).
    unsafe {
        libc::kill(pid, sig);
    }
}

fn forward(
    stream: impl Read + Send + 'static,
    prefix: &str,
    log: &Arc<Mutex<Vec<String>>>,
) -> std::thread::JoinHandle<()> {
    let prefix = prefix.to_string();
    let log = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            eprintln!("{prefix} {line}");
            log.lock().unwrap().push(line);
        }
    })
}

fn listening(lines: &[String]) -> Option<Addrs> {
    let mut addrs = Addrs::default();
    for line in lines {
        let Some(rest) = line.split("listening ").nth(1) else {
            continue;
        };
        let Some((name, addr)) = rest.split_once('=') else {
            continue;
        };
        let addr = addr.split_whitespace().next().unwrap_or("").to_string();
        match name {
            "otlp_grpc" => addrs.otlp_grpc = addr,
            "otlp_http" => addrs.otlp_http = addr,
            "admin" => addrs.admin = addr,
            _ => {}
        }
    }
    let all = !addrs.otlp_grpc.is_empty() && !addrs.otlp_http.is_empty() && !addrs.admin.is_empty();
    all.then_some(addrs)
}

/// The agent binary, built once per test process with the test's profile
/// (`SKEIN_AGENT_BIN` overrides).
pub fn agent_binary() -> &'static Path {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BIN.get_or_init(build_agent) {
        Ok(bin) => bin,
        Err(e) => panic!("{e}"),
    }
}

fn build_agent() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("SKEIN_AGENT_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let (target_dir, profile_dir) = crate::target_dirs();
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(other) => other.to_string(),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace");
    let mut cmd = Command::new(&cargo);
    // As in collector.rs: drop cargo's per-package env so nothing rebuilds.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let per_package = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|p| key.starts_with(p));
        if per_package
            || key == "CARGO_PRIMARY_PACKAGE"
            || key == "CARGO_TARGET_TMPDIR"
            || key == "OUT_DIR"
        {
            cmd.env_remove(&*key);
        }
    }
    let status = cmd
        .current_dir(workspace)
        .args([
            "build",
            "--workspace",
            "--bin",
            "skein-agent",
            "--profile",
            &profile,
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .map_err(|e| format!("running cargo build for skein-agent: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build --bin skein-agent failed: {status}"));
    }
    let bin = profile_dir.join("skein-agent");
    if !bin.exists() {
        return Err(format!("{} missing after the build", bin.display()));
    }
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listening_lines_and_metrics() {
        let lines: Vec<String> = [
            "INFO skein_agent::pipeline: listening otlp_grpc=127.0.0.1:1",
            "INFO x: listening otlp_http=127.0.0.1:2",
            "INFO x: listening admin=127.0.0.1:3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let a = listening(&lines).unwrap();
        assert_eq!(a.admin, "127.0.0.1:3");
        let text = "# HELP x\nx_total{signal=\"traces\"} 12\ny 3.5\n";
        assert_eq!(metric_value(text, "x_total{signal=\"traces\"}"), 12.0);
        assert_eq!(metric_value(text, "y"), 3.5);
        assert_eq!(metric_value(text, "z"), 0.0);
    }
}
