//! How many bytes the next `PATCH` carries.
//!
//! Every request costs a fixed amount on top of its bytes: the server authenticates, locks
//! the upload, verifies the chunk's checksum, makes the bytes durable (fsync) and records the
//! offset before it answers, and nothing flows meanwhile. On loopback that was ~4 ms per
//! request, a third of an 8 MiB chunk's time (measured: `scripts/bench-upload-client.sh`).
//! Fewer, larger requests on fast links fix that; small ones on slow links keep what a cut
//! connection costs (at most the chunk in flight) and the time between progress updates
//! short. So the chunk starts at the configured size, doubles while a chunk goes through in
//! under [`GROW_UNDER`], halves when one takes longer than [`SHRINK_OVER`], and stays between
//! the configured smallest and largest sizes. Memory does not depend on it: bodies are
//! streamed ([`crate::body`]).

use std::time::Duration;

/// A chunk that went through faster than this: the next one is twice as large.
pub(crate) const GROW_UNDER: Duration = Duration::from_secs(1);

/// A chunk that took longer than this: the next one is half as large.
pub(crate) const SHRINK_OVER: Duration = Duration::from_secs(4);

/// The size of the next chunk, between `min` and `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkPlan {
    size: u64,
    min: u64,
    max: u64,
}

impl ChunkPlan {
    /// Starts at `min`; `max` below `min` means a fixed size.
    pub(crate) fn new(min: u64, max: u64) -> ChunkPlan {
        let min = min.max(1);
        ChunkPlan {
            size: min,
            min,
            max: max.max(min),
        }
    }

    /// The next request's length, with `left` bytes still to send.
    pub(crate) fn len(&self, left: u64) -> u64 {
        self.size.min(left)
    }

    /// The plan after a chunk of `sent` bytes went through in `took`. A short chunk (the end
    /// of the file) says nothing about the link's speed when it was quick.
    pub(crate) fn after(self, sent: u64, took: Duration) -> ChunkPlan {
        let size = if took > SHRINK_OVER {
            (self.size / 2).max(self.min)
        } else if took < GROW_UNDER && sent >= self.size {
            self.size.saturating_mul(2).min(self.max)
        } else {
            self.size
        };
        ChunkPlan { size, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn chunks_grow_on_fast_links_shrink_on_slow_ones_and_stay_in_bounds() {
        let ms = Duration::from_millis;
        // (min, max, size before, sent, took, size after)
        let cases = [
            (8 * MIB, 64 * MIB, 8 * MIB, 8 * MIB, ms(10), 16 * MIB),
            (8 * MIB, 64 * MIB, 32 * MIB, 32 * MIB, ms(999), 64 * MIB),
            (8 * MIB, 64 * MIB, 64 * MIB, 64 * MIB, ms(10), 64 * MIB),
            (8 * MIB, 64 * MIB, 16 * MIB, 16 * MIB, ms(2000), 16 * MIB),
            (8 * MIB, 64 * MIB, 16 * MIB, 16 * MIB, ms(4001), 8 * MIB),
            (8 * MIB, 64 * MIB, 8 * MIB, 8 * MIB, ms(60_000), 8 * MIB),
            // The file's short last chunk does not make the next one bigger.
            (8 * MIB, 64 * MIB, 8 * MIB, MIB, ms(1), 8 * MIB),
            // max == min (or below): a fixed size.
            (4 * MIB, 4 * MIB, 4 * MIB, 4 * MIB, ms(1), 4 * MIB),
            (4 * MIB, MIB, 4 * MIB, 4 * MIB, ms(1), 4 * MIB),
            // Growth stops at max even when max is not a power-of-two multiple.
            (8 * MIB, 20 * MIB, 16 * MIB, 16 * MIB, ms(1), 20 * MIB),
        ];
        for (min, max, before, sent, took, after) in cases {
            let plan = ChunkPlan {
                size: before,
                ..ChunkPlan::new(min, max)
            };
            assert_eq!(
                plan.after(sent, took).len(u64::MAX),
                after,
                "min {min} max {max} size {before} sent {sent} in {took:?}"
            );
        }
    }

    #[test]
    fn a_new_plan_starts_at_the_smallest_size_and_never_sends_past_the_end() {
        let plan = ChunkPlan::new(8 * MIB, 64 * MIB);
        assert_eq!(plan.len(100 * MIB), 8 * MIB);
        assert_eq!(plan.len(3), 3);
        assert_eq!(plan.len(0), 0);
        assert_eq!(ChunkPlan::new(0, 0).len(10), 1, "never zero-length chunks");
    }
}
