//! The evaluation task: wakes when a rule group or a notification is due,
//! when the rules change (API edit, reload), on a registry event and on
//! SIGHUP (reload); evaluates on the blocking pool (store queries block),
//! publishes the results, records history and hands notifications to the
//! bounded delivery queues (never waiting on a receiver). Stops when the
//! pipeline's cancellation token fires.

use std::time::{Duration, Instant};

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::eval::state::{Alert, Change};
use super::eval::{Engine, EngineConfig, EngineDeps};
use super::history::HistoryEntry;
use super::notify::{payload, DispatchConfig, Dispatcher, Outbox, ReceiverKind};
use super::rules::RuleSet;
use super::source::RegistryEvent;
use super::Alerts;

/// Longest sleep between checks (bounds the effect of clock jumps).
const MAX_SLEEP: Duration = Duration::from_millis(500);

/// Listen for SIGHUP (reload the rule files). Call it before the listening
/// lines are logged: a SIGHUP that arrives before this is registered kills
/// the process (the default action), and one that arrives before the
/// returned listener exists is not seen by it. Must run inside a runtime.
pub fn reload_signal() -> Option<tokio::signal::unix::Signal> {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(
                "cannot listen for SIGHUP ({e}); reload rules with POST /api/v1/rules/reload"
            );
            None
        }
    }
}

/// Start the evaluation task; `hup` comes from [`reload_signal`].
pub fn spawn(
    alerts: Alerts,
    deps: EngineDeps,
    mut rules_rx: watch::Receiver<RuleSet>,
    outbox: Outbox,
    mut hup: Option<tokio::signal::unix::Signal>,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let cfg = alerts.config().clone();
        let engine_cfg = EngineConfig {
            liveness_interval_ms: cfg.liveness_interval.as_millis() as u64,
            mass: cfg.mass.clone(),
            watchdog: cfg.watchdog,
            external_url: cfg.external_url.clone(),
        };
        let mut events = deps.liveness.subscribe();
        let initial = rules_rx.borrow_and_update().clone();
        let mut engine = Some(Engine::new(deps, engine_cfg, initial));
        let mut dispatcher = Dispatcher::new(DispatchConfig {
            group_wait_ms: cfg.group_wait.as_millis() as u64,
            repeat_interval_ms: cfg.repeat_interval.as_millis() as u64,
        });
        loop {
            let Some(eng) = engine.as_mut() else { return };
            let now = alerts.now_ms();
            let next = eng.next_due_ms().min(dispatcher.next_due_ms());
            let wait = Duration::from_millis(next.saturating_sub(now)).min(MAX_SLEEP);
            let mut changes = Vec::new();
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
                r = rules_rx.changed() => {
                    if r.is_ok() {
                        let set = rules_rx.borrow_and_update().clone();
                        changes.extend(eng.set_rules(set));
                    }
                }
                woke = next_event(&mut events) => {
                    if woke {
                        eng.wake_liveness(alerts.now_ms());
                    }
                }
                _ = next_hup(&mut hup) => {
                    let _ = alerts.reload();
                }
            }
            let now = alerts.now_ms();
            let Some(mut eng) = engine.take() else { return };
            if eng.next_due_ms() <= now {
                let started = Instant::now();
                let joined = tokio::task::spawn_blocking(move || {
                    let c = eng.evaluate_due(now);
                    (eng, c)
                })
                .await;
                match joined {
                    Ok((e, c)) => {
                        eng = e;
                        changes.extend(c);
                    }
                    Err(e) => {
                        tracing::error!("rule evaluation task failed: {e}; alerting stops");
                        return;
                    }
                }
                alerts
                    .metrics()
                    .eval_seconds
                    .observe(started.elapsed().as_secs_f64());
                for g in eng.failures.keys() {
                    alerts.metrics().eval_failures.with_label_values(&[g]).inc();
                }
            }
            let active = eng.active();
            let failures = eng.failures.clone();
            engine = Some(eng);
            publish(&alerts, &changes, active.clone(), failures);
            let silenced = alerts.with_silences(&active, now);
            let firing: Vec<(Alert, bool)> = silenced
                .iter()
                .filter(|(a, _)| a.state == super::eval::state::AlertState::Firing)
                .cloned()
                .collect();
            dispatcher.apply(&changes, &firing, now);
            send(&alerts, &outbox, &mut dispatcher, &changes, &silenced, now);
        }
    })
}

