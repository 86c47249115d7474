//! The README's metrics table and the live `/metrics` cannot drift: every
//! family relinkd exports is documented, with its type, and every documented
//! metric is exported.

mod common;

use std::collections::BTreeMap;

use common::*;

/// `name -> type` from the README table rows `| \`name\` | type | ...`.
fn documented() -> BTreeMap<String, String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("\n## Metrics\n")
        .nth(1)
        .expect("README has a Metrics section");
    let section = section.split("\n## ").next().unwrap();
    let mut out = BTreeMap::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let kind = cells.get(2).copied().unwrap_or("").to_owned();
        // A row may name several metrics: `a`, `b`.
        for name in cells[1].split(',').map(|n| n.trim().trim_matches('`')) {
            out.insert(name.to_owned(), kind.clone());
        }
    }
    out
}

/// `name -> type` from the `# TYPE` lines of a scrape.
fn exported(scrape: &str) -> BTreeMap<String, String> {
    scrape
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, kind)| (name.to_owned(), kind.to_owned()))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn every_exported_metric_is_documented_and_every_documented_metric_exported() {
    let (_sim, sim_addr) = start_sim(secs(150), &["notAuthorized", "authorized"]).await;
    let (_hook, hook_addr) = Receiver::start().await;
    // Every channel type whose metrics differ: a WhatsApp channel adds the
    // skip counters.
    let toml = format!(
        "{}\n[[channel]]\nname = \"wa\"\ntype = \"whatsapp\"\nvia = {}\nchat_ids = [\"441234999001@c.us\"]\n",
        fleet_toml(sim_addr, hook_addr, 2, ""),
        FIRST_ID + 1
    );
    let (config, _dir) = load_config(&toml);
    let daemon = Daemon::start(config).await;
    wait(secs(10)).await;
    let scrape = daemon.scrape().await;
    daemon.stop().await;

    let documented = documented();
    let exported = exported(&scrape);
    assert!(exported.len() >= 20, "{exported:?}");
    for (name, kind) in &exported {
        let doc = documented
            .get(name)
            .unwrap_or_else(|| panic!("{name} is exported but not documented in README"));
        if !doc.is_empty() {
            assert_eq!(doc, kind, "{name}: README says {doc}, /metrics says {kind}");
        }
    }
    for name in documented.keys() {
        assert!(
            exported.contains_key(name),
            "{name} is documented in README but not exported"
        );
    }
}
