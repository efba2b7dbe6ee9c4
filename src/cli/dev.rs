//! `mmf dev`: watch the operator work with no cluster. Starts the in-memory test API server
//! (from `e2e/`, a test tool), installs the CRDs, runs the operator against it, applies the
//! shipped example and shows what it created, and leaves a kubeconfig for kubectl. The
//! operator's logs go to a file (`--verbose`: to stderr as well), so the terminal holds only
//! the summary; the default probe and webhook ports fall back to free ones when taken.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use kube::{Client, CustomResourceExt};
use serde_json::json;

use super::input::read_inputs;
use super::run::install_crypto_provider;
use crate::api::conditions::types;
use crate::api::{ENVIRONMENT_LABEL, MmfPlugin, MmfService};
use crate::controller::{self, RunOptions};
use crate::webhook::WebhookOptions;

/// Arguments of `mmf dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Manifests to apply once the operator runs.
    #[arg(
        short = 'f',
        long = "filename",
        default_value = "plugins/production_payment_service"
    )]
    pub paths: Vec<PathBuf>,
    /// Namespace to apply them into.
    #[arg(long, default_value = "payments")]
    pub namespace: String,
    /// Environment label of that namespace.
    #[arg(long = "env", default_value = "production")]
    pub environment: String,
    /// Directory of the environment config.
    #[arg(long, default_value = "config")]
    pub config_dir: PathBuf,
    /// Where to write the kubeconfig of the local API server.
    #[arg(long, default_value = "target/mmf-dev/kubeconfig")]
    pub kubeconfig: PathBuf,
    /// Port of the local API server (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Address of the operator's /healthz, /readyz and /metrics [default: 127.0.0.1:8081, or a
    /// free port when 8081 is taken].
    #[arg(long)]
    pub probe_addr: Option<SocketAddr>,
    /// Address of the admission webhook (the local API server calls it), or `none` [default:
    /// 127.0.0.1:9443, or a free port when 9443 is taken].
    #[arg(long)]
    pub webhook_addr: Option<String>,
    /// File the operator's logs go to (created or truncated).
    #[arg(long, default_value = "target/mmf-dev/operator.log")]
    pub log_file: PathBuf,
    /// Show the operator's logs on stderr too.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Stop once everything is Ready instead of running until Ctrl-C (for scripts and CI).
    #[arg(long)]
    pub exit_when_ready: bool,
}

/// Runs the local sandbox.
pub fn run(args: &DevArgs) -> anyhow::Result<ExitCode> {
    init_logging(&args.log_file, args.verbose)?;
    install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(dev(args))
}

/// The probe address used when `--probe-addr` is not given.
const DEFAULT_PROBE_ADDR: SocketAddr = SocketAddr::new(LOCALHOST, 8081);
/// The webhook address used when `--webhook-addr` is not given.
const DEFAULT_WEBHOOK_ADDR: SocketAddr = SocketAddr::new(LOCALHOST, 9443);
const LOCALHOST: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// Sends the logs to `path` (and to stderr when `verbose`), never interleaved with the summary.
fn init_logging(path: &Path, verbose: bool) -> anyhow::Result<()> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create directory", parent.display()))?;
    }
    let file = std::fs::File::create(path)
        .with_context(|| format!("{}: cannot create the log file", path.display()))?;
    let filter = super::run::log_filter();
    let to_file = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(Arc::new(file));
    let to_stderr = verbose.then(|| {
        tracing_subscriber::fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(to_file)
        .with(to_stderr)
        .try_init();
    Ok(())
}

/// `explicit`, else `default` when it is free, else a free port on the same address; the
/// second value says the default was taken.
fn listen_addr(
    explicit: Option<SocketAddr>,
    default: SocketAddr,
) -> anyhow::Result<(SocketAddr, bool)> {
    if let Some(addr) = explicit {
        return Ok((addr, false));
    }
    match TcpListener::bind(default) {
        Ok(_) => Ok((default, false)),
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
            // Released right away for the operator to bind: a race only with another process
            // picking the same free port in that instant.
            let free = TcpListener::bind(SocketAddr::new(default.ip(), 0))
                .and_then(|listener| listener.local_addr())
                .with_context(|| format!("finding a free port on {}", default.ip()))?;
            Ok((free, true))
        }
        Err(error) => Err(error).with_context(|| format!("cannot listen on {default}")),
    }
}

