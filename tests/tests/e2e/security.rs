//! Bearer-token auth (`--auth-token-file`, `--auth-read`) and TLS
//! (`--tls-cert`, `--tls-key`) through the real binary, on every listener:
//! OTLP/HTTP, OTLP/gRPC and the query API.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use skein_e2e::otlp::{self, hex, new_span_id, new_trace_id};
use skein_e2e::{wait_until, Collector, QUERYABLE_WITHIN};
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tonic::Code;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

const TOKEN: &str = "s3cret-token";

fn one_span(service: &str) -> (String, ExportTraceServiceRequest) {
    let trace_id = new_trace_id();
    let req = otlp::traces(service, vec![otlp::span(&trace_id, &new_span_id(), "op")]);
    (hex(&trace_id), req)
}

fn http() -> reqwest::blocking::Client {
    skein_e2e::http_client()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client")
}

/// Status of a protobuf POST to `/v1/traces` with an optional bearer token.
fn post_traces(base: &str, req: &ExportTraceServiceRequest, token: Option<&str>) -> u16 {
    let mut r = http()
        .post(format!("{base}/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(req.encode_to_vec());
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().expect("POST /v1/traces").status().as_u16()
}

fn get_status(url: &str, token: Option<&str>) -> u16 {
    let mut r = http().get(url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().expect("GET").status().as_u16()
}

/// gRPC export with an optional `authorization` header; the status code.
fn grpc_export(endpoint: Endpoint, req: ExportTraceServiceRequest, token: Option<&str>) -> Code {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let channel = endpoint.connect().await.expect("gRPC connect");
        let mut client = TraceServiceClient::new(channel);
        let mut request = tonic::Request::new(req);
        if let Some(t) = token {
            let value: MetadataValue<_> = format!("Bearer {t}").parse().expect("metadata value");
            request.metadata_mut().insert("authorization", value);
        }
        match client.export(request).await {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        }
    })
}

#[test]
fn bearer_token_guards_writes_and_reads_but_not_ops_routes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("tokens");
    std::fs::write(&token_file, format!("# the CI token\n\n{TOKEN}\nother\n")).expect("token file");
    let c = Collector::start_fast(&[
        "--auth-token-file",
        token_file.to_str().expect("utf-8 path"),
        "--auth-read",
    ]);

    // OTLP/HTTP: missing → 401, wrong → 403, right → 200.
    let (_, req) = one_span("auth-http");
    assert_eq!(post_traces(&c.otlp_http_base(), &req, None), 401);
    assert_eq!(post_traces(&c.otlp_http_base(), &req, Some("nope")), 403);
    let (trace_id, req) = one_span("auth-http");
    assert_eq!(post_traces(&c.otlp_http_base(), &req, Some(TOKEN)), 200);

    // OTLP/gRPC: UNAUTHENTICATED, PERMISSION_DENIED, OK.
    let endpoint = || Endpoint::from_shared(c.grpc_endpoint()).expect("endpoint");
    let (_, req) = one_span("auth-grpc");
    assert_eq!(
        grpc_export(endpoint(), req.clone(), None),
        Code::Unauthenticated
    );
    assert_eq!(
        grpc_export(endpoint(), req.clone(), Some("nope")),
        Code::PermissionDenied
    );
    assert_eq!(grpc_export(endpoint(), req, Some("other")), Code::Ok);

    // Read API: guarded with --auth-read.
    let base = c.http_base();
    assert_eq!(get_status(&format!("{base}/api/services"), None), 401);
    assert_eq!(
        get_status(&format!("{base}/api/services"), Some("nope")),
        403
    );
    wait_until(
        QUERYABLE_WITHIN,
        "the authenticated span to be queryable",
        || get_status(&format!("{base}/api/traces/{trace_id}"), Some(TOKEN)) == 200,
    );
    let services: serde_json::Value = http()
        .get(format!("{base}/api/services"))
        .bearer_auth(TOKEN)
        .send()
        .and_then(|r| r.json())
        .expect("services JSON");
    let names: Vec<&str> = services["data"]
        .as_array()
        .expect("data array")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(names.contains(&"auth-http"), "services: {names:?}");
    assert!(names.contains(&"auth-grpc"), "services: {names:?}");

    // Probes and scrapes stay open (Kubernetes and Prometheus carry no token).
    for path in ["/metrics", "/healthz", "/readyz"] {
        assert_eq!(get_status(&format!("{base}{path}"), None), 200, "{path}");
    }
}

