//! Leases of minted PostgreSQL users: mint, renew, revoke, and the sweeper that ends them.
//!
//! A lease is a record in [`Tree::Leases`] at `lease/<lease_id>`, indexed by the storage key
//! of the token that obtained it at `owner/<token key hex>/<lease_id>`. Its state:
//!
//! - `Creating { deadline }`: written durably **before** `CREATE ROLE`, so a vaultd that dies
//!   in between leaves a record saying which user may exist. Abandoned ones (past the
//!   deadline, or left by another process on a store only this one writes, or by this
//!   process without a request still working on them) are revoked by the sweeper.
//! - `Active`: the credential was handed out. Ends at `expire_time` (the sweeper), on revoke,
//!   or when its token is revoked.
//! - `Revoking`: the durable intent to drop the user. Attempted at once, then retried by the
//!   sweeper with exponential backoff (1 s doubling to 60 s) until PostgreSQL confirms the
//!   role is gone; only then is the record deleted. Never forgotten, counted in metrics.
//!
//! Every change of state is a guarded write ([`SealedStore::write_if`]), so replicas sweeping
//! the same store at once agree, and a revoke that races a mint wins: the mint then drops the
//! user it just made and fails. Dropping is idempotent (it runs only while the role exists).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::{DEFAULT_RENEW, DEFAULT_REVOCATION, Database, DatabaseError, Result, invalid, pg};
use crate::clock::{rfc3339_from_unix, unix_now};
use crate::store::sealed::SealedStore;
use crate::store::{Guard, Tree};
use crate::tokens::TokenRecord;

/// How long a mint may take before its half-made lease counts as abandoned (the operation
/// timeout plus a margin for a commit in flight).
const CREATING_DEADLINE: u64 = pg::OPERATION_TIMEOUT.as_secs() + 15;
/// How often the sweeper looks at the leases.
pub(crate) const SWEEP_INTERVAL: Duration = Duration::from_secs(2);
/// Every this many sweeps, leases whose token is gone (spent its last use, swept) are ended.
const OWNER_CHECK_EVERY: u64 = 15;
/// Longest wait between two attempts to drop a user.
const MAX_BACKOFF: u64 = 60;
/// What the prefix of every lease id is.
const PREFIX: &str = "database/creds/";

/// The lifecycle state of a lease (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum State {
    Creating { deadline: u64 },
    Active,
    Revoking,
}

/// What the store keeps for a lease. No password: that is never stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Lease {
    id: String,
    role: String,
    db_name: String,
    username: String,
    /// Copied from the role at mint time, so deleting or changing the role cannot strand
    /// its users.
    revocation_statements: Vec<String>,
    renew_statements: Vec<String>,
    /// Storage key (hex) of the token that obtained the lease.
    owner: Option<String>,
    issue_time: u64,
    expire_time: u64,
    /// Renewals stop here (`issue_time + max_ttl`).
    max_expire: u64,
    /// The role's TTL: the default renewal increment.
    ttl: u64,
    last_renewal: Option<u64>,
    state: State,
    /// The process that wrote the `Creating` record.
    instance: String,
    attempts: u32,
    next_attempt: u64,
    last_error: Option<String>,
}

/// A minted credential, on its way to the client.
pub struct Minted {
    pub lease_id: String,
    pub lease_duration: u64,
    pub username: String,
    pub password: Zeroizing<String>,
    /// A connection URL for the new user (host, port and database from the connection).
    pub url: Zeroizing<String>,
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minted")
            .field("lease_id", &self.lease_id)
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

/// Lease bookkeeping of one process. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Leases {
    store: SealedStore,
    /// Random per process: marks the `Creating` records this process wrote.
    instance: String,
    /// Leases a request of this process is minting right now.
    in_flight: Arc<Mutex<HashSet<String>>>,
    /// Leases this process is trying to drop right now (one attempt at a time each).
    attempting: Arc<Mutex<HashSet<String>>>,
    sweeps: Arc<std::sync::atomic::AtomicU64>,
}

