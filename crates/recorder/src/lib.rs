//! A recording session of a breakout room's stage: capture, mix and encode on separate threads,
//! watch the disk, stop cleanly. The `recorder` command line and the desktop app both drive it.

mod convert;
pub mod disk;
pub mod naming;
pub mod session;

use std::path::PathBuf;

pub use session::{Event, Recording, RecordingConfig, Status, StopReason, Summary};

/// Why a recording could not start (or ended badly). Each message is one clear line.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Capture(#[from] capture::CaptureError),
    #[error(transparent)]
    Encode(#[from] encode::EncodeError),
    #[error("frame rate must be between 1 and 60, got {0}")]
    BadFps(u32),
    #[error("{0} already exists; recordings never overwrite a file")]
    OutputExists(PathBuf),
    #[error("cannot write to {dir}: {reason}")]
    OutputDir { dir: PathBuf, reason: String },
    #[error(
        "not enough free disk space in {dir}: {} free, at least {} needed to start",
        disk::human(*free),
        disk::human(*needed)
    )]
    DiskFull {
        dir: PathBuf,
        free: u64,
        needed: u64,
    },
    #[error("cannot start a recording thread: {0}")]
    Thread(#[source] std::io::Error),
}
