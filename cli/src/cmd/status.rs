//! `vaultctl status`: `GET /v1/sys/seal-status`.

use serde_json::Value;

use crate::client::{Auth, ClientError};
use crate::cmd::{Ctx, Outcome, data_of};
use crate::error::{Doing, Error};

/// Prints the seal status; [`Outcome::Sealed`] (exit 2) when vaultd is sealed.
pub fn run(ctx: &mut Ctx<'_>) -> Result<Outcome, Error> {
    let action = "reading the seal status";
    let reply = ctx
        .client
        .get("sys/seal-status", Auth::None)
        .doing(action)?;
    let body = ctx.body(reply, action)?;
    let status = data_of(&body);
    let Some(sealed) = status.get("sealed").and_then(Value::as_bool) else {
        return Err(Error::Request {
            action: action.to_owned(),
            source: ClientError::BadResponse {
                addr: ctx.client.addr().to_owned(),
                reason: "no \"sealed\" field".to_owned(),
            },
        });
    };
    ctx.show(status, |table| {
        table.object(status, &["initialized", "sealed", "version"]);
    })?;
    Ok(if sealed {
        Outcome::Sealed
    } else {
        Outcome::Done
    })
}
