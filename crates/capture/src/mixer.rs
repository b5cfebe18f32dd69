//! Mixes any number of audio sources onto one 48 kHz stereo timeline.
//!
//! Each source sends chunks already converted to the mix format and stamped with their frame
//! position on the recording clock ([`SourceChunk`]). The mixer emits fixed blocks of
//! [`MIX_FRAMES`] frames in timeline order. A block is emitted once every source has covered it,
//! or once it is [`MAX_WAIT`] old: a silent, missing or stalled source becomes silence instead of
//! holding the recording back, and a source that arrives late loses only what was already mixed.

use std::collections::VecDeque;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use crate::clock::RecordingClock;

pub const MIX_RATE: u32 = 48_000;
pub const MIX_CHANNELS: usize = 2;
/// Frames per block; equals the AAC encoder's frame size so blocks map 1:1 to AAC frames.
pub const MIX_FRAMES: usize = 1024;
/// How long a block waits for a slow source before it is mixed without it.
pub const MAX_WAIT: Duration = Duration::from_millis(250);

/// One block of mixed audio: `MIX_FRAMES` interleaved stereo frames.
#[derive(Debug, Clone)]
pub struct AudioBlock {
    /// Position of the first frame on the recording clock, in 1/48000 s.
    pub start_frame: u64,
    pub samples: Vec<f32>,
}

/// Audio from one source, in the mix format.
#[derive(Debug)]
pub struct SourceChunk {
    pub source: usize,
    /// Frame position of the first sample on the recording clock (may be negative: captured
    /// before the recording started).
    pub start_frame: i64,
    pub samples: Vec<f32>,
}

#[derive(Debug, Default)]
struct SourceQueue {
    front: i64,
    frames: VecDeque<f32>,
}

impl SourceQueue {
    fn end(&self) -> i64 {
        self.front + (self.frames.len() / MIX_CHANNELS) as i64
    }

    fn push(&mut self, start: i64, samples: &[f32], timeline: i64) {
        let n = (samples.len() / MIX_CHANNELS) as i64;
        if self.frames.is_empty() {
            self.front = start.max(timeline);
        }
        // Anything before what was already mixed (or queued) is too late to use.
        let from = self.end().max(timeline);
        let skip = (from - start).clamp(0, n);
        if start > from {
            // A gap in the source's stream: it is silence on the timeline.
            let gap = (start - from) as usize * MIX_CHANNELS;
            self.frames.extend(std::iter::repeat_n(0.0, gap));
        }
        self.frames
            .extend(samples[skip as usize * MIX_CHANNELS..].iter().copied());
    }

    /// Adds this source's frames for `[pos, pos + MIX_FRAMES)` into `block`, consuming them.
    fn mix_into(&mut self, pos: i64, block: &mut [f32]) {
        if self.frames.is_empty() {
            return;
        }
        if self.front < pos {
            let drop = ((pos - self.front) as usize * MIX_CHANNELS).min(self.frames.len());
            self.frames.drain(..drop);
            self.front = pos;
            if self.frames.is_empty() {
                return;
            }
        }
        let offset = ((self.front - pos).max(0) as usize).min(MIX_FRAMES);
        let take = ((MIX_FRAMES - offset) * MIX_CHANNELS).min(self.frames.len());
        for (dst, src) in block[offset * MIX_CHANNELS..]
            .iter_mut()
            .zip(self.frames.drain(..take))
        {
            *dst += src;
        }
        self.front += (take / MIX_CHANNELS) as i64;
    }
}

/// Counters of the mixer.
#[derive(Debug, Default, Clone, Copy)]
pub struct MixerStats {
    pub blocks: u64,
    /// Blocks the encoder could not take in time (should stay 0; audio queues are generous).
    pub dropped_blocks: u64,
}

