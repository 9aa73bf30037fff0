//! Evaluating parsed LogQL against a [`LogStore`]: log queries → streams,
//! metric queries → series per step.
//!
//! Stream selectors and the plain `label="value"` filters in front of any
//! parser are pushed to the store ([`LogStore::select_logs`]); every row read
//! is then checked in memory against the whole pipeline, so pushing down is
//! only an optimisation. Metric queries whose pipeline the store answers
//! exactly and whose result only needs `service_name`/`level` are counted by
//! the store without reading records ([`LogStore::count_logs`]); all others
//! read at most [`Limits::max_scan`] records.

use std::collections::BTreeMap;

use super::ast::{AggOp, LabelPred, LogExpr, MetricExpr, RangeFn, Stage};
use super::labels::{row_labels, row_line, row_time, LabelKind};
use super::metric::{aggregate, binary, check_series, Labels, Series, Val};
use super::pipeline::{self, ERROR_LABEL};
use super::LogqlError;
use crate::query::{Buckets, CountQuery, Direction, FastLabel, LabelMatcher, LogSelect, LogStore};

/// Bounds of one evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most records read for one query.
    pub max_scan: usize,
    /// Most time buckets of one range aggregation.
    pub max_buckets: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_scan: 200_000,
            max_buckets: 200_000,
        }
    }
}

/// One entry of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEntry {
    pub ts: u64,
    pub line: String,
    /// Structured metadata (only when categorizing).
    pub metadata: Labels,
    /// Parsed labels (only when categorizing).
    pub parsed: Labels,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    pub labels: Labels,
    pub entries: Vec<StreamEntry>,
}

/// A log query's window and shape.
#[derive(Debug, Clone, Copy)]
pub struct LogParams {
    /// Inclusive.
    pub start: u64,
    /// Exclusive (Loki's convention).
    pub end: u64,
    pub limit: usize,
    pub direction: Direction,
    /// Split labels into stream / structured metadata / parsed.
    pub categorize: bool,
}

/// Store matchers for a log expression: the selector's pushable matchers and
/// plain string label filters that come before any parser or drop/keep.
fn pushdown(expr: &LogExpr) -> (Vec<LabelMatcher>, bool) {
    let mut out: Vec<LabelMatcher> = Vec::new();
    let mut exact = true;
    for m in &expr.selector {
        if m.pushable() {
            out.push(m.clone());
        } else {
            exact = false;
        }
    }
    let mut before_parser = true;
    for stage in &expr.stages {
        match stage {
            Stage::Labels(pred) if before_parser => {
                let mut ms = Vec::new();
                if and_chain(pred, &mut ms) && ms.iter().all(|m| m.pushable()) {
                    out.extend(ms);
                } else {
                    exact = false;
                }
            }
            Stage::Drop(names) => {
                before_parser = false;
                // dropping only the error label changes nothing before a parser
                if names.iter().any(|n| n != ERROR_LABEL) {
                    exact = false;
                }
            }
            _ => {
                before_parser = false;
                exact = false;
            }
        }
    }
    (out, exact)
}

/// Flatten an `and` chain of string matchers; false if it holds anything else.
fn and_chain(pred: &LabelPred, out: &mut Vec<LabelMatcher>) -> bool {
    match pred {
        LabelPred::And(a, b) => and_chain(a, out) && and_chain(b, out),
        LabelPred::Str(m) => {
            out.push(m.clone());
            true
        }
        _ => false,
    }
}

/// One row through selector + pipeline: `(ts, line, labels)` if kept.
fn process(
    expr: &LogExpr,
    row: &crate::query::LogRow,
) -> Option<(u64, String, super::labels::LabelSet)> {
    let mut labels = row_labels(row);
    if !expr.selector.iter().all(|m| m.matches(labels.get(&m.name))) {
        return None;
    }
    let line = row_line(row);
    pipeline::run(&expr.stages, &line, &mut labels).then(|| (row_time(row), line, labels))
}

