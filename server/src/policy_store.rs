//! The policy-as-code document in force: stored sealed in the `config` tree, versioned,
//! replaced atomically (an invalid document never replaces a valid one), and compiled into
//! ACLs that are cached per policy set. Also the [`Authorizer`] the HTTP layer asks.
//!
//! Several replicas share one store: a replica keeps its compiled snapshot for at most
//! [`REFRESH_AFTER`], then re-reads the stored version (one record) and recompiles when it
//! changed, so a document applied through any replica is in force on all within that bound.
//! Applies are guarded writes on the stored record: two replicas applying at once never lose
//! one another's change (the later one merges onto the earlier).

use crate::authz::{Authorizer, Capability};
use crate::oidc::jwks::{JwksCache, JwksSource, url_allowed};
use crate::oidc::verify::{IssuerParams, parse_algorithm};
use crate::store::sealed::SealedStore;
use crate::store::{StoreError, Tree};
use policies::{Acl, Document, KeySource};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

const CURRENT_KEY: &[u8] = b"policy/current";

/// How long a replica trusts its compiled snapshot before checking the stored version.
pub(crate) const REFRESH_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct Stored {
    version: u64,
    updated_time: String,
    document: Document,
}

/// A compiled, immutable snapshot of the document in force.
#[derive(Debug)]
pub struct PolicySnapshot {
    pub version: u64,
    pub updated_time: String,
    pub document: Document,
    acls: RwLock<HashMap<Vec<String>, Arc<Acl>>>,
    /// The document's policies that have templated rules (their ACL depends on the token).
    templated: std::collections::HashSet<String>,
}

impl PolicySnapshot {
    fn new(stored: Stored) -> Self {
        let templated = stored
            .document
            .policies
            .iter()
            .filter(|(_, policy)| policy.is_templated())
            .map(|(name, _)| name.clone())
            .collect();
        Self {
            version: stored.version,
            updated_time: stored.updated_time,
            document: stored.document,
            acls: RwLock::new(HashMap::new()),
            templated,
        }
    }

    /// The ACL for a token, compiled once per snapshot and policy set — and, when a policy of
    /// the set is templated, per role and login claims too (the rendered rules differ).
    /// Whether any of `policies` has a templated rule (its ACL depends on the token).
    pub fn is_templated(&self, policies: &[String]) -> bool {
        policies.iter().any(|p| self.templated.contains(p))
    }

    pub fn acl(&self, token: &crate::tokens::TokenRecord) -> Arc<Acl> {
        let names = || token.policies.iter().map(String::as_str);
        let templated = self.is_templated(&token.policies);
        // The common case (no templated policy) looks up by the policy list itself, without
        // building a key.
        let key = templated.then(|| {
            let mut key = token.policies.clone();
            key.push(format!("\0role={:?}", token.role));
            key.push(format!(
                "\0claims={}",
                token
                    .claims
                    .as_ref()
                    .map(|c| serde_json::Value::Object(c.clone()).to_string())
                    .unwrap_or_default()
            ));
            key
        });
        let lookup: &[String] = key.as_deref().unwrap_or(&token.policies);
        if let Ok(cache) = self.acls.read()
            && let Some(acl) = cache.get(lookup)
        {
            return acl.clone();
        }
        let acl = if templated {
            let context = policies::TemplateContext {
                role: token.role.as_deref().filter(|_| token.claims.is_some()),
                claims: token.claims.as_ref(),
            };
            Arc::new(self.document.acl_with(names(), &context))
        } else {
            Arc::new(self.document.acl(names()))
        };
        if let Ok(mut cache) = self.acls.write() {
            if cache.len() > 4096 {
                cache.clear();
            }
            cache.insert(lookup.to_vec(), acl.clone());
        }
        acl
    }

