//! The classroom server the app runs in its own process for the one-command setup: SQLite and
//! media files under the app's data directory, the demo classroom seeded, loopback only.
//!
//! Its port is kept from one start to the next (`embedded.json`), because queued uploads store
//! the server's address: a recording queued yesterday must still find the server today. If the
//! port is taken, a new one is used and the queue's items for the old address are moved over.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use classroom_server::{Config, DemoInfo, RunningServer};
use serde::{Deserialize, Serialize};

use crate::types::{Credentials, DemoAccounts};

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("the built-in classroom server could not start: {0}")]
    Server(#[from] classroom_server::Error),
    #[error(
        "the built-in classroom server could not move the upload queue to its new address: {0}"
    )]
    Queue(#[from] upload::QueueError),
}

/// A running embedded classroom.
pub struct Embedded {
    server: RunningServer,
    demo: DemoInfo,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded")
            .field("addr", &self.server.local_addr())
            .finish()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    port: u16,
}

impl Embedded {
    /// Starts the server in `dir` (created if needed) and seeds the demo classroom.
    pub async fn start(dir: &Path, queue: &upload::QueueFile) -> Result<Embedded, EmbeddedError> {
        let saved_path = dir.join("embedded.json");
        let saved: Saved = std::fs::read(&saved_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let mut config = Config::new(dir.to_path_buf());
        config.addr = SocketAddr::from(([127, 0, 0, 1], saved.port));
        let server = match classroom_server::serve(config.clone()).await {
            Ok(s) => s,
            Err(e) if saved.port != 0 => {
                tracing::warn!(
                    "port {} of the built-in classroom server is taken ({e}); using another",
                    saved.port
                );
                config.addr.set_port(0);
                classroom_server::serve(config).await?
            }
            Err(e) => return Err(e.into()),
        };
        let port = server.local_addr().port();
        if port != saved.port {
            if saved.port != 0 {
                let old = format!("http://127.0.0.1:{}", saved.port);
                move_queue(queue, &old, &server.base_url())?;
            }
            let body = serde_json::to_vec(&Saved { port }).unwrap_or_default();
            if let Err(e) = std::fs::write(&saved_path, body) {
                tracing::warn!("cannot remember the built-in server's port: {e}");
            }
        }
        let demo = server.classroom().seed_demo().await?;
        Ok(Embedded { server, demo })
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn demo(&self) -> DemoAccounts {
        DemoAccounts {
            moderator: Credentials {
                username: self.demo.moderator_username.clone(),
                password: self.demo.moderator_password.clone(),
            },
            participant: Credentials {
                username: self.demo.participant_username.clone(),
                password: self.demo.participant_password.clone(),
            },
            guest_invite_code: self.demo.live_room.invite_code.clone(),
        }
    }

    /// Stops the server, letting uploads in flight finish their current request.
    pub async fn shutdown(self) {
        if let Err(e) = self.server.shutdown().await {
            tracing::warn!("built-in classroom server: {e}");
        }
    }

    pub fn data_dir(dir: &Path) -> PathBuf {
        dir.join("classroom")
    }
}

/// Points the queue's items for `old` at `new` (same server, new port).
fn move_queue(queue: &upload::QueueFile, old: &str, new: &str) -> Result<(), upload::QueueError> {
    let moved = queue.update(|q| {
        let mut n = 0;
        for it in q.items.iter_mut().filter(|i| i.destination.server == old) {
            let swap = |s: &str| s.strip_prefix(old).map(|rest| format!("{new}{rest}"));
            it.destination.server = new.to_owned();
            if let Some(e) = swap(&it.destination.endpoint) {
                it.destination.endpoint = e;
            }
            if let Some(u) = it.upload_url.as_deref().and_then(swap) {
                it.upload_url = Some(u);
            }
            n += 1;
        }
        Ok::<_, upload::QueueError>(n)
    })?;
    if moved > 0 {
        tracing::info!("moved {moved} queued uploads from {old} to {new}");
    }
    Ok(())
}
