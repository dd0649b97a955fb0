//! KV v2 paths as users type them (`secret/prod/api` or `prod/api`) and as they go on the wire
//! (`secret/data/prod/api`, percent-encoded where needed).

use std::fmt::Write as _;

/// The KV v2 mount vaultd serves.
pub const MOUNT: &str = "secret";

/// Strips slashes and a leading `secret/` mount, and rejects paths that could not name a
/// key: empty segments, `.`/`..` and control characters. The result may be empty (the mount
/// root, which only `kv list` accepts).
pub fn normalize(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim_matches('/');
    let inner = if trimmed == MOUNT {
        ""
    } else {
        trimmed
            .strip_prefix(MOUNT)
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(trimmed)
    };
    let inner = inner.trim_start_matches('/');
    if inner.chars().any(char::is_control) {
        return Err("the path contains control characters".to_owned());
    }
    if !inner.is_empty() {
        for segment in inner.split('/') {
            match segment {
                "" => return Err("the path has an empty segment ('//')".to_owned()),
                "." | ".." => {
                    return Err("the path may not contain '.' or '..' segments".to_owned());
                }
                _ => {}
            }
        }
    }
    Ok(inner.to_owned())
}

/// Percent-encodes a normalised path for a URL, keeping `/` and RFC 3986 `pchar`s as they are.
pub fn encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        let keep = byte.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&byte);
        if keep {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// `secret/<kind>/<path>` for the API, e.g. kind `data`, `metadata`, `delete`.
pub fn api_path(kind: &str, path: &str) -> String {
    format!("{MOUNT}/{kind}/{}", encode(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_the_mount_and_slashes() {
        assert_eq!(normalize("secret/foo/bar").as_deref(), Ok("foo/bar"));
        assert_eq!(normalize("foo/bar").as_deref(), Ok("foo/bar"));
        assert_eq!(normalize("/secret/foo/").as_deref(), Ok("foo"));
        assert_eq!(normalize("secret").as_deref(), Ok(""));
        assert_eq!(normalize("secret/").as_deref(), Ok(""));
        assert_eq!(normalize("").as_deref(), Ok(""));
        // Only one mount prefix is removed, and only a whole segment.
        assert_eq!(normalize("secret/secret/x").as_deref(), Ok("secret/x"));
        assert_eq!(normalize("secrets/x").as_deref(), Ok("secrets/x"));
    }

    #[test]
    fn rejects_odd_paths() {
        assert!(normalize("a//b").is_err());
        assert!(normalize("a/../b").is_err());
        assert!(normalize("secret/./b").is_err());
        assert!(normalize("a\nb").is_err());
    }

    #[test]
    fn encodes_only_what_it_must() {
        assert_eq!(encode("prod/api-key_1.x"), "prod/api-key_1.x");
        assert_eq!(encode("a b?c#d%e"), "a%20b%3Fc%23d%25e");
        assert_eq!(encode("é"), "%C3%A9");
        assert_eq!(api_path("data", "prod/api"), "secret/data/prod/api");
    }
}
