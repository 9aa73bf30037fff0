//! Start, stop, kill and restart the real `skein-collector` binary.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::api::Api;

/// How long a start may take until all three listeners are logged.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a SIGTERM'd collector may take to exit (the contract says 10 s).
pub const TERM_TIMEOUT: Duration = Duration::from_secs(10);

/// The listener addresses of one run.
#[derive(Debug, Clone, Default)]
struct Addrs {
    otlp_grpc: String,
    otlp_http: String,
    http: String,
}

/// A running (or stopped) collector on its own data dir. Dropping it kills
/// the process.
pub struct Collector {
    name: String,
    args: Vec<String>,
    data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    child: Option<Child>,
    addrs: Addrs,
    /// Log lines (stdout and stderr, ANSI codes stripped) of the current run.
    log: Arc<Mutex<Vec<String>>>,
    /// Listen on the previous run's addresses (see [`Collector::restart_same_ports`]).
    same_ports: bool,
}

impl Collector {
    /// Start a collector on a fresh temporary data dir and ephemeral ports.
    /// `args` are extra flags, e.g. `["--commit-interval", "200ms"]`.
    pub fn start(args: &[&str]) -> Collector {
        crate::install_crypto_provider();
        let tmp = tempfile::Builder::new()
            .prefix("skein-e2e-")
            .tempdir()
            .expect("creating a temporary data dir");
        let data_dir = tmp.path().join("data");
        let mut c = Collector::new(data_dir, args);
        c._tmp = Some(tmp);
        c.spawn();
        c
    }

    /// Like [`Collector::start`] with `--commit-interval 200ms`, the default
    /// for tests that query what they sent.
    pub fn start_fast(extra: &[&str]) -> Collector {
        let mut args = vec!["--commit-interval", "200ms"];
        args.extend_from_slice(extra);
        Collector::start(&args)
    }

    fn new(data_dir: PathBuf, args: &[&str]) -> Collector {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let test = std::thread::current()
            .name()
            .unwrap_or("test")
            .rsplit("::")
            .next()
            .unwrap_or("test")
            .to_string();
        let name = format!("{test}#{}", SEQ.fetch_add(1, Ordering::Relaxed));
        Collector {
            name,
            args: args.iter().map(|s| s.to_string()).collect(),
            data_dir,
            _tmp: None,
            child: None,
            addrs: Addrs::default(),
            log: Arc::new(Mutex::new(Vec::new())),
            same_ports: false,
        }
    }