    /// Verification parameters for a named issuer.
    pub fn issuer_params(&self, name: &str) -> Option<IssuerParams> {
        let issuer = self.document.issuers.get(name)?;
        let source = match issuer.key_source() {
            KeySource::JwksFile(file) => JwksSource::File(file.into()),
            KeySource::JwksUrl(url) => JwksSource::Url(url.to_owned()),
            KeySource::Discovery(url) => JwksSource::Discovery {
                url,
                issuer: issuer.issuer.clone(),
            },
        };
        Some(IssuerParams {
            issuer: issuer.issuer.clone(),
            algorithms: issuer
                .algorithms
                .iter()
                .filter_map(|a| parse_algorithm(a.as_str()))
                .collect(),
            max_lifetime_secs: issuer.max_token_lifetime.as_secs(),
            source,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyStoreError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One change an apply makes, for `policy apply --dry-run` and the audit log.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Change {
    pub kind: &'static str,
    pub name: String,
    pub action: &'static str,
}

#[derive(Debug)]
pub struct PolicyStore {
    store: SealedStore,
    /// The snapshot in force here and when it was last checked against the store.
    current: RwLock<Option<(Arc<PolicySnapshot>, Instant)>>,
    /// One refresh at a time; waiters then use its result.
    refresh: tokio::sync::Mutex<()>,
    /// The storage engine's change signal (PostgreSQL `NOTIFY`), if it has one, and the last
    /// value a refresh saw: a change makes the next request re-read at once instead of
    /// waiting out [`REFRESH_AFTER`].
    changes: Option<tokio::sync::watch::Receiver<u64>>,
    seen_change: std::sync::atomic::AtomicU64,
    write_lock: tokio::sync::Mutex<()>,
    pub jwks: Arc<JwksCache>,
}

fn diff<T: PartialEq>(
    kind: &'static str,
    old: &std::collections::BTreeMap<String, T>,
    new: &std::collections::BTreeMap<String, T>,
    out: &mut Vec<Change>,
) {
    for (name, value) in new {
        match old.get(name) {
            None => out.push(Change {
                kind,
                name: name.clone(),
                action: "create",
            }),
            Some(previous) if previous != value => out.push(Change {
                kind,
                name: name.clone(),
                action: "update",
            }),
            _ => {}
        }
    }
    for name in old.keys().filter(|n| !new.contains_key(*n)) {
        out.push(Change {
            kind,
            name: name.clone(),
            action: "delete",
        });
    }
}

impl PolicyStore {
    pub fn new(store: SealedStore, jwks: Arc<JwksCache>) -> Self {
        let changes = store.backend().config_changes();
        Self {
            store,
            current: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
            changes,
            seen_change: std::sync::atomic::AtomicU64::new(0),
            write_lock: tokio::sync::Mutex::new(()),
            jwks,
        }
    }

    /// The change signal's current value, if there is a signal.
    fn change_mark(&self) -> Option<u64> {
        self.changes.as_ref().map(|rx| *rx.borrow())
    }

    fn cached(&self, fresh_within: Duration) -> Option<Arc<PolicySnapshot>> {
        if let Some(mark) = self.change_mark()
            && mark != self.seen_change.load(std::sync::atomic::Ordering::Acquire)
        {
            return None;
        }
        let guard = self.current.read().ok()?;
        let (snapshot, checked) = guard.as_ref()?;
        (checked.elapsed() < fresh_within).then(|| snapshot.clone())
    }

    /// Installs `snapshot` unless a newer version is already in force (a refresh that read
    /// the store just before an apply here must not roll the apply back).
    fn install(&self, snapshot: Arc<PolicySnapshot>) {
        if let Ok(mut guard) = self.current.write() {
            match guard.as_mut() {
                Some((current, checked)) if current.version > snapshot.version => {
                    *checked = Instant::now();
                }
                _ => *guard = Some((snapshot, Instant::now())),
            }
        }
    }

    /// The document in force: the compiled snapshot if checked within `REFRESH_AFTER`,
    /// otherwise re-read from the store (and recompiled only if its version changed).
    pub async fn current(&self) -> Result<Arc<PolicySnapshot>, StoreError> {
        if let Some(snapshot) = self.cached(REFRESH_AFTER) {
            return Ok(snapshot);
        }
        let _one = self.refresh.lock().await;
        if let Some(snapshot) = self.cached(REFRESH_AFTER) {
            return Ok(snapshot);
        }
        // Noted before reading: a change announced while we read triggers another read.
        if let Some(mark) = self.change_mark() {
            self.seen_change
                .store(mark, std::sync::atomic::Ordering::Release);
        }
        let (stored, _) = self.read_stored().await?;
        let previous = self
            .current
            .read()
            .ok()
            .and_then(|guard| guard.as_ref().map(|(snapshot, _)| snapshot.clone()));
        let snapshot = match previous {
            Some(previous) if previous.version == stored.version => previous,
            _ => Arc::new(PolicySnapshot::new(stored)),
        };
        self.install(snapshot.clone());
        Ok(snapshot)
    }

    /// The stored document, validated, and the guard for replacing it.
    async fn read_stored(&self) -> Result<(Stored, crate::store::Guard), StoreError> {
        let read = self
            .store
            .get_versioned_json::<Stored>(Tree::Config, CURRENT_KEY)
            .await?;
        let stored = read.value.unwrap_or_default();
        // Deserialising skips the document checks: run them, and fail closed on a bad record.
        stored
            .document
            .validate()
            .map_err(|e| StoreError::Corrupt {
                tree: "config",
                key: format!("policy document ({e})"),
            })?;
        Ok((stored, read.guard))
    }

    /// Drops the cached snapshot (on seal).
    pub fn forget(&self) {
        if let Ok(mut guard) = self.current.write() {
            *guard = None;
        }
    }

    /// Checks what only the server can: issuer URLs are fetchable under this server's rules.
    fn check_server_rules(&self, document: &Document) -> Result<(), PolicyStoreError> {
        for (name, issuer) in &document.issuers {
            let urls = [
                Some(&issuer.issuer),
                issuer.jwks_url.as_ref(),
                issuer.discovery_url.as_ref(),
            ];
            if issuer.jwks_file.is_none() || issuer.jwks_url.is_some() {
                for url in urls.into_iter().flatten() {
                    url_allowed(url, self.jwks.allow_loopback_http)
                        .map_err(|e| PolicyStoreError::Invalid(format!("issuers.{name}: {e}")))?;
                }
            }
        }
        Ok(())
    }

    /// Merges `documents` into the current document (upsert by name), or replaces it when
    /// `replace`. Validates the result; stores it unless `dry_run`. All or nothing.
    pub async fn apply(
        &self,
        documents: Vec<Document>,
        replace: bool,
        dry_run: bool,
    ) -> Result<(u64, Vec<Change>, Document), PolicyStoreError> {
        self.update(dry_run, |current| {
            let mut next = if replace {
                Document::default()
            } else {
                current.clone()
            };
            for document in documents.iter().cloned() {
                next.merge(document);
            }
            Ok(next)
        })
        .await
    }

    /// Removes one issuer, role or policy by name.
    pub async fn remove(
        &self,
        kind: &str,
        name: &str,
    ) -> Result<(u64, Vec<Change>, Document), PolicyStoreError> {
        self.update(false, |current| {
            let mut next = current.clone();
            let removed = match kind {
                "issuer" | "issuers" => next.issuers.remove(name).is_some(),
                "role" | "roles" => next.roles.remove(name).is_some(),
                "policy" | "policies" => next.policies.remove(name).is_some(),
                _ => {
                    return Err(PolicyStoreError::Invalid(
                        "kind must be issuer, role or policy".into(),
                    ));
                }
            };
            if !removed {
                return Err(PolicyStoreError::Invalid(format!(
                    "no {kind} named {name:?}"
                )));
            }
            Ok(next)
        })
        .await
    }

    /// Computes the next document from the stored one, validates it and stores it guarded by
    /// the record read; on a concurrent change (another replica) computes it again.
    async fn update(
        &self,
        dry_run: bool,
        change: impl Fn(&Document) -> Result<Document, PolicyStoreError>,
    ) -> Result<(u64, Vec<Change>, Document), PolicyStoreError> {
        let _guard = self.write_lock.lock().await;
        loop {
            let (current, guard) = self.read_stored().await?;
            let next = change(&current.document)?;
            next.validate()
                .map_err(|e| PolicyStoreError::Invalid(e.to_string()))?;
            self.check_server_rules(&next)?;
            let changes = changes_between(&current.document, &next);
            if dry_run || changes.is_empty() {
                return Ok((current.version, changes, next));
            }
            let stored = Stored {
                version: current.version + 1,
                updated_time: crate::clock::rfc3339_now(),
                document: next.clone(),
            };
            let bytes = serde_json::to_vec(&stored)
                .expect("a policy document (maps of strings, lists, integers) serialises");
            let writes = vec![(Tree::Config, CURRENT_KEY.to_vec(), Some(bytes))];
            if !self.store.write_if(vec![guard], writes).await? {
                continue;
            }
            self.store.sync().await?;
            if changes.iter().any(|c| c.kind == "issuer") {
                self.jwks.clear();
            }
            let version = stored.version;
            self.install(Arc::new(PolicySnapshot::new(stored)));
            return Ok((version, changes, next));
        }
    }
}

fn changes_between(current: &Document, next: &Document) -> Vec<Change> {
    let mut changes = Vec::new();
    diff("issuer", &current.issuers, &next.issuers, &mut changes);
    diff("role", &current.roles, &next.roles, &mut changes);
    diff("policy", &current.policies, &next.policies, &mut changes);
    changes
}

/// Authorises against the document in force. `root` always passes; a store failure denies.
#[derive(Debug)]
pub(crate) struct PolicyAuthorizer(pub Arc<PolicyStore>);

#[async_trait::async_trait]
impl Authorizer for PolicyAuthorizer {
    async fn allows(
        &self,
        token: &crate::tokens::TokenRecord,
        path: &str,
        capability: Capability,
    ) -> bool {
        if token.is_root() {
            return true;
        }
        match self.0.current().await {
            Ok(snapshot) => snapshot.acl(token).allows(path, capability),
            Err(_) => false,
        }
    }
}
