//! Combining the work of concurrent callers: each caller queues an item and waits; the first
//! one to find no batch running starts a task that takes everything queued, does the work once
//! for the whole batch, answers every caller with the shared outcome, and goes on while items
//! keep arriving. Before each batch it yields to the runtime a few times while new items keep
//! coming, so that requests already running join in. Under no load this costs one task and one
//! yield; under load it turns N system calls (log appends, store batches and syncs) into one.
//!
//! No caller is answered before the work that carried its item is done. If the batch task
//! ends without finishing (dropped, or panicking), whatever is still queued is answered with an
//! error, and the next caller starts a new task.

use std::future::Future;
use std::sync::{Arc, Mutex};

/// Longest gathering before a batch, in yields to the runtime.
const MAX_GATHER_YIELDS: usize = 16;

/// The commit window: yields to the runtime while `count` (items queued, tickets taken) keeps
/// growing, at most [`MAX_GATHER_YIELDS`] times, so that requests already running can join the
/// batch about to start; returns the last count seen.
pub(crate) async fn gather(mut count: impl FnMut() -> u64) -> u64 {
    let mut seen = count();
    for _ in 0..MAX_GATHER_YIELDS {
        tokio::task::yield_now().await;
        let now = count();
        if now == seen {
            break;
        }
        seen = now;
    }
    seen
}

/// Most batches of other callers' items that a caller of [`Combiner::submit_inline`] does
/// before handing the rest to a task.
const MAX_INLINE_ROUNDS: usize = 4;

/// The outcome of one batch, shared by its callers.
pub(crate) type Outcome<E> = Result<(), Arc<E>>;

type Pending<T, E> = (T, tokio::sync::oneshot::Sender<Outcome<E>>);

struct Queue<T, E> {
    pending: Vec<Pending<T, E>>,
    running: bool,
}

/// A queue of items of type `T` whose batches fail with `E`.
pub(crate) struct Combiner<T, E> {
    queue: Mutex<Queue<T, E>>,
    /// Whether a batch waits for the commit window ([`gather`]): worth it when the work is
    /// expensive whatever its size (a sync), not when it is a cheap system call.
    window: bool,
}

impl<T, E> Default for Combiner<T, E> {
    fn default() -> Self {
        Self::new(true)
    }
}

impl<T, E> Combiner<T, E> {
    /// A combiner whose batches wait for the commit window, or start at once.
    pub(crate) fn new(window: bool) -> Self {
        Self {
            queue: Mutex::new(Queue {
                pending: Vec::new(),
                running: false,
            }),
            window,
        }
    }
}

impl<T, E> std::fmt::Debug for Combiner<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Combiner")
    }
}

/// Answers what is still queued (with an error) if the batch task ends before it has emptied
/// the queue.
struct Guard<'a, T, E>(&'a Combiner<T, E>, bool);

impl<T, E> Drop for Guard<'_, T, E> {
    fn drop(&mut self) {
        if !self.1 {
            let mut queue = self.0.lock();
            queue.running = false;
            // Dropping the senders answers their callers with an error.
            queue.pending.clear();
        }
    }
}

