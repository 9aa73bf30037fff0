//! `skein-collector` binary: parse the configuration, run the pipeline until
//! SIGTERM/SIGINT, shut down gracefully.

use anyhow::Context;
use clap::Parser;
use skein_collector::config::{Args, Config, DemoRemote};
use skein_collector::demo::{self, schedule::FailureCycle, DemoSettings};
use skein_collector::{pipeline, telemetry};

/// jemalloc, not glibc's malloc: a query of a 100k-span trace allocates and
/// frees ~100 MB in a second on several threads, and glibc handed those
/// pages back to the kernel and faulted them in again on every request
/// (a sixth of the time); ingest and the registry allocate millions of
/// small objects, where jemalloc's size classes carry no per-block header.
/// Measured in BENCHMARKS.md ("Allocator").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's start-up options (`_RJEM_MALLOC_CONF` in the environment
/// overrides them): a background thread returns freed pages to the kernel
/// as they age, so request threads never do that work and an idle
/// collector's RSS shrinks back after a burst.
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8] = b"background_thread:true\0";

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
        let stop = skein_otlp::shutdown::signal_received("skein-collector");
        if let Some(remote) = config.demo_remote.clone() {
            return run_demo_only(&config, remote, stop).await;
        }
        let running = pipeline::start(config.clone())
            .await
            .context("starting the collector")?;
        // The demo runs beside the real pipeline and reaches it only through
        // its listeners (the bound addresses: port 0 works).
        let demo = if config.demo {
            let http = demo::connectable(running.http_addr);
            let settings = DemoSettings {
                data_dir: config.data_dir.clone(),
                collector_http: format!("http://{http}"),
                collector_otlp: Some(format!(
                    "http://{}",
                    demo::connectable(running.otlp_grpc_addr)
                )),
                auth_token_file: config.auth.as_ref().map(|a| a.token_file.clone()),
                cycle: FailureCycle::DEMO,
            };
            match demo::start(settings, &running.registry).await {
                Ok(d) => {
                    println!("Skein demo is running. Open the UI: http://{http}/");
                    Some(d)
                }
                Err(e) => {
                    let _ = running.shutdown().await;
                    return Err(e).context("starting the demo");
                }
            }
        } else {
            None
        };
        stop.await;
        tracing::info!("shutdown signal received, draining");
        if let Some(d) = demo {
            d.shutdown().await;
        }
        running.shutdown().await.context("shutting down")
    })
}

/// `--demo --demo-collector URL`: only the demo system and its agents,
/// sending to a collector elsewhere (e.g. the compose `demo` service).
async fn run_demo_only(
    config: &Config,
    remote: DemoRemote,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let settings = DemoSettings {
        data_dir: config.data_dir.clone(),
        collector_http: remote.http.clone(),
        collector_otlp: remote.otlp,
        auth_token_file: config.auth.as_ref().map(|a| a.token_file.clone()),
        cycle: FailureCycle::DEMO,
    };
    let metrics = telemetry::Registry::new();
    let demo = demo::start(settings, &metrics)
        .await
        .context("starting the demo")?;
    println!(
        "Skein demo is sending to {}. Open its UI: {}/",
        remote.http, remote.http
    );
    stop.await;
    tracing::info!("shutdown signal received, stopping the demo");
    demo.shutdown().await;
    Ok(())
}