/// The line saying where something listens, and why not on its usual port.
fn listening_line(what: &str, url: &str, default: SocketAddr, moved: bool) -> String {
    if moved {
        format!("{what}: {url} (port {} is taken)", default.port())
    } else {
        format!("{what}: {url}")
    }
}

async fn dev(args: &DevArgs) -> anyhow::Result<ExitCode> {
    println!(
        "operator logs: {}{}",
        args.log_file.display(),
        if args.verbose {
            " (and stderr)"
        } else {
            " (--verbose shows them here)"
        }
    );
    let server = mmf_e2e::TestApiServer::builder()
        .port(args.port)
        .start()
        .await
        .context("starting the local test API server")?;
    if let Some(parent) = args.kubeconfig.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create", parent.display()))?;
    }
    server
        .write_kubeconfig(&args.kubeconfig)
        .with_context(|| format!("{}: cannot write the kubeconfig", args.kubeconfig.display()))?;
    let client = server
        .client()
        .await
        .context("connecting to the local API server")?;
    println!(
        "local API server (a test tool, not Kubernetes) at {}",
        server.url()
    );

    install_crds(&client).await?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": args.namespace, "labels": {ENVIRONMENT_LABEL: args.environment}}
    }))?;
    namespaces
        .patch(
            &args.namespace,
            &PatchParams::apply("mmf-dev").force(),
            &Patch::Apply(&namespace),
        )
        .await
        .context("creating the namespace")?;

    let (probe_addr, moved) = listen_addr(args.probe_addr, DEFAULT_PROBE_ADDR)?;
    println!(
        "{}",
        listening_line(
            "operator probes and metrics",
            &format!("http://{probe_addr}/metrics"),
            DEFAULT_PROBE_ADDR,
            moved
        )
    );
    let options = RunOptions {
        config_dir: args.config_dir.clone(),
        default_environment: "development".into(),
        probe_addr,
        namespace: "default".into(),
        leader_election: false,
        lease_name: "mmf-operator".into(),
        identity: "mmf-dev".into(),
        concurrency: 2,
        config_poll: Duration::from_secs(2),
    };
    let mut webhook_options = None;
    let webhook_on = args.webhook_addr.as_deref() != Some("none");
    if webhook_on {
        let explicit = match args.webhook_addr.as_deref() {
            Some(text) => Some(
                text.parse::<SocketAddr>()
                    .with_context(|| format!("--webhook-addr {text:?} is not HOST:PORT or none"))?,
            ),
            None => None,
        };
        let (addr, moved) = listen_addr(explicit, DEFAULT_WEBHOOK_ADDR)?;
        println!(
            "{}",
            listening_line(
                "admission webhook",
                &format!("https://{addr}/validate"),
                DEFAULT_WEBHOOK_ADDR,
                moved
            )
        );
        let mut webhook = WebhookOptions::new(addr, "default");
        webhook.webhook_url = Some(format!("https://{addr}/validate"));
        webhook_options = Some(webhook);
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let operator_client = client.clone();
    let operator = tokio::spawn(async move {
        controller::run(operator_client, options, webhook_options, async {
            let _ = stop_rx.await;
        })
        .await
    });

    let applied = apply_manifests(&client, &args.paths, &args.namespace).await?;
    println!(
        "applied {} object(s) to namespace {} (environment {})",
        applied.len(),
        args.namespace,
        args.environment
    );
    let ready = wait_ready(&client, &args.namespace, &applied).await;
    print_summary(&client, &args.namespace).await?;
    println!();
    println!(
        "kubectl --kubeconfig {} get mmf -n {}",
        args.kubeconfig.display(),
        args.namespace
    );
    println!(
        "kubectl --kubeconfig {} get deploy,cm,svc -n {}",
        args.kubeconfig.display(),
        args.namespace
    );
    if webhook_on {
        println!(
            "admission is on: an unsigned plugin applied to {} is refused with the reason",
            args.namespace
        );
    }
    if !ready {
        println!("not everything became Ready within 30 s; see the conditions above");
    }
    if !args.exit_when_ready {
        println!("operator running; press Ctrl-C to stop");
        controller::shutdown_signal().await;
    }
    let _ = stop_tx.send(());
    match operator.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => bail!("the operator stopped: {error}"),
        Err(error) => bail!("the operator task failed: {error}"),
    }
    server.shutdown().await;
    Ok(if ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn install_crds(client: &Client) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [
        MmfPlugin::crd(),
        MmfService::crd(),
        crate::api::MmfPluginRevision::crd(),
    ] {
        let name = crd.metadata.name.clone().unwrap_or_default();
        match crds.create(&PostParams::default(), &crd).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => return Err(error).with_context(|| format!("installing CRD {name}")),
        }
    }
    // The server starts serving a CRD's resources asynchronously.
    for _ in 0..50 {
        if Api::<MmfPlugin>::all(client.clone())
            .list(&Default::default())
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the CRDs were not served in time")
}

