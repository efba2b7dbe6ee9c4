//! The loopback TCP proxy's cuts behave as the test server's listener cuts do: refused
//! connections close, black-holed ones stay open and silent until healed, then close.
#![allow(clippy::unwrap_used)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use mmf_e2e::Cut;
use mmf_e2e::proxy::TcpProxy;

/// An echo server on its own thread.
fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

fn connect(proxy: &TcpProxy) -> TcpStream {
    let stream = TcpStream::connect(proxy.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    stream
}

/// What one round trip of `ping` gives: Ok(echo), or the read's error kind (`UnexpectedEof`
/// for a closed connection, `WouldBlock`/`TimedOut` for silence).
fn round_trip(stream: &mut TcpStream) -> Result<Vec<u8>, ErrorKind> {
    stream.write_all(b"ping").map_err(|e| e.kind())?;
    let mut buf = [0u8; 4];
    match stream.read(&mut buf) {
        Ok(0) => Err(ErrorKind::UnexpectedEof),
        Ok(n) => Ok(buf[..n].to_vec()),
        Err(e) => Err(e.kind()),
    }
}

fn is_silent(result: &Result<Vec<u8>, ErrorKind>) -> bool {
    matches!(result, Err(ErrorKind::WouldBlock | ErrorKind::TimedOut))
}

fn is_closed(result: &Result<Vec<u8>, ErrorKind>) -> bool {
    matches!(
        result,
        Err(ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe)
    )
}

#[test]
fn a_black_holed_proxy_keeps_connections_open_and_silent_and_closes_them_when_healed() {
    let proxy = TcpProxy::start(echo_server()).unwrap();
    let mut open = connect(&proxy);
    assert_eq!(round_trip(&mut open), Ok(b"ping".to_vec()));

    proxy.cut(Cut::BlackHole);
    std::thread::sleep(Duration::from_millis(100));
    let silent = round_trip(&mut open);
    assert!(is_silent(&silent), "{silent:?}");
    let mut new = connect(&proxy);
    let silent = round_trip(&mut new);
    assert!(is_silent(&silent), "{silent:?}");

    proxy.heal();
    std::thread::sleep(Duration::from_millis(100));
    for stream in [&mut open, &mut new] {
        let closed = round_trip(stream);
        assert!(is_closed(&closed), "{closed:?}");
    }
    assert_eq!(round_trip(&mut connect(&proxy)), Ok(b"ping".to_vec()));
}

#[test]
fn a_refusing_proxy_closes_open_and_new_connections() {
    let proxy = TcpProxy::start(echo_server()).unwrap();
    let mut open = connect(&proxy);
    assert_eq!(round_trip(&mut open), Ok(b"ping".to_vec()));

    proxy.cut(Cut::Refuse);
    std::thread::sleep(Duration::from_millis(100));
    let closed = round_trip(&mut open);
    assert!(is_closed(&closed), "{closed:?}");
    let closed = round_trip(&mut connect(&proxy));
    assert!(is_closed(&closed), "{closed:?}");

    proxy.heal();
    assert_eq!(round_trip(&mut connect(&proxy)), Ok(b"ping".to_vec()));
}
