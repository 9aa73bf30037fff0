//! End-to-end test harness for Skein.
//!
//! The tests in `tests/tests/e2e/` (one test binary, a module per area) start the real `skein-collector` binary
//! ([`Collector`]), feed it with real clients (the Rust and Python
//! OpenTelemetry SDKs, raw OTLP over HTTP and gRPC built with [`otlp`]) and
//! read everything back through the public query APIs ([`Api`]).
//!
//! Run: `cargo test -p skein-e2e` (or `scripts/test` for everything). The
//! harness builds `skein-collector` itself with the test binary's profile
//! (`SKEIN_COLLECTOR_BIN=/path` uses a prebuilt one instead); the Python
//! tests install the OpenTelemetry SDK into `target/e2e-venv` on first use
//! (needs `python3 -m venv` and PyPI).
//!
//! Rules the helpers follow so tests can run in parallel and never hang:
//! every collector gets its own temporary data dir and ephemeral ports, and
//! every wait is a poll with a deadline ([`wait_until`], [`wait_for`]).

pub mod agent;
pub mod alerts;
pub mod api;
pub mod calls;
pub mod chain;
pub mod chains;
pub mod collector;
pub mod demo;
pub mod etcd;
pub mod otlp;
pub mod prometheus;
pub mod python;
pub mod registry;
pub mod stream;
pub mod ui;

use std::time::{Duration, Instant};

pub use api::{Api, JaegerSpan, JaegerTrace};
pub use collector::Collector;

/// An HTTP client builder with ring installed as the rustls crypto provider:
/// in a workspace build reqwest has `rustls-no-provider` (from skein-agent),
/// and building any client (ours or the OTel exporter's) without a provider
/// panics.
pub fn http_client() -> reqwest::blocking::ClientBuilder {
    install_crypto_provider();
    reqwest::blocking::Client::builder()
}

/// Make ring the process's rustls crypto provider (idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// How long data may take from an acknowledgement to being queryable in the
/// tests (the contract says ~2 s; generous for a loaded 2-core machine).
pub const QUERYABLE_WITHIN: Duration = Duration::from_secs(20);

/// How often [`wait_until`] and [`wait_for`] poll.
const POLL: Duration = Duration::from_millis(50);

/// Poll `f` every 50 ms until it returns `Some`, or panic after `timeout`
/// naming `what` was awaited.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(POLL);
    }
}

/// Poll `f` every 50 ms until it returns true, or panic after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    wait_for(timeout, what, || f().then_some(()))
}

/// Like [`wait_until`], but returns whether the condition held in time
/// instead of panicking.
pub fn poll_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// The cargo target directory and profile directory of the running test
/// binary (`target/<profile>/deps/<test>-<hash>`).
pub(crate) fn target_dirs() -> (std::path::PathBuf, std::path::PathBuf) {
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe
        .parent()
        .expect("test binary has a parent dir")
        .to_path_buf();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    let profile_dir = dir;
    let target_dir = profile_dir
        .parent()
        .expect("profile dir has a parent (the target dir)")
        .to_path_buf();
    (target_dir, profile_dir)
}
