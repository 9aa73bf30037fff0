//! The web UI in a real browser: start the collector, send a trace and logs
//! with the Rust OpenTelemetry SDK and a 10,000-span trace, then run
//! `tests/ui/ui.test.mjs` (playwright-core driving Debian's headless
//! Chromium) against it. It asserts what a user sees on every page, fails on
//! any console error or failed request, and saves a screenshot per page in
//! `target/ui-screenshots/`.
//!
//! Groups whose API this collector does not serve yet (critical path,
//! services live expiry, rules editor round trip, invalid rule field, service
//! map) are probed and reported as not run, naming the missing endpoint.
//! Needs: `chromium` (apt) and `npm ci --prefix tests/ui` (both in `.ci/run`).

use std::path::Path;

use skein_e2e::ui::{self, CHROMIUM};
use skein_e2e::{chain, Collector};

const BIG_SPANS: usize = 10_000;

/// Optional groups → the endpoint each needs.
const OPTIONAL: &[(&str, &str)] = &[
    ("critical_path", "/api/v1/traces"),
    ("services_live_expiry", "/api/v1/registry/services"),
    ("rules_roundtrip", "/api/v1/rules"),
    ("rules_invalid_field", "/api/v1/rules"),
    ("service_map", "/api/v1/dependencies"),
];

/// Endpoints the UI may call; those not served answer an expected 404.
const ENDPOINTS: &[&str] = &[
    "/api/v1/traces",
    "/api/v1/registry/services",
    "/api/v1/registry/watch",
    "/api/v1/rules",
    "/api/v1/dependencies",
    "/api/v1/alerts",
    "/api/v1/silences",
    "/api/v1/traces/compare",
];

#[test]
fn ui_pages_in_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: apt-get install chromium (done by .ci/run)"
    );
    assert!(
        ui::script_dir()
            .join("node_modules/playwright-core")
            .exists(),
        "tests/ui/node_modules is missing: run `npm ci --prefix tests/ui` (done by .ci/run)"
    );
    let collector = Collector::start_fast(&[]);
    let marker = chain::marker();
    let sent = ui::send_chain_sdk(&collector, &marker);
    let big = ui::send_big_trace(&collector, BIG_SPANS);
    let api = collector.api();
    api.wait_trace(&sent.trace_id, 3);
    api.wait_logs(&[("query", marker.as_str())], 2);
    ui::wait_big_trace(&collector.http_base(), &big, BIG_SPANS);

    let base = collector.http_base();
    let served: Vec<(&str, bool)> = ENDPOINTS
        .iter()
        .map(|p| (*p, p.ends_with("/watch") || ui::serves(&base, p)))
        .collect();
    let is_served = |p: &str| served.iter().any(|(q, s)| *q == p && *s);
    // The watch endpoint long-polls, so it is not probed: it comes with the registry.
    let missing: Vec<&str> = served
        .iter()
        .filter(|(p, s)| !*s || (p.ends_with("/watch") && !is_served("/api/v1/registry/services")))
        .map(|(p, _)| *p)
        .collect();
    let groups: Vec<&str> = OPTIONAL
        .iter()
        .filter(|(_, needs)| is_served(needs))
        .map(|(g, _)| *g)
        .collect();
    for (g, needs) in OPTIONAL.iter().filter(|(_, n)| !is_served(n)) {
        println!("ui group {g}: NOT RUN ({needs} is not served by this collector)");
    }

    let shots = ui::screenshot_dir();
    let result_file = shots.join("results.json");
    let (ok, out) = ui::run_script(&[
        ("SKEIN_URL", base.clone()),
        ("TRACE_ID", sent.trace_id.clone()),
        ("ROOT_SPAN", sent.root.clone()),
        ("ORDER_SPAN", sent.order.clone()),
        ("INVENTORY_SPAN", sent.inventory.clone()),
        ("LOG_MARKER", marker.clone()),
        ("BIG_TRACE_ID", big.clone()),
        ("BIG_SPANS", BIG_SPANS.to_string()),
        ("GROUPS", groups.join(",")),
        ("MISSING", missing.join(",")),
        ("SCREENSHOTS", shots.display().to_string()),
        ("RESULT_FILE", result_file.display().to_string()),
        ("CHROMIUM", CHROMIUM.to_string()),
    ]);
    println!("{out}");
    assert!(
        ok,
        "browser tests failed (screenshots in {}):\n{out}",
        shots.display()
    );
}