/// Removes `id` from a set when dropped (also when the request is cancelled).
struct Claim(Arc<Mutex<HashSet<String>>>, String);

impl Claim {
    fn take(set: &Arc<Mutex<HashSet<String>>>, id: &str) -> Option<Claim> {
        let mut held = set.lock().unwrap_or_else(|p| p.into_inner());
        held.insert(id.to_owned())
            .then(|| Claim(set.clone(), id.to_owned()))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.1);
    }
}

fn lease_key(id: &str) -> Vec<u8> {
    format!("lease/{id}").into_bytes()
}

fn owner_prefix(owner: &str) -> Vec<u8> {
    format!("owner/{owner}/").into_bytes()
}

use crate::crypto::hex;

fn unhex(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn encode(lease: &Lease) -> Vec<u8> {
    serde_json::to_vec(lease).unwrap_or_default()
}

/// A lease id as clients send it: ours have this shape, anything else is not a lease.
pub(crate) fn valid_lease_id(id: &str) -> bool {
    id.starts_with(PREFIX)
        && id.len() <= 256
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'))
}

/// `n` random characters from `alphabet` (rejection sampling: no bias).
fn random_from(alphabet: &[u8], n: usize) -> Result<Zeroizing<String>> {
    let mut out = Zeroizing::new(String::with_capacity(n));
    let limit = 256 - 256 % alphabet.len();
    while out.len() < n {
        let bytes = Zeroizing::new(
            crate::crypto::random_bytes::<64>().map_err(crate::store::StoreError::from)?,
        );
        for &b in bytes.iter() {
            if (b as usize) < limit && out.len() < n {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    Ok(out)
}

const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A password of 32 letters and digits (about 190 bits): no character that needs quoting in
/// SQL or a URL.
pub(crate) fn random_password() -> Result<Zeroizing<String>> {
    random_from(ALNUM, 32)
}

/// `v-<role>-<20 random>`: lowercase letters, digits, `-` and `_` only, at most 43 bytes
/// (PostgreSQL allows 63), the same whether the statements quote it or not.
fn username_for(role: &str) -> Result<String> {
    let role: String = role
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-' | '_') => c,
            _ => '_',
        })
        .take(20)
        .collect();
    Ok(format!("v-{role}-{}", random_from(LOWER, 20)?.as_str()))
}

/// `{{expiration}}`: PostgreSQL's `VALID UNTIL` form, in UTC.
fn expiration(unix: u64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]+00");
    time::OffsetDateTime::from_unix_timestamp(unix as i64)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "infinity".into())
}

fn backoff(attempts: u32) -> u64 {
    1u64.checked_shl(attempts.saturating_sub(1))
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF)
}

impl Leases {
    pub(crate) fn new(store: SealedStore) -> Self {
        let instance = crate::crypto::random_bytes::<12>()
            .map(|b| hex(&b))
            .unwrap_or_default();
        Self {
            store,
            instance,
            in_flight: Arc::default(),
            attempting: Arc::default(),
            sweeps: Arc::default(),
        }
    }

    async fn read(&self, id: &str) -> Result<(Option<Lease>, Guard)> {
        let read = self
            .store
            .get_versioned_json::<Lease>(Tree::Leases, &lease_key(id))
            .await?;
        Ok((read.value, read.guard))
    }

    async fn all(&self) -> Result<Vec<Lease>> {
        Ok(self
            .store
            .scan(Tree::Leases, b"lease/")
            .await?
            .into_iter()
            .filter_map(|(_, value)| serde_json::from_slice(&value).ok())
            .collect())
    }

    /// Outstanding leases (any state) on the connection `db_name`.
    pub(crate) async fn count_for_database(&self, db_name: &str) -> Result<usize> {
        Ok(self
            .all()
            .await?
            .iter()
            .filter(|l| l.db_name == db_name)
            .count())
    }

