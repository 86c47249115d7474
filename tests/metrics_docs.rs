//! The README's metrics table and the live `/metrics` cannot drift: every
//! family relinkd exports is documented with its type and its labels (and
//! the values of each label whose values the table lists), and every
//! documented metric is exported.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;

/// A label and, where the README lists them, its values.
type Labels = BTreeMap<String, Option<BTreeSet<String>>>;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Family {
    kind: String,
    labels: Labels,
}

/// The backticked words of `text` outside parentheses (label names), and
/// for each the backticked words in the parentheses after it (its values).
fn parse_labels(cell: &str) -> Labels {
    let mut labels = Labels::new();
    let mut current: Option<String> = None;
    let mut depth = 0;
    let mut rest = cell;
    while let Some(at) = rest.find(['`', '(', ')']) {
        let (before, tail) = rest.split_at(at);
        let _ = before;
        match tail.as_bytes()[0] {
            b'(' => {
                depth += 1;
                rest = &tail[1..];
            }
            b')' => {
                depth -= 1;
                rest = &tail[1..];
            }
            _ => {
                let end = tail[1..].find('`').expect("balanced backticks") + 1;
                let word = tail[1..end].to_owned();
                if depth == 0 {
                    labels.insert(word.clone(), None);
                    current = Some(word);
                } else if let Some(label) = &current {
                    labels
                        .get_mut(label)
                        .unwrap()
                        .get_or_insert_with(BTreeSet::new)
                        .insert(word);
                }
                rest = &tail[end + 1..];
            }
        }
    }
    labels
}

/// `name -> family` from the README table rows `| \`name\` | type | labels | ...`.
fn documented() -> BTreeMap<String, Family> {
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
        let family = Family {
            kind: cells[2].to_owned(),
            labels: parse_labels(cells[3]),
        };
        assert!(!family.kind.is_empty(), "a row without a type: {row}");
        // A row may name several metrics: `a`, `b`.
        for name in cells[1].split(',').map(|n| n.trim().trim_matches('`')) {
            out.insert(name.to_owned(), family.clone());
        }
    }
    out
}

/// `name -> family` from a scrape: `# TYPE` lines, and the labels and
/// label values of every sample (`le`, and histogram suffixes, aside).
fn exported(scrape: &str) -> BTreeMap<String, Family> {
    let mut out: BTreeMap<String, Family> = scrape
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, kind)| {
            let family = Family {
                kind: kind.to_owned(),
                labels: Labels::new(),
            };
            (name.to_owned(), family)
        })
        .collect();
    for line in scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let series = line.rsplit_once(' ').unwrap().0;
        let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
        let family = ["_bucket", "_sum", "_count", ""]
            .iter()
            .find_map(|suffix| {
                let base = name.strip_suffix(suffix)?;
                out.contains_key(base).then(|| base.to_owned())
            })
            .unwrap_or_else(|| panic!("{name} has no # TYPE"));
        let family = out.get_mut(&family).unwrap();
        for pair in labels
            .trim_end_matches('}')
            .split(',')
            .filter(|p| !p.is_empty())
        {
            let (label, value) = pair.split_once('=').unwrap();
            if label == "le" {
                continue;
            }
            family
                .labels
                .entry(label.to_owned())
                .or_insert_with(|| Some(BTreeSet::new()))
                .as_mut()
                .unwrap()
                .insert(value.trim_matches('"').to_owned());
        }
    }
    out
}

#[test]
fn label_cells_are_read_as_names_with_their_values() {
    let labels = parse_labels("`channel`, `outcome` (`success`, `failure`), `reason`");
    assert_eq!(labels.len(), 3);
    assert_eq!(labels["channel"], None);
    assert_eq!(
        labels["outcome"],
        Some(BTreeSet::from(["success".to_owned(), "failure".to_owned()]))
    );
}

#[tokio::test(start_paused = true)]
async fn every_exported_metric_is_documented_with_its_type_and_labels_and_every_documented_one_exported()
 {
    // Every channel type whose metrics differ: a WhatsApp channel adds the
    // skip counters.
    let s = Scenario::new(&["notAuthorized", "authorized"])
        .config(|a| {
            format!(
                "{}\n[[channel]]\nname = \"wa\"\ntype = \"whatsapp\"\nvia = {}\n\
                 chat_ids = [\"441234999001@c.us\"]\n\n[[digest]]\nname = \"yearly\"\n\
                 schedule = \"0 0 0 1 1 *\"\nchannels = [\"hook\"]\n",
                fleet_toml(a.sim, a.hook, 2, ""),
                FIRST_ID + 1
            )
        })
        .start()
        .await;
    wait(secs(10)).await;
    let scrape = s.daemon.scrape().await;
    s.stop().await;

    let documented = documented();
    let exported = exported(&scrape);
    assert!(exported.len() >= 25, "{exported:?}");
    for (name, family) in &exported {
        let doc = documented
            .get(name)
            .unwrap_or_else(|| panic!("{name} is exported but not documented in README"));
        assert_eq!(
            doc.kind, family.kind,
            "{name}: README says {}, /metrics says {}",
            doc.kind, family.kind
        );
        // Per-instance families are sparse: a series exists only where its
        // value is not 0 (or for the state the instance is in), so the scrape
        // shows some of the documented values, or no series at all.
        let per_instance = doc.labels.contains_key("wa_instance");
        if per_instance && family.labels.is_empty() {
            continue;
        }
        let doc_names: BTreeSet<_> = doc.labels.keys().collect();
        let names: BTreeSet<_> = family.labels.keys().collect();
        assert_eq!(doc_names, names, "{name}: the labels differ");
        for (label, values) in &doc.labels {
            if let Some(values) = values {
                let exported = family.labels[label].as_ref().unwrap();
                if per_instance {
                    assert!(
                        exported.is_subset(values),
                        "{name}: {label} values {exported:?} not all documented in {values:?}"
                    );
                } else {
                    assert_eq!(
                        values, exported,
                        "{name}: the values of {label} differ (all known values are exported at 0)"
                    );
                }
            }
        }
    }
    for name in documented.keys() {
        assert!(
            exported.contains_key(name),
            "{name} is documented in README but not exported"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_scraper_that_accepts_gzip_gets_the_same_exposition_gzipped() {
    let s = Scenario::new(&["authorized", "authorized"]).start().await;
    wait(secs(10)).await;
    let url = format!("http://{}/metrics", s.daemon.addr);
    let plain = common::http().get(&url).send().await.unwrap();
    assert_eq!(plain.headers().get("content-encoding"), None);
    let plain = plain.text().await.unwrap();
    let zipped = common::http()
        .get(&url)
        .header("accept-encoding", "deflate, gzip;q=0.9")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    let bytes = zipped.bytes().await.unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
        .unwrap();
    s.stop().await;
    let families = |t: &str| {
        t.lines()
            .filter(|l| l.starts_with("# TYPE"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(families(&text), families(&plain));
    assert!(
        bytes.len() < plain.len(),
        "{} vs {}",
        bytes.len(),
        plain.len()
    );
}