/// Applies every MmfPlugin and MmfService in `paths` (read like `mmf render` reads them);
/// returns `(kind, name)` of each.
async fn apply_manifests(
    client: &Client,
    paths: &[PathBuf],
    namespace: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let inputs = read_inputs(paths)?;
    let plugins = inputs
        .plugins
        .iter()
        .map(|(_, p)| ("MmfPlugin", "mmfplugins", serde_json::to_value(p)));
    let services = inputs
        .services
        .iter()
        .map(|(_, s)| ("MmfService", "mmfservices", serde_json::to_value(s)));
    let mut applied = Vec::new();
    for (kind, plural, value) in plugins.chain(services) {
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(crate::api::GROUP, crate::api::VERSION, kind),
            plural,
        );
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        let object: DynamicObject = serde_json::from_value(value?)?;
        let name = object.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &PatchParams::apply("mmf-dev").force(),
            &Patch::Apply(&object),
        )
        .await
        .with_context(|| format!("applying {kind} {name}"))?;
        applied.push((kind.to_owned(), name));
    }
    Ok(applied)
}

async fn wait_ready(client: &Client, namespace: &str, objects: &[(String, String)]) -> bool {
    let plugins: Api<MmfPlugin> = Api::namespaced(client.clone(), namespace);
    let services: Api<MmfService> = Api::namespaced(client.clone(), namespace);
    let is_ready =
        |conditions: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>| {
            conditions.is_some_and(|c| {
                c.iter()
                    .any(|c| c.type_ == types::READY && c.status == "True")
            })
        };
    for _ in 0..150 {
        let mut all = true;
        for (kind, name) in objects {
            let ready = match kind.as_str() {
                "MmfPlugin" => plugins
                    .get_opt(name)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|p| is_ready(p.status.as_ref().map(|s| &s.conditions))),
                _ => services
                    .get_opt(name)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|s| is_ready(s.status.as_ref().map(|s| &s.conditions))),
            };
            all &= ready;
        }
        if all {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

async fn print_summary(client: &Client, namespace: &str) -> anyhow::Result<()> {
    let plugins: Api<MmfPlugin> = Api::namespaced(client.clone(), namespace);
    let services: Api<MmfService> = Api::namespaced(client.clone(), namespace);
    let condition = |conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
                     type_: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == type_)
            .map(|c| format!("{}={} ({})", c.type_, c.status, c.reason))
            .unwrap_or_else(|| format!("{type_}=?"))
    };
    println!();
    for plugin in plugins.list(&Default::default()).await?.items {
        let status = plugin.status.clone().unwrap_or_default();
        println!(
            "MmfPlugin/{} {}",
            plugin.metadata.name.clone().unwrap_or_default(),
            plugin.spec.version
        );
        for type_ in [
            types::READY,
            types::SIGNATURE_VERIFIED,
            types::CONFIG_VALID,
            types::POLICY_COMPLIANT,
        ] {
            println!("  {}", condition(&status.conditions, type_));
        }
    }
    for service in services.list(&Default::default()).await?.items {
        let status = service.status.clone().unwrap_or_default();
        let name = service.metadata.name.clone().unwrap_or_default();
        println!(
            "MmfService/{name} replicas {} plugins [{}]",
            status.replica_summary.as_deref().unwrap_or("-"),
            status.loaded_plugins.as_deref().unwrap_or("")
        );
        for type_ in [
            types::READY,
            types::PLUGINS_RESOLVED,
            types::POLICY_COMPLIANT,
            types::AVAILABLE,
        ] {
            println!("  {}", condition(&status.conditions, type_));
        }
        println!("  owns Deployment/{name}, ConfigMap/{name}-mmf, Service/{name}");
    }
    Ok(())
}
