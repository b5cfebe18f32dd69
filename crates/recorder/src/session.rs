//! One recording: wires the capture sources, the mixer and the encoder together on their own
//! threads, watches the disk, and stops cleanly.
//!
//! Threads and queues (all bounded):
//! ```text
//!  video loop ──frames (pool of N buffers)──▶ encoder ──▶ MP4
//!  cpal callbacks ──chunks──▶ mixer ──blocks──▶ encoder
//!  watcher: disk space, fsync of the file, duration limit
//! ```
//! Capture never waits for the encoder (see `capture::video`), so a slow machine costs dropped
//! frames that are counted and reported, never a growing backlog.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use capture::audio::{AudioCapture, AudioSpec};
use capture::mixer::{self, AudioBlock, SourceChunk};
use capture::video::{self, FrameSource, LoopConfig, PixelBuffer, VideoFrame, VideoStats};
use capture::x11::{StageOrigin, X11Source};
use capture::{OutputSize, RecordingClock, Region};
use crossbeam_channel::{Receiver, Sender, bounded, select};
use encode::{FileSummary, Mp4Writer, Settings, VideoParams};

use crate::RecordError;
use crate::disk::{self, DiskPolicy};

/// What to record and where.
#[derive(Debug, Clone)]
pub struct RecordingConfig {
    /// X display name; `None` means `$DISPLAY`.
    pub display: Option<String>,
    /// Stage rectangle in physical pixels; `None` means the whole screen.
    pub region: Option<Region>,
    pub fps: u32,
    pub audio: AudioSpec,
    /// The file to create (must not exist).
    pub output: PathBuf,
    pub disk: DiskPolicy,
    /// Stop by itself after this long.
    pub max_duration: Option<Duration>,
    pub settings: Settings,
    /// Converted frames in circulation between capture and encoder (3.1 MB each at 1080p);
    /// how many frames the encoder may fall behind before capture drops one.
    pub pool_size: usize,
}

impl RecordingConfig {
    pub fn new(output: PathBuf) -> Self {
        Self {
            display: None,
            region: None,
            fps: 30,
            audio: AudioSpec::default(),
            output,
            disk: DiskPolicy::default(),
            max_duration: None,
            settings: Settings::default(),
            pool_size: 4,
        }
    }
}

/// Why a recording ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Requested,
    Duration,
    DiskLow,
    DiskFull,
    EncoderFailed,
    CaptureFailed,
}

impl StopReason {
    const ALL: [StopReason; 6] = [
        StopReason::Requested,
        StopReason::Duration,
        StopReason::DiskLow,
        StopReason::DiskFull,
        StopReason::EncoderFailed,
        StopReason::CaptureFailed,
    ];

    fn code(self) -> u8 {
        self as u8 + 1
    }

    fn from_code(c: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == c)
    }

    /// Whether the recording ended because something went wrong.
    pub fn is_failure(self) -> bool {
        !matches!(self, StopReason::Requested | StopReason::Duration)
    }
}

/// Something the user should know while recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The first frame is captured: the session is now being recorded.
    FirstFrame,
    Warning(String),
    /// The recording stopped by itself (disk, duration, failure); call [`Recording::stop`].
    AutoStop(StopReason),
}

/// A live view of the recording.
#[derive(Debug, Clone, Copy, Default)]
pub struct Status {
    pub elapsed: Duration,
    pub frames: u64,
    pub dropped: u64,
    pub lagged: u64,
    pub bytes: u64,
    pub first_frame_after: Option<Duration>,
}

/// The result of a finished recording.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub path: PathBuf,
    pub reason: StopReason,
    pub duration_secs: f64,
    pub frames_captured: u64,
    pub frames_encoded: u64,
    pub frames_dropped: u64,
    pub frames_lagged: u64,
    pub audio_sources: Vec<String>,
    pub audio_seconds: f64,
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
    pub warnings: Vec<String>,
    /// The error that ended the recording, if one did.
    pub error: Option<String>,
}

/// Shared between the threads of one recording.
struct Shared {
    stop: AtomicBool,
    reason: AtomicU8,
    error: Mutex<Option<String>>,
    events: Sender<Event>,
}

