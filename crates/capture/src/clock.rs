//! The one clock every frame and audio buffer is stamped against.
//!
//! Audio and video sync is only as good as their shared reference: both sides convert a
//! monotonic [`Instant`] into "time since the recording started", never wall-clock time.

use std::time::{Duration, Instant};

/// The recording's time origin. Cheap to copy into every capture thread.
#[derive(Debug, Clone, Copy)]
pub struct RecordingClock {
    start: Instant,
}

impl RecordingClock {
    pub fn start_now() -> Self {
        Self {
            start: Instant::now(),
        }
    }

    pub fn started_at(start: Instant) -> Self {
        Self { start }
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Signed offset of `t` from the start, in seconds (negative before the start).
    pub fn offset_secs(&self, t: Instant) -> f64 {
        match t.checked_duration_since(self.start) {
            Some(d) => d.as_secs_f64(),
            None => -(self.start.duration_since(t).as_secs_f64()),
        }
    }
}
