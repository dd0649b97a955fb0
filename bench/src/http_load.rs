//! A small HTTP/1.1 load generator on hyper: `clients` connections, each sending its next
//! request as soon as the previous answer arrives (closed loop), or at a fixed total rate
//! ([`run_paced`]), for a fixed duration. Requests come from a list so each can be fresh (a new
//! signed JWT per login).

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One request to send.
#[derive(Clone)]
pub struct Request {
    pub method: &'static str,
    pub path: String,
    pub token: Option<String>,
    pub body: Option<Vec<u8>>,
}

#[derive(Default)]
pub struct LoadResult {
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub latencies_us: Vec<u64>,
}

impl LoadResult {
    /// Adds the counts and latencies of another run (one more slice of the same phase).
    pub fn absorb(&mut self, other: LoadResult) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.seconds += other.seconds;
        self.latencies_us.extend(other.latencies_us);
    }

    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let mut v = self.latencies_us.clone();
        v.sort_unstable();
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[i] as f64 / 1000.0
    }
}

/// Runs `clients` connections against `addr` (host:port) for `duration`, taking requests from
/// `requests` in order: cycling through them when `cycle`, else stopping when they run out.
pub fn run(
    addr: &str,
    clients: usize,
    duration: Duration,
    requests: Arc<Vec<Request>>,
    cycle: bool,
    expect_status: u16,
) -> LoadResult {
    run_with(
        addr,
        clients,
        duration,
        requests,
        cycle,
        expect_status,
        None,
    )
}

/// [`run`], but the clients together send `rate` requests per second, each on a fixed
/// schedule (client `i` of `n` sends its `k`-th request at `(k·n + i) / rate` seconds). A
/// request is sent at its time, or as soon as the answer before it arrived if that is later,
/// and its latency counts from its scheduled time, so a slow answer also counts against the
/// requests it held up (no coordinated omission). The generator's timer has a 1 ms
/// resolution, so up to 1 ms of each latency is its own.
pub fn run_paced(
    addr: &str,
    clients: usize,
    duration: Duration,
    requests: Arc<Vec<Request>>,
    expect_status: u16,
    rate: f64,
) -> LoadResult {
    run_with(
        addr,
        clients,
        duration,
        requests,
        false,
        expect_status,
        Some(rate),
    )
}

fn run_with(
    addr: &str,
    clients: usize,
    duration: Duration,
    requests: Arc<Vec<Request>>,
    cycle: bool,
    expect_status: u16,
    rate: Option<f64>,
) -> LoadResult {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let addr = addr.trim_start_matches("http://").to_owned();
    runtime.block_on(async move {
        let next = Arc::new(AtomicUsize::new(0));
        // A paced schedule starts once the clients had time to connect; its rate counts from
        // there.
        let started = Instant::now() + rate.map_or(Duration::ZERO, |_| Duration::from_millis(200));
        let deadline = started + duration;
        let mut tasks = Vec::new();
        for client in 0..clients {
            let (addr, requests, next) = (addr.clone(), requests.clone(), next.clone());
            // Paced: this client's k-th request is due at `started + (k·clients + client) / rate`.
            let interval = rate.map(|r| Duration::from_secs_f64(clients as f64 / r));
            let offset = rate.map(|r| Duration::from_secs_f64(client as f64 / r));
            tasks.push(tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let (mut sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .unwrap();
                tokio::spawn(conn);
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let mut due = offset.map(|o| started + o);
                while Instant::now() < deadline {
                    if let Some(at) = due {
                        tokio::time::sleep_until(at.into()).await;
                    }
                    let mut i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests.len() {
                        if !cycle {
                            break;
                        }
                        i %= requests.len();
                    }
                    let r = &requests[i];
                    let mut builder = hyper::Request::builder()
                        .method(r.method)
                        .uri(&r.path)
                        .header("host", "localhost");
                    if let Some(t) = &r.token {
                        builder = builder.header("x-vault-token", t);
                    }
                    let req = builder
                        .body(Full::new(Bytes::from(r.body.clone().unwrap_or_default())))
                        .unwrap();
                    let sent = due.unwrap_or_else(Instant::now);
                    if let (Some(at), Some(interval)) = (&mut due, interval) {
                        *at += interval;
                    }
                    match sender.send_request(req).await {
                        Ok(resp) => {
                            let status = resp.status().as_u16();
                            let _ = resp.into_body().collect().await;
                            latencies.push(sent.elapsed().as_micros() as u64);
                            if status != expect_status {
                                errors += 1;
                            }
                        }
                        Err(_) => {
                            errors += 1;
                            break;
                        }
                    }
                }
                (latencies, errors)
            }));
        }
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await.unwrap();
            all.extend(l);
            errors += e;
        }
        LoadResult {
            requests: all.len() as u64,
            errors,
            seconds: Instant::now()
                .saturating_duration_since(started)
                .as_secs_f64()
                .max(0.001),
            latencies_us: all,
        }
    })
}