impl Shared {
    /// Records the first reason only: later ones are consequences.
    fn request_stop(&self, reason: StopReason) {
        if self
            .reason
            .compare_exchange(0, reason.code(), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
            && reason != StopReason::Requested
        {
            let _ = self.events.try_send(Event::AutoStop(reason));
        }
        self.stop.store(true, Ordering::Release);
    }

    fn fail(&self, reason: StopReason, message: String) {
        if let Ok(mut e) = self.error.lock() {
            e.get_or_insert(message);
        }
        self.request_stop(reason);
    }
}

/// A recording in progress. Dropping it without [`Recording::stop`] still stops and finalises
/// the file (best effort), so nothing is lost on an early return.
pub struct Recording {
    shared: Arc<Shared>,
    clock: RecordingClock,
    video_stats: Arc<VideoStats>,
    events: Receiver<Event>,
    origin: StageOrigin,
    path: PathBuf,
    size: OutputSize,
    audio: Option<AudioCapture>,
    audio_sources: Vec<String>,
    warnings: Vec<String>,
    audio_stop_at: Arc<OnceLock<u64>>,
    capture_thread: Option<JoinHandle<()>>,
    mixer_thread: Option<JoinHandle<mixer::MixerStats>>,
    encoder_thread: Option<JoinHandle<Result<FileSummary, encode::EncodeError>>>,
    watcher_thread: Option<JoinHandle<()>>,
    finished: Option<Summary>,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("path", &self.path)
            .finish()
    }
}

impl Recording {
    /// Checks everything that can be checked up front, creates the file and starts recording.
    pub fn start(cfg: RecordingConfig) -> Result<Recording, RecordError> {
        if !(1..=60).contains(&cfg.fps) {
            return Err(RecordError::BadFps(cfg.fps));
        }
        let display = capture::x11::resolve_display(cfg.display.as_deref())?;
        let (source, origin) = X11Source::open(&display, cfg.region)?;
        check_output(&cfg.output, &cfg.disk)?;
        Self::start_with_source(Box::new(source), origin, cfg)
    }

