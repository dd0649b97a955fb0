//! The HTTP front: one dispatcher for everything under `/v1/`, mirroring how Vault routes by
//! path prefix. Handlers are thin: they parse, authorise through `crate::authz`, call the
//! engine and hand back a [`reply::Reply`]. Every request ends in `dispatch`, which writes the
//! audit line and turns errors into responses in one place.

pub mod admin;
pub mod auth_jwt;
pub mod database;
pub mod identity;
pub mod kv;
pub mod reply;
pub mod sys;
pub mod token;

use crate::authz::Capability;
use crate::error::ApiError;
use crate::state::SharedApp;
use crate::tokens::{PresentedToken, PresentedTokenError, TokenRecord};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, header};
use axum::response::Response;
use reply::Reply;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// The peer address of a connection, for [`router`]: attach it to a request's extensions (the
/// accept loop passes it to [`serve`] directly).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// A connection's peer: its address, and its IP as the audit log writes it, formatted once per
/// connection rather than per request.
#[derive(Debug, Clone)]
pub struct Peer {
    addr: SocketAddr,
    ip: Box<str>,
}

impl Peer {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            ip: addr.ip().to_string().into(),
        }
    }
}

/// The operation a request asks for, after Vault's method rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Read,
    Head,
    List,
    Write,
    Delete,
}

/// A parsed request.
#[derive(Debug)]
pub struct Req {
    pub op: Op,
    /// Path after `/v1/`, percent-decoded, without a trailing `/` (see `trailing_slash`).
    pub path: String,
    /// Whether the request path ended in `/`. Routing ignores it; the ACL and the KV engine
    /// do not (a list is checked on `folder/`, and `data/x/` is not `data/x`).
    pub trailing_slash: bool,
    pub query: HashMap<String, String>,
    pub body: Bytes,
    /// The token from `X-Vault-Token` or `Authorization: Bearer`, parsed once; a malformed
    /// one is kept as its error so the request fails as `invalid token`, never anonymous.
    pub token: Option<Result<PresentedToken, PresentedTokenError>>,
}

impl Req {
    /// The JSON body; an empty body reads as `{}`. Errors never echo the input.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let body: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &self.body
        };
        serde_json::from_slice(body).map_err(|e| {
            let what = match e.classify() {
                serde_json::error::Category::Data => "a field has the wrong type or is unknown",
                serde_json::error::Category::Eof => "unexpected end of input",
                _ => "malformed JSON",
            };
            ApiError::BadRequest(format!(
                "failed to parse JSON input: {what} (line {}, column {})",
                e.line(),
                e.column()
            ))
        })
    }
}

/// Per-request facts the audit line needs, filled in by the handlers.
#[derive(Debug, Default)]
pub struct Ctx {
    pub request_id: String,
    pub client: Option<SocketAddr>,
    pub token_record: Option<Arc<TokenRecord>>,
    /// Why a request was refused, in full, for the audit log only.
    pub audit_detail: Option<String>,
    /// Why a login was refused, as a bounded metrics label.
    pub denial_code: Option<&'static str>,
    /// Extra audit fields (role, issuer, selected claims).
    pub audit_extra: serde_json::Map<String, serde_json::Value>,
    /// The request's audit line, when it is held back to go out with the response line.
    request_line: RequestLine,
}

/// Where a request's audit line stands.
#[derive(Debug, Default)]
enum RequestLine {
    /// Written, or nothing to write (an unaudited request).
    #[default]
    Done,
    /// Held back: a read that changes nothing writes it together with its response line, in
    /// one append, once the answer is ready and before it is sent (see [`serve`]).
    Held(Vec<u8>),
    /// Being written by a task of its own, so that a request whose handler times out while the
    /// line waits still learns, in [`serve`], whether it was written.
    Writing(tokio::task::JoinHandle<std::io::Result<()>>),
    /// Writing it failed: the request fails, and no response line follows.
    Failed,
}

