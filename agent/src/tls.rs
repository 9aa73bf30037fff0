//! The process's rustls crypto provider (ring), shared by every outbound
//! client (gRPC export, registry heartbeats, `--health-url`). Owns nothing
//! else: certificates are loaded where each client is built.

/// Make ring the process's rustls crypto provider (idempotent). Must run
/// before any reqwest client is built: with `rustls-no-provider`, building a
/// client without a provider panics.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A reqwest client builder with the crypto provider in place.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
}
