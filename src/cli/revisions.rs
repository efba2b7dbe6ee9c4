//! `mmf history` and `mmf rollback` (as a kubectl plugin: `kubectl mmf history PLUGIN`,
//! `kubectl mmf rollback SERVICE PLUGIN VERSION`): the revisions of a plugin in a cluster, and
//! the pin that rolls a service back to one of them.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::api::{FIELD_MANAGER, MmfPluginRevision, MmfService, revision_name};
use crate::core::history::{history_rows, history_table, rollback_patch};

/// Where the cluster is (kubectl's own flags, so `kubectl mmf` reads like kubectl).
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Namespace (default: the kubeconfig context's namespace, else `default`).
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long)]
    pub context: Option<String>,
}

/// Arguments of `mmf history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// MmfPlugin name.
    pub plugin: String,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Arguments of `mmf rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// MmfService name.
    pub service: String,
    /// MmfPlugin name.
    pub plugin: String,
    /// The exact version to pin (`1.0.0`; written as `version: "=1.0.0"`).
    #[arg(id = "plugin_version", value_name = "VERSION")]
    pub version: String,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

async fn connect(args: &ClusterArgs) -> anyhow::Result<(kube::Client, String)> {
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .with_context(|| format!("{}: cannot read the kubeconfig", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options).await
        }
        None => kube::Config::from_kubeconfig(&options).await,
    }
    .context("reading the kubeconfig ($KUBECONFIG or ~/.kube/config)")?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = kube::Client::try_from(config).context("connecting to the cluster")?;
    Ok((client, namespace))
}

fn block_on<T>(future: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    super::run::install_crypto_provider();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(future)
}

/// Prints the plugin's revisions: version, verdict, digest, age and the services using each.
pub fn history(args: &HistoryArgs) -> anyhow::Result<ExitCode> {
    block_on(async {
        let (client, namespace) = connect(&args.cluster).await?;
        let revisions: Api<MmfPluginRevision> = Api::namespaced(client.clone(), &namespace);
        let services: Api<MmfService> = Api::namespaced(client, &namespace);
        let revisions = revisions
            .list(&ListParams::default())
            .await
            .with_context(|| format!("listing MmfPluginRevisions in namespace {namespace}"))?
            .items;
        let services = services
            .list(&ListParams::default())
            .await
            .with_context(|| format!("listing MmfServices in namespace {namespace}"))?
            .items;
        let rows = history_rows(&args.plugin, &revisions, &services, Timestamp::now());
        if rows.is_empty() {
            eprintln!(
                "no revisions of plugin {:?} in namespace {namespace}: the operator records one when it first sees each version",
                args.plugin
            );
            return Ok(ExitCode::FAILURE);
        }
        print!("{}", history_table(&rows));
        Ok(ExitCode::SUCCESS)
    })
}

/// Pins the service's plugin to one version with a JSON patch (what a GitOps user writes in
/// Git instead: `version: "=1.0.0"`).
pub fn rollback(args: &RollbackArgs) -> anyhow::Result<ExitCode> {
    block_on(async {
        let (client, namespace) = connect(&args.cluster).await?;
        let services: Api<MmfService> = Api::namespaced(client.clone(), &namespace);
        let service = services
            .get(&args.service)
            .await
            .with_context(|| format!("reading MmfService {namespace}/{}", args.service))?;
        let patch = rollback_patch(&service, &args.plugin, &args.version)?;
        let version = args.version.trim_start_matches('=');
        let revisions: Api<MmfPluginRevision> = Api::namespaced(client, &namespace);
        let revision = revision_name(&args.plugin, version);
        if revisions
            .get_opt(&revision)
            .await
            .with_context(|| format!("reading MmfPluginRevision {namespace}/{revision}"))?
            .is_none()
        {
            eprintln!(
                "warning: MmfPluginRevision {namespace}/{revision} does not exist (see `kubectl mmf history {}`); the service stays unresolved until it does",
                args.plugin
            );
        }
        let patch: json_patch::Patch =
            serde_json::from_value(patch).context("building the JSON patch")?;
        services
            .patch(
                &args.service,
                &PatchParams {
                    field_manager: Some(format!("{FIELD_MANAGER}-rollback")),
                    ..PatchParams::default()
                },
                &Patch::<()>::Json(patch),
            )
            .await
            .with_context(|| format!("patching MmfService {namespace}/{}", args.service))?;
        println!(
            "mmfservice/{} pinned {} to ={version}",
            args.service, args.plugin
        );
        Ok(ExitCode::SUCCESS)
    })
}
