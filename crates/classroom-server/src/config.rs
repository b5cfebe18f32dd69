//! The server's settings, with the defaults the binary's flags and environment variables
//! start from.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Settings for [`crate::serve`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; port 0 picks a free port ([`crate::RunningServer::local_addr`] tells).
    pub addr: SocketAddr,
    /// Holds `classroom.db` and `media/`.
    pub data_dir: PathBuf,
    /// `Tus-Max-Size`: the largest upload accepted, in bytes.
    pub max_upload_size: u64,
    /// How long an unfinished upload lives after its last progress.
    pub upload_expiry: Duration,
    /// How often expired uploads are deleted.
    pub cleanup_interval: Duration,
    /// How long a sign-in (or a guest's join) stays valid.
    pub token_ttl: Duration,
    /// On shutdown, how long in-flight requests (uploads) get to finish before they are cut.
    pub shutdown_grace: Duration,
    /// How long a PATCH waits for another request on the same upload to finish (then 423).
    pub upload_lock_wait: Duration,
}

impl Config {
    /// Defaults: loopback port 8080, 16 GiB uploads, uploads expire 24 h after their last
    /// progress, cleanup every 10 minutes, sessions last 30 days.
    pub fn new(data_dir: PathBuf) -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir,
            max_upload_size: 16 << 30,
            upload_expiry: Duration::from_secs(24 * 3600),
            cleanup_interval: Duration::from_secs(600),
            token_ttl: Duration::from_secs(30 * 24 * 3600),
            shutdown_grace: Duration::from_secs(30),
            upload_lock_wait: Duration::from_secs(10),
        }
    }

    /// The per-user data directory (`$XDG_DATA_HOME/classroom-server` on Linux), if the
    /// system has a home directory.
    pub fn default_data_dir() -> Option<PathBuf> {
        directories::ProjectDirs::from("", "", "classroom-server")
            .map(|d| d.data_dir().to_path_buf())
    }
}
