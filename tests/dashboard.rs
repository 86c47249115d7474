//! The monitoring pack against a live relinkd: every metric that the Grafana
//! dashboard (config/grafana/relinkd.json) and the alerting rules
//! (config/prometheus/relinkd.rules.yml) query is one the daemon exports, and
//! every dashboard panel reads from the dashboard's data source variable;
//! every alert links to its paragraph of README's Runbook.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use serde_json::Value;

const DASHBOARD: &str = include_str!("../config/grafana/relinkd.json");
const RULES: &str = include_str!("../config/prometheus/relinkd.rules.yml");

/// What a scrape exports: series names (`x_bucket` etc. for histograms) and
/// the `# TYPE` of each family.
struct Exported {
    series: BTreeSet<String>,
    types: BTreeMap<String, String>,
}

impl Exported {
    fn parse(scrape: &str) -> Self {
        let mut series = BTreeSet::new();
        let mut types = BTreeMap::new();
        for line in scrape.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut words = rest.split_whitespace();
                if let (Some(name), Some(kind)) = (words.next(), words.next()) {
                    types.insert(name.to_owned(), kind.to_owned());
                }
            } else if !line.starts_with('#') && !line.trim().is_empty() {
                let end = line.find(['{', ' ']).unwrap_or(line.len());
                series.insert(line[..end].to_owned());
            }
        }
        Self { series, types }
    }

    /// Why `name` cannot be queried, if it cannot.
    fn problem(&self, name: &str) -> Option<String> {
        if name == "up" {
            return None; // set by Prometheus itself
        }
        match self.types.get(name).map(String::as_str) {
            // A histogram's own name selects nothing in PromQL.
            Some(kind @ ("histogram" | "summary")) => Some(format!(
                "{name} is a {kind}: query {name}_bucket, {name}_sum or {name}_count"
            )),
            Some(_) => None,
            None if self.series.contains(name) => None,
            None => Some(format!("{name} is not exported by relinkd")),
        }
    }
}

/// Metric names in a PromQL expression: identifiers outside string literals
/// and range selectors that are `up` or start with `relinkd_` or `process_`
/// (the only metrics relinkd's dashboards and rules may use), or `relinkd:`
/// (the rules' own recorded series).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let bytes = expr.as_bytes();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'"' | b'\'' | b'`') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'[' => {
                while i < bytes.len() && bytes[i] != b']' {
                    i += 1;
                }
            }
            // `$__rate_interval`, `$job`: Grafana variables, not metrics.
            b'$' => {
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b':')
                {
                    i += 1;
                }
                let word = &expr[start..i];
                if word == "up"
                    || word.starts_with("relinkd_")
                    || word.starts_with("relinkd:")
                    || word.starts_with("process_")
                {
                    names.insert(word.to_owned());
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// Every panel, rows' nested panels included.
fn all_panels(panels: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in panels.as_array().into_iter().flatten() {
        out.push(panel);
        out.extend(all_panels(&panel["panels"]));
    }
    out
}

/// Every PromQL expression of the dashboard, with where it is: panel
/// targets (rows' nested panels too), query variables and annotation
/// queries.
fn dashboard_exprs(dashboard: &Value) -> Vec<(String, String)> {
    let mut exprs = Vec::new();
    for panel in all_panels(&dashboard["panels"]) {
        let place = format!("panel {:?}", panel["title"].as_str().unwrap_or("?"));
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                exprs.push((place.clone(), expr.to_owned()));
            }
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if variable["type"] != "query" {
            continue;
        }
        let place = format!("variable {}", variable["name"]);
        for query in [
            &variable["query"],
            &variable["query"]["query"],
            &variable["definition"],
        ] {
            if let Some(query) = query.as_str() {
                exprs.push((place.clone(), query.to_owned()));
            }
        }
    }
    for annotation in dashboard["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(expr) = annotation["expr"].as_str() {
            exprs.push((
                format!("annotation {}", annotation["name"]),
                expr.to_owned(),
            ));
        }
    }
    exprs
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The `expr:` of every rule in a rules file, read as text: a one-line
/// `expr: ...` or a block scalar (`expr: |` / `expr: >` and the lines
/// indented below it).
fn rule_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut exprs = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        let Some(rest) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let rest = rest.trim();
        if rest.starts_with('|') || rest.starts_with('>') {
            let mut block = String::new();
            while i < lines.len() && (lines[i].trim().is_empty() || indent(lines[i]) > indent(line))
            {
                block.push_str(lines[i]);
                block.push('\n');
                i += 1;
            }
            exprs.push(block);
        } else {
            exprs.push(rest.trim_matches(['\'', '"']).to_owned());
        }
    }
    exprs
}

