//! What the app's UI and the CLI show while uploading: bytes confirmed, total, rate, time left.
//! The runner publishes a [`Progress`] snapshot through a `tokio::sync::watch` channel; readers
//! always see the latest one and never slow the upload down.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What the runner is doing now.
#[derive(Debug, Clone, PartialEq)]
pub enum Activity {
    /// Nothing pending.
    Idle,
    /// Sending an item.
    Uploading(ItemProgress),
    /// Every pending item waits (no network, server errors); the next try is in `retry_in`.
    Waiting {
        item: String,
        retry_in: Duration,
        error: String,
    },
    /// An item reached a final state (done, failed, needs sign-in).
    Finished { item: String, state: String },
}

/// One item's transfer.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemProgress {
    pub item: String,
    /// Bytes the server has confirmed.
    pub sent: u64,
    pub total: u64,
    /// Recent rate (last few seconds), bytes per second.
    pub rate: f64,
    /// At the recent rate; `None` until there is a rate.
    pub eta: Option<Duration>,
    /// Bytes put on the wire for this item in this run, resent ones included.
    pub wire_bytes: u64,
}

impl ItemProgress {
    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            100.0
        } else {
            self.sent as f64 * 100.0 / self.total as f64
        }
    }
}

/// The latest snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub activity: Activity,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            activity: Activity::Idle,
        }
    }
}

/// Rate over a sliding window of (time, bytes) samples.
#[derive(Debug)]
pub(crate) struct RateMeter {
    window: Duration,
    samples: VecDeque<(Instant, u64)>,
}

impl RateMeter {
    pub(crate) fn new(window: Duration) -> Self {
        RateMeter {
            window,
            samples: VecDeque::new(),
        }
    }

    /// Records that `bytes` were confirmed in total at `at`.
    pub(crate) fn record(&mut self, at: Instant, bytes: u64) {
        self.samples.push_back((at, bytes));
        while let Some(&(t, _)) = self.samples.front() {
            if at.duration_since(t) > self.window && self.samples.len() > 2 {
                self.samples.pop_front();
            } else {
                break;
            }
        }
    }

    /// Bytes per second over the window (0 with fewer than two samples).
    pub(crate) fn rate(&self) -> f64 {
        match (self.samples.front(), self.samples.back()) {
            (Some(&(t0, b0)), Some(&(t1, b1))) if t1 > t0 && b1 >= b0 => {
                (b1 - b0) as f64 / t1.duration_since(t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    pub(crate) fn eta(&self, remaining: u64) -> Option<Duration> {
        let r = self.rate();
        (r > 0.0).then(|| Duration::from_secs_f64((remaining as f64 / r).min(1e7)))
    }
}

/// `12.3 MiB`-style sizes for people.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `[#########-----------]  45%` for lists.
pub fn bar(sent: u64, total: u64, width: usize) -> String {
    let frac = if total == 0 {
        1.0
    } else {
        (sent as f64 / total as f64).clamp(0.0, 1.0)
    };
    let full = (frac * width as f64).round() as usize;
    format!(
        "[{}{}] {:3.0}%",
        "#".repeat(full),
        "-".repeat(width - full),
        frac * 100.0
    )
}

/// `1:02:03` / `2:05` for time left.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_eta_over_the_window() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(Duration::from_secs(5));
        assert_eq!(m.rate(), 0.0);
        assert_eq!(m.eta(100), None);
        for s in 0..=10u64 {
            m.record(t0 + Duration::from_secs(s), s * 1000);
        }
        assert!((m.rate() - 1000.0).abs() < 1e-6);
        assert_eq!(m.eta(5000), Some(Duration::from_secs(5)));
        // A stall: the window slides and the rate falls.
        m.record(t0 + Duration::from_secs(20), 10_000);
        assert!(m.rate() < 1000.0);
    }

    #[test]
    fn formatting() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
        assert_eq!(bar(1, 2, 10), "[#####-----]  50%");
        assert_eq!(bar(0, 0, 4), "[####] 100%");
        assert_eq!(human_duration(Duration::from_secs(3723)), "1:02:03");
        assert_eq!(human_duration(Duration::from_secs(125)), "2:05");
    }
}
