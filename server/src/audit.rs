//! The audit log: one JSON line per request. Tokens and accessors appear only as HMACs; request
//! and response bodies are never written, so no secret value can reach it. Writing fails
//! closed: a request whose line cannot be written is answered 500.
//!
//! Lines of concurrent requests are appended together: each caller hands its line to a writer
//! task and waits for the outcome of the one `write` that carried it, so a busy server makes one
//! system call for many lines, and no request goes on before its line is in the file.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Longest run of lines appended by one `write`.
const MAX_BATCH_BYTES: usize = 1 << 20;

/// One line waiting to be written, and where its outcome goes.
type Pending = (Vec<u8>, tokio::sync::oneshot::Sender<Result<(), String>>);

#[derive(Default)]
struct Queue {
    pending: Vec<Pending>,
    writing: bool,
}

/// Lines are appended on an `O_APPEND` descriptor, a batch at a time with one `write`, so
/// concurrent batches (and other processes' appends) never interleave inside a line.
#[derive(Debug, Clone)]
pub struct AuditLog {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    file: std::fs::File,
    queue: Mutex<Queue>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditLog")
    }
}

/// If the writer task ends before it has emptied the queue (dropped or panicking): fails
/// what is still queued and lets a new writer start.
struct WriterGuard<'a>(&'a Inner, bool);

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        if !self.1 {
            let mut queue = self.0.lock();
            queue.writing = false;
            // Dropping the senders answers their callers with an error.
            queue.pending.clear();
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        match self.queue.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Writes queued lines until the queue is empty.
    async fn drain(self: Arc<Self>) {
        let mut guard = WriterGuard(&self, false);
        loop {
            // Lines of requests already running join this write.
            tokio::task::yield_now().await;
            let batch: Vec<Pending> = {
                let mut queue = self.lock();
                if queue.pending.is_empty() {
                    // Under the lock: a line queued after this starts a new writer.
                    queue.writing = false;
                    guard.1 = true;
                    return;
                }
                let mut size = 0;
                let take = queue
                    .pending
                    .iter()
                    .take_while(|(line, _)| {
                        size += line.len();
                        size <= MAX_BATCH_BYTES || size == line.len()
                    })
                    .count();
                queue.pending.drain(..take).collect()
            };
            let mut bytes = Vec::with_capacity(batch.iter().map(|(l, _)| l.len()).sum());
            for (line, _) in &batch {
                bytes.extend_from_slice(line);
            }
            let outcome = match (&self.file).write(&bytes) {
                Ok(n) if n == bytes.len() => Ok(()),
                // A short append (disk full): lines are torn, so their requests must fail.
                Ok(_) => Err("audit lines only partly written".to_owned()),
                Err(e) => Err(e.to_string()),
            };
            for (_, done) in batch {
                let _ = done.send(outcome.clone());
            }
        }
    }
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
                queue: Mutex::default(),
            })),
        })
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Appends one entry; returns once it is written. An error means the request must fail.
    pub async fn record(&self, entry: &impl serde::Serialize) -> std::io::Result<()> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let mut line = serde_json::to_vec(entry)?;
        line.push(b'\n');
        let (done, outcome) = tokio::sync::oneshot::channel();
        let start = {
            let mut queue = inner.lock();
            queue.pending.push((line, done));
            !std::mem::replace(&mut queue.writing, true)
        };
        if start {
            tokio::spawn(inner.clone().drain());
        }
        match outcome.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(std::io::Error::other(e)),
            Err(_) => Err(std::io::Error::other("the audit writer stopped")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_lines_are_all_written_whole() {
        let dir = tempfile_dir();
        let path = dir.join("audit.log");
        let log = AuditLog::open(&path).expect("opens");
        let tasks: Vec<_> = (0..500)
            .map(|i| {
                let log = log.clone();
                tokio::spawn(async move {
                    log.record(&serde_json::json!({"n": i, "pad": "x".repeat(i % 97)}))
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
        assert!(log.record(&serde_json::json!({"x": 1})).await.is_err());
        assert!(log.record(&serde_json::json!({"x": 2})).await.is_err());
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
