//! The upload commands of the `recorder` CLI: `upload FILE`, `queue list|retry|remove|run`,
//! and the `record --upload-to` hand-over. Thin: every decision is the `upload` crate's; this
//! file parses flags, prints progress and maps outcomes to exit codes.
//!
//! Exit codes: 0 every item done; 1 an item failed or an error (one line on stderr);
//! 2 bad arguments; 4 the server wants a new sign-in (`queue retry ID --token NEW`);
//! 130 interrupted (Ctrl-C/SIGTERM: the item stays queued and resumes at the server's offset).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use upload::progress::{bar, human_bytes, human_duration};
use upload::{
    Activity, Auth, DEFAULT_CHUNK_SIZE, DEFAULT_MAX_CHUNK_SIZE, Destination, EnqueueOptions, Item,
    QueueFile, RunMode, RunReport, Runner, RunnerConfig, State,
};

// Flag defaults are the runner's, in whole MiB (both are whole MiB by construction).
const DEFAULT_CHUNK_MIB: u64 = (DEFAULT_CHUNK_SIZE >> 20) as u64;
const DEFAULT_MAX_CHUNK_MIB: u64 = (DEFAULT_MAX_CHUNK_SIZE >> 20) as u64;

pub const EXIT_FAILED: i32 = 1;
pub const EXIT_SIGN_IN: i32 = 4;
pub const EXIT_INTERRUPTED: i32 = 130;

/// Where the queue lives and how the runner behaves (shared by every upload command).
#[derive(Args, Debug, Clone)]
pub struct QueueArgs {
    /// Queue file (default: the app's data directory, upload-queue.json).
    #[arg(long, env = "RECORDER_UPLOAD_QUEUE", global = true)]
    pub queue: Option<PathBuf>,
    /// Bytes of the first request, and the fewest per request, in MiB (1-64). Requests grow
    /// while each takes under a second, up to --max-chunk-mib.
    #[arg(long, default_value_t = DEFAULT_CHUNK_MIB, value_parser = clap::value_parser!(u64).range(1..=64), global = true)]
    pub chunk_mib: u64,
    /// The most bytes per request, in MiB (1-256; at least --chunk-mib; equal for a fixed size).
    /// A cut connection sends the request in flight again.
    #[arg(long, default_value_t = DEFAULT_MAX_CHUNK_MIB, value_parser = clap::value_parser!(u64).range(1..=256), global = true)]
    pub max_chunk_mib: u64,
    /// Longest wait between retries while the server is unreachable, in seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    pub max_retry_wait: u64,
    /// Print one JSON object per finished item on stdout.
    #[arg(long, global = true)]
    pub json: bool,
}

impl QueueArgs {
    fn queue_file(&self) -> Result<QueueFile> {
        if self.max_chunk_mib < self.chunk_mib {
            return Err(usage(format!(
                "--max-chunk-mib ({}) is smaller than --chunk-mib ({})",
                self.max_chunk_mib, self.chunk_mib
            )));
        }
        match &self.queue {
            Some(p) => Ok(QueueFile::new(p.clone())),
            None => QueueFile::default_path()
                .map(QueueFile::new)
                .context("no home directory for the upload queue; give --queue FILE"),
        }
    }

    fn runner_config(&self) -> RunnerConfig {
        let mut c = RunnerConfig {
            chunk_size: usize::try_from(self.chunk_mib << 20).unwrap_or(DEFAULT_CHUNK_SIZE),
            max_chunk_size: usize::try_from(self.max_chunk_mib << 20)
                .unwrap_or(DEFAULT_MAX_CHUNK_SIZE),
            ..RunnerConfig::default()
        };
        c.backoff.max = Duration::from_secs(self.max_retry_wait);
        c
    }
}

