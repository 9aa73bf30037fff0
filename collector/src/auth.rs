//! Bearer-token authentication (`--auth-token-file`, `--auth-read`).
//!
//! Owns the token set and the three places it is checked: an axum layer for
//! write routes (OTLP/HTTP), an axum middleware for read routes (enabled only
//! with `--auth-read`), and a tonic interceptor for OTLP/gRPC. Missing token →
//! 401 / UNAUTHENTICATED, wrong token → 403 / PERMISSION_DENIED. Tokens are
//! compared in constant time. It must not know what the routes do.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use subtle::ConstantTimeEq;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("auth token file {}: {message}", path.display())]
    File { path: PathBuf, message: String },
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    Missing,
    Wrong,
}

/// The accepted bearer tokens.
pub struct Tokens {
    tokens: Vec<Vec<u8>>,
}

impl Tokens {
    /// One token per line; blank lines and `#` comments are ignored.
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|e| AuthError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let tokens = Self::parse(&text);
        if tokens.tokens.is_empty() {
            return Err(AuthError::File {
                path: path.to_path_buf(),
                message: "contains no token".into(),
            });
        }
        Ok(tokens)
    }

    pub fn parse(text: &str) -> Self {
        let tokens = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.as_bytes().to_vec())
            .collect();
        Tokens { tokens }
    }

    /// Check an `Authorization` header value.
    pub fn check(&self, authorization: Option<&[u8]>) -> Result<(), Denied> {
        let value = authorization.ok_or(Denied::Missing)?;
        let presented = value
            .strip_prefix(b"Bearer ")
            .or_else(|| value.strip_prefix(b"bearer "))
            .ok_or(Denied::Missing)?;
        // Compare against every token so timing does not reveal which matched.
        let mut ok = subtle::Choice::from(0u8);
        for t in &self.tokens {
            ok |= t.as_slice().ct_eq(presented);
        }
        if bool::from(ok) {
            Ok(())
        } else {
            Err(Denied::Wrong)
        }
    }
}

/// Require a token on every route of `router` (no-op without tokens).
pub fn require_write(router: Router, tokens: Option<Arc<Tokens>>) -> Router {
    match tokens {
        Some(t) => router.layer(axum::middleware::from_fn_with_state(Some(t), check_bearer)),
        None => router,
    }
}

/// axum middleware: pass when no tokens are configured, for health probes,
/// or with a valid `Authorization: Bearer …`.
pub async fn check_bearer(
    State(tokens): State<Option<Arc<Tokens>>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(tokens) = tokens else {
        return next.run(req).await;
    };
    if matches!(req.uri().path(), "/healthz" | "/readyz") {
        return next.run(req).await;
    }
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    match tokens.check(header) {
        Ok(()) => next.run(req).await,
        Err(denied) => denied_response(denied),
    }
}

fn denied_response(denied: Denied) -> Response {
    let (status, code, msg) = match denied {
        Denied::Missing => (
            StatusCode::UNAUTHORIZED,
            16,
            "missing bearer token: send Authorization: Bearer <token>",
        ),
        Denied::Wrong => (StatusCode::FORBIDDEN, 7, "invalid bearer token"),
    };
    let body = serde_json::json!({ "code": code, "message": msg, "error": msg });
    let mut resp = (status, axum::Json(body)).into_response();
    if denied == Denied::Missing {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

/// tonic interceptor for OTLP/gRPC.
#[derive(Clone)]
pub struct GrpcAuth {
    tokens: Option<Arc<Tokens>>,
}

impl GrpcAuth {
    pub fn new(tokens: Option<Arc<Tokens>>) -> Self {
        GrpcAuth { tokens }
    }
}

impl tonic::service::Interceptor for GrpcAuth {
    fn call(&mut self, req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let Some(tokens) = &self.tokens else {
            return Ok(req);
        };
        let header = req.metadata().get("authorization").map(|v| v.as_bytes());
        match tokens.check(header) {
            Ok(()) => Ok(req),
            Err(Denied::Missing) => Err(tonic::Status::unauthenticated("missing bearer token")),
            Err(Denied::Wrong) => Err(tonic::Status::permission_denied("invalid bearer token")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked() {
        let t = Tokens::parse("# comment\n\n  secret-one \nsecret-two\n");
        assert_eq!(t.check(Some(b"Bearer secret-one")), Ok(()));
        assert_eq!(t.check(Some(b"Bearer secret-two")), Ok(()));
        assert_eq!(t.check(Some(b"Bearer secret")), Err(Denied::Wrong));
        assert_eq!(t.check(Some(b"Bearer secret-one-more")), Err(Denied::Wrong));
        assert_eq!(t.check(Some(b"Basic abc")), Err(Denied::Missing));
        assert_eq!(t.check(None), Err(Denied::Missing));
    }

    #[test]
    fn empty_token_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokens");
        std::fs::write(&p, "# nothing\n").unwrap();
        let e = Tokens::load(&p).err().unwrap().to_string();
        assert!(e.contains("no token") && e.contains("tokens"), "{e}");
    }
}
