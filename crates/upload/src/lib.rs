//! Resumable uploads of finished recordings, for the desktop app and the `recorder` CLI.
//!
//! - [`tus`]: a tus 1.0 client (creation, chunked `PATCH` with a checksum per chunk: the
//!   cheapest the server offers, `HEAD`, termination) on reqwest with rustls.
//! - [`queue`]: the durable queue, one JSON file written atomically, locked against two
//!   runners; it survives a kill at any instant.
//! - [`runner`]: uploads pending items, resuming at the server's offset after a network error,
//!   a 409 or a restart, with backoff on failures that heal and a final state on those that
//!   cannot; progress through a `watch` channel. Bodies are streamed from the file and chunks
//!   grow on fast links, so memory stays small whatever the sizes.
//! - [`enqueue`]: checks a finished recording and adds it to the queue.
//!
//! The local file is never deleted before the server confirms the media entry, and by default
//! it is kept.

pub mod backoff;
mod body;
mod buffers;
mod chunks;
pub mod error;
pub mod fingerprint;
pub mod mp4;
pub mod progress;
pub mod queue;
pub mod runner;
pub mod tus;

use std::path::Path;

pub use backoff::Backoff;
pub use error::{QueueError, TusError};
pub use fingerprint::Fingerprint;
pub use progress::{Activity, ItemProgress, Progress};
pub use queue::{Destination, Item, Queue, QueueFile, State};
pub use runner::{
    DEFAULT_CHUNK_SIZE, DEFAULT_MAX_CHUNK_SIZE, ItemReport, RunMode, RunReport, Runner,
    RunnerConfig, RunnerHandle,
};
pub use tus::{Auth, ChecksumAlgorithm, ClientConfig, TusClient};

/// How [`enqueue`] treats the file.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnqueueOptions {
    /// Skip the MP4 check (for other kinds of media, or tests of upload mechanics).
    pub any_file: bool,
    /// Delete the local file once the server confirmed its media entry.
    pub delete_after_upload: bool,
}

/// What [`enqueue`] did.
#[derive(Debug, Clone)]
pub struct Enqueued {
    pub item: Item,
    /// The same file was already waiting for the same place: that item (with the new
    /// credentials) is returned instead of a second one, so it resumes where the server is
    /// and the library does not get the recording twice.
    pub already_queued: bool,
}

/// Adds a finished recording to the queue: checks it is a complete MP4 (cheap: box headers
/// only), fingerprints it (reads it once: SHA-256), and stores the item.
///
/// The same file (path and SHA-256) for the same place (server, live room, breakout room) is
/// queued once: while it waits, the existing item is returned; once uploaded or stopped, the
/// answer is [`QueueError::AlreadyUploaded`] or [`QueueError::AlreadyQueued`].
///
/// Blocking (reads the whole file); the caller says the recording is finished.
pub fn enqueue(
    queue: &QueueFile,
    path: &Path,
    destination: Destination,
    auth: Auth,
    options: EnqueueOptions,
) -> Result<Enqueued, QueueError> {
    let path = std::path::absolute(path).map_err(|cause| QueueError::Io {
        what: "cannot resolve",
        path: path.to_path_buf(),
        cause,
    })?;
    let not_playable = |reason: String| QueueError::NotPlayable {
        path: path.clone(),
        reason,
    };
    if !options.any_file {
        mp4::check(&path).map_err(not_playable)?;
    }
    let file = Fingerprint::compute(&path).map_err(|e| not_playable(e.to_string()))?;
    if file.size == 0 {
        return Err(not_playable("the file is empty".into()));
    }
    let mut item = Item::new(path.clone(), file, destination, auth)?;
    item.delete_after_upload = options.delete_after_upload;
    queue.update(|q| {
        let same = |i: &&mut Item| {
            i.path == item.path
                && i.file.size == item.file.size
                && i.file.sha256 == item.file.sha256
                && i.destination.server == item.destination.server
                && i.destination.live_room == item.destination.live_room
                && i.destination.breakout_room == item.destination.breakout_room
        };
        if let Some(existing) = q.items.iter_mut().find(same) {
            return match &existing.state {
                State::Done { media_id } => Err(QueueError::AlreadyUploaded {
                    id: existing.id.clone(),
                    media_id: media_id.clone(),
                }),
                s if s.is_pending() => {
                    existing.auth = item.auth.clone();
                    existing.updated_at = queue::now_rfc3339();
                    Ok(Enqueued {
                        item: existing.clone(),
                        already_queued: true,
                    })
                }
                s => Err(QueueError::AlreadyQueued {
                    id: existing.id.clone(),
                    state: s.label(),
                }),
            };
        }
        let id = q.push(item.clone())?;
        item.id = id;
        Ok(Enqueued {
            item: item.clone(),
            already_queued: false,
        })
    })
}