    /// Leases handed out and not ended, and leases waiting for their user to be dropped.
    pub async fn counts(&self) -> Result<(usize, usize)> {
        let leases = self.all().await?;
        let pending = leases.iter().filter(|l| l.state == State::Revoking).count();
        Ok((leases.len() - pending, pending))
    }

    /// Marks a lease `Revoking` (durably) unless it already is; `None` if there is none.
    async fn begin_revoke(&self, id: &str) -> Result<Option<Lease>> {
        loop {
            let (lease, guard) = self.read(id).await?;
            let Some(mut lease) = lease else {
                return Ok(None);
            };
            if lease.state == State::Revoking {
                return Ok(Some(lease));
            }
            lease.state = State::Revoking;
            lease.attempts = 0;
            lease.next_attempt = unix_now();
            let writes = vec![(Tree::Leases, lease_key(id), Some(encode(&lease)))];
            if self.store.write_if(vec![guard], writes).await? {
                self.store.sync().await?;
                return Ok(Some(lease));
            }
        }
    }

    /// The ids of the leases obtained by the token with storage key `owner`.
    async fn owned_by(&self, owner: &[u8]) -> Result<Vec<String>> {
        let prefix = owner_prefix(&hex(owner));
        Ok(self
            .store
            .scan_keys(Tree::Leases, &prefix)
            .await?
            .into_iter()
            .filter_map(|k| String::from_utf8(k[prefix.len()..].to_vec()).ok())
            .collect())
    }

    /// Whether the token with storage key `owner` still has a record.
    async fn owner_alive(&self, owner: &str) -> Result<bool> {
        let Some(key) = unhex(owner) else {
            return Ok(false);
        };
        Ok(self
            .store
            .backend()
            .get(Tree::Tokens, &key)
            .await?
            .is_some())
    }
}