    /// Starts recording from any frame source (tests use a synthetic one).
    pub fn start_with_source(
        source: Box<dyn FrameSource>,
        origin: StageOrigin,
        cfg: RecordingConfig,
    ) -> Result<Recording, RecordError> {
        let (w, h) = source.size();
        let size = OutputSize::fit(w, h);
        let params = VideoParams {
            in_width: w,
            in_height: h,
            in_stride: source.stride(),
            out_width: size.width,
            out_height: size.height,
            fps: cfg.fps,
        };
        let mut source: Box<dyn FrameSource> =
            Box::new(crate::convert::ConvertOnCapture::new(source, params)?);

        let (event_tx, events) = bounded(64);
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            reason: AtomicU8::new(0),
            error: Mutex::new(None),
            events: event_tx,
        });
        // Audio devices first: a missing sound server is an error the user must see before a
        // file exists, while a missing microphone is only a warning.
        let prepared = if cfg.audio.any() {
            Some(capture::audio::prepare(&cfg.audio)?)
        } else {
            None
        };
        let with_audio = cfg.audio.any();

        let (frame_tx, frame_rx) = bounded::<VideoFrame>(cfg.pool_size);
        let (recycle_tx, recycle_rx) = bounded::<PixelBuffer>(cfg.pool_size);
        let (block_tx, block_rx) = bounded::<AudioBlock>(256);
        let video_stats = Arc::new(VideoStats::default());
        let audio_stop_at = Arc::new(OnceLock::new());

        // FFmpeg's contexts may not move between threads: the writer is created, used and
        // finished on the encoder thread, which reports whether creating it worked.
        let (ready_tx, ready_rx) = bounded::<Result<(), encode::EncodeError>>(1);
        let encoder_thread = {
            let shared = shared.clone();
            let (path, settings) = (cfg.output.clone(), cfg.settings.clone());
            std::thread::Builder::new()
                .name("encoder".into())
                .spawn(move || {
                    let writer = match Mp4Writer::create(&path, params, with_audio, &settings) {
                        Ok(w) => {
                            let _ = ready_tx.send(Ok(()));
                            w
                        }
                        Err(e) => {
                            let msg = e.to_string();
                            let _ = ready_tx.send(Err(e));
                            return Err(encode::EncodeError::BadInput(msg));
                        }
                    };
                    run_encoder(writer, &frame_rx, &block_rx, &recycle_tx, &shared)
                })
                .map_err(RecordError::Thread)?
        };
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => {
                return Err(RecordError::Encode(encode::EncodeError::BadInput(
                    "encoder thread died".into(),
                )));
            }
        }

        // The clock starts once everything slow (encoder set-up) is done, so the first frame
        // and the first audio both sit at zero.
        let clock = RecordingClock::start_now();
        let capture_thread = {
            let shared = shared.clone();
            let stats = video_stats.clone();
            let loop_cfg = LoopConfig {
                fps: cfg.fps,
                clock,
                pool_size: cfg.pool_size,
            };
            std::thread::Builder::new()
                .name("capture".into())
                .spawn(move || {
                    let stop = &shared.stop;
                    if let Err(e) = video::run_capture_loop(
                        source.as_mut(),
                        &loop_cfg,
                        &frame_tx,
                        &recycle_rx,
                        stop,
                        &stats,
                    ) {
                        shared.fail(
                            StopReason::CaptureFailed,
                            format!("screen capture failed: {e}"),
                        );
                    }
                })
                .map_err(RecordError::Thread)?
        };
        // Audio starts after video is already running: PulseAudio's stream start waits for
        // its first fragment, which must not delay the first frame.
        let (chunk_tx, chunk_rx) = bounded::<SourceChunk>(512);
        let audio = prepared.map(|p| p.start(clock, &chunk_tx));
        drop(chunk_tx);
        let audio_sources = audio
            .as_ref()
            .map(|a| a.sources.clone())
            .unwrap_or_default();
        let warnings = audio
            .as_ref()
            .map(|a| a.warnings.clone())
            .unwrap_or_default();

        let mixer_thread = if with_audio {
            let n_sources = audio_sources.len();
            let stop_at = audio_stop_at.clone();
            Some(
                std::thread::Builder::new()
                    .name("mixer".into())
                    .spawn(move || {
                        mixer::run_mixer(n_sources, clock, &chunk_rx, &block_tx, &stop_at)
                    })
                    .map_err(RecordError::Thread)?,
            )
        } else {
            drop(block_tx);
            None
        };
        let watcher_thread = {
            let shared = shared.clone();
            let path = cfg.output.clone();
            let stats = video_stats.clone();
            let (policy, max) = (cfg.disk, cfg.max_duration);
            std::thread::Builder::new()
                .name("watcher".into())
                .spawn(move || watch(&shared, &path, policy, max, clock, &stats))
                .map_err(RecordError::Thread)?
        };

        Ok(Recording {
            shared,
            clock,
            video_stats,
            events,
            origin,
            path: cfg.output,
            size,
            audio,
            audio_sources,
            warnings,
            audio_stop_at,
            capture_thread: Some(capture_thread),
            mixer_thread,
            encoder_thread: Some(encoder_thread),
            watcher_thread: Some(watcher_thread),
            finished: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn output_size(&self) -> OutputSize {
        self.size
    }

    /// Warnings known at start (no microphone, ...); later ones arrive as events.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn audio_sources(&self) -> &[String] {
        &self.audio_sources
    }

    /// Moves the captured rectangle (same size) to follow the stage's window.
    pub fn move_stage(&self, x: i32, y: i32) {
        self.origin.set(x, y);
    }

    pub fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    /// Set when the recording stopped by itself; the caller should then call [`Self::stop`].
    pub fn auto_stopped(&self) -> Option<StopReason> {
        StopReason::from_code(self.shared.reason.load(Ordering::Acquire))
    }

    pub fn status(&self) -> Status {
        let (frames, dropped, lagged) = self.video_stats.snapshot();
        Status {
            elapsed: self.clock.elapsed(),
            frames,
            dropped,
            lagged,
            bytes: std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0),
            first_frame_after: self
                .video_stats
                .first_frame
                .get()
                .map(|t| t.saturating_duration_since(self.clock.start())),
        }
    }

    /// Stops, waits for the file to be finalised and returns what was recorded.
    pub fn stop(mut self) -> Result<Summary, RecordError> {
        self.finish()
    }

    fn finish(&mut self) -> Result<Summary, RecordError> {
        if let Some(s) = &self.finished {
            return Ok(s.clone());
        }
        self.shared.request_stop(StopReason::Requested);
        // Audio ends where video ends, so both tracks have the same length.
        let end = self.clock.elapsed();
        let _ = self
            .audio_stop_at
            .set((end.as_secs_f64() * f64::from(capture::MIX_RATE)).ceil() as u64);
        if let Some(t) = self.capture_thread.take() {
            let _ = t.join();
        }
        // Closing the streams disconnects the mixer's input, so it flushes at once.
        self.audio = None;
        let mixer_stats = self.mixer_thread.take().and_then(|t| t.join().ok());
        let encoded = match self.encoder_thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            _ => Err(encode::EncodeError::BadInput(
                "encoder thread panicked".into(),
            )),
        };
        if let Some(t) = self.watcher_thread.take() {
            let _ = t.join();
        }
        let reason = self.auto_stopped().unwrap_or(StopReason::Requested);
        let (captured, dropped, lagged) = self.video_stats.snapshot();
        let mut error = self.shared.error.lock().ok().and_then(|e| e.clone());
        let file = match encoded {
            Ok(f) => f,
            Err(e) => {
                error.get_or_insert(e.to_string());
                FileSummary {
                    path: self.path.clone(),
                    bytes: std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0),
                    ..FileSummary::default()
                }
            }
        };
        let mut warnings = self.warnings.clone();
        warnings.extend(self.events.try_iter().filter_map(|e| match e {
            Event::Warning(w) => Some(w),
            _ => None,
        }));
        if let Some(m) = mixer_stats
            && m.dropped_blocks > 0
        {
            warnings.push(format!("{} audio blocks were dropped", m.dropped_blocks));
        }
        let summary = Summary {
            path: file.path,
            reason,
            duration_secs: file.duration_secs,
            frames_captured: captured,
            frames_encoded: file.video_frames,
            frames_dropped: dropped,
            frames_lagged: lagged,
            audio_sources: self.audio_sources.clone(),
            audio_seconds: file.audio_frames as f64 / f64::from(capture::MIX_RATE),
            bytes: file.bytes,
            width: self.size.width,
            height: self.size.height,
            warnings,
            error,
        };
        self.finished = Some(summary.clone());
        Ok(summary)
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if self.finished.is_none() {
            let _ = self.finish();
        }
    }
}