/// Runs the simulator (one linked, one unlinked and one restricted
/// instance), a webhook receiver and the daemon for a few seconds, so codes
/// are requested and delivered, and returns a scrape of /metrics.
async fn live_scrape() -> String {
    let s = Scenario::new(&["authorized", "notAuthorized", "yellowCard"])
        .defaults(
            "poll_interval = \"5s\"\nlinking_poll_interval = \"1s\"\n\n[[digest]]\n\
             name = \"yearly\"\nschedule = \"0 0 0 1 1 *\"\nchannels = [\"hook\"]",
        )
        .start()
        .await;
    wait(secs(5)).await;
    let scrape = s.daemon.scrape().await;
    s.stop().await;
    assert!(
        scrape.contains("relinkd_instance_info{"),
        "the scrape has the fleet: {scrape}"
    );
    scrape
}

/// Fails listing every (name, where used) that the scrape cannot serve.
fn assert_all_exported(uses: &BTreeMap<String, BTreeSet<String>>, scrape: &str, what: &str) {
    let exported = Exported::parse(scrape);
    let problems: Vec<String> = uses
        .iter()
        .filter_map(|(name, places)| {
            exported.problem(name).map(|problem| {
                let places: Vec<&str> = places.iter().map(String::as_str).collect();
                format!("{problem} (used by {})", places.join("; "))
            })
        })
        .collect();
    assert!(
        problems.is_empty(),
        "{what} queries metrics a live relinkd does not export:\n  {}",
        problems.join("\n  ")
    );
}

#[tokio::test(start_paused = true)]
async fn every_dashboard_query_uses_exported_metrics_and_the_datasource_variable() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("relinkd.json is JSON");
    assert_eq!(dashboard["uid"], "relinkd");
    assert_eq!(dashboard["title"], "relinkd");
    assert!(dashboard["schemaVersion"].as_u64().unwrap_or(0) >= 36);

    // The data source variable, and every panel (and target, and query
    // variable) reading from it.
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating");
    let datasource = variables
        .iter()
        .find(|v| v["type"] == "datasource" && v["query"] == "prometheus")
        .expect("a templating variable of type datasource over prometheus");
    let name = datasource["name"].as_str().unwrap();
    let refers = |ds: &Value| {
        let uid = ds["uid"].as_str().or(ds.as_str()).unwrap_or("");
        (ds["type"].is_null() || ds["type"] == "prometheus")
            && (uid == format!("${{{name}}}") || uid == format!("${name}"))
    };
    let panels = all_panels(&dashboard["panels"]);
    let mut data_panels = 0;
    for panel in &panels {
        let title = panel["title"].as_str().unwrap_or("?");
        if panel["type"] == "row" {
            assert!(
                panel["datasource"].is_null() || refers(&panel["datasource"]),
                "row {title}: datasource {}",
                panel["datasource"]
            );
            continue;
        }
        data_panels += 1;
        assert!(
            refers(&panel["datasource"]),
            "panel {title}: datasource {} is not ${{{name}}}",
            panel["datasource"]
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {title} has no query");
        for target in targets {
            assert!(
                target["datasource"].is_null() || refers(&target["datasource"]),
                "panel {title}: target datasource {}",
                target["datasource"]
            );
            assert!(
                target["expr"].is_string(),
                "panel {title}: a target without expr"
            );
        }
    }
    assert!(data_panels >= 10, "only {data_panels} panels");
    for variable in variables.iter().filter(|v| v["type"] == "query") {
        assert!(
            refers(&variable["datasource"]),
            "variable {}: datasource {}",
            variable["name"],
            variable["datasource"]
        );
    }

    // The metric names of every query.
    let exprs = dashboard_exprs(&dashboard);
    assert!(exprs.len() >= 20, "only {} queries", exprs.len());
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (place, expr) in &exprs {
        for metric in metric_names(expr) {
            uses.entry(metric).or_default().insert(place.clone());
        }
    }
    // The extraction found what the dashboard is about (guards against a
    // parser that finds nothing and so checks nothing).
    for expected in [
        "relinkd_instance_state",
        "relinkd_instance_info",
        "relinkd_api_request_duration_seconds_bucket",
        "relinkd_deliveries_total",
        "relinkd_build_info",
        "process_cpu_seconds_total",
        "relinkd_config_reloads_total",
        "relinkd_reboot_failures_total",
    ] {
        assert!(uses.contains_key(expected), "no panel queries {expected}");
    }

    assert_all_exported(&uses, &live_scrape().await, "the dashboard");
}

