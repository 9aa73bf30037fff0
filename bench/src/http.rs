//! The HTTP client builder every benchmark uses. It installs ring as the
//! rustls crypto provider first: in a workspace build reqwest carries
//! `rustls-no-provider` (from skein-agent), and building a client without a
//! provider panics.

pub fn client_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}
