//! The opened data directory: the SQLite database (migrated on open) and the media storage,
//! plus the small helpers every query needs (ids, clock, time formats).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::error::Error;
use crate::storage::{LocalStorage, Storage};

/// A classroom's data: database and media files. Cheap to clone.
#[derive(Clone)]
pub struct Classroom {
    pub(crate) pool: SqlitePool,
    pub(crate) storage: Arc<dyn Storage>,
    data_dir: PathBuf,
}

impl Classroom {
    /// Opens (creating if needed) `classroom.db` and `media/` in `data_dir`, and brings the
    /// database schema up to date.
    pub async fn open(data_dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| Error::io(format!("cannot create {}", data_dir.display()), e))?;
        let db_path = data_dir.join("classroom.db");
        let opts = SqliteConnectOptions::from_str("sqlite:")?
            .filename(&db_path)
            .create_if_missing(true)
            // WAL lets the library pages read while an upload commits; NORMAL is durable
            // across process crashes (what WAL needs), and media files are fsynced separately.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // Many uploads finishing at once queue for the single writer instead of failing.
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let storage = LocalStorage::new(data_dir.join("media"))
            .map_err(|e| Error::io("cannot create the media directory", e))?;
        Ok(Classroom {
            pool,
            storage: Arc::new(storage),
            data_dir: data_dir.to_path_buf(),
        })
    }

    /// The directory this classroom lives in.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Closes the database (waits for queries in flight).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Milliseconds since the Unix epoch, the unit of every time in the database.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// RFC 3339 in UTC with milliseconds, as the API shows times.
pub(crate) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `n` bytes from the operating system's random source.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| Error::Invalid(format!("no randomness: {e}")))?;
    Ok(b)
}

/// A new id: a short type prefix (readable in logs) and 128 random bits in hex. Ids are made
/// here rather than by the database so the same SQL runs on SQLite and PostgreSQL.
pub(crate) fn new_id(prefix: &str) -> Result<String, Error> {
    Ok(format!("{prefix}{}", hex(&random_bytes::<16>()?)))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Whether `s` looks like one of our ids (so it can never be a path or an injection).
pub(crate) fn is_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}