impl Database {
    /// `GET database/creds/:role`: a new PostgreSQL user under a new lease owned by the
    /// token `token` (storage key `owner`). The lease TTL is the role's, capped by the
    /// token's remaining lifetime.
    pub async fn mint(&self, role_name: &str, token: &TokenRecord, owner: &[u8]) -> Result<Minted> {
        let role = self
            .role(role_name)
            .await?
            .ok_or_else(|| invalid(format!("unknown role {role_name:?}")))?;
        let connection = self.connection(&role.db_name).await?.ok_or_else(|| {
            invalid(format!(
                "role {role_name:?} names connection {:?}, which is not configured",
                role.db_name
            ))
        })?;
        if !connection.allows(role_name) {
            return Err(invalid(format!(
                "role {role_name:?} is not in the allowed_roles of connection {:?}",
                role.db_name
            )));
        }
        let now = unix_now();
        let (mut ttl, max_ttl) = role.ttls();
        let mut max_expire = now + max_ttl;
        if let Some(token_expiry) = token.expire_time {
            ttl = ttl.min(token_expiry.saturating_sub(now));
            max_expire = max_expire.min(token.latest_expiry(None).unwrap_or(token_expiry));
        }
        if ttl == 0 {
            return Err(invalid("the token expires now: no lease can be issued"));
        }
        let username = username_for(role_name)?;
        let password = random_password()?;
        let id = format!("{PREFIX}{role_name}/{}", random_from(ALNUM, 24)?.as_str());
        let owner_hex = hex(owner);
        let lease = Lease {
            id: id.clone(),
            role: role_name.to_owned(),
            db_name: role.db_name.clone(),
            username: username.clone(),
            revocation_statements: role.revocation_statements.clone(),
            renew_statements: role.renew_statements.clone(),
            owner: Some(owner_hex.clone()),
            issue_time: now,
            expire_time: now + ttl,
            max_expire,
            ttl: role.ttls().0,
            last_renewal: None,
            state: State::Creating {
                deadline: now + CREATING_DEADLINE,
            },
            instance: self.leases.instance.clone(),
            attempts: 0,
            next_attempt: 0,
            last_error: None,
        };
        let _minting = Claim::take(&self.leases.in_flight, &id);
        // Durable before PostgreSQL hears of the user: no role can exist without its lease.
        let mut owner_index = owner_prefix(&owner_hex);
        owner_index.extend_from_slice(id.as_bytes());
        self.store
            .write(vec![
                (Tree::Leases, lease_key(&id), Some(encode(&lease))),
                (Tree::Leases, owner_index, Some(Vec::new())),
            ])
            .await?;
        self.store.sync().await?;
        let expires = expiration(lease.expire_time);
        let vars = pg::Vars {
            name: &username,
            password: Some(&password),
            expiration: &expires,
            username: &connection.username,
        };
        let mut statements: Vec<_> = role
            .creation_statements
            .iter()
            .map(|s| pg::render(s, &vars))
            .collect();
        // The backstop, whatever the statements say: the password stops working when the
        // lease ends even if vaultd never gets to drop the user. It also proves that the
        // statements created the role the lease names.
        statements.push(pg::render(DEFAULT_RENEW, &vars));
        let mut secrets = connection.secrets();
        secrets.push(&password);
        let scrub = pg::Scrub(secrets);
        let created = pg::bounded(async {
            let (mut client, _permit) = self.admin_client(&role.db_name, &connection).await?;
            let _turn = self.serially(&role.db_name).await;
            pg::run_in_transaction(&mut client, &statements, &scrub).await
        })
        .await;
        if let Err(e) = created {
            let queued = self.end_now(&id).await;
            let tail = match queued {
                Ok(true) => "nothing was left behind",
                _ => "the user's removal is queued and retried",
            };
            return Err(match e {
                DatabaseError::Refused(m) => {
                    invalid(format!("creating the user failed: {m}; {tail}"))
                }
                DatabaseError::Unreachable(m) | DatabaseError::AuthFailed(m) => {
                    DatabaseError::Unreachable(format!(
                        "connection {:?}: {m}; {tail}",
                        role.db_name
                    ))
                }
                other => other,
            });
        }
        // Creating → Active, unless a revocation (of the token, of the lease) got there first.
        // That revocation may have found no role yet (our transaction was not committed) and
        // deleted the lease: the lease is written again, `Revoking`, so the user now committed
        // is dropped in any case.
        let revoked_meanwhile = || {
            invalid("the lease was revoked while the user was being created; the user is dropped")
        };
        let (current, guard) = self.leases.read(&id).await?;
        let mut active = match current {
            Some(l) if matches!(l.state, State::Creating { .. }) => l,
            _ => {
                self.requeue(lease).await?;
                return Err(revoked_meanwhile());
            }
        };
        active.state = State::Active;
        let writes = vec![(Tree::Leases, lease_key(&id), Some(encode(&active)))];
        if !self.store.write_if(vec![guard], writes).await? {
            self.requeue(lease).await?;
            return Err(revoked_meanwhile());
        }
        self.store.sync().await?;
        if !self.leases.owner_alive(&owner_hex).await? {
            let _ = self.end_now(&id).await;
            return Err(invalid(
                "the token was revoked while the user was being created; the user is dropped",
            ));
        }
        let url = pg::job_url(
            &connection.target()?,
            &username,
            &password,
            &connection.connection_url,
        );
        Ok(Minted {
            lease_id: id,
            lease_duration: ttl,
            username,
            password,
            url: Zeroizing::new(url),
        })
    }

    /// Writes `lease` back as `Revoking` (whatever the store holds for it now) and tries once
    /// to drop its user: for a user this process just created under a lease someone ended.
    async fn requeue(&self, mut lease: Lease) -> Result<bool> {
        lease.state = State::Revoking;
        lease.attempts = 0;
        lease.next_attempt = unix_now();
        let mut index = owner_prefix(lease.owner.as_deref().unwrap_or_default());
        index.extend_from_slice(lease.id.as_bytes());
        self.store
            .write(vec![
                (Tree::Leases, lease_key(&lease.id), Some(encode(&lease))),
                (Tree::Leases, index, Some(Vec::new())),
            ])
            .await?;
        self.store.sync().await?;
        self.attempt(&lease.id).await
    }

