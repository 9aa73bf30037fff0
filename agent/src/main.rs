//! `skein-agent`: parse the configuration, set up logging, run the pipeline
//! until SIGTERM/SIGINT.

use anyhow::Context;
use clap::Parser;
use skein_agent::config::{Args, Config};
use skein_agent::{pipeline, telemetry};

/// jemalloc, as in the collector: the forwarder allocates and frees a batch
/// buffer per export; glibc's per-thread arenas grew RSS and handed pages
/// back and forth with the kernel.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = Config::load(args)?;
    telemetry::init_tracing(config.log_format, &config.log_level);
    // One TLS crypto provider for every client (gRPC, registry, health URL).
    skein_agent::tls::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("skein-agent")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        // Listen for the signals before anything starts: a SIGTERM sent
        // right after the listening lines must shut down, not kill.
        let shutdown = skein_otlp::shutdown::signal_received("skein-agent");
        pipeline::run(config, shutdown).await
    })?;
    tracing::info!("stopped");
    Ok(())
}
