//! The runner: takes pending items from the queue one at a time and uploads them, deciding
//! after each failure whether to resume, wait and try again, or stop in a final state.
//!
//! | what happened | what the runner does |
//! |---|---|
//! | connection refused/reset, DNS failure, timeout | item waits; retried with backoff (forever: offline first) |
//! | 5xx (but 501, 505), 408, 423, 429 | item waits; retried with backoff; `max_server_errors` in a row → failed |
//! | 501, 505; an answer that is not HTTP | failed: this server cannot take uploads |
//! | 409 (offset mismatch) | `HEAD`, continue at the server's offset |
//! | 460 (checksum mismatch) | the chunk is sent again; 3 in a row → failed |
//! | 404/410 on a known upload | a new upload of the same file (the old one never completed) |
//! | 401 | needs sign-in (final until a new token) |
//! | 403 | failed: not allowed (e.g. recording turned off for participants); `retry` once allowed |
//! | 413 | failed: too large for this server |
//! | other 4xx | failed, with the server's message |
//! | local file gone or changed | failed; the partial upload is terminated on the server |
//!
//! Each chunk's body is streamed from the file in 256 KiB pieces (`body`); chunks start
//! at `chunk_size` and grow while they go through quickly (`chunks`). Each chunk
//! carries the cheapest checksum the server offers (CRC-32 on the classroom server: it catches
//! damage on the way as well as a hash does, for a fraction of the CPU), combined from the
//! fingerprint's per-MiB CRCs when it can be, computed by a pass over the chunk (ahead, while
//! the previous one is on the wire) otherwise. The file is checked unchanged (size, times,
//! inode) after every piece is read, so a file that changed can never complete an upload (the
//! server files the media entry on the last byte); afterwards the media entry's SHA-256 is
//! compared with the fingerprint's.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Url;
use tokio::sync::{Notify, watch};

use crate::backoff::Backoff;
use crate::body::{self, FileBody, Source};
use crate::buffers::BufferPool;
use crate::chunks::ChunkPlan;
use crate::error::{QueueError, TusError};
use crate::progress::{Activity, ItemProgress, Progress, RateMeter};
use crate::queue::{Item, QueueFile, State, now_rfc3339};
use crate::tus::{ChecksumAlgorithm, ClientConfig, ServerInfo, TusClient, UploadState};

/// `Upload-Metadata` keys the classroom server reads (shared with it, so they cannot drift).
pub use classroom_api::tus::meta;

/// The first and smallest chunk by default: a few MiB, so a slow link still answers every
/// few seconds.
pub const DEFAULT_CHUNK_SIZE: usize = 8 << 20;
/// The largest chunk by default. Chunks only grow where they go through in under a second, so
/// a cut connection costs about a second of work at most; a 256 MiB cap measured no faster on
/// loopback (0.94 vs 0.96 of curl, consecutive runs) and resent three times the bytes after a cut.
pub const DEFAULT_MAX_CHUNK_SIZE: usize = 64 << 20;

/// Settings of a [`Runner`].
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Bytes of the first `PATCH`, and the smallest chunk. Chunks grow on fast links (see
    /// `chunks`); a cut connection resends at most the chunk in flight.
    pub chunk_size: usize,
    /// The largest chunk; equal to `chunk_size` for a fixed size.
    pub max_chunk_size: usize,
    pub backoff: Backoff,
    /// Server errors (5xx, 423, 429) in a row, without progress, before an item fails.
    pub max_server_errors: u32,
    pub client: ClientConfig,
    /// Ask the server (`OPTIONS`) for its limits and checksum algorithms before creating.
    pub discover: bool,
    /// After completion, compare the media entry's SHA-256 with the file's (classroom server:
    /// `GET /api/uploads/{id}`; skipped when the server has no such route).
    pub verify_media: bool,
    /// The queue file is updated with the offset at most this often while uploading.
    pub save_every: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_chunk_size: DEFAULT_MAX_CHUNK_SIZE,
            backoff: Backoff::default(),
            max_server_errors: 10,
            client: ClientConfig::default(),
            discover: true,
            verify_media: true,
            save_every: Duration::from_secs(1),
        }
    }
}

/// Which items a run takes care of, and when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMode {
    /// Every pending item; ends when none is pending.
    UntilIdle,
    /// Only these items; ends when all of them are final (or removed).
    Only(Vec<String>),
    /// Every pending item, then waits for new ones (woken by [`RunnerHandle::wake`], or by
    /// looking at the queue file every few seconds) until stopped.
    Forever,
}