/// Publish the snapshot and record finished alerts in the history.
fn publish(
    alerts: &Alerts,
    changes: &[Change],
    active: Vec<Alert>,
    failures: std::collections::BTreeMap<String, String>,
) {
    let finished = changes
        .iter()
        .filter_map(|c| match c {
            Change::Resolved(a) => Some((a, "resolved")),
            Change::Withdrawn(a) => Some((a, "withdrawn")),
            Change::Firing(_) => None,
        })
        .map(|(a, state)| HistoryEntry {
            name: a.alertname().to_string(),
            state: state.into(),
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            value: a.value,
            active_at_ms: a.active_at_ms,
            fired_at_ms: a.fired_at_ms,
            resolved_at_ms: a.resolved_at_ms.unwrap_or_else(|| alerts.now_ms()),
            fingerprint: a.fingerprint.clone(),
        })
        .collect();
    alerts.publish(active, finished, failures);
}

/// Queue what is due for every receiver.
fn send(
    alerts: &Alerts,
    outbox: &Outbox,
    dispatcher: &mut Dispatcher,
    changes: &[Change],
    active: &[(Alert, bool)],
    now: u64,
) {
    let external = alerts.config().external_url.clone();
    let has_am = outbox
        .receivers()
        .any(|r| r.kind == ReceiverKind::Alertmanager);
    if has_am {
        let batch = dispatcher.alertmanager_batch(changes, active, now);
        if !batch.is_empty() {
            let body = payload::alertmanager_v2(&batch, &external)
                .to_string()
                .into_bytes();
            for r in outbox
                .receivers()
                .filter(|r| r.kind == ReceiverKind::Alertmanager)
            {
                outbox.send(&r.name, body.clone());
            }
        }
    }
    for n in dispatcher.due(now) {
        for r in outbox
            .receivers()
            .filter(|r| r.kind == ReceiverKind::Webhook)
        {
            let body = payload::webhook_v4(&r.name, &n.group_labels, &n.alerts, &external)
                .to_string()
                .into_bytes();
            outbox.send(&r.name, body);
        }
    }
}

/// The next registry events: `true` to wake the liveness rules; pending
/// forever without an event stream. Everything already queued is taken
/// with it, so that a wave of expiries wakes one evaluation, not one per
/// event (20,000 expiries at once used to queue 1,024 evaluations of 30 ms
/// each, back to back).
async fn next_event(events: &mut Option<broadcast::Receiver<RegistryEvent>>) -> bool {
    let Some(rx) = events.as_mut() else {
        return std::future::pending().await;
    };
    match rx.recv().await {
        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
            loop {
                match rx.try_recv() {
                    Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                    Err(broadcast::error::TryRecvError::Empty) => break,
                    Err(broadcast::error::TryRecvError::Closed) => {
                        *events = None;
                        break;
                    }
                }
            }
            true
        }
        Err(broadcast::error::RecvError::Closed) => {
            *events = None;
            false
        }
    }
}

async fn next_hup(hup: &mut Option<tokio::signal::unix::Signal>) {
    match hup.as_mut() {
        Some(s) => {
            if s.recv().await.is_none() {
                *hup = None;
            }
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::source::RegistryEventKind;

    fn event(revision: u64) -> RegistryEvent {
        RegistryEvent {
            revision,
            kind: RegistryEventKind::Expired,
            service: "s".into(),
            instance: format!("i{revision}"),
        }
    }

    /// One wake-up takes every event already queued, lagged or not.
    #[tokio::test]
    async fn a_burst_of_events_is_one_wake_up() {
        let (tx, rx) = broadcast::channel(16);
        let mut events = Some(rx);
        for r in 0..40 {
            tx.send(event(r)).unwrap();
        }
        assert!(next_event(&mut events).await);
        let rx = events.as_mut().unwrap();
        assert!(matches!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Empty)
        ));
        tx.send(event(41)).unwrap();
        drop(tx);
        assert!(next_event(&mut events).await, "the last one still wakes");
        assert!(events.is_none(), "and the closed stream is noticed");
    }
}
