//! Parsed token records of recent lookups, so that a request with a token costs no store read,
//! decryption or parse. Exact, not eventually right: entries are kept and used only through
//! the store's [`WriteWatch`] over the token tree (see there), so any write to a token record —
//! a revocation, a renewal, a spent use, an expiry — drops every entry before it returns, and
//! while one is in flight nothing is answered from here. Only with an exclusive backend (a
//! replica sharing PostgreSQL has no cache). Limited-use tokens are never cached; entries also
//! end after [`MAX_AGE`], and all go when the store is sealed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::TokenRecord;
use crate::store::write_watch::WriteWatch;

/// The longest an entry is used, whatever happens.
pub(super) const MAX_AGE: Duration = Duration::from_secs(5);
/// Entries kept at most; past it the cache starts over.
const MAX_ENTRIES: usize = 16_384;

struct Entry {
    record: TokenRecord,
    read_at: Instant,
}

/// The entries, all read in `epoch`.
#[derive(Default)]
struct Entries {
    epoch: u64,
    map: HashMap<Vec<u8>, Entry>,
}

#[derive(Default)]
pub(super) struct TokenCache {
    entries: Mutex<Entries>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache").finish_non_exhaustive()
    }
}

impl TokenCache {
    /// The record at `key` if it was read in the current, quiet epoch within [`MAX_AGE`].
    pub(super) fn get(&self, watch: &WriteWatch, key: &[u8]) -> Option<TokenRecord> {
        let epoch = watch.quiet_epoch()?;
        let entries = self.entries.lock().ok()?;
        if entries.epoch != epoch {
            return None;
        }
        let entry = entries.map.get(key)?;
        (entry.read_at.elapsed() < MAX_AGE).then(|| entry.record.clone())
    }

    /// Keeps `record`, read from the store at `key` after `epoch` was taken, if nothing was
    /// written to the token tree since.
    pub(super) fn keep(&self, watch: &WriteWatch, epoch: u64, key: &[u8], record: &TokenRecord) {
        if record.num_uses > 0 {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        // Checked under the lock, so no entry of an older epoch is added after a newer one.
        if !watch.still(epoch) {
            return;
        }
        if entries.epoch != epoch || entries.map.len() >= MAX_ENTRIES {
            entries.map.clear();
            entries.epoch = epoch;
        }
        entries.map.insert(
            key.to_vec(),
            Entry {
                record: record.clone(),
                read_at: Instant::now(),
            },
        );
    }
}
