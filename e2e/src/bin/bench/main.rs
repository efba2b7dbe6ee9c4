//! `bench`: what the operator costs, measured against an API server it cannot tell from a real
//! one, beside the least a client could do in its place.
//!
//! ```text
//! cargo run --release -p mmf-e2e --bin bench -- SCENARIO [--services N[,N...]] [--plugins P]
//!     [--server memory|real] [--concurrency C] [--quiet-seconds S]
//! ```
//!
//! Each scenario starts a fresh API server (the in-memory test server, or the real control plane
//! of `real-cluster`), runs the real `mmf` binary as a separate process and prints one table
//! whose last line holds the ratio. The figures are printed, never asserted: CI runs a short
//! smoke (`--services 50`) so the command keeps working, and BENCHMARKS.md records full runs.

mod cluster;
mod operator;
mod raw;
mod report;
mod scenarios;
mod steady;
mod webhook;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "bench",
    about = "Benchmarks of mmf-operator: convergence, requests, quiet writes, memory, startup, render, webhook"
)]
struct Args {
    /// What to measure (`all` runs every scenario once, with its default sizes).
    #[arg(value_enum)]
    scenario: Scenario,
    /// MmfServices (a comma-separated list runs the scenario once per size).
    #[arg(long, value_delimiter = ',')]
    services: Vec<usize>,
    /// MmfPlugins every service loads.
    #[arg(long, default_value_t = 3)]
    plugins: usize,
    /// The API server to run against.
    #[arg(long, value_enum, default_value = "memory")]
    server: cluster::ServerKind,
    /// Requests the creating client and the raw baseline keep in flight, and the operator's
    /// reconciles in flight per controller (`mmf run --concurrency`).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// How long the quiet scenario watches a settled operator.
    #[arg(long, default_value_t = 60)]
    quiet_seconds: u64,
    /// Request rates (per second) of the webhook scenario's direct table.
    #[arg(long, value_delimiter = ',', default_values_t = [500, 2000])]
    rates: Vec<u64>,
    /// Seconds each rate of the webhook scenario runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// MmfPlugin creates per side of the webhook scenario's through-the-API-server table.
    #[arg(long, default_value_t = 1000)]
    creates: usize,
    /// The `mmf` binary (default: the one beside this binary, built if missing).
    #[arg(long)]
    mmf: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Convergence,
    Requests,
    Quiet,
    Memory,
    Startup,
    Render,
    Webhook,
    All,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("bench: starting the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<(), scenarios::BenchError> {
    mmf_e2e::tls::install_crypto_provider();
    let mmf = operator::mmf_binary(args.mmf.clone())?;
    let setup = scenarios::Setup {
        mmf,
        server: args.server,
        plugins: args.plugins,
        concurrency: args.concurrency.max(1),
        quiet: std::time::Duration::from_secs(args.quiet_seconds),
    };
    let sizes = |default: &[usize]| {
        if args.services.is_empty() {
            default.to_vec()
        } else {
            args.services.clone()
        }
    };
    report::machine_line(&setup);
    let all = args.scenario == Scenario::All;
    if all || args.scenario == Scenario::Convergence {
        for n in sizes(&[100, 1000]) {
            scenarios::convergence(&setup, n).await?;
        }
    }
    if all || args.scenario == Scenario::Requests {
        for n in sizes(&[1000]) {
            scenarios::requests(&setup, n).await?;
        }
    }
    if all || args.scenario == Scenario::Quiet {
        for n in sizes(&[1000]) {
            steady::quiet(&setup, n).await?;
        }
    }
    if all || args.scenario == Scenario::Memory {
        for n in sizes(&[1000, 5000]) {
            steady::memory(&setup, n).await?;
        }
    }
    if all || args.scenario == Scenario::Startup {
        for n in sizes(&[5000]) {
            steady::startup(&setup, n).await?;
        }
    }
    if all || args.scenario == Scenario::Render {
        for n in sizes(&[1000]) {
            steady::render(&setup, n).await?;
        }
    }
    if all || args.scenario == Scenario::Webhook {
        webhook::webhook(&setup, &args.rates, args.seconds, args.creates).await?;
    }
    Ok(())
}