/// Run a log query: at most `limit` entries in `direction`, grouped into streams.
pub fn log_query(
    store: &dyn LogStore,
    expr: &LogExpr,
    p: &LogParams,
    limits: &Limits,
) -> Result<Vec<Stream>, LogqlError> {
    if p.limit == 0 || p.end <= p.start {
        return Ok(Vec::new());
    }
    let (matchers, _) = pushdown(expr);
    let sel = LogSelect {
        matchers,
        start_unix_nano: p.start,
        end_unix_nano: p.end - 1,
    };
    let mut fetch = p.limit.clamp(100, limits.max_scan);
    let kept = loop {
        let rows = store.select_logs(&sel, fetch, p.direction)?;
        let exhausted = rows.len() < fetch;
        let kept: Vec<_> = rows
            .iter()
            .filter_map(|r| process(expr, r))
            .take(p.limit)
            .collect();
        if kept.len() >= p.limit || exhausted || fetch >= limits.max_scan {
            break kept;
        }
        fetch = fetch.saturating_mul(8).min(limits.max_scan);
    };
    let mut streams: BTreeMap<Labels, Vec<StreamEntry>> = BTreeMap::new();
    for (ts, line, labels) in kept {
        let (key, entry) = if p.categorize {
            (
                labels.of_kind(LabelKind::Stream),
                StreamEntry {
                    ts,
                    line,
                    metadata: labels.of_kind(LabelKind::Metadata),
                    parsed: labels.of_kind(LabelKind::Parsed),
                },
            )
        } else {
            (
                labels.all(),
                StreamEntry {
                    ts,
                    line,
                    metadata: Vec::new(),
                    parsed: Vec::new(),
                },
            )
        };
        streams.entry(key).or_default().push(entry);
    }
    Ok(streams
        .into_iter()
        .map(|(labels, entries)| Stream { labels, entries })
        .collect())
}

/// Evaluation steps: `start, start+step, … ≤ end` (one step when instant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Steps {
    pub start: u64,
    pub end: u64,
    pub step: u64,
}

impl Steps {
    pub fn instant(t: u64) -> Self {
        Steps {
            start: t,
            end: t,
            step: 1,
        }
    }

    pub fn count(&self) -> usize {
        ((self.end - self.start) / self.step.max(1)) as usize + 1
    }

    pub fn at(&self, i: usize) -> u64 {
        self.start + i as u64 * self.step
    }
}

/// Evaluate a metric expression at every step.
pub fn metric_query(
    store: &dyn LogStore,
    expr: &MetricExpr,
    steps: &Steps,
    limits: &Limits,
) -> Result<Val, LogqlError> {
    eval(store, expr, steps, limits, None)
}

