//! Group commit: many concurrent writers share one durability barrier. A caller that has
//! applied its write takes a ticket; it returns once a sync that *started after* its ticket
//! has finished. At most one sync runs at a time, and it covers every ticket taken before it
//! started — so under load one fsync acknowledges a whole batch of writes.

use super::{Backend, StoreError};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

#[derive(Default)]
struct State {
    /// Tickets handed out so far.
    issued: u64,
    /// Whether a sync is running now.
    running: bool,
}

pub struct GroupCommit {
    state: Mutex<State>,
    /// The highest ticket known to be durable.
    durable: watch::Sender<u64>,
    /// Set when the last sync failed: every waiter it covered gets the error.
    failed: watch::Sender<Option<String>>,
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
            durable: watch::channel(0).0,
            failed: watch::channel(None).0,
        }
    }
}

impl GroupCommit {
    /// Returns once every write applied before this call is durable.
    pub async fn sync(&self, backend: &Arc<dyn Backend>) -> Result<(), StoreError> {
        let ticket = {
            let mut state = self.lock();
            state.issued += 1;
            state.issued
        };
        let mut durable = self.durable.subscribe();
        loop {
            if *durable.borrow_and_update() >= ticket {
                return Ok(());
            }
            let target = {
                let mut state = self.lock();
                if state.running {
                    None
                } else {
                    state.running = true;
                    Some(state.issued)
                }
            };
            match target {
                Some(target) => {
                    let backend = backend.clone();
                    let result = tokio::task::spawn_blocking(move || backend.sync())
                        .await
                        .map_err(|e| StoreError::Backend(e.to_string()))
                        .and_then(|r| r);
                    self.lock().running = false;
                    match result {
                        Ok(()) => {
                            self.failed.send_replace(None);
                            self.durable.send_modify(|d| *d = (*d).max(target));
                        }
                        Err(e) => {
                            self.failed.send_replace(Some(e.to_string()));
                            // Wake the others so one of them retries.
                            self.durable.send_modify(|_| {});
                            return Err(e);
                        }
                    }
                }
                None => {
                    if durable.changed().await.is_err() {
                        return Err(StoreError::Backend("group commit closed".into()));
                    }
                    if let Some(e) = self.failed.borrow().clone()
                        && *durable.borrow() < ticket
                        && !self.lock().running
                    {
                        return Err(StoreError::Backend(e));
                    }
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}