impl<T, E> Combiner<T, E> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<T, E>> {
        match self.queue.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl<T: Send + 'static, E: Send + Sync + 'static> Combiner<T, E> {
    /// Queues `item` and waits for the outcome of the batch that carried it; `None` if the
    /// batch task stopped before doing it. `work` does one batch; only the caller that starts
    /// the batch task gives it, and it then serves every batch until the queue runs dry, so
    /// every caller of one combiner must pass the same work.
    pub(crate) async fn submit<W, F>(self: &Arc<Self>, item: T, work: W) -> Option<Outcome<E>>
    where
        W: Fn(Vec<T>) -> F + Send + 'static,
        F: Future<Output = Result<(), E>> + Send,
    {
        let (done, outcome) = tokio::sync::oneshot::channel();
        let start = {
            let mut queue = self.lock();
            queue.pending.push((item, done));
            !std::mem::replace(&mut queue.running, true)
        };
        if start {
            let this = self.clone();
            tokio::spawn(async move { this.drain(work).await });
        }
        outcome.await.ok()
    }

    /// Flat combining, for cheap work that does not wait (one `write` of an append): a caller
    /// that finds no batch running does the work itself, at once, for its item and then for
    /// whatever other callers queued meanwhile; a caller that finds one running queues its item
    /// and waits. Under no contention this costs no task and no wake-up. The caller doing the
    /// work serves at most [`MAX_INLINE_ROUNDS`] batches of others, then hands what is still
    /// queued to a task, so its own request is not held up for long.
    pub(crate) async fn submit_inline<W>(self: &Arc<Self>, item: T, work: W) -> Option<Outcome<E>>
    where
        W: Fn(Vec<T>) -> Result<(), E> + Clone + Send + Sync + 'static,
    {
        let item = {
            let mut queue = self.lock();
            if queue.running {
                let (done, outcome) = tokio::sync::oneshot::channel();
                queue.pending.push((item, done));
                Err(outcome)
            } else {
                queue.running = true;
                Ok(item)
            }
        };
        let item = match item {
            Ok(item) => item,
            Err(outcome) => return outcome.await.ok(),
        };
        let mut guard = Guard(self, false);
        let own = work(vec![item]).map_err(Arc::new);
        for _ in 0..MAX_INLINE_ROUNDS {
            let batch = {
                let mut queue = self.lock();
                if queue.pending.is_empty() {
                    queue.running = false;
                    guard.1 = true;
                    return Some(own);
                }
                std::mem::take(&mut queue.pending)
            };
            let (items, callers): (Vec<T>, Vec<_>) = batch.into_iter().unzip();
            let outcome = work(items).map_err(Arc::new);
            for done in callers {
                let _ = done.send(outcome.clone());
            }
        }
        // Still busy: the queue stays marked running and a task takes over draining it.
        guard.1 = true;
        let this = self.clone();
        tokio::spawn(async move {
            this.drain(move |items| {
                let work = work.clone();
                async move { work(items) }
            })
            .await
        });
        Some(own)
    }

    async fn drain<W, F>(&self, work: W)
    where
        W: Fn(Vec<T>) -> F,
        F: Future<Output = Result<(), E>>,
    {
        let mut guard = Guard(self, false);
        loop {
            if self.window {
                gather(|| self.lock().pending.len() as u64).await;
            }
            let batch = {
                let mut queue = self.lock();
                if queue.pending.is_empty() {
                    // Under the lock: an item queued after this starts a new task.
                    queue.running = false;
                    guard.1 = true;
                    return;
                }
                std::mem::take(&mut queue.pending)
            };
            let (items, callers): (Vec<T>, Vec<_>) = batch.into_iter().unzip();
            let outcome = work(items).await.map_err(Arc::new);
            for done in callers {
                let _ = done.send(outcome.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_item_is_done_once_in_fewer_batches_than_items() {
        let combiner: Arc<Combiner<u32, String>> = Arc::default();
        let done = Arc::new(Mutex::new(Vec::new()));
        let batches = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..300)
            .map(|i| {
                let (combiner, done, batches) = (combiner.clone(), done.clone(), batches.clone());
                tokio::spawn(async move {
                    combiner
                        .submit(i, move |items| {
                            let (done, batches) = (done.clone(), batches.clone());
                            async move {
                                batches.fetch_add(1, Ordering::Relaxed);
                                done.lock().expect("lock").extend(items);
                                Ok(())
                            }
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert!(matches!(task.await.expect("joins"), Some(Ok(()))));
        }
        let mut all = done.lock().expect("lock").clone();
        all.sort_unstable();
        assert_eq!(all, (0..300).collect::<Vec<_>>());
        assert!(batches.load(Ordering::Relaxed) < 300);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inline_work_does_every_item_once_also_when_handed_to_a_task() {
        let combiner: Arc<Combiner<u32, String>> = Arc::new(Combiner::new(false));
        let done = Arc::new(Mutex::new(Vec::new()));
        let batches = Arc::new(AtomicUsize::new(0));
        // Items keep arriving (from a thread outside the runtime, every 50 µs) while each
        // batch takes 200 µs, so a caller's rounds run out and a task takes over.
        let runtime = tokio::runtime::Handle::current();
        let submitter = {
            let (combiner, done, batches) = (combiner.clone(), done.clone(), batches.clone());
            std::thread::spawn(move || {
                let tasks: Vec<_> = (0..400u32)
                    .map(|i| {
                        let (combiner, done, batches) =
                            (combiner.clone(), done.clone(), batches.clone());
                        let task = runtime.spawn(async move {
                            combiner
                                .submit_inline(i, move |items| {
                                    std::thread::sleep(std::time::Duration::from_micros(200));
                                    batches.fetch_add(1, Ordering::Relaxed);
                                    done.lock().expect("lock").extend(items);
                                    Ok(())
                                })
                                .await
                        });
                        std::thread::sleep(std::time::Duration::from_micros(50));
                        task
                    })
                    .collect();
                tasks
            })
        };
        let tasks = tokio::task::spawn_blocking(move || submitter.join().expect("submitter"))
            .await
            .expect("joins");
        for task in tasks {
            assert!(matches!(task.await.expect("joins"), Some(Ok(()))));
        }
        let mut all = done.lock().expect("lock").clone();
        all.sort_unstable();
        assert_eq!(all, (0..400).collect::<Vec<_>>());
        assert!(
            batches.load(Ordering::Relaxed) < 400,
            "queued items were combined"
        );
        // Nothing is left running: the next item is done at once, by its own caller.
        let later = combiner.submit_inline(1000, |_| Ok(())).await;
        assert!(matches!(later, Some(Ok(()))));
    }

    #[tokio::test]
    async fn inline_failures_reach_the_callers_of_that_batch_only() {
        let combiner: Arc<Combiner<u32, String>> = Arc::new(Combiner::new(false));
        let failed = combiner
            .submit_inline(1, |_| Err("disk full".to_owned()))
            .await;
        assert!(matches!(failed, Some(Err(e)) if *e == "disk full"));
        let later = combiner.submit_inline(2, |_| Ok(())).await;
        assert!(matches!(later, Some(Ok(()))));
    }

    #[tokio::test]
    async fn a_failed_batch_fails_its_callers_and_a_later_one_runs_again() {
        let combiner: Arc<Combiner<u32, String>> = Arc::default();
        // The same work for every caller (the batch task uses its starter's): the disk is full
        // for the first batch only.
        let full = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let work = move |_: Vec<u32>| {
            let failing = full.swap(false, Ordering::Relaxed);
            async move {
                if failing {
                    Err("disk full".to_owned())
                } else {
                    Ok(())
                }
            }
        };
        let failed = combiner.submit(1, work.clone()).await;
        assert!(matches!(failed, Some(Err(e)) if *e == "disk full"));
        let later = combiner.submit(2, work).await;
        assert!(matches!(later, Some(Ok(()))));
    }
}
