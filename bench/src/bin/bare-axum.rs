//! The HTTP baseline of `./scripts/bench.sh`: a bare axum 0.8 server answering one small JSON
//! endpoint, shaped like vaultd's `sys/health`, on the same tokio runtime and socket options
//! vaultd uses. Everything vaultd adds per request (routing, request ids, timeouts, metrics,
//! audit, tokens, ACLs, decryption) is what the benchmark's ratios measure.
//!
//! Prints `listening on ADDR` and serves until killed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness: a panic is a failed run

use axum::Json;
use axum::routing::get;
use serde_json::{Value, json};

/// The allocator vaultd uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn health() -> ([(axum::http::HeaderName, &'static str); 1], Json<Value>) {
    (
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "initialized": true, "sealed": false, "standby": false,
            "performance_standby": false, "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled", "server_time_utc": 1_800_000_000u64,
            "version": "0.1.0", "cluster_name": "vaultd", "cluster_id": "bench",
        })),
    )
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("listening on {}", listener.local_addr().unwrap());
        let app = axum::Router::new().route("/v1/sys/health", get(health));
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app).await.unwrap();
    });
}
