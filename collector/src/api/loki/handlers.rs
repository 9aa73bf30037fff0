//! Handlers of the Loki routes. Every store call runs on the blocking pool;
//! every error answers in Loki's error shape (see `response.rs`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::super::error::{ApiError, ErrorKind, Problem};
use super::super::params::Params;
use super::super::{blocking, ApiState};
use super::params::{direction, limit, now_ns, step, time_param, window, DEFAULT_LOOKBACK_NS};
use super::response::{self, CATEGORIZE_LABELS};
use crate::query::logql::ast::{Expr, LogExpr};
use crate::query::logql::eval::{log_query, metric_query, Limits, LogParams, Steps};
use crate::query::logql::metric::Val;
use crate::query::logql::{parse, LogqlError};
use crate::query::{Direction, LabelMatcher, LogSelect, QueryError};

type Q = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// Most records `series` reads to find stream label sets.
const SERIES_SCAN: usize = 50_000;

fn problem(e: LogqlError) -> Problem {
    match e {
        LogqlError::Store(QueryError::Storage(m)) => {
            Problem::internal(format!("storage error: {m}"))
        }
        LogqlError::Store(QueryError::Invalid(m)) => Problem::new(ErrorKind::BadRequest, m),
        other => Problem::new(ErrorKind::BadRequest, other.to_string()),
    }
}

async fn answer(
    state: &ApiState,
    endpoint: &'static str,
    body: impl std::future::Future<Output = Result<Response, Problem>>,
) -> Response {
    state
        .metrics
        .timed(endpoint, async {
            Ok::<Response, ApiError>(match body.await {
                Ok(r) => r,
                Err(p) => response::error(&p),
            })
        })
        .await
}

fn categorize(headers: &HeaderMap) -> bool {
    headers
        .get_all("x-loki-response-encoding-flags")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|f| f.trim() == CATEGORIZE_LABELS)
}

fn query_text(p: &Params) -> Result<String, Problem> {
    p.get("query")
        .map(str::to_string)
        .ok_or_else(|| Problem::missing_param("query"))
}

/// `GET /loki/api/v1/query?query=&time=&limit=&direction=`.
pub async fn query(State(state): State<ApiState>, headers: HeaderMap, q: Q) -> Response {
    let s = state.clone();
    answer(&state, super::QUERY, async move {
        let p = Params::from_extractor(q)?;
        let text = query_text(&p)?;
        let time = time_param(&p, "time")?.unwrap_or_else(now_ns);
        let expr = parse(&text).map_err(problem)?;
        match expr {
            Expr::Log(log) => {
                let params = LogParams {
                    start: time.saturating_sub(DEFAULT_LOOKBACK_NS),
                    end: time.saturating_add(1),
                    limit: limit(&p)?,
                    direction: direction(&p)?,
                    categorize: categorize(&headers),
                };
                run_logs(&s, log, params).await
            }
            Expr::Metric(m) => {
                let store = s.logs.clone();
                let val = blocking(move || {
                    metric_query(&*store, &m, &Steps::instant(time), &Limits::default())
                        .map_err(problem)
                })
                .await?;
                Ok(match val {
                    Val::Scalar(v) => response::success(response::scalar(v, time)),
                    Val::Vector(series) => response::success(response::vector(&series, time)),
                })
            }
        }
    })
    .await
}

async fn run_logs(s: &ApiState, log: LogExpr, params: LogParams) -> Result<Response, Problem> {
    let store = s.logs.clone();
    let streams =
        blocking(move || log_query(&*store, &log, &params, &Limits::default()).map_err(problem))
            .await?;
    Ok(response::success(response::streams(
        &streams,
        params.categorize,
    )))
}

/// `GET /loki/api/v1/query_range?query=&start=&end=&step=&limit=&direction=`.
pub async fn query_range(State(state): State<ApiState>, headers: HeaderMap, q: Q) -> Response {
    let s = state.clone();
    answer(&state, super::QUERY_RANGE, async move {
        let p = Params::from_extractor(q)?;
        let text = query_text(&p)?;
        let (start, end) = window(&p)?;
        let expr = parse(&text).map_err(problem)?;
        match expr {
            Expr::Log(log) => {
                let params = LogParams {
                    start,
                    end,
                    limit: limit(&p)?,
                    direction: direction(&p)?,
                    categorize: categorize(&headers),
                };
                run_logs(&s, log, params).await
            }
            Expr::Metric(m) => {
                let steps = Steps {
                    start,
                    end,
                    step: step(&p, start, end)?,
                };
                let store = s.logs.clone();
                let val = blocking(move || {
                    metric_query(&*store, &m, &steps, &Limits::default()).map_err(problem)
                })
                .await?;
                let series = match val {
                    Val::Vector(v) => v,
                    Val::Scalar(v) => vec![crate::query::logql::metric::Series {
                        labels: Vec::new(),
                        points: vec![Some(v); steps.count()],
                    }],
                };
                Ok(response::success(response::matrix(&series, |i| {
                    steps.at(i)
                })))
            }
        }
    })
    .await
}

/// The stream selector of an optional `query` parameter.
fn selector(p: &Params, name: &str) -> Result<Vec<LabelMatcher>, Problem> {
    let Some(text) = p.get(name) else {
        return Ok(Vec::new());
    };
    match parse(text).map_err(|e| Problem::invalid_param(name, e))? {
        Expr::Log(log) => Ok(log.selector),
        Expr::Metric(_) => Err(Problem::invalid_param(
            name,
            "expected a stream selector like {service_name=\"api\"}",
        )),
    }
}