fn eval(
    store: &dyn LogStore,
    expr: &MetricExpr,
    steps: &Steps,
    limits: &Limits,
    needed: Option<&[String]>,
) -> Result<Val, LogqlError> {
    let n = steps.count();
    match expr {
        MetricExpr::Scalar(v) => Ok(Val::Scalar(*v)),
        MetricExpr::Vector(v) => Ok(Val::Vector(vec![Series {
            labels: Vec::new(),
            points: vec![Some(*v); n],
        }])),
        MetricExpr::Binary { op, lhs, rhs } => {
            let l = eval(store, lhs, steps, limits, None)?;
            let r = eval(store, rhs, steps, limits, None)?;
            Ok(binary(*op, l, r))
        }
        MetricExpr::Agg {
            op,
            grouping,
            param,
            inner,
        } => {
            let inner_needed = match (op, grouping) {
                (AggOp::Topk | AggOp::Bottomk, _) => None,
                (_, Some(g)) if !g.without => Some(g.labels.as_slice()),
                (_, Some(_)) => None,
                (_, None) => Some(&[][..]),
            };
            let series = match eval(store, inner, steps, limits, inner_needed)? {
                Val::Vector(v) => v,
                Val::Scalar(_) => {
                    return Err(LogqlError::parse(
                        0,
                        "aggregations need a vector, not a scalar",
                    ))
                }
            };
            let out = aggregate(*op, grouping.as_ref(), *param, series, n);
            check_series(out.len())?;
            Ok(Val::Vector(out))
        }
        MetricExpr::Range {
            func,
            log,
            range_ns,
        } => range(store, *func, log, *range_ns, steps, limits, needed).map(Val::Vector),
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[allow(clippy::too_many_arguments)]
fn range(
    store: &dyn LogStore,
    func: RangeFn,
    log: &LogExpr,
    range_ns: u64,
    steps: &Steps,
    limits: &Limits,
    needed: Option<&[String]>,
) -> Result<Vec<Series>, LogqlError> {
    let n = steps.count();
    let width = if n > 1 {
        gcd(steps.step, range_ns)
    } else {
        range_ns
    };
    let origin = steps.start.saturating_sub(range_ns);
    let count = ((steps.end - origin) / width.max(1)) as usize;
    if count > limits.max_buckets {
        return Err(LogqlError::Limit(format!(
            "step and range need {count} time buckets (at most {}); use a step that divides the range",
            limits.max_buckets
        )));
    }
    let buckets = Buckets {
        origin,
        width,
        count,
    };
    let (matchers, exact) = pushdown(log);
    let fast: Option<Vec<FastLabel>> = match needed {
        Some(names) if exact && matches!(func, RangeFn::CountOverTime | RangeFn::Rate) => {
            let mut fl = Vec::new();
            let mut ok = true;
            for name in names {
                match FastLabel::parse(name) {
                    Some(l) => {
                        if !fl.contains(&l) {
                            fl.push(l)
                        }
                    }
                    None => ok = false,
                }
            }
            ok.then_some(fl)
        }
        _ => None,
    };
    // per series: (count per bucket, bytes per bucket)
    let mut cells: BTreeMap<Labels, (Vec<u64>, Vec<u64>)> = BTreeMap::new();
    if let Some(group_by) = fast {
        let q = CountQuery {
            matchers,
            group_by: group_by.clone(),
            buckets,
        };
        for cs in store.count_logs(&q)? {
            let mut labels: Labels = Vec::new();
            for name in needed.unwrap_or_default() {
                let idx = group_by
                    .iter()
                    .position(|l| Some(*l) == FastLabel::parse(name));
                if let Some(v) = idx.and_then(|i| cs.group.get(i)) {
                    if !v.is_empty() {
                        labels.push((name.clone(), v.clone()));
                    }
                }
            }
            labels.sort();
            let entry = cells
                .entry(labels)
                .or_insert_with(|| (vec![0; count], Vec::new()));
            for (a, b) in entry.0.iter_mut().zip(&cs.counts) {
                *a += b;
            }
        }
    } else {
        let (lo, hi) = buckets.bounds();
        let sel = LogSelect {
            matchers,
            start_unix_nano: lo,
            end_unix_nano: hi,
        };
        let rows = store.select_logs(&sel, limits.max_scan + 1, Direction::Forward)?;
        if rows.len() > limits.max_scan {
            return Err(LogqlError::Limit(format!(
                "the query would read more than {} log records; narrow the selector or the time range, or aggregate only by service_name/level",
                limits.max_scan
            )));
        }
        for row in &rows {
            let Some((ts, line, labels)) = process(log, row) else {
                continue;
            };
            let Some(b) = buckets.index(ts) else { continue };
            if let Some(err) = labels.get(ERROR_LABEL) {
                return Err(LogqlError::Pipeline(format!(
                    "pipeline error: '{err}' for series: '{{{}}}'. Use a label filter to intentionally skip this error (e.g. | __error__!=\"{err}\")",
                    labels
                        .all()
                        .iter()
                        .map(|(k, v)| format!("{k}={v:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let key: Labels = match needed {
                Some(names) => labels
                    .all()
                    .into_iter()
                    .filter(|(k, _)| names.contains(k))
                    .collect(),
                None => labels
                    .iter()
                    .filter(|(_, _, k)| *k != LabelKind::Metadata)
                    .map(|(n, v, _)| (n.to_string(), v.to_string()))
                    .collect(),
            };
            if !cells.contains_key(&key) {
                check_series(cells.len() + 1)?;
            }
            let entry = cells
                .entry(key)
                .or_insert_with(|| (vec![0; count], vec![0; count]));
            entry.0[b] += 1;
            if let Some(x) = entry.1.get_mut(b) {
                *x += line.len() as u64;
            }
        }
    }
    check_series(cells.len())?;
    let per_window = (range_ns / width.max(1)) as usize;
    let step_buckets = (steps.step / width.max(1)) as usize;
    let secs = range_ns as f64 / 1e9;
    let mut out = Vec::with_capacity(cells.len());
    for (labels, (counts, bytes)) in cells {
        let prefix = |v: &[u64]| {
            let mut p = Vec::with_capacity(v.len() + 1);
            p.push(0u64);
            let mut acc = 0u64;
            for x in v {
                acc += x;
                p.push(acc);
            }
            p
        };
        let pc = prefix(&counts);
        let pb = prefix(&bytes);
        let mut points = Vec::with_capacity(n);
        for i in 0..n {
            let lo = (i * step_buckets).min(count);
            let hi = (lo + per_window).min(count);
            let c = pc[hi] - pc[lo];
            let b = if pb.len() > hi { pb[hi] - pb[lo] } else { 0 };
            points.push((c > 0).then(|| match func {
                RangeFn::CountOverTime => c as f64,
                RangeFn::Rate => c as f64 / secs,
                RangeFn::BytesOverTime => b as f64,
                RangeFn::BytesRate => b as f64 / secs,
            }));
        }
        if points.iter().any(Option::is_some) {
            out.push(Series { labels, points });
        }
    }
    Ok(out)
}
