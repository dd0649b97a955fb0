//! Group commit: many concurrent writers share one durability barrier. A caller that has
//! applied its write takes a ticket; it returns once a sync that *started after* its ticket
//! has finished. At most one sync runs at a time, and it covers every ticket taken before it
//! started — so under load one fsync acknowledges a whole batch of writes. Before it starts,
//! a short commit window lets writers already running join it.
//!
//! The sync runs in its own task: a caller that goes away (a timed-out or disconnected
//! request) never leaves the barrier stuck.

use super::{Backend, StoreError, Tree, Write};
use prometheus_client::metrics::counter::Counter;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

#[derive(Default)]
struct State {
    /// Tickets handed out so far.
    issued: u64,
    /// Whether a sync is running now.
    running: bool,
}

/// The outcome of the last sync: the highest ticket known durable, and the range of tickets a
/// failed sync leaves in doubt.
#[derive(Clone, Default)]
struct Progress {
    durable: u64,
    failed: Option<(u64, String)>,
}

pub struct GroupCommit {
    state: Mutex<State>,
    progress: watch::Sender<Progress>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupCommit")
    }
}

impl Default for GroupCommit {
    fn default() -> Self {
        Self {
            state: Mutex::new(State::default()),
            progress: watch::channel(Progress::default()).0,
        }
    }
}

impl GroupCommit {
    /// Returns once every write applied before this call is durable.
    pub async fn sync(self: &Arc<Self>, backend: &Arc<dyn Backend>) -> Result<(), StoreError> {
        let ticket = {
            let mut state = self.lock();
            state.issued += 1;
            state.issued
        };
        let mut progress = self.progress.subscribe();
        loop {
            {
                let now = progress.borrow_and_update();
                if now.durable >= ticket {
                    return Ok(());
                }
                if let Some((covered, error)) = &now.failed
                    && *covered >= ticket
                {
                    return Err(StoreError::Backend(error.clone()));
                }
            }
            let start = {
                let mut state = self.lock();
                if state.running {
                    false
                } else {
                    state.running = true;
                    true
                }
            };
            if start {
                let this = self.clone();
                let backend = backend.clone();
                tokio::spawn(async move {
                    let target = this.gather().await;
                    let result = backend.sync().await;
                    this.lock().running = false;
                    this.progress.send_modify(|p| match result {
                        Ok(()) => {
                            p.durable = p.durable.max(target);
                            p.failed = None;
                        }
                        Err(e) => p.failed = Some((target, e.to_string())),
                    });
                });
            }
            if progress.changed().await.is_err() {
                return Err(StoreError::Backend("group commit closed".into()));
            }
        }
    }