/// Puts a failed or "sign in again" item back in line (attempts reset), optionally with new
/// credentials. If the local file changed since it was queued, the person asked for this: the
/// file is fingerprinted again and a new upload replaces the old one (whose URL is returned so
/// the caller can terminate it on the server). Blocking.
pub fn retry(
    queue: &QueueFile,
    id: &str,
    auth: Option<Auth>,
) -> Result<(Item, Option<String>), QueueError> {
    let item = queue
        .load()?
        .get(id)
        .cloned()
        .ok_or_else(|| QueueError::NoSuchItem(id.to_string()))?;
    if matches!(item.state, State::Done { .. }) {
        return Err(QueueError::AlreadyDone(id.to_string()));
    }
    let refreshed = match item.file.check_stat(&item.path) {
        Ok(()) => None,
        Err(fingerprint::FileProblem::Missing(m)) => {
            return Err(QueueError::NotPlayable {
                path: item.path.clone(),
                reason: m,
            });
        }
        Err(fingerprint::FileProblem::Changed(_)) => Some(
            Fingerprint::compute(&item.path).map_err(|e| QueueError::NotPlayable {
                path: item.path.clone(),
                reason: e.to_string(),
            })?,
        ),
    };
    let id = id.to_string();
    queue.update(move |q| {
        let it = q
            .get_mut(&id)
            .ok_or_else(|| QueueError::NoSuchItem(id.clone()))?;
        let mut abandoned = None;
        if let Some(fp) = refreshed {
            it.file = fp;
            abandoned = it.upload_url.take();
            it.offset = 0;
        }
        if let Some(a) = auth {
            it.auth = a;
        }
        if !it.state.is_pending() {
            it.state = State::Waiting;
        }
        it.attempts = 0;
        it.last_error = None;
        it.updated_at = queue::now_rfc3339();
        Ok((it.clone(), abandoned))
    })
}

/// New credentials for a server (after signing in again): every unfinished item for it takes
/// them, and those waiting for a sign-in go back in line. Returns how many items changed.
pub fn set_auth_for_server(
    queue: &QueueFile,
    server: &str,
    auth: Auth,
) -> Result<usize, QueueError> {
    queue.update(|q| {
        let mut n = 0;
        for it in q.items.iter_mut() {
            if it.destination.server == server && !matches!(it.state, State::Done { .. }) {
                it.auth = auth.clone();
                if matches!(it.state, State::NeedsSignIn { .. }) {
                    it.state = State::Waiting;
                    it.attempts = 0;
                    it.last_error = None;
                }
                it.updated_at = queue::now_rfc3339();
                n += 1;
            }
        }
        Ok(n)
    })
}

/// Takes an item out of the queue (the local file is never touched). Refused while another
/// process is sending it. Returns the item, so the caller can terminate its unfinished upload.
pub fn remove(queue: &QueueFile, id: &str) -> Result<Item, QueueError> {
    // This process's own runner notices the removal at its next save and stops.
    let runner_elsewhere = queue
        .runner_pid()?
        .is_some_and(|pid| pid != std::process::id());
    queue.update(|q| {
        let pos = q
            .items
            .iter()
            .position(|i| i.id == id)
            .ok_or_else(|| QueueError::NoSuchItem(id.to_string()))?;
        if runner_elsewhere && q.items[pos].state == State::Uploading {
            return Err(QueueError::Busy { id: id.to_string() });
        }
        Ok(q.items.remove(pos))
    })
}
