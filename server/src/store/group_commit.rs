//! Group commit: many concurrent writers share one durability barrier. A caller that has
//! applied its write takes a ticket; it returns once a sync that *started after* its ticket
//! has finished. At most one sync runs at a time, and it covers every ticket taken before it
//! started — so under load one fsync acknowledges a whole batch of writes. Before it starts,
//! a short commit window lets writers already running join it.
//!
//! The sync runs in its own task: a caller that goes away (a timed-out or disconnected
//! request) never leaves the barrier stuck.

use super::{Backend, StoreError};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Longest commit window, in yields to the runtime (see [`GroupCommit::gather`]).
const MAX_GATHER_YIELDS: usize = 16;

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
    /// [`MAX_GATHER_YIELDS`] times: under no load it costs one yield, under load it turns many
    /// small syncs into a few large ones. Returns the last ticket the sync will cover: every
    /// write of a ticket taken so far was applied before it.
    async fn gather(&self) -> u64 {
        let mut seen = self.lock().issued;
        for _ in 0..MAX_GATHER_YIELDS {
            tokio::task::yield_now().await;
            let now = self.lock().issued;
            if now == seen {
                break;
            }
            seen = now;
        }
        seen
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}