/// Runs the mixer until `chunks` is disconnected or `stop_at` (a timeline position, set when
/// the recording stops) has been emitted.
pub fn run_mixer(
    sources: usize,
    clock: RecordingClock,
    chunks: &Receiver<SourceChunk>,
    out: &Sender<AudioBlock>,
    stop_at: &std::sync::OnceLock<u64>,
) -> MixerStats {
    let mut queues: Vec<SourceQueue> = (0..sources).map(|_| SourceQueue::default()).collect();
    let mut pos: i64 = 0;
    let mut stats = MixerStats::default();
    let wait_frames = (MAX_WAIT.as_secs_f64() * f64::from(MIX_RATE)) as i64;
    let mut disconnected = false;
    loop {
        match chunks.recv_timeout(Duration::from_millis(10)) {
            Ok(c) => {
                if let Some(q) = queues.get_mut(c.source) {
                    q.push(c.start_frame, &c.samples, pos);
                }
                // Drain whatever else is ready before mixing.
                while let Ok(c) = chunks.try_recv() {
                    if let Some(q) = queues.get_mut(c.source) {
                        q.push(c.start_frame, &c.samples, pos);
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => disconnected = true,
        }
        let now = (clock.elapsed().as_secs_f64() * f64::from(MIX_RATE)) as i64;
        let stop = stop_at.get().map(|&s| s as i64);
        // Once the sources are gone, or a stopped recording's last block waited long enough,
        // what is queued is all there will be.
        let flush = disconnected || stop.is_some_and(|s| now >= s + wait_frames);
        loop {
            if stop.is_some_and(|s| pos >= s) {
                return stats;
            }
            let block_end = pos + MIX_FRAMES as i64;
            // Audio cannot arrive before its time; without this, a recording with no working
            // source would race ahead of the clock producing silence.
            let due = block_end <= now + MIX_FRAMES as i64;
            let all_covered = due && queues.iter().all(|q| q.end() >= block_end);
            let overdue = now >= block_end + wait_frames;
            if !(all_covered || overdue || flush) {
                break;
            }
            if disconnected && stop.is_none() && queues.iter().all(|q| q.frames.is_empty()) {
                return stats;
            }
            let mut samples = vec![0.0f32; MIX_FRAMES * MIX_CHANNELS];
            for q in &mut queues {
                q.mix_into(pos, &mut samples);
            }
            for s in &mut samples {
                *s = s.clamp(-1.0, 1.0);
            }
            let block = AudioBlock {
                start_frame: pos as u64,
                samples,
            };
            match out.try_send(block) {
                Ok(()) => stats.blocks += 1,
                Err(TrySendError::Full(_)) => stats.dropped_blocks += 1,
                Err(TrySendError::Disconnected(_)) => return stats,
            }
            pos = block_end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_of(q: &mut SourceQueue, pos: i64) -> Vec<f32> {
        let mut b = vec![0.0; MIX_FRAMES * MIX_CHANNELS];
        q.mix_into(pos, &mut b);
        b
    }

    #[test]
    fn queue_places_chunks_on_the_timeline() {
        // (chunk start, frames, timeline when pushed) -> first non-silent frame of block 0.
        type Case<'a> = (&'a [(i64, usize)], i64, Option<usize>);
        let cases: &[Case] = &[
            (&[(0, 1024)], 0, Some(0)),
            (&[(100, 1024)], 0, Some(100)),
            (&[(-50, 1024)], 0, Some(0)),
            (&[(0, 10), (500, 10)], 0, Some(0)),
            (&[(-2000, 1024)], 0, None),
        ];
        for (chunks, timeline, first) in cases {
            let mut q = SourceQueue::default();
            for &(start, n) in *chunks {
                q.push(start, &vec![1.0; n * MIX_CHANNELS], *timeline);
            }
            let b = block_of(&mut q, 0);
            let got = b.iter().position(|&s| s != 0.0).map(|i| i / MIX_CHANNELS);
            assert_eq!(got, *first, "chunks {chunks:?}");
        }
    }

    #[test]
    fn gaps_become_silence_and_overlaps_are_not_doubled() {
        let mut q = SourceQueue::default();
        q.push(0, &vec![1.0; 100 * 2], 0);
        q.push(200, &vec![1.0; 100 * 2], 0); // gap 100..200
        q.push(250, &vec![1.0; 100 * 2], 0); // overlaps 250..300: only 300..350 is new
        let b = block_of(&mut q, 0);
        let frame = |i: usize| b[i * 2];
        assert_eq!(
            (frame(99), frame(100), frame(199), frame(200)),
            (1.0, 0.0, 0.0, 1.0)
        );
        assert_eq!((frame(349), frame(350)), (1.0, 0.0));
    }

    #[test]
    fn mixes_sources_and_does_not_wait_for_a_silent_one() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let (otx, orx) = crossbeam_channel::unbounded();
        let clock = RecordingClock::start_now();
        let stop = std::sync::OnceLock::new();
        // Source 0 delivers 3 blocks of 0.25, source 1 one block of 0.5, source 2 nothing.
        tx.send(SourceChunk {
            source: 0,
            start_frame: 0,
            samples: vec![0.25; 3 * MIX_FRAMES * 2],
        })
        .unwrap();
        tx.send(SourceChunk {
            source: 1,
            start_frame: 0,
            samples: vec![0.5; MIX_FRAMES * 2],
        })
        .unwrap();
        stop.set(3 * MIX_FRAMES as u64).unwrap();
        drop(tx);
        let stats = run_mixer(3, clock, &rx, &otx, &stop);
        let blocks: Vec<AudioBlock> = orx.try_iter().collect();
        assert_eq!(stats.blocks, 3);
        assert_eq!(
            blocks.iter().map(|b| b.start_frame).collect::<Vec<_>>(),
            [0, 1024, 2048]
        );
        assert!(blocks[0].samples.iter().all(|&s| s == 0.75));
        assert!(blocks[1].samples.iter().all(|&s| s == 0.25));
    }
}
