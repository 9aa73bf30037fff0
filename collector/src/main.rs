//! `skein-collector` binary: parse the configuration, run the pipeline until
//! SIGTERM/SIGINT, shut down gracefully.

use anyhow::Context;
use clap::Parser;
use skein_collector::config::{Args, Config};
use skein_collector::demo::{self, schedule::FailureCycle, DemoSettings};
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
        let demo_settings = config.demo.then(|| DemoSettings {
            data_dir: config.data_dir.clone(),
            http_addr: config.http_addr,
            otlp_grpc_addr: config.otlp_grpc_addr,
            auth_token_file: config.auth.as_ref().map(|a| a.token_file.clone()),
            cycle: FailureCycle::DEMO,
        });
        let running = pipeline::start(config)
            .await
            .context("starting the collector")?;
        // The demo runs beside the real pipeline and reaches it only through
        // its listeners (the bound addresses: port 0 works).
        let demo = match demo_settings {
            Some(s) => {
                let s = DemoSettings {
                    http_addr: running.http_addr,
                    otlp_grpc_addr: running.otlp_grpc_addr,
                    ..s
                };
                match demo::start(s, &running.registry).await {
                    Ok(d) => {
                        let ui = demo::connectable(running.http_addr);
                        println!("Skein demo is running. Open the UI: http://{ui}/");
                        Some(d)
                    }
                    Err(e) => {
                        let _ = running.shutdown().await;
                        return Err(e).context("starting the demo");
                    }
                }
            }
            None => None,
        };
        shutdown_signal().await;
        tracing::info!("shutdown signal received, draining");
        if let Some(d) = demo {
            d.shutdown().await;
        }
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
