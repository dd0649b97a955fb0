//! Parsed token records of recent lookups, so that a request with a token costs no store read,
//! decryption or parse. Exact, not eventually right: an [`ExactCache`] over the store's watch
//! of the token tree, so any write to a token record — a revocation, a renewal, a spent use,
//! an expiry — drops every entry before it returns, and while one is in flight nothing is
//! answered from here. Only with an exclusive backend (a replica sharing PostgreSQL has no
//! cache). Limited-use tokens are never kept; entries also end after [`MAX_AGE`], and all go
//! when the store is sealed.

use std::sync::Arc;
use std::time::Duration;

use super::TokenRecord;
use crate::store::write_watch::{ExactCache, WriteWatch};

/// The longest an entry is used, whatever happens.
const MAX_AGE: Duration = Duration::from_secs(5);
/// Entries kept at most.
const MAX_ENTRIES: usize = 16_384;

#[derive(Debug)]
pub(super) struct TokenCache(ExactCache<Vec<u8>, Arc<TokenRecord>>);

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache(ExactCache::new(MAX_AGE, MAX_ENTRIES))
    }
}

impl TokenCache {
    /// The record at storage key `key`, if kept and still exact.
    pub(super) fn get(&self, watch: &WriteWatch, key: &[u8]) -> Option<Arc<TokenRecord>> {
        self.0.get(watch, key)
    }

    /// Keeps `record`, read at `key` after `epoch` was taken, unless it has limited uses.
    pub(super) fn keep(
        &self,
        watch: &WriteWatch,
        epoch: u64,
        key: &[u8],
        record: &Arc<TokenRecord>,
    ) {
        if record.num_uses == 0 {
            self.0.keep(watch, epoch, key.to_vec(), record.clone());
        }
    }
}
