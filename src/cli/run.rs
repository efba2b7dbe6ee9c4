//! `mmf run`: the operator process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use crate::audit::{self, AuditSink, SinkError};
use crate::controller::{self, RunOptions};
use crate::webhook::certs::Lifetimes;
use crate::webhook::{self, TlsSource, WebhookOptions};

/// Log line format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// Arguments of `mmf run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Directory of base.yaml, the environment files and plugins/ (reloaded when it changes).
    #[arg(long, env = "MMF_CONFIG_DIR", default_value = "config")]
    pub config_dir: PathBuf,
    /// Environment for namespaces without the `mmf.marty.dev/environment` label.
    #[arg(long, env = "MMF_ENVIRONMENT", default_value = "development")]
    pub environment: String,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:8081")]
    pub probe_addr: SocketAddr,
    /// Address of the admission webhook (HTTPS), or `none` to disable it.
    #[arg(long, default_value = "0.0.0.0:9443")]
    pub webhook_addr: String,
    /// Create or update the ValidatingWebhookConfiguration to call this URL (local runs, tests).
    /// Without it the operator only keeps the chart's configuration's caBundle current.
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// Another DNS name or IP for the self-managed serving certificate (repeatable): for a
    /// configuration of your own that calls the webhook by URL, e.g. an operator outside the
    /// cluster keeping a chart-installed configuration's caBundle.
    #[arg(long = "webhook-cert-host")]
    pub webhook_cert_hosts: Vec<String>,
    /// Serve the webhook with certificate files (tls.crt, tls.key) from this directory, e.g. from
    /// cert-manager, instead of the self-managed CA.
    #[arg(long)]
    pub webhook_cert_dir: Option<PathBuf>,
    /// Secret (in the operator namespace) holding the self-managed CA and serving certificate.
    #[arg(long, default_value = webhook::DEFAULT_SECRET_NAME)]
    pub webhook_secret: String,
    /// How long a self-managed webhook CA is valid (`90d`, `12h`, `30m`, `45s`). It is replaced
    /// when a third of its life is left, the old one staying trusted until it expires.
    #[arg(long, default_value = "1825d", value_parser = parse_duration)]
    pub webhook_ca_validity: Duration,
    /// How long a self-managed serving certificate is valid; re-issued when a third is left.
    /// At most a third of --webhook-ca-validity.
    #[arg(long = "webhook-cert-validity", default_value = "365d", value_parser = parse_duration)]
    pub webhook_cert_validity: Duration,
    /// How often the webhook certificates are checked and `caBundle` is re-published (a change
    /// of the ValidatingWebhookConfiguration triggers a check at once).
    #[arg(long = "webhook-cert-check-interval", default_value = "60s", value_parser = parse_duration)]
    pub webhook_cert_check_interval: Duration,
    /// Service in front of the webhook (the serving certificate's DNS names).
    #[arg(long, default_value = webhook::DEFAULT_SERVICE_NAME)]
    pub webhook_service: String,
    /// Name of the ValidatingWebhookConfiguration to keep current.
    #[arg(long, default_value = webhook::CONFIGURATION_NAME)]
    pub webhook_configuration: String,
    /// Environments whose namespaces get `failurePolicy: Fail`.
    #[arg(long, value_delimiter = ',', default_value = "production")]
    pub fail_closed_environments: Vec<String>,
    /// The operator's namespace (Lease, webhook Secret).
    #[arg(long, env = "POD_NAMESPACE", default_value = "mmf-system")]
    pub namespace: String,
    /// Elect a leader among replicas (disable only for a single local process).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Lease used for the election.
    #[arg(long, default_value = "mmf-operator")]
    pub lease_name: String,
    /// Reconciliations in parallel per controller.
    #[arg(long, default_value_t = 4)]
    pub concurrency: u16,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Where audit records go, one JSON object per line: `-` for standard output (operational
    /// logs are on stderr), or a file to append to. Written whatever RUST_LOG says.
    #[arg(long, env = "MMF_AUDIT_LOG", default_value = "-")]
    pub audit_log: String,
}

/// `RUST_LOG`, default `info`. The version solver logs every step of every resolution at
/// info, which would drown the operator's own lines: it is at warn unless `RUST_LOG` names it.
pub fn log_filter() -> tracing_subscriber::EnvFilter {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let names_solver = from_env.as_deref().is_some_and(|v| v.contains("pubgrub"));
    let filter = from_env
        .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    match "pubgrub=warn".parse() {
        Ok(quiet) if !names_solver => filter.add_directive(quiet),
        _ => filter,
    }
}

/// Sets up logging (`RUST_LOG`, default info) once. With `audit`, audit records (target
/// `mmf::audit`) are written only there, whatever `RUST_LOG` says; without, they are ordinary
/// log lines.
pub fn init_logging(format: LogFormat, audit: Option<&AuditSink>) -> Result<(), SinkError> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let mut filter = log_filter();
    let audit_layer = match audit {
        Some(sink) => {
            if let Ok(off) = format!("{}=off", audit::TARGET).parse() {
                filter = filter.add_directive(off);
            }
            Some(audit::layer(sink)?)
        }
        None => None,
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Json => logs.json().with_filter(filter).boxed(),
        LogFormat::Text => logs.with_filter(filter).boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(audit_layer)
        .try_init();
    Ok(())
}