    /// Marks a lease `Revoking` and tries once to drop its user; `Ok(true)` when it is gone.
    async fn end_now(&self, id: &str) -> Result<bool> {
        if self.leases.begin_revoke(id).await?.is_none() {
            return Ok(true);
        }
        self.attempt(id).await
    }

    /// One attempt to drop the user of a `Revoking` lease. On success the lease is deleted;
    /// on failure the attempt is recorded and the next one scheduled. `Ok(false)`: not done
    /// (failed, or another attempt of this process is under way).
    async fn attempt(&self, id: &str) -> Result<bool> {
        let Some(_attempting) = Claim::take(&self.leases.attempting, id) else {
            return Ok(false);
        };
        let (lease, guard) = self.leases.read(id).await?;
        let Some(mut lease) = lease else {
            return Ok(true);
        };
        if lease.state != State::Revoking {
            return Ok(false);
        }
        match self.drop_user(&lease).await {
            Ok(()) => {
                let mut writes = vec![(Tree::Leases, lease_key(id), None)];
                if let Some(owner) = &lease.owner {
                    let mut key = owner_prefix(owner);
                    key.extend_from_slice(id.as_bytes());
                    writes.push((Tree::Leases, key, None));
                }
                self.store.write(writes).await?;
                self.store.sync().await?;
                self.metrics.lease_revocations.inc();
                tracing::info!(lease_id = id, user = %lease.username, "lease revoked: user dropped");
                Ok(true)
            }
            Err(e) => {
                lease.attempts = lease.attempts.saturating_add(1);
                lease.next_attempt = unix_now() + backoff(lease.attempts);
                lease.last_error = Some(e.to_string());
                self.metrics.lease_revocation_failures.inc();
                tracing::warn!(
                    lease_id = id,
                    attempts = lease.attempts,
                    retry_in_s = backoff(lease.attempts),
                    error = %e,
                    "dropping a lease's user failed; will retry"
                );
                let writes = vec![(Tree::Leases, lease_key(id), Some(encode(&lease)))];
                if self.store.write_if(vec![guard], writes).await? {
                    self.store.sync().await?;
                }
                Ok(false)
            }
        }
    }

    /// Drops the user of `lease` if it exists, with the lease's revocation statements (or
    /// the default), and checks that it is gone.
    async fn drop_user(&self, lease: &Lease) -> Result<()> {
        let connection = self.connection(&lease.db_name).await?.ok_or_else(|| {
            DatabaseError::Refused(format!("connection {:?} is not configured", lease.db_name))
        })?;
        let scrub = pg::Scrub(connection.secrets());
        let vars = pg::Vars {
            name: &lease.username,
            password: None,
            expiration: "",
            username: &connection.username,
        };
        let statements: Vec<_> = if lease.revocation_statements.is_empty() {
            DEFAULT_REVOCATION
                .iter()
                .map(|s| pg::render(s, &vars))
                .collect()
        } else {
            lease
                .revocation_statements
                .iter()
                .map(|s| pg::render(s, &vars))
                .collect()
        };
        pg::bounded(async {
            let (mut client, _permit) = self.admin_client(&lease.db_name, &connection).await?;
            if !pg::role_exists(&client, &lease.username, &scrub).await? {
                return Ok(());
            }
            let _turn = self.serially(&lease.db_name).await;
            pg::run_in_transaction(&mut client, &statements, &scrub).await?;
            if pg::role_exists(&client, &lease.username, &scrub).await? {
                return Err(DatabaseError::Refused(
                    "the revocation statements left the role in place".into(),
                ));
            }
            Ok(())
        })
        .await
    }

