//! `recorder`: records a rectangle of the X screen with its sound into an MP4.
//!
//! ```text
//! recorder record --region 1280x720+0+0 --audio both --duration 60
//! recorder devices
//! recorder upload rec.mp4 --server https://classroom.example --live-room ID --breakout-room ID
//! recorder queue list | retry ID | remove ID | run
//! ```

mod upload_cli;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use capture::Region;
use capture::audio::AudioSpec;
use clap::{Parser, Subcommand, ValueEnum};
use recorder::disk::{DiskPolicy, human};
use recorder::{Event, Recording, RecordingConfig, StopReason, naming};

#[derive(Parser, Debug)]
#[command(
    name = "recorder",
    version,
    about = "Records a breakout room's stage (screen region + sound) into a crash-safe MP4"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Record until Ctrl-C, SIGTERM or --duration.
    Record(RecordArgs),
    /// List the sound server's inputs (for --mic-device / --room-device).
    Devices,
    /// Upload a finished recording to a live room's breakout room. It is queued durably
    /// first, so a lost network or a restart resumes where the server is.
    Upload {
        #[command(flatten)]
        args: upload_cli::UploadArgs,
        #[command(flatten)]
        queue: upload_cli::QueueArgs,
    },
    /// The upload queue: list, retry, remove, run.
    Queue {
        #[command(subcommand)]
        command: upload_cli::QueueCommand,
        #[command(flatten)]
        queue: upload_cli::QueueArgs,
    },
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum AudioChoice {
    Both,
    Mic,
    Room,
    None,
}

