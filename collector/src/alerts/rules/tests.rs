//! Rule parsing and validation: every error names file, line and key.

use std::time::Duration;

use super::*;

fn err(yaml: &str) -> RuleError {
    parse_group_list("r.yaml", yaml).unwrap_err()
}

#[test]
fn the_issue_example_parses() {
    let g = parse_group_list(
        "r.yaml",
        r#"groups: [{name: checkout, interval: 15s, rules: [{alert: CheckoutErrors, kind: error_rate, service: checkout, threshold: 0.05, window: 5m, for: 1m, labels: {severity: page}, annotations: {summary: "{{ $labels.service }} errors at {{ $value }}"}}]}]"#,
    )
    .unwrap();
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].interval, Duration::from_secs(15));
    let r = &g[0].rules[0];
    assert_eq!(r.alert, "CheckoutErrors");
    assert_eq!(r.for_, Duration::from_secs(60));
    assert_eq!(
        r.kind,
        RuleKind::ErrorRate {
            threshold: 0.05,
            window: Duration::from_secs(300),
            operation: None
        }
    );
    assert_eq!(r.labels["severity"], "page");
    assert_eq!(
        r.annotation_text["summary"],
        "{{ $labels.service }} errors at {{ $value }}"
    );
}

#[test]
fn every_kind_parses_and_round_trips_through_json() {
    let yaml = "
groups:
  - name: all
    interval: 30s
    rules:
      - {alert: A, kind: instance_down, service: pay, for: 10s, keep_firing_for: 1m}
      - {alert: B, kind: too_few_instances, service: pay, min: 3}
      - {alert: C, kind: error_rate, service: pay, threshold: 0.1, window: 2m, operation: charge}
      - {alert: D, kind: latency, service: pay, quantile: 0.99, threshold: 250ms, window: 5m}
      - {alert: E, kind: latency, service: pay, quantile: 0.5, threshold: 0.3, window: 5m}
      - {alert: F, kind: log_match, query: 'timeout', threshold: 0, window: 1m, min_severity: error}
";
    let groups = parse_group_list("r.yaml", yaml).unwrap();
    let rules = &groups[0].rules;
    assert_eq!(rules[1].kind, RuleKind::TooFewInstances { min: 3 });
    assert_eq!(rules[0].keep_firing_for, Duration::from_secs(60));
    assert!(
        matches!(rules[3].kind, RuleKind::Latency { threshold, .. } if threshold == Duration::from_millis(250))
    );
    assert!(
        matches!(rules[4].kind, RuleKind::Latency { threshold, .. } if threshold == Duration::from_millis(300))
    );
    assert!(matches!(
        &rules[5].kind,
        RuleKind::LogMatch {
            min_severity: Some(17),
            ..
        }
    ));
    assert!(rules[5].service.is_none());
    let json =
        serde_json::json!({ "groups": groups.iter().map(group_to_json).collect::<Vec<_>>() });
    let again = parse_group_list("r.json", &json.to_string()).unwrap();
    assert_eq!(again, groups);
}

#[test]
fn errors_name_line_and_key() {
    let cases: &[(&str, usize, &str, &str)] = &[
        ("groups:\n  - name: g\n    rules:\n      - alert: X\n        kind: error_rate\n        service: a\n        threshold: 1.5\n        window: 5m\n", 7, "groups[0].rules[0].threshold", "between 0 and 1"),
        ("groups:\n  - name: g\n    rules:\n      - alert: X\n        kind: eror_rate\n", 5, "groups[0].rules[0].kind", "unknown kind 'eror_rate'"),
        ("groups:\n  - name: g\n    rules:\n      - alert: X\n        kind: latency\n        service: a\n        quantile: 0.9\n        threshold: 1s\n        window: 5m\n        min: 3\n", 10, "groups[0].rules[0].min", "unknown key"),
        ("groups:\n  - name: g\n    interval: often\n", 3, "groups[0].interval", "not a duration"),
        ("groups:\n  - name: g\n    rules:\n      - alert: X\n        kind: error_rate\n        service: a\n        window: 5m\n", 4, "groups[0].rules[0].threshold", "missing"),
        ("groups:\n  - name: g\n    rules:\n      - alert: X\n        kind: log_match\n        query: x\n        threshold: 1\n        window: 5m\n        annotations:\n          summary: '{{ $lables.service }}'\n", 10, "groups[0].rules[0].annotations.summary", "unknown placeholder"),
        ("groups:\n  - name: g\n    rules:\n      - alert: X\n        kind: too_few_instances\n        service: a\n        min: 1\n        labels: {alertname: Y}\n", 8, "groups[0].rules[0].labels.alertname", "set from 'alert'"),
        ("groups:\n  - name: g\n  - name: g\n", 3, "groups[1].name", "duplicate group"),
        ("groups:\n  - name: g\n    rules: [\n", 4, "-", "not valid YAML"),
        ("grups: []\n", 1, "grups", "unknown key"),
    ];
    for (yaml, line, key, needle) in cases {
        let e = err(yaml);
        assert_eq!((e.line, e.key.as_str()), (*line, *key), "{yaml}\n→ {e}");
        assert!(e.message.contains(needle), "{e}");
        assert!(e.to_string().starts_with(&format!("r.yaml:{line}:")), "{e}");
    }
}

#[test]
fn a_single_rule_takes_its_name_from_the_url() {
    let r = parse_rule(
        "body",
        r#"{"kind": "too_few_instances", "service": "a", "min": 1}"#,
        "FromUrl",
    )
    .unwrap();
    assert_eq!(r.alert, "FromUrl");
    let e = parse_rule(
        "body",
        "alert: Other\nkind: too_few_instances\nservice: a\nmin: 1\n",
        "FromUrl",
    )
    .unwrap_err();
    assert_eq!((e.line, e.key.as_str()), (1, "alert"));
}

#[test]
fn duplicate_groups_across_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.yaml"), dir.path().join("b.yaml"));
    std::fs::write(&a, "groups: [{name: g}]").unwrap();
    std::fs::write(&b, "groups: [{name: g}]").unwrap();
    let e = RuleSet::load(&[a, b], vec![]).unwrap_err();
    assert!(e.to_string().contains("already defined"), "{e}");
    let e = RuleSet::load(&[dir.path().join("missing.yaml")], vec![]).unwrap_err();
    assert!(
        e.to_string().contains("missing.yaml") && e.message.contains("cannot read"),
        "{e}"
    );
}
