//! Token authentication of the KV API: bearer tokens, each bound to one tenant.
//!
//! The token file (`--kv-auth-file`) has one `token tenant` pair per line, separated by
//! whitespace; blank lines and lines whose first non-blank character is `#` are ignored. A
//! tenant may have several tokens; a token names exactly one tenant. Example:
//!
//! ```text
//! # token                            tenant
//! 3f9a0c7e2b1d4e8fa6b5c4d3e2f1a0b9   orders
//! 0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e   sessions
//! ```

use std::collections::HashMap;
use std::path::Path;

use tonic::Status;
use tonic::metadata::MetadataMap;

/// Tokens and the tenant each one may act for.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    tenants: HashMap<String, Vec<u8>>,
}

impl Auth {
    /// Reads a token file.
    pub fn load(path: &Path) -> Result<Auth, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading the KV auth file {}: {e}", path.display()))?;
        Auth::parse(&text).map_err(|e| format!("the KV auth file {}: {e}", path.display()))
    }

    /// Parses the text of a token file.
    pub fn parse(text: &str) -> Result<Auth, String> {
        let mut tenants = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [token, tenant] = fields[..] else {
                return Err(format!(
                    "line {}: expected `token tenant`, found {} fields",
                    n + 1,
                    fields.len()
                ));
            };
            if tenants
                .insert(token.to_string(), tenant.as_bytes().to_vec())
                .is_some()
            {
                return Err(format!("line {}: the token is listed twice", n + 1));
            }
        }
        Ok(Auth { tenants })
    }

    /// The tenant of the request's bearer token: `UNAUTHENTICATED` when it is missing or unknown.
    pub fn tenant_of(&self, metadata: &MetadataMap) -> Result<&[u8], Status> {
        let header = metadata
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("missing `authorization: Bearer <token>`"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("expected `authorization: Bearer <token>`"))?;
        self.tenants
            .get(token.trim())
            .map(Vec::as_slice)
            .ok_or_else(|| Status::unauthenticated("unknown token"))
    }

    /// Checks that the request's token may act for `tenant`.
    pub fn check(&self, metadata: &MetadataMap, tenant: &[u8]) -> Result<(), Status> {
        if self.tenant_of(metadata)? == tenant {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "the token is not valid for tenant {}",
                String::from_utf8_lossy(tenant)
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    fn metadata(token: Option<&str>) -> MetadataMap {
        let mut m = MetadataMap::new();
        if let Some(t) = token {
            m.insert(
                "authorization",
                format!("Bearer {t}").parse().expect("ascii"),
            );
        }
        m
    }

    #[test]
    fn tokens_act_only_for_their_tenant() {
        let auth = Auth::parse("# comment\n\n  tok-a a\ntok-b   b # not a comment?\n")
            .expect_err("three fields on the last line");
        assert!(auth.contains("line 4"), "{auth}");
        let auth = Auth::parse("# comment\n\n  tok-a a\ntok-b\tb\n").expect("valid");
        assert!(auth.check(&metadata(Some("tok-a")), b"a").is_ok());
        let denied = auth
            .check(&metadata(Some("tok-a")), b"b")
            .expect_err("other tenant");
        assert_eq!(denied.code(), Code::PermissionDenied);
        let unknown = auth
            .check(&metadata(Some("nope")), b"a")
            .expect_err("unknown");
        assert_eq!(unknown.code(), Code::Unauthenticated);
        let missing = auth.check(&metadata(None), b"a").expect_err("missing");
        assert_eq!(missing.code(), Code::Unauthenticated);
    }

    #[test]
    fn duplicate_tokens_are_refused() {
        assert!(Auth::parse("t a\nt b\n").is_err());
    }
}
