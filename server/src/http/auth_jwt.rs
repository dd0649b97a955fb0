//! `POST auth/jwt/login {role, jwt}`: parse, call `crate::login`, reply. The flow itself,
//! its phases and its refusals live in the login module.

use super::reply::Reply;
use super::token::AuthBlock;
use super::{Ctx, Op, Req};
use crate::error::ApiError;
use crate::login::{self, LoginError, LoginTrace};
use crate::state::SharedApp;
use serde::Deserialize;
use serde_json::Value;
use zeroize::Zeroizing;

#[derive(Deserialize)]
struct LoginBody {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    jwt: Option<Zeroizing<String>>,
}

pub async fn handle(
    app: &SharedApp,
    ctx: &mut Ctx,
    req: &Req,
    path: &str,
) -> Result<Reply, ApiError> {
    if path != "login" {
        return Err(ApiError::UnsupportedPath(format!(
            "no handler for route \"auth/jwt/{path}\""
        )));
    }
    if req.op != Op::Write {
        return Err(ApiError::MethodNotAllowed);
    }
    let mut trace = LoginTrace::default();
    let result = match req.json::<LoginBody>() {
        Ok(body) => {
            let jwt = body.jwt.unwrap_or_default();
            let role = body.role.unwrap_or_default();
            let client = ctx.client.map(|c| c.ip());
            login::login(app, client, &role, &jwt, &mut trace).await
        }
        Err(e) => {
            record(app, ctx, &trace, Some("bad_request"));
            return Err(e);
        }
    };
    match result {
        Ok(logged_in) => {
            record(app, ctx, &trace, None);
            let issued = logged_in.issued;
            let record = std::sync::Arc::new(issued.record);
            ctx.token_record = Some(record.clone());
            Ok(Reply::Auth(AuthBlock::new(record, Some(issued.token))))
        }
        Err(LoginError::Denied(denied)) => {
            record(app, ctx, &trace, Some(denied.code));
            ctx.audit_detail = Some(denied.detail.clone());
            Err(denied.into())
        }
        Err(other) => {
            record(app, ctx, &trace, Some("internal"));
            Err(other.into())
        }
    }
}

/// The audit fields and metrics of one login attempt. `denial`: the refusal's code.
fn record(app: &SharedApp, ctx: &mut Ctx, trace: &LoginTrace, denial: Option<&'static str>) {
    if let Some(role) = &trace.role {
        ctx.audit_extra
            .insert("role".into(), Value::String(role.clone()));
    }
    if let Some(issuer) = &trace.issuer {
        ctx.audit_extra
            .insert("issuer".into(), Value::String(issuer.clone()));
    }
    if let Some(claims) = &trace.claims {
        ctx.audit_extra
            .insert("claims".into(), serde_json::json!(claims));
    }
    ctx.denial_code = denial;
    // Roles that exist label themselves; anything a client made up counts as "unknown".
    let role = match (&trace.issuer, &trace.role) {
        (Some(_), Some(role)) => role.clone(),
        _ => "unknown".to_owned(),
    };
    let outcome = if denial.is_none() {
        "success"
    } else {
        "denied"
    };
    app.metrics
        .logins
        .get_or_create(&crate::metrics::LoginLabels { role, outcome })
        .inc();
    if let Some(reason) = denial {
        app.metrics
            .login_denials
            .get_or_create(&crate::metrics::ReasonLabels { reason })
            .inc();
    }
}