impl Ctx {
    /// Writes a held-back request line now; called before a read changes anything after all
    /// (a limited-use token's use is spent), so the line is in the file before the change, as
    /// for every other request.
    async fn write_request_line(&mut self, app: &SharedApp) -> Result<(), ApiError> {
        match std::mem::take(&mut self.request_line) {
            RequestLine::Done => return Ok(()),
            RequestLine::Failed => {
                self.request_line = RequestLine::Failed;
                return Err(ApiError::Internal(AUDIT_UNAVAILABLE.into()));
            }
            RequestLine::Held(line) => {
                let audit = app.audit.clone();
                self.request_line =
                    RequestLine::Writing(tokio::spawn(
                        async move { audit.append_lines(line).await },
                    ));
            }
            writing @ RequestLine::Writing(_) => self.request_line = writing,
        }
        // If this wait is cut short (the request timed out), the task stays in `self` for
        // `serve` to wait for.
        let outcome = match &mut self.request_line {
            RequestLine::Writing(task) => task.await,
            _ => return Ok(()),
        };
        let error = match outcome {
            Ok(Ok(())) => {
                self.request_line = RequestLine::Done;
                return Ok(());
            }
            Ok(Err(e)) => e,
            Err(e) => std::io::Error::other(e.to_string()),
        };
        self.request_line = RequestLine::Failed;
        Err(audit_write_failed(app, &error))
    }
}

const AUDIT_UNAVAILABLE: &str = "audit log unavailable";

/// Counts and logs an audit line that could not be written; the request fails with this error.
fn audit_write_failed(app: &SharedApp, e: &std::io::Error) -> ApiError {
    app.metrics.audit_write_failures.inc();
    tracing::error!(error = %e, "audit log write failed; refusing request");
    ApiError::Internal(AUDIT_UNAVAILABLE.into())
}

/// Requests whose request line may wait for the response line: reads of the KV engine (a
/// secret, its metadata, a list), whose handlers change nothing but a limited-use token's count
/// (which writes the line first, [`Ctx::write_request_line`]), in-memory caches, and the
/// removal of an expired token that already reads as absent. Nothing they do is seen outside
/// the process before their response, and the response waits for both lines; a crash in
/// between loses the line of a read that released nothing.
fn reads_only(method: &Method, audit_path: &str) -> bool {
    (*method == Method::GET || method.as_str() == "LIST") && audit_path.starts_with("secret/")
}

pub fn router(app: SharedApp) -> Router {
    Router::new().fallback(dispatch).with_state(app)
}

/// A request id shaped like a UUID, unique within the process and, through a random
/// per-process key, across replicas and restarts: a bijective mix of a counter, so no two
/// requests share one, and no system call per request (ids are for correlating log lines, not
/// secrets).
fn new_request_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static KEY: OnceLock<(u64, u64)> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let (k1, k2) = *KEY.get_or_init(|| {
        let b = crate::crypto::random_bytes::<16>().unwrap_or_default();
        let (a, c) = b.split_at(8);
        (
            u64::from_le_bytes(a.try_into().unwrap_or_default()),
            u64::from_le_bytes(c.try_into().unwrap_or_default()),
        )
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // splitmix64's finaliser: a bijection of u64, so distinct counters give distinct ids.
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let hi = mix(n ^ k1);
    let lo = mix(hi ^ k2);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&hi.to_be_bytes());
    bytes[8..].copy_from_slice(&lo.to_be_bytes());
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(36);
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            id.push('-');
        }
        id.push(char::from(DIGITS[usize::from(byte >> 4)]));
        id.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    id
}

/// The audit line written before a request is served (serialized straight from borrows).
#[derive(serde::Serialize)]
struct AuditRequest<'a> {
    time: String,
    #[serde(rename = "type")]
    kind: &'static str,
    request_id: &'a str,
    remote_address: Option<&'a str>,
    method: &'a str,
    path: &'a str,
}

/// The audit line written after: the request's fields, the outcome and who asked.
#[derive(serde::Serialize)]
struct AuditResponse<'a> {
    #[serde(flatten)]
    request: AuditRequest<'a>,
    status: u16,
    error: Option<String>,
    reason: Option<&'a str>,
    accessor: Option<String>,
    policies: Option<&'a [String]>,
    token_role: Option<&'a str>,
    /// Role, issuer, selected claims, policy changes…
    #[serde(flatten)]
    extra: &'a serde_json::Map<String, serde_json::Value>,
}

/// Paths Vault does not audit: unauthenticated status and unseal calls.
fn unaudited(path: &str) -> bool {
    matches!(
        path,
        "sys/health" | "sys/seal-status" | "sys/init" | "sys/unseal" | "sys/leader"
    )
}

