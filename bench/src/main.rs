//! `cargo run --release -p bench`: runs every scenario of PRODUCT.md §8 against real release
//! binaries on loopback, each beside a baseline measured in the same run on the same machine,
//! and prints a table plus `target/bench/results.json`.
//!
//! Flags: `--quick` (shorter runs, smaller scale test), `--skip-scale`, `--only GROUP`
//! (`http`, `mask`, `exec`, `replicas`, `scale`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness: a panic is a failed run

mod http_load;
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
    let mut rows = Vec::new();
    if wanted("http") {
        rows.extend(scenarios::http(quick));
    }
    if wanted("mask") {
        rows.extend(scenarios::masking(quick));
    }
    if wanted("exec") {
        rows.push(scenarios::exec_overhead(quick));
    }
    // Needs PostgreSQL (Debian's `postgresql`); run with `--only replicas` or in a full run.
    if wanted("replicas") && e2e::postgres::bin_dir().is_some() {
        rows.extend(scenarios::replicas(quick));
    }
    if wanted("scale") && !skip_scale {
        rows.push(scenarios::store_scale(quick));
    }
    print_table(&rows);
    let machine = scenarios::machine();
    let report = json!({
        "date": scenarios::today(),
        "machine": machine,
        "quick": quick,
        "results": rows.iter().map(|r| json!({
            "scenario": r.scenario, "figure": r.figure, "baseline": r.baseline, "ratio": r.ratio,
            "target": r.target, "met": r.met, "data": r.json,
        })).collect::<Vec<_>>(),
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("\n{machine}\nJSON: {}", path.display());
}

fn print_table(rows: &[Row]) {
    let headers = [
        "scenario",
        "result",
        "baseline (same run)",
        "ratio",
        "target",
        "met",
    ];
    let cells: Vec<[String; 6]> = rows
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
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            cells
                .iter()
                .map(|c| c[i].len())
                .chain([headers[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |c: [&str; 6]| {
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
        line([&c[0], &c[1], &c[2], &c[3], &c[4], &c[5]]);
    }
}
