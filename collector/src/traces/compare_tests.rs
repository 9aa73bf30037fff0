use super::*;
use crate::query::SpanRecord;
use crate::traces::testing::*;
use crate::traces::{assemble, TraceSettings};

fn tree(spans: Vec<SpanRecord>) -> TraceTree {
    assemble(spans, &TraceSettings::default())
        .expect("trace")
        .tree
}

fn row(d: &PathDiff) -> (String, String, Option<usize>, usize, usize, &'static str) {
    (
        d.step.service.clone(),
        d.step.operation.clone(),
        d.parent,
        d.a_count,
        d.b_count,
        d.change(),
    )
}

#[test]
fn structure_diff_by_path() {
    let a = tree(vec![
        named(sp(1, None, "web", 0, 100), "GET /"),
        named(sp(2, Some(1), "db", 10, 20), "SELECT"),
        named(sp(3, Some(1), "db", 20, 30), "SELECT"),
        named(sp(4, Some(1), "cache", 40, 45), "get"),
    ]);
    let b = tree(vec![
        named(sp(1, None, "web", 0, 200), "GET /"),
        named(sp(2, Some(1), "db", 10, 30), "SELECT"),
        named(sp(3, Some(1), "db", 30, 50), "SELECT"),
        named(sp(5, Some(1), "db", 50, 70), "SELECT"),
        named(sp(6, Some(1), "search", 80, 150), "query"),
        // The same operation deeper down is another path.
        named(sp(7, Some(6), "db", 90, 100), "SELECT"),
    ]);
    let c = compare(&a, &b);
    let rows: Vec<_> = c.paths.iter().map(row).collect();
    let s = |v: &str| v.to_string();
    assert_eq!(
        rows,
        vec![
            (s("web"), s("GET /"), None, 1, 1, "same"),
            (s("db"), s("SELECT"), Some(0), 2, 3, "count_changed"),
            (s("cache"), s("get"), Some(0), 1, 0, "removed"),
            (s("search"), s("query"), Some(0), 0, 1, "added"),
            (s("db"), s("SELECT"), Some(3), 0, 1, "added"),
        ]
    );
    assert_eq!(c.paths[4].depth, 2);
    let select = &c.paths[1];
    assert_eq!(select.a_duration_ns, 20 * MS as u64);
    assert_eq!(select.b_duration_ns, 60 * MS as u64);
    assert_eq!(select.duration_delta_ns(), 40 * MS);
    assert_eq!(select.count_delta(), 1);
    assert_eq!(c.paths[0].duration_delta_ns(), 100 * MS);
    assert_eq!(c.a.span_count, 4);
    assert_eq!(c.b.span_count, 6);
    assert_eq!(c.a.duration_ns, 100 * MS as u64);
    assert_eq!(c.b.services, vec!["db", "search", "web"]);
}

#[test]
fn identical_traces_are_all_same() {
    let spans = vec![sp(1, None, "a", 0, 10), sp(2, Some(1), "b", 1, 5)];
    let c = compare(&tree(spans.clone()), &tree(spans));
    assert!(c
        .paths
        .iter()
        .all(|p| p.change() == "same" && p.duration_delta_ns() == 0));
    assert_eq!(c.paths.len(), 2);
}

#[test]
fn placeholders_take_part() {
    let a = tree(vec![sp(1, None, "a", 0, 10), sp(3, Some(2), "b", 1, 5)]);
    let b = tree(vec![
        sp(1, None, "a", 0, 10),
        sp(2, Some(1), "x", 1, 6),
        sp(3, Some(2), "b", 1, 5),
    ]);
    let c = compare(&a, &b);
    let missing = c
        .paths
        .iter()
        .find(|p| p.step.operation == crate::traces::tree::MISSING_SPAN_NAME)
        .expect("placeholder row");
    assert_eq!((missing.a_count, missing.b_count), (1, 0));
}
