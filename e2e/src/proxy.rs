//! A loopback TCP proxy that can cut the connections through it, for network faults against a
//! real API server (which, unlike the in-memory one, cannot cut one client off by itself).
//!
//! A process given a kubeconfig pointing at [`TcpProxy::addr`] reaches the API server through
//! it; TLS passes through untouched (the server's certificate names 127.0.0.1, whatever the
//! port). [`TcpProxy::cut`] refuses or black-holes every connection, open or new, as the test
//! server's listener cuts do, and [`TcpProxy::heal`] lets new connections through again.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

use crate::network::{Cut, Network};

/// The one client name the proxy keys its cut by in [`Network`].
const CLIENT: &str = "proxy";

/// A running proxy to one upstream address; stops (closing every connection) when dropped.
pub struct TcpProxy {
    addr: SocketAddr,
    network: std::sync::Arc<Network>,
    /// Its own runtime, so it serves whatever runtime (or none) the test uses.
    runtime: Option<tokio::runtime::Runtime>,
}

impl TcpProxy {
    /// Listens on a free 127.0.0.1 port and forwards every connection to `upstream`.
    pub fn start(upstream: SocketAddr) -> std::io::Result<TcpProxy> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tcp-proxy")
            .enable_all()
            .build()?;
        let listener = runtime.block_on(TcpListener::bind(("127.0.0.1", 0)))?;
        let addr = listener.local_addr()?;
        let network = std::sync::Arc::new(Network::default());
        runtime.spawn(accept(listener, upstream, network.clone()));
        Ok(TcpProxy {
            addr,
            network,
            runtime: Some(runtime),
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts every connection, open and new: [`Cut::Refuse`] closes them, [`Cut::BlackHole`]
    /// keeps them open and silent (as behind a dead route) until [`TcpProxy::heal`] closes them.
    pub fn cut(&self, how: Cut) {
        self.network.cut(CLIENT, how);
    }

    /// Lets new connections through again (the black-holed ones are closed).
    pub fn heal(&self) {
        self.network.heal(CLIENT);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn accept(listener: TcpListener, upstream: SocketAddr, network: std::sync::Arc<Network>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        tokio::spawn(forward(client, upstream, network.clone()));
    }
}

/// Copies both ways until either side closes or the proxy is cut.
async fn forward(mut client: TcpStream, upstream: SocketAddr, network: std::sync::Arc<Network>) {
    match network.cut_of(CLIENT) {
        Some(Cut::Refuse) => return,
        Some(Cut::BlackHole) => {
            network.until_healed(CLIENT).await;
            return;
        }
        None => {}
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let cut = tokio::select! {
        biased;
        how = network.until_cut(CLIENT) => Some(how),
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => None,
    };
    // Both sockets stay open (and unread) while black-holed, and close on return.
    if cut == Some(Cut::BlackHole) {
        network.until_healed(CLIENT).await;
    }
}
