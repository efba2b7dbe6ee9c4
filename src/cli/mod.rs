//! The `mmf` command line: a thin shell that reads files, calls the core and prints results.
//! Errors go to stderr, one line per problem.

mod check;
mod crds;
#[cfg(feature = "dev")]
mod dev;
mod distribution;
mod findings;
mod generate;
mod input;
mod keys;
mod plugin;
mod render;
mod revisions;
mod run;
mod scaffold;

pub use crds::crd_documents;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Marty Microservices Framework plugins on Kubernetes: render, check, sign and verify offline
/// exactly what the operator applies in a cluster.
#[derive(Debug, Parser)]
#[command(name = "mmf", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the operator: reconcile MmfPlugins and MmfServices, serve probes, metrics and the
    /// admission webhook.
    Run(Box<run::RunArgs>),
    /// Try the operator with no cluster: a local test API server, the operator, and the shipped
    /// example applied to it.
    #[cfg(feature = "dev")]
    Dev(dev::DevArgs),
    /// Print the Kubernetes objects the operator would apply for the given MmfServices.
    Render(render::RenderArgs),
    /// Check MmfPlugins and MmfServices against an environment policy (exit 1 on violations).
    Check(check::CheckArgs),
    /// Scaffold new manifests.
    #[command(subcommand)]
    Generate(generate::GenerateCommand),
    /// Print the CustomResourceDefinitions (the same documents as crds/*.yaml).
    Crds(crds::CrdsArgs),
    /// Generate an ECDSA P-256 or Ed25519 signing key pair (PKCS#8 / SPKI PEM).
    Keygen(keys::KeygenArgs),
    /// Print the exact bytes a plugin signature covers (RFC 8785 canonical JSON).
    Payload(keys::PayloadArgs),
    /// Sign a plugin manifest in place, keeping the rest of the file as it is.
    Sign(keys::SignArgs),
    /// Verify a plugin's signature against an environment's trusted keys.
    Verify(keys::VerifyArgs),
    /// Plugin packages: build the MmfPlugin manifest from a package's files.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// List a plugin's revisions in a cluster: version, verdict, digest, age, services using each.
    History(revisions::HistoryArgs),
    /// Roll a service back to one version of a plugin: writes the pin `version: "=VERSION"`.
    Rollback(revisions::RollbackArgs),
    /// Print the version, the git revision and the build date.
    Version,
    /// Print a shell completion script (bash, zsh, fish, ...); see the README for where to put it.
    Completion(distribution::CompletionArgs),
    /// Print the man page, or write all of them (for packagers).
    #[command(hide = true)]
    Man(distribution::ManArgs),
}

/// Parses the command line. Installed as `kubectl-mmf`, the binary is a kubectl plugin
/// (`kubectl mmf render ...`), and its usage and error messages say so.
fn parse() -> Cli {
    let mut command = Cli::command();
    let invoked_as = std::env::args_os().next().map(std::path::PathBuf::from);
    let plugin = invoked_as
        .as_deref()
        .and_then(std::path::Path::file_name)
        .is_some_and(|name| name.to_string_lossy().starts_with("kubectl-"));
    if plugin {
        command = command.bin_name("kubectl mmf");
    }
    let matches = command.get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = parse();
    let result = match cli.command {
        Command::Run(args) => run::run(&args),
        #[cfg(feature = "dev")]
        Command::Dev(args) => dev::run(&args),
        Command::Render(args) => render::run(&args),
        Command::Check(args) => check::run(&args),
        Command::Generate(command) => generate::run(&command),
        Command::Crds(args) => crds::run(&args),
        Command::Keygen(args) => keys::keygen(&args),
        Command::Payload(args) => keys::payload(&args),
        Command::Sign(args) => keys::sign(&args),
        Command::Verify(args) => keys::verify(&args),
        Command::Plugin(command) => plugin::run(&command),
        Command::History(args) => revisions::history(&args),
        Command::Rollback(args) => revisions::rollback(&args),
        Command::Version => distribution::version(),
        Command::Completion(args) => distribution::completion(&args),
        Command::Man(args) => distribution::man(&args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", one_line(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, each cause once: libraries (thiserror's
/// `"...: {0}"` with `#[source]`) often print their source and chain it too, so a cause whose
/// text the line already holds is left out.
pub fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod one_line_tests {
    use super::one_line;

    #[derive(Debug, thiserror::Error)]
    #[error("Kube error: {0}")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("ApiError: namespaces \"x\" not found")]
    struct Inner;

    #[test]
    fn a_cause_already_printed_is_not_repeated() {
        let error = anyhow::Error::new(Outer(Inner)).context("joining");
        assert_eq!(
            one_line(error.as_ref()),
            "joining: Kube error: ApiError: namespaces \"x\" not found"
        );
    }
}

#[cfg(test)]
mod definition_tests {
    use clap::CommandFactory;

    #[test]
    fn every_subcommand_has_unique_argument_names() {
        super::Cli::command().debug_assert();
    }
}
