//! The etcd source (`--etcd-endpoint`, `--etcd-prefix`): mirrors keys that
//! services register with leases (go-zero, Kratos, go-micro style:
//! `<prefix><service>/<instance>` → an address or a JSON document) into the
//! registry, so etcd users get liveness without an agent.
//!
//! - A key put under the prefix registers (or updates, or revives) the
//!   instance; its etcd `mod_revision` is the heartbeat revision, so a
//!   replayed event is stale and changes nothing.
//! - A key deleted: if its lease no longer exists (`LeaseTimeToLive` says
//!   TTL -1) the lease expired or was revoked → `expired`; if the lease is
//!   still alive, or the key had none, it was deleted on purpose →
//!   `deregistered`.
//! - The applied etcd revision is stored durably in the registry; after a
//!   disconnect or a Skein restart the watch resumes at the next revision,
//!   so no event is missed. If etcd compacted that revision, the source
//!   resynchronises with a full read of the prefix.
//!
//! Expiry of these instances is etcd's business: Skein does not time them.
//! Owns the etcd connection only; it changes the registry through its
//! public methods.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, EventType, GetOptions, KeyValue, WatchOptions};
use tokio_util::sync::CancellationToken;

use super::model::{Health, Heartbeat, Source};
use super::{Registry, RegistryError};

/// Metadata key holding the etcd lease id (decimal) of an etcd instance.
pub const LEASE_KEY: &str = "etcd.lease";
/// Metadata key holding the full etcd key.
pub const KEY_KEY: &str = "etcd.key";
const MAX_BACKOFF: Duration = Duration::from_secs(10);
const MAX_METADATA: usize = 64;
const MAX_TEXT: usize = 1024;

