//! Accepting connections for the servers of the collector and the agent:
//! every accepted TCP connection gets `TCP_NODELAY`. Without it, a response
//! written in more than one segment (HTTP/2 frames; headers, then body) can
//! wait for the peer's delayed ACK, a 40 ms stall on Linux, which showed as a
//! bimodal ack latency (p50 4 ms, p90 45 ms) in the ingest and registry
//! benchmarks.

use axum::serve::{ListenerExt, TapIo};
use futures::{Stream, StreamExt};
use tokio::net::{TcpListener, TcpStream};

/// The listener for `axum::serve`, with `TCP_NODELAY` on each connection.
pub fn http_listener(listener: TcpListener) -> TapIo<TcpListener, fn(&mut TcpStream)> {
    listener.tap_io(set_nodelay)
}

fn set_nodelay(tcp: &mut TcpStream) {
    let _ = tcp.set_nodelay(true);
}

/// The incoming stream for tonic's `serve_with_incoming*`, with
/// `TCP_NODELAY` on each connection (tonic sets it only on listeners it binds
/// itself).
pub fn grpc_incoming(listener: TcpListener) -> impl Stream<Item = std::io::Result<TcpStream>> {
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|accepted| {
        accepted.inspect(|tcp| {
            let _ = tcp.set_nodelay(true);
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::Listener;

    #[tokio::test]
    async fn accepted_connections_have_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut incoming = Box::pin(grpc_incoming(listener));
        let _client = TcpStream::connect(addr).await.unwrap();
        let server_side = incoming.next().await.unwrap().unwrap();
        assert!(server_side.nodelay().unwrap());

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut http = http_listener(listener);
        let _client = TcpStream::connect(addr).await.unwrap();
        let (server_side, _) = http.accept().await;
        assert!(server_side.nodelay().unwrap());
    }
}
