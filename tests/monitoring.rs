//! The Grafana dashboard and Prometheus alert rules in packaging/monitoring
//! name only metrics that a running tracker exports.

mod common;

use std::collections::BTreeSet;

use common::*;

/// Every `opentracker_*` and `process_*` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let is_name_byte = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
    let bytes = text.as_bytes();
    let mut names = BTreeSet::new();
    for prefix in ["opentracker_", "process_"] {
        for (start, _) in text.match_indices(prefix) {
            if start > 0 && is_name_byte(bytes[start - 1]) {
                continue;
            }
            let len = bytes[start..]
                .iter()
                .take_while(|&&b| is_name_byte(b))
                .count();
            let name = &text[start..start + len];
            // `process_*` in a comment names no metric.
            if !name.ends_with('_') {
                names.insert(name.to_string());
            }
        }
    }
    names
}

#[test]
fn dashboards_and_alerts_use_exported_metrics() {
    let dir = TestDir::new();
    let white = dir.write("white", "");
    let blocked = dir.write("blocked", "192.0.2.0/24\n");
    let keys = dir.write("keys", "k3y\n");
    let tracker = Tracker::launch_in(
        dir,
        Launch {
            toml: format!(
                "[access]\nwhitelist = \"{}\"\nblocked_networks = \"{}\"\npasskeys = \"{}\"\n\
                 [webtorrent]\nenabled = true\n",
                white.display(),
                blocked.display(),
                keys.display()
            ),
            ..Launch::default()
        },
    );
    let exported: BTreeSet<String> = tracker
        .get("/metrics")
        .text()
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split(' ').next())
        .map(str::to_string)
        .collect();
    assert!(
        exported.contains("opentracker_list_entries"),
        "{exported:?}"
    );
    let root = env!("CARGO_MANIFEST_DIR");
    let dashboard = std::fs::read_to_string(format!(
        "{root}/packaging/monitoring/grafana-dashboard.json"
    ))
    .unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("valid JSON");
    assert!(parsed["panels"].as_array().is_some_and(|p| p.len() > 10));
    let alerts = std::fs::read_to_string(format!(
        "{root}/packaging/monitoring/opentracker-alerts.yml"
    ))
    .unwrap();
    for (file, text) in [("dashboard", &dashboard), ("alerts", &alerts)] {
        let names = metric_names(text);
        assert!(names.len() > 5, "{file}: {names:?}");
        for name in names {
            // Present only where the network namespace tracks connections;
            // the unit tests in src/stats/mod.rs show them.
            if name.starts_with("opentracker_conntrack_") {
                continue;
            }
            assert!(
                exported.contains(&name),
                "{file} uses {name}, which /metrics does not export"
            );
        }
    }
}
