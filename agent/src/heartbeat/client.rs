//! The collector's registry API, as the agent uses it:
//! `POST /api/v1/registry/heartbeat` and
//! `DELETE /api/v1/registry/instances/{service}/{instance}?reason=`.
//! Owns request and reply shapes; no timing, no state.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One heartbeat (register or renew).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HeartbeatRequest {
    pub service: String,
    pub instance: String,
    /// e.g. `30s`.
    pub ttl: String,
    pub heartbeat_revision: u64,
    pub address: String,
    pub metadata: BTreeMap<String, String>,
    /// `passing`, `warning` or `critical`.
    pub health: &'static str,
}

/// The collector's answer to an accepted heartbeat.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct HeartbeatReply {
    #[serde(default)]
    pub lease_id: serde_json::Value,
    #[serde(default)]
    pub revision: u64,
    #[serde(default)]
    pub heartbeat_revision: u64,
    #[serde(default)]
    pub expires_at_unix_ms: u64,
}

/// Why a registry call failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// 409: the collector has accepted `last_accepted` already.
    #[error("stale heartbeat revision (the collector accepted {last_accepted})")]
    Stale { last_accepted: u64 },
    #[error("the collector answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("could not reach the collector: {0}")]
    Transport(String),
}

/// HTTP client for the registry endpoints.
#[derive(Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    timeout: Duration,
}

#[derive(Deserialize)]
struct StaleBody {
    last_accepted: u64,
}

impl RegistryClient {
    pub fn new(
        http: reqwest::Client,
        base: &str,
        token: Option<String>,
        timeout: Duration,
    ) -> Self {
        RegistryClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
            timeout,
        }
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    pub async fn heartbeat(&self, hb: &HeartbeatRequest) -> Result<HeartbeatReply, RegistryError> {
        let url = format!("{}/api/v1/registry/heartbeat", self.base);
        let resp = self
            .auth(self.http.post(&url).json(hb).timeout(self.timeout))
            .send()
            .await
            .map_err(|e| RegistryError::Transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| RegistryError::Transport(e.to_string()))?;
        match status {
            200..=299 => serde_json::from_slice(&body).map_err(|e| RegistryError::Status {
                status,
                body: format!(
                    "undecodable reply ({e}): {}",
                    String::from_utf8_lossy(&body)
                ),
            }),
            409 => match serde_json::from_slice::<StaleBody>(&body) {
                Ok(s) => Err(RegistryError::Stale {
                    last_accepted: s.last_accepted,
                }),
                Err(_) => Err(RegistryError::Status {
                    status,
                    body: String::from_utf8_lossy(&body).into_owned(),
                }),
            },
            _ => Err(RegistryError::Status {
                status,
                body: String::from_utf8_lossy(&body).chars().take(500).collect(),
            }),
        }
    }

    pub async fn deregister(
        &self,
        service: &str,
        instance: &str,
        reason: &str,
    ) -> Result<(), RegistryError> {
        let url = format!(
            "{}/api/v1/registry/instances/{}/{}",
            self.base,
            encode_segment(service),
            encode_segment(instance)
        );
        let resp = self
            .auth(
                self.http
                    .delete(&url)
                    .query(&[("reason", reason)])
                    .timeout(self.timeout),
            )
            .send()
            .await
            .map_err(|e| RegistryError::Transport(e.to_string()))?;
        let status = resp.status().as_u16();
        if resp.status().is_success() || status == 404 {
            return Ok(());
        }
        let body = resp.text().await.unwrap_or_default();
        Err(RegistryError::Status { status, body })
    }
}

/// Percent-encode one URL path segment (RFC 3986 unreserved kept).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