#[derive(Parser, Debug)]
struct RecordArgs {
    /// X display to capture (default: $DISPLAY).
    #[arg(long)]
    display: Option<String>,
    /// Stage rectangle in physical pixels, WIDTHxHEIGHT+X+Y (default: the whole screen).
    #[arg(long)]
    region: Option<Region>,
    /// Frames per second (1-60).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=60))]
    fps: u32,
    /// Which sound to record: the microphone, the room (what the computer plays), both or none.
    #[arg(long, value_enum, default_value_t = AudioChoice::Both)]
    audio: AudioChoice,
    /// Microphone source name (see `recorder devices`; default: the default input).
    #[arg(long)]
    mic_device: Option<String>,
    /// Room sound source name (default: the monitor of the default output).
    #[arg(long)]
    room_device: Option<String>,
    /// Stop after this many seconds.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Output file (default: <Videos>/Breakout recordings/<room> <date> <time>.mp4).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Room name used in the default file name.
    #[arg(long, default_value = "Breakout room")]
    room: String,
    /// Stop cleanly when free disk space falls below this many MiB (start needs twice that).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    min_free_mb: u64,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    upload: upload_cli::RecordUploadArgs,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !secs.is_finite() || secs <= 0.0 || secs > 86_400.0 * 7.0 {
        return Err(format!(
            "{s:?}: give a number of seconds between 0 and 604800"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn main() {
    // The PulseAudio client logs an error for every normal disconnect; keep it out of the way.
    let filter = tracing_subscriber::EnvFilter::try_from_env("RECORDER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,pulseaudio=off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in logs or a parent's pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<upload_cli::UsageError>().is_some() {
                2
            } else {
                1
            }
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Devices => {
            for d in capture::audio::list_devices()? {
                let kind = if d.is_monitor { "room sound" } else { "input" };
                println!("{}\t{kind}\t{}", d.name, d.description);
            }
            Ok(0)
        }
        Command::Record(args) => record(args),
        Command::Upload { args, queue } => upload_cli::upload(args, queue),
        Command::Queue { command, queue } => upload_cli::queue(command, queue),
    }
}

fn record(args: RecordArgs) -> Result<i32> {
    upload_cli::check_record_upload(&args.upload)?;
    let output = match args.output {
        Some(p) => p,
        None => {
            let dir = naming::default_dir();
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            dir.join(naming::file_name(&args.room, chrono::Local::now()))
        }
    };
    if output.is_dir() {
        bail!(
            "{} is a directory; give a file name ending in .mp4",
            output.display()
        );
    }
    let audio = AudioSpec {
        mic: matches!(args.audio, AudioChoice::Both | AudioChoice::Mic),
        room: matches!(args.audio, AudioChoice::Both | AudioChoice::Room),
        mic_device: args.mic_device,
        room_device: args.room_device,
    };
    let mut cfg = RecordingConfig::new(output);
    cfg.display = args.display;
    cfg.region = args.region;
    cfg.fps = args.fps;
    cfg.audio = audio;
    cfg.disk = DiskPolicy::with_reserve_mib(args.min_free_mb);
    cfg.max_duration = args.duration;

    // Installed before starting, so a signal during start-up also ends in a finished file.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("cannot install signal handlers")?;
    }

    let started_at = chrono::Utc::now();
    let rec = Recording::start(cfg)?;
    let start_warnings = rec.warnings().to_vec();
    for w in &start_warnings {
        eprintln!("warning: {w}");
    }
    let size = rec.output_size();
    eprintln!(
        "Recording to {} ({}x{}, audio: {}). Press Ctrl-C to stop.",
        rec.path().display(),
        size.width,
        size.height,
        if rec.audio_sources().is_empty() {
            "none".to_owned()
        } else {
            rec.audio_sources().join(" + ")
        }
    );

    let tty = std::io::stderr().is_terminal();
    let mut last_status = Instant::now();
    let status_every = if tty {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(5)
    };
    while !stop.load(Ordering::Relaxed) && rec.auto_stopped().is_none() {
        std::thread::sleep(Duration::from_millis(20));
        for ev in rec.events().try_iter() {
            match ev {
                Event::FirstFrame => {
                    if let Some(t) = rec.status().first_frame_after {
                        eprintln!("First frame captured after {} ms.", t.as_millis());
                    }
                }
                Event::Warning(w) => eprintln!("\nwarning: {w}"),
                Event::AutoStop(_) => {}
            }
        }
        if last_status.elapsed() >= status_every {
            last_status = Instant::now();
            print_status(&rec, tty);
        }
    }
    if tty {
        eprintln!();
    }
    let summary = rec.stop()?;

    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("Saved {}", summary.path.display());
        println!("  duration  {:.2} s", summary.duration_secs);
        println!(
            "  frames    {} encoded ({} captured, {} dropped, {} lagged)",
            summary.frames_encoded,
            summary.frames_captured,
            summary.frames_dropped,
            summary.frames_lagged
        );
        println!("  picture   {}x{}", summary.width, summary.height);
        let sources = if summary.audio_sources.is_empty() {
            "none".to_owned()
        } else {
            summary.audio_sources.join(" + ")
        };
        println!("  audio     {sources} ({:.2} s)", summary.audio_seconds);
        println!("  size      {}", human(summary.bytes));
    }
    for w in summary
        .warnings
        .iter()
        .filter(|w| !start_warnings.contains(w))
    {
        eprintln!("warning: {w}");
    }
    if let Some(e) = &summary.error {
        eprintln!("error: {e}");
    }
    let code = match summary.reason {
        StopReason::Requested | StopReason::Duration if summary.error.is_none() => 0,
        StopReason::DiskLow | StopReason::DiskFull => 3,
        _ => 1,
    };
    if args.upload.upload_to.is_some() {
        // The recording is saved whatever happens next; an upload problem is reported, and
        // the file can be sent later with `recorder upload`.
        let up = match upload::mp4::check(&summary.path) {
            Ok(_) => upload_cli::after_recording(
                &args.upload,
                &summary.path,
                started_at,
                summary.duration_secs,
            ),
            Err(e) => Err(anyhow::anyhow!(
                "not uploading {}: {e}",
                summary.path.display()
            )),
        };
        let up_code = match up {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: upload: {e:#}");
                upload_cli::EXIT_FAILED
            }
        };
        return Ok(if code != 0 { code } else { up_code });
    }
    Ok(code)
}

fn print_status(rec: &Recording, tty: bool) {
    let s = rec.status();
    let secs = s.elapsed.as_secs();
    let fps = s.frames as f64 / s.elapsed.as_secs_f64().max(0.001);
    let line = format!(
        "REC {:02}:{:02}:{:02}  {fps:4.1} fps  dropped {}  lagged {}  {}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        s.dropped,
        s.lagged,
        human(s.bytes)
    );
    let mut err = std::io::stderr().lock();
    let _ = if tty {
        write!(err, "\r{line}   ")
    } else {
        writeln!(err, "{line}")
    };
    let _ = err.flush();
}
