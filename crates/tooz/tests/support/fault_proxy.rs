//! A TCP fault proxy for partition tests: it forwards between a client and a server until told
//! to misbehave the way real networks do.
//!
//! * `Forward` — bytes pass both ways.
//! * `Blackhole` — every byte is dropped and connections stay open, as a cut cable or a
//!   silent firewall looks to both ends (no FIN, no RST; only timeouts notice).
//! * `Delay(d)` — bytes pass, each chunk `d` late (order kept).
//! * `Reset` — every open connection is reset (RST) at once, and new ones too.
//!
//! Connections accepted during a blackhole are held open and silent.

// Shared by several test binaries, each of which uses only part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    Forward,
    Blackhole,
    Delay(Duration),
    Reset,
}

pub(crate) struct FaultProxy {
    addr: SocketAddr,
    fault: watch::Sender<Fault>,
    accept: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port in front of `upstream`, forwarding.
    pub(crate) async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (fault, _) = watch::channel(Fault::Forward);
        let faults = fault.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(connection(client, upstream, faults.subscribe()));
            }
        });
        Self {
            addr,
            fault,
            accept,
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    pub(crate) fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Every connection task ends when its sender is gone.
        self.set(Fault::Reset);
    }
}

async fn connection(client: TcpStream, upstream: SocketAddr, mut faults: watch::Receiver<Fault>) {
    let fault = *faults.borrow_and_update();
    let server = match fault {
        Fault::Reset => return reset(client),
        Fault::Blackhole => None,
        _ => TcpStream::connect(upstream).await.ok(),
    };
    let Some(server) = server else {
        // A partition swallows the handshake's continuation: hold the client, silent, until
        // the proxy resets or goes.
        let _ = faults.wait_for(|f| *f == Fault::Reset).await;
        return reset(client);
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = pump(&mut client_read, &mut server_write, faults.clone());
    let down = pump(&mut server_read, &mut client_write, faults.clone());
    tokio::select! {
        () = up => {}
        () = down => {}
        _ = faults.wait_for(|f| *f == Fault::Reset) => {}
    }
    let fault = *faults.borrow();
    if fault == Fault::Reset
        && let (Ok(client), Ok(server)) = (
            client_read.reunite(client_write),
            server_read.reunite(server_write),
        )
    {
        reset(client);
        reset(server);
    }
}

/// Copies one direction, obeying the current fault for every chunk.
async fn pump(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    faults: watch::Receiver<Fault>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let fault = *faults.borrow();
        match fault {
            Fault::Forward => {}
            Fault::Blackhole => continue,
            Fault::Delay(d) => tokio::time::sleep(d).await,
            Fault::Reset => return,
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Closes with an RST rather than a FIN.
fn reset(stream: TcpStream) {
    // Without it, closing sends a FIN; the test wants a reset.
    let _ = stream.set_zero_linger();
    drop(stream);
}
