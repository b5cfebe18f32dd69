//! Resumable uploads of finished recordings, for the desktop app and the `recorder` CLI.
//!
//! - [`tus`]: a tus 1.0 client (creation, chunked `PATCH` with a SHA-256 per chunk, `HEAD`,
//!   termination) on reqwest with rustls.
//! - [`queue`]: the durable queue, one JSON file written atomically, locked against two
//!   runners; it survives a kill at any instant.
//! - [`runner`]: uploads pending items, resuming at the server's offset after a network error,
//!   a 409 or a restart, with backoff on failures that heal and a final state on those that
//!   cannot; progress through a `watch` channel.
//! - [`enqueue`]: checks a finished recording and adds it to the queue.
//!
//! The local file is never deleted before the server confirms the media entry, and by default
//! it is kept.

pub mod backoff;
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
pub use runner::{ItemReport, RunMode, RunReport, Runner, RunnerConfig, RunnerHandle};
pub use tus::{Auth, ClientConfig, TusClient};

/// How [`enqueue`] treats the file.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnqueueOptions {
    /// Skip the MP4 check (for other kinds of media, or tests of upload mechanics).
    pub any_file: bool,
    /// Delete the local file once the server confirmed its media entry.
    pub delete_after_upload: bool,
}

/// Adds a finished recording to the queue: checks it is a complete MP4 (cheap: box headers
/// only), fingerprints it (reads it once: SHA-256), and stores the item. Returns the item.
///
/// Blocking (reads the whole file); the caller says the recording is finished.
pub fn enqueue(
    queue: &QueueFile,
    path: &Path,
    destination: Destination,
    auth: Auth,
    options: EnqueueOptions,
) -> Result<Item, QueueError> {
    let path = std::path::absolute(path).map_err(|source| QueueError::Io {
        what: "cannot resolve",
        path: path.to_path_buf(),
        source,
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
    let id = queue.update(|q| q.push(item.clone()))?;
    item.id = id;
    Ok(item)
}
