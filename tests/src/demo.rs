//! Run `skein-collector --demo --demo-collector URL`: the demo system alone
//! (its in-process agents and instrumented services), sending to a collector
//! started elsewhere. Dropping it kills the process.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::collector::{collector_binary, TERM_TIMEOUT};

/// A running demo-only process.
pub struct DemoOnly {
    child: Option<Child>,
    _state: tempfile::TempDir,
}

impl DemoOnly {
    /// Start the demo against a collector's HTTP API and OTLP/gRPC URLs.
    pub fn start(collector_http: &str, collector_otlp: &str) -> DemoOnly {
        let state = tempfile::Builder::new()
            .prefix("skein-e2e-demo-")
            .tempdir()
            .expect("creating a temporary state dir");
        let mut cmd = Command::new(collector_binary());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SKEIN_") {
                cmd.env_remove(key);
            }
        }
        let child = cmd
            .arg("--demo")
            .arg("--data-dir")
            .arg(state.path())
            .args(["--demo-collector", collector_http])
            .args(["--demo-collector-otlp", collector_otlp])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning skein-collector --demo --demo-collector");
        DemoOnly {
            child: Some(child),
            _state: state,
        }
    }

    /// SIGTERM and wait up to [`TERM_TIMEOUT`] for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the demo is not running");
        signal(&child, libc::SIGTERM);
        let sent = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("waiting for the demo") {
                return status;
            }
            if sent.elapsed() > TERM_TIMEOUT {
                signal(&child, libc::SIGKILL);
                let _ = child.wait();
                panic!("the demo did not exit within {TERM_TIMEOUT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for DemoOnly {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGKILL);
            let _ = child.wait();
        }
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: kill(2) on our own, not yet reaped child.
    unsafe {
        libc::kill(pid, sig);
    }
}
