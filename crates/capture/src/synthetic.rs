//! Synthetic sources for tests and benchmarks: a moving test pattern and a sine tone, so the
//! pipeline can be exercised without an X server or a sound server.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::Sender;

use crate::Result;
use crate::clock::RecordingClock;
use crate::mixer::{MIX_CHANNELS, MIX_RATE, SourceChunk};
use crate::video::{FrameSource, PixelBuffer};

/// A BGRX picture whose colour cycles and whose frame number is drawn as a bar, frame by frame.
#[derive(Debug)]
pub struct TestPattern {
    width: u32,
    height: u32,
    n: u64,
}

impl TestPattern {
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            n: 0,
        }
    }
}

impl FrameSource for TestPattern {
    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn stride(&self) -> usize {
        self.width as usize * 4
    }

    fn new_buffer(&mut self) -> Result<PixelBuffer> {
        Ok(PixelBuffer::Heap(vec![
            0;
            self.stride() * self.height as usize
        ]))
    }

    fn capture(&mut self, buf: &mut PixelBuffer) -> Result<()> {
        let stride = self.stride();
        let n = self.n;
        self.n += 1;
        if let PixelBuffer::Heap(v) = buf {
            let bar = (n as usize * 8) % self.width as usize;
            for (y, row) in v.chunks_exact_mut(stride).enumerate() {
                for (x, px) in row.chunks_exact_mut(4).enumerate() {
                    let on_bar = x >= bar && x < bar + 8;
                    let shade = ((x + y + n as usize) & 0xff) as u8;
                    px.copy_from_slice(&if on_bar {
                        [255, 255, 255, 0]
                    } else {
                        [shade, 64, 255 - shade, 0]
                    });
                }
            }
        }
        Ok(())
    }
}

/// Feeds a sine tone into a mixer input as a device would: chunks of `chunk` frames, paced in
/// real time, stamped on the recording clock. Runs until `stop` is set.
pub fn spawn_tone(
    source: usize,
    freq: f64,
    amplitude: f32,
    clock: RecordingClock,
    tx: Sender<SourceChunk>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let chunk = 480usize;
        let mut pos: i64 = 0;
        while !stop.load(Ordering::Relaxed) {
            let due = Duration::from_secs_f64((pos + chunk as i64) as f64 / f64::from(MIX_RATE));
            let now = clock.elapsed();
            if due > now {
                std::thread::sleep(due - now);
            }
            let samples: Vec<f32> = (0..chunk)
                .flat_map(|i| {
                    let t = (pos + i as i64) as f64 / f64::from(MIX_RATE);
                    let v = amplitude * (2.0 * std::f64::consts::PI * freq * t).sin() as f32;
                    [v; MIX_CHANNELS]
                })
                .collect();
            if tx
                .send(SourceChunk {
                    source,
                    start_frame: pos,
                    samples,
                })
                .is_err()
            {
                return;
            }
            pos += chunk as i64;
        }
    })
}
