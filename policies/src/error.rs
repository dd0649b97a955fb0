//! The crate's one error type.

use thiserror::Error;

/// Why a policy document (or a part of one) was rejected.
///
/// Every message names the table (`[roles.deploy]`) and, where there is one, the field, so the
/// author of the document can find the line to fix. Documents are written by operators, not by
/// the pipelines that log in, so these messages may quote the offending values.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The text is not valid TOML, or it does not fit the schema: an unknown table or field, a
    /// missing required field, or a value of the wrong type or form. `context` names the entry
    /// (`[roles.deploy]`) when it could be found; `message` is the TOML parser's report with the
    /// line and column.
    #[error("{}{}", context_prefix(.context), .message.trim_end())]
    Parse {
        /// The entry the error is in, such as `[roles.deploy]`, when known.
        context: Option<String>,
        /// The parser's message, with line, column and the offending line.
        message: String,
    },

    /// An issuer, role or policy name cannot be used (empty, too long, odd characters, or the
    /// name of a built-in policy).
    #[error("[{table}.{name:?}]: invalid name: {reason}")]
    InvalidName {
        /// `issuers`, `roles` or `policies`.
        table: &'static str,
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A field holds a value that fits the schema but fails validation.
    #[error("[{table}.{name}] `{field}`: {reason}")]
    InvalidField {
        /// `issuers`, `roles` or `policies`.
        table: &'static str,
        /// The entry's name.
        name: String,
        /// The field, possibly with an index such as `rules[2].capabilities`.
        field: String,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// A path pattern in a policy rule is malformed.
    #[error("invalid path pattern {pattern:?}: {reason}")]
    InvalidPathPattern {
        /// The rejected pattern.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A role does not bind the tokens it accepts to a repository or project, so any pipeline
    /// of the issuer (any repository on GitHub, any project on a GitLab instance) could log in.
    #[error(
        "[roles.{role}]: the role does not bind a repository or project identity, so every \
         pipeline of its issuer could log in; add `repository_id` (GitHub) or `project_id` \
         (GitLab) to `claims`, or an exact `sub` claim, or `bound_subject`"
    )]
    UnboundIdentity {
        /// The role's name.
        role: String,
    },

    /// A role names an issuer that no document defines.
    #[error("[roles.{role}] `issuer`: no issuer named `{issuer}` is defined")]
    UnknownIssuer {
        /// The role's name.
        role: String,
        /// The issuer name it refers to.
        issuer: String,
    },

    /// A role names a policy that no document defines and that is not built in.
    #[error(
        "[roles.{role}] `policies`: no policy named `{policy}` is defined (built-in policies are `default` and `root`)"
    )]
    UnknownPolicy {
        /// The role's name.
        role: String,
        /// The policy name it refers to.
        policy: String,
    },
}

fn context_prefix(context: &Option<String>) -> String {
    match context {
        Some(context) => format!("in {context}: "),
        None => String::new(),
    }
}