/// The router's handler: [`serve`], with the peer address from the request's extensions.
async fn dispatch(State(app): State<SharedApp>, request: Request<Body>) -> Response {
    let peer = request
        .extensions()
        .get::<ClientAddr>()
        .map(|c| Peer::new(c.0));
    serve(&app, peer.as_ref(), request).await
}

/// Answers one request from `client`: the audit lines, the handler under the request timeout,
/// metrics, and the one place errors become responses.
pub async fn serve(app: &SharedApp, peer: Option<&Peer>, request: Request<Body>) -> Response {
    let mut ctx = Ctx {
        request_id: new_request_id(),
        client: peer.map(|p| p.addr),
        ..Default::default()
    };
    let method = request.method().clone();
    let route = crate::metrics::Route::of(request.uri().path());
    let started = std::time::Instant::now();
    let audit_path = {
        let path = request.uri().path();
        let path = path
            .strip_prefix("/v1/")
            .unwrap_or(path)
            .trim_end_matches('/');
        if app.audit.enabled() && !unaudited(path) {
            Some(path.to_owned())
        } else {
            None
        }
    };
    let audited = audit_path.is_some();
    let audit_path = audit_path.unwrap_or_default();
    let remote_address = peer.filter(|_| audited).map(|p| &*p.ip);
    // Fail closed before anything happens: a request that cannot be audited is not served.
    if audited {
        let entry = AuditRequest {
            time: crate::clock::rfc3339_now(),
            kind: "request",
            request_id: &ctx.request_id,
            remote_address,
            method: method.as_str(),
            path: &audit_path,
        };
        let mut line = Vec::with_capacity(2 * crate::audit::LINE_CAPACITY);
        if let Err(e) = crate::audit::push_line(&mut line, &entry) {
            return audit_write_failed(app, &e).into_response();
        }
        if reads_only(&method, &audit_path) {
            ctx.request_line = RequestLine::Held(line);
        } else if let Err(e) = app.audit.append_lines(line).await {
            return audit_write_failed(app, &e).into_response();
        }
    }
    let timeout = app.limits.request_timeout;
    let result = match tokio::time::timeout(timeout, handle(app, &mut ctx, request)).await {
        Ok(result) => result,
        Err(_) => Err(ApiError::Internal("request timed out".into())),
    };
    if audited {
        // A request line whose write the timeout cut short: whether it was written decides.
        if matches!(ctx.request_line, RequestLine::Writing(_))
            && let Err(e) = ctx.write_request_line(app).await
        {
            return e.into_response();
        }
        // A held-back request line goes out first, in the same append as the response line.
        let mut lines = match std::mem::take(&mut ctx.request_line) {
            RequestLine::Done => Vec::with_capacity(crate::audit::LINE_CAPACITY),
            RequestLine::Held(line) => line,
            RequestLine::Failed | RequestLine::Writing(_) => {
                return ApiError::Internal(AUDIT_UNAVAILABLE.into()).into_response();
            }
        };
        let (status, error) = match &result {
            Ok(reply) => (reply.status().as_u16(), None),
            Err(e) => (e.status().as_u16(), Some(e.to_string())),
        };
        let record = ctx.token_record.as_ref();
        let entry = AuditResponse {
            request: AuditRequest {
                time: crate::clock::rfc3339_now(),
                kind: "response",
                request_id: &ctx.request_id,
                remote_address,
                method: method.as_str(),
                path: &audit_path,
            },
            status,
            error,
            reason: ctx.audit_detail.as_deref(),
            accessor: record.and_then(|r| app.tokens.audit_accessor(r)),
            policies: record.map(|r| r.policies.as_slice()),
            token_role: record.and_then(|r| r.role.as_deref()),
            extra: &ctx.audit_extra,
        };
        let written = match crate::audit::push_line(&mut lines, &entry) {
            Ok(()) => app.audit.append_lines(lines).await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            return audit_write_failed(app, &e).into_response();
        }
    }
    app.metrics
        .observe_request(route, started.elapsed().as_secs_f64());
    match result {
        Ok(reply) => reply.into_response(&ctx.request_id),
        Err(e) => e.into_response(),
    }
}

fn token_from_headers(headers: &HeaderMap) -> Option<Result<PresentedToken, PresentedTokenError>> {
    let raw = match headers.get("x-vault-token") {
        Some(v) => v.to_str().ok().unwrap_or("\u{0}"),
        None => {
            let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
            let (scheme, value) = auth.split_once(' ')?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return None;
            }
            value
        }
    };
    Some(raw.trim().parse())
}