    /// Revokes a lease: durably queued, then (with `sync`) attempted within `budget`.
    /// `Err(Pending)` when the user could not be dropped yet (it will be).
    pub async fn revoke(&self, id: &str, sync: bool, budget: Duration) -> Result<()> {
        if self.leases.begin_revoke(id).await?.is_none() {
            return Err(invalid("invalid lease ID"));
        }
        self.finish_revocations(vec![id.to_owned()], sync, budget)
            .await
    }

    /// Revokes every lease whose id starts with `prefix`; returns how many.
    pub async fn revoke_prefix(&self, prefix: &str, sync: bool, budget: Duration) -> Result<usize> {
        let mut ids = Vec::new();
        for lease in self.leases.all().await? {
            if lease.id.starts_with(prefix) && self.leases.begin_revoke(&lease.id).await?.is_some()
            {
                ids.push(lease.id);
            }
        }
        let n = ids.len();
        self.finish_revocations(ids, sync, budget).await?;
        Ok(n)
    }

    /// Attempts the drops of already `Revoking` leases concurrently; with `sync`, waits up to
    /// `budget` for all of them. Attempts still running then go on in the background.
    async fn finish_revocations(
        &self,
        ids: Vec<String>,
        sync: bool,
        budget: Duration,
    ) -> Result<()> {
        let handles: Vec<_> = ids
            .iter()
            .map(|id| {
                let engine = self.clone();
                let id = id.clone();
                tokio::spawn(async move { engine.attempt(&id).await })
            })
            .collect();
        if !sync {
            return Ok(());
        }
        let all_done = tokio::time::timeout(budget, async {
            let mut done = true;
            for handle in handles {
                done &= matches!(handle.await, Ok(Ok(true)));
            }
            done
        })
        .await
        .unwrap_or(false);
        if all_done {
            return Ok(());
        }
        let mut reasons = Vec::new();
        for id in &ids {
            if let (Some(lease), _) = self.leases.read(id).await? {
                reasons.push(
                    lease
                        .last_error
                        .unwrap_or_else(|| "still in progress".into()),
                );
            }
        }
        if reasons.is_empty() {
            return Ok(());
        }
        Err(DatabaseError::Pending(format!(
            "{} lease(s) revoked but their users not dropped yet ({}); vaultd retries until PostgreSQL confirms",
            reasons.len(),
            reasons.first().map(String::as_str).unwrap_or_default()
        )))
    }

