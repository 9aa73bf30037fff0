//! A real etcd server for the registry's etcd-source tests: `etcd` from the
//! Debian `etcd-server` package on free loopback ports with a temporary
//! data dir, driven with `etcdctl` (Debian `etcd-client`).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::wait_for;

/// A running etcd; dropping it kills the process.
pub struct Etcd {
    child: Child,
    endpoint: String,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("finding a free port")
}

impl Etcd {
    /// Start etcd and wait until it answers.
    pub fn start() -> Etcd {
        let dir = tempfile::Builder::new()
            .prefix("skein-etcd-")
            .tempdir()
            .expect("temp dir for etcd");
        let (client, peer) = (free_port(), free_port());
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let child = Command::new("etcd")
            .arg("--name=skein-test")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={endpoint}"))
            .arg(format!("--advertise-client-urls={endpoint}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=skein-test={peer_url}"))
            .arg("--log-level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting etcd (Debian package etcd-server)");
        let etcd = Etcd {
            child,
            endpoint,
            _dir: dir,
        };
        wait_for(Duration::from_secs(20), "etcd to answer", || {
            etcd.try_ctl(&["endpoint", "health"]).ok()
        });
        etcd
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn try_ctl(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint))
            .args(args)
            .output()
            .map_err(|e| format!("running etcdctl (Debian package etcd-client): {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Run `etcdctl` against this server; panics on failure.
    pub fn ctl(&self, args: &[&str]) -> String {
        self.try_ctl(args)
            .unwrap_or_else(|e| panic!("etcdctl {args:?}: {e}"))
    }

    /// Grant a lease of `ttl_secs`; returns its id (hex, as etcdctl prints it).
    pub fn grant(&self, ttl_secs: u32) -> String {
        let out = self.ctl(&["lease", "grant", &ttl_secs.to_string()]);
        // "lease 694d7a0c5f2b0a05 granted with TTL(3s)"
        out.split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("unexpected etcdctl output: {out}"))
            .to_string()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
