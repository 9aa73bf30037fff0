//! Vector aggregations and arithmetic over evaluated series: every series
//! holds one optional value per evaluation step.

use std::collections::BTreeMap;

use super::ast::{AggOp, BinOp, Grouping};
use super::LogqlError;

/// Sorted `name → value` pairs.
pub type Labels = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    /// One slot per step; `None` = no sample.
    pub points: Vec<Option<f64>>,
}

/// The value of a metric expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Scalar(f64),
    Vector(Vec<Series>),
}

/// Most series one query may produce (Loki's default `max_query_series`).
pub const MAX_SERIES: usize = 500;

pub fn check_series(n: usize) -> Result<(), LogqlError> {
    if n > MAX_SERIES {
        return Err(LogqlError::Limit(format!(
            "maximum of series ({MAX_SERIES}) reached for a single query; aggregate with sum by (…) or narrow the selector"
        )));
    }
    Ok(())
}

fn group_key(labels: &Labels, grouping: Option<&Grouping>) -> Labels {
    match grouping {
        None => Vec::new(),
        Some(g) if g.without => labels
            .iter()
            .filter(|(n, _)| !g.labels.contains(n))
            .cloned()
            .collect(),
        Some(g) => labels
            .iter()
            .filter(|(n, _)| g.labels.contains(n))
            .cloned()
            .collect(),
    }
}

/// `op by|without (…) (series)`.
pub fn aggregate(
    op: AggOp,
    grouping: Option<&Grouping>,
    param: Option<usize>,
    input: Vec<Series>,
    steps: usize,
) -> Vec<Series> {
    let mut groups: BTreeMap<Labels, Vec<Series>> = BTreeMap::new();
    for s in input {
        groups
            .entry(group_key(&s.labels, grouping))
            .or_default()
            .push(s);
    }
    let mut out = Vec::new();
    for (key, members) in groups {
        match op {
            AggOp::Topk | AggOp::Bottomk => {
                let k = param.unwrap_or(1);
                let mut kept: Vec<Series> = members
                    .iter()
                    .map(|s| Series {
                        labels: s.labels.clone(),
                        points: vec![None; steps],
                    })
                    .collect();
                for step in 0..steps {
                    let mut vals: Vec<(usize, f64)> = members
                        .iter()
                        .enumerate()
                        .filter_map(|(i, s)| s.points[step].map(|v| (i, v)))
                        .collect();
                    vals.sort_by(|a, b| {
                        let o = a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal);
                        if op == AggOp::Topk {
                            o.reverse()
                        } else {
                            o
                        }
                    });
                    for (i, v) in vals.into_iter().take(k) {
                        kept[i].points[step] = Some(v);
                    }
                }
                out.extend(
                    kept.into_iter()
                        .filter(|s| s.points.iter().any(Option::is_some)),
                );
            }
            _ => {
                let mut points = vec![None; steps];
                for (step, slot) in points.iter_mut().enumerate() {
                    let vals = members.iter().filter_map(|s| s.points[step]);
                    *slot = fold(op, vals);
                }
                if points.iter().any(Option::is_some) {
                    out.push(Series {
                        labels: key,
                        points,
                    });
                }
            }
        }
    }
    out
}

fn fold(op: AggOp, vals: impl Iterator<Item = f64>) -> Option<f64> {
    let mut n = 0usize;
    let mut acc: f64 = 0.0;
    for v in vals {
        acc = match (op, n) {
            (_, 0) => v,
            (AggOp::Sum | AggOp::Avg, _) => acc + v,
            (AggOp::Min, _) => acc.min(v),
            (AggOp::Max, _) => acc.max(v),
            _ => acc,
        };
        n += 1;
    }
    if n == 0 {
        return None;
    }
    Some(match op {
        AggOp::Avg => acc / n as f64,
        AggOp::Count => n as f64,
        _ => acc,
    })
}

/// `lhs op rhs` with one-to-one matching on identical label sets.
pub fn binary(op: BinOp, lhs: Val, rhs: Val) -> Val {
    match (lhs, rhs) {
        (Val::Scalar(a), Val::Scalar(b)) => Val::Scalar(op.apply(a, b)),
        (Val::Vector(v), Val::Scalar(b)) => Val::Vector(map(v, |a| op.apply(a, b))),
        (Val::Scalar(a), Val::Vector(v)) => Val::Vector(map(v, |b| op.apply(a, b))),
        (Val::Vector(l), Val::Vector(r)) => {
            let right: BTreeMap<&Labels, &Series> = r.iter().map(|s| (&s.labels, s)).collect();
            let out = l
                .iter()
                .filter_map(|ls| {
                    let rs = right.get(&ls.labels)?;
                    let points: Vec<Option<f64>> = ls
                        .points
                        .iter()
                        .zip(&rs.points)
                        .map(|(a, b)| Some(op.apply((*a)?, (*b)?)))
                        .collect();
                    points.iter().any(Option::is_some).then(|| Series {
                        labels: ls.labels.clone(),
                        points,
                    })
                })
                .collect();
            Val::Vector(out)
        }
    }
}

fn map(v: Vec<Series>, f: impl Fn(f64) -> f64) -> Vec<Series> {
    v.into_iter()
        .map(|s| Series {
            labels: s.labels,
            points: s.points.into_iter().map(|p| p.map(&f)).collect(),
        })
        .collect()
}

/// Prometheus' sample value text: `2`, `0.5`, `+Inf`, `NaN`.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(labels: &[(&str, &str)], points: &[Option<f64>]) -> Series {
        Series {
            labels: labels
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            points: points.to_vec(),
        }
    }

    #[test]
    fn sum_by_and_topk() {
        let input = vec![
            s(&[("level", "info"), ("svc", "a")], &[Some(1.0), None]),
            s(&[("level", "info"), ("svc", "b")], &[Some(2.0), Some(5.0)]),
            s(&[("level", "error"), ("svc", "a")], &[None, Some(3.0)]),
        ];
        let by = Grouping {
            without: false,
            labels: vec!["level".into()],
        };
        let out = aggregate(AggOp::Sum, Some(&by), None, input.clone(), 2);
        assert_eq!(
            out,
            vec![
                s(&[("level", "error")], &[None, Some(3.0)]),
                s(&[("level", "info")], &[Some(3.0), Some(5.0)]),
            ]
        );
        let top = aggregate(AggOp::Topk, None, Some(1), input.clone(), 2);
        assert_eq!(
            top,
            vec![s(
                &[("level", "info"), ("svc", "b")],
                &[Some(2.0), Some(5.0)]
            )]
        );
        let avg = aggregate(AggOp::Avg, None, None, input, 2);
        assert_eq!(avg, vec![s(&[], &[Some(1.5), Some(4.0)])]);
    }

    #[test]
    fn binary_matching_and_format() {
        let one = Val::Vector(vec![s(&[], &[Some(1.0)])]);
        assert_eq!(
            binary(BinOp::Add, one.clone(), one),
            Val::Vector(vec![s(&[], &[Some(2.0)])])
        );
        assert_eq!(format_value(2.0), "2");
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
    }
}
