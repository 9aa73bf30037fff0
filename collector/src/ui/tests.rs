//! Serving the embedded app: page routes, versioned assets, gzip, ETags.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::assets::{bundle, content_type};
use super::*;

fn app() -> Router {
    routes()
}

async fn get(uri: &str, headers: &[(&str, &str)]) -> Response {
    let mut req = Request::get(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    app()
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("infallible")
}

async fn body(resp: Response) -> Vec<u8> {
    resp.into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

#[tokio::test]
async fn every_page_route_serves_the_app_with_the_version_filled_in() {
    for uri in [
        "/",
        "/search?q=x",
        "/trace/0af7651916cd43dd8448eb211c80319c",
        "/logs",
        "/services",
        "/services/checkout",
        "/map",
        "/alerts",
        "/rules",
        "/compare?a=1&b=2",
    ] {
        let resp = get(uri, &[]).await;
        assert_eq!(resp.status(), StatusCode::OK, "{uri}");
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-cache");
        assert!(resp.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        let html = String::from_utf8(body(resp).await).expect("utf-8");
        assert!(!html.contains("{{VERSION}}"), "{uri}: version not filled");
        assert!(
            html.contains(&format!("/ui/{}/", bundle().version)),
            "{uri}: assets are referenced under the current version"
        );
    }
}

#[tokio::test]
async fn assets_have_types_immutable_caching_and_gzip() {
    let v = bundle().version.clone();
    let resp = get(
        &format!("/ui/{v}/js/app.js"),
        &[("accept-encoding", "gzip, br")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers().clone();
    assert_eq!(h[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
    assert_eq!(h[header::CONTENT_ENCODING], "gzip");
    assert_eq!(
        h[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(h[header::VARY], "Accept-Encoding");
    let plain = gunzip(&body(resp).await);
    let js = bundle().get("js/app.js").expect("app.js embedded");
    assert_eq!(plain, js.bytes.to_vec());

    // No gzip when not accepted, or refused with q=0.
    for ae in [None, Some("gzip;q=0"), Some("identity")] {
        let hdrs: Vec<(&str, &str)> = ae.map(|a| ("accept-encoding", a)).into_iter().collect();
        let resp = get(&format!("/ui/{v}/app.css"), &hdrs).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(
            !resp.headers().contains_key(header::CONTENT_ENCODING),
            "{ae:?}"
        );
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "text/css; charset=utf-8"
        );
    }
}

#[tokio::test]
async fn matching_etag_gives_304_and_old_versions_are_not_cached() {
    let v = bundle().version.clone();
    let uri = format!("/ui/{v}/app.css");
    let etag = get(&uri, &[]).await.headers()[header::ETAG]
        .to_str()
        .expect("ascii")
        .to_string();
    let resp = get(&uri, &[("if-none-match", &etag)]).await;
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);

    let resp = get("/ui/000000000000/app.css", &[]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-cache");
}

#[tokio::test]
async fn unknown_assets_and_tooling_files_are_404() {
    let v = bundle().version.clone();
    for path in [
        "nope.js",
        "package.json",
        "vendor.sh",
        "index.html",
        "API_ASSUMPTIONS.md",
    ] {
        let resp = get(&format!("/ui/{v}/{path}"), &[]).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert!(bundle().paths().iter().all(|p| !p.ends_with(".md")));
}

#[test]
fn content_types_by_extension() {
    assert_eq!(content_type("a.svg"), "image/svg+xml");
    assert_eq!(content_type("a.MJS"), "text/javascript; charset=utf-8");
    assert_eq!(content_type("LICENSE"), "application/octet-stream");
}

#[test]
fn accept_encoding_parsing() {
    let h = |v: &str| {
        let mut m = axum::http::HeaderMap::new();
        m.insert(header::ACCEPT_ENCODING, v.parse().expect("header"));
        accepts_gzip(&m)
    };
    assert!(h("gzip"));
    assert!(h("br, GZIP;q=0.5"));
    assert!(h("*"));
    assert!(!h("gzip;q=0"));
    assert!(!h("br, deflate"));
    assert!(!h("x-gzip-not"));
}
