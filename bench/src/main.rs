//! `skein-bench`: Skein's benchmark tool (DESIGN §9).
//!
//! - `ingest`: sustained OTLP/gRPC load of pre-encoded span or log batches
//!   with unique ids; throughput, ack latency, errors, rejections.
//! - `query`: Jaeger API latency (trace by id, searches), optionally after
//!   loading a data set through OTLP.
//! - `trace-tree`: native trace-by-id (tree + critical path) and Jaeger
//!   trace-by-id latency for single traces of given sizes.
//! - `reference decode|tantivy`: the baselines ingest is compared against.
//! - `disk`: bytes per span of a collector data dir.
//! - `registry`: many instances renewing leases; heartbeat latency, expiry
//!   detection delay, memory per instance.
//! - `agent forward|replay`: `skein-agent`'s RSS, CPU, added latency and
//!   backlog drain rate.
//!
//! Every subcommand prints a short report, or one JSON object with `--json`.

mod agent;
mod disk;
mod gen;
mod grpc;
mod http;
mod ingest;
#[cfg(test)]
mod mock;
mod query;
mod reference;
mod registry;
mod report;
mod scrape;
mod tree;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "skein-bench",
    version,
    about = "Load generator and reference benchmarks for Skein"
)]
struct Cli {
    /// Print the report as one JSON object.
    #[arg(long, global = true)]
    json: bool,
    /// Tokio worker threads for the network benchmarks (the collector
    /// usually shares the machine).
    #[arg(long, global = true, default_value_t = 1)]
    threads: usize,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Sustained OTLP/gRPC ingest load.
    Ingest(ingest::Args),
    /// Jaeger query API latency, optionally after loading data.
    Query(query::Args),
    /// Baselines from DESIGN §9.
    #[command(subcommand)]
    Reference(reference::Cmd),
    /// Bytes per span on disk for a collector data dir.
    Disk(disk::Args),
    /// Trace-by-id latency (native tree + critical path, Jaeger) per trace size.
    TraceTree(tree::Args),
    /// Registry load: instances renewing leases, expiry timing, memory.
    Registry(registry::Args),
    /// skein-agent: resources while forwarding, backlog replay rate.
    #[command(subcommand)]
    Agent(agent::Cmd),
}

fn runtime(threads: usize) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let json = cli.json;
    match cli.cmd {
        Cmd::Ingest(args) => {
            report::emit(&runtime(cli.threads)?.block_on(ingest::run(args))?, json)
        }
        Cmd::Query(args) => report::emit(&runtime(cli.threads)?.block_on(query::run(args))?, json),
        Cmd::Reference(reference::Cmd::Decode(args)) => {
            report::emit(&reference::decode(args)?, json)
        }
        Cmd::Reference(reference::Cmd::Tantivy(args)) => {
            report::emit(&reference::tantivy(args)?, json)
        }
        Cmd::Disk(args) => report::emit(&disk::measure(&args.data_dir, args.spans)?, json),
        Cmd::TraceTree(args) => {
            report::emit(&runtime(cli.threads)?.block_on(tree::run(args))?, json)
        }
        Cmd::Registry(args) => {
            report::emit(&runtime(cli.threads)?.block_on(registry::run(args))?, json)
        }
        Cmd::Agent(agent::Cmd::Forward(args)) => {
            report::emit(&runtime(cli.threads)?.block_on(agent::forward(args))?, json)
        }
        Cmd::Agent(agent::Cmd::Replay(args)) => {
            report::emit(&runtime(cli.threads)?.block_on(agent::replay(args))?, json)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "skein-bench",
            "ingest",
            "--signal",
            "logs",
            "--duration",
            "10s",
            "--rate",
            "75000",
            "--json",
        ])
        .unwrap();
        assert!(cli.json);
        let Cmd::Ingest(a) = cli.cmd else {
            panic!("ingest expected")
        };
        assert_eq!(a.duration, std::time::Duration::from_secs(10));
        assert_eq!(a.signal, gen::Signal::Logs);
    }
}