/// What a run did to one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemReport {
    pub id: String,
    pub state: State,
    /// The server's offset when this run first looked (0 for a new upload).
    pub resumed_at: u64,
    /// Bytes put on the wire for this item (every attempt, resent bytes included).
    pub wire_bytes: u64,
    pub size: u64,
}

/// The end of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    pub items: Vec<ItemReport>,
    /// True when [`RunnerHandle::stop`] ended the run (pending items stay queued).
    pub stopped: bool,
}

/// Controls a running [`Runner`] from elsewhere (the UI, a signal handler).
#[derive(Debug, Clone)]
pub struct RunnerHandle {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    wake: Notify,
    stop: watch::Sender<bool>,
    progress: watch::Sender<Progress>,
}

impl RunnerHandle {
    /// Try waiting items now (e.g. the network came back, a new item was queued).
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// Ends the run as soon as possible: the request in flight is abandoned; every item
    /// stays in the queue and resumes at the server's offset next time.
    pub fn stop(&self) {
        self.shared.stop.send_replace(true);
        self.shared.wake.notify_one();
    }

    /// The latest progress, updated at every chunk.
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.shared.progress.subscribe()
    }
}

/// Uploads the queue's items. One runner per queue file at a time (it holds the run lock).
pub struct Runner {
    queue: Arc<QueueFile>,
    config: RunnerConfig,
    shared: Arc<Shared>,
    /// What each endpoint said to `OPTIONS` (asked once per runner), for its checksum.
    servers: Mutex<HashMap<String, ServerInfo>>,
}

/// How one attempt at an item ended.
enum Attempt {
    /// A final state was stored.
    Final(State),
    /// Try again later.
    Retry {
        error: String,
        kind: RetryKind,
        progressed: bool,
    },
    /// The item left the queue while we worked on it.
    Removed,
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RetryKind {
    /// No answer: wait as long as it takes.
    Network,
    /// The server answered with an error it may recover from; limited.
    Server,
}

/// A checksum pass started ahead, for the chunk expected next.
struct ChecksumPass {
    offset: u64,
    len: u64,
    job: tokio::task::JoinHandle<Result<String, String>>,
}

impl ChecksumPass {
    fn start(src: &Source, offset: u64, len: u64, alg: ChecksumAlgorithm) -> ChecksumPass {
        let src = src.clone();
        ChecksumPass {
            offset,
            len,
            job: tokio::task::spawn_blocking(move || body::checksum(&src, offset, len, alg)),
        }
    }

    /// The checksum of `len` bytes at `offset`: from this pass when it covers exactly that
    /// (the guess was right), computed now otherwise.
    async fn take(
        ahead: Option<ChecksumPass>,
        src: &Source,
        offset: u64,
        len: u64,
        alg: ChecksumAlgorithm,
    ) -> Result<String, String> {
        let pass = match ahead {
            Some(p) if p.offset == offset && p.len == len => p,
            _ => ChecksumPass::start(src, offset, len, alg),
        };
        pass.job
            .await
            .map_err(|e| format!("checksum task failed: {e}"))?
    }
}
/// Per-attempt counters for the report.
#[derive(Default)]
struct Tally {
    resumed_at: Option<u64>,
    wire_bytes: u64,
}

/// Statuses a server may answer while busy, restarting or overloaded. 501 (not implemented)
/// and 505 (HTTP version) are how a server says it will never do this: waiting cannot help.
fn heals_by_waiting(status: u16) -> bool {
    matches!(status, 408 | 423 | 429 | 500 | 502..=504 | 506..=599)
}

fn status_error_is_final(status: u16, message: &str) -> Option<State> {
    match status {
        // 401: who you are is not accepted (expired or revoked sign-in): a new token heals it.
        401 => Some(State::NeedsSignIn {
            message: if message.is_empty() {
                "the server refused the credentials (401)".to_string()
            } else {
                message.to_string()
            },
        }),
        // 403: you are known but not allowed (say, a participant's recording after a moderator
        // turned recording off): signing in again would not help, a moderator might.
        403 => Some(State::Failed {
            reason: if message.is_empty() {
                "the server does not allow this upload (403)".to_string()
            } else {
                format!("not allowed: {message}")
            },
        }),
        413 => Some(State::Failed {
            reason: format!(
                "too large for this server{}",
                if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                }
            ),
        }),
        _ => None,
    }
}

impl Runner {
    pub fn new(queue: QueueFile, config: RunnerConfig) -> Runner {
        let (stop, _) = watch::channel(false);
        let (progress, _) = watch::channel(Progress::default());
        Runner {
            queue: Arc::new(queue),
            config,
            shared: Arc::new(Shared {
                wake: Notify::new(),
                stop,
                progress,
            }),
            servers: Mutex::new(HashMap::new()),
        }
    }