fn percent_decode(path: &str) -> Result<String, ApiError> {
    if !path.contains('%') {
        return Ok(path.to_owned());
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| ApiError::BadRequest("invalid percent-encoding in path".into()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ApiError::BadRequest("path is not valid UTF-8".into()))
}

fn parse_query(query: Option<&str>) -> Result<HashMap<String, String>, ApiError> {
    let mut map = HashMap::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        map.insert(percent_decode(k)?, percent_decode(&v.replace('+', " "))?);
    }
    Ok(map)
}

async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest("failed to read request body".into())
        }
    })
}

async fn handle(app: &SharedApp, ctx: &mut Ctx, request: Request<Body>) -> Result<Reply, ApiError> {
    let (parts, body) = request.into_parts();
    if let Some(issuer_path) = parts
        .uri
        .path()
        .strip_prefix(crate::oidc::dev_issuer::PATH_PREFIX)
        && let Some(issuer) = app.dev_issuer.get()
    {
        return match issuer_path {
            "/.well-known/openid-configuration" => {
                Ok(Reply::Raw(axum::http::StatusCode::OK, issuer.discovery()))
            }
            "/jwks" => Ok(Reply::Raw(axum::http::StatusCode::OK, issuer.jwks())),
            _ => Err(ApiError::NotFound),
        };
    }
    let Some(rest) = parts.uri.path().strip_prefix("/v1/") else {
        return Err(ApiError::UnsupportedPath("unsupported path".into()));
    };
    let query = parse_query(parts.uri.query())?;
    // Vault parses `?list=` with Go's `strconv.ParseBool`; an empty value is no flag.
    let list_flag = match query.get("list").map(String::as_str) {
        None | Some("") => false,
        Some("1" | "t" | "T" | "TRUE" | "true" | "True") => true,
        Some("0" | "f" | "F" | "FALSE" | "false" | "False") => false,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "invalid value for \"list\": expected a boolean such as true or false".into(),
            ));
        }
    };
    let op = match parts.method {
        Method::GET if list_flag => Op::List,
        Method::GET => Op::Read,
        Method::HEAD => Op::Head,
        Method::POST | Method::PUT => Op::Write,
        Method::DELETE => Op::Delete,
        ref m if m.as_str() == "LIST" => Op::List,
        _ => return Err(ApiError::MethodNotAllowed),
    };
    let body = read_body(body, &parts.headers, app.limits.max_body_bytes).await?;
    let mut path = percent_decode(rest)?;
    let trailing_slash = path.ends_with('/');
    path.truncate(path.trim_end_matches('/').len());
    let req = Req {
        op,
        path,
        trailing_slash,
        query,
        body,
        token: token_from_headers(&parts.headers),
    };
    let path = req.path.as_str();
    if let Some(lease_path) = path.strip_prefix("sys/leases/") {
        if app.store.is_sealed() {
            return Err(ApiError::Sealed);
        }
        return Box::pin(database::leases(app, ctx, &req, lease_path)).await;
    }
    if let Some(sys_path) = path.strip_prefix("sys/") {
        return sys::handle(app, ctx, &req, sys_path).await;
    }
    if app.store.is_sealed() {
        return Err(ApiError::Sealed);
    }
    if let Some(kv_path) = path.strip_prefix("secret/") {
        return kv::handle(app, ctx, &req, kv_path).await;
    }
    if let Some(jwt_path) = path.strip_prefix("auth/jwt/") {
        return auth_jwt::handle(app, ctx, &req, jwt_path).await;
    }
    if let Some(token_path) = path.strip_prefix("auth/token/") {
        return Box::pin(token::handle(app, ctx, &req, token_path)).await;
    }
    if let Some(database_path) = path.strip_prefix("database/") {
        return Box::pin(database::handle(app, ctx, &req, database_path)).await;
    }
    if let Some(identity_path) = path.strip_prefix("identity/oidc/") {
        return Box::pin(identity::handle(app, ctx, &req, identity_path)).await;
    }
    Err(ApiError::UnsupportedPath(format!(
        "no handler for route \"{path}\""
    )))
}

