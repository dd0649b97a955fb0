//! What a cache of records needs to stay exact: a count of the writes in flight to a tree and
//! an epoch that moves when one begins and when it ends.
//!
//! A reader takes [`WriteWatch::quiet_epoch`] before it reads the store, and keeps what it
//! read only if the epoch is still the same and no write is in flight ([`WriteWatch::still`]);
//! a cached entry is used only while the epoch it was read in is the current, quiet one. A
//! write that began after the read, or was in flight during it, moves the epoch before the
//! reader can keep anything, and a write that ends moves it again, so an entry never outlives
//! a write to its tree, and no request is answered from the cache while a write is on its way
//! (a revocation has taken effect for every request once it returns, and for none that is
//! answered from the cache before).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct WriteWatch {
    epoch: AtomicU64,
    in_flight: AtomicUsize,
}

/// A write in flight: ends (and moves the epoch) when dropped, however the write ended.
pub struct Watched<'a>(&'a WriteWatch);

impl WriteWatch {
    /// Call before the write reaches the store; keep the result until it has been applied.
    pub fn begin(&self) -> Watched<'_> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.epoch.fetch_add(1, Ordering::SeqCst);
        Watched(self)
    }

    /// Moves the epoch: every entry read before is dropped (a seal, for instance).
    pub fn bump(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// The current epoch if no write is in flight.
    pub fn quiet_epoch(&self) -> Option<u64> {
        let epoch = self.epoch.load(Ordering::SeqCst);
        (self.in_flight.load(Ordering::SeqCst) == 0 && self.epoch.load(Ordering::SeqCst) == epoch)
            .then_some(epoch)
    }

    /// Whether nothing was written, and nothing is being written, since `epoch` was taken.
    pub fn still(&self, epoch: u64) -> bool {
        self.quiet_epoch() == Some(epoch)
    }
}

impl Drop for Watched<'_> {
    fn drop(&mut self) {
        self.0.epoch.fetch_add(1, Ordering::SeqCst);
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Values read from one watched tree, kept and used only as the module says, each for at
/// most `max_age`, at most `max_entries` of them (past it the cache starts over).
pub struct ExactCache<K, V> {
    entries: Mutex<Entries<K, V>>,
    max_age: Duration,
    max_entries: usize,
}

/// The entries, all read in `epoch`.
struct Entries<K, V> {
    epoch: u64,
    map: HashMap<K, (V, Instant)>,
}

impl<K, V> std::fmt::Debug for ExactCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExactCache").finish_non_exhaustive()
    }
}

impl<K: Eq + Hash, V: Clone> ExactCache<K, V> {
    pub fn new(max_age: Duration, max_entries: usize) -> Self {
        ExactCache {
            entries: Mutex::new(Entries {
                epoch: 0,
                map: HashMap::new(),
            }),
            max_age,
            max_entries,
        }
    }

    /// The value at `key` if it was read in the current, quiet epoch within `max_age`.
    pub fn get<Q>(&self, watch: &WriteWatch, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let epoch = watch.quiet_epoch()?;
        let entries = self.entries.lock().ok()?;
        if entries.epoch != epoch {
            return None;
        }
        let (value, read_at) = entries.map.get(key)?;
        (read_at.elapsed() < self.max_age).then(|| value.clone())
    }

    /// Keeps `value`, read from the store at `key` after `epoch` was taken, if nothing was
    /// written to the tree since.
    pub fn keep(&self, watch: &WriteWatch, epoch: u64, key: K, value: V) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        // Checked under the lock, so no entry of an older epoch is added after a newer one.
        if !watch.still(epoch) {
            return;
        }
        if entries.epoch != epoch || entries.map.len() >= self.max_entries {
            entries.map.clear();
            entries.epoch = epoch;
        }
        entries.map.insert(key, (value, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_survives_only_quiet_times() {
        let watch = WriteWatch::default();
        let before = watch.quiet_epoch().expect("quiet");
        assert!(watch.still(before));
        let write = watch.begin();
        assert_eq!(watch.quiet_epoch(), None, "a write is in flight");
        assert!(!watch.still(before));
        drop(write);
        let after = watch.quiet_epoch().expect("quiet again");
        assert_ne!(before, after, "a write moved the epoch");
        assert!(!watch.still(before));
        watch.bump();
        assert!(!watch.still(after));
    }
}