    pub fn handle(&self) -> RunnerHandle {
        RunnerHandle {
            shared: self.shared.clone(),
        }
    }

    fn stopped(&self) -> bool {
        *self.shared.stop.borrow()
    }

    async fn stop_requested(&self) {
        let mut rx = self.shared.stop.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    fn publish(&self, activity: Activity) {
        self.shared.progress.send_replace(Progress { activity });
    }

    /// Runs a queue update on a blocking thread (it fsyncs).
    async fn update<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut crate::queue::Queue) -> Result<R, QueueError> + Send + 'static,
    ) -> Result<R, QueueError> {
        let q = self.queue.clone();
        tokio::task::spawn_blocking(move || q.update(f))
            .await
            .map_err(|e| self.task_failed(e))?
    }

    /// A blocking queue task panicked or was cancelled (only at shutdown).
    fn task_failed(&self, e: tokio::task::JoinError) -> QueueError {
        QueueError::Io {
            what: "the queue task failed for",
            path: self.queue.path().to_path_buf(),
            cause: std::io::Error::other(e),
        }
    }

    async fn load(&self) -> Result<crate::queue::Queue, QueueError> {
        let q = self.queue.clone();
        tokio::task::spawn_blocking(move || q.load())
            .await
            .map_err(|e| self.task_failed(e))?
    }

    /// Changes one item; `Ok(false)` when it is no longer in the queue.
    async fn edit(
        &self,
        id: &str,
        f: impl FnOnce(&mut Item) + Send + 'static,
    ) -> Result<bool, QueueError> {
        let id = id.to_string();
        self.update(move |q| {
            Ok(match q.get_mut(&id) {
                Some(item) => {
                    f(item);
                    item.updated_at = now_rfc3339();
                    true
                }
                None => false,
            })
        })
        .await
    }

    /// Processes the queue per `mode`. Fails at once if another process runs this queue.
    pub async fn run(&self, mode: RunMode) -> Result<RunReport, QueueError> {
        let queue = self.queue.clone();
        let lock = tokio::task::spawn_blocking(move || queue.try_lock_runner())
            .await
            .map_err(|e| self.task_failed(e))??;
        let Some(_lock) = lock else {
            return Err(QueueError::RunnerElsewhere {
                path: self.queue.path().to_path_buf(),
                pid: self.queue.runner_pid()?.unwrap_or(0),
            });
        };

        let mut report = RunReport::default();
        let mut not_before: HashMap<String, Instant> = HashMap::new();
        let mut failures: HashMap<String, u32> = HashMap::new();
        let mut tallies: HashMap<String, Tally> = HashMap::new();
        loop {
            if self.stopped() {
                report.stopped = true;
                break;
            }
            let q = self.load().await?;
            let wanted = |item: &Item| match &mode {
                RunMode::Only(ids) => ids.contains(&item.id),
                _ => true,
            };
            let pending: Vec<&Item> = q
                .items
                .iter()
                .filter(|i| i.state.is_pending() && wanted(i))
                .collect();
            if pending.is_empty() {
                if mode != RunMode::Forever {
                    break;
                }
                self.publish(Activity::Idle);
                tokio::select! {
                    () = self.shared.wake.notified() => {}
                    () = tokio::time::sleep(Duration::from_secs(5)) => {}
                    () = self.stop_requested() => {}
                }
                continue;
            }
            let now = Instant::now();
            let ready = pending
                .iter()
                .find(|i| not_before.get(&i.id).is_none_or(|t| *t <= now))
                .map(|i| i.id.clone());
            let Some(id) = ready else {
                let until = pending
                    .iter()
                    .filter_map(|i| not_before.get(&i.id))
                    .min()
                    .copied()
                    .unwrap_or(now);
                tokio::select! {
                    () = self.shared.wake.notified() => not_before.clear(),
                    () = tokio::time::sleep_until(until.into()) => {}
                    () = self.stop_requested() => {}
                }
                continue;
            };

            let tally = tallies.entry(id.clone()).or_default();
            let attempt = match self.attempt(&id, tally).await {
                Ok(a) => a,
                // The queue file itself failed (disk full, corrupt): nothing sensible to do
                // but say so.
                Err(e) => return Err(e),
            };
            match attempt {
                Attempt::Final(state) => {
                    failures.remove(&id);
                    not_before.remove(&id);
                    self.publish(Activity::Finished {
                        item: id.clone(),
                        state: state.label().to_string(),
                    });
                    let t = tallies.remove(&id).unwrap_or_default();
                    report.items.push(ItemReport {
                        size: q.get(&id).map_or(0, |i| i.file.size),
                        id,
                        state,
                        resumed_at: t.resumed_at.unwrap_or(0),
                        wire_bytes: t.wire_bytes,
                    });
                }
                Attempt::Removed => {
                    failures.remove(&id);
                }
                Attempt::Stopped => {
                    report.stopped = true;
                    break;
                }
                Attempt::Retry {
                    error,
                    kind,
                    progressed,
                } => {
                    let n = if progressed {
                        1
                    } else {
                        failures.get(&id).copied().unwrap_or(0) + 1
                    };
                    failures.insert(id.clone(), n);
                    let give_up = kind == RetryKind::Server && n > self.config.max_server_errors;
                    let delay = self.config.backoff.delay(n);
                    tracing::info!(item = %id, %error, retry_in = ?delay, give_up, "upload attempt failed");
                    let err = error.clone();
                    let state = if give_up {
                        State::Failed {
                            reason: format!(
                                "the server keeps failing ({n} times in a row): {error}"
                            ),
                        }
                    } else {
                        State::Waiting
                    };
                    let st = state.clone();
                    self.edit(&id, move |item| {
                        item.attempts = item.attempts.saturating_add(1);
                        item.last_error = Some(err);
                        item.state = st;
                    })
                    .await?;
                    if give_up {
                        let t = tallies.remove(&id).unwrap_or_default();
                        report.items.push(ItemReport {
                            size: q.get(&id).map_or(0, |i| i.file.size),
                            id: id.clone(),
                            state,
                            resumed_at: t.resumed_at.unwrap_or(0),
                            wire_bytes: t.wire_bytes,
                        });
                        failures.remove(&id);
                    } else {
                        not_before.insert(id.clone(), Instant::now() + delay);
                        self.publish(Activity::Waiting {
                            item: id,
                            retry_in: delay,
                            error,
                        });
                    }
                }
            }
        }
        self.publish(Activity::Idle);
        Ok(report)
    }

    /// Stores a final state for `id` (and terminates the partial upload when the file is bad).
    async fn finish(&self, id: &str, state: State) -> Result<Attempt, QueueError> {
        let st = state.clone();
        let found = self
            .edit(id, move |item| {
                if let State::Failed { reason } | State::NeedsSignIn { message: reason } = &st {
                    item.last_error = Some(reason.clone());
                }
                item.state = st;
            })
            .await?;
        Ok(if found {
            Attempt::Final(state)
        } else {
            Attempt::Removed
        })
    }

    /// One attempt at one item: from wherever the server is, as far as it goes.
    async fn attempt(&self, id: &str, tally: &mut Tally) -> Result<Attempt, QueueError> {
        let q = self.load().await?;
        let Some(item) = q.get(id).cloned() else {
            return Ok(Attempt::Removed);
        };
        if !item.state.is_pending() {
            return Ok(Attempt::Final(item.state));
        }

        // The file first: there is nothing to send if it is gone or not what was queued.
        if let Err(problem) = item.file.check_stat(&item.path) {
            return self.file_failed(&item, problem.to_string(), None).await;
        }
        let client = match TusClient::new(&self.config.client, &item.auth) {
            Ok(c) => c,
            Err(e) => {
                return self
                    .finish(
                        id,
                        State::Failed {
                            reason: e.to_string(),
                        },
                    )
                    .await;
            }
        };
        if item.state != State::Uploading && !self.edit(id, |i| i.state = State::Uploading).await? {
            return Ok(Attempt::Removed);
        }
        let result = tokio::select! {
            r = self.transfer(&client, &item, tally) => r,
            () = self.stop_requested() => Ok(Attempt::Stopped),
        };
        let attempt = match result {
            Ok(a) => a,
            Err(Failure::Tus(e)) => self.classify(id, e).await?,
            Err(Failure::Queue(QueueError::NoSuchItem(_))) => return Ok(Attempt::Removed),
            Err(Failure::Queue(e)) => return Err(e),
            Err(Failure::File(problem, url)) => {
                return self.file_failed(&item, problem, url).await;
            }
        };
        if matches!(attempt, Attempt::Stopped) {
            // Pending, with its upload URL: the next run resumes at the server's offset.
            self.edit(id, |i| i.state = State::Waiting).await?;
        }
        Ok(attempt)
    }

    /// Turns a failed request into a retry or a final state.
    async fn classify(&self, id: &str, e: TusError) -> Result<Attempt, QueueError> {
        let msg = e.to_string();
        match &e {
            TusError::Network { .. } => Ok(Attempt::Retry {
                error: msg,
                kind: RetryKind::Network,
                progressed: false,
            }),
            TusError::Status {
                status, message, ..
            } => {
                if let Some(state) = status_error_is_final(*status, message) {
                    return self.finish(id, state).await;
                }
                match *status {
                    s if heals_by_waiting(s) => Ok(Attempt::Retry {
                        error: msg,
                        kind: RetryKind::Server,
                        progressed: false,
                    }),
                    _ => self.finish(id, State::Failed { reason: msg }).await,
                }
            }
            TusError::Protocol { .. } | TusError::Request(_) => {
                self.finish(id, State::Failed { reason: msg }).await
            }
        }
    }

    /// The local file is gone or changed: fail, and drop the partial upload so the server
    /// keeps nothing of it.
    async fn file_failed(
        &self,
        item: &Item,
        problem: String,
        url: Option<Url>,
    ) -> Result<Attempt, QueueError> {
        let url = url.or_else(|| item.upload_url.as_deref().and_then(|u| Url::parse(u).ok()));
        if let Some(url) = url {
            if let Ok(client) = TusClient::new(&self.config.client, &item.auth) {
                match client.terminate(&url).await {
                    Ok(()) => tracing::info!(item = %item.id, "partial upload terminated"),
                    Err(e) => {
                        tracing::warn!(item = %item.id, error = %e, "cannot terminate the partial upload")
                    }
                }
            }
        }
        let reason = format!(
            "{problem}; queue it again with `queue retry {}` if that is intended",
            item.id
        );
        self.finish(&item.id, State::Failed { reason }).await
    }

    fn metadata(item: &Item) -> BTreeMap<String, String> {
        let d = &item.destination;
        BTreeMap::from([
            (meta::LIVE_ROOM.to_string(), d.live_room.clone()),
            (meta::BREAKOUT_ROOM.to_string(), d.breakout_room.clone()),
            (meta::TITLE.to_string(), d.title.clone()),
            (meta::STARTED_AT.to_string(), d.started_at.clone()),
            (meta::DURATION_MS.to_string(), d.duration_ms.to_string()),
            (meta::FILENAME.to_string(), d.filename.clone()),
            (meta::FILETYPE.to_string(), "video/mp4".to_string()),
        ])
    }

    /// Creates the upload on the server and stores its URL before sending a byte, so a crash
    /// from here on resumes instead of starting over.
    async fn create(&self, client: &TusClient, item: &Item) -> Result<Url, Failure> {
        let endpoint = Url::parse(&item.destination.endpoint)
            .map_err(|e| Failure::Tus(TusError::Request(format!("bad endpoint: {e}"))))?;
        let info = self.server_info(client, item).await?;
        if let Some(max) = info.max_size {
            if item.file.size > max {
                return Err(Failure::Tus(TusError::Status {
                    method: "OPTIONS",
                    url: endpoint.to_string(),
                    status: 413,
                    message: format!("{} bytes, the server accepts at most {max}", item.file.size),
                }));
            }
        }
        let url = client
            .create(&endpoint, item.file.size, &Self::metadata(item))
            .await
            .map_err(Failure::Tus)?;
        let u = url.to_string();
        let stored = self
            .edit(&item.id, move |i| {
                i.upload_url = Some(u);
                i.offset = 0;
            })
            .await
            .map_err(Failure::Queue)?;
        if !stored {
            let _ = client.terminate(&url).await;
            return Err(Failure::Queue(QueueError::NoSuchItem(item.id.clone())));
        }
        tracing::info!(item = %item.id, upload = %url, "upload created");
        Ok(url)
    }

    /// What the item's endpoint answered to `OPTIONS`: asked once per runner, and nothing
    /// known when `discover` is off or the server has no `OPTIONS` (it is optional in tus).
    async fn server_info(&self, client: &TusClient, item: &Item) -> Result<ServerInfo, Failure> {
        let key = &item.destination.endpoint;
        if let Some(i) = self.servers.lock().ok().and_then(|m| m.get(key).cloned()) {
            return Ok(i);
        }
        let mut info = ServerInfo::default();
        if self.config.discover {
            let endpoint = Url::parse(key)
                .map_err(|e| Failure::Tus(TusError::Request(format!("bad endpoint: {e}"))))?;
            match client.options(&endpoint).await {
                Ok(i) => info = i,
                Err(e @ TusError::Network { .. }) => return Err(Failure::Tus(e)),
                Err(e) => tracing::debug!(error = %e, "OPTIONS failed; going on without it"),
            }
        }
        if let Ok(mut m) = self.servers.lock() {
            m.insert(key.clone(), info.clone());
        }
        Ok(info)
    }

    /// Finds where the server is: the stored upload if it still exists, else a new one.
    async fn locate(&self, client: &TusClient, item: &Item) -> Result<(Url, UploadState), Failure> {
        if let Some(u) = &item.upload_url {
            let url = Url::parse(u)
                .map_err(|e| Failure::Tus(TusError::Request(format!("bad upload URL: {e}"))))?;
            match client.head(&url).await {
                Ok(state) => {
                    if state.length.is_some_and(|l| l != item.file.size)
                        || state.offset > item.file.size
                    {
                        return Err(Failure::Tus(TusError::Protocol {
                            url: url.to_string(),
                            reason: format!(
                                "the server's upload ({:?} bytes, offset {}) does not match the file ({} bytes)",
                                state.length, state.offset, item.file.size
                            ),
                        }));
                    }
                    return Ok((url, state));
                }
                Err(TusError::Status {
                    status: 404 | 410, ..
                }) => {
                    // Expired or unknown: that upload never completed (a completed one answers
                    // HEAD with its media entry), so a new one cannot make a second entry.
                    tracing::info!(item = %item.id, upload = %url, "upload gone from the server; starting a new one");
                }
                Err(e) => return Err(Failure::Tus(e)),
            }
        }
        let url = self.create(client, item).await?;
        Ok((
            url,
            UploadState {
                offset: 0,
                length: Some(item.file.size),
                media_entry: None,
            },
        ))
    }

    /// Sends the rest of the file from the server's offset; completes and verifies.
    async fn transfer(
        &self,
        client: &TusClient,
        item: &Item,
        tally: &mut Tally,
    ) -> Result<Attempt, Failure> {
        let (url, state) = self.locate(client, item).await?;
        let size = item.file.size;
        tally.resumed_at.get_or_insert(state.offset);
        if state.offset >= size {
            return self.complete(client, item, &url, state.media_entry).await;
        }
        let file_failed = |reason: String| Failure::File(reason, Some(url.clone()));
        // Checked once before anything is read; each piece read is checked again after.
        item.file
            .check_stat(&item.path)
            .map_err(|p| file_failed(p.to_string()))?;
        let file = File::open(&item.path)
            .map_err(|e| file_failed(format!("cannot open {}: {e}", item.path.display())))?;
        let src = Source {
            file: Arc::new(file),
            path: item.path.clone(),
            fingerprint: item.file.clone(),
            buffers: BufferPool::new(body::POOLED_PIECES),
        };
        let checksum = self.server_info(client, item).await?.checksum();
        // CRC-32 servers: chunks of whole blocks take their checksum from the fingerprint's
        // block CRCs, without reading the chunk an extra time.
        let blocks = match checksum {
            Some(ChecksumAlgorithm::Crc32) => item.file.block_crcs(),
            _ => None,
        };
        let known_crc = |offset: u64, len: u64| {
            let blocks = blocks.as_deref()?;
            let crc = item.file.range_crc32(blocks, offset, len)?;
            Some(ChecksumAlgorithm::crc32_header(crc))
        };
        let mut plan = ChunkPlan::new(
            self.config.chunk_size as u64,
            self.config.max_chunk_size as u64,
        );
        let mut offset = state.offset;
        let mut meter = RateMeter::new(Duration::from_secs(5));
        meter.record(Instant::now(), offset);
        let mut last_saved = Instant::now();
        let mut last_took = Duration::ZERO;
        let mut progressed = false;
        let mut conflicts = 0u32;
        let mut checksum_failures = 0u32;
        // The next chunk's checksum, computed while this one is on the wire.
        let mut ahead: Option<ChecksumPass> = None;
        loop {
            if offset >= size {
                // The server has every byte (a resync said so).
                let st = client.head(&url).await.map_err(Failure::Tus)?;
                return self.complete(client, item, &url, st.media_entry).await;
            }
            let len = plan.len(size - offset);
            let end = offset + len;
            let header = match (checksum, known_crc(offset, len)) {
                (Some(_), Some(known)) => Some(known),
                (Some(alg), None) => Some(
                    ChecksumPass::take(ahead.take(), &src, offset, len, alg)
                        .await
                        .map_err(file_failed)?,
                ),
                (None, _) => None,
            };
            if let (Some(alg), true) = (checksum, end < size) {
                // A guess: this chunk goes through as fast as the last one did. When it
                // does not, the pass is thrown away and the next checksum computed then.
                let next = plan.after(len, last_took).len(size - end);
                if known_crc(end, next).is_none() {
                    ahead = Some(ChecksumPass::start(&src, end, next, alg));
                }
            }
            let body = FileBody::start(&src, offset, len);
            let body_failure = body.failure();
            tally.wire_bytes += len;
            let started = Instant::now();
            let result = client
                .patch(&url, offset, reqwest::Body::wrap(body), header.as_deref())
                .await;
            let file_problem = body_failure
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let Some(reason) = file_problem {
                // The body stopped because the file changed; the server kept nothing of a
                // checksummed request, or only bytes read before the change.
                return Err(file_failed(reason));
            }
            match result {
                Ok(st) if st.offset == end => {
                    last_took = started.elapsed();
                    plan = plan.after(len, last_took);
                    offset = end;
                    progressed = true;
                    conflicts = 0;
                    checksum_failures = 0;
                    let now = Instant::now();
                    meter.record(now, offset);
                    self.publish(Activity::Uploading(ItemProgress {
                        item: item.id.clone(),
                        sent: offset,
                        total: size,
                        rate: meter.rate(),
                        eta: meter.eta(size - offset),
                        wire_bytes: tally.wire_bytes,
                    }));
                    if offset >= size {
                        return self.complete(client, item, &url, st.media_entry).await;
                    }
                    if now.duration_since(last_saved) >= self.config.save_every {
                        last_saved = now;
                        if !self
                            .edit(&item.id, move |i| i.offset = offset)
                            .await
                            .map_err(Failure::Queue)?
                        {
                            let _ = client.terminate(&url).await;
                            return Ok(Attempt::Removed);
                        }
                    }
                }
                Ok(st) => {
                    // The server kept a different amount than sent: resync from its offset.
                    // A server whose offset never moves would loop here forever: after a few
                    // answers without progress it is a broken tus server.
                    conflicts += 1;
                    if conflicts > 5 {
                        return Err(Failure::Tus(TusError::Protocol {
                            url: url.to_string(),
                            reason: format!(
                                "the server's offset does not advance (sent up to {end}, it answered {})",
                                st.offset
                            ),
                        }));
                    }
                    tracing::warn!(
                        expected = end,
                        got = st.offset,
                        "server offset differs after PATCH"
                    );
                    offset = self.resync(client, &url, size).await?;
                }
                Err(TusError::Status { status: 409, .. }) if conflicts < 5 => {
                    conflicts += 1;
                    offset = self.resync(client, &url, size).await?;
                }
                Err(TusError::Status { status: 460, .. }) if checksum_failures < 3 => {
                    // Corrupted on the way: nothing was kept, send the same bytes again.
                    checksum_failures += 1;
                }
                Err(TusError::Status {
                    status: 404 | 410, ..
                }) => {
                    // Expired mid-way: the next attempt's HEAD sees it and starts anew.
                    self.edit(&item.id, |i| i.upload_url = None)
                        .await
                        .map_err(Failure::Queue)?;
                    return Ok(Attempt::Retry {
                        error: "the server dropped the unfinished upload; starting a new one"
                            .into(),
                        kind: RetryKind::Server,
                        progressed,
                    });
                }
                Err(e)
                    if matches!(e, TusError::Network { .. })
                        || e.status().is_some_and(heals_by_waiting) =>
                {
                    self.edit(&item.id, move |i| i.offset = offset)
                        .await
                        .map_err(Failure::Queue)?;
                    return Ok(Attempt::Retry {
                        kind: if matches!(e, TusError::Network { .. }) {
                            RetryKind::Network
                        } else {
                            RetryKind::Server
                        },
                        error: e.to_string(),
                        progressed,
                    });
                }
                Err(e) => return Err(Failure::Tus(e)),
            }
        }
    }

    async fn resync(&self, client: &TusClient, url: &Url, size: u64) -> Result<u64, Failure> {
        let st = client.head(url).await.map_err(Failure::Tus)?;
        if st.offset > size {
            return Err(Failure::Tus(TusError::Protocol {
                url: url.to_string(),
                reason: format!("server offset {} is past the file's size {size}", st.offset),
            }));
        }
        Ok(st.offset)
    }

    /// The server has every byte: confirm the media entry (and its checksum when the server
    /// can tell), then mark the item done. Only now may the local file be deleted.
    async fn complete(
        &self,
        client: &TusClient,
        item: &Item,
        url: &Url,
        media_entry: Option<String>,
    ) -> Result<Attempt, Failure> {
        let mut media_id = media_entry;
        let mut verified = false;
        if self.config.verify_media {
            match self.server_media(client, item, url).await {
                Ok(Some((id, sha))) => {
                    if sha != item.file.sha256 {
                        return self
                            .finish(
                                &item.id,
                                State::Failed {
                                    reason: format!(
                                        "the server's copy differs from the local file (sha256 {sha}, local {}); the local file is kept",
                                        item.file.sha256
                                    ),
                                },
                            )
                            .await
                            .map_err(Failure::Queue);
                    }
                    media_id = Some(id);
                    verified = true;
                }
                Ok(None) => {}
                Err(e @ TusError::Network { .. }) => return Err(Failure::Tus(e)),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot verify the media entry; trusting the upload's checksums")
                }
            }
        }
        let size = item.file.size;
        let state = State::Done {
            media_id: media_id.clone(),
        };
        let st = state.clone();
        let found = self
            .edit(&item.id, move |i| {
                i.offset = size;
                i.state = st;
                i.last_error = None;
            })
            .await
            .map_err(Failure::Queue)?;
        if !found {
            return Ok(Attempt::Removed);
        }
        tracing::info!(item = %item.id, media = ?media_id, verified, "upload done");
        if item.delete_after_upload && (verified || media_id.is_some()) {
            match std::fs::remove_file(&item.path) {
                Ok(()) => {
                    tracing::info!(path = %item.path.display(), "local file deleted after confirmed upload")
                }
                Err(e) => {
                    tracing::warn!(path = %item.path.display(), error = %e, "cannot delete the uploaded file")
                }
            }
        }
        Ok(Attempt::Final(state))
    }

    /// The classroom server's media entry for this upload: (id, sha256). `Ok(None)` when the
    /// server is not a classroom server or has no entry to show.
    async fn server_media(
        &self,
        client: &TusClient,
        item: &Item,
        url: &Url,
    ) -> Result<Option<(String, String)>, TusError> {
        let Some(upload_id) = url
            .path_segments()
            .and_then(|mut s| s.next_back())
            .filter(|s| !s.is_empty())
        else {
            return Ok(None);
        };
        let base = Url::parse(&item.destination.server)
            .map_err(|e| TusError::Request(format!("bad server URL: {e}")))?;
        let status_url = base
            .join(&format!("/api/uploads/{upload_id}"))
            .map_err(|e| TusError::Request(format!("bad server URL: {e}")))?;
        match client
            .get_json::<classroom_api::UploadStatus>(&status_url)
            .await
        {
            Ok(classroom_api::UploadStatus {
                complete: true,
                media: Some(m),
                ..
            }) => Ok(Some((m.id, m.sha256))),
            Ok(_) => Ok(None),
            Err(TusError::Status {
                status: 404 | 405, ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Why `transfer` stopped early.
enum Failure {
    Tus(TusError),
    Queue(QueueError),
    /// The local file is gone or changed (with the upload to terminate, if known).
    File(String, Option<Url>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_statuses_are_worth_waiting_for() {
        // (status, retried later)
        let cases = [
            (408, true),
            (423, true),
            (429, true),
            (500, true),
            (501, false),
            (502, true),
            (503, true),
            (504, true),
            (505, false),
            (507, true),
            (400, false),
            (404, false),
            (422, false),
        ];
        for (status, want) in cases {
            assert_eq!(heals_by_waiting(status), want, "{status}");
        }
    }

    #[test]
    fn statuses_that_cannot_heal_by_waiting_end_in_a_clear_state() {
        // (status, server message, expected state label, text the user reads)
        let cases = [
            (
                401,
                "",
                Some("sign in again"),
                "refused the credentials (401)",
            ),
            (401, "sign in again", Some("sign in again"), "sign in again"),
            (
                403,
                "recording is turned off for participants in this live room",
                Some("failed"),
                "not allowed: recording is turned off",
            ),
            (403, "", Some("failed"), "does not allow this upload"),
            (
                413,
                "over 16 GiB",
                Some("failed"),
                "too large for this server: over 16 GiB",
            ),
            (500, "boom", None, ""),
            (409, "", None, ""),
            (460, "", None, ""),
        ];
        for (status, message, label, text) in cases {
            let got = status_error_is_final(status, message);
            assert_eq!(got.as_ref().map(State::label), label, "{status}");
            if let Some(state) = got {
                let shown = match state {
                    State::NeedsSignIn { message } => message,
                    State::Failed { reason } => reason,
                    other => panic!("{status}: {other:?}"),
                };
                assert!(shown.contains(text), "{status}: {shown}");
            }
        }
    }
}
