//! `test-apiserver`: the mmf-e2e in-memory Kubernetes API server as a standalone process, for
//! manual use and scripts. Test tool only, not a product.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use mmf_e2e::{Readiness, TestApiServer};

#[derive(Parser, Debug)]
#[command(
    name = "test-apiserver",
    about = "In-memory Kubernetes API server for tests (not for production)"
)]
struct Args {
    /// Loopback port; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where to write the kubeconfig once the server accepts requests.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long)]
    insecure_http: bool,
    /// Milliseconds until simulated Deployments report ready; negative = never.
    #[arg(long, default_value_t = 200, allow_negative_numbers = true)]
    deployment_ready_ms: i64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let readiness = if args.deployment_ready_ms < 0 {
        Readiness::Never
    } else {
        Readiness::After(Duration::from_millis(args.deployment_ready_ms as u64))
    };
    let server = TestApiServer::builder()
        .port(args.port)
        .tls(!args.insecure_http)
        .deployment_readiness(readiness)
        .start()
        .await?;
    if let Some(path) = &args.kubeconfig {
        server.write_kubeconfig(path)?;
    }
    println!("test-apiserver listening on {}", server.url());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    server.shutdown().await;
    Ok(())
}
