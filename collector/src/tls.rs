//! TLS for every listener (`--tls-cert`/`--tls-key`), with rustls + ring.
//!
//! Owns loading and validating the PEM material at start-up (a bad file fails
//! the start with its path named) and serving an axum router with or without
//! TLS and graceful shutdown. It must not know which routes it serves.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long HTTP connections get to finish after shutdown starts.
const GRACE: Duration = Duration::from_secs(7);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS file {}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// Certificate chain and key, checked at load.
#[derive(Clone)]
pub struct TlsMaterial {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    server_config: Arc<rustls::ServerConfig>,
}

impl TlsMaterial {
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| TlsError::File {
                path: p.to_path_buf(),
                message: e.to_string(),
            })
        };
        let cert_pem = read(cert)?;
        let key_pem = read(key)?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError::File {
                path: cert.to_path_buf(),
                message: format!("invalid PEM certificate: {e}"),
            })?;
        if chain.is_empty() {
            return Err(TlsError::File {
                path: cert.to_path_buf(),
                message: "no certificate found".into(),
            });
        }
        let private_key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::File {
            path: key.to_path_buf(),
            message: format!("invalid PEM private key: {e}"),
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, private_key)
            .map_err(|e| {
                TlsError::Config(format!(
                    "certificate and key do not form a usable pair: {e}"
                ))
            })?;
        server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsMaterial {
            cert_pem,
            key_pem,
            server_config: Arc::new(server_config),
        })
    }

    /// The same material for tonic's server.
    pub fn tonic_config(&self) -> tonic::transport::ServerTlsConfig {
        tonic::transport::ServerTlsConfig::new().identity(tonic::transport::Identity::from_pem(
            &self.cert_pem,
            &self.key_pem,
        ))
    }
}

/// Serve `router` on `listener` until `cancel`, then drain for up to [`GRACE`].
pub async fn serve_http(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsMaterial>,
    cancel: CancellationToken,
) {
    match tls {
        None => {
            if let Err(e) = axum::serve(skein_otlp::net::http_listener(listener), router)
                .with_graceful_shutdown(cancel.cancelled_owned())
                .await
            {
                tracing::error!("HTTP server failed: {e}");
            }
        }
        Some(tls) => {
            let std_listener = match listener.into_std() {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!("HTTP TLS listener: {e}");
                    return;
                }
            };
            let config = axum_server::tls_rustls::RustlsConfig::from_config(tls.server_config);
            let handle = axum_server::Handle::new();
            let shutdown = handle.clone();
            tokio::spawn(async move {
                cancel.cancelled().await;
                shutdown.graceful_shutdown(Some(GRACE));
            });
            let server = match axum_server::from_tcp_rustls(std_listener, config) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!("HTTP TLS listener: {e}");
                    return;
                }
            };
            if let Err(e) = server
                .handle(handle)
                .serve(router.into_make_service())
                .await
            {
                tracing::error!("HTTPS server failed: {e}");
            }
        }
    }
}

/// Make ring the process's rustls crypto provider (idempotent). Needed before
/// any reqwest client is built: with the workspace's `rustls-no-provider`
/// reqwest feature, building a client without a provider panics.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
