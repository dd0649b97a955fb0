//! Response building with Vault's wire rules: `Content-Type: application/json` exactly,
//! `Cache-Control: no-store` on every response (but public OIDC documents), 204 with no body when there is nothing to say,
//! and the success envelope.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// A response with a body of the given type; every response is `Cache-Control: no-store`.
fn body_response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Body>,
) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    body_response(status, "application/json", bytes)
}

pub fn no_content() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// What a handler hands back: turned into a response by [`Reply::into_response`].
#[derive(Debug)]
pub enum Reply {
    /// 200 with the envelope around `data`.
    Data(Value),
    /// 200 with the envelope around an `auth` block.
    Auth(super::token::AuthBlock),
    /// 200 with the envelope's lease fields set (minted credentials, lease renewals).
    Leased {
        lease_id: String,
        lease_duration: u64,
        data: Value,
    },
    /// A body sent as-is (sys endpoints are not enveloped).
    Raw(StatusCode, Value),
    /// A JSON body already serialized (from a struct, without a `Value` tree).
    Json(StatusCode, Vec<u8>),
    /// 200 with a public, briefly cacheable body (OIDC discovery and keys).
    Public(Value),
    /// 200 with the envelope around a KV version: `data` is the stored JSON, sent as it is
    /// (checked when read, never parsed into a tree and written out again).
    Secret {
        data: crate::kv::SecretJson,
        metadata: crate::kv::VersionInfo,
    },
    /// 404 carrying a full envelope (a deleted or destroyed KV version).
    GoneEnvelope(Value),
    NoContent,
    /// 200 with a plain-text body (Prometheus exposition).
    Text(String),
}

/// Vault's success envelope, serialized straight from its parts (fields in the order a JSON
/// object of them would have: sorted).
#[derive(Serialize)]
struct Envelope<'a, D: Serialize, A: Serialize> {
    auth: A,
    data: D,
    lease_duration: u64,
    lease_id: &'a str,
    renewable: bool,
    request_id: &'a str,
    warnings: Option<()>,
    wrap_info: Option<()>,
}

impl<'a, D: Serialize, A: Serialize> Envelope<'a, D, A> {
    fn new(request_id: &'a str, data: D, auth: A) -> Self {
        Envelope {
            auth,
            data,
            lease_duration: 0,
            lease_id: "",
            renewable: false,
            request_id,
            warnings: None,
            wrap_info: None,
        }
    }

    fn respond(&self, status: StatusCode) -> Response {
        let bytes = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        body_response(status, "application/json", bytes)
    }
}

/// A KV version's `data` and `metadata`.
#[derive(Serialize)]
struct SecretData<'a> {
    data: &'a RawValue,
    metadata: &'a crate::kv::VersionInfo,
}

/// The stored JSON of a KV version as a raw value; `None` if it is not JSON.
fn raw_json(bytes: &[u8]) -> Option<&RawValue> {
    serde_json::from_slice(bytes).ok()
}

impl Reply {
    pub fn status(&self) -> StatusCode {
        match self {
            Reply::Data(_) | Reply::Auth(_) | Reply::Leased { .. } | Reply::Secret { .. } => {
                StatusCode::OK
            }
            Reply::Raw(status, _) | Reply::Json(status, _) => *status,
            Reply::Public(_) => StatusCode::OK,
            Reply::GoneEnvelope(_) => StatusCode::NOT_FOUND,
            Reply::NoContent => StatusCode::NO_CONTENT,
            Reply::Text(_) => StatusCode::OK,
        }
    }

    pub fn into_response(self, request_id: &str) -> Response {
        match self {
            Reply::Data(data) => Envelope::new(request_id, data, ()).respond(StatusCode::OK),
            Reply::Auth(auth) => Envelope::new(request_id, (), auth).respond(StatusCode::OK),
            Reply::Leased {
                lease_id,
                lease_duration,
                data,
            } => Envelope {
                lease_id: &lease_id,
                lease_duration,
                renewable: true,
                ..Envelope::new(request_id, data, ())
            }
            .respond(StatusCode::OK),
            Reply::Secret { data, metadata } => match raw_json(data.expose()) {
                Some(data) => Envelope::new(
                    request_id,
                    SecretData {
                        data,
                        metadata: &metadata,
                    },
                    (),
                )
                .respond(StatusCode::OK),
                None => json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &json!({"errors": ["stored secret is not JSON"]}),
                ),
            },
            Reply::Raw(status, body) => json_response(status, &body),
            Reply::Json(status, body) => body_response(status, "application/json", body),
            Reply::Public(body) => {
                let mut response = json_response(StatusCode::OK, &body);
                let cache = format!("public, max-age={}", crate::identity::PUBLIC_MAX_AGE);
                if let Ok(value) = HeaderValue::from_str(&cache) {
                    response.headers_mut().insert(header::CACHE_CONTROL, value);
                }
                response
            }
            Reply::GoneEnvelope(data) => {
                Envelope::new(request_id, data, ()).respond(StatusCode::NOT_FOUND)
            }
            Reply::NoContent => no_content(),
            Reply::Text(text) => body_response(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                text,
            ),
        }
    }
}
