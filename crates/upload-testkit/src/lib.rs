//! Test kit for uploads, shared by the upload crate's integration tests, the `recorder` CLI's
//! upload tests and the upload benchmark:
//!
//! - [`TestServer`]: the real classroom server started in-process on 127.0.0.1 with a fresh
//!   SQLite database, the demo classroom seeded and its moderator signed in;
//! - [`Proxy`]: a TCP proxy that can cut every connection once after N bytes from the client,
//!   or throttle them, counting what passes;
//! - [`random_file`], [`sha256_file`]: big files for upload mechanics, and their hashes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use classroom_api::{BreakoutRecordings, MediaEntry, SessionResponse, SignInRequest};
use classroom_server::{Config, RunningServer};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The classroom server, in this process, with the demo classroom and a signed-in moderator.
pub struct TestServer {
    server: Option<RunningServer>,
    data_dir: PathBuf,
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    pub token: String,
    pub live_room: String,
    pub breakout_room: String,
    pub moderator: (String, String),
}

impl TestServer {
    /// A fresh server on a free port, data in `data_dir`.
    pub async fn start(data_dir: &Path) -> Result<TestServer> {
        Self::start_with(data_dir, "127.0.0.1:0".parse()?, |_| {}).await
    }

    /// A server on `addr` (e.g. a port chosen earlier, for "the server comes up later"),
    /// with `tweak` applied to its configuration.
    pub async fn start_with(
        data_dir: &Path,
        addr: SocketAddr,
        tweak: impl FnOnce(&mut Config),
    ) -> Result<TestServer> {
        let mut config = Config::new(data_dir.to_path_buf());
        config.addr = addr;
        config.shutdown_grace = Duration::from_secs(2);
        tweak(&mut config);
        let server = classroom_server::serve(config).await?;
        let demo = server.classroom().seed_demo().await?;
        let base_url = server.base_url();
        let moderator = (
            demo.moderator_username.clone(),
            demo.moderator_password.clone(),
        );
        let token = sign_in(&base_url, &moderator.0, &moderator.1).await?;
        let breakout_room = demo
            .live_room
            .breakout_rooms
            .first()
            .context("demo has breakout rooms")?
            .id
            .clone();
        Ok(TestServer {
            addr: server.local_addr(),
            server: Some(server),
            data_dir: data_dir.to_path_buf(),
            base_url,
            token,
            live_room: demo.live_room.id.clone(),
            breakout_room,
            moderator,
        })
    }

    /// A new token for the moderator (as the app gets after "sign in again").
    pub async fn sign_in_again(&self) -> Result<String> {
        sign_in(&self.base_url, &self.moderator.0, &self.moderator.1).await
    }

    /// Stops the server gracefully (in-flight requests get the configured grace).
    pub async fn stop(&mut self) -> Result<()> {
        if let Some(s) = self.server.take() {
            s.shutdown().await?;
        }
        Ok(())
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Every media entry of the live room's breakout recordings (all folders).
    pub async fn media_entries(&self) -> Result<Vec<MediaEntry>> {
        let url = format!(
            "{}/api/live-rooms/{}/breakout-recordings",
            self.base_url, self.live_room
        );
        let resp = reqwest::Client::new()
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("breakout recordings: {}", resp.status());
        }
        let rec: BreakoutRecordings = resp.json().await?;
        Ok(rec.folders.into_iter().flat_map(|f| f.entries).collect())
    }

    /// Downloads a media entry's file and hashes it (independently of the server's record).
    pub async fn download_sha256(&self, entry: &MediaEntry) -> Result<(u64, String)> {
        let mut resp = reqwest::Client::new()
            .get(format!("{}{}", self.base_url, entry.download_url))
            .bearer_auth(&self.token)
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("download: {}", resp.status());
        }
        let mut h = Sha256::new();
        let mut n = 0u64;
        while let Some(chunk) = resp.chunk().await? {
            n += chunk.len() as u64;
            h.update(&chunk);
        }
        Ok((n, hex(&h.finalize())))
    }

    /// Files in the server's media storage (uploads in progress and finished ones).
    pub fn stored_files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.data_dir.join("media"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// Signs in and returns the bearer token.
pub async fn sign_in(base_url: &str, username: &str, password: &str) -> Result<String> {
    let resp = reqwest::Client::new()
        .post(format!("{base_url}/api/sessions"))
        .json(&SignInRequest {
            username: username.into(),
            password: password.into(),
        })
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("sign-in: {}", resp.status());
    }
    Ok(resp.json::<SessionResponse>().await?.token)
}

/// A free TCP port on 127.0.0.1 (bound, then released: good enough for tests that start a
/// server on it moments later).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Lowercase hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Writes `len` pseudo-random bytes (xorshift, seeded) to `path`, 1 MiB at a time.
pub fn random_file(path: &Path, len: u64, seed: u64) -> Result<()> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut x = seed | 1;
    let mut left = len;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        for w in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = x.to_le_bytes();
            w.copy_from_slice(&b[..w.len()]);
        }
        let n = usize::try_from(left.min(buf.len() as u64))?;
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

/// SHA-256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(hex(&h.finalize()));
        }
        h.update(&buf[..n]);
    }
}

/// How the proxy treats traffic.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProxyPlan {
    /// Cut the connection carrying the client's `n`th byte (counted over all connections),
    /// once.
    pub cut_after: Option<u64>,
    /// Client-to-server bytes per second (roughly), to make "during the upload" last.
    pub rate: Option<u64>,
}

/// A TCP proxy in front of a server. Dropping it stops accepting.
pub struct Proxy {
    pub addr: SocketAddr,
    /// Client-to-server bytes forwarded (request lines, headers and bodies).
    pub upstream_bytes: Arc<AtomicU64>,
    /// Whether the planned cut happened.
    pub cut_done: Arc<AtomicBool>,
    /// Connections accepted.
    pub connections: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    pub async fn start(target: SocketAddr, plan: ProxyPlan) -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let upstream_bytes = Arc::new(AtomicU64::new(0));
        let cut_done = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicU64::new(0));
        let (up, cut, conns) = (
            upstream_bytes.clone(),
            cut_done.clone(),
            connections.clone(),
        );
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                conns.fetch_add(1, Ordering::Relaxed);
                let (up, cut) = (up.clone(), cut.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        pipe(client, server, plan, up, cut).await;
                    }
                });
            }
        });
        Ok(Proxy {
            addr,
            upstream_bytes,
            cut_done,
            connections,
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Forwards both ways; the client-to-server side applies the plan. A cut drops both sockets
/// at once, as a lost network would (no graceful close of the HTTP request).
async fn pipe(
    client: TcpStream,
    server: TcpStream,
    plan: ProxyPlan,
    up: Arc<AtomicU64>,
    cut: Arc<AtomicBool>,
) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let upstream = async {
        let mut buf = vec![0u8; 64 * 1024];
        let started = Instant::now();
        let mut sent = 0u64;
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let total = up.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
            if let Some(at) = plan.cut_after {
                if total >= at && !cut.swap(true, Ordering::Relaxed) {
                    // Forward only what came before the cut point, then vanish.
                    let keep = n - usize::try_from(total - at).unwrap_or(n).min(n);
                    let _ = sw.write_all(&buf[..keep]).await;
                    return;
                }
            }
            if sw.write_all(&buf[..n]).await.is_err() {
                return;
            }
            sent += n as u64;
            if let Some(rate) = plan.rate {
                let due = Duration::from_secs_f64(sent as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
        }
    };
    let downstream = async {
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
    };
    // Whichever side ends first ends the connection (both halves drop here).
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
    }
}
