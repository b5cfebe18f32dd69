//! Test kit for the end-to-end tests: everything a test needs to record a real stage.
//!
//! - [`TestEnv`]: a private Xvfb display and a private PulseAudio server (own runtime
//!   directory, own null sinks), so tests run in parallel without sharing devices.
//! - [`Stage`]: a window that shows a frame counter as binary blocks and can flash white.
//! - [`Tone`]: a real-time tone (and beeps) played into a null sink through `pacat`.
//! - [`media`]: decoding a recording with the FFmpeg command-line tools and reading it back.

pub mod env;
pub mod media;
pub mod stage;
pub mod tone;

pub use env::TestEnv;
pub use stage::Stage;
pub use tone::Tone;
