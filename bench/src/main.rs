//! `cargo run --release -p bench`: runs every scenario of PRODUCT.md §8 against real release
//! binaries on loopback, each beside a baseline measured in the same run on the same machine,
//! and prints a table plus `target/bench/results.json`, each figure beside the previous run's
//! (read from that file before it is overwritten). The HTTP baseline is a bare axum server
//! (`src/bin/bare-axum.rs`) measured in the same run.
//!
//! Flags: `--quick` (shorter runs, smaller scale test), `--skip-scale`, `--only GROUP`
//! (`http`, `mask`, `exec`, `replicas`, `scale`), `--compare VAULTD` (KV reads and
//! `sys/health` of this build and another `vaultd` binary, in alternating slices of one run;
//! prints its own report and writes no results).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness: a panic is a failed run

mod http_load;
mod machine;
mod scenarios;

use serde_json::{Value, json};

/// One row of the report.
pub struct Row {
    pub scenario: String,
    pub figure: String,
    pub baseline: String,
    pub ratio: String,
    pub target: String,
    pub met: Option<bool>,
    pub json: Value,
    /// The share of the machine's CPU the hypervisor took for other guests while the row's
    /// figure and baseline were measured (percent); `None` until `main` fills in the group's.
    pub steal: Option<f64>,
}

/// Runs one group of scenarios and gives each row without a steal share of its own the
/// group's.
fn metered(rows: &mut Vec<Row>, group: impl FnOnce() -> Vec<Row>) {
    let started = machine::CpuTimes::now();
    let mut group = group();
    let steal = started.shares_since().steal;
    for row in &mut group {
        row.steal.get_or_insert(steal);
    }
    rows.extend(group);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let skip_scale = args.iter().any(|a| a == "--skip-scale");
    // `--only http|mask|exec|scale` runs one group.
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    vaultd::oidc::jwt_crypto::install();
    if let Some(other) = args
        .iter()
        .position(|a| a == "--compare")
        .and_then(|i| args.get(i + 1))
    {
        scenarios::compare(std::path::Path::new(other), quick);
        return;
    }
    let mut rows = Vec::new();
    if wanted("http") {
        metered(&mut rows, || scenarios::http(quick));
    }
    if wanted("mask") {
        metered(&mut rows, || scenarios::masking(quick));
    }
    if wanted("exec") {
        metered(&mut rows, || vec![scenarios::exec_overhead(quick)]);
    }
    // Needs PostgreSQL (Debian's `postgresql`); run with `--only replicas` or in a full run.
    if wanted("replicas") && e2e::postgres::bin_dir().is_some() {
        metered(&mut rows, || scenarios::replicas(quick));
    }
    if wanted("scale") && !skip_scale {
        metered(&mut rows, || vec![scenarios::store_scale(quick)]);
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    let path = dir.join("results.json");
    let earlier = previous_results(&path);
    let previous = previous_run(&earlier);
    print_table(&rows, &previous);
    // Rows of groups this run left out (`--only`) are carried over with their own date, so the
    // next full run still finds a previous figure for every scenario.
    let carried: Vec<Value> = earlier
        .into_iter()
        .filter(|r| {
            !rows
                .iter()
                .any(|row| r["scenario"] == row.scenario.as_str())
        })
        .collect();
    let machine = scenarios::machine();
    let report = json!({
        "date": scenarios::today(),
        "machine": machine,
        "quick": quick,
        "results": rows.iter().map(|r| json!({
            "scenario": r.scenario, "date": scenarios::today(), "figure": r.figure,
            "baseline": r.baseline, "ratio": r.ratio, "target": r.target, "met": r.met,
            "data": r.json, "steal_percent": r.steal, "previous": previous.get(&r.scenario),
        })).chain(carried).collect::<Vec<_>>(),
    });
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("\n{machine}\nJSON: {}", path.display());
    warn_about_steal(&rows);
}

/// The rows of the previous `results.json` (before this run overwrites it), each with its date
/// (its own if it was carried over from an earlier run, else the report's).
fn previous_results(path: &std::path::Path) -> Vec<Value> {
    let Some(report) = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
    else {
        return Vec::new();
    };
    let date = report["date"].clone();
    report["results"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .cloned()
                .map(|mut r| {
                    if r["date"].is_null() {
                        r["date"] = date.clone();
                    }
                    r
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The previous rows by scenario: `{date, figure, ratio}`.
fn previous_run(rows: &[Value]) -> std::collections::BTreeMap<String, Value> {
    rows.iter()
        .filter_map(|r| {
            let scenario = r["scenario"].as_str()?.to_owned();
            Some((
                scenario,
                json!({"date": r["date"], "figure": r["figure"], "ratio": r["ratio"]}),
            ))
        })
        .collect()
}

/// Above this share of stolen CPU a row's figure is flagged: the code was measured on part of a
/// machine.
const STEAL_WARNING_PERCENT: f64 = 5.0;

fn warn_about_steal(rows: &[Row]) {
    let stolen: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let steal = r.steal?;
            (steal > STEAL_WARNING_PERCENT)
                .then(|| format!("  {} ({steal:.0}% stolen)", r.scenario))
        })
        .collect();
    if !stolen.is_empty() {
        println!(
            "\nThe hypervisor took more than {STEAL_WARNING_PERCENT:.0}% of the machine's CPU for other guests while these were measured;\ntheir figures say more about the neighbours than about the code:\n{}",
            stolen.join("\n")
        );
    }
}

fn print_table(rows: &[Row], previous: &std::collections::BTreeMap<String, Value>) {
    let headers = [
        "scenario",
        "result",
        "baseline (same run)",
        "ratio",
        "target",
        "met",
        "steal",
        "previous run (ratio)",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.scenario.clone(),
                r.figure.clone(),
                r.baseline.clone(),
                r.ratio.clone(),
                r.target.clone(),
                match r.met {
                    Some(true) => "yes".into(),
                    Some(false) => "NO".into(),
                    None => "-".into(),
                },
                r.steal.map_or_else(|| "-".into(), |s| format!("{s:.0}%")),
                previous.get(&r.scenario).map_or_else(
                    || "-".into(),
                    |p| {
                        format!(
                            "{} ({})",
                            p["figure"].as_str().unwrap_or("?"),
                            p["ratio"].as_str().unwrap_or("?")
                        )
                    },
                ),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..8)
        .map(|i| {
            cells
                .iter()
                .map(|c| c[i].len())
                .chain([headers[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |c: [&str; 8]| {
        let parts: Vec<String> = c
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{s:<w$}", w = widths[i]))
            .collect();
        println!("| {} |", parts.join(" | "));
    };
    println!();
    line(headers);
    let dashes: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    println!("|-{}-|", dashes.join("-|-"));
    for c in &cells {
        line([&c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &c[6], &c[7]]);
    }
}
