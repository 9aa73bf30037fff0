//! `skein-collector` binary: parse the configuration, run the pipeline until
//! SIGTERM/SIGINT, shut down gracefully.

use anyhow::Context;
use clap::Parser;
use skein_collector::config::{Args, Config};
use skein_collector::{pipeline, telemetry};

fn main() -> std::process::ExitCode {
    let config = match Config::load(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skein-collector: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    telemetry::init_tracing(config.log_format, &config.log_level);
    skein_collector::tls::install_crypto_provider();
    match run(config) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("skein-collector failed: {e:#}");
            eprintln!("skein-collector: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("skein-rt")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let running = pipeline::start(config)
            .await
            .context("starting the collector")?;
        shutdown_signal().await;
        tracing::info!("shutdown signal received, draining");
        running.shutdown().await.context("shutting down")
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let ctrl_c = tokio::signal::ctrl_c();
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        Err(e) => {
            tracing::warn!("cannot listen for SIGTERM ({e}); only Ctrl-C stops the collector");
            let _ = ctrl_c.await;
        }
    }
}
