//! `sys/*`: health, seal status, init, unseal, seal, key rotation, the KV mount preflight.

use super::reply::Reply;
use super::{Ctx, Op, Req, authenticate, authorize};
use crate::authz::Capability;
use crate::crypto::SecretKey;
use crate::error::ApiError;
use crate::state::SharedApp;
use crate::store::sealed::{UnsealCredential, UnsealError};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Argon2id takes a while and 64 MiB: one derivation at a time, off the async workers.
static KDF_GATE: KdfGate = KdfGate::new();

/// Counts one piece of work in [`KdfGate::in_flight`] until dropped (also on panic).
struct InFlight(&'static KdfGate);

impl InFlight {
    fn enter(gate: &'static KdfGate) -> Self {
        use std::sync::atomic::Ordering;
        let now = gate.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        gate.peak.fetch_max(now, Ordering::SeqCst);
        Self(gate)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Runs blocking work that may hold an Argon2id derivation one at a time, off the async
/// workers, and counts how many run at once.
struct KdfGate {
    permits: tokio::sync::Semaphore,
    in_flight: std::sync::atomic::AtomicUsize,
    /// The most that ever ran at once (1 unless the bound is broken).
    peak: std::sync::atomic::AtomicUsize,
}

impl KdfGate {
    const fn new() -> Self {
        Self {
            permits: tokio::sync::Semaphore::const_new(1),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            peak: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    async fn run<T: Send + 'static>(
        &'static self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            // The permit goes with the work, not the request: if the request is dropped
            // (client gone, request timeout) the derivation runs on, and the next one must
            // not start until it has finished.
            let _permit = permit;
            let _counted = InFlight::enter(self);
            work()
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
    }
}

pub async fn handle(
    app: &SharedApp,
    ctx: &mut Ctx,
    req: &Req,
    path: &str,
) -> Result<Reply, ApiError> {
    match (path, req.op) {
        ("health", Op::Read | Op::Head) => health(app, req).await,
        ("seal-status", Op::Read) => Ok(Reply::Raw(StatusCode::OK, seal_status(app).await?)),
        ("leader", Op::Read) => Ok(Reply::Raw(
            StatusCode::OK,
            json!({"ha_enabled": false, "is_self": false, "active_time": "0001-01-01T00:00:00Z",
                   "leader_address": "", "leader_cluster_address": "", "performance_standby": false,
                   "performance_standby_last_remote_wal": 0}),
        )),
        ("init", Op::Read) => Ok(Reply::Raw(
            StatusCode::OK,
            json!({"initialized": app.store.is_initialized().await?}),
        )),
        ("init", Op::Write) => init(app, req).await,
        ("unseal", Op::Write) => unseal(app, req, ctx.client).await,
        ("seal", Op::Write) => {
            authorize(app, ctx, req, "sys/seal", Capability::Sudo).await?;
            app.seal();
            tracing::info!("sealed by operator request");
            Ok(Reply::NoContent)
        }
        ("rotate", Op::Write) => {
            authorize(app, ctx, req, "sys/rotate", Capability::Sudo).await?;
            let term = app.store.rotate().await?;
            tracing::info!(term, "data key rotated");
            Ok(Reply::Data(json!({"term": term})))
        }
        ("key-status", Op::Read) => {
            authorize(app, ctx, req, "sys/key-status", Capability::Read).await?;
            let term = app
                .store
                .keyring()
                .map(|k| k.current_version())
                .ok_or(ApiError::Sealed)?;
            Ok(Reply::Data(json!({"term": term})))
        }
        (p, Op::Read)
            if p == "internal/ui/mounts/secret" || p.starts_with("internal/ui/mounts/secret/") =>
        {
            // Vault lets any token that can use the mount see it; a valid token suffices here.
            authenticate(app, ctx, req).await?;
            Ok(Reply::Data(json!({
                "type": "kv", "path": "secret/", "description": "key/value secret storage",
                "options": {"version": "2"}, "accessor": "kv_vaultd", "local": false,
                "seal_wrap": false, "external_entropy_access": false, "uuid": "",
                "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false},
            })))
        }
        (p, _) if p.starts_with("internal/ui/mounts") => Err(ApiError::NotFound),
        ("metrics", Op::Read) => {
            authorize(app, ctx, req, "sys/metrics", Capability::Read).await?;
            if req.query.get("format").is_some_and(|f| f != "prometheus") {
                return Err(ApiError::BadRequest("format must be prometheus".into()));
            }
            let m = &app.metrics;
            m.sealed.set(i64::from(app.store.is_sealed()));
            m.active_tokens
                .set(app.tokens.count().await.map(|n| n as i64).unwrap_or(-1));
            let (active, pending) = app.database.leases().counts().await.unwrap_or((0, 0));
            m.leases_active.set(active as i64);
            m.leases_pending_revocation.set(pending as i64);
            Ok(Reply::Text(m.encode()))
        }
        (p, _) if p.starts_with("vaultctl/") || p.starts_with("dev/") => {
            if app.store.is_sealed() {
                return Err(ApiError::Sealed);
            }
            super::admin::handle(app, ctx, req, path).await
        }
        (
            "health" | "seal-status" | "leader" | "init" | "unseal" | "seal" | "rotate"
            | "key-status",
            _,
        ) => Err(ApiError::MethodNotAllowed),
        _ => {
            if app.store.is_sealed() {
                Err(ApiError::Sealed)
            } else {
                Err(ApiError::UnsupportedPath(format!(
                    "no handler for route \"sys/{path}\""
                )))
            }
        }
    }
}

async fn health(app: &SharedApp, req: &Req) -> Result<Reply, ApiError> {
    let initialized = app.store.is_initialized().await?;
    let sealed = app.store.is_sealed();
    let code = |name: &str, default: u16| -> Result<u16, ApiError> {
        match req.query.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<u16>()
                .ok()
                .filter(|c| (100..=999).contains(c))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!("bad code for {name}: not an HTTP status"))
                }),
        }
    };
    let status = if !initialized {
        code("uninitcode", 501)?
    } else if sealed {
        code("sealedcode", 503)?
    } else {
        code("activecode", 200)?
    };
    let status =
        StatusCode::from_u16(status).map_err(|_| ApiError::BadRequest("bad status code".into()))?;
    let body = Health {
        initialized,
        performance_standby: false,
        replication_dr_mode: "disabled",
        replication_performance_mode: "disabled",
        sealed,
        server_time_utc: crate::clock::unix_now(),
        standby: false,
        version: VERSION,
    };
    let body =
        serde_json::to_vec(&body).map_err(|e| ApiError::Internal(format!("health body: {e}")))?;
    Ok(Reply::Json(status, body))
}

