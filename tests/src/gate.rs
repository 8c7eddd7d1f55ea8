//! A TCP gate in front of a real server (PostgreSQL, RabbitMQ): the stack
//! connects through it, and a fault test closes it — every connection
//! through it is reset and new ones are refused, as when the server
//! restarts or its port is blocked — then opens it again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Gate {
    pub port: u16,
    open: Arc<watch::Sender<bool>>,
    accepted: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Gate {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (open, _) = watch::channel(true);
        let open = Arc::new(open);
        let accepted = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(serve(listener, upstream, open.clone(), accepted.clone()));
        Ok(Self {
            port,
            open,
            accepted,
            task,
        })
    }

    /// `url` (of the server this gate forwards to) with this gate's port.
    pub fn url_through(&self, url: &str) -> anyhow::Result<String> {
        let mut parsed = url::Url::parse(url)?;
        parsed
            .set_port(Some(self.port))
            .map_err(|()| anyhow::anyhow!("{url} has no port to replace"))?;
        Ok(parsed.to_string())
    }

    /// Resets every connection through the gate and refuses new ones.
    pub fn close(&self) {
        self.open.send_replace(false);
    }

    pub fn open(&self) {
        self.open.send_replace(true);
    }

    /// Connections taken through the gate so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `host:port` of a URL such as `postgres://u:p@127.0.0.1:5432/db`.
pub fn address_of(url: &str) -> anyhow::Result<SocketAddr> {
    let parsed = url::Url::parse(url)?;
    let host = parsed.host_str().unwrap_or("127.0.0.1");
    let port = parsed
        .port_or_known_default()
        .or(match parsed.scheme() {
            "postgres" | "postgresql" => Some(5432),
            "amqp" => Some(5672),
            _ => None,
        })
        .ok_or_else(|| anyhow::anyhow!("{url} names no port"))?;
    Ok(format!("{host}:{port}").parse()?)
}

async fn serve(
    listener: TcpListener,
    upstream: SocketAddr,
    open: Arc<watch::Sender<bool>>,
    accepted: Arc<AtomicU64>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if !*open.borrow() {
            reset(&client);
            continue;
        }
        accepted.fetch_add(1, Ordering::Relaxed);
        let mut closed = open.subscribe();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                reset(&client);
                return;
            };
            let _ = server.set_nodelay(true);
            let _ = client.set_nodelay(true);
            let (mut client, mut server) = (client, server);
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                _ = closed.wait_for(|open| !*open) => {
                    reset(&client);
                    reset(&server);
                }
            }
        });
    }
}

/// Closes with a reset (linger 0) rather than a clean end, as a crashed
/// server's host does.
fn reset(stream: &TcpStream) {
    #[allow(deprecated)]
    let _ = stream.set_linger(Some(std::time::Duration::ZERO));
}
