//! The authorisation seam: "may a token with these policies perform this capability on this
//! path?". Handlers ask only this; the policy engine behind it is swappable.

use std::sync::Arc;

/// Vault's capabilities, as requested by one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    Create,
    Read,
    Update,
    Delete,
    List,
    Sudo,
}

pub trait Authorizer: Send + Sync + 'static {
    fn allows(&self, policies: &[String], path: &str, capability: Capability) -> bool;
}

/// Paths every token may use on itself, as Vault's built-in `default` policy grants.
pub fn default_policy_allows(path: &str, capability: Capability) -> bool {
    match path {
        "auth/token/lookup-self" => matches!(capability, Capability::Read | Capability::Update),
        "auth/token/renew-self" | "auth/token/revoke-self" => capability == Capability::Update,
        _ => false,
    }
}

/// `root` may do everything, `default` covers the self-service token paths, everything else
/// is denied until a policy engine grants it.
#[derive(Debug, Default)]
pub struct BuiltinOnly;

impl Authorizer for BuiltinOnly {
    fn allows(&self, policies: &[String], path: &str, capability: Capability) -> bool {
        policies.iter().any(|p| p == "root")
            || (policies.iter().any(|p| p == "default") && default_policy_allows(path, capability))
    }
}

pub type SharedAuthorizer = Arc<dyn Authorizer>;