#[tokio::test(start_paused = true)]
async fn every_alert_rule_uses_exported_metrics() {
    let exprs = rule_exprs(RULES);
    let rules: Vec<(&str, &str)> = RULES
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            (l.strip_prefix("- alert:").map(|a| ("alert", a.trim())))
                .or_else(|| l.strip_prefix("- record:").map(|r| ("record", r.trim())))
        })
        .collect();
    let alerts = rules.iter().filter(|(kind, _)| *kind == "alert").count();
    assert!(alerts >= 8, "only {alerts} alerts");
    assert_eq!(exprs.len(), rules.len(), "one expr per rule: {exprs:#?}");

    // A recorded series is used after the rule recording it, from exported
    // metrics; the uses of exported metrics are checked below.
    let mut recorded = BTreeSet::new();
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for ((kind, rule), expr) in rules.iter().zip(&exprs) {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "no metric in {rule}: {expr:?}");
        for name in names {
            if name.starts_with("relinkd:") {
                assert!(
                    recorded.contains(&name),
                    "{rule} uses {name} before it is recorded"
                );
                continue;
            }
            uses.entry(name)
                .or_default()
                .insert(format!("{kind} {rule}"));
        }
        if *kind == "record" {
            recorded.insert((*rule).to_owned());
        }
    }
    for expected in [
        "up",
        "relinkd_instance_info",
        "relinkd_api_requests_total",
        "relinkd_reboots_total",
        "relinkd_reboot_failures_total",
        "relinkd_forwarded_state_mismatch_total",
    ] {
        assert!(uses.contains_key(expected), "no rule queries {expected}");
    }

    assert_all_exported(&uses, &live_scrape().await, "the alerting rules");
}

#[test]
fn every_alert_has_a_runbook_url_to_its_paragraph_in_the_readme() {
    let readme = include_str!("../README.md");
    let runbook = readme
        .split_once("\n## Runbook\n")
        .expect("README has a Runbook section")
        .1;
    let runbook = runbook.split("\n## ").next().unwrap();
    let mut alerts = 0;
    let mut current = None;
    for line in RULES.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("- alert: ") {
            current = Some(name);
            alerts += 1;
        }
        if let Some(url) = line.strip_prefix("runbook_url: ") {
            let name = current.take().expect("a runbook_url belongs to an alert");
            let anchor = name.to_lowercase();
            assert_eq!(
                url.trim_matches('"'),
                format!("https://github.com/relinkd/relinkd/blob/main/README.md#{anchor}"),
                "{name}"
            );
            assert!(
                runbook.contains(&format!("\n### {name}\n\n**Means:**")),
                "README's Runbook has no paragraph for {name}"
            );
        }
    }
    assert!(alerts >= 10, "{alerts} alerts");
    let with_url = RULES.matches("runbook_url: ").count();
    assert_eq!(with_url, alerts, "every alert has a runbook_url");
}

#[test]
fn the_rules_name_the_scrape_job_in_one_line_only() {
    // Outside comments: the recording rule's selector, and nothing else (an
    // alert's text that named the job would go stale when it is changed).
    let naming: Vec<&str> = RULES
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.contains("job=") || l.contains("job_name"))
        .collect();
    assert_eq!(naming, ["expr: up{job=\"relinkd\"}"], "{naming:#?}");
}

#[test]
fn metric_names_skip_strings_ranges_labels_and_variables() {
    let names = metric_names(
        "sum by (job) (rate(relinkd_state_polls_total{job=~\"$job\",name=\"relinkd_fake\"}[$__rate_interval])) \
         * on(job) group_left(name) relinkd_instance_info > 0 or up == 0 \
         or absent(process_open_fds) and upper",
    );
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "process_open_fds",
            "relinkd_instance_info",
            "relinkd_state_polls_total",
            "up"
        ]
    );
    let exprs = rule_exprs(
        "rules:\n  - alert: A\n    expr: |\n      up\n      == 0\n    for: 1m\n  - alert: B\n    expr: absent(up)\n",
    );
    assert_eq!(exprs, ["      up\n      == 0\n", "absent(up)"]);
}
