use opentelemetry_proto::tonic::trace::v1::span::Link;

use super::*;
use crate::traces::testing::*;

fn ids(tree: &TraceTree, nodes: &[usize]) -> Vec<SpanId> {
    nodes.iter().map(|&i| tree.nodes[i].span_id).collect()
}

fn children(tree: &TraceTree, n: u8) -> Vec<SpanId> {
    let i = tree.get(&id(n)).expect("node");
    ids(tree, &tree.nodes[i].children)
}

#[test]
fn empty_input_is_no_tree() {
    assert!(TraceTree::build(Vec::new()).is_none());
}

/// Table: (name, spans, expected roots, expected orphans, expected children per node).
#[test]
fn structure_table() {
    type Case = (
        &'static str,
        Vec<SpanRecord>,
        Vec<u8>,
        Vec<u8>,
        Vec<(u8, Vec<u8>)>,
    );
    let cases: Vec<Case> = vec![
        (
            "single chain",
            vec![
                sp(1, None, "a", 0, 10),
                sp(2, Some(1), "a", 1, 9),
                sp(3, Some(2), "b", 2, 8),
            ],
            vec![1],
            vec![],
            vec![(1, vec![2]), (2, vec![3]), (3, vec![])],
        ),
        (
            "children ordered by start, input order irrelevant",
            vec![
                sp(4, Some(1), "a", 5, 6),
                sp(1, None, "a", 0, 10),
                sp(3, Some(1), "a", 2, 3),
                sp(2, Some(1), "a", 2, 4),
            ],
            vec![1],
            vec![],
            vec![(1, vec![2, 3, 4])],
        ),
        (
            "several roots",
            vec![
                sp(2, None, "b", 5, 6),
                sp(1, None, "a", 0, 10),
                sp(3, Some(2), "b", 5, 6),
            ],
            vec![1, 2],
            vec![],
            vec![(2, vec![3])],
        ),
        (
            "orphans of one missing parent share a placeholder that keeps its id",
            vec![
                sp(1, None, "a", 0, 10),
                sp(3, Some(2), "c", 2, 4),
                sp(4, Some(2), "c", 3, 5),
                sp(5, Some(3), "c", 3, 4),
            ],
            vec![1, 2],
            vec![3, 4],
            vec![(2, vec![3, 4]), (3, vec![5])],
        ),
        (
            "two missing parents, two placeholders",
            vec![sp(3, Some(2), "c", 2, 4), sp(6, Some(9), "c", 1, 2)],
            vec![9, 2],
            vec![6, 3],
            vec![(2, vec![3]), (9, vec![6])],
        ),
        (
            "a span naming itself as parent is a root",
            vec![sp(1, Some(1), "a", 0, 10)],
            vec![1],
            vec![],
            vec![],
        ),
        (
            "a parent cycle is cut and becomes a root",
            vec![
                sp(1, None, "a", 0, 10),
                sp(2, Some(3), "a", 1, 2),
                sp(3, Some(2), "a", 3, 4),
            ],
            vec![1, 2],
            vec![],
            vec![(2, vec![3]), (3, vec![])],
        ),
    ];
    for (name, spans, roots, orphans, kids) in cases {
        let tree = TraceTree::build(spans).expect(name);
        let want: Vec<SpanId> = roots.iter().map(|&n| id(n)).collect();
        assert_eq!(ids(&tree, &tree.roots), want, "{name}: roots");
        let want: Vec<SpanId> = orphans.iter().map(|&n| id(n)).collect();
        assert_eq!(ids(&tree, &tree.orphans), want, "{name}: orphans");
        for (n, k) in kids {
            let want: Vec<SpanId> = k.iter().map(|&c| id(c)).collect();
            assert_eq!(children(&tree, n), want, "{name}: children of {n}");
        }
        // Every node is reachable exactly once from the roots.
        let mut seen = tree.preorder();
        assert_eq!(seen.len(), tree.nodes.len(), "{name}: reachable");
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), tree.nodes.len(), "{name}: no node twice");
    }
}