    /// The commit window: before a sync starts, lets the writers that are already running
    /// (other requests on the runtime's queues) apply their writes and take their tickets, so
    /// that one sync covers them too. It yields while new tickets keep arriving, at most
    /// a few times: under no load it costs one yield, under load it turns many
    /// small syncs into a few large ones. Returns the last ticket the sync will cover: every
    /// write of a ticket taken so far was applied before it.
    async fn gather(&self) -> u64 {
        crate::batching::gather(|| self.lock().issued).await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// Write combining: the independent write batches of concurrent callers (each a new token,
/// say) are applied as **one** backend batch and made durable by **one** sync, and each caller
/// is answered once both are done (`crate::batching`). An embedded engine pays per batch and per
/// sync (sled seals and writes a log buffer for each), so under load this turns N of each into
/// one. The writes of one caller stay all-or-nothing (the combined batch is atomic); a failure
/// fails every caller in the batch, and none is answered before its writes are durable. There
/// is no commit window: the next combined batch is whatever queued while the last one was
/// applied and flushed (off the async workers), which under load is already many callers;
/// waiting for more only delayed every caller of the batch.
///
/// A caller's batch may also be *create-once* ([`WriteCombiner::apply_durably_once`]): it lands
/// only if a given key is absent (a login's `jti`), checked by the one task that applies the
/// combined batches. That is atomic only when that task is the key's only writer, so only for
/// an exclusive backend (see [`Backend::exclusive`]), whose other writers of such keys go
/// through here too.
#[derive(Debug)]
pub struct WriteCombiner {
    batches: Arc<crate::batching::Combiner<Pending, StoreError>>,
    counts: CommitCounts,
}

impl Default for WriteCombiner {
    fn default() -> Self {
        Self {
            batches: Arc::new(crate::batching::Combiner::new(false)),
            counts: CommitCounts::default(),
        }
    }
}

/// How well writes combine: durable commits made, and the callers' batches they carried
/// (exported as `vaultd_store_commits_total` and `vaultd_store_commit_batches_total`; the
/// second over the first is the batches per commit).
#[derive(Debug, Clone, Default)]
pub struct CommitCounts {
    pub commits: Counter,
    pub batches: Counter,
}

/// One caller's batch.
struct Pending {
    writes: Vec<Write>,
    /// A key that must be absent for the batch to land (the batch sets it).
    once: Option<(Tree, Vec<u8>)>,
    /// Set when `once` was present, so the batch was left out.
    refused: Arc<AtomicBool>,
}

impl WriteCombiner {
    /// Applies `writes` (atomically, with other callers' writes) and returns once they are
    /// durable.
    pub async fn apply_durably(
        self: &Arc<Self>,
        backend: &Arc<dyn Backend>,
        writes: Vec<Write>,
    ) -> Result<(), StoreError> {
        self.submit(backend, writes, None).await.map(|_| ())
    }

    /// Applies `writes` only if `once` is absent, which `writes` must set; returns whether it
    /// did, once durable. Two batches with the same `once` in one combined batch: the first
    /// lands. Only for an exclusive backend (refused otherwise).
    pub async fn apply_durably_once(
        self: &Arc<Self>,
        backend: &Arc<dyn Backend>,
        once: (Tree, Vec<u8>),
        writes: Vec<Write>,
    ) -> Result<bool, StoreError> {
        if !backend.exclusive() {
            return Err(StoreError::Backend(
                "create-once combined writes need an exclusive backend".into(),
            ));
        }
        super::check_guard_written((once.0, &once.1), &writes)?;
        self.submit(backend, writes, Some(once)).await
    }

    /// The counts of commits made and batches carried, to be exported.
    pub fn counts(&self) -> &CommitCounts {
        &self.counts
    }

    async fn submit(
        self: &Arc<Self>,
        backend: &Arc<dyn Backend>,
        writes: Vec<Write>,
        once: Option<(Tree, Vec<u8>)>,
    ) -> Result<bool, StoreError> {
        let refused = Arc::new(AtomicBool::new(false));
        let pending = Pending {
            writes,
            once,
            refused: refused.clone(),
        };
        let backend = backend.clone();
        let counts = self.counts.clone();
        let outcome = self
            .batches
            .submit(pending, move |batches| {
                let (backend, counts) = (backend.clone(), counts.clone());
                async move { apply_combined(&backend, &counts, batches).await }
            })
            .await;
        match outcome {
            Some(Ok(())) => Ok(!refused.load(Ordering::Acquire)),
            Some(Err(e)) => Err(match &*e {
                StoreError::Sealed => StoreError::Sealed,
                StoreError::Unavailable(cause) => StoreError::Unavailable(cause.clone()),
                other => StoreError::Backend(other.to_string()),
            }),
            None => Err(StoreError::Backend("the write combiner stopped".into())),
        }
    }
}

/// One combined batch: leaves out each create-once batch whose key exists (or was claimed by
/// an earlier batch of this one), applies the rest as one atomic batch and makes it durable;
/// counts the commit and the batches it carried once it is.
async fn apply_combined(
    backend: &Arc<dyn Backend>,
    counts: &CommitCounts,
    batches: Vec<Pending>,
) -> Result<(), StoreError> {
    let mut claimed: HashSet<(Tree, Vec<u8>)> = HashSet::new();
    let mut writes = Vec::new();
    let mut carried = 0;
    for batch in batches {
        if let Some((tree, key)) = batch.once {
            let taken =
                claimed.contains(&(tree, key.clone())) || backend.get(tree, &key).await?.is_some();
            if taken {
                batch.refused.store(true, Ordering::Release);
                continue;
            }
            claimed.insert((tree, key));
        }
        writes.extend(batch.writes);
        carried += 1;
    }
    if writes.is_empty() {
        return Ok(());
    }
    backend.apply_durably(writes).await?;
    counts.commits.inc();
    counts.batches.inc_by(carried);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryBackend;

    fn write(i: u32) -> Vec<Write> {
        vec![Write {
            tree: Tree::Kv,
            key: format!("k{i}").into_bytes(),
            value: Some(i.to_be_bytes().to_vec()),
        }]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_are_all_applied_and_each_answered_once() {
        let memory = Arc::new(MemoryBackend::new());
        let backend: Arc<dyn Backend> = memory.clone();
        let combiner = Arc::new(WriteCombiner::default());
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let (combiner, backend) = (combiner.clone(), backend.clone());
                tokio::spawn(async move { combiner.apply_durably(&backend, write(i)).await })
            })
            .collect();
        for task in tasks {
            task.await.expect("joins").expect("durable");
        }
        for i in 0..200u32 {
            let got = backend.get(Tree::Kv, format!("k{i}").as_bytes()).await;
            assert_eq!(got.expect("reads"), Some(i.to_be_bytes().to_vec()));
        }
        // Every batch was carried by exactly one counted commit.
        let counts = combiner.counts();
        assert_eq!(counts.batches.get(), 200);
        assert!((1..=200).contains(&counts.commits.get()));
        // After a quiet period, a new writer starts a new drain (none is left running).
        combiner
            .apply_durably(&backend, write(1000))
            .await
            .expect("a later write lands too");
    }

    fn once(i: u32, key: &[u8]) -> ((Tree, Vec<u8>), Vec<Write>) {
        let mut writes = write(i);
        writes.push(Write {
            tree: Tree::Jti,
            key: key.to_vec(),
            value: Some(vec![1]),
        });
        ((Tree::Jti, key.to_vec()), writes)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_create_once_key_lands_with_exactly_one_batch() {
        let memory = Arc::new(MemoryBackend::new());
        let backend: Arc<dyn Backend> = memory.clone();
        let combiner = Arc::new(WriteCombiner::default());
        // 50 concurrent batches, ten for each of five keys: one per key lands, with its writes.
        let tasks: Vec<_> = (0..50u32)
            .map(|i| {
                let (combiner, backend) = (combiner.clone(), backend.clone());
                let (key, writes) = once(i, format!("jti{}", i % 5).as_bytes());
                tokio::spawn(
                    async move { combiner.apply_durably_once(&backend, key, writes).await },
                )
            })
            .collect();
        let mut landed = Vec::new();
        for (i, task) in tasks.into_iter().enumerate() {
            if task.await.expect("joins").expect("durable") {
                landed.push(i);
            }
        }
        assert_eq!(landed.len(), 5, "one batch per key: {landed:?}");
        let mut keys: Vec<usize> = landed.iter().map(|i| i % 5).collect();
        keys.sort_unstable();
        assert_eq!(keys, [0, 1, 2, 3, 4]);
        for i in 0..50u32 {
            let stored = backend.get(Tree::Kv, format!("k{i}").as_bytes()).await;
            assert_eq!(
                stored.expect("reads").is_some(),
                landed.contains(&(i as usize)),
                "batch {i}: its writes land exactly when it does"
            );
        }
        // A key already stored refuses later batches too.
        let (key, writes) = once(99, b"jti0");
        let later = combiner.apply_durably_once(&backend, key, writes).await;
        assert!(!later.expect("answers"));
        assert_eq!(backend.get(Tree::Kv, b"k99").await.expect("reads"), None);
        // Refused batches are not counted as carried.
        assert_eq!(combiner.counts().batches.get(), 5);
    }

    #[tokio::test]
    async fn a_create_once_batch_must_set_its_key() {
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let combiner = Arc::new(WriteCombiner::default());
        let refused = combiner
            .apply_durably_once(&backend, (Tree::Jti, b"j".to_vec()), write(1))
            .await;
        assert!(refused.is_err());
        assert_eq!(backend.get(Tree::Kv, b"k1").await.expect("reads"), None);
    }

    #[tokio::test]
    async fn a_failed_batch_fails_its_writers_and_the_next_batch_is_unaffected() {
        let memory = Arc::new(MemoryBackend::new());
        let backend: Arc<dyn Backend> = memory.clone();
        let combiner = Arc::new(WriteCombiner::default());
        memory.fail_next_applies(1);
        assert!(combiner.apply_durably(&backend, write(1)).await.is_err());
        assert_eq!(backend.get(Tree::Kv, b"k1").await.expect("reads"), None);
        memory.fail_next_syncs(1);
        assert!(
            combiner.apply_durably(&backend, write(2)).await.is_err(),
            "not durable: not acknowledged"
        );
        combiner
            .apply_durably(&backend, write(3))
            .await
            .expect("lands");
        assert!(backend.get(Tree::Kv, b"k3").await.expect("reads").is_some());
    }
}
