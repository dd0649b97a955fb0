//! Pipeline identity: verifying CI OIDC ID tokens.
//!
//! - [`jwt_crypto`]: the ring-backed crypto provider for `jsonwebtoken`.
//! - [`jwks`]: issuer key sets: discovery, caching, bounded refresh.
//! - [`verify`]: the two-phase JWT check every login goes through; `strict_json` refuses
//!   duplicate member names in its header and payload.
//! - [`dev_issuer`]: the `vaultd dev` OIDC issuer.

pub mod dev_issuer;
pub mod jwks;
pub mod jwt_crypto;
mod strict_json;
pub mod verify;