/// kube, the webhook and the test server all use rustls with ring; install it as the process
/// default before any TLS config is built.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl RunArgs {
    /// The controller settings these flags describe.
    pub fn options(&self) -> RunOptions {
        RunOptions {
            config_dir: self.config_dir.clone(),
            default_environment: self.environment.clone(),
            probe_addr: self.probe_addr,
            namespace: self.namespace.clone(),
            leader_election: self.leader_election,
            lease_name: self.lease_name.clone(),
            identity: controller::default_identity(),
            concurrency: self.concurrency.max(1),
            config_poll: Duration::from_secs(10),
        }
    }

    /// The webhook settings, unless `--webhook-addr none`.
    pub fn webhook_options(&self) -> anyhow::Result<Option<WebhookOptions>> {
        if self.webhook_addr == "none" {
            return Ok(None);
        }
        let addr: SocketAddr = self.webhook_addr.parse().with_context(|| {
            format!(
                "--webhook-addr {:?} is not HOST:PORT or none",
                self.webhook_addr
            )
        })?;
        let lifetimes = Lifetimes::new(
            time_duration(self.webhook_ca_validity),
            time_duration(self.webhook_cert_validity),
            time_duration(self.webhook_cert_check_interval),
        )?;
        Ok(Some(WebhookOptions {
            addr,
            tls: match &self.webhook_cert_dir {
                Some(cert_dir) => TlsSource::Files {
                    cert_dir: cert_dir.clone(),
                },
                None => TlsSource::SelfManaged,
            },
            webhook_url: self.webhook_url.clone(),
            cert_hosts: self.webhook_cert_hosts.clone(),
            configuration_name: self.webhook_configuration.clone(),
            namespace: self.namespace.clone(),
            service_name: self.webhook_service.clone(),
            secret_name: self.webhook_secret.clone(),
            fail_closed_environments: self.fail_closed_environments.clone(),
            unlabelled_fail_closed: self.fail_closed_environments.contains(&self.environment),
            lifetimes,
            check_interval: self.webhook_cert_check_interval,
        }))
    }
}

/// A duration flag: a whole number and one unit of `s`, `m`, `h` or `d`, at least one second.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let seconds_per: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?} is not a number followed by s, m, h or d")),
    };
    let seconds = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(seconds_per))
        .filter(|&seconds| seconds > 0 && seconds <= 100 * 365 * 86_400)
        .ok_or_else(|| format!("{text:?} is not between 1s and 36500d"))?;
    Ok(Duration::from_secs(seconds))
}

/// The same length as a `time` duration (flags are bounded to a century, so it always fits).
fn time_duration(duration: Duration) -> time::Duration {
    time::Duration::seconds(i64::try_from(duration.as_secs()).unwrap_or(i64::MAX))
}

/// The `User-Agent` of every request the operator sends.
pub const USER_AGENT: &str = concat!("mmf-operator/", env!("CARGO_PKG_VERSION"));

/// Runs the operator until SIGTERM.
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    init_logging(args.log_format, Some(&AuditSink::parse(&args.audit_log)))?;
    install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let mut config = kube::Config::infer()
            .await
            .context("reading the cluster config (KUBECONFIG or in-cluster config)")?;
        config.headers.push((
            axum::http::header::USER_AGENT,
            axum::http::HeaderValue::from_static(USER_AGENT),
        ));
        let client = kube::Client::try_from(config)
            .context("connecting to the cluster (KUBECONFIG or in-cluster config)")?;
        controller::run(
            client,
            args.options(),
            args.webhook_options()?,
            controller::shutdown_signal(),
        )
        .await?;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_a_whole_number_and_one_unit() {
        assert_eq!(parse_duration("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(
            parse_duration("1825d"),
            Ok(Duration::from_secs(157_680_000))
        );
        assert_eq!(
            parse_duration("1.5h"),
            Err(r#""1.5h" is not a number followed by s, m, h or d"#.to_owned())
        );
        assert_eq!(
            parse_duration("90"),
            Err(r#""90" is not a number followed by s, m, h or d"#.to_owned())
        );
        assert_eq!(
            parse_duration("0s"),
            Err(r#""0s" is not between 1s and 36500d"#.to_owned())
        );
        assert_eq!(
            parse_duration("36501d"),
            Err(r#""36501d" is not between 1s and 36500d"#.to_owned())
        );
    }

    #[test]
    fn the_default_certificate_flags_are_the_documented_lifetimes() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            run: RunArgs,
        }
        let cli = Cli::parse_from(["mmf"]);
        let webhook = cli.run.webhook_options().unwrap().unwrap();
        assert_eq!(webhook.lifetimes, Lifetimes::default());
        assert_eq!(webhook.check_interval, webhook::MAINTENANCE_INTERVAL);
        let cli = Cli::parse_from(["mmf", "--webhook-ca-validity", "60s"]);
        assert_eq!(
            cli.run.webhook_options().unwrap_err().to_string(),
            "--webhook-ca-validity 1m must be at least three times --webhook-cert-validity 365d: a serving certificate must fit in the last third of its CA's life, when the next CA takes over"
        );
    }
}
