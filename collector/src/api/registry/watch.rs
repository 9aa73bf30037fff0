//! `GET /api/v1/registry/watch`: events from `from_revision` (inclusive) in
//! revision order. As a long-poll it answers as soon as there is at least one
//! event (or after `timeout`, with none); with `Accept: text/event-stream`
//! it streams them as server-sent events (`id` = revision, `event` = type)
//! until the client goes away or the collector shuts down. A compacted
//! `from_revision` answers 410 with the oldest available revision.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::stream::{self, Stream};
use serde_json::json;

use super::{Failure, RegistryApi};
use crate::api::error::Problem;
use crate::api::params::Params;
use crate::registry::{Registry, SharedEvent, Subscription, SubscriptionError};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_TIMEOUT: Duration = Duration::from_secs(300);
const DEFAULT_LIMIT: usize = 1000;
const MAX_LIMIT: usize = 10_000;

/// Counts an open watch in `skein_registry_watchers` while alive.
struct Watching(prometheus::IntGauge);

impl Watching {
    fn new(registry: &Registry) -> Self {
        let g = registry.metrics().watchers.clone();
        g.inc();
        Watching(g)
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.dec();
    }
}

pub async fn watch(
    State(api): State<RegistryApi>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, Failure> {
    let params = Params::from_extractor(query)?;
    let from = match params.u64("from_revision")? {
        Some(0) => {
            return Err(Problem::invalid_param("from_revision", "must be at least 1").into())
        }
        Some(n) => n,
        None => api.registry.revision() + 1,
    };
    let timeout = match params.get("timeout") {
        None => DEFAULT_TIMEOUT,
        Some(t) => humantime::parse_duration(t)
            .map_err(|e| {
                Problem::invalid_param("timeout", format!("\"{t}\" is not a duration: {e}"))
            })?
            .min(MAX_TIMEOUT),
    };
    let limit = match params.u64("limit")? {
        None => DEFAULT_LIMIT,
        Some(0) => return Err(Problem::invalid_param("limit", "must be at least 1").into()),
        Some(n) => (n as usize).min(MAX_LIMIT),
    };
    let wants_sse = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"));
    if wants_sse {
        let (backlog, sub) = api.registry.subscribe_from(from)?;
        let stream = sse_stream(api, backlog, sub);
        return Ok(Sse::new(stream)
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
            .into_response());
    }
    long_poll(api, from, timeout, limit).await
}

async fn long_poll(
    api: RegistryApi,
    from: u64,
    timeout: Duration,
    limit: usize,
) -> Result<Response, Failure> {
    let _watching = Watching::new(&api.registry);
    let mut changes = api.registry.revision_watch();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        changes.borrow_and_update();
        let (revision, events) = api.registry.events_since(from, limit)?;
        if !events.is_empty() {
            let oldest = api.registry.oldest_revision();
            return Ok(answer(revision, oldest, &events));
        }
        tokio::select! {
            _ = api.shutdown.cancelled() => return Ok(answer(revision, api.registry.oldest_revision(), &[])),
            _ = tokio::time::sleep_until(deadline) => return Ok(answer(revision, api.registry.oldest_revision(), &[])),
            r = changes.changed() => {
                if r.is_err() {
                    return Ok(answer(revision, api.registry.oldest_revision(), &[]));
                }
            }
        }
    }
}

fn answer(revision: u64, oldest: u64, events: &[SharedEvent]) -> Response {
    let events: Vec<&crate::registry::Event> = events.iter().map(|e| e.as_ref()).collect();
    Json(json!({
        "revision": revision,
        "oldest_revision": oldest,
        "events": events,
    }))
    .into_response()
}

fn sse_event(e: &SharedEvent) -> SseEvent {
    SseEvent::default()
        .id(e.revision.to_string())
        .event(e.kind.as_str())
        .json_data(e.as_ref())
        .unwrap_or_else(|_| SseEvent::default().comment("unserialisable event"))
}

struct SseState {
    api: RegistryApi,
    backlog: std::collections::VecDeque<SharedEvent>,
    sub: Subscription,
    done: bool,
    _watching: Watching,
}

fn sse_stream(
    api: RegistryApi,
    backlog: Vec<SharedEvent>,
    mut sub: Subscription,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    if let Some(last) = backlog.last() {
        sub.resume_after(last.revision);
    }
    let state = SseState {
        _watching: Watching::new(&api.registry),
        api,
        backlog: backlog.into(),
        sub,
        done: false,
    };
    stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        if let Some(e) = st.backlog.pop_front() {
            return Some((Ok(sse_event(&e)), st));
        }
        let next = tokio::select! {
            _ = st.api.shutdown.cancelled() => return None,
            r = st.sub.recv() => r,
        };
        match next {
            Ok(e) => Some((Ok(sse_event(&e)), st)),
            Err(SubscriptionError::Lagged { resume_from, .. }) => {
                // Catch up from the history; if that is gone too, say so and end.
                match st.api.registry.events_since(resume_from, usize::MAX) {
                    Ok((_, events)) => {
                        if let Some(last) = events.last() {
                            st.sub.resume_after(last.revision);
                        }
                        st.backlog.extend(events);
                        let e = st.backlog.pop_front();
                        match e {
                            Some(e) => Some((Ok(sse_event(&e)), st)),
                            None => Some((Ok(SseEvent::default().comment("caught up")), st)),
                        }
                    }
                    Err(_) => {
                        st.done = true;
                        let ev = SseEvent::default().event("error").data(
                            json!({
                                "error": "required revision has been compacted",
                                "oldest_revision": st.api.registry.oldest_revision(),
                            })
                            .to_string(),
                        );
                        Some((Ok(ev), st))
                    }
                }
            }
            Err(SubscriptionError::Closed) => None,
        }
    })
}
