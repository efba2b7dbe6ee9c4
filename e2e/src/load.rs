//! Open-loop HTTPS load for latency benchmarks (the webhook, a bare TLS echo beside it).
//!
//! Requests are sent on a fixed schedule whatever the server does, and each latency is measured
//! from its scheduled send time, so a server that stalls cannot hide its queue (coordinated
//! omission). Loopback only: the caller passes a 127.0.0.1 address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::sync::{Mutex, Semaphore};

use crate::Error;

/// Keep-alive HTTP/1.1 connections a load keeps open (one request in flight on each).
pub const CONNECTIONS: usize = 16;

/// What a load measured: latencies sorted ascending, and the requests that failed.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// One per request, from its scheduled send time to the end of its response body.
    pub latencies: Vec<Duration>,
    /// Requests that got no 2xx response.
    pub failures: usize,
}

impl Measured {
    /// The `p` quantile (0 < p <= 1), nearest-rank; zero when nothing was measured.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = (self.latencies.len() as f64 * p).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }
}

/// One HTTPS load: where, what, how fast and how long.
#[derive(Debug, Clone)]
pub struct Load<'a> {
    /// The server (127.0.0.1).
    pub addr: SocketAddr,
    /// PEM CA bundle that signed the server's certificate (verification stays on).
    pub ca_pem: &'a str,
    /// Request path, for example `/validate`.
    pub path: &'static str,
    /// The POST body, sent with `content-type: application/json`.
    pub body: Bytes,
    /// Requests per second.
    pub rate: u64,
    /// For how long.
    pub duration: Duration,
}

fn tls_error(error: impl std::fmt::Display) -> Error {
    Error::Tls(error.to_string())
}

async fn connect(addr: SocketAddr, ca_pem: &str) -> Result<SendRequest<Full<Bytes>>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.map_err(tls_error)?).map_err(tls_error)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(tls_error)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(Error::Connect)?;
    tcp.set_nodelay(true).map_err(Error::Connect)?;
    let name = ServerName::try_from("127.0.0.1").map_err(tls_error)?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(tls_error)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(tls_error)?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Runs `load`: one request every `1/rate` s on [`CONNECTIONS`] connections.
pub async fn open_loop(load: &Load<'_>) -> Result<Measured, Error> {
    let mut senders = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        senders.push(connect(load.addr, load.ca_pem).await?);
    }
    let pool = Arc::new(Mutex::new(senders));
    let permits = Arc::new(Semaphore::new(CONNECTIONS));
    let total = (load.rate as f64 * load.duration.as_secs_f64()).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / load.rate.max(1) as f64);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled).await;
        let (pool, permits, body, path) =
            (pool.clone(), permits.clone(), load.body.clone(), load.path);
        tasks.push(tokio::spawn(async move {
            let Ok(_permit) = permits.acquire().await else {
                return (scheduled.elapsed(), false);
            };
            let Some(mut sender) = pool.lock().await.pop() else {
                return (scheduled.elapsed(), false);
            };
            let ok = match hyper::Request::post(path)
                .header("host", "127.0.0.1")
                .header("content-type", "application/json")
                .body(Full::new(body))
            {
                Ok(request) => match sender.send_request(request).await {
                    Ok(response) => {
                        let status = response.status();
                        response.into_body().collect().await.is_ok() && status.is_success()
                    }
                    Err(_) => false,
                },
                Err(_) => false,
            };
            let latency = scheduled.elapsed();
            pool.lock().await.push(sender);
            (latency, ok)
        }));
    }
    let mut measured = Measured::default();
    for task in tasks {
        match task.await {
            Ok((latency, ok)) => {
                measured.latencies.push(latency);
                measured.failures += usize::from(!ok);
            }
            Err(_) => measured.failures += 1,
        }
    }
    measured.latencies.sort();
    Ok(measured)
}

/// A bare HTTPS server answering every POST with its own body: the floor a webhook's latency
/// is compared with (TLS + HTTP/1.1 + one copy of the body, no work). Stops when dropped.
pub struct TlsEcho {
    /// Where it listens (127.0.0.1, a free port).
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsEcho {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsEcho {
    /// Starts it with the given serving certificate (PEM chain and PKCS#8 key).
    pub async fn start(cert_pem: &str, key_pem: &str) -> Result<TlsEcho, Error> {
        let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(tls_error)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(tls_error)?;
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(tls_error)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(Error::Bind)?;
        let addr = listener.local_addr().map_err(Error::Bind)?;
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let echo = hyper::service::service_fn(
                        |request: hyper::Request<hyper::body::Incoming>| async move {
                            let body = request.into_body().collect().await?.to_bytes();
                            Ok::<_, hyper::Error>(hyper::Response::new(Full::new(body)))
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), echo)
                        .await;
                });
            }
        });
        Ok(TlsEcho { addr, task })
    }
}
