//! Initialisation: key material plus the root token, written in one atomic batch.

use crate::crypto::KdfParams;
use crate::state::App;
use crate::store::sealed::{InitOutput, SealedStore};
use crate::store::{StoreError, Write};
use crate::tokens::{NewToken, Token, TokenStore};

/// Initialises the store and creates the root token (`fixed_root_token` in dev mode only).
/// Returns `None` when already initialised. A passphrase slot runs Argon2id on the calling
/// thread: run it off the async workers.
pub(crate) async fn initialize(
    app: &App,
    passphrase: Option<&[u8]>,
    fixed_root_token: Option<String>,
) -> Result<Option<(InitOutput, Token)>, StoreError> {
    let mut root_token = None;
    let passphrase = passphrase.map(|p| (p, KdfParams::default()));
    let output = app
        .store
        .initialize(passphrase, |_, keyring| {
            let (issued, writes) =
                TokenStore::prepare(keyring, root_token_params(), fixed_root_token, None)?;
            root_token = Some(issued.token);
            writes
                .into_iter()
                .map(|(tree, key, value)| {
                    let value = value
                        .map(|v| SealedStore::encrypt_record(keyring, tree, &key, &v))
                        .transpose()?;
                    Ok(Write { tree, key, value })
                })
                .collect()
        })
        .await?;
    match (output, root_token) {
        (Some(output), Some(token)) => Ok(Some((output, token))),
        _ => Ok(None),
    }
}

pub(crate) fn root_token_params() -> NewToken {
    NewToken {
        policies: vec!["root".into()],
        display_name: "root".into(),
        path: "auth/token/root".into(),
        ..Default::default()
    }
}