/// Where to upload and as whom.
#[derive(Args, Debug, Clone)]
pub struct TargetArgs {
    /// Bearer token (prefer the environment variable: arguments are visible to other users).
    #[arg(long, env = "RECORDER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Extra request header for other tus servers' authentication, "Name: value" (repeatable).
    #[arg(long = "header", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// The live room's id.
    #[arg(long)]
    pub live_room: Option<String>,
    /// The breakout room's id (within the live room).
    #[arg(long)]
    pub breakout_room: Option<String>,
    /// Title in the media library (default: the file name).
    #[arg(long)]
    pub title: Option<String>,
    /// The tus creation URL, for servers other than the classroom server (default: SERVER/files/).
    #[arg(long)]
    pub endpoint: Option<String>,
}

#[derive(Args, Debug)]
#[command(
    mut_arg("live_room", |a| a.required(true)),
    mut_arg("breakout_room", |a| a.required(true))
)]
pub struct UploadArgs {
    /// A finished recording (MP4).
    pub file: PathBuf,
    /// The classroom server, e.g. https://classroom.example
    #[arg(long)]
    pub server: String,
    #[command(flatten)]
    pub target: TargetArgs,
    /// When the recording started, RFC 3339 (default: the file's time minus its duration).
    #[arg(long)]
    pub started_at: Option<String>,
    /// The recording's length in seconds (default: read from the MP4 when it says).
    #[arg(long, value_parser = parse_seconds)]
    pub duration: Option<f64>,
    /// Send any file, not only a finished MP4.
    #[arg(long)]
    pub any_file: bool,
    /// Delete the local file once the server confirmed the media entry.
    #[arg(long)]
    pub delete_after_upload: bool,
    /// Queue it and return; `queue run` (or the app) sends it.
    #[arg(long)]
    pub no_wait: bool,
}

/// `record --upload-to …`: hand the finished file to the queue.
#[derive(Args, Debug, Clone)]
pub struct RecordUploadArgs {
    /// Upload the finished recording to this classroom server.
    #[arg(long, value_name = "SERVER", requires_all = ["live_room", "breakout_room"])]
    pub upload_to: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Queue the upload and exit after recording (`queue run` or the app sends it).
    #[arg(long, requires = "upload_to")]
    pub upload_no_wait: bool,
    /// Queue file for the upload (default: the app's data directory).
    #[arg(long, env = "RECORDER_UPLOAD_QUEUE")]
    pub upload_queue: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum QueueCommand {
    /// Show every item: state, progress, size, last error.
    List,
    /// Put a failed or "sign in again" item back in line and send it.
    Retry {
        id: String,
        /// A new bearer token (after signing in again).
        #[arg(long, env = "RECORDER_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Only requeue; do not wait for it.
        #[arg(long)]
        no_wait: bool,
    },
    /// Take an item out of the queue (the local file is kept; an unfinished upload is
    /// abandoned on the server).
    Remove { id: String },
    /// Send every pending item, waiting for the server while it is unreachable.
    Run {
        /// Keep running and pick up items queued later (until Ctrl-C).
        #[arg(long)]
        watch: bool,
    },
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: write a header as \"Name: value\""))?;
    let (k, v) = (k.trim(), v.trim());
    if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(format!("{k:?} is not a header name"));
    }
    Ok((k.to_string(), v.to_string()))
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=604_800.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s:?}: give a number of seconds between 0 and 604800"
        )),
    }
}

/// A bad argument found after parsing: the process exits 2, as for clap's own checks.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn usage(message: String) -> anyhow::Error {
    UsageError(message).into()
}

/// An argument as shown back in an error: a pasted page of text stays one short line.
fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if s.chars().count() > 80 {
        out.push_str("...");
    }
    format!("{out:?}")
}

/// Checks a server URL early, so a typo is one clear line rather than a network error later.
fn server_url(flag: &str, s: &str) -> Result<String> {
    let u =
        reqwest::Url::parse(s.trim()).map_err(|e| usage(format!("{flag} {}: {e}", shown(s))))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(usage(format!(
            "{flag} {}: give an http:// or https:// URL",
            shown(s)
        )));
    }
    if u.as_str().len() > 2000 {
        return Err(usage(format!("{flag}: the URL is too long")));
    }
    Ok(u.as_str().trim_end_matches('/').to_string())
}

