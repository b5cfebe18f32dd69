//! The durable upload queue: one JSON file (by default in the app's data directory) listing
//! every recording to upload, where it goes, and how far it got.
//!
//! Durability rules, because a recording must never be lost to a crash:
//! - Every change is a read-modify-write under an exclusive `flock` on `<file>.lock`, and the
//!   new content is written to a temporary file in the same directory, fsynced, renamed over
//!   the old one, and the directory fsynced. A kill at any instant leaves either the old or the
//!   new queue, never a mix. (Stale temporary files from such a kill are removed later.)
//! - A file that cannot be read as a queue (corrupt, empty, huge, hostile) is never overwritten:
//!   it is renamed to `<file>.corrupt-<time>` and the error says so.
//! - One process at a time *runs* the queue (uploads): it holds `<file>.run-lock`. Others may
//!   still list it or add to it.
//! - The file holds tokens, so it is created owner-only (0600).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::QueueError;
use crate::fingerprint::Fingerprint;
use crate::tus::Auth;

/// The format this program writes and understands.
pub const FORMAT_VERSION: u32 = 1;
/// A queue file bigger than this is not read (thousands of items fit in a fraction of it).
pub const MAX_FILE_BYTES: u64 = 16 << 20;
/// A damaged queue up to this size is still read for the items that can be carried over.
const MAX_SALVAGE_BYTES: u64 = 64 << 20;
/// A carried-over item's last error is cut to this many characters (it is only informative,
/// and the carried-over queue must fit in [`MAX_FILE_BYTES`]).
const SALVAGED_ERROR_CHARS: usize = 300;
/// At most this many items (finished ones included, until removed).
pub const MAX_ITEMS: usize = 10_000;
/// Limit for free-text fields (paths, URLs, messages).
const MAX_TEXT: usize = 4096;

/// The whole queue as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queue {
    pub version: u32,
    pub items: Vec<Item>,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            version: FORMAT_VERSION,
            items: Vec::new(),
        }
    }
}

/// Where a recording goes: the server and the classroom place it is filed under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    /// The server's base URL (`https://classroom.example`), for its JSON API.
    pub server: String,
    /// The tus creation URL (the classroom server's is `<server>/files/`).
    pub endpoint: String,
    pub live_room: String,
    pub breakout_room: String,
    pub title: String,
    /// When the recording started, RFC 3339.
    pub started_at: String,
    pub duration_ms: u64,
    /// The file name shown in the library (no directory).
    pub filename: String,
}

impl Destination {
    /// The classroom server's rules for a title and a file name, checked when an item is
    /// queued so that a name the server would refuse is a clear error now rather than a dead
    /// upload later. (Not part of [`Item::validate`]: a queue saved before a rule changed
    /// must still load.)
    pub fn check_server_rules(&self) -> Result<(), String> {
        use classroom_api::tus::{
            MAX_FILENAME_CHARS, MAX_TITLE_CHARS, TextProblem, is_path_like, text_problem,
        };
        match text_problem(&self.title, MAX_TITLE_CHARS) {
            None => {}
            Some(TextProblem::Empty) => return Err("title is empty".into()),
            Some(TextProblem::TooLong) => {
                return Err(format!(
                    "the title is longer than {MAX_TITLE_CHARS} characters"
                ));
            }
            Some(TextProblem::Forbidden) => {
                return Err(
                    "the title contains control or text-direction characters; type it plainly"
                        .into(),
                );
            }
        }
        let name = &self.filename;
        match text_problem(name, MAX_FILENAME_CHARS) {
            Some(TextProblem::TooLong) => Err(format!(
                "the file name is longer than {MAX_FILENAME_CHARS} characters; rename the file"
            )),
            Some(_) => Err(refused_name(name)),
            None if is_path_like(name) => Err(refused_name(name)),
            None => Ok(()),
        }
    }
}

/// Where an item stands. `Waiting` and `Uploading` are pending; the others are final until a
/// person acts (`retry`, a new token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum State {
    /// Ready to go, or waiting for the server to answer again.
    Waiting,
    /// A runner is sending it (after a kill, the next runner simply resumes it).
    Uploading,
    /// The server confirmed the upload; `media_id` is its media entry when the server says.
    Done { media_id: Option<String> },
    /// The server refused the credentials (401/403): sign in again, then retry.
    NeedsSignIn { message: String },
    /// Cannot heal by waiting: too large, the local file vanished or changed, a request the
    /// server will never accept.
    Failed { reason: String },
}

impl State {
    pub fn is_pending(&self) -> bool {
        matches!(self, State::Waiting | State::Uploading)
    }

    /// A short word for lists.
    pub fn label(&self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Uploading => "uploading",
            State::Done { .. } => "done",
            State::NeedsSignIn { .. } => "sign in again",
            State::Failed { .. } => "failed",
        }
    }
}

/// One recording to upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Short id for the command line (`queue retry ID`).
    pub id: String,
    /// Absolute path of the local file.
    pub path: PathBuf,
    /// What the file was when queued (size, mtime, SHA-256).
    pub file: Fingerprint,
    pub destination: Destination,
    #[serde(default)]
    pub auth: Auth,
    /// The tus upload's URL once created: with it, a resume continues at the server's offset.
    pub upload_url: Option<String>,
    /// Bytes the server had confirmed when last saved (the server's `HEAD` is the truth).
    pub offset: u64,
    /// Failed attempts so far.
    pub attempts: u32,
    pub last_error: Option<String>,
    pub state: State,
    /// Delete the local file once the server confirmed the media entry (off by default).
    #[serde(default)]
    pub delete_after_upload: bool,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
}

impl Item {
    /// A new waiting item.
    pub fn new(
        path: PathBuf,
        file: Fingerprint,
        destination: Destination,
        auth: Auth,
    ) -> Result<Item, QueueError> {
        let now = now_rfc3339();
        let item = Item {
            id: new_id(),
            path,
            file,
            destination,
            auth,
            upload_url: None,
            offset: 0,
            attempts: 0,
            last_error: None,
            state: State::Waiting,
            delete_after_upload: false,
            created_at: now.clone(),
            updated_at: now,
        };
        item.validate().map_err(QueueError::BadDestination)?;
        item.destination
            .check_server_rules()
            .map_err(QueueError::BadDestination)?;
        Ok(item)
    }

