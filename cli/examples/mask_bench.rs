//! Masking throughput, against a plain copy through the same loop in the same run.
//!
//! `cargo run --release -p vaultctl --example mask_bench [MiB]`
//!
//! Builds 100 and 1,000 random secrets of the shapes pipelines use (API tokens, hex keys,
//! passwords with punctuation, base64 keys, database URLs, one JWT), then streams log-like text
//! (default 256 MiB, a few secrets embedded raw or encoded) in 64 KiB writes through a
//! [`StreamMasker`], and through a loop that only copies. Prints the best of three passes.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use vaultctl::mask::{MaskSet, StreamMasker};

const CHUNK: usize = 64 * 1024;
const PASSES: usize = 3;

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(256);
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    println!(
        "mask_bench: {mib} MiB of log text, {} KiB writes, best of {PASSES}",
        CHUNK / 1024
    );
    for count in [100, 1000] {
        let secrets: Vec<Vec<u8>> = (0..count).map(|i| secret(&mut rng, i)).collect();
        let started = Instant::now();
        let set = MaskSet::new(&secrets);
        let build = started.elapsed();
        let (data, embedded) = log_text(&mut rng, mib << 20, &secrets);

        let copy = best_of(|sink| {
            for chunk in data.chunks(CHUNK) {
                sink.write_all(chunk)?;
                sink.drain();
            }
            Ok(())
        });
        let mut masked_runs = 0;
        let mask = best_of(|sink| {
            let before = sink.redactions;
            let mut masker = StreamMasker::new(&set);
            for chunk in data.chunks(CHUNK) {
                masker.write(chunk, sink)?;
                sink.drain();
            }
            masker.finish(sink)?;
            masked_runs = sink.redactions - before;
            sink.drain();
            Ok(())
        });

        let rate = |time: Duration| data.len() as f64 / time.as_secs_f64() / 1e6;
        println!(
            "{count:>5} secrets ({} patterns, built in {:.0} ms, {embedded} embedded, {masked_runs} masked): \
             mask {:>7.0} MB/s | copy {:>7.0} MB/s | ratio {:.3}",
            set.len(),
            build.as_secs_f64() * 1e3,
            rate(mask),
            rate(copy),
            copy.as_secs_f64() / mask.as_secs_f64(),
        );
    }
}