/// Where to watch.
#[derive(Debug, Clone, PartialEq)]
pub struct EtcdConfig {
    pub endpoints: Vec<String>,
    pub prefix: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("etcd: {0}")]
    Client(#[from] etcd_client::Error),
    #[error("{0}")]
    Registry(#[from] RegistryError),
    #[error("etcd watch ended: {0}")]
    Watch(String),
}

/// Run the source until `cancel`, reconnecting with backoff.
pub async fn run(cfg: EtcdConfig, registry: Registry, cancel: CancellationToken) {
    let mut backoff = Duration::from_millis(250);
    loop {
        let result = tokio::select! {
            _ = cancel.cancelled() => return,
            r = session(&cfg, &registry) => r,
        };
        if let Err(e) = result {
            registry.metrics().etcd_errors.inc();
            tracing::warn!(endpoints = ?cfg.endpoints, "etcd source: {e}; reconnecting in {backoff:?}");
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn session(cfg: &EtcdConfig, registry: &Registry) -> Result<(), EtcdError> {
    let opts = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
    let mut client = Client::connect(&cfg.endpoints, Some(opts)).await?;
    let mut start = match registry.etcd_revision() {
        0 => resync(&mut client, cfg, registry).await? + 1,
        stored => {
            tracing::info!("etcd watch resuming from revision {}", stored + 1);
            stored + 1
        }
    };
    loop {
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(start)
            .with_prev_key()
            .with_progress_notify();
        let mut stream = client.watch(cfg.prefix.as_str(), Some(options)).await?;
        tracing::info!(prefix = %cfg.prefix, start, "etcd source watching");
        loop {
            let Some(resp) = stream.message().await? else {
                return Err(EtcdError::Watch("the server closed the stream".into()));
            };
            if resp.compact_revision() > 0 {
                tracing::warn!(
                    compact_revision = resp.compact_revision(),
                    "etcd compacted revision {start}; resynchronising from a full read"
                );
                start = resync(&mut client, cfg, registry).await? + 1;
                break;
            }
            if resp.canceled() {
                return Err(EtcdError::Watch(format!(
                    "watch cancelled: {}",
                    resp.cancel_reason()
                )));
            }
            let mut applied = None;
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                match ev.event_type() {
                    EventType::Put => apply_put(&mut client, cfg, registry, kv).await?,
                    EventType::Delete => {
                        apply_delete(&mut client, cfg, registry, kv, ev.prev_kv()).await?
                    }
                }
                applied = Some(kv.mod_revision());
            }
            // An event batch is complete up to its last event; a progress
            // notification (no events) up to its header revision.
            let done = match applied {
                Some(rev) => Some(rev),
                None if !resp.created() => resp.header().map(|h| h.revision()),
                None => None,
            };
            if let Some(rev) = done {
                registry.set_etcd_revision(rev).await?;
                start = rev + 1;
            }
        }
    }
}

/// Read the whole prefix, mirror it, and settle instances that vanished.
/// Returns the etcd revision of the read.
async fn resync(
    client: &mut Client,
    cfg: &EtcdConfig,
    registry: &Registry,
) -> Result<i64, EtcdError> {
    let resp = client
        .get(cfg.prefix.as_str(), Some(GetOptions::new().with_prefix()))
        .await?;
    let rev = resp.header().map_or(0, |h| h.revision());
    let mut present = HashSet::new();
    for kv in resp.kvs() {
        if let Some((service, instance)) = split_key(cfg, kv.key()) {
            present.insert((service, instance));
        }
        apply_put(client, cfg, registry, kv).await?;
    }
    for (service, instance, lease) in registry.etcd_alive() {
        if present.contains(&(service.clone(), instance.clone())) {
            continue;
        }
        let expired = lease_gone(client, lease).await?;
        settle(registry, &service, &instance, expired, lease).await?;
    }
    registry.set_etcd_revision(rev).await?;
    tracing::info!(
        revision = rev,
        keys = resp.kvs().len(),
        "etcd source synchronised"
    );
    Ok(rev)
}

async fn apply_put(
    client: &mut Client,
    cfg: &EtcdConfig,
    registry: &Registry,
    kv: &KeyValue,
) -> Result<(), EtcdError> {
    let Some((service, instance)) = split_key(cfg, kv.key()) else {
        tracing::debug!(key = %String::from_utf8_lossy(kv.key()), "etcd source: key without a service name ignored");
        return Ok(());
    };
    let (address, mut metadata) = parse_value(kv.value());
    let lease = kv.lease();
    let mut ttl_ms = 0u32;
    if lease != 0 {
        metadata.insert(LEASE_KEY.into(), lease.to_string());
        let granted = client.lease_time_to_live(lease, None).await?.granted_ttl();
        ttl_ms = u32::try_from(granted.max(0).saturating_mul(1000)).unwrap_or(u32::MAX);
    }
    metadata.insert(
        KEY_KEY.into(),
        String::from_utf8_lossy(kv.key()).into_owned(),
    );
    let hb = Heartbeat {
        service,
        instance,
        ttl_ms,
        heartbeat_revision: u64::try_from(kv.mod_revision()).unwrap_or(0),
        address,
        metadata,
        health: Health::Passing,
        source: Source::Etcd,
    };
    registry
        .metrics()
        .etcd_events
        .with_label_values(&["put"])
        .inc();
    match registry.heartbeat(hb).await {
        Ok(_) | Err(RegistryError::Stale { .. }) => Ok(()),
        Err(RegistryError::Full { max }) => {
            tracing::warn!("etcd source: registry full ({max}); key not mirrored");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

async fn apply_delete(
    client: &mut Client,
    cfg: &EtcdConfig,
    registry: &Registry,
    kv: &KeyValue,
    prev: Option<&KeyValue>,
) -> Result<(), EtcdError> {
    let Some((service, instance)) = split_key(cfg, kv.key()) else {
        return Ok(());
    };
    let Some(known) = registry.get(&service, &instance) else {
        return Ok(());
    };
    let lease = prev
        .map(|p| p.lease())
        .filter(|&l| l != 0)
        .or_else(|| known.metadata.get(LEASE_KEY).and_then(|l| l.parse().ok()))
        .unwrap_or(0);
    let expired = lease_gone(client, lease).await?;
    settle(registry, &service, &instance, expired, lease).await
}

async fn settle(
    registry: &Registry,
    service: &str,
    instance: &str,
    expired: bool,
    lease: i64,
) -> Result<(), EtcdError> {
    let (label, reason) = if expired {
        (
            "expired",
            format!("etcd lease {lease:x} expired or was revoked"),
        )
    } else {
        ("deleted", "etcd key deleted".to_string())
    };
    registry
        .metrics()
        .etcd_events
        .with_label_values(&[label])
        .inc();
    registry
        .etcd_removed(service, instance, expired, &reason)
        .await
        .map_err(Into::into)
}

/// Whether a lease no longer exists (expired or revoked). No lease → false.
async fn lease_gone(client: &mut Client, lease: i64) -> Result<bool, EtcdError> {
    if lease == 0 {
        return Ok(false);
    }
    Ok(client.lease_time_to_live(lease, None).await?.ttl() < 0)
}

/// `<prefix><service>/<instance…>` → (service, instance). A key with no `/`
/// after the service is its own single instance.
pub fn split_key(cfg: &EtcdConfig, key: &[u8]) -> Option<(String, String)> {
    let key = String::from_utf8_lossy(key);
    let rest = key
        .strip_prefix(cfg.prefix.as_str())?
        .trim_start_matches('/');
    let (service, instance) = match rest.split_once('/') {
        Some((s, i)) if !i.is_empty() => (s, i),
        Some((s, _)) => (s, s),
        None => (rest, rest),
    };
    (!service.is_empty()).then(|| (service.to_string(), instance.to_string()))
}

/// A plain address, or JSON as go-zero/Kratos/go-micro write it: the
/// address from `address`/`addr`/`Address`/`endpoints[0]`/`nodes[0].address`,
/// string-ish values of `metadata`, and `version`.
pub fn parse_value(value: &[u8]) -> (String, BTreeMap<String, String>) {
    let mut metadata = BTreeMap::new();
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let clip = |mut s: String| {
        if s.len() > MAX_TEXT {
            let mut cut = MAX_TEXT;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
        }
        s
    };
    if let Ok(serde_json::Value::Object(obj)) = serde_json::from_slice(value) {
        let address = ["address", "addr", "Address", "Addr"]
            .iter()
            .find_map(|k| obj.get(*k).and_then(|v| v.as_str()))
            .map(str::to_string)
            .or_else(|| {
                obj.get("endpoints")
                    .and_then(|e| e.get(0))
                    .and_then(|e| e.as_str())
                    .map(str::to_string)
            })
            .or_else(|| {
                obj.get("nodes")
                    .and_then(|n| n.get(0))
                    .and_then(|n| n.get("address"))
                    .and_then(|a| a.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_default();
        if let Some(serde_json::Value::Object(md)) = obj.get("metadata") {
            for (k, v) in md.iter().take(MAX_METADATA) {
                metadata.insert(clip(k.clone()), clip(text(v)));
            }
        }
        if let Some(v) = obj.get("version") {
            metadata.insert("version".into(), clip(text(v)));
        }
        return (clip(address), metadata);
    }
    (
        clip(String::from_utf8_lossy(value).trim().to_string()),
        metadata,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> EtcdConfig {
        EtcdConfig {
            endpoints: vec![],
            prefix: "/services/".into(),
        }
    }

    #[test]
    fn keys_split_into_service_and_instance() {
        let c = cfg();
        assert_eq!(
            split_key(&c, b"/services/user.rpc/7587870123"),
            Some(("user.rpc".into(), "7587870123".into()))
        );
        assert_eq!(
            split_key(&c, b"/services/checkout/a/b"),
            Some(("checkout".into(), "a/b".into()))
        );
        assert_eq!(
            split_key(&c, b"/services/solo"),
            Some(("solo".into(), "solo".into()))
        );
        assert_eq!(split_key(&c, b"/other/x/y"), None);
        assert_eq!(split_key(&c, b"/services/"), None);
    }

    #[test]
    fn values_plain_and_json() {
        assert_eq!(parse_value(b"10.0.0.1:8080\n").0, "10.0.0.1:8080");
        let (addr, md) = parse_value(
            br#"{"id":"x","name":"cart","version":"v2","metadata":{"zone":"eu-1","weight":3},"endpoints":["grpc://10.0.0.2:9000"]}"#,
        );
        assert_eq!(addr, "grpc://10.0.0.2:9000");
        assert_eq!(md.get("zone").map(String::as_str), Some("eu-1"));
        assert_eq!(md.get("weight").map(String::as_str), Some("3"));
        assert_eq!(md.get("version").map(String::as_str), Some("v2"));
        let (addr, _) =
            parse_value(br#"{"name":"m","nodes":[{"id":"n1","address":"10.0.0.3:1"}]}"#);
        assert_eq!(addr, "10.0.0.3:1");
    }
}