/// `sys/health`'s body (fields sorted, as Vault's JSON has them).
#[derive(serde::Serialize)]
struct Health {
    initialized: bool,
    performance_standby: bool,
    replication_dr_mode: &'static str,
    replication_performance_mode: &'static str,
    sealed: bool,
    server_time_utc: u64,
    standby: bool,
    version: &'static str,
}

async fn seal_status(app: &SharedApp) -> Result<Value, ApiError> {
    let initialized = app.store.is_initialized().await?;
    let n = u8::from(initialized);
    Ok(json!({
        "type": "shamir", "initialized": initialized, "sealed": app.store.is_sealed(),
        "t": n, "n": n, "progress": 0, "nonce": "", "version": VERSION,
        "build_date": "", "migration": false, "recovery_seal": false, "storage_type": "sled",
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InitRequest {
    #[serde(default)]
    secret_shares: Option<u32>,
    #[serde(default)]
    secret_threshold: Option<u32>,
    /// Optional operator passphrase for a second key slot.
    #[serde(default)]
    passphrase: Option<Zeroizing<String>>,
    #[serde(default)]
    pgp_keys: Option<Value>,
    #[serde(default)]
    root_token_pgp_key: Option<Value>,
}

async fn init(app: &SharedApp, req: &Req) -> Result<Reply, ApiError> {
    let body: InitRequest = req.json()?;
    if body.secret_shares.unwrap_or(1) != 1 || body.secret_threshold.unwrap_or(1) != 1 {
        return Err(ApiError::BadRequest(
            "vaultd uses a single unseal key: set secret_shares=1 and secret_threshold=1 \
             (vault operator init -key-shares=1 -key-threshold=1)"
                .into(),
        ));
    }
    if body.pgp_keys.is_some() || body.root_token_pgp_key.is_some() {
        return Err(ApiError::BadRequest(
            "PGP-encrypted keys are not supported".into(),
        ));
    }
    if body.passphrase.as_ref().is_some_and(|p| p.len() < 12) {
        return Err(ApiError::BadRequest(
            "passphrase must be at least 12 characters".into(),
        ));
    }
    // A passphrase slot runs Argon2id: under the same one-at-a-time bound as unseal.
    let passphrase = body.passphrase;
    let app_for_init = app.clone();
    let runtime = tokio::runtime::Handle::current();
    let (output, root_token) = KDF_GATE
        .run(move || {
            runtime.block_on(crate::bootstrap::initialize(
                &app_for_init,
                passphrase.as_ref().map(|p| p.as_bytes()),
                None,
            ))
        })
        .await??
        .ok_or_else(|| ApiError::BadRequest("Vault is already initialized".into()))?;
    let key = output.unseal_key.expose();
    let hex = crate::crypto::hex(key);
    Ok(Reply::Raw(
        StatusCode::OK,
        json!({"keys": [hex], "keys_base64": [B64.encode(key)], "root_token": root_token.expose()}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnsealRequest {
    #[serde(default)]
    key: Option<Zeroizing<String>>,
    #[serde(default)]
    passphrase: Option<Zeroizing<String>>,
    #[serde(default)]
    reset: bool,
    #[serde(default)]
    migrate: bool,
}

/// Accepts the unseal key as hex or base64, as Vault does.
pub fn parse_unseal_key(text: &str) -> Option<SecretKey> {
    let text = text.trim();
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        let bytes: Zeroizing<Vec<u8>> = Zeroizing::new(
            (0..32)
                .filter_map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
                .collect(),
        );
        return SecretKey::from_slice(&bytes);
    }
    let bytes = Zeroizing::new(B64.decode(text).ok()?);
    SecretKey::from_slice(&bytes)
}

async fn unseal(
    app: &SharedApp,
    req: &Req,
    ctx_client: Option<std::net::SocketAddr>,
) -> Result<Reply, ApiError> {
    let body: UnsealRequest = req.json()?;
    let _ = body.migrate;
    if !app.store.is_initialized().await? {
        return Err(ApiError::NotInitialized);
    }
    let credential = match (&body.key, &body.passphrase) {
        (Some(key), None) => UnsealCredential::Key(parse_unseal_key(key).ok_or_else(|| {
            ApiError::BadRequest("'key' must be a 32-byte key in hex or base64".into())
        })?),
        (None, Some(p)) => UnsealCredential::Passphrase(Zeroizing::new(p.as_bytes().to_vec())),
        (None, None) if body.reset => {
            return Ok(Reply::Raw(StatusCode::OK, seal_status(app).await?));
        }
        (None, None) => {
            return Err(ApiError::BadRequest(
                "missing required 'key' parameter".into(),
            ));
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "give either 'key' or 'passphrase', not both".into(),
            ));
        }
    };
    if let Some(client) = ctx_client
        && !app.login_limiter.allow(client.ip())
    {
        return Err(ApiError::RateLimited);
    }
    let store = app.store.clone();
    // The store is async; the Argon2id inside runs on the gate's blocking thread, which
    // drives the whole unseal to completion even if this request goes away.
    let runtime = tokio::runtime::Handle::current();
    let result = KDF_GATE
        .run(move || runtime.block_on(store.unseal(credential)))
        .await?;
    match result {
        Ok(()) => {
            tracing::info!("unsealed");
            Ok(Reply::Raw(StatusCode::OK, seal_status(app).await?))
        }
        Err(e) => {
            if matches!(e, UnsealError::WrongKey) {
                tracing::warn!("unseal attempt with an incorrect key");
            }
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KdfParams;
    use crate::state::{App, Limits};
    use crate::store::memory::MemoryBackend;
    use crate::store::sealed::SealedStore;
    use axum::body::Body;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};
    use tower::ServiceExt;

    fn unseal_request(passphrase: &str) -> axum::http::Request<Body> {
        axum::http::Request::builder()
            .method("PUT")
            .uri("/v1/sys/unseal")
            .body(Body::from(json!({ "passphrase": passphrase }).to_string()))
            .expect("request")
    }

    /// Clients that give up while Argon2id runs must not let the next derivation start beside
    /// the one still running: the permit lasts as long as the derivation, not the request.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn abandoned_passphrase_unseals_never_overlap_derivations() {
        let store = SealedStore::new(Arc::new(MemoryBackend::new()));
        // Cheap enough for a debug build, slow enough to time out on.
        let params = KdfParams {
            m_cost_kib: 8 * 1024,
            t_cost: 1,
            p_cost: 1,
        };
        store
            .initialize(Some((b"the right operator passphrase", params)), |_, _| {
                Ok(vec![])
            })
            .await
            .expect("init")
            .expect("init lands");
        let started = Instant::now();
        crate::crypto::derive_from_passphrase(b"x", &[0; 16], params).expect("derive");
        let derivation = started.elapsed();
        let client_timeout = derivation / 4;
        let app = Arc::new(App::new(
            store,
            crate::audit::AuditLog::disabled(),
            Limits::default(),
            false,
        ));
        let router = crate::http::router(app);
        let mut clients = Vec::new();
        for _ in 0..4 {
            let router = router.clone();
            clients.push(tokio::spawn(async move {
                let request = router.oneshot(unseal_request("a wrong operator passphrase"));
                tokio::time::timeout(client_timeout, request).await.is_err()
            }));
        }
        for client in clients {
            assert!(
                client.await.expect("client"),
                "the client should have given up"
            );
        }
        // Let every derivation started so far finish.
        let deadline = Instant::now() + derivation * 20 + Duration::from_secs(5);
        while KDF_GATE.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(KDF_GATE.in_flight.load(Ordering::SeqCst), 0);
        assert_eq!(
            KDF_GATE.peak.load(Ordering::SeqCst),
            1,
            "Argon2id derivations overlapped"
        );
        // The bound did not wedge anything: the right passphrase still unseals.
        let response = router
            .oneshot(unseal_request("the right operator passphrase"))
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::OK);
    }
}