    /// Checks what a hostile or damaged file could put here, so nothing downstream has to.
    pub fn validate(&self) -> Result<(), String> {
        let text = |what: &str, s: &str, max: usize| -> Result<(), String> {
            if s.chars().count() > max {
                return Err(format!("{what} is longer than {max} characters"));
            }
            if s.chars().any(char::is_control) {
                return Err(format!("{what} contains control characters"));
            }
            Ok(())
        };
        if self.id.is_empty()
            || self.id.len() > 32
            || !self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!("bad item id {:?}", truncate(&self.id)));
        }
        let path = self.path.to_string_lossy();
        text("path", &path, MAX_TEXT)?;
        if !self.path.is_absolute() {
            return Err(format!("path {path:?} is not absolute"));
        }
        if self.file.sha256.len() != 64 || !self.file.sha256.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err("the file's sha256 is not 64 hex digits".into());
        }
        if self.offset > self.file.size {
            return Err(format!(
                "offset {} is past the file's size {}",
                self.offset, self.file.size
            ));
        }
        let d = &self.destination;
        check_http_url("server", &d.server)?;
        check_http_url("endpoint", &d.endpoint)?;
        if let Some(u) = &self.upload_url {
            check_http_url("upload URL", u)?;
        }
        for (what, v) in [
            ("live room", &d.live_room),
            ("breakout room", &d.breakout_room),
        ] {
            text(what, v, 128)?;
            if v.is_empty() {
                return Err(format!("{what} is empty"));
            }
        }
        text("title", &d.title, 200)?;
        if d.title.trim().is_empty() {
            return Err("title is empty".into());
        }
        chrono::DateTime::parse_from_rfc3339(&d.started_at)
            .map_err(|_| format!("started_at {:?} is not RFC 3339", truncate(&d.started_at)))?;
        text("filename", &d.filename, 255)?;
        if d.filename.is_empty() || d.filename.contains('/') {
            return Err("filename must be a plain file name".into());
        }
        if let Some(e) = &self.last_error {
            text("last error", e, MAX_TEXT)?;
        }
        for (k, v) in &self.auth.headers {
            text("header name", k, 256)?;
            text("header value", v, MAX_TEXT)?;
        }
        if let Some(t) = &self.auth.bearer {
            text("token", t, MAX_TEXT)?;
        }
        Ok(())
    }
}

fn refused_name(name: &str) -> String {
    format!(
        "the file name {:?} has characters the server refuses; rename the file",
        truncate(name)
    )
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

fn check_http_url(what: &str, s: &str) -> Result<(), String> {
    if s.len() > MAX_TEXT {
        return Err(format!("{what} is too long"));
    }
    let u = reqwest::Url::parse(s).map_err(|e| format!("{what} {:?}: {e}", truncate(s)))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(format!("{what} {:?} is not an http(s) URL", truncate(s)));
    }
    Ok(())
}

impl Queue {
    pub fn get(&self, id: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.id == id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Item> {
        self.items.iter_mut().find(|i| i.id == id)
    }

    /// Adds an item (after checking the queue has room and the id is free). When the queue is
    /// full, the oldest uploaded item makes room (its file and media entry are untouched);
    /// pending and failed items never do.
    pub fn push(&mut self, mut item: Item) -> Result<String, QueueError> {
        if self.items.len() >= MAX_ITEMS {
            let oldest_done = self
                .items
                .iter()
                .position(|i| matches!(i.state, State::Done { .. }))
                .ok_or(QueueError::Full(self.items.len()))?;
            self.items.remove(oldest_done);
        }
        while self.get(&item.id).is_some() {
            item.id = new_id();
        }
        let id = item.id.clone();
        self.items.push(item);
        Ok(id)
    }

    /// Checks a freshly parsed queue: the version, the item count, each item, unique ids.
    fn validate(&self) -> Result<(), String> {
        if self.version == 0 {
            return Err("format version 0".into());
        }
        if self.items.len() > MAX_ITEMS {
            return Err(format!("{} items (at most {MAX_ITEMS})", self.items.len()));
        }
        let mut ids = std::collections::HashSet::new();
        for (n, item) in self.items.iter().enumerate() {
            item.validate()
                .map_err(|e| format!("item {}: {e}", n + 1))?;
            if !ids.insert(item.id.as_str()) {
                return Err(format!("item id {} appears twice", item.id));
            }
        }
        Ok(())
    }
}

/// The items of a damaged queue that still read as valid items, in order (ids unique), so one
/// bad item (a hand edit, a bit flip) does not take the others out of the queue. `None` when
/// nothing could be read.
///
/// The document need not parse as a whole (a truncated file, a stray byte): the `items` array
/// is read one value at a time, and after a damaged one the reading resumes at the next line
/// that opens an item the way this program writes them (pretty-printed, indented 4 spaces).
fn salvage(bytes: &[u8]) -> Option<Queue> {
    const ITEM_START: &[u8] = b"\n    {";
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let items_key = find(bytes, b"\"items\"")?;
    let mut pos = items_key + find(&bytes[items_key..], b"[")? + 1;
    let mut q = Queue::default();
    let mut ids = std::collections::HashSet::new();
    while q.items.len() < MAX_ITEMS {
        while pos < bytes.len() && (bytes[pos].is_ascii_whitespace() || bytes[pos] == b',') {
            pos += 1;
        }
        if pos >= bytes.len() || bytes[pos] == b']' {
            break;
        }
        let mut values = serde_json::Deserializer::from_slice(&bytes[pos..]).into_iter::<Item>();
        match values.next() {
            Some(Ok(mut item)) => {
                pos += values.byte_offset();
                if let Some(e) = &mut item.last_error {
                    if e.chars().count() > SALVAGED_ERROR_CHARS {
                        *e = e.chars().take(SALVAGED_ERROR_CHARS).collect();
                    }
                }
                if item.validate().is_ok() && ids.insert(item.id.clone()) {
                    q.items.push(item);
                }
            }
            _ => match find(&bytes[pos + 1..], ITEM_START) {
                Some(i) => pos += 1 + i + 1,
                None => break,
            },
        }
    }
    (!q.items.is_empty()).then_some(q)
}

/// A random 8-hex-digit id: short enough to type, unique enough for one person's queue
/// (collisions are re-drawn by [`Queue::push`]).
pub fn new_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:08x}", h.finish() as u32)
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The queue file and its locks.
#[derive(Debug)]
pub struct QueueFile {
    path: PathBuf,
    /// Stale temporary files are swept once per instance, on the first locked update.
    swept: AtomicBool,
}

