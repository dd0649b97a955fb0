//! Response building with Vault's wire rules: `Content-Type: application/json` exactly,
//! `Cache-Control: no-store` on every response (but public OIDC documents), 204 with no body when there is nothing to say,
//! and the success envelope.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
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
    Auth(Value),
    /// 200 with the envelope's lease fields set (minted credentials, lease renewals).
    Leased {
        lease_id: String,
        lease_duration: u64,
        data: Value,
    },
    /// A body sent as-is (sys endpoints are not enveloped).
    Raw(StatusCode, Value),
    /// 200 with a public, briefly cacheable body (OIDC discovery and keys).
    Public(Value),
    /// 404 carrying a full envelope (a deleted or destroyed KV version).
    GoneEnvelope(Value),
    NoContent,
    /// 200 with a plain-text body (Prometheus exposition).
    Text(String),
}

fn envelope(request_id: &str, data: Value, auth: Value) -> Value {
    json!({
        "request_id": request_id,
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": data,
        "wrap_info": null,
        "warnings": null,
        "auth": auth,
    })
}

impl Reply {
    pub fn status(&self) -> StatusCode {
        match self {
            Reply::Data(_) | Reply::Auth(_) | Reply::Leased { .. } => StatusCode::OK,
            Reply::Raw(status, _) => *status,
            Reply::Public(_) => StatusCode::OK,
            Reply::GoneEnvelope(_) => StatusCode::NOT_FOUND,
            Reply::NoContent => StatusCode::NO_CONTENT,
            Reply::Text(_) => StatusCode::OK,
        }
    }

    pub fn into_response(self, request_id: &str) -> Response {
        match self {
            Reply::Data(data) => {
                json_response(StatusCode::OK, &envelope(request_id, data, Value::Null))
            }
            Reply::Auth(auth) => {
                json_response(StatusCode::OK, &envelope(request_id, Value::Null, auth))
            }
            Reply::Leased {
                lease_id,
                lease_duration,
                data,
            } => {
                let mut body = envelope(request_id, data, Value::Null);
                body["lease_id"] = json!(lease_id);
                body["lease_duration"] = json!(lease_duration);
                body["renewable"] = json!(true);
                json_response(StatusCode::OK, &body)
            }
            Reply::Raw(status, body) => json_response(status, &body),
            Reply::Public(body) => {
                let mut response = json_response(StatusCode::OK, &body);
                let cache = format!("public, max-age={}", crate::identity::PUBLIC_MAX_AGE);
                if let Ok(value) = HeaderValue::from_str(&cache) {
                    response.headers_mut().insert(header::CACHE_CONTROL, value);
                }
                response
            }
            Reply::GoneEnvelope(data) => json_response(
                StatusCode::NOT_FOUND,
                &envelope(request_id, data, Value::Null),
            ),
            Reply::NoContent => no_content(),
            Reply::Text(text) => body_response(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                text,
            ),
        }
    }
}