    /// `http://127.0.0.1:PORT` of OTLP/gRPC.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.addrs.otlp_grpc)
    }

    /// `http://127.0.0.1:PORT` of OTLP/HTTP (append `/v1/traces`, `/v1/logs`).
    pub fn otlp_http_base(&self) -> String {
        format!("http://{}", self.addrs.otlp_http)
    }

    /// `http://127.0.0.1:PORT` of the query API, `/metrics` and debug hooks.
    pub fn http_base(&self) -> String {
        format!("http://{}", self.addrs.http)
    }

    /// A query client for this collector's HTTP API.
    pub fn api(&self) -> Api {
        Api::new(self.http_base())
    }

    /// The process id of the running collector (to send it signals).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The log lines of the current (or last) run, ANSI codes stripped.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL the collector and reap it.
    pub fn kill9(&mut self) {
        let mut child = self
            .child
            .take()
            .expect("kill9: the collector is not running");
        signal(&child, libc::SIGKILL);
        let _ = child.wait();
    }

    /// SIGTERM the collector and wait up to [`TERM_TIMEOUT`] for it to exit.
    /// Returns the exit status and how long the exit took; panics (after a
    /// SIGKILL) when it does not exit in time.
    pub fn terminate(&mut self) -> (ExitStatus, Duration) {
        let mut child = self
            .child
            .take()
            .expect("terminate: the collector is not running");
        let sent = Instant::now();
        signal(&child, libc::SIGTERM);
        loop {
            if let Some(status) = child.try_wait().expect("waiting for the collector") {
                return (status, sent.elapsed());
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

    /// Start again on the same data dir (new ports). The collector must have
    /// been stopped with [`Collector::kill9`] or [`Collector::terminate`].
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart: stop the collector first");
        self.spawn();
    }

    /// Start again on the same data dir and the same ports as the last run,
    /// for clients configured with fixed addresses (e.g. a `skein-agent`).
    pub fn restart_same_ports(&mut self) {
        assert!(self.child.is_none(), "restart: stop the collector first");
        self.same_ports = true;
        self.spawn();
        self.same_ports = false;
    }

    /// Spawn the binary and wait until it logs all three listeners.
    fn spawn(&mut self) {
        let bin = collector_binary();
        let mut cmd = Command::new(bin);
        // Only the flags below configure it: no SKEIN_* from the test's env.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SKEIN_") {
                cmd.env_remove(key);
            }
        }
        let port = |a: &str| {
            if self.same_ports {
                a.to_string()
            } else {
                "127.0.0.1:0".to_string()
            }
        };
        cmd.arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--otlp-grpc-addr", &port(&self.addrs.otlp_grpc)])
            .args(["--otlp-http-addr", &port(&self.addrs.otlp_http)])
            .args(["--http-addr", &port(&self.addrs.http)])
            .args(&self.args)
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
            if let Some(status) = child.try_wait().expect("polling the collector") {
                // The pipes are closed now: let the forwarders drain them.
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
                panic!(
                    "{prefix} did not log all three `listening` lines within {START_TIMEOUT:?}:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.addrs = addrs;
        self.child = Some(child);
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGKILL);
            let _ = child.wait();
        }
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: plain kill(2) on our own child's pid; it has not been reaped
    // yet (we own the `Child` and only reap through it), so the pid is ours.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Copy the collector's output to the test's stderr (captured by the test
/// harness, shown on failure) and into `log`.
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
            let line = strip_ansi(&line);
            eprintln!("{prefix} {line}");
            log.lock().unwrap().push(line);
        }
    })
}

/// Parse `listening <name>=<addr>` lines; `Some` once all three are there.
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
            "http" => addrs.http = addr,
            _ => {}
        }
    }
    let all = !addrs.otlp_grpc.is_empty() && !addrs.otlp_http.is_empty() && !addrs.http.is_empty();
    all.then_some(addrs)
}

/// Remove ANSI escape sequences (`ESC [ … letter`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The collector binary, built once per test process with the same profile
/// as the test binary (`SKEIN_COLLECTOR_BIN` overrides: use a prebuilt one).
pub fn collector_binary() -> &'static Path {
    // A failed build is remembered too, so the other tests fail fast with
    // the same message instead of each running cargo again.
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BIN.get_or_init(build_collector) {
        Ok(bin) => bin,
        Err(e) => panic!("{e}"),
    }
}

fn build_collector() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("SKEIN_COLLECTOR_BIN") {
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
    // Drop what `cargo test` sets for the test process: build scripts (ring's)
    // watch e.g. CARGO_PKG_NAME and CARGO_MANIFEST_DIR, so leaving them in
    // would make this build redo ring, rustls, tonic and the collector.
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
        // `--workspace` resolves features as `cargo build --workspace` does
        // (scripts/test runs that first), so this is a no-op there instead
        // of a second build of the collector with other features.
        .args([
            "build",
            "--workspace",
            "--bin",
            "skein-collector",
            "--profile",
            &profile,
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .map_err(|e| format!("running cargo build for skein-collector: {e}"))?;
    if !status.success() {
        return Err(format!(
            "cargo build --bin skein-collector failed: {status}"
        ));
    }
    let bin = profile_dir.join("skein-collector");
    if !bin.exists() {
        return Err(format!("{} missing after the build", bin.display()));
    }
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listening_lines() {
        let lines: Vec<String> = [
            "2026-01-01T00:00:00Z  INFO skein_collector::pipeline: listening otlp_grpc=127.0.0.1:1",
            "INFO x: listening otlp_http=127.0.0.1:2 extra=1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert!(listening(&lines).is_none());
        let mut lines = lines;
        lines.push(strip_ansi(
            "\u{1b}[32mINFO\u{1b}[0m listening http=127.0.0.1:3",
        ));
        let a = listening(&lines).unwrap();
        assert_eq!(
            (a.otlp_grpc.as_str(), a.otlp_http.as_str(), a.http.as_str()),
            ("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3")
        );
    }
}