/// A key, role or connection name from a path (`identity/oidc/key/NAME`, `database/roles/NAME`):
/// 1-128 of `A-Z a-z 0-9 _ - .`.
pub(crate) fn item_name(name: &str) -> Result<&str, ApiError> {
    if crate::identity::valid_name(name) {
        Ok(name)
    } else {
        Err(ApiError::BadRequest(
            "names are 1-128 of A-Z a-z 0-9 _ - .".into(),
        ))
    }
}

/// A LIST answer as Vault gives it: `{"keys": […]}`, or 404 when there is nothing.
pub(crate) fn key_list(keys: Vec<String>) -> Result<Reply, ApiError> {
    if keys.is_empty() {
        return Err(ApiError::NotFound);
    }
    Ok(Reply::Data(serde_json::json!({ "keys": keys })))
}

/// The request's token, once [`authenticate`] has accepted it.
pub fn presented(req: &Req) -> Result<&PresentedToken, ApiError> {
    match &req.token {
        Some(Ok(token)) => Ok(token),
        _ => Err(ApiError::InvalidToken),
    }
}

/// Resolves the request's token; spends a use of limited-use tokens.
pub async fn authenticate(
    app: &SharedApp,
    ctx: &mut Ctx,
    req: &Req,
) -> Result<Arc<TokenRecord>, ApiError> {
    if app.store.is_sealed() {
        return Err(ApiError::Sealed);
    }
    let token = match &req.token {
        Some(Ok(token)) => token,
        Some(Err(e)) => {
            ctx.audit_detail = Some(format!("malformed token: {e}"));
            return Err(ApiError::InvalidToken);
        }
        None => {
            ctx.audit_detail = Some("no token presented".into());
            return Err(ApiError::InvalidToken);
        }
    };
    let record = app.tokens.lookup(token).await?.ok_or_else(|| {
        ctx.audit_detail = Some("token unknown, expired or revoked".into());
        ApiError::InvalidToken
    })?;
    if record.num_uses > 0 {
        // Spending a use is a change: a held-back request line must be in the file first.
        ctx.write_request_line(app).await?;
        if !app.tokens.spend_use(token).await? {
            ctx.audit_detail = Some("token has no uses left".into());
            return Err(ApiError::InvalidToken);
        }
    }
    ctx.token_record = Some(record.clone());
    Ok(record)
}

/// Authenticates and checks one capability on `path`.
pub async fn authorize(
    app: &SharedApp,
    ctx: &mut Ctx,
    req: &Req,
    path: &str,
    capability: Capability,
) -> Result<Arc<TokenRecord>, ApiError> {
    let record = authenticate(app, ctx, req).await?;
    if app.authz.allows(&record, path, capability).await {
        Ok(record)
    } else {
        ctx.audit_detail = Some(format!("no policy grants {capability:?} on {path}"));
        Err(ApiError::PermissionDenied)
    }
}

#[cfg(test)]
mod request_id_tests {
    use super::new_request_id;

    #[test]
    fn request_ids_are_uuid_shaped_and_never_repeat() {
        let ids: std::collections::HashSet<String> =
            (0..50_000).map(|_| new_request_id()).collect();
        assert_eq!(ids.len(), 50_000);
        for id in ids.iter().take(100) {
            let groups: Vec<usize> = id.split('-').map(str::len).collect();
            assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
            assert!(id.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit()));
        }
    }
}

#[cfg(test)]
mod future_size_tests {
    use super::*;
    use crate::state::{App, Limits};
    use crate::store::memory::MemoryBackend;
    use crate::store::sealed::SealedStore;
    use std::sync::Arc;

    fn size<F: std::future::Future>(_: &F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every request's future is moved into place (and boxed, through `router`), and a future
    /// is as large as its largest state: one rarely used route with a big future (the database
    /// engine's is 16 KiB) would make every request copy that much. Such routes are boxed where
    /// `handle` calls them.
    #[tokio::test]
    async fn the_request_future_stays_small() {
        let store = SealedStore::new(Arc::new(MemoryBackend::new()));
        let app: SharedApp = Arc::new(App::new(
            store,
            crate::audit::AuditLog::disabled(),
            Limits::default(),
            false,
        ));
        let request = dispatch(State(app), Request::new(Body::empty()));
        let bytes = size(&request);
        assert!(bytes <= 6 * 1024, "dispatch's future is {bytes} bytes");
    }
}
