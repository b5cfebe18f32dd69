//! The crate's typed errors: what went wrong talking tus to a server ([`TusError`]), and what went
//! wrong with the queue file or a queued file ([`QueueError`]). Every message is one line meant
//! for a person; the runner turns them into an item's `last_error` or final state.

use std::path::PathBuf;

/// A failed tus request, classified so the runner can decide between "try again later",
/// "resume from the server's offset" and "stop: this cannot heal by waiting".
#[derive(Debug, thiserror::Error)]
pub enum TusError {
    /// No answer: connection refused or reset, DNS failure, timeout. Heals by waiting.
    #[error("cannot reach {url}: {reason}")]
    Network { url: String, reason: String },
    /// The server answered with a status this request did not expect.
    #[error("{method} {url}: the server answered {status}{}", message_suffix(.message))]
    Status {
        method: &'static str,
        url: String,
        status: u16,
        /// The server's one-line explanation (the JSON `error` field, or the text body).
        message: String,
    },
    /// The server answered 2xx but broke the protocol (a missing or malformed header).
    #[error("{url}: {reason}")]
    Protocol { url: String, reason: String },
    /// A local problem preparing the request (an invalid header value, a bad URL).
    #[error("{0}")]
    Request(String),
}

fn message_suffix(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

impl TusError {
    /// The HTTP status, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            TusError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Problems with the queue file, its lock, or a file being enqueued.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The cause is part of the message (not a `source`), so a chain printer such as
    /// anyhow's `{:#}` does not say it twice.
    #[error("{what} {}: {cause}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },
    /// The queue path exists but is not a regular file (a directory, a device, a socket): it is
    /// not ours to rename or replace, so nothing is touched.
    #[error("the upload queue {} is not a regular file ({kind}); give --queue a file path", path.display())]
    NotAFile { path: PathBuf, kind: &'static str },
    /// Another process (the app, another `recorder`) is running this queue now.
    #[error("process {pid} is already uploading from {}", path.display())]
    RunnerElsewhere { path: PathBuf, pid: u32 },
    /// A change would have stored something this program refuses to read back (a token with
    /// control characters, a server's absurdly long URL): the queue was left as it was.
    #[error("not saved, the upload queue is unchanged: {0}")]
    Unsavable(String),
    /// The queue file could not be read as a queue. It was renamed, never overwritten, so
    /// nothing in it is lost; the new queue starts with the items that could still be read.
    #[error(
        "the upload queue {} is unreadable ({reason}); it was kept as {} and {}",
        path.display(),
        kept_as.display(),
        match carried_over {
            0 => "a new, empty queue will be used".to_string(),
            1 => "the 1 item that could be read is in the new queue".to_string(),
            n => format!("the {n} items that could be read are in the new queue"),
        }
    )]
    Corrupt {
        path: PathBuf,
        kept_as: PathBuf,
        reason: String,
        /// Items carried over to the new queue.
        carried_over: usize,
    },
    /// Written by a newer program: left untouched, so that program still finds it.
    #[error(
        "the upload queue {} has format version {found}; this program understands up to {supported} (update it)",
        path.display()
    )]
    NewerVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("no item {0:?} in the upload queue")]
    NoSuchItem(String),
    #[error("item {0} is already uploaded")]
    AlreadyDone(String),
    #[error(
        "this file was already uploaded there (item {id}{}); `queue remove {id}` first to send it again",
        media_id.as_deref().map(|m| format!(", media entry {m}")).unwrap_or_default()
    )]
    AlreadyUploaded {
        id: String,
        media_id: Option<String>,
    },
    #[error(
        "this file is already in the upload queue for that room as {id} ({state}); use `queue retry {id}`"
    )]
    AlreadyQueued { id: String, state: &'static str },
    #[error("item {id} is being uploaded by another process; stop it first")]
    Busy { id: String },
    #[error("{} is not a finished recording: {reason}", path.display())]
    NotPlayable { path: PathBuf, reason: String },
    #[error("invalid upload destination: {0}")]
    BadDestination(String),
    #[error(
        "the upload queue is full ({0} items, none of them uploaded); remove some with `queue remove`"
    )]
    Full(usize),
}
