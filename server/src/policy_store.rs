//! The policy-as-code document in force: stored sealed in the `config` tree, versioned,
//! replaced atomically (an invalid document never replaces a valid one), and compiled into
//! ACLs that are cached per policy set. Also the [`Authorizer`] the HTTP layer asks.

use crate::authz::{Authorizer, Capability};
use crate::oidc::jwks::{JwksCache, JwksSource, url_allowed};
use crate::oidc::verify::{IssuerParams, parse_algorithm};
use crate::store::sealed::SealedStore;
use crate::store::{StoreError, Tree};
use policies::{Acl, Document, KeySource};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

const CURRENT_KEY: &[u8] = b"policy/current";

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
}

impl PolicySnapshot {
    fn new(stored: Stored) -> Self {
        Self {
            version: stored.version,
            updated_time: stored.updated_time,
            document: stored.document,
            acls: RwLock::new(HashMap::new()),
        }
    }

    /// The ACL for a token's policy set, compiled once per snapshot.
    pub fn acl(&self, token_policies: &[String]) -> Arc<Acl> {
        if let Ok(cache) = self.acls.read()
            && let Some(acl) = cache.get(token_policies)
        {
            return acl.clone();
        }
        let acl = Arc::new(self.document.acl(token_policies.iter().map(String::as_str)));
        if let Ok(mut cache) = self.acls.write() {
            if cache.len() > 4096 {
                cache.clear();
            }
            cache.insert(token_policies.to_vec(), acl.clone());
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
    current: RwLock<Option<Arc<PolicySnapshot>>>,
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
        Self {
            store,
            current: RwLock::new(None),
            write_lock: tokio::sync::Mutex::new(()),
            jwks,
        }
    }

    /// The document in force (loaded from the store on first use after unseal).
    pub fn current(&self) -> Result<Arc<PolicySnapshot>, StoreError> {
        if let Ok(guard) = self.current.read()
            && let Some(snapshot) = guard.as_ref()
        {
            return Ok(snapshot.clone());
        }
        let stored: Stored = self
            .store
            .get_json(Tree::Config, CURRENT_KEY)?
            .unwrap_or_default();
        // Deserialising skips the document checks: run them, and fail closed on a bad record.
        stored
            .document
            .validate()
            .map_err(|e| StoreError::Corrupt {
                tree: "config",
                key: format!("policy document ({e})"),
            })?;
        let snapshot = Arc::new(PolicySnapshot::new(stored));
        if let Ok(mut guard) = self.current.write() {
            *guard = Some(snapshot.clone());
        }
        Ok(snapshot)
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
        let _guard = self.write_lock.lock().await;
        let current = self.current()?;
        let mut next = if replace {
            Document::default()
        } else {
            current.document.clone()
        };
        for document in documents {
            next.merge(document);
        }
        self.commit(&current, next, dry_run).await
    }

    /// Removes one issuer, role or policy by name.
    pub async fn remove(
        &self,
        kind: &str,
        name: &str,
    ) -> Result<(u64, Vec<Change>, Document), PolicyStoreError> {
        let _guard = self.write_lock.lock().await;
        let current = self.current()?;
        let mut next = current.document.clone();
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
        self.commit(&current, next, false).await
    }

    async fn commit(
        &self,
        current: &PolicySnapshot,
        next: Document,
        dry_run: bool,
    ) -> Result<(u64, Vec<Change>, Document), PolicyStoreError> {
        next.validate()
            .map_err(|e| PolicyStoreError::Invalid(e.to_string()))?;
        self.check_server_rules(&next)?;
        let mut changes = Vec::new();
        diff(
            "issuer",
            &current.document.issuers,
            &next.issuers,
            &mut changes,
        );
        diff("role", &current.document.roles, &next.roles, &mut changes);
        diff(
            "policy",
            &current.document.policies,
            &next.policies,
            &mut changes,
        );
        if dry_run || changes.is_empty() {
            return Ok((current.version, changes, next));
        }
        let stored = Stored {
            version: current.version + 1,
            updated_time: crate::clock::rfc3339_now(),
            document: next.clone(),
        };
        let bytes =
            serde_json::to_vec(&stored).map_err(|e| PolicyStoreError::Invalid(e.to_string()))?;
        self.store
            .write(vec![(Tree::Config, CURRENT_KEY.to_vec(), Some(bytes))])?;
        self.store.sync().await?;
        if changes.iter().any(|c| c.kind == "issuer") {
            self.jwks.clear();
        }
        let version = stored.version;
        if let Ok(mut guard) = self.current.write() {
            *guard = Some(Arc::new(PolicySnapshot::new(stored)));
        }
        Ok((version, changes, next))
    }
}

/// Authorises against the document in force. `root` always passes; a store failure denies.
#[derive(Debug)]
pub struct PolicyAuthorizer(pub Arc<PolicyStore>);

impl Authorizer for PolicyAuthorizer {
    fn allows(&self, token_policies: &[String], path: &str, capability: Capability) -> bool {
        if token_policies.iter().any(|p| p == "root") {
            return true;
        }
        match self.0.current() {
            Ok(snapshot) => snapshot.acl(token_policies).allows(path, capability),
            Err(_) => false,
        }
    }
}
