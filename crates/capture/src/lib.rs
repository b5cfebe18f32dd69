//! Stage capture: the pixels of a screen rectangle and the sound of the room, each stamped
//! against one recording clock.
//!
//! Nothing here encodes, writes files or touches the network: sources hand timestamped
//! [`VideoFrame`]s and [`AudioBlock`]s to whoever consumes them (the encoder), through bounded
//! queues, so a slow consumer makes capture *drop and count* instead of stall or grow memory.

pub mod audio;
pub mod clock;
pub mod mixer;
pub mod region;
pub mod resample;
pub mod shm;
pub mod synthetic;
pub mod video;
pub mod x11;

pub use clock::RecordingClock;
pub use mixer::{AudioBlock, MIX_CHANNELS, MIX_FRAMES, MIX_RATE};
pub use region::{OutputSize, Region};
pub use video::{FrameSource, PixelBuffer, VideoFrame, VideoStats};

/// Everything that can go wrong while setting up or running a capture source.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(
        "no X display: set DISPLAY or pass --display (Wayland-only sessions are not supported yet)"
    )]
    NoDisplay,
    #[error(
        "this is a Wayland session without X11 (WAYLAND_DISPLAY is set, DISPLAY is not): screen capture needs X11 or XWayland"
    )]
    WaylandOnly,
    #[error("cannot connect to X display {display:?}: {reason}")]
    Connect { display: String, reason: String },
    #[error("the X server lacks the MIT-SHM extension, needed for fast capture")]
    NoShm,
    #[error(
        "unsupported X visual: need 24/32-bit TrueColor BGRX, found depth {depth} with {bits_per_pixel} bits per pixel"
    )]
    UnsupportedVisual { depth: u8, bits_per_pixel: u8 },
    #[error("region {region} is outside the display ({width}x{height})")]
    RegionOutsideDisplay {
        region: Region,
        width: u32,
        height: u32,
    },
    #[error("invalid region {0:?}: expected WIDTHxHEIGHT+X+Y, e.g. 1280x720+0+0")]
    BadRegion(String),
    #[error("region must be at least 16x16 pixels, got {0}x{1}")]
    RegionTooSmall(u32, u32),
    #[error("shared memory: {0}")]
    Shm(#[source] std::io::Error),
    #[error("X request failed: {0}")]
    X11(String),
    /// A source that converts frames as it captures them could not convert one.
    #[error("cannot convert the captured picture: {0}")]
    Convert(String),
    #[error("audio: {0}")]
    Audio(String),
    #[error("audio device {0:?} not found (list devices with `recorder devices`)")]
    AudioDeviceNotFound(String),
}

pub type Result<T, E = CaptureError> = std::result::Result<T, E>;