    /// Ends the leases of revoked tokens (their storage keys): durably queued first, then
    /// attempted for up to `budget`. Never fails the revocation of the tokens: what cannot
    /// be done now is retried by the sweeper.
    pub async fn revoke_for_tokens(&self, owners: &[Vec<u8>], budget: Duration) {
        let mut ids = Vec::new();
        for owner in owners {
            match self.leases.owned_by(owner).await {
                Ok(owned) => {
                    for id in owned {
                        match self.leases.begin_revoke(&id).await {
                            Ok(Some(_)) => ids.push(id),
                            Ok(None) => {}
                            Err(e) => {
                                tracing::warn!(lease_id = %id, error = %e, "queueing a lease revocation failed; the sweeper will end it")
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "finding a revoked token's leases failed; the sweeper will end them")
                }
            }
        }
        if ids.is_empty() {
            return;
        }
        if let Err(e) = self.finish_revocations(ids, true, budget).await {
            tracing::warn!(error = %e, "a revoked token's leases are queued for revocation");
        }
    }

    /// `sys/leases/renew`: extends a lease by `increment` (default: the role's TTL), never past
    /// its `max_ttl` nor its token's expiry, and moves the user's `VALID UNTIL` with it.
    /// Returns the new lease duration.
    pub async fn renew(&self, id: &str, increment: Option<u64>) -> Result<u64> {
        let (lease, _) = self.leases.read(id).await?;
        let lease = match lease {
            Some(l) if l.state == State::Active => l,
            _ => return Err(invalid("invalid lease ID, or the lease is revoked")),
        };
        let now = unix_now();
        let mut cap = lease.max_expire;
        if let Some(owner) = &lease.owner {
            let token: Option<TokenRecord> = match unhex(owner) {
                Some(key) => self.store.get_json(Tree::Tokens, &key).await?,
                None => None,
            };
            match token {
                Some(t) if !t.is_expired(now) => {
                    if let Some(expiry) = t.expire_time {
                        cap = cap.min(expiry);
                    }
                }
                _ => {
                    let _ = self.end_now(id).await;
                    return Err(invalid(
                        "the token that obtained this lease is revoked: the lease is revoked too",
                    ));
                }
            }
        }
        let increment = increment.filter(|i| *i > 0).unwrap_or(lease.ttl);
        let expire = (now + increment).min(cap);
        if expire <= now {
            return Err(invalid("the lease is at its max_ttl and cannot be renewed"));
        }
        let connection = self
            .connection(&lease.db_name)
            .await?
            .ok_or_else(|| invalid(format!("connection {:?} is not configured", lease.db_name)))?;
        let expires = expiration(expire);
        let vars = pg::Vars {
            name: &lease.username,
            password: None,
            expiration: &expires,
            username: &connection.username,
        };
        let mut statements: Vec<_> = lease
            .renew_statements
            .iter()
            .map(|s| pg::render(s, &vars))
            .collect();
        statements.push(pg::render(DEFAULT_RENEW, &vars));
        let scrub = pg::Scrub(connection.secrets());
        pg::bounded(async {
            let (mut client, _permit) = self.admin_client(&lease.db_name, &connection).await?;
            let _turn = self.serially(&lease.db_name).await;
            pg::run_in_transaction(&mut client, &statements, &scrub).await
        })
        .await
        .map_err(|e| match e {
            DatabaseError::Refused(m) => invalid(format!("renewing the user failed: {m}")),
            other => other,
        })?;
        loop {
            let (current, guard) = self.leases.read(id).await?;
            let Some(mut current) = current.filter(|l| l.state == State::Active) else {
                return Err(invalid("the lease was revoked meanwhile"));
            };
            current.expire_time = expire;
            current.last_renewal = Some(now);
            let writes = vec![(Tree::Leases, lease_key(id), Some(encode(&current)))];
            if self.store.write_if(vec![guard], writes).await? {
                self.store.sync().await?;
                return Ok(expire - now);
            }
        }
    }

    /// `sys/leases/lookup`; also says whether the token with storage key `caller` owns it.
    pub async fn lookup(&self, id: &str, caller: &[u8]) -> Result<(Value, bool)> {
        let (lease, _) = self.leases.read(id).await?;
        let lease = lease.ok_or_else(|| invalid("invalid lease ID"))?;
        let owned = lease.owner.as_deref() == Some(hex(caller).as_str());
        let now = unix_now();
        let mut info = json!({
            "id": lease.id,
            "issue_time": rfc3339_from_unix(lease.issue_time),
            "expire_time": rfc3339_from_unix(lease.expire_time),
            "last_renewal": lease.last_renewal.map(rfc3339_from_unix),
            "renewable": lease.state == State::Active,
            "ttl": if lease.state == State::Active { lease.expire_time.saturating_sub(now) } else { 0 },
        });
        if lease.state == State::Revoking {
            info["revocation_pending"] = json!(true);
            info["revocation_attempts"] = json!(lease.attempts);
            info["revocation_error"] = json!(lease.last_error);
        }
        Ok((info, owned))
    }

    /// The lease ids one level below `prefix` (`database/creds/deploy` → the ids' last
    /// segments; `database/creds` → `deploy/`), as Vault lists them.
    pub async fn list_leases(&self, prefix: &str) -> Result<Vec<String>> {
        let prefix = format!("{}/", prefix.trim_end_matches('/'));
        let mut keys: Vec<String> = self
            .leases
            .all()
            .await?
            .into_iter()
            .filter_map(|lease| {
                let rest = lease.id.strip_prefix(&prefix)?.to_owned();
                Some(match rest.split_once('/') {
                    Some((folder, _)) => format!("{folder}/"),
                    None => rest,
                })
            })
            .collect();
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    /// Whether the token with storage key `caller` obtained the lease `id`.
    pub async fn owns(&self, id: &str, caller: &[u8]) -> Result<bool> {
        let (lease, _) = self.leases.read(id).await?;
        Ok(lease.is_some_and(|l| l.owner.as_deref() == Some(hex(caller).as_str())))
    }

    /// One pass of the sweeper: ends expired and abandoned leases, retries due revocations,
    /// and (every few passes) ends leases whose token is gone.
    pub async fn sweep(&self) -> Result<()> {
        let now = unix_now();
        let pass = self
            .leases
            .sweeps
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let check_owners = pass.is_multiple_of(OWNER_CHECK_EVERY);
        let mut due = Vec::new();
        for lease in self.leases.all().await? {
            let end = match &lease.state {
                State::Active => {
                    lease.expire_time <= now
                        || (check_owners
                            && match &lease.owner {
                                Some(owner) => !self.leases.owner_alive(owner).await?,
                                None => false,
                            })
                }
                State::Creating { deadline } => {
                    let in_flight = self
                        .leases
                        .in_flight
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .contains(&lease.id);
                    let ours = lease.instance == self.leases.instance;
                    *deadline <= now || (ours && !in_flight) || (!ours && self.is_exclusive())
                }
                State::Revoking => lease.next_attempt <= now,
            };
            if !end {
                continue;
            }
            if lease.state != State::Revoking {
                tracing::info!(lease_id = %lease.id, state = ?lease.state, "ending lease");
                if self.leases.begin_revoke(&lease.id).await?.is_none() {
                    continue;
                }
            }
            due.push(lease.id);
        }
        if !due.is_empty() {
            // Concurrently, so one unreachable database does not hold up the others.
            let _ = self
                .finish_revocations(due, true, pg::OPERATION_TIMEOUT * 2)
                .await;
        }
        Ok(())
    }
}

/// Runs [`Database::sweep`] every [`SWEEP_INTERVAL`] while the store is unsealed.
pub(crate) fn spawn_sweeper(engine: Database, store: SealedStore) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if store.is_sealed() {
                continue;
            }
            if let Err(e) = engine.sweep().await {
                tracing::debug!(error = %e, "lease sweep failed; retrying");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_short_and_safe() {
        let name = username_for("Deploy.Prod-with-a-very-long-role-name").expect("name");
        assert!(name.len() <= 63, "{name}");
        assert!(name.starts_with("v-deploy_prod-with-a-v-"), "{name}");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        );
        let password = random_password().expect("password");
        assert_eq!(password.len(), 32);
        assert!(password.bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn expiration_is_postgres_valid_until_in_utc() {
        assert_eq!(expiration(0), "1970-01-01 00:00:00+00");
        assert_eq!(expiration(1_700_000_000), "2023-11-14 22:13:20+00");
    }

    #[test]
    fn backoff_doubles_to_a_minute() {
        let waits: Vec<u64> = (1..=9).map(backoff).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(u32::MAX), 60);
    }

    #[test]
    fn lease_ids_are_checked() {
        assert!(valid_lease_id("database/creds/deploy/AbC123"));
        assert!(!valid_lease_id("auth/token/create/x"));
        assert!(!valid_lease_id("database/creds/x y"));
        let minted = Minted {
            lease_id: "database/creds/x/1".into(),
            lease_duration: 1,
            username: "v-x".into(),
            password: Zeroizing::new("hunter2hunter2".into()),
            url: Zeroizing::new("postgresql://v-x:hunter2hunter2@h/db".into()),
        };
        assert!(!format!("{minted:?}").contains("hunter2"));
    }
}
