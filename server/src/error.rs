//! The one place where failures become HTTP responses. Clients get Vault's stable messages;
//! the cause (which may name internals, never secrets) goes to the server log and audit line.
//!
//! Which error belongs to which layer:
//! - [`crate::store::StoreError`]: the backend and record encryption (I/O, corrupt or moved
//!   records, sealed); `UnsealError` for the key slots.
//! - [`crate::kv::KvError`], [`crate::policy_store::PolicyStoreError`],
//!   [`crate::login::LoginError`] (with [`crate::login::LoginDenied`]),
//!   [`crate::oidc::verify::VerifyError`], [`crate::tokens::PresentedTokenError`]: the engines
//!   above it, each naming what the client did wrong apart from what failed inside.
//! - [`ApiError`]: the HTTP front. Every engine error converts into it here, by `From`, and
//!   [`ApiError::into_response`] is the only place a status code is chosen.
//! - [`crate::StartError`]: startup (config, data dir, TLS, dev bootstrap), printed once by
//!   `main`; never an HTTP response.

use crate::http::reply::json_response;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A request the client can fix: 400 with this message.
    #[error("{0}")]
    BadRequest(String),
    /// The token lacks a capability: 403 `permission denied`.
    #[error("permission denied")]
    PermissionDenied,
    /// Missing, unknown, expired or revoked token: 403 `permission denied` + `invalid token`.
    #[error("invalid token")]
    InvalidToken,
    /// Nothing there: 404 with an empty error list, as Vault answers a missing item.
    #[error("not found")]
    NotFound,
    /// A path no engine serves: 404 with a message.
    #[error("{0}")]
    UnsupportedPath(String),
    /// 405.
    #[error("unsupported operation")]
    MethodNotAllowed,
    /// Body over the configured limit: 413.
    #[error("request body too large")]
    PayloadTooLarge,
    /// 429.
    #[error("rate limit exceeded")]
    RateLimited,
    /// Not initialised yet: 400 on the calls that need it.
    #[error("Vault is not initialized")]
    NotInitialized,
    /// 503 `Vault is sealed`.
    #[error("Vault is sealed")]
    Sealed,
    /// 503: the storage backend cannot be reached; the cause is logged.
    #[error("storage unavailable: {0}")]
    StorageUnavailable(String),
    /// 503 with a message: something outside vaultd (a configured database) cannot be
    /// reached now; the message says what happens next.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else: 500 `internal error`; the cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::NotInitialized => StatusCode::BAD_REQUEST,
            ApiError::PermissionDenied | ApiError::InvalidToken => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::UnsupportedPath(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Sealed | ApiError::StorageUnavailable(_) | ApiError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message list the client sees.
    pub fn client_messages(&self) -> Vec<String> {
        match self {
            ApiError::NotFound => vec![],
            ApiError::InvalidToken => vec!["permission denied".into(), "invalid token".into()],
            ApiError::Internal(_) => vec!["internal error".into()],
            ApiError::StorageUnavailable(_) => vec!["storage backend unavailable".into()],
            other => vec![other.to_string()],
        }
    }

    pub fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(cause) => tracing::error!(%cause, "request failed"),
            ApiError::StorageUnavailable(cause) => {
                tracing::warn!(%cause, "request failed: storage unavailable")
            }
            _ => {}
        }
        json_response(self.status(), &json!({ "errors": self.client_messages() }))
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Sealed => ApiError::Sealed,
            crate::store::StoreError::Unavailable(cause) => ApiError::StorageUnavailable(cause),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<crate::kv::KvError> for ApiError {
    fn from(e: crate::kv::KvError) -> Self {
        match e {
            crate::kv::KvError::Invalid(msg) => ApiError::BadRequest(msg),
            crate::kv::KvError::NotFound => ApiError::NotFound,
            crate::kv::KvError::Store(s) => s.into(),
        }
    }
}

impl From<crate::login::LoginDenied> for ApiError {
    fn from(denied: crate::login::LoginDenied) -> Self {
        if denied.rate_limited {
            ApiError::RateLimited
        } else {
            ApiError::BadRequest(denied.message)
        }
    }
}

impl From<crate::login::LoginError> for ApiError {
    fn from(e: crate::login::LoginError) -> Self {
        match e {
            crate::login::LoginError::Denied(denied) => denied.into(),
            crate::login::LoginError::Store(store) => store.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<crate::policy_store::PolicyStoreError> for ApiError {
    fn from(e: crate::policy_store::PolicyStoreError) -> Self {
        match e {
            crate::policy_store::PolicyStoreError::Invalid(msg) => ApiError::BadRequest(msg),
            crate::policy_store::PolicyStoreError::Store(s) => s.into(),
        }
    }
}

/// A malformed token in a request body (`auth/token/lookup`, `revoke`, …). A malformed token
/// in the request's headers is `InvalidToken` instead (see `http::authenticate`).
impl From<crate::tokens::PresentedTokenError> for ApiError {
    fn from(e: crate::tokens::PresentedTokenError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<crate::store::sealed::UnsealError> for ApiError {
    fn from(e: crate::store::sealed::UnsealError) -> Self {
        use crate::store::sealed::UnsealError;
        match e {
            UnsealError::WrongKey => {
                ApiError::BadRequest("unseal failed: the key or passphrase is incorrect".into())
            }
            UnsealError::NoPassphraseSlot => ApiError::BadRequest(
                "unseal failed: no passphrase was set at init; use the unseal key".into(),
            ),
            UnsealError::NotInitialized => ApiError::NotInitialized,
            UnsealError::Store(e) => e.into(),
        }
    }
}
