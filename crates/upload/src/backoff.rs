//! Exponential backoff with jitter for failures that heal by waiting (no network, 5xx, a busy
//! upload). Jitter keeps many clients that lost the same server from coming back in lockstep.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// How long to wait after the `n`th consecutive failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub initial: Duration,
    /// The delay never exceeds this.
    pub max: Duration,
}

impl Default for Backoff {
    /// 1 s, doubling, at most 60 s: a server that comes back is noticed within a minute.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The cap for failure number `failures` (1-based): `initial * 2^(failures-1)`, at most `max`.
    pub fn ceiling(&self, failures: u32) -> Duration {
        let shift = failures.saturating_sub(1).min(30);
        self.initial
            .checked_mul(1u32 << shift)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// "Equal jitter": half the ceiling plus a random part of the other half, so the wait grows
    /// but two clients rarely pick the same instant.
    pub fn delay(&self, failures: u32) -> Duration {
        let c = self.ceiling(failures);
        let half = c / 2;
        half + half.mul_f64(random_unit())
    }
}

/// A random number in [0, 1). `RandomState` is seeded from the OS per instance, which is all
/// the randomness jitter needs (no extra dependency).
fn random_unit() -> f64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(0);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_doubles_and_caps() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        let ceilings: Vec<u128> = (1..=8).map(|n| b.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(2));
        for n in 1..=10 {
            for _ in 0..50 {
                let d = b.delay(n);
                assert!(d >= b.ceiling(n) / 2 && d <= b.ceiling(n), "{n}: {d:?}");
            }
        }
    }

    #[test]
    fn jitter_varies() {
        let b = Backoff::default();
        let delays: std::collections::HashSet<u128> =
            (0..20).map(|_| b.delay(6).as_micros()).collect();
        assert!(delays.len() > 10, "{delays:?}");
    }
}