/// Runs `pass` over a fresh sink [`PASSES`] times; returns the fastest time.
fn best_of(mut pass: impl FnMut(&mut Sink) -> io::Result<()>) -> Duration {
    let mut sink = Sink::default();
    (0..PASSES)
        .map(|_| {
            let started = Instant::now();
            if let Err(error) = pass(&mut sink) {
                panic!("writing to memory failed: {error}");
            }
            started.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// Collects each write's output, then drops it: the cost of a consumer that copies once.
#[derive(Default)]
struct Sink {
    buf: Vec<u8>,
    redactions: usize,
}

impl Sink {
    fn drain(&mut self) {
        self.buf.clear();
    }
}

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data == b"***" {
            self.redactions += 1;
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A random secret shaped like what pipelines hold.
fn secret(rng: &mut Rng, index: usize) -> Vec<u8> {
    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const HEX: &[u8] = b"0123456789abcdef";
    const PUNCT: &[u8] = b"!@#$%^&()-_=+[]{};:,.<>/?~\"' ";
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if index == 0 {
        // One OIDC JWT, as `vaultctl exec` masks it.
        let mut jwt = b"eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.".to_vec();
        jwt.extend(rng.pick(B64, 600).iter().map(|&b| {
            if b == b'+' {
                b'-'
            } else if b == b'/' {
                b'_'
            } else {
                b
            }
        }));
        jwt.push(b'.');
        jwt.extend(rng.pick(ALNUM, 342));
        return jwt;
    }
    match rng.below(10) {
        0..=3 => {
            let prefix: &[u8] = [&b"ghp_"[..], b"sk_live_", b"xoxb-", b""][rng.below(4)];
            let len = 20 + rng.below(21);
            [prefix, &rng.pick(ALNUM, len)].concat()
        }
        4 | 5 => {
            let len = if rng.below(2) == 0 { 32 } else { 64 };
            rng.pick(HEX, len)
        }
        6 | 7 => {
            let len = 12 + rng.below(13);
            (0..len)
                .map(|_| {
                    if rng.below(4) == 0 {
                        rng.pick(PUNCT, 1)[0]
                    } else {
                        rng.pick(ALNUM, 1)[0]
                    }
                })
                .collect()
        }
        8 => {
            let mut key = rng.pick(B64, 40);
            key.push(b'=');
            key
        }
        _ => {
            let password = rng.pick(ALNUM, 16);
            [&b"postgres://app:"[..], &password, b"@db.internal:5432/app"].concat()
        }
    }
}

/// `size` bytes of log lines, with a secret (raw, base64 or JSON) about every 4 MiB.
fn log_text(rng: &mut Rng, size: usize, secrets: &[Vec<u8>]) -> (Vec<u8>, usize) {
    const LEVELS: [&str; 4] = ["INFO ", "DEBUG", "WARN ", "ERROR"];
    const WORDS: [&str; 16] = [
        "request",
        "completed",
        "user",
        "cache",
        "miss",
        "deploy",
        "step",
        "artifact",
        "upload",
        "retry",
        "connection",
        "pool",
        "build",
        "image",
        "layer",
        "pushed",
    ];
    const PATHS: [&str; 6] = [
        "/api/v1/items",
        "/healthz",
        "/api/v1/users/42",
        "/login",
        "/static/app.js",
        "/metrics",
    ];
    let mut data = Vec::with_capacity(size + 4096);
    let mut embedded = 0;
    let mut next_secret = 1 << 22;
    let mut line = 0u64;
    while data.len() < size {
        line += 1;
        let level = LEVELS[rng.below(4)];
        let _ = write!(
            data,
            "2026-03-{:02}T{:02}:{:02}:{:02}.{:03}Z {level} [worker-{}] ",
            1 + rng.below(28),
            rng.below(24),
            rng.below(60),
            rng.below(60),
            rng.below(1000),
            rng.below(8),
        );
        match rng.below(3) {
            0 => {
                let _ = write!(
                    data,
                    "GET {}?page={} {} {}.{}ms req_id={:016x}",
                    PATHS[rng.below(6)],
                    rng.below(100),
                    [200, 200, 304, 404, 500][rng.below(5)],
                    rng.below(100),
                    rng.below(10),
                    rng.next(),
                );
            }
            1 => {
                for _ in 0..4 + rng.below(8) {
                    data.extend_from_slice(WORDS[rng.below(16)].as_bytes());
                    data.push(b' ');
                }
                let _ = write!(data, "(attempt {}/{}, line {line})", 1 + rng.below(3), 3);
            }
            _ => {
                let _ = write!(
                    data,
                    "{{\"event\":\"{}\",\"duration_ms\":{},\"sha\":\"{:016x}{:016x}\",\"ok\":true}}",
                    WORDS[rng.below(16)],
                    rng.below(5000),
                    rng.next(),
                    rng.next(),
                );
            }
        }
        if data.len() >= next_secret {
            next_secret += 1 << 22;
            embedded += 1;
            let secret = &secrets[rng.below(secrets.len())];
            data.extend_from_slice(b" token=");
            match rng.below(3) {
                0 => data.extend_from_slice(secret),
                1 => data.extend_from_slice(STANDARD.encode(secret).as_bytes()),
                _ => {
                    let text = String::from_utf8_lossy(secret);
                    data.extend_from_slice(
                        serde_json::to_string(&text).unwrap_or_default().as_bytes(),
                    );
                }
            }
        }
        data.push(b'\n');
    }
    (data, embedded)
}

/// splitmix64: enough randomness for test data, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn pick(&mut self, alphabet: &[u8], len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len())])
            .collect()
    }
}
