//! The audit log: one JSON line per request. Tokens and accessors appear only as HMACs; request
//! and response bodies are never written, so no secret value can reach it. Writing fails
//! closed: a request whose line cannot be written is answered 500.
//!
//! Lines of concurrent requests are appended together: a request that finds no append running
//! writes its line itself, then the lines other requests queued meanwhile, with one `write` per
//! batch; a request that finds one running queues its line and waits for the outcome of the
//! `write` that carried it. So an idle server makes one system call per line and no hand-over,
//! a busy one one system call for many lines, and no request goes on before its line is in the
//! file.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use crate::batching::Combiner;

/// Lines are appended on an `O_APPEND` descriptor, a batch at a time with one `write`, so
/// concurrent batches (and other processes' appends) never interleave inside a line.
#[derive(Debug, Clone)]
pub struct AuditLog {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    file: std::fs::File,
    lines: Arc<Combiner<Vec<u8>, std::io::Error>>,
}

/// Appends a batch of lines with one `write`.
fn append(file: &std::fs::File, lines: Vec<Vec<u8>>) -> std::io::Result<()> {
    let joined;
    let bytes = match lines.as_slice() {
        [one] => one.as_slice(),
        _ => {
            joined = lines.concat();
            joined.as_slice()
        }
    };
    let written = (&*file).write(bytes)?;
    if written != bytes.len() {
        // A short append (disk full): lines are torn, so their requests must fail.
        return Err(std::io::Error::other("audit lines only partly written"));
    }
    Ok(())
}

/// Room for a typical line, so that serializing one seldom grows its buffer.
pub(crate) const LINE_CAPACITY: usize = 512;

/// Serializes `entry` as one JSON line at the end of `buf`.
pub(crate) fn push_line(buf: &mut Vec<u8>, entry: &impl serde::Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *buf, entry)?;
    buf.push(b'\n');
    Ok(())
}

impl AuditLog {
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    pub fn open(path: &Path) -> std::io::Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        Ok(Self {
            inner: Some(Arc::new(Inner {
                file: options.open(path)?,
                // An append is cheap: a batch takes what is queued without waiting for more.
                lines: Arc::new(Combiner::new(false)),
            })),
        })
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Appends whole lines (each ended by `\n`, as [`push_line`] writes them) in one `write`,
    /// so no other line comes between them; returns once they are written. An error means the
    /// request must fail.
    pub async fn append_lines(&self, lines: Vec<u8>) -> std::io::Result<()> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let writer = inner.clone();
        let outcome = inner
            .lines
            .submit_inline(lines, move |lines| append(&writer.file, lines))
            .await;
        match outcome {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(std::io::Error::new(e.kind(), e.to_string())),
            None => Err(std::io::Error::other("the audit writer stopped")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn record(log: &AuditLog, entry: &serde_json::Value) -> std::io::Result<()> {
        let mut line = Vec::new();
        push_line(&mut line, entry)?;
        log.append_lines(line).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_lines_are_all_written_whole() {
        let dir = tempfile_dir();
        let path = dir.join("audit.log");
        let log = AuditLog::open(&path).expect("opens");
        let tasks: Vec<_> = (0..500)
            .map(|i| {
                let log = log.clone();
                tokio::spawn(async move {
                    record(
                        &log,
                        &serde_json::json!({"n": i, "pad": "x".repeat(i % 97)}),
                    )
                    .await
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("joins").expect("written");
        }
        let text = std::fs::read_to_string(&path).expect("reads");
        let mut seen: Vec<u64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).expect("whole JSON line")["n"]
                    .as_u64()
                    .expect("n")
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..500).collect::<Vec<_>>());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_failed_write_fails_the_request() {
        // /dev/full accepts the open and fails every write with ENOSPC.
        let log = AuditLog::open(Path::new("/dev/full")).expect("opens");
        assert!(record(&log, &serde_json::json!({"x": 1})).await.is_err());
        assert!(record(&log, &serde_json::json!({"x": 2})).await.is_err());
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "vaultd-audit-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }
}