/// `GET /loki/api/v1/labels?start=&end=`.
pub async fn labels(State(state): State<ApiState>, q: Q) -> Response {
    let s = state.clone();
    answer(&state, super::LABELS, async move {
        let p = Params::from_extractor(q)?;
        let (start, end) = window(&p)?;
        let matchers = selector(&p, "query")?;
        let store = s.logs.clone();
        let names = blocking(move || {
            if matchers.is_empty() {
                return Ok(store.log_label_names(start, end)?);
            }
            // with a selector: names of the streams it selects
            let sel = LogSelect {
                matchers,
                start_unix_nano: start,
                end_unix_nano: end,
            };
            let mut names = std::collections::BTreeSet::new();
            for set in stream_label_sets(&*store, &sel)? {
                names.extend(set.into_iter().map(|(k, _)| k));
            }
            Ok(names.into_iter().collect())
        })
        .await?;
        Ok(response::success(names))
    })
    .await
}

/// `GET /loki/api/v1/label/{name}/values?start=&end=&query=`.
pub async fn label_values(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    q: Q,
) -> Response {
    let s = state.clone();
    answer(&state, super::LABEL_VALUES, async move {
        let p = Params::from_extractor(q)?;
        let (start, end) = window(&p)?;
        let sel = LogSelect {
            matchers: selector(&p, "query")?,
            start_unix_nano: start,
            end_unix_nano: end,
        };
        let store = s.logs.clone();
        let values = blocking(move || Ok(store.log_label_values(&name, &sel)?)).await?;
        Ok(response::success(values))
    })
    .await
}

/// Distinct stream label sets of the newest records `sel` selects.
fn stream_label_sets(
    store: &dyn crate::query::LogStore,
    sel: &LogSelect,
) -> Result<std::collections::BTreeSet<Vec<(String, String)>>, Problem> {
    use crate::query::logql::labels::{row_labels, LabelKind};
    let rows = store.select_logs(sel, SERIES_SCAN, Direction::Backward)?;
    let mut sets = std::collections::BTreeSet::new();
    for row in &rows {
        let labels = row_labels(row);
        if sel.matchers.iter().all(|m| m.matches(labels.get(&m.name))) {
            sets.insert(labels.of_kind(LabelKind::Stream));
        }
    }
    Ok(sets)
}

/// `GET /loki/api/v1/series?match[]=&start=&end=`.
pub async fn series(State(state): State<ApiState>, q: Q) -> Response {
    let s = state.clone();
    answer(&state, super::SERIES, async move {
        let p = Params::from_extractor(q)?;
        let (start, end) = window(&p)?;
        let mut selectors = Vec::new();
        for raw in p.all("match[]").chain(p.all("match")) {
            match parse(raw).map_err(|e| Problem::invalid_param("match[]", e))? {
                Expr::Log(log) => selectors.push(log.selector),
                Expr::Metric(_) => {
                    return Err(Problem::invalid_param(
                        "match[]",
                        "expected a stream selector like {service_name=\"api\"}",
                    ))
                }
            }
        }
        if selectors.is_empty() {
            selectors.push(Vec::new());
        }
        let store = s.logs.clone();
        let sets = blocking(move || {
            let mut all = std::collections::BTreeSet::new();
            for matchers in selectors {
                let sel = LogSelect {
                    matchers,
                    start_unix_nano: start,
                    end_unix_nano: end,
                };
                all.extend(stream_label_sets(&*store, &sel)?);
            }
            Ok(all)
        })
        .await?;
        let data: Vec<Value> = sets
            .into_iter()
            .map(|set| {
                Value::Object(
                    set.into_iter()
                        .map(|(k, v)| (k, Value::String(v)))
                        .collect(),
                )
            })
            .collect();
        Ok(response::success(data))
    })
    .await
}

/// `GET /loki/api/v1/index/stats?query=&start=&end=` →
/// `{"streams","chunks","entries","bytes"}` (no envelope, as Loki).
pub async fn index_stats(State(state): State<ApiState>, q: Q) -> Response {
    let s = state.clone();
    answer(&state, super::INDEX_STATS, async move {
        let p = Params::from_extractor(q)?;
        let (start, end) = window(&p)?;
        let sel = LogSelect {
            matchers: selector(&p, "query")?,
            start_unix_nano: start,
            end_unix_nano: end,
        };
        if let Some(m) = sel.matchers.iter().find(|m| !m.pushable()) {
            return Err(Problem::invalid_param(
                "query",
                format!("{} is not supported in index/stats", m.display()),
            ));
        }
        let store = s.logs.clone();
        let st = blocking(move || Ok(store.log_stats(&sel)?)).await?;
        Ok(axum::Json(json!({
            "streams": st.streams,
            "chunks": st.chunks,
            "entries": st.entries,
            "bytes": st.bytes,
        }))
        .into_response())
    })
    .await
}

/// Any other `/loki/…` path: 404 in Loki's error shape.
pub async fn unknown(OriginalUri(uri): OriginalUri) -> Response {
    response::error(&Problem::not_found(format!(
        "no such Loki endpoint: {} (Skein serves query, query_range, labels, label/{{name}}/values, series, index/stats)",
        uri.path()
    )))
}
