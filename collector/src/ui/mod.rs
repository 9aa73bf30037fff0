//! The web UI: serves the embedded `ui/` single-page app on `--http-addr`.
//!
//! Owns only static delivery: the page routes (`/`, `/search`, `/trace/…`,
//! `/logs`, …) all answer the same `index.html` (the app routes in the
//! browser), and `/ui/<version>/<path>` serves the assets with their content
//! type, gzip when the client accepts it, a strong ETag and
//! `Cache-Control: immutable` (the version changes whenever any file does).
//! It must not touch the query APIs: the app calls `/api/…` like any other
//! client, and unknown `/api/…` paths keep their JSON 404 from `api/`.
//!
//! ```text
//! mod.rs     routes(), the handlers, Accept-Encoding / If-None-Match handling
//! assets.rs  the embedded files, content types, gzip copies, asset version
//! ```

pub mod assets;

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use assets::{bundle, Asset};

/// Browser-side routes of the app; each serves `index.html`.
pub const PAGE_ROUTES: &[&str] = &[
    "/",
    "/search",
    "/trace/{id}",
    "/compare",
    "/logs",
    "/services",
    "/services/{service}",
    "/map",
    "/alerts",
    "/rules",
];

/// Where the versioned assets live: `/ui/<version>/<path>`.
pub const ASSETS: &str = "/ui/{version}/{*path}";

/// Content-Security-Policy of the app page: everything from this origin only.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The UI routes, with no state and no fallback (so they merge anywhere).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut r = Router::new()
        .route(ASSETS, get(asset))
        .route("/favicon.ico", get(favicon));
    for page in PAGE_ROUTES {
        r = r.route(page, get(index));
    }
    r
}

/// `index.html` with the asset version filled in, and its gzip.
static INDEX: LazyLock<Option<Asset>> = LazyLock::new(|| {
    let b = bundle();
    let raw = b.get("index.html")?;
    let html = String::from_utf8_lossy(&raw.bytes).replace("{{VERSION}}", &b.version);
    let gzip = gzip_of(html.as_bytes());
    Some(Asset {
        etag: format!("\"{}-{}\"", b.version, html.len()),
        bytes: html.into_bytes().into(),
        gzip,
        content_type: raw.content_type,
    })
});

fn gzip_of(data: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).ok()?;
    enc.finish().ok()
}

async fn index(headers: HeaderMap) -> Response {
    match INDEX.as_ref() {
        Some(asset) => {
            let mut resp = serve(asset, &headers, "no-cache");
            if let Ok(v) = HeaderValue::from_str(CSP) {
                resp.headers_mut()
                    .insert(header::CONTENT_SECURITY_POLICY, v);
            }
            resp
        }
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "this build has no ui/index.html embedded",
        )
            .into_response(),
    }
}

async fn favicon(headers: HeaderMap) -> Response {
    match bundle().get("favicon.svg") {
        Some(a) => serve(a, &headers, "public, max-age=86400"),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn asset(Path((version, path)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let b = bundle();
    let Some(a) = b.get(&path).filter(|_| path != "index.html") else {
        return (StatusCode::NOT_FOUND, format!("no such UI asset: {path}")).into_response();
    };
    // A stale page may ask for an older version: answer with today's bytes,
    // but do not let them be cached under the old name.
    let cache = if version == b.version {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    serve(a, &headers, cache)
}

/// One asset → response: 304 on a matching ETag, gzip when accepted.
fn serve(a: &Asset, headers: &HeaderMap, cache: &'static str) -> Response {
    let mut out = HeaderMap::new();
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    out.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(etag) = HeaderValue::from_str(&a.etag) {
        out.insert(header::ETAG, etag);
    }
    if etag_matches(headers, &a.etag) {
        return (StatusCode::NOT_MODIFIED, out).into_response();
    }
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    match &a.gzip {
        Some(z) if accepts_gzip(headers) => {
            out.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            (out, z.clone()).into_response()
        }
        _ => (out, a.bytes.to_vec()).into_response(),
    }
}

fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// Whether `Accept-Encoding` allows gzip (`gzip` or `*` with q > 0).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim();
            if !(name.eq_ignore_ascii_case("gzip") || name == "*") {
                return false;
            }
            parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .all(|q| q.trim().parse::<f32>().is_ok_and(|q| q > 0.0))
        })
}

#[cfg(test)]
mod tests;