/// Held while a process runs the queue; dropping it lets another process run it.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// What [`QueueFile::read`] found.
enum Read_ {
    Missing,
    Ok(Queue),
    /// Not a usable queue; the reason. Moving it aside (and carrying its readable items over)
    /// happens under the lock.
    Bad(String),
}

fn is_read_only(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    )
}

/// A word for what sits where the queue file should be.
fn file_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_fifo() {
        "a pipe"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

fn io_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> QueueError + 'a {
    move |cause| QueueError::Io {
        what,
        path: path.to_path_buf(),
        cause,
    }
}

/// `flock` on an open file. `nonblocking`: fail at once with `WouldBlock` when held elsewhere.
fn flock(file: &File, nonblocking: bool) -> std::io::Result<()> {
    let op = libc::LOCK_EX | if nonblocking { libc::LOCK_NB } else { 0 };
    loop {
        // SAFETY: flock only reads the descriptor number, which `file` keeps open.
        let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
        if rc == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Another handle on the same file (each handle sweeps stale temporary files once).
impl Clone for QueueFile {
    fn clone(&self) -> Self {
        QueueFile::new(self.path.clone())
    }
}

impl QueueFile {
    /// The queue at `path` (nothing is touched until it is read or changed). A symbolic link
    /// is followed once, here: updates then replace the file it points to (not the link), and
    /// every process that names the file either way shares the same locks.
    pub fn new(path: impl Into<PathBuf>) -> QueueFile {
        let path = path.into();
        let path = match path.is_symlink().then(|| std::fs::canonicalize(&path)) {
            Some(Ok(target)) => target,
            // A dangling link: the queue is created where it points.
            Some(Err(_)) => match std::fs::read_link(&path) {
                Ok(target) => path
                    .parent()
                    .map_or(target.clone(), |dir| dir.join(&target)),
                Err(_) => path,
            },
            None => path,
        };
        QueueFile {
            path,
            swept: AtomicBool::new(false),
        }
    }

    /// `<data dir>/upload-queue.json`, where the app and the CLI share their queue
    /// (`~/.local/share/breakout-recorder/` on Linux).
    pub fn default_path() -> Option<PathBuf> {
        directories::ProjectDirs::from("app", "breakoutrecorder", "Breakout Recorder")
            .map(|d| d.data_dir().join("upload-queue.json"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut s = self.path.clone().into_os_string();
        s.push(suffix);
        PathBuf::from(s)
    }

    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    fn ensure_dir(&self) -> Result<(), QueueError> {
        let dir = self.dir();
        std::fs::create_dir_all(&dir).map_err(io_err("cannot create the queue directory", &dir))
    }

    fn open_lock(&self, suffix: &str) -> Result<(File, PathBuf), QueueError> {
        self.ensure_dir()?;
        let p = self.sibling(suffix);
        let rw = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&p);
        let f = match rw {
            Ok(f) => f,
            // A read-only queue (a mounted backup, another user's files) can still be listed:
            // flock works on a descriptor opened for reading. Changing it fails later, clearly.
            Err(e) if is_read_only(&e) => {
                File::open(&p).map_err(|_| io_err("cannot open the lock file", &p)(e))?
            }
            Err(e) => return Err(io_err("cannot open the lock file", &p)(e)),
        };
        Ok((f, p))
    }

    /// Reads the file without locking (an atomic rename means a reader sees old or new).
    fn read(&self) -> Result<Read_, QueueError> {
        let md = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Read_::Missing),
            Err(e) => return Err(io_err("cannot read the upload queue", &self.path)(e)),
        };
        if !md.is_file() {
            return Err(QueueError::NotAFile {
                path: self.path.clone(),
                kind: file_kind(&md.file_type()),
            });
        }
        if md.len() > MAX_FILE_BYTES {
            return Ok(Read_::Bad(format!(
                "{} bytes, more than the {} MiB a queue may have",
                md.len(),
                MAX_FILE_BYTES >> 20
            )));
        }
        let mut bytes = Vec::new();
        File::open(&self.path)
            .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(io_err("cannot read the upload queue", &self.path))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            // Our writes are atomic, so an empty file did not come from us: keep it aside.
            return Ok(Read_::Bad("the file is empty".into()));
        }
        // Look at the version first: a newer program's queue must be left alone, not judged
        // by this program's rules.
        #[derive(Deserialize)]
        struct VersionOnly {
            version: u32,
        }
        if let Ok(v) = serde_json::from_slice::<VersionOnly>(&bytes) {
            if v.version > FORMAT_VERSION {
                return Err(QueueError::NewerVersion {
                    path: self.path.clone(),
                    found: v.version,
                    supported: FORMAT_VERSION,
                });
            }
        }
        let q: Queue = match serde_json::from_slice(&bytes) {
            Ok(q) => q,
            Err(e) => return Ok(Read_::Bad(format!("not a valid queue: {e}"))),
        };
        match q.validate() {
            Ok(()) => Ok(Read_::Ok(q)),
            Err(e) => Ok(Read_::Bad(e)),
        }
    }

    /// Renames a bad queue file aside (under the lock), starts the new queue with the items
    /// that could still be read, and returns the error that says where the old file is.
    fn set_aside(&self, reason: String) -> QueueError {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
        let kept_as = self.sibling(&format!(".corrupt-{stamp}"));
        match std::fs::rename(&self.path, &kept_as) {
            Ok(()) => {
                let _ = self.sync_dir();
                tracing::info!(path = %self.path.display(), kept_as = %kept_as.display(), %reason, "upload queue set aside");
                let mut carried_over = 0;
                // Read once, here, from the copy set aside: a file too big to use is still
                // worth carrying over, up to a limit.
                let small = std::fs::metadata(&kept_as).is_ok_and(|m| m.len() <= MAX_SALVAGE_BYTES);
                let salvaged = small
                    .then(|| std::fs::read(&kept_as).ok())
                    .flatten()
                    .and_then(|bytes| salvage(&bytes));
                if let Some(q) = salvaged {
                    // The old file is safe aside; if this write fails, the next use simply
                    // starts empty, as it would have without salvaging.
                    match self.write(&q) {
                        Ok(()) => carried_over = q.items.len(),
                        Err(e) => tracing::warn!(error = %e, "cannot carry readable items over"),
                    }
                }
                QueueError::Corrupt {
                    path: self.path.clone(),
                    kept_as,
                    reason,
                    carried_over,
                }
            }
            Err(e) => io_err("cannot set aside the unreadable upload queue", &self.path)(
                std::io::Error::new(e.kind(), format!("{reason}; renaming it failed: {e}")),
            ),
        }
    }

    /// The queue as it is now (empty when there is no file yet). A bad file is set aside and
    /// reported as [`QueueError::Corrupt`].
    pub fn load(&self) -> Result<Queue, QueueError> {
        match self.read()? {
            Read_::Missing => Ok(Queue::default()),
            Read_::Ok(q) => Ok(q),
            Read_::Bad(_) => {
                // Decide under the lock, so a writer in the middle of an update is not raced.
                let (lock, _) = self.open_lock(".lock")?;
                flock(&lock, false).map_err(io_err("cannot lock the upload queue", &self.path))?;
                match self.read()? {
                    Read_::Missing => Ok(Queue::default()),
                    Read_::Ok(q) => Ok(q),
                    Read_::Bad(reason) => Err(self.set_aside(reason)),
                }
            }
        }
    }

    /// Changes the queue: `f` runs on the current content under the lock, and the result is
    /// written atomically if it differs. Blocking (fsync): call it off async worker threads
    /// for anything frequent.
    pub fn update<R>(
        &self,
        f: impl FnOnce(&mut Queue) -> Result<R, QueueError>,
    ) -> Result<R, QueueError> {
        let (lock, _) = self.open_lock(".lock")?;
        flock(&lock, false).map_err(io_err("cannot lock the upload queue", &self.path))?;
        if !self.swept.swap(true, Ordering::Relaxed) {
            self.sweep_temp_files();
        }
        let mut q = match self.read()? {
            Read_::Missing => Queue::default(),
            Read_::Ok(q) => q,
            Read_::Bad(reason) => return Err(self.set_aside(reason)),
        };
        let before = q.clone();
        let r = f(&mut q)?;
        if q != before {
            // Never store what `read` would refuse: that would set the whole queue aside on
            // the next load.
            q.validate().map_err(QueueError::Unsavable)?;
            self.write(&q)?;
        }
        Ok(r)
        // `lock` drops here, releasing the flock after the rename is durable.
    }

    /// Write temp + fsync + rename + fsync dir.
    fn write(&self, q: &Queue) -> Result<(), QueueError> {
        let json = serde_json::to_vec_pretty(q).map_err(|e| {
            io_err("cannot encode the upload queue", &self.path)(std::io::Error::other(e))
        })?;
        // What `read` would refuse must not be written (as with `Item::validate`).
        if json.len() as u64 > MAX_FILE_BYTES {
            return Err(QueueError::Unsavable(format!(
                "the upload queue would be {} MiB, more than the {} MiB it may have; remove uploaded or failed items with `queue remove`",
                json.len() >> 20,
                MAX_FILE_BYTES >> 20
            )));
        }
        // A queue file someone made read-only stays as it is (a rename would replace it).
        use std::os::unix::fs::PermissionsExt;
        if let Ok(md) = std::fs::metadata(&self.path) {
            if md.permissions().mode() & 0o200 == 0 {
                return Err(io_err(
                    "cannot change the read-only upload queue",
                    &self.path,
                )(std::io::Error::from(
                    std::io::ErrorKind::PermissionDenied,
                )));
            }
        }
        let dir = self.dir();
        // tempfile creates the file 0600, which the tokens in it need.
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.", self.file_name()))
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(io_err("cannot write the upload queue in", &dir))?;
        tmp.write_all(&json)
            .and_then(|()| tmp.write_all(b"\n"))
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(io_err("cannot write the upload queue in", &dir))?;
        tmp.persist(&self.path)
            .map_err(|e| io_err("cannot replace the upload queue", &self.path)(e.error))?;
        self.sync_dir()
            .map_err(io_err("cannot sync the queue directory", &dir))
    }

    fn file_name(&self) -> String {
        self.path
            .file_name()
            .map_or_else(|| "queue".into(), |n| n.to_string_lossy().into_owned())
    }

    fn sync_dir(&self) -> std::io::Result<()> {
        File::open(self.dir())?.sync_all()
    }

    /// Removes temporary files a killed writer left (only called with the lock held, so none
    /// of them is being written).
    fn sweep_temp_files(&self) {
        let prefix = format!(".{}.", self.file_name());
        let Ok(entries) = std::fs::read_dir(self.dir()) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// Becomes the one process running this queue, or says which process already is.
    pub fn try_lock_runner(&self) -> Result<Option<RunLock>, QueueError> {
        let (mut f, p) = self.open_lock(".run-lock")?;
        match flock(&f, true) {
            Ok(()) => {
                // The pid is only informative (for "another process is uploading").
                let _ = f.set_len(0);
                let _ = writeln!(f, "{}", std::process::id());
                Ok(Some(RunLock { _file: f }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(io_err("cannot lock", &p)(e)),
        }
    }

    /// Whether another process holds the run lock now, and its pid when it wrote one.
    pub fn runner_pid(&self) -> Result<Option<u32>, QueueError> {
        match self.try_lock_runner() {
            Ok(Some(_held_briefly)) => Ok(None),
            // No lock file and no right to create one: nobody can be running this queue.
            Err(QueueError::Io { cause, .. }) if is_read_only(&cause) => Ok(None),
            Err(e) => Err(e),
            Ok(None) => {
                let pid = std::fs::read_to_string(self.sibling(".run-lock"))
                    .ok()
                    .and_then(|s| s.trim().parse().ok());
                Ok(Some(pid.unwrap_or(0)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample_item(dir: &Path) -> Item {
        Item::new(
            dir.join("rec.mp4"),
            Fingerprint {
                size: 100,
                mtime_ns: 1,
                ctime_ns: 1,
                file_id: (1, 1),
                sha256: "a".repeat(64),
                block_crc32: String::new(),
            },
            Destination {
                server: "http://127.0.0.1:8080".into(),
                endpoint: "http://127.0.0.1:8080/files/".into(),
                live_room: "lr_1".into(),
                breakout_room: "br_1".into(),
                title: "Group A".into(),
                started_at: "2025-01-31T09:30:00Z".into(),
                duration_ms: 1000,
                filename: "rec.mp4".into(),
            },
            Auth::bearer("t"),
        )
        .unwrap()
    }

    fn files_in(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn round_trip_and_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let qf = QueueFile::new(dir.path().join("sub/queue.json"));
        assert_eq!(qf.load().unwrap(), Queue::default());
        let item = sample_item(dir.path());
        let id = qf.update(|q| q.push(item.clone())).unwrap();
        let q = qf.load().unwrap();
        assert_eq!(q.items.len(), 1);
        assert_eq!(q.get(&id).unwrap().destination, item.destination);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(qf.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the queue holds tokens");
        // No temporary file is left behind.
        assert_eq!(
            files_in(&dir.path().join("sub")),
            ["queue.json", "queue.json.lock"]
        );
    }

    /// Table: names the classroom server would refuse are refused when queuing, with a reason
    /// a person can act on.
    #[test]
    fn names_the_server_refuses_are_refused_when_queued() {
        let dir = tempfile::tempdir().unwrap();
        let base = sample_item(dir.path()).destination;
        let long = "x".repeat(201);
        // (title, file name, error that names the problem; "" = accepted)
        let cases = [
            ("Group A", "rec.mp4", ""),
            ("Gruppe Ä – 数学", "Gruppe Ä.mp4", ""),
            (&long[..200], "rec.mp4", ""),
            (&long, "rec.mp4", "title is longer than 200"),
            ("evil\u{202E}4pm.exe", "rec.mp4", "text-direction"),
            ("left\u{2066}isolate", "rec.mp4", "text-direction"),
            ("tab\there", "rec.mp4", "control"),
            ("Group A", &long, "file name is longer than 200"),
            ("Group A", "a\u{202E}4pm.exe.mp4", "rename the file"),
            ("Group A", "back\\slash.mp4", "rename the file"),
            ("Group A", "..", "rename the file"),
        ];
        for (title, filename, want) in cases {
            let d = Destination {
                title: title.into(),
                filename: filename.into(),
                ..base.clone()
            };
            let got = d.check_server_rules();
            if want.is_empty() {
                assert_eq!(got, Ok(()), "{title:?} {filename:?}");
            } else {
                let e = got.unwrap_err();
                assert!(e.contains(want), "{title:?} {filename:?}: {e}");
            }
        }
    }

    #[test]
    fn a_full_queue_makes_room_only_by_dropping_the_oldest_uploaded_item() {
        let dir = tempfile::tempdir().unwrap();
        let item = sample_item(dir.path());
        let mut q = Queue::default();
        for n in 0..MAX_ITEMS {
            let mut it = item.clone();
            it.id = format!("i{n}");
            q.items.push(it);
        }
        // Full of pending items: refused, nothing dropped.
        assert!(matches!(
            q.push(item.clone()),
            Err(QueueError::Full(MAX_ITEMS))
        ));
        // Two uploaded items: the older one goes first.
        for id in ["i7", "i3"] {
            q.get_mut(id).unwrap().state = State::Done { media_id: None };
        }
        q.push(item.clone()).unwrap();
        assert_eq!(q.items.len(), MAX_ITEMS);
        assert!(q.get("i3").is_none() && q.get("i7").is_some());
        q.push(item.clone()).unwrap();
        assert!(q.get("i7").is_none());
        assert!(matches!(q.push(item), Err(QueueError::Full(_))));
    }

    #[test]
    fn an_update_that_fails_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let qf = QueueFile::new(dir.path().join("queue.json"));
        qf.update(|q| q.push(sample_item(dir.path()))).unwrap();
        let before = std::fs::read(qf.path()).unwrap();
        let r: Result<(), _> = qf.update(|q| {
            q.items.clear();
            Err(QueueError::NoSuchItem("x".into()))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(qf.path()).unwrap(), before);
    }

    /// Table of bad queue files: each gives a clear error naming the problem, the bad file is
    /// kept aside byte for byte, and the next use starts from an empty queue.
    #[test]
    fn bad_queue_files_are_kept_aside_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let good = {
            let mut q = Queue::default();
            q.items.push(sample_item(dir.path()));
            serde_json::to_value(&q).unwrap()
        };
        let with_item = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = good.clone();
            f(&mut v["items"][0]);
            serde_json::to_vec(&v).unwrap()
        };
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let cases: Vec<(&str, Vec<u8>, &str, usize)> = vec![
            ("empty", vec![], "empty", 0),
            ("whitespace", b"  \n".to_vec(), "empty", 0),
            (
                "truncated",
                serde_json::to_vec(&good).unwrap()[..50].to_vec(),
                "not a valid queue",
                0,
            ),
            (
                "binary",
                vec![0xff, 0x00, 0x13, 0x37],
                "not a valid queue",
                0,
            ),
            ("not an object", b"[1,2,3]".to_vec(), "not a valid queue", 0),
            ("deeply nested", deep.into_bytes(), "not a valid queue", 0),
            (
                "version 0",
                br#"{"version":0,"items":[]}"#.to_vec(),
                "version 0",
                0,
            ),
            (
                "relative path",
                with_item(&|i| i["path"] = "rec.mp4".into()),
                "not absolute",
                0,
            ),
            (
                "NUL in path",
                with_item(&|i| i["path"] = "/tmp/a\u{0}b".into()),
                "control",
                0,
            ),
            (
                "file URL server",
                with_item(&|i| i["destination"]["server"] = "file:///etc/passwd".into()),
                "not an http(s) URL",
                0,
            ),
            (
                "offset past size",
                with_item(&|i| i["offset"] = 1000.into()),
                "past the file's size",
                0,
            ),
            (
                "bad sha",
                with_item(&|i| i["file"]["sha256"] = "xyz".into()),
                "sha256",
                0,
            ),
            (
                "bad id",
                with_item(&|i| i["id"] = "../../x".into()),
                "bad item id",
                0,
            ),
            (
                "huge title",
                with_item(&|i| i["destination"]["title"] = "t".repeat(5000).into()),
                "title is longer",
                0,
            ),
            (
                "unknown state",
                with_item(&|i| i["state"] = serde_json::json!({"kind": "exploded"})),
                "not a valid queue",
                0,
            ),
            (
                "negative offset",
                with_item(&|i| i["offset"] = (-1).into()),
                "not a valid queue",
                0,
            ),
            (
                "duplicate ids",
                {
                    let mut v = good.clone();
                    let it = v["items"][0].clone();
                    v["items"].as_array_mut().unwrap().push(it);
                    serde_json::to_vec(&v).unwrap()
                },
                "appears twice",
                1,
            ),
            (
                "one bad item among good ones",
                {
                    let items: Vec<serde_json::Value> = (0..3)
                        .map(|n| {
                            let mut v = serde_json::to_value(sample_item(dir.path())).unwrap();
                            if n == 1 {
                                v["path"] = "relative.mp4".into();
                            }
                            v
                        })
                        .collect();
                    serde_json::to_vec(&serde_json::json!({"version": 1, "items": items})).unwrap()
                },
                "item 2: path",
                2,
            ),
        ];
        for (name, bytes, want, carried) in cases {
            let case_dir = dir.path().join(name.replace(' ', "-"));
            std::fs::create_dir(&case_dir).unwrap();
            let qf = QueueFile::new(case_dir.join("queue.json"));
            std::fs::write(qf.path(), &bytes).unwrap();
            // Adding to it must not silently replace it either.
            let err = qf.update(|q| q.push(sample_item(dir.path()))).unwrap_err();
            let QueueError::Corrupt {
                kept_as,
                reason,
                carried_over,
                ..
            } = &err
            else {
                panic!("{name}: {err}");
            };
            assert!(reason.contains(want), "{name}: {reason}");
            assert_eq!(*carried_over, carried, "{name}: {err}");
            assert!(
                err.to_string().len() < 600,
                "{name}: one readable line: {err}"
            );
            assert_eq!(
                std::fs::read(kept_as).unwrap(),
                bytes,
                "{name}: kept as it was"
            );
            assert_eq!(
                qf.load().unwrap().items.len(),
                carried,
                "{name}: a fresh start with what could be read"
            );
            qf.update(|q| q.push(sample_item(dir.path()))).unwrap();
            assert_eq!(qf.load().unwrap().items.len(), carried + 1, "{name}");
        }
    }

    /// A queue of `n` items as this program writes it, and the items.
    fn written_queue(dir: &Path, n: usize, last_error: &str) -> (Vec<u8>, Vec<Item>) {
        let mut q = Queue::default();
        for _ in 0..n {
            let mut it = sample_item(dir);
            it.last_error = Some(last_error.to_string());
            q.push(it).unwrap();
        }
        (serde_json::to_vec_pretty(&q).unwrap(), q.items)
    }

    /// Table: damaged files whose JSON no longer parses, or that grew past the size limit:
    /// every whole item still in them is carried over to the new queue, and the file is kept
    /// aside byte for byte.
    #[test]
    fn damaged_queue_files_carry_over_every_whole_item() {
        let dir = tempfile::tempdir().unwrap();
        let (three, items) = written_queue(dir.path(), 3, "cannot reach the server");
        let second_item_at = {
            let starts: Vec<usize> = three
                .windows(6)
                .enumerate()
                .filter(|(_, w)| *w == b"\n    {")
                .map(|(i, _)| i)
                .collect();
            starts[1] + 20
        };
        let stray = {
            let mut b = three.clone();
            b.insert(second_item_at, b'#');
            b
        };
        let truncated_in_third = three[..three.len() - 200].to_vec();
        let (oversize, _) = written_queue(dir.path(), 4000, &"e".repeat(4000));
        assert!(oversize.len() as u64 > MAX_FILE_BYTES);
        // (case, bytes, ids carried over)
        let cases: [(&str, Vec<u8>, Vec<&str>); 4] = [
            (
                "a stray byte in the second item",
                stray,
                vec![&items[0].id, &items[2].id],
            ),
            (
                "cut off in the third item",
                truncated_in_third,
                vec![&items[0].id, &items[1].id],
            ),
            (
                "cut off before the first item ends",
                three[..300].to_vec(),
                vec![],
            ),
            ("over the size limit", oversize, vec![]),
        ];
        for (name, bytes, want) in cases {
            let case_dir = dir.path().join(name.replace(' ', "-"));
            std::fs::create_dir(&case_dir).unwrap();
            let qf = QueueFile::new(case_dir.join("queue.json"));
            std::fs::write(qf.path(), &bytes).unwrap();
            let err = qf.load().unwrap_err();
            let QueueError::Corrupt {
                kept_as,
                carried_over,
                ..
            } = &err
            else {
                panic!("{name}: {err}");
            };
            assert_eq!(std::fs::read(kept_as).unwrap(), bytes, "{name}");
            let got = qf.load().unwrap();
            if name == "over the size limit" {
                assert_eq!(*carried_over, 4000, "{name}: {err}");
                assert_eq!(got.items.len(), 4000, "{name}");
                let e = got.items[0].last_error.as_deref().unwrap();
                assert_eq!(e.chars().count(), SALVAGED_ERROR_CHARS, "{name}");
            } else {
                let ids: Vec<&str> = got.items.iter().map(|i| i.id.as_str()).collect();
                assert_eq!(ids, want, "{name}: {err}");
                assert_eq!(*carried_over, want.len(), "{name}");
            }
        }
    }

    /// Writes that `read` would refuse are refused: a queue past the size limit, a queue file
    /// someone made read-only. The file stays as it was.
    #[test]
    fn writes_past_the_size_limit_or_onto_a_read_only_file_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let qf = QueueFile::new(dir.path().join("queue.json"));
        let (bytes, _) = written_queue(dir.path(), 3000, &"e".repeat(4000));
        assert!((bytes.len() as u64) < MAX_FILE_BYTES);
        std::fs::write(qf.path(), &bytes).unwrap();
        let err = qf
            .update(|q| {
                for _ in 0..700 {
                    let mut it = sample_item(dir.path());
                    it.last_error = Some("e".repeat(4000));
                    q.push(it)?;
                }
                Ok(())
            })
            .unwrap_err();
        assert!(
            matches!(&err, QueueError::Unsavable(m) if m.contains("MiB")),
            "{err}"
        );
        assert_eq!(std::fs::read(qf.path()).unwrap(), bytes);

        let small = QueueFile::new(dir.path().join("ro.json"));
        small.update(|q| q.push(sample_item(dir.path()))).unwrap();
        std::fs::set_permissions(small.path(), std::fs::Permissions::from_mode(0o400)).unwrap();
        let before = std::fs::read(small.path()).unwrap();
        let err = small
            .update(|q| q.push(sample_item(dir.path())))
            .unwrap_err();
        assert!(err.to_string().contains("read-only"), "{err}");
        assert_eq!(std::fs::read(small.path()).unwrap(), before);
        assert_eq!(small.load().unwrap().items.len(), 1, "still listed");
    }

    #[test]
    fn a_dangling_symlink_gets_the_queue_where_it_points() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink("real.json", &link).unwrap();
        QueueFile::new(&link)
            .update(|q| q.push(sample_item(dir.path())))
            .unwrap();
        assert!(link.is_symlink());
        assert_eq!(
            QueueFile::new(dir.path().join("real.json"))
                .load()
                .unwrap()
                .items
                .len(),
            1
        );
    }

    #[test]
    fn huge_and_odd_queue_files() {
        let dir = tempfile::tempdir().unwrap();
        // Bigger than the limit: kept aside (and past the salvage limit not even read).
        let qf = QueueFile::new(dir.path().join("queue.json"));
        let f = File::create(qf.path()).unwrap();
        f.set_len(MAX_SALVAGE_BYTES + 1).unwrap();
        let err = qf.load().unwrap_err();
        assert!(
            matches!(&err, QueueError::Corrupt { reason, .. } if reason.contains("MiB")),
            "{err}"
        );
        assert_eq!(qf.load().unwrap(), Queue::default());

        // A newer program's queue is left exactly where it is.
        let qf = QueueFile::new(dir.path().join("newer.json"));
        let newer = br#"{"version": 7, "items": [{"whatever": true}]}"#;
        std::fs::write(qf.path(), newer).unwrap();
        let err = qf.update(|q| q.push(sample_item(dir.path()))).unwrap_err();
        assert!(
            matches!(err, QueueError::NewerVersion { found: 7, .. }),
            "{err}"
        );
        assert_eq!(std::fs::read(qf.path()).unwrap(), newer);

        // Unknown extra fields (from a later minor change) are tolerated.
        let qf = QueueFile::new(dir.path().join("extra.json"));
        let mut v = serde_json::to_value(Queue {
            version: 1,
            items: vec![sample_item(dir.path())],
        })
        .unwrap();
        v["items"][0]["future_field"] = 1.into();
        std::fs::write(qf.path(), serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(qf.load().unwrap().items.len(), 1);
    }

    /// Table: what sits at the queue's path is not a file of ours. Every command (load, add,
    /// run lock) answers with a clear error, and nothing there is renamed or replaced.
    #[test]
    fn things_that_are_not_a_queue_file_are_left_where_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let make_dir = |p: &Path| std::fs::create_dir(p).unwrap();
        let make_fifo = |p: &Path| {
            let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        };
        let make_socket = |p: &Path| {
            std::mem::forget(std::os::unix::net::UnixListener::bind(p).unwrap());
        };
        type Make<'a> = &'a dyn Fn(&Path);
        let cases: [(&str, Make, &str); 3] = [
            ("dir.json", &make_dir, "a directory"),
            ("fifo.json", &make_fifo, "a pipe"),
            ("socket.json", &make_socket, "a socket"),
        ];
        for (name, make, kind) in cases {
            let path = dir.path().join(name);
            make(&path);
            let qf = QueueFile::new(&path);
            let errors = [
                qf.load().map(|_| ()).unwrap_err(),
                qf.update(|q| q.push(sample_item(dir.path())).map(|_| ()))
                    .unwrap_err(),
            ];
            for err in errors {
                assert!(
                    matches!(&err, QueueError::NotAFile { kind: k, .. } if *k == kind),
                    "{name}: {err}"
                );
                assert!(err.to_string().contains("--queue"), "{name}: {err}");
            }
            assert!(path.exists(), "{name}: still there");
            let aside = files_in(dir.path())
                .into_iter()
                .filter(|f| f.contains("corrupt"))
                .count();
            assert_eq!(aside, 0, "{name}: nothing renamed");
        }
    }

    /// A queue reached through a symbolic link: updates go to the file it points to, the link
    /// stays a link, and both names share one lock.
    #[test]
    fn a_symlinked_queue_stays_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        let link = dir.path().join("link.json");
        QueueFile::new(&real)
            .update(|q| q.push(sample_item(dir.path())))
            .unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let via_link = QueueFile::new(&link);
        via_link
            .update(|q| q.push(sample_item(dir.path())))
            .unwrap();
        assert!(link.is_symlink());
        assert_eq!(QueueFile::new(&real).load().unwrap().items.len(), 2);
        let held = via_link.try_lock_runner().unwrap().unwrap();
        assert!(QueueFile::new(&real).try_lock_runner().unwrap().is_none());
        drop(held);
    }

    /// Table: changes that would store what the queue refuses to read back are refused, and
    /// the file stays byte for byte as it was (before, one such item set the whole queue
    /// aside at the next load).
    #[test]
    fn changes_that_could_not_be_read_back_are_not_saved() {
        let dir = tempfile::tempdir().unwrap();
        let qf = QueueFile::new(dir.path().join("queue.json"));
        let id = qf.update(|q| q.push(sample_item(dir.path()))).unwrap();
        let before = std::fs::read(qf.path()).unwrap();
        let long_url = format!("http://127.0.0.1/files/{}", "a".repeat(5000));
        type Change = Box<dyn Fn(&mut Item)>;
        let cases: [(&str, Change, &str); 4] = [
            (
                "token with CR LF",
                Box::new(|i| i.auth.bearer = Some("abc\r\nX-Evil: 1".into())),
                "token contains control",
            ),
            (
                "5000-character token",
                Box::new(|i| i.auth.bearer = Some("t".repeat(5000))),
                "token is longer",
            ),
            (
                "5000-character upload URL",
                Box::new(move |i| i.upload_url = Some(long_url.clone())),
                "upload URL is too long",
            ),
            (
                "offset past the end",
                Box::new(|i| i.offset = i.file.size + 1),
                "past the file's size",
            ),
        ];
        for (name, change, want) in cases {
            let err = qf
                .update(|q| {
                    change(q.get_mut(&id).unwrap());
                    Ok(())
                })
                .unwrap_err();
            assert!(
                matches!(&err, QueueError::Unsavable(m) if m.contains(want)),
                "{name}: {err}"
            );
            assert!(err.to_string().contains("unchanged"), "{name}: {err}");
            assert_eq!(std::fs::read(qf.path()).unwrap(), before, "{name}");
        }
    }

    /// A queue someone may read but not change (a backup, a read-only mount): it lists, and a
    /// change says why it cannot be made. Permissions do not stop root, so as root (CI) the
    /// test runs itself again as `nobody`.
    #[test]
    fn a_read_only_queue_can_be_listed() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let status = std::process::Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(std::env::current_exe().unwrap())
                .args(["--exact", "queue::tests::a_read_only_queue_can_be_listed"])
                .env("TMPDIR", "/tmp")
                .status()
                .expect("setpriv (util-linux) runs the test as nobody");
            assert!(status.success(), "as nobody: {status}");
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("ro");
        let qf = QueueFile::new(sub.join("queue.json"));
        qf.update(|q| q.push(sample_item(dir.path()))).unwrap();
        std::fs::remove_file(sub.join("queue.json.lock")).unwrap();
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o500)).unwrap();
        let listed = qf.load().map(|q| q.items.len());
        let runner = qf.runner_pid();
        let change = qf.update(|q| q.push(sample_item(dir.path())));
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(listed.unwrap(), 1);
        assert_eq!(runner.unwrap(), None);
        let err = change.unwrap_err().to_string();
        assert!(err.contains("Permission denied"), "{err}");
        assert_eq!(
            err.matches("Permission denied").count(),
            1,
            "said once: {err}"
        );
    }

    #[test]
    fn stale_temporary_files_are_swept_and_the_old_queue_survives() {
        let dir = tempfile::tempdir().unwrap();
        let qf = QueueFile::new(dir.path().join("queue.json"));
        qf.update(|q| q.push(sample_item(dir.path()))).unwrap();
        // What a writer killed between "write temp" and "rename" leaves.
        std::fs::write(dir.path().join(".queue.json.abc123.tmp"), b"{\"half").unwrap();
        let qf = QueueFile::new(dir.path().join("queue.json"));
        assert_eq!(qf.load().unwrap().items.len(), 1);
        qf.update(|q| q.push(sample_item(dir.path()))).unwrap();
        assert_eq!(files_in(dir.path()), ["queue.json", "queue.json.lock"]);
    }

    #[test]
    fn one_runner_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let qf = QueueFile::new(dir.path().join("queue.json"));
        let held = qf.try_lock_runner().unwrap().unwrap();
        // flock locks belong to the open file, so a second open in this process conflicts
        // just like another process would.
        assert!(qf.try_lock_runner().unwrap().is_none());
        assert_eq!(qf.runner_pid().unwrap(), Some(std::process::id()));
        drop(held);
        assert!(qf.try_lock_runner().unwrap().is_some());
        assert_eq!(qf.runner_pid().unwrap(), None);
    }

    const WRITER_ENV: &str = "UPLOAD_QUEUE_TEST_WRITER";

    /// Not a test on its own: the child process of `survives_kill_at_any_instant`, which
    /// rewrites the queue in a loop until it is killed.
    #[test]
    fn queue_writer_child() {
        let Ok(path) = std::env::var(WRITER_ENV) else {
            return;
        };
        let qf = QueueFile::new(path);
        let dir = tempfile::tempdir().unwrap();
        for n in 0u64.. {
            qf.update(|q| {
                if q.items.is_empty() {
                    q.push(sample_item(dir.path()))?;
                }
                // A growing counter in attempts and a changing size of the file.
                q.items[0].attempts = q.items[0].attempts.wrapping_add(1);
                q.items[0].last_error = Some("x".repeat((n % 500) as usize));
                Ok(())
            })
            .unwrap();
        }
    }

    /// Kills a process rewriting the queue at random instants (SIGKILL): every time, the
    /// queue reads back whole, and its counter never goes backwards.
    #[test]
    fn survives_kill_at_any_instant() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queue.json");
        let exe = std::env::current_exe().unwrap();
        let mut last = 0u32;
        let mut delays = crate::backoff::Backoff {
            initial: std::time::Duration::from_millis(3),
            max: std::time::Duration::from_millis(120),
        };
        for round in 1..=12u32 {
            let mut child = std::process::Command::new(&exe)
                .args(["--exact", "queue::tests::queue_writer_child", "--nocapture"])
                .env(WRITER_ENV, &path)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(60) + delays.delay(round));
            delays.max += std::time::Duration::from_millis(7);
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            let q = QueueFile::new(&path)
                .load()
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            if let Some(item) = q.items.first() {
                assert!(item.attempts >= last, "round {round}: went backwards");
                last = item.attempts;
            }
        }
        assert!(last > 0, "the writer never got to write");
    }
}
