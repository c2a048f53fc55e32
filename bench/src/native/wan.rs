//! Deployed wall time, simulated: TCP proxies on loopback that hold every byte for half a
//! round trip in each direction (and a new connection for two round trips: the TCP and TLS 1.3
//! handshakes a deployed Worker pays to a new origin), in front of Upstash and PostgREST. A
//! second Worker under `wrangler dev` (scripts/bench.sh starts it) talks to them; sync and
//! get through it show what a user waits for deployed.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::Res;

/// A running delaying proxy; stops when dropped.
pub struct DelayProxy {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listens on `listen` and forwards every connection to `upstream`, each direction delayed by
/// `rtt / 2`, a new connection by `2 × rtt` before its first byte.
pub async fn start(listen: &str, upstream: &str, rtt: Duration) -> Res<DelayProxy> {
    let listener = TcpListener::bind(listen).await?;
    let upstream = upstream.to_string();
    let task = tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                tokio::time::sleep(rtt * 2).await;
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                let one_way = rtt / 2;
                tokio::join!(
                    pump(client_read, server_write, one_way),
                    pump(server_read, client_write, one_way)
                );
            });
        }
    });
    Ok(DelayProxy { task })
}

/// Copies `from` to `to`, every chunk written `delay` after it was read (a latency, not a
/// pause per chunk: chunks in flight overlap).
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due.into()).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

/// Where the simulated-deployment Worker and its proxies are (scripts/bench.sh exports them).
pub struct WanSetup {
    pub worker_url: String,
    pub upstash_listen: String,
    pub upstash_upstream: String,
    pub postgrest_listen: String,
    pub postgrest_upstream: String,
}

impl WanSetup {
    /// From TM_BENCH_WAN_*; `None` when bench.sh did not start the second Worker.
    pub fn from_env(upstash_url: &str, postgrest_url: &str) -> Option<WanSetup> {
        let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let host = |url: &str| {
            url.trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string()
        };
        Some(WanSetup {
            worker_url: get("TM_BENCH_WAN_WORKER_URL")?,
            upstash_listen: get("TM_BENCH_WAN_UPSTASH_LISTEN")?,
            upstash_upstream: host(upstash_url),
            postgrest_listen: get("TM_BENCH_WAN_POSTGREST_LISTEN")?,
            postgrest_upstream: host(postgrest_url),
        })
    }
}
