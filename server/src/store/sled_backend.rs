//! [`Backend`] on an embedded sled 0.34 database. All logical trees share one sled tree with a
//! one-byte prefix, so a batch across trees is a single atomic sled batch.

use super::{Backend, Guard, StoreError, Tree, Write};
use std::path::Path;

pub struct SledBackend {
    db: sled::Db,
}

impl std::fmt::Debug for SledBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SledBackend")
    }
}

fn backend_err(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn full_key(tree: Tree, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(tree.tag());
    k.extend_from_slice(key);
    k
}

fn batch_of(writes: Vec<Write>) -> sled::Batch {
    let mut batch = sled::Batch::default();
    for w in writes {
        match w.value {
            Some(v) => batch.insert(full_key(w.tree, &w.key), v),
            None => batch.remove(full_key(w.tree, &w.key)),
        }
    }
    batch
}

impl SledBackend {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        // No `mode`: sled 0.34.7 stores it but never reads it.
        let db = sled::Config::new()
            .path(dir)
            // Durability comes from explicit `sync` calls before each acknowledgement; the
            // periodic flusher adds an `fsync` of the file every second.
            .flush_every_ms(Some(1000))
            .open()
            .map_err(backend_err)?;
        Ok(Self { db })
    }
}

#[async_trait::async_trait]
impl Backend for SledBackend {
    fn exclusive(&self) -> bool {
        true
    }

    async fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .db
            .get(full_key(tree, key))
            .map_err(backend_err)?
            .map(|v| v.to_vec()))
    }

    async fn scan_prefix(
        &self,
        tree: Tree,
        prefix: &[u8],
    ) -> Result<Vec<super::Record>, StoreError> {
        self.db
            .scan_prefix(full_key(tree, prefix))
            .map(|item| {
                let (k, v) = item.map_err(backend_err)?;
                Ok((k[1..].to_vec(), v.to_vec()))
            })
            .collect()
    }

    async fn compare_and_swap(
        &self,
        tree: Tree,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        let result = self
            .db
            .compare_and_swap(full_key(tree, key), expected, new)
            .map_err(backend_err)?;
        Ok(result.is_ok())
    }

    async fn apply(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.db.apply_batch(batch_of(writes)).map_err(backend_err)
    }

    async fn apply_durably(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        // A batch holds sled's write lock and may wait for log buffers, and the flush waits for
        // sled's log writes and their `sync_file_range`: both off the async workers, in one trip.
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            db.apply_batch(batch_of(writes)).map_err(backend_err)?;
            db.flush().map(|_| ()).map_err(backend_err)
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
    }

    async fn apply_if(&self, guards: Vec<Guard>, writes: Vec<Write>) -> Result<bool, StoreError> {
        use sled::transaction::{ConflictableTransactionError, TransactionError};
        let guards: Vec<(Vec<u8>, Option<Vec<u8>>)> = guards
            .into_iter()
            .map(|g| (full_key(g.tree, &g.key), g.expected))
            .collect();
        let writes: Vec<(Vec<u8>, Option<Vec<u8>>)> = writes
            .into_iter()
            .map(|w| (full_key(w.tree, &w.key), w.value))
            .collect();
        // Every logical tree lives in the one sled tree, so one transaction covers the batch.
        // sled may rerun the closure on conflict, hence writes by reference.
        let result = self.db.transaction(|tx| {
            for (key, expected) in &guards {
                if tx.get(key)?.as_deref() != expected.as_deref() {
                    return Ok(false);
                }
            }
            for (key, value) in &writes {
                match value {
                    Some(v) => tx.insert(key.as_slice(), v.as_slice())?,
                    None => tx.remove(key.as_slice())?,
                };
            }
            Ok::<_, ConflictableTransactionError<()>>(true)
        });
        match result {
            Ok(applied) => Ok(applied),
            Err(TransactionError::Storage(e)) => Err(backend_err(e)),
            Err(TransactionError::Abort(())) => {
                Err(StoreError::Backend("guarded transaction aborted".into()))
            }
        }
    }

    async fn sync(&self) -> Result<(), StoreError> {
        // sled's flush waits for its log writes and their `sync_file_range`: off the async
        // workers.
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush().map(|_| ()).map_err(backend_err))
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temporary() -> SledBackend {
        let db = sled::Config::new()
            .temporary(true)
            .open()
            .expect("temporary sled");
        SledBackend { db }
    }

    fn create(key: &[u8], value: &[u8]) -> Write {
        Write {
            tree: Tree::Sys,
            key: key.to_vec(),
            value: Some(value.to_vec()),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn apply_if_absent_lands_once_across_trees() {
        let backend = std::sync::Arc::new(temporary());
        let batch = |n: u8| {
            vec![
                create(b"marker", &[n]),
                Write {
                    tree: Tree::Tokens,
                    key: vec![n],
                    value: Some(vec![n]),
                },
            ]
        };
        let tasks: Vec<_> = (0..4u8)
            .map(|n| {
                let backend = backend.clone();
                let writes = batch(n);
                tokio::spawn(async move {
                    backend
                        .apply_if_absent((Tree::Sys, b"marker"), writes)
                        .await
                        .expect("apply")
                })
            })
            .collect();
        let mut applied: Vec<bool> = Vec::new();
        for task in tasks {
            applied.push(task.await.expect("join"));
        }
        assert_eq!(applied.iter().filter(|a| **a).count(), 1);
        let winner = backend
            .get(Tree::Sys, b"marker")
            .await
            .expect("get")
            .expect("set");
        let tokens = backend.scan_prefix(Tree::Tokens, b"").await.expect("scan");
        assert_eq!(tokens, vec![(winner.clone(), winner)]);
    }

    #[tokio::test]
    async fn apply_if_absent_requires_the_batch_to_set_its_guard() {
        let backend = temporary();
        assert!(
            backend
                .apply_if_absent((Tree::Sys, b"marker"), vec![create(b"other", b"x")])
                .await
                .is_err()
        );
        assert!(
            backend
                .get(Tree::Sys, b"other")
                .await
                .expect("get")
                .is_none()
        );
    }
}
