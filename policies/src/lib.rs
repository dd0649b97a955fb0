//! Policy-as-code for vaultctl: the issuers, roles and path policies that decide which CI
//! pipelines may log in and what their short-lived tokens may touch.
//!
//! Pure logic, no I/O: the server, the CLI (`vaultctl policy check`/`test`) and the tests all
//! call the same functions on text and JSON they already hold.
//!
//! How the modules fit:
//!
//! - [`document`]: the [`Document`] (`[issuers.*]`, `[roles.*]`, `[policies.*]`), parsing TOML
//!   with [`parse_document`], [`Document::merge`] and [`Document::validate`];
//! - [`issuer`], [`role`], [`policy`]: the three kinds of entries and their own checks;
//! - [`claims`]: claim matchers and [`match_claims`], which the server runs at login after it
//!   has verified the token;
//! - [`paths`] and [`capability`]: path patterns and the [`Acl`] the server consults on every
//!   request;
//! - [`lint`]: warnings about legal but risky documents; [`explain`](mod@explain): what
//!   `vaultctl policy test` prints;
//! - [`duration`] and [`error`]: human durations and the crate's [`PolicyError`].
//!
//! The reference for document authors is `docs/policies.md`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod capability;
pub mod claims;
pub mod document;
pub mod duration;
pub mod error;
pub mod explain;
pub mod issuer;
pub mod lint;
pub mod paths;
pub mod policy;
pub mod role;

pub use capability::{Capability, CapabilitySet};
pub use claims::{ClaimError, ClaimMatcher, ClaimValue, check_bindings, match_claims};
pub use document::{Document, parse_document};
pub use duration::HumanDuration;
pub use error::PolicyError;
pub use explain::{Check, Explanation, GrantedRule, explain, time_checks};
pub use issuer::{Algorithm, Issuer, KeySource};
pub use lint::{LintCode, Warning, lint};
pub use paths::{Acl, PathPattern, TemplateContext, TemplateMiss};
pub use policy::{Policy, Rule};
pub use role::Role;