/// Refuses outputs that cannot work before anything is created.
fn check_output(path: &Path, policy: &DiskPolicy) -> Result<(), RecordError> {
    if path.exists() {
        return Err(RecordError::OutputExists(path.to_owned()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(RecordError::OutputDir {
            dir,
            reason: "it does not exist or is not a directory".into(),
        });
    }
    // SAFETY: access(2) with a valid NUL-terminated path.
    let writable = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map(|c| unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0)
        .unwrap_or(false);
    if !writable {
        return Err(RecordError::OutputDir {
            dir,
            reason: "it is not writable".into(),
        });
    }
    let free = disk::free_bytes(&dir).map_err(|e| RecordError::OutputDir {
        dir: dir.clone(),
        reason: e.to_string(),
    })?;
    if free < policy.start_floor() {
        return Err(RecordError::DiskFull {
            dir,
            free,
            needed: policy.start_floor(),
        });
    }
    Ok(())
}

fn run_encoder(
    mut writer: Mp4Writer,
    frames: &Receiver<VideoFrame>,
    blocks: &Receiver<AudioBlock>,
    recycle: &Sender<PixelBuffer>,
    shared: &Shared,
) -> Result<FileSummary, encode::EncodeError> {
    // A closed channel is swapped for `never()`: select! on a disconnected receiver fires at
    // once, forever, and would spin this thread (it did, whenever a recording had no audio).
    let (mut frames_rx, mut blocks_rx) = (frames.clone(), blocks.clone());
    let (mut video_open, mut audio_open) = (true, true);
    let fail = |e: &encode::EncodeError| {
        let reason = match e {
            encode::EncodeError::DiskFull(_) => StopReason::DiskFull,
            _ => StopReason::EncoderFailed,
        };
        shared.fail(reason, e.to_string());
    };
    while video_open || audio_open {
        let r = select! {
            recv(frames_rx) -> f => match f {
                Ok(f) => {
                    match f.pixels {
                        // Converted on the capture thread: encoded in place, back to the pool
                        // once x264 has read it.
                        PixelBuffer::Converted(data) => {
                            let recycle = recycle.clone();
                            writer.write_converted_video(data, f.index, move |v| {
                                let _ = recycle.try_send(PixelBuffer::Converted(v));
                            })
                        }
                        // Raw pixels go back to capture once converted, before x264 runs.
                        raw => {
                            let converted = writer.convert_video(raw.bytes(), f.index);
                            let _ = recycle.try_send(raw);
                            converted.and_then(|_| writer.encode_converted_video())
                        }
                    }
                }
                Err(_) => {
                    video_open = false;
                    frames_rx = crossbeam_channel::never();
                    Ok(())
                }
            },
            recv(blocks_rx) -> b => match b {
                Ok(b) => writer.write_audio(&b.samples, b.start_frame),
                Err(_) => {
                    audio_open = false;
                    blocks_rx = crossbeam_channel::never();
                    Ok(())
                }
            },
        };
        if let Err(e) = r {
            fail(&e);
            // Keep draining so capture and mixer are never blocked, but write nothing more.
            for f in frames.iter() {
                let _ = recycle.try_send(f.pixels);
            }
            blocks.iter().for_each(drop);
            return writer.finish().or(Err(e));
        }
    }
    writer.finish().inspect_err(|e| fail(e))
}

/// Watches disk space and duration, and pushes finished fragments to stable storage.
fn watch(
    shared: &Shared,
    path: &Path,
    policy: DiskPolicy,
    max: Option<Duration>,
    clock: RecordingClock,
    stats: &VideoStats,
) {
    let dir = path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let mut warned = false;
    let mut announced = false;
    let mut last_sync = Instant::now();
    while !shared.stop.load(Ordering::Acquire) {
        // Wake exactly at the duration limit so a 5 s recording is 5 s, not 5.1 s.
        let nap = max
            .map(|m| m.saturating_sub(clock.elapsed()))
            .map_or(Duration::from_millis(100), |left| {
                left.min(Duration::from_millis(100))
            });
        std::thread::sleep(nap);
        if !announced && stats.first_frame.get().is_some() {
            announced = true;
            let _ = shared.events.try_send(Event::FirstFrame);
        }
        if max.is_some_and(|m| clock.elapsed() >= m) {
            shared.request_stop(StopReason::Duration);
            break;
        }
        if let Ok(free) = disk::free_bytes(&dir) {
            if free < policy.reserve {
                shared.fail(
                    StopReason::DiskLow,
                    format!(
                        "stopped: only {} free on the disk holding {} (keeping {} in reserve)",
                        disk::human(free),
                        dir.display(),
                        disk::human(policy.reserve)
                    ),
                );
                break;
            }
            if free < policy.warn && !warned {
                warned = true;
                let _ = shared.events.try_send(Event::Warning(format!(
                    "disk space is low: {} free; the recording stops at {}",
                    disk::human(free),
                    disk::human(policy.reserve)
                )));
            }
        }
        // Fragments are complete every keyframe interval; make them survive a power cut too.
        if last_sync.elapsed() >= Duration::from_secs(2) {
            last_sync = Instant::now();
            if let Ok(f) = std::fs::File::open(path) {
                let _ = f.sync_data();
            }
        }
    }
}
