//! The authorisation seam: "may a token with these policies perform this capability on this
//! path?". Handlers ask only this; the policy engine behind it is swappable. Capabilities are
//! the policy crate's own, so the engine and the handlers speak one vocabulary.

use std::sync::Arc;

pub use policies::Capability;

#[async_trait::async_trait]
pub trait Authorizer: Send + Sync + 'static {
    /// Whether `token` (its policies, and for templated rules its role and login claims) may
    /// do `capability` on `path`.
    async fn allows(
        &self,
        token: &crate::tokens::TokenRecord,
        path: &str,
        capability: Capability,
    ) -> bool;
}

pub(crate) type SharedAuthorizer = Arc<dyn Authorizer>;
