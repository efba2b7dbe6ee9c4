//! The audit trail's shell: records built by [`crate::core::audit`] are emitted as tracing
//! events on the target `mmf::audit` and written, one JSON object per line, by a sink of their
//! own, apart from the operational logs (`mmf run --audit-log`, README "Audit trail").
//!
//! Operational logs go to stderr and never carry the audit target; records go to stdout (the
//! default) or to a file, and are written whatever `RUST_LOG` says.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::Context;

pub use crate::core::audit::{AuditRecord, TARGET};

/// Labels of `mmf_audit_records_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

/// Emits audit records and counts them; cheap to clone (a shared counter).
#[derive(Clone, Debug, Default)]
pub struct AuditLog {
    records: Family<OperationLabels, Counter>,
}

impl AuditLog {
    /// Registers `mmf_audit_records_total{operation}` in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "mmf_audit_records",
            "Audit records written, per operation",
            self.records.clone(),
        );
    }

    /// Emits one record on [`TARGET`] and counts it.
    pub fn write(&self, record: &AuditRecord) {
        match serde_json::to_string(record) {
            Ok(line) => {
                tracing::info!(target: "mmf::audit", record = %line);
                self.records
                    .get_or_create(&OperationLabels {
                        operation: record.operation().to_owned(),
                    })
                    .inc();
            }
            Err(error) => {
                tracing::error!(%error, operation = record.operation(), "cannot encode an audit record");
            }
        }
    }
}

/// Where audit records are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditSink {
    /// Standard output (operational logs are on stderr).
    Stdout,
    /// Appended to a file.
    File(PathBuf),
}

impl AuditSink {
    /// `-` is standard output; anything else a file path.
    pub fn parse(value: &str) -> AuditSink {
        match value {
            "-" => AuditSink::Stdout,
            path => AuditSink::File(PathBuf::from(path)),
        }
    }
}

/// Why the audit sink cannot start.
#[derive(Debug, thiserror::Error)]
#[error("opening the audit log {path}: {source}")]
pub struct SinkError {
    path: String,
    #[source]
    source: std::io::Error,
}

/// The tracing layer that writes every `mmf::audit` event's record as one line to `sink`, and
/// only those.
pub fn layer<S>(sink: &AuditSink) -> Result<impl Layer<S>, SinkError>
where
    S: Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    let writer: Box<dyn Write + Send> = match sink {
        AuditSink::Stdout => Box::new(std::io::stdout()),
        AuditSink::File(path) => Box::new(open(path)?),
    };
    let only_audit = Targets::new().with_target(TARGET, LevelFilter::INFO);
    Ok(RecordWriter {
        writer: Mutex::new(writer),
    }
    .with_filter(only_audit))
}

fn open(path: &Path) -> Result<std::fs::File, SinkError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| SinkError {
            path: path.display().to_string(),
            source,
        })
}

struct RecordWriter {
    writer: Mutex<Box<dyn Write + Send>>,
}

/// Picks the `record` field out of an event.
#[derive(Default)]
struct RecordField(Option<String>);

impl Visit for RecordField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "record" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "record" {
            // `%line` arrives as Display through Debug: the JSON text itself.
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl<S: Subscriber> Layer<S> for RecordWriter {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut field = RecordField::default();
        event.record(&mut field);
        let Some(line) = field.0 else { return };
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        // One write per record, so concurrent records never interleave; a failed write is
        // reported on the operational log (which this layer never receives).
        let written = writer
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| writer.flush());
        if let Err(error) = written {
            eprintln!("mmf: cannot write an audit record: {error}");
        }
    }
}