#[test]
fn placeholder_spans_its_orphans_and_everyone_is_told() {
    let tree = TraceTree::build(vec![
        sp(1, None, "a", 0, 100),
        sp(3, Some(2), "c", 20, 40),
        sp(4, Some(2), "c", 30, 70),
    ])
    .expect("tree");
    let p = tree.get(&id(2)).expect("placeholder");
    let ph = &tree.nodes[p];
    assert!(ph.is_placeholder());
    assert_eq!(ph.name(), MISSING_SPAN_NAME);
    assert_eq!(ph.service(), "");
    assert_eq!((ph.start_unix_nano, ph.end_unix_nano), (at(20), at(70)));
    assert_eq!(ph.parent, None);
    assert!(
        ph.warnings[0].contains("a000000000000002"),
        "{:?}",
        ph.warnings
    );
    assert!(ph.warnings[0].contains("2 span(s)"), "{:?}", ph.warnings);
    let orphan = &tree.nodes[tree.get(&id(3)).expect("orphan")];
    assert_eq!(orphan.parent_span_id, Some(id(2)));
    assert_eq!(orphan.parent, Some(p));
    assert!(orphan.warnings[0].contains("never received"));
    assert_eq!(tree.span_count(), 3);
}

#[test]
fn duplicates_are_merged() {
    // Identical retry: one node, no warning.
    let a = sp(1, None, "a", 0, 10);
    let tree = TraceTree::build(vec![a.clone(), a.clone(), a]).expect("tree");
    assert_eq!(tree.nodes.len(), 1);
    assert!(tree.nodes[0].warnings.is_empty());

    // Differing copies: the one that ends last wins, with a warning.
    let early = sp(1, None, "a", 0, 10);
    let late = sp(1, None, "a", 0, 12);
    let child = sp(2, Some(1), "a", 1, 2);
    let tree = TraceTree::build(vec![late.clone(), child.clone(), early.clone()]).expect("tree");
    assert_eq!(tree.nodes.len(), 2);
    let root = &tree.nodes[tree.get(&id(1)).expect("root")];
    assert_eq!(root.end_unix_nano, at(12));
    assert_eq!(root.children.len(), 1, "the child is attached once");
    assert!(
        root.warnings[0].contains("2 differing copies"),
        "{:?}",
        root.warnings
    );
    let tree = TraceTree::build(vec![early, child, late]).expect("tree");
    assert_eq!(
        tree.nodes[tree.get(&id(1)).expect("root")].end_unix_nano,
        at(12)
    );
}

#[test]
fn links_are_kept_on_the_record_not_as_tree_edges() {
    let mut consumer = sp(2, None, "b", 20, 30);
    consumer.span.links.push(Link {
        trace_id: vec![7; 16],
        span_id: id(1).to_vec(),
        ..Default::default()
    });
    let tree = TraceTree::build(vec![sp(1, None, "a", 0, 10), consumer]).expect("tree");
    assert_eq!(ids(&tree, &tree.roots), vec![id(1), id(2)]);
    let n = &tree.nodes[tree.get(&id(2)).expect("consumer")];
    assert_eq!(n.record.as_ref().map(|r| r.span.links.len()), Some(1));
}

#[test]
fn negative_durations_are_clamped_with_a_warning() {
    let tree = TraceTree::build(vec![sp(1, None, "a", 10, 5)]).expect("tree");
    assert_eq!(tree.nodes[0].duration_ns(), 0);
    assert!(tree.nodes[0].warnings[0].contains("end time is before"));
}

#[test]
fn deep_chain_does_not_overflow_the_stack() {
    // 100k-deep chain: ids need more than a byte, so build records directly.
    let n = 100_000u32;
    let records: Vec<SpanRecord> = (1..=n)
        .map(|i| {
            let mut r = sp(1, None, "a", 0, 10);
            r.span.span_id = u64::from(i).to_be_bytes().to_vec();
            if i > 1 {
                r.span.parent_span_id = u64::from(i - 1).to_be_bytes().to_vec();
            }
            r
        })
        .collect();
    let tree = TraceTree::build(records).expect("tree");
    assert_eq!(tree.roots.len(), 1);
    assert_eq!(tree.preorder().len(), n as usize);
    let path = crate::traces::critical_path(&tree);
    assert_eq!(path.len(), n as usize);
}

#[test]
fn id_padding() {
    assert_eq!(span_id_of(&[1, 2]), [0, 0, 0, 0, 0, 0, 1, 2]);
    assert_eq!(
        span_id_of(&[9, 1, 2, 3, 4, 5, 6, 7, 8]),
        [1, 2, 3, 4, 5, 6, 7, 8]
    );
    assert_eq!(trace_id_of(&[1])[15], 1);
}