#[test]
fn auth_read_without_a_token_file_is_a_config_error() {
    let out = std::process::Command::new(skein_e2e::collector::collector_binary())
        .args(["--auth-read", "--data-dir"])
        .arg(tempfile::tempdir().expect("tempdir").path())
        .env_remove("SKEIN_AUTH_TOKEN_FILE")
        .output()
        .expect("running the collector");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("auth_read"),
        "stderr names the key: {stderr}"
    );
}

/// A self-signed certificate for `localhost` and 127.0.0.1.
struct TestCert {
    cert_pem: String,
    key_pem: String,
}

fn test_cert() -> TestCert {
    let key = rcgen::KeyPair::generate().expect("key pair");
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("cert params");
    let cert = params.self_signed(&key).expect("self-signed cert");
    TestCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// One HTTP/1.1 request over TLS verified against `ca_pem`; returns the
/// status code and the body.
fn https_request(addr: &str, ca_pem: &str, request: &[u8]) -> (u16, Vec<u8>) {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("PEM cert")).expect("root cert");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("server name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("TLS client");
    let sock = TcpStream::connect(addr).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(request).expect("TLS write");
    let mut raw = Vec::new();
    // The server closes after `Connection: close`; a TLS close_notify or a
    // plain EOF both end the read.
    let _ = tls.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status line in {text:?}"));
    let body = match raw.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => raw[i + 4..].to_vec(),
        None => Vec::new(),
    };
    (status, body)
}

fn host_port(base: &str) -> String {
    base.trim_start_matches("http://")
        .trim_start_matches("https://")
        .to_string()
}

#[test]
fn tls_on_every_listener() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = test_cert();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, &cert.cert_pem).expect("cert file");
    std::fs::write(&key_path, &cert.key_pem).expect("key file");
    let c = Collector::start_fast(&[
        "--tls-cert",
        cert_path.to_str().expect("utf-8"),
        "--tls-key",
        key_path.to_str().expect("utf-8"),
    ]);

    // OTLP/gRPC over TLS.
    let grpc_addr = host_port(&c.grpc_endpoint());
    let endpoint = Endpoint::from_shared(format!("https://{grpc_addr}"))
        .expect("endpoint")
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&cert.cert_pem))
                .domain_name("localhost"),
        )
        .expect("client TLS config");
    let (grpc_trace, req) = one_span("tls-grpc");
    assert_eq!(grpc_export(endpoint, req, None), Code::Ok);

    // OTLP/HTTP over TLS.
    let (http_trace, req) = one_span("tls-http");
    let body = req.encode_to_vec();
    let mut request = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-protobuf\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let (status, _) = https_request(&host_port(&c.otlp_http_base()), &cert.cert_pem, &request);
    assert_eq!(status, 200);

    // The query API over TLS finds both traces.
    let http_addr = host_port(&c.http_base());
    for trace_id in [&grpc_trace, &http_trace] {
        let get = format!(
            "GET /api/traces/{trace_id} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        );
        wait_until(
            QUERYABLE_WITHIN,
            "the TLS-sent trace to be queryable",
            || https_request(&http_addr, &cert.cert_pem, get.as_bytes()).0 == 200,
        );
        let (_, body) = https_request(&http_addr, &cert.cert_pem, get.as_bytes());
        let json: serde_json::Value = serde_json::from_slice(&body).expect("Jaeger JSON");
        assert_eq!(json["data"][0]["traceID"], trace_id.as_str());
    }

    // Plain HTTP to a TLS listener gets no HTTP answer.
    let plain = skein_e2e::http_client()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
        .get(format!("http://{http_addr}/healthz"))
        .send();
    assert!(
        plain.map(|r| r.status().as_u16() != 200).unwrap_or(true),
        "plain HTTP must not be served on a TLS listener"
    );
}
