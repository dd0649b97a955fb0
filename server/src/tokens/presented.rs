//! Tokens as clients present them: parsed once, at the edge, into a [`PresentedToken`] that
//! every lookup, renew, revoke and use-spend path takes. Parsing checks only the shape (length,
//! printable ASCII, and for our own `vcs_` prefix the checksum), so typos and truncations are
//! refused before any store access or HMAC. Whether the token exists is the store's question.

use super::{BODY_LEN, CHECKSUM_LEN, TOKEN_PREFIX, checksum};
use crate::crypto;
use std::str::FromStr;
use zeroize::Zeroizing;

/// Longest token accepted from a client. Minted tokens are 53 bytes; an operator-chosen dev
/// root token may be longer.
pub(crate) const MAX_PRESENTED_LEN: usize = 512;

/// Why a presented token was refused before any lookup. Never includes the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PresentedTokenError {
    #[error("token is empty")]
    Empty,
    #[error("token is longer than {MAX_PRESENTED_LEN} bytes")]
    TooLong,
    #[error("token contains characters that are not printable ASCII")]
    NotPrintable,
    #[error("token has the vcs_ prefix but not the length of a vaultd token")]
    WrongLength,
    #[error("token checksum does not match (mistyped or truncated token)")]
    BadChecksum,
}

/// A token a client sent, well formed. `Debug` is redacted; zeroized on drop.
pub struct PresentedToken(Zeroizing<String>);

impl PresentedToken {
    /// The token in clear, for HMAC lookup and for echoing it back to its own holder.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for PresentedToken {
    type Err = PresentedTokenError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() {
            return Err(PresentedTokenError::Empty);
        }
        if text.len() > MAX_PRESENTED_LEN {
            return Err(PresentedTokenError::TooLong);
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(PresentedTokenError::NotPrintable);
        }
        // Anything shaped like a minted token must carry a valid checksum. Other shapes can
        // only be an operator-chosen dev root token (`vaultd dev --root-token`); they are
        // looked up like any other and are simply not found elsewhere.
        if let Some(rest) = text.strip_prefix(TOKEN_PREFIX) {
            if rest.len() != BODY_LEN + CHECKSUM_LEN {
                return Err(PresentedTokenError::WrongLength);
            }
            let (body, sum) = rest.split_at(BODY_LEN);
            if !crypto::constant_time_eq(checksum(TOKEN_PREFIX, body).as_bytes(), sum.as_bytes()) {
                return Err(PresentedTokenError::BadChecksum);
            }
        }
        Ok(Self(Zeroizing::new(text.to_owned())))
    }
}

impl std::fmt::Debug for PresentedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PresentedToken([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_parse_and_damaged_ones_do_not() {
        let minted = super::super::mint(TOKEN_PREFIX).expect("mint");
        assert!(minted.parse::<PresentedToken>().is_ok());
        let mut flipped = minted.clone().into_bytes();
        flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        assert_eq!(
            flipped.parse::<PresentedToken>().err(),
            Some(PresentedTokenError::BadChecksum)
        );
        assert_eq!(
            minted[..minted.len() - 1].parse::<PresentedToken>().err(),
            Some(PresentedTokenError::WrongLength)
        );
        assert_eq!(
            "".parse::<PresentedToken>().err(),
            Some(PresentedTokenError::Empty)
        );
        assert_eq!(
            "a".repeat(513).parse::<PresentedToken>().err(),
            Some(PresentedTokenError::TooLong)
        );
        assert_eq!(
            "tok en".parse::<PresentedToken>().err(),
            Some(PresentedTokenError::NotPrintable)
        );
        // A dev root token of the operator's choosing.
        assert!("dev-root".parse::<PresentedToken>().is_ok());
    }

    #[test]
    fn debug_and_errors_never_show_the_token() {
        let minted = super::super::mint(TOKEN_PREFIX).expect("mint");
        let token: PresentedToken = minted.parse().expect("parses");
        assert_eq!(format!("{token:?}"), "PresentedToken([REDACTED])");
        let mut bad = minted.clone();
        bad.push('x');
        let err = bad
            .parse::<PresentedToken>()
            .expect_err("too long for vcs_");
        assert!(!err.to_string().contains(&minted[4..]));
    }
}
