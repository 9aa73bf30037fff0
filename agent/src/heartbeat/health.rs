//! Health checks of the local service: an HTTP URL (2xx), a TCP address
//! (connects) or a shell command (exit 0), each within `--health-timeout`.
//! Owns nothing but the probe; the gate decides what a result means.

use std::time::Duration;

use crate::config::HealthCheck;

/// Runs the configured probe.
#[derive(Clone)]
pub struct Prober {
    check: HealthCheck,
    timeout: Duration,
    http: reqwest::Client,
}

impl Prober {
    pub fn new(check: HealthCheck, timeout: Duration, http: reqwest::Client) -> Self {
        Prober {
            check,
            timeout,
            http,
        }
    }

    /// `Ok(())` when healthy, otherwise why not.
    pub async fn probe(&self) -> Result<(), String> {
        let t = self.timeout;
        match &self.check {
            HealthCheck::None => Ok(()),
            HealthCheck::Url(url) => {
                let resp = self
                    .http
                    .get(url)
                    .timeout(t)
                    .send()
                    .await
                    .map_err(|e| format!("GET {url}: {e}"))?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("GET {url}: {}", resp.status()))
                }
            }
            HealthCheck::Tcp(addr) => {
                match tokio::time::timeout(t, tokio::net::TcpStream::connect(addr.as_str())).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(format!("connect {addr}: {e}")),
                    Err(_) => Err(format!("connect {addr}: no answer within {t:?}")),
                }
            }
            HealthCheck::Cmd(cmd) => {
                let child = tokio::process::Command::new("sh")
                    .arg("-c")
                    .arg(cmd)
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .kill_on_drop(true)
                    .status();
                match tokio::time::timeout(t, child).await {
                    Ok(Ok(s)) if s.success() => Ok(()),
                    Ok(Ok(s)) => Err(format!("`{cmd}` exited with {s}")),
                    Ok(Err(e)) => Err(format!("`{cmd}`: {e}")),
                    Err(_) => Err(format!("`{cmd}` did not finish within {t:?}")),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tcp_and_cmd_probes() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let http = crate::tls::http_client_builder().build().unwrap();
        let t = Duration::from_secs(2);
        assert!(Prober::new(HealthCheck::Tcp(addr.clone()), t, http.clone())
            .probe()
            .await
            .is_ok());
        drop(l);
        assert!(Prober::new(HealthCheck::Tcp(addr), t, http.clone())
            .probe()
            .await
            .is_err());
        assert!(
            Prober::new(HealthCheck::Cmd("true".into()), t, http.clone())
                .probe()
                .await
                .is_ok()
        );
        let e = Prober::new(HealthCheck::Cmd("exit 3".into()), t, http.clone())
            .probe()
            .await;
        assert!(e.unwrap_err().contains("exit"));
        let slow = Prober::new(
            HealthCheck::Cmd("sleep 5".into()),
            Duration::from_millis(50),
            http,
        );
        assert!(slow.probe().await.unwrap_err().contains("did not finish"));
    }
}
