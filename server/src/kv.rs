//! The KV version 2 secrets engine mounted at `secret/`, with Vault's semantics: versions,
//! check-and-set, soft delete, undelete, destroy, metadata and max versions.
//!
//! Records in the `kv` tree: `m\0<path>` holds a path's metadata, `v\0<path>\0<version BE>`
//! holds one version's data. Both are sealed by the store like every record.

use crate::clock::rfc3339_now;
use crate::store::sealed::SealedStore;
use crate::store::write_watch::ExactCache;
use crate::store::{PlainWrite, StoreError, Tree};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::Mutex;
use zeroize::Zeroizing;

/// Vault's default when a mount sets none.
pub(crate) const DEFAULT_MAX_VERSIONS: u64 = 10;
const MAX_PATH_LEN: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// Client error, surfaced as 400 with this message.
    #[error("{0}")]
    Invalid(String),
    /// Nothing at that path / version: 404.
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct VersionMeta {
    pub created_time: String,
    /// When the version is (or was) soft-deleted: set by a delete, or at write time to
    /// `created_time + delete_version_after`, so it may lie in the future.
    pub deletion_time: String,
    pub destroyed: bool,
}

impl VersionMeta {
    /// Whether the version reads as deleted at `now` (Unix seconds).
    pub fn is_deleted(&self, now: u64) -> bool {
        if self.deletion_time.is_empty() {
            return false;
        }
        // An unparsable time fails closed: the version reads as deleted.
        crate::clock::unix_from_rfc3339(&self.deletion_time).is_none_or(|t| t <= now)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Metadata {
    pub created_time: String,
    pub updated_time: String,
    pub current_version: u64,
    pub oldest_version: u64,
    pub max_versions: u64,
    pub cas_required: bool,
    pub delete_version_after: String,
    pub custom_metadata: Option<BTreeMap<String, String>>,
    pub versions: BTreeMap<u64, VersionMeta>,
}

impl Metadata {
    /// `delete_version_after` in seconds (stored as `"<secs>s"`); 0 = off.
    fn delete_version_after_secs(&self) -> u64 {
        self.delete_version_after
            .strip_suffix('s')
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    pub fn to_json(&self) -> Value {
        let versions: Map<String, Value> = self
            .versions
            .iter()
            .map(|(v, m)| (v.to_string(), json!(m)))
            .collect();
        json!({
            "cas_required": self.cas_required,
            "created_time": self.created_time,
            "current_version": self.current_version,
            "delete_version_after": self.delete_version_after,
            "max_versions": self.max_versions,
            "oldest_version": self.oldest_version,
            "updated_time": self.updated_time,
            "custom_metadata": self.custom_metadata,
            "versions": versions,
        })
    }

    fn version_json(&self, version: u64) -> Value {
        json!(self.version_info(version))
    }

    /// What a read says about `version`.
    fn version_info(&self, version: u64) -> VersionInfo {
        let meta = self.versions.get(&version).cloned().unwrap_or_default();
        VersionInfo {
            created_time: meta.created_time,
            custom_metadata: self.custom_metadata.clone(),
            deletion_time: meta.deletion_time,
            destroyed: meta.destroyed,
            version,
        }
    }
}

/// Validates a secret path: non-empty segments, no `.`/`..`, no control characters.
pub(crate) fn validate_path(path: &str) -> Result<(), KvError> {
    let bad = |why: &str| Err(KvError::Invalid(format!("invalid secret path: {why}")));
    if path.is_empty() {
        return bad("path is empty");
    }
    if path.len() > MAX_PATH_LEN {
        return bad("path is longer than 512 bytes");
    }
    if path.chars().any(|c| c.is_control()) {
        return bad("path contains control characters");
    }
    for segment in path.split('/') {
        match segment {
            "" => return bad("empty path segment"),
            "." | ".." => return bad("'.' and '..' segments are not allowed"),
            _ => {}
        }
    }
    Ok(())
}

fn encode_metadata(meta: &Metadata) -> Vec<u8> {
    serde_json::to_vec(meta).expect("KV metadata (strings, integers, maps) serialises to JSON")
}

fn meta_key(path: &str) -> Vec<u8> {
    [b"m\0".as_slice(), path.as_bytes()].concat()
}

fn version_key(path: &str, version: u64) -> Vec<u8> {
    [
        b"v\0".as_slice(),
        path.as_bytes(),
        b"\0",
        &version.to_be_bytes(),
    ]
    .concat()
}

/// The `metadata` of a read (fields sorted, as a JSON object of them would have them).
#[derive(Debug, Serialize)]
pub struct VersionInfo {
    pub created_time: String,
    pub custom_metadata: Option<BTreeMap<String, String>>,
    pub deletion_time: String,
    pub destroyed: bool,
    pub version: u64,
}

/// A version's data as stored: JSON, checked when read. `Debug` is redacted; zeroized on drop.
pub struct SecretJson(Zeroizing<Vec<u8>>);

impl SecretJson {
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretJson(<redacted>)")
    }
}

/// One read result.
#[derive(Debug)]
pub enum ReadOutcome {
    /// The live version: its stored JSON (checked to be JSON) and its metadata.
    Found {
        data: SecretJson,
        metadata: VersionInfo,
    },
    /// Deleted or destroyed: the envelope body Vault returns with a 404.
    Gone(Value),
}

#[derive(Debug)]
pub struct Kv {
    store: SealedStore,
    /// Serialises this replica's writes, so its own writers do not race each other's guards.
    /// Correctness across replicas comes from the guarded writes (see [`Kv::update`]).
    write_lock: Mutex<()>,
    /// Parsed metadata of recent reads, exact through the store's watch over KV writes (see
    /// `store::write_watch`): any write to the KV tree drops it before it returns.
    meta_cache: ExactCache<String, Arc<Metadata>>,
    /// Versions' records as stored (encrypted: the cache holds no plaintext), kept and dropped
    /// exactly as the metadata is; only records up to [`SEALED_CACHE_RECORD`] bytes.
    sealed_cache: ExactCache<Vec<u8>, Arc<[u8]>>,
}

/// How long, at most, cached metadata is used, and how many paths are kept.
const META_CACHE_AGE: std::time::Duration = std::time::Duration::from_secs(5);
const META_CACHE_ENTRIES: usize = 16_384;
/// How many versions' records are kept, each at most this large (so at most 16 MiB).
const SEALED_CACHE_ENTRIES: usize = 4_096;
const SEALED_CACHE_RECORD: usize = 4_096;

/// Fresh metadata for a path that does not exist yet.
fn new_metadata(now: &str) -> Metadata {
    Metadata {
        created_time: now.to_owned(),
        delete_version_after: "0s".into(),
        ..Default::default()
    }
}

impl Kv {
    pub fn new(store: SealedStore) -> Self {
        Self {
            store,
            write_lock: Mutex::new(()),
            meta_cache: ExactCache::new(META_CACHE_AGE, META_CACHE_ENTRIES),
            sealed_cache: ExactCache::new(META_CACHE_AGE, SEALED_CACHE_ENTRIES),
        }
    }

    /// The metadata of `path` for a read: from the cache while it is exact, else from the
    /// store (and then kept).
    async fn current_metadata(&self, path: &str) -> Result<Option<Arc<Metadata>>, KvError> {
        validate_path(path)?;
        let Some(watch) = self.store.watch_of(Tree::Kv) else {
            return Ok(self.metadata(path).await?.map(Arc::new));
        };
        if let Some(meta) = self.meta_cache.get(watch, path) {
            return Ok(Some(meta));
        }
        let epoch = watch.quiet_epoch();
        let meta = self.metadata(path).await?.map(Arc::new);
        if let (Some(epoch), Some(meta)) = (epoch, &meta) {
            self.meta_cache
                .keep(watch, epoch, path.to_owned(), Arc::clone(meta));
        }
        Ok(meta)
    }

    /// The stored data of one version of `path` for a read, decrypted: its encrypted record
    /// from the cache while that is exact, else from the store.
    async fn version_data(
        &self,
        path: &str,
        version: u64,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, KvError> {
        let key = version_key(path, version);
        let Some(watch) = self.store.watch_of(Tree::Kv) else {
            return Ok(self.store.get(Tree::Kv, &key).await?);
        };
        let stored = match self.sealed_cache.get(watch, key.as_slice()) {
            Some(stored) => stored,
            None => {
                let epoch = watch.quiet_epoch();
                let Some(stored) = self.store.get_sealed(Tree::Kv, &key).await? else {
                    return Ok(None);
                };
                let stored: Arc<[u8]> = stored.into();
                if let Some(epoch) = epoch.filter(|_| stored.len() <= SEALED_CACHE_RECORD) {
                    self.sealed_cache
                        .keep(watch, epoch, key.clone(), Arc::clone(&stored));
                }
                stored
            }
        };
        Ok(Some(self.store.open(Tree::Kv, &key, &stored).await?))
    }

    pub async fn metadata(&self, path: &str) -> Result<Option<Metadata>, KvError> {
        validate_path(path)?;
        Ok(self.store.get_json(Tree::Kv, &meta_key(path)).await?)
    }

    pub async fn read(&self, path: &str, version: Option<u64>) -> Result<ReadOutcome, KvError> {
        let meta = self
            .current_metadata(path)
            .await?
            .ok_or(KvError::NotFound)?;
        let version = match version {
            None | Some(0) => meta.current_version,
            Some(v) => v,
        };
        let vmeta = meta.versions.get(&version).ok_or(KvError::NotFound)?;
        if vmeta.destroyed || vmeta.is_deleted(crate::clock::unix_now()) {
            return Ok(ReadOutcome::Gone(
                json!({"data": null, "metadata": meta.version_json(version)}),
            ));
        }
        let data = self
            .version_data(path, version)
            .await?
            .ok_or(KvError::NotFound)?;
        if serde_json::from_slice::<&serde_json::value::RawValue>(&data).is_err() {
            return Err(StoreError::Corrupt {
                tree: "kv",
                key: path.to_owned(),
            }
            .into());
        }
        Ok(ReadOutcome::Found {
            data: SecretJson(data),
            metadata: meta.version_info(version),
        })
    }

    /// Read-modify-write of `path`'s metadata: `change` sees the current metadata (`None` if
    /// the path does not exist) and returns the writes to make and a result, or `None` for
    /// nothing to do. The writes land only if the metadata is still what was read — on any
    /// replica — and `change` runs again on the new metadata otherwise. So of concurrent
    /// writers with the same `cas`, on any replicas, exactly one wins. Not yet durable.
    async fn update<T>(
        &self,
        path: &str,
        mut change: impl FnMut(Option<Metadata>) -> Result<Option<(Vec<PlainWrite>, T)>, KvError>,
    ) -> Result<Option<T>, KvError> {
        validate_path(path)?;
        let _guard = self.write_lock.lock().await;
        loop {
            let read = self
                .store
                .get_versioned_json::<Metadata>(Tree::Kv, &meta_key(path))
                .await?;
            let Some((writes, result)) = change(read.value)? else {
                return Ok(None);
            };
            if self.store.write_if(vec![read.guard], writes).await? {
                return Ok(Some(result));
            }
        }
    }

    /// The writes that add the next version of `path` to `meta` (with pruning). Returns them
    /// and the new version number.
    fn new_version_writes(
        &self,
        path: &str,
        meta: &mut Metadata,
        data: &Map<String, Value>,
        now: &str,
    ) -> Result<(Vec<PlainWrite>, u64), KvError> {
        let version = meta.current_version + 1;
        meta.current_version = version;
        meta.updated_time = now.to_owned();
        let deletion_time = match meta.delete_version_after_secs() {
            0 => String::new(),
            secs => crate::clock::rfc3339_from_unix(crate::clock::unix_now().saturating_add(secs)),
        };
        meta.versions.insert(
            version,
            VersionMeta {
                created_time: now.to_owned(),
                deletion_time,
                ..Default::default()
            },
        );
        let data_bytes = serde_json::to_vec(data).map_err(|e| KvError::Invalid(e.to_string()))?;
        let mut writes = vec![(Tree::Kv, version_key(path, version), Some(data_bytes))];
        writes.extend(self.prune(path, meta));
        writes.push((Tree::Kv, meta_key(path), Some(encode_metadata(meta))));
        Ok((writes, version))
    }

    /// Writes a new version. `cas`: `Some(0)` = create only, `Some(n)` = current must be n.
    pub async fn write(
        &self,
        path: &str,
        data: Map<String, Value>,
        cas: Option<u64>,
    ) -> Result<Value, KvError> {
        let response = self
            .update(path, |meta| {
                let now = rfc3339_now();
                let mut meta = meta.unwrap_or_else(|| new_metadata(&now));
                match cas {
                    Some(expected) if expected != meta.current_version => {
                        return Err(KvError::Invalid(
                            "check-and-set parameter did not match the current version".into(),
                        ));
                    }
                    None if meta.cas_required => {
                        return Err(KvError::Invalid(
                            "check-and-set parameter required for this call".into(),
                        ));
                    }
                    _ => {}
                }
                let (writes, version) = self.new_version_writes(path, &mut meta, &data, &now)?;
                Ok(Some((writes, meta.version_json(version))))
            })
            .await?
            .unwrap_or_default();
        self.store.sync().await?;
        Ok(response)
    }

    /// Writes a new version of each `(path, data)` and makes them durable with one sync at
    /// the end: for imports and bulk loads, where per-write durability is not needed.
    pub async fn write_many(
        &self,
        items: Vec<(String, Map<String, Value>)>,
    ) -> Result<(), KvError> {
        for (path, data) in items {
            self.update(&path, |meta| {
                let now = rfc3339_now();
                let mut meta = meta.unwrap_or_else(|| new_metadata(&now));
                let (writes, _) = self.new_version_writes(&path, &mut meta, &data, &now)?;
                Ok(Some((writes, ())))
            })
            .await?;
        }
        self.store.sync().await?;
        Ok(())
    }

    /// Drops versions beyond max_versions, oldest first.
    fn prune(&self, path: &str, meta: &mut Metadata) -> Vec<PlainWrite> {
        let max = if meta.max_versions == 0 {
            DEFAULT_MAX_VERSIONS
        } else {
            meta.max_versions
        };
        let mut writes = Vec::new();
        while meta.versions.len() as u64 > max {
            let Some((&oldest, _)) = meta.versions.iter().next() else {
                break;
            };
            meta.versions.remove(&oldest);
            writes.push((Tree::Kv, version_key(path, oldest), None));
        }
        meta.oldest_version = meta.versions.keys().next().copied().unwrap_or(0);
        writes
    }

    /// Applies `change` to the metadata of an existing `path` and stores it durably.
    async fn modify<F>(&self, path: &str, change: F) -> Result<(), KvError>
    where
        F: Fn(&mut Metadata, &mut Vec<PlainWrite>) -> Result<(), KvError>,
    {
        self.update(path, |meta| {
            let Some(mut meta) = meta else {
                return Ok(None);
            };
            let mut writes = Vec::new();
            change(&mut meta, &mut writes)?;
            writes.push((Tree::Kv, meta_key(path), Some(encode_metadata(&meta))));
            Ok(Some((writes, ())))
        })
        .await?;
        self.store.sync().await?;
        Ok(())
    }

    /// Soft-deletes the given versions (`None` = the current one).
    pub async fn delete_versions(
        &self,
        path: &str,
        versions: Option<Vec<u64>>,
    ) -> Result<(), KvError> {
        self.modify(path, |meta, _| {
            let targets = versions
                .clone()
                .unwrap_or_else(|| vec![meta.current_version]);
            let now = rfc3339_now();
            let now_secs = crate::clock::unix_now();
            for v in targets {
                if let Some(vm) = meta.versions.get_mut(&v)
                    && !vm.destroyed
                    && !vm.is_deleted(now_secs)
                {
                    vm.deletion_time = now.clone();
                }
            }
            Ok(())
        })
        .await
    }

    pub async fn undelete_versions(&self, path: &str, versions: Vec<u64>) -> Result<(), KvError> {
        self.modify(path, |meta, _| {
            for v in &versions {
                if let Some(vm) = meta.versions.get_mut(v)
                    && !vm.destroyed
                {
                    vm.deletion_time.clear();
                }
            }
            Ok(())
        })
        .await
    }

    pub async fn destroy_versions(&self, path: &str, versions: Vec<u64>) -> Result<(), KvError> {
        self.modify(path, |meta, writes| {
            for v in &versions {
                if let Some(vm) = meta.versions.get_mut(v) {
                    vm.destroyed = true;
                    writes.push((Tree::Kv, version_key(path, *v), None));
                }
            }
            Ok(())
        })
        .await
    }

    /// Creates or updates a path's metadata settings.
    pub async fn write_metadata(
        &self,
        path: &str,
        max_versions: Option<u64>,
        cas_required: Option<bool>,
        custom_metadata: Option<BTreeMap<String, String>>,
        delete_version_after: Option<String>,
    ) -> Result<(), KvError> {
        self.update(path, |meta| {
            let now = rfc3339_now();
            let mut meta = meta.unwrap_or_else(|| new_metadata(&now));
            if let Some(m) = max_versions {
                meta.max_versions = m;
            }
            if let Some(c) = cas_required {
                meta.cas_required = c;
            }
            if custom_metadata.is_some() {
                meta.custom_metadata = custom_metadata.clone();
            }
            if let Some(d) = &delete_version_after {
                meta.delete_version_after = d.clone();
            }
            meta.updated_time = now;
            let mut writes = self.prune(path, &mut meta);
            writes.push((Tree::Kv, meta_key(path), Some(encode_metadata(&meta))));
            Ok(Some((writes, ())))
        })
        .await?;
        self.store.sync().await?;
        Ok(())
    }

    /// Removes a path's metadata and every version.
    pub async fn delete_all(&self, path: &str) -> Result<(), KvError> {
        validate_path(path)?;
        let version_prefix = [b"v\0".as_slice(), path.as_bytes(), b"\0"].concat();
        {
            let _guard = self.write_lock.lock().await;
            loop {
                // Guarded by the metadata: a version written meanwhile (any replica) changes
                // it, and the scan runs again.
                let read = self
                    .store
                    .get_versioned_json::<Metadata>(Tree::Kv, &meta_key(path))
                    .await?;
                let mut writes: Vec<PlainWrite> = self
                    .store
                    .scan_keys(Tree::Kv, &version_prefix)
                    .await?
                    .into_iter()
                    .map(|k| (Tree::Kv, k, None))
                    .collect();
                writes.push((Tree::Kv, meta_key(path), None));
                if self.store.write_if(vec![read.guard], writes).await? {
                    break;
                }
            }
        }
        self.store.sync().await?;
        Ok(())
    }

    /// Immediate children of a folder (`""` = root): names, with a trailing `/` for folders.
    pub async fn list(&self, folder: &str) -> Result<Vec<String>, KvError> {
        let folder = folder.trim_end_matches('/');
        let prefix = if folder.is_empty() {
            String::new()
        } else {
            validate_path(folder)?;
            format!("{folder}/")
        };
        let mut keys: Vec<String> = Vec::new();
        for key in self.store.scan_keys(Tree::Kv, &meta_key(&prefix)).await? {
            let Ok(full) = std::str::from_utf8(&key[2..]) else {
                continue;
            };
            let Some(rest) = full.strip_prefix(&prefix) else {
                continue;
            };
            let child = match rest.split_once('/') {
                Some((dir, _)) => format!("{dir}/"),
                None => rest.to_owned(),
            };
            if keys.last() != Some(&child) && !keys.contains(&child) {
                keys.push(child);
            }
        }
        keys.sort();
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: u64) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("n".into(), json!(n));
        m
    }

    /// Two engines over one store stand for two replicas: each has its own write lock, so
    /// only the guarded write keeps `cas` exact.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_cas_writers_on_two_engines_have_exactly_one_winner() {
        let (store, _) = crate::store::memory::unsealed_store().await;
        let engines = [
            std::sync::Arc::new(Kv::new(store.clone())),
            std::sync::Arc::new(Kv::new(store.clone())),
        ];
        engines[0]
            .write("p", data(0), Some(0))
            .await
            .expect("create");
        for version in 1..=20u64 {
            let tasks: Vec<_> = (0..8)
                .map(|i| {
                    let kv = engines[i % 2].clone();
                    tokio::spawn(async move { kv.write("p", data(version), Some(version)).await })
                })
                .collect();
            let mut wins = 0;
            for task in tasks {
                match task.await.expect("join") {
                    Ok(_) => wins += 1,
                    Err(KvError::Invalid(msg)) => assert!(msg.contains("check-and-set"), "{msg}"),
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(wins, 1, "version {version}");
        }
        let meta = engines[1]
            .metadata("p")
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(meta.current_version, 21);
    }

    #[tokio::test]
    async fn writes_without_cas_from_two_engines_never_lose_a_version() {
        let (store, _) = crate::store::memory::unsealed_store().await;
        let a = std::sync::Arc::new(Kv::new(store.clone()));
        let b = std::sync::Arc::new(Kv::new(store.clone()));
        let tasks: Vec<_> = (0..20u64)
            .map(|n| {
                let kv = if n % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move { kv.write("q", data(n), None).await })
            })
            .collect();
        for task in tasks {
            task.await.expect("join").expect("write");
        }
        let meta = a.metadata("q").await.expect("read").expect("exists");
        assert_eq!(meta.current_version, 20);
        assert_eq!(meta.versions.len() as u64, DEFAULT_MAX_VERSIONS);
    }

    /// Reads come from cached metadata, and each change made through another engine on the
    /// same store — a new version, a soft delete, an undelete, a destroy — is seen by the next.
    #[tokio::test]
    async fn reads_through_the_metadata_cache_see_every_change_at_once() {
        let (store, _) = crate::store::memory::unsealed_store().await;
        let reader = Kv::new(store.clone());
        let writer = Kv::new(store.clone());
        let current = |outcome: ReadOutcome| match outcome {
            ReadOutcome::Found { data, metadata } => {
                assert_eq!(format!("{data:?}"), "SecretJson(<redacted>)");
                let data: Value = serde_json::from_slice(data.expose()).expect("JSON");
                Some((data["n"].as_u64(), Some(metadata.version)))
            }
            ReadOutcome::Gone(_) => None,
        };
        writer.write("c", data(1), None).await.expect("write");
        assert_eq!(
            current(reader.read("c", None).await.expect("read")),
            Some((Some(1), Some(1)))
        );
        let watch = store.watch_of(Tree::Kv).expect("exclusive");
        assert!(reader.meta_cache.get(watch, "c").is_some(), "kept");
        let sealed = reader
            .sealed_cache
            .get(watch, version_key("c", 1).as_slice())
            .expect("the version's record kept");
        assert!(
            !sealed.windows(5).any(|w| w == br#""n":1"#),
            "the cache holds the record encrypted"
        );
        assert_eq!(
            current(reader.read("c", None).await.expect("read")),
            Some((Some(1), Some(1))),
            "read again through both caches"
        );
        writer.write("c", data(2), None).await.expect("write");
        assert!(
            reader
                .sealed_cache
                .get(watch, version_key("c", 1).as_slice())
                .is_none(),
            "a write to the tree drops it"
        );
        assert_eq!(
            current(reader.read("c", None).await.expect("read")),
            Some((Some(2), Some(2)))
        );
        writer.delete_versions("c", None).await.expect("delete");
        assert_eq!(current(reader.read("c", None).await.expect("read")), None);
        writer
            .undelete_versions("c", vec![2])
            .await
            .expect("undelete");
        assert!(current(reader.read("c", None).await.expect("read")).is_some());
        writer
            .destroy_versions("c", vec![2])
            .await
            .expect("destroy");
        assert_eq!(current(reader.read("c", None).await.expect("read")), None);
        // A seal drops every kept record, and a sealed store serves none of them.
        writer.write("c", data(3), None).await.expect("write");
        assert!(current(reader.read("c", None).await.expect("read")).is_some());
        assert!(
            reader
                .sealed_cache
                .get(watch, version_key("c", 3).as_slice())
                .is_some()
        );
        store.seal();
        assert!(reader.read("c", None).await.is_err(), "sealed");
        assert!(
            reader
                .sealed_cache
                .get(watch, version_key("c", 3).as_slice())
                .is_none()
        );
    }

    #[tokio::test]
    async fn large_records_are_not_kept() {
        let (store, _) = crate::store::memory::unsealed_store().await;
        let kv = Kv::new(store.clone());
        let mut big = Map::new();
        big.insert("x".into(), json!("y".repeat(SEALED_CACHE_RECORD)));
        kv.write("big", big, None).await.expect("write");
        assert!(matches!(
            kv.read("big", None).await.expect("read"),
            ReadOutcome::Found { .. }
        ));
        let watch = store.watch_of(Tree::Kv).expect("exclusive");
        assert!(kv.meta_cache.get(watch, "big").is_some());
        assert!(
            kv.sealed_cache
                .get(watch, version_key("big", 1).as_slice())
                .is_none()
        );
    }

    #[test]
    fn path_validation() {
        assert!(validate_path("prod/api").is_ok());
        for bad in ["", "a//b", "../x", "a/./b", "a/", "/a", "a\nb"] {
            assert!(validate_path(bad).is_err(), "{bad:?} accepted");
        }
    }
}