fn auth(t: &TargetArgs) -> Result<Auth> {
    let auth = Auth {
        bearer: t.token.as_deref().map(check_token).transpose()?.flatten(),
        headers: t.headers.clone(),
    };
    // The classroom server takes no anonymous uploads: without credentials the item would only
    // wait in the queue to be refused. (Another tus server, `--endpoint`, may not need any.)
    if auth.bearer.is_none() && auth.headers.is_empty() && t.endpoint.is_none() {
        return Err(usage(
            "no sign-in: set RECORDER_TOKEN (or --token) to a token from POST /api/sessions".into(),
        ));
    }
    Ok(auth)
}

/// A token as typed or pasted: surrounding whitespace dropped, empty means none, and anything a
/// header cannot carry is refused here (it would otherwise fail every request, later).
fn check_token(t: &str) -> Result<Option<String>> {
    let t = t.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if t.len() > 4096 {
        return Err(usage(format!(
            "--token is {} characters long; paste only the token",
            t.len()
        )));
    }
    if !t.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(usage(
            "--token has spaces, control characters or non-ASCII letters; paste only the token"
                .into(),
        ));
    }
    Ok(Some(t.to_string()))
}

/// Adds to the queue. A bad destination is a usage error; a queue file that had to be set
/// aside (damaged by hand or by a disk) is reported, and the item goes into a fresh queue, so
/// the recording still gets queued.
///
/// `Ok(None)`: the file is already uploaded to that place; nothing to do.
fn enqueue(
    queue: &QueueFile,
    file: &Path,
    dest: Destination,
    auth: Auth,
    opts: EnqueueOptions,
) -> Result<Option<upload::Enqueued>> {
    let add = || upload::enqueue(queue, file, dest.clone(), auth.clone(), opts);
    let result = match add() {
        Err(e @ upload::QueueError::Corrupt { .. }) => {
            eprintln!("warning: {e}");
            add()
        }
        other => other,
    };
    match result {
        Ok(e) => Ok(Some(e)),
        Err(upload::QueueError::BadDestination(m)) => Err(usage(m)),
        Err(e @ upload::QueueError::AlreadyUploaded { .. }) => {
            eprintln!("Nothing to do: {e}");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// What the person is told about a queued item.
fn say_queued(q: &upload::Enqueued, queue: &QueueFile) {
    let it = &q.item;
    if q.already_queued {
        eprintln!(
            "{} was already queued as {} ({} of {} sent); continuing that upload",
            it.path.display(),
            it.id,
            human_bytes(it.offset),
            human_bytes(it.file.size)
        );
    } else {
        eprintln!(
            "Queued {} as {} ({}) in {}",
            it.path.display(),
            it.id,
            human_bytes(it.file.size),
            queue.path().display()
        );
    }
}

/// An item id as typed: ids are short, so anything else is a typo (said without echoing a
/// pasted page back).
fn item_id(id: &str) -> Result<&str> {
    let id = id.trim();
    if id.is_empty()
        || id.len() > 32
        || !id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(usage(format!(
            "{} is not an item id (see `recorder queue list`)",
            shown(id)
        )));
    }
    Ok(id)
}

fn destination(
    server: &str,
    t: &TargetArgs,
    file: &Path,
    started_at: String,
    duration_ms: u64,
) -> Result<Destination> {
    let server = server_url("--server", server)?;
    let endpoint = match &t.endpoint {
        Some(e) => server_url("--endpoint", e)?,
        None => format!("{server}/files/"),
    };
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "recording.mp4".into());
    let title = t.title.clone().unwrap_or_else(|| default_title(&name));
    let name = library_file_name(&name);
    Ok(Destination {
        server,
        endpoint,
        live_room: t.live_room.clone().context("--live-room is required")?,
        breakout_room: t
            .breakout_room
            .clone()
            .context("--breakout-room is required")?,
        title,
        started_at,
        duration_ms,
        filename: name,
    })
}

/// `text` as the server accepts it: without the characters it refuses, cut to `max`, trimmed;
/// `fallback` when nothing is left. (A file name is not typed as carefully as a title.)
fn plain_text(text: &str, max: usize, fallback: &str) -> String {
    let clean: String = text
        .chars()
        .filter(|c| !classroom_api::tus::is_forbidden_in_text(*c))
        .take(max)
        .collect();
    match clean.trim() {
        "" => fallback.to_string(),
        t => t.to_string(),
    }
}

/// The name the library shows for the file (the local file keeps its own).
fn library_file_name(local: &str) -> String {
    let name = plain_text(
        &local.replace('\\', "_"),
        classroom_api::tus::MAX_FILENAME_CHARS,
        "recording.mp4",
    );
    match name.as_str() {
        "." | ".." => "recording.mp4".to_string(),
        _ => name,
    }
}

/// The title when none is given: the file's name without its extension.
fn default_title(file_name: &str) -> String {
    let stem = Path::new(file_name).file_stem().map_or_else(
        || file_name.to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    plain_text(&stem, classroom_api::tus::MAX_TITLE_CHARS, "Recording")
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// `recorder upload FILE …`
pub fn upload(args: UploadArgs, q: QueueArgs) -> Result<i32> {
    let queue = q.queue_file()?;
    let file = std::path::absolute(&args.file)
        .with_context(|| format!("cannot resolve {}", args.file.display()))?;
    if !file.is_file() {
        bail!("{} is not a file", file.display());
    }
    let duration_ms = match args.duration {
        Some(s) => (s * 1000.0).round() as u64,
        None if args.any_file => 0,
        // The box scan is instant but cannot date a fragmented MP4 without `mehd`; FFmpeg
        // reads its fragments.
        // (Only a file the scan accepts goes to FFmpeg, which would log about a broken one.)
        None => match upload::mp4::check(&file) {
            Ok(info) => info
                .duration_ms
                .or_else(|| encode::probe_duration_ms(&file))
                .unwrap_or(0),
            Err(_) => 0,
        },
    };
    let started_at = match args.started_at {
        Some(s) => {
            chrono::DateTime::parse_from_rfc3339(&s).map_err(|_| {
                usage(format!(
                    "--started-at {}: give an RFC 3339 time like 2025-01-31T09:30:00Z",
                    shown(&s)
                ))
            })?;
            s
        }
        None => {
            let mtime: chrono::DateTime<chrono::Utc> = std::fs::metadata(&file)?.modified()?.into();
            (mtime - chrono::Duration::milliseconds(i64::try_from(duration_ms).unwrap_or(0)))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        }
    };
    let dest = destination(&args.server, &args.target, &file, started_at, duration_ms)?;
    let opts = EnqueueOptions {
        any_file: args.any_file,
        delete_after_upload: args.delete_after_upload,
    };
    let auth = auth(&args.target)?;
    eprintln!("Checking {} ...", file.display());
    let Some(queued) = enqueue(&queue, &file, dest, auth, opts)? else {
        return Ok(0);
    };
    say_queued(&queued, &queue);
    if args.no_wait {
        return Ok(0);
    }
    runtime()?.block_on(send(queue, &q, RunMode::Only(vec![queued.item.id])))
}

/// Checks `record --upload-to …` before the recording starts, so that a typo or a missing
/// token is said now, not after an hour of recording.
pub fn check_record_upload(args: &RecordUploadArgs) -> Result<()> {
    let Some(server) = &args.upload_to else {
        return Ok(());
    };
    server_url("--upload-to", server)?;
    if let Some(e) = &args.target.endpoint {
        server_url("--endpoint", e)?;
    }
    auth(&args.target).map(|_| ())
}

/// `record --upload-to …`, after the recording is saved. The recording is never at risk here:
/// a failure only means the file waits on disk for a later `upload`.
pub fn after_recording(
    args: &RecordUploadArgs,
    file: &Path,
    started_at: chrono::DateTime<chrono::Utc>,
    duration_secs: f64,
) -> Result<i32> {
    let Some(server) = &args.upload_to else {
        return Ok(0);
    };
    let q = QueueArgs {
        queue: args.upload_queue.clone(),
        chunk_mib: DEFAULT_CHUNK_MIB,
        max_chunk_mib: DEFAULT_MAX_CHUNK_MIB,
        max_retry_wait: 60,
        json: false,
    };
    let queue = q.queue_file()?;
    let duration_ms = (duration_secs.max(0.0) * 1000.0).round() as u64;
    let dest = destination(
        server,
        &args.target,
        file,
        started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        duration_ms,
    )?;
    let Some(queued) = enqueue(
        &queue,
        file,
        dest,
        auth(&args.target)?,
        EnqueueOptions::default(),
    )?
    else {
        return Ok(0);
    };
    eprintln!("Queued the recording for upload as {}", queued.item.id);
    if args.upload_no_wait {
        return Ok(0);
    }
    runtime()?.block_on(send(queue, &q, RunMode::Only(vec![queued.item.id])))
}

/// `recorder queue …`
pub fn queue(cmd: QueueCommand, q: QueueArgs) -> Result<i32> {
    let queue = q.queue_file()?;
    match cmd {
        QueueCommand::List => list(&queue, q.json),
        QueueCommand::Retry { id, token, no_wait } => {
            let id = item_id(&id)?.to_string();
            let new_auth = match token.as_deref().map(check_token).transpose()?.flatten() {
                Some(t) => {
                    let mut a = queue
                        .load()?
                        .get(&id)
                        .map(|i| i.auth.clone())
                        .unwrap_or_default();
                    a.bearer = Some(t);
                    Some(a)
                }
                None => None,
            };
            let (item, abandoned) = upload::retry(&queue, &id, new_auth)?;
            let rt = runtime()?;
            if let Some(url) = abandoned {
                eprintln!(
                    "The file changed since it was queued: it will be sent again from the start."
                );
                rt.block_on(terminate(&item, &url));
            }
            eprintln!("{} is back in the queue.", item.id);
            if no_wait {
                return Ok(0);
            }
            rt.block_on(send(queue, &q, RunMode::Only(vec![item.id])))
        }
        QueueCommand::Remove { id } => {
            let item = upload::remove(&queue, item_id(&id)?)?;
            if let (Some(url), false) = (&item.upload_url, matches!(item.state, State::Done { .. }))
            {
                runtime()?.block_on(terminate(&item, url));
            }
            eprintln!(
                "Removed {} from the upload queue; {} is kept.",
                item.id,
                item.path.display()
            );
            Ok(0)
        }
        QueueCommand::Run { watch } => {
            let mode = if watch {
                RunMode::Forever
            } else {
                RunMode::UntilIdle
            };
            runtime()?.block_on(send(queue, &q, mode))
        }
    }
}

/// Abandons an unfinished upload on the server (best effort: it expires anyway).
async fn terminate(item: &Item, url: &str) {
    let (Ok(client), Ok(url)) = (
        upload::TusClient::new(&upload::ClientConfig::default(), &item.auth),
        reqwest::Url::parse(url),
    ) else {
        return;
    };
    match tokio::time::timeout(Duration::from_secs(10), client.terminate(&url)).await {
        Ok(Ok(())) => eprintln!("The unfinished upload was removed from the server."),
        Ok(Err(e)) => eprintln!(
            "warning: could not remove the unfinished upload ({e}); the server deletes it when it expires"
        ),
        Err(_) => eprintln!(
            "warning: the server did not answer; it deletes the unfinished upload when it expires"
        ),
    }
}

fn list(queue: &QueueFile, json: bool) -> Result<i32> {
    let q = queue.load()?;
    let uploading = queue.runner_pid()?.filter(|p| *p != std::process::id());
    if json {
        for it in &q.items {
            println!("{}", serde_json::to_string(&item_json(it))?);
        }
        return Ok(0);
    }
    if q.items.is_empty() {
        println!("The upload queue is empty ({}).", queue.path().display());
        return Ok(0);
    }
    for it in &q.items {
        let state = match &it.state {
            State::Done { media_id: Some(m) } => format!("done ({m})"),
            s => s.label().to_string(),
        };
        println!(
            "{}  {:<13} {}  {:>10} / {:<10} {}",
            it.id,
            state,
            bar(it.offset, it.file.size, 20),
            human_bytes(it.offset),
            human_bytes(it.file.size),
            it.destination.title,
        );
        println!("          {}", it.path.display());
        if let Some(e) = &it.last_error {
            println!("          last error: {e}");
        }
    }
    if let Some(pid) = uploading {
        println!("(process {pid} is uploading; offsets are saved about once a second)");
    }
    Ok(0)
}

/// An item for `--json`: everything but the credentials.
fn item_json(it: &Item) -> serde_json::Value {
    let mut v = serde_json::to_value(it).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("auth");
    }
    v
}

/// Runs the queue and prints progress; the exit code reflects the items' final states. While
/// another process (the app, another `recorder`) runs the queue, this one follows its progress
/// and takes over if that process ends with these items still pending (it may have been sent
/// to upload only its own).
async fn send(queue: QueueFile, q: &QueueArgs, mode: RunMode) -> Result<i32> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => None } } => {}
        }
        stop_tx.send_replace(true);
    });
    loop {
        let runner = Runner::new(queue.clone(), q.runner_config());
        let handle = runner.handle();
        let stopper = {
            let (handle, mut rx) = (handle.clone(), stop_rx.clone());
            tokio::spawn(async move {
                if rx.wait_for(|s| *s).await.is_ok() {
                    handle.stop();
                }
            })
        };
        let printer = tokio::spawn(print_progress(handle.progress()));
        let started = Instant::now();
        let result = runner.run(mode.clone()).await;
        printer.abort();
        stopper.abort();
        if std::io::stderr().is_terminal() {
            eprintln!();
        }
        match result {
            Ok(report) => return Ok(summarize(&report, started.elapsed(), q.json)),
            Err(upload::QueueError::RunnerElsewhere { pid, .. }) => {
                eprintln!("Process {pid} is uploading this queue; following its progress.");
                match follow(&queue, &mode, q.json, stop_rx.clone()).await? {
                    Followed::Finished(code) => return Ok(code),
                    Followed::Interrupted => {
                        eprintln!("Stopped following; the items stay queued.");
                        return Ok(EXIT_INTERRUPTED);
                    }
                    Followed::RunnerGone => {
                        eprintln!("Process {pid} stopped uploading; continuing here.");
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn summarize(report: &RunReport, elapsed: Duration, json: bool) -> i32 {
    let mut code = 0;
    for r in &report.items {
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "id": r.id,
                    "state": r.state.label(),
                    "media_id": match &r.state { State::Done { media_id } => media_id.clone(), _ => None },
                    "size": r.size,
                    "resumed_at": r.resumed_at,
                    "wire_bytes": r.wire_bytes,
                    "seconds": elapsed.as_secs_f64(),
                })
            );
        }
        match &r.state {
            State::Done { media_id } => eprintln!(
                "Uploaded {}: {} ({}{})",
                r.id,
                media_id
                    .as_deref()
                    .map_or("done".to_string(), |m| format!("media entry {m}")),
                human_bytes(r.size),
                if r.resumed_at > 0 {
                    format!(", resumed at {}", human_bytes(r.resumed_at))
                } else {
                    String::new()
                }
            ),
            State::NeedsSignIn { message } => {
                eprintln!(
                    "error: {}: sign in again ({message}); then `recorder queue retry {} --token NEW`",
                    r.id, r.id
                );
                code = code.max(EXIT_SIGN_IN);
            }
            State::Failed { reason } => {
                eprintln!("error: {}: {reason}", r.id);
                code = code.max(EXIT_FAILED);
            }
            State::Waiting | State::Uploading => {}
        }
    }
    if report.stopped {
        eprintln!("Stopped; pending uploads stay queued and resume where the server is.");
        return EXIT_INTERRUPTED;
    }
    code
}

/// How following another process's run ended.
enum Followed {
    /// Every item of the run is final: the exit code.
    Finished(i32),
    /// The other process ended with items of ours still pending.
    RunnerGone,
    /// Ctrl-C or SIGTERM.
    Interrupted,
}

/// Polls the queue file while another process sends it, until the items of `mode` are final.
async fn follow(
    queue: &QueueFile,
    mode: &RunMode,
    json: bool,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Followed> {
    loop {
        let q = queue.load()?;
        let items: Vec<&Item> = q
            .items
            .iter()
            .filter(|i| match mode {
                RunMode::Only(ids) => ids.contains(&i.id),
                _ => true,
            })
            .collect();
        if items.iter().all(|i| !i.state.is_pending()) {
            let report = RunReport {
                items: items
                    .iter()
                    .map(|i| upload::ItemReport {
                        id: i.id.clone(),
                        state: i.state.clone(),
                        resumed_at: 0,
                        wire_bytes: 0,
                        size: i.file.size,
                    })
                    .collect(),
                stopped: false,
            };
            return Ok(Followed::Finished(summarize(&report, Duration::ZERO, json)));
        }
        let Some(pid) = queue.runner_pid()? else {
            return Ok(Followed::RunnerGone);
        };
        for i in items.iter().filter(|i| i.state.is_pending()) {
            eprintln!(
                "{}  {}  {}",
                i.id,
                bar(i.offset, i.file.size, 30),
                i.last_error.as_deref().unwrap_or("")
            );
        }
        // Ours may wait behind the other process's own items (one at a time): say why, so a
        // wait behind a server that is down does not look like a hang.
        let mine: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
        if let Some(busy) = q
            .items
            .iter()
            .filter(|i| !mine.contains(&i.id.as_str()))
            .find(|i| {
                i.state == State::Uploading || (i.state.is_pending() && i.last_error.is_some())
            })
        {
            eprintln!(
                "  (waiting for process {pid}, which is sending {}{})",
                busy.id,
                busy.last_error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stop.wait_for(|s| *s) => return Ok(Followed::Interrupted),
        }
    }
}

/// A status line on stderr: every second on a terminal (rewritten in place), every 5 s in logs.
async fn print_progress(mut rx: tokio::sync::watch::Receiver<upload::Progress>) {
    let tty = std::io::stderr().is_terminal();
    let every = if tty {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(5)
    };
    let mut last = Instant::now() - every;
    while rx.changed().await.is_ok() {
        if last.elapsed() < every {
            continue;
        }
        let line = match &rx.borrow().activity {
            Activity::Uploading(p) => format!(
                "{}  {}  {} / {}  {}/s  {} left",
                p.item,
                bar(p.sent, p.total, 30),
                human_bytes(p.sent),
                human_bytes(p.total),
                human_bytes(p.rate as u64),
                p.eta.map_or("?".into(), human_duration)
            ),
            Activity::Waiting {
                item,
                retry_in,
                error,
            } => format!(
                "{item}  waiting ({error}); next try in {:.0} s",
                retry_in.as_secs_f64().ceil()
            ),
            _ => continue,
        };
        last = Instant::now();
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }
}
