//! Sample-format conversion, channel mapping and rate conversion to the mix format
//! (f32, stereo, 48 kHz), whatever the device delivers.
//!
//! Rate conversion is linear interpolation, stateful across buffers so chunk edges are seamless.
//! That is transparent for speech and classroom audio at the rates devices offer (8–96 kHz);
//! a windowed-sinc resampler would only matter for music-grade downsampling.

/// Converts interleaved device samples of any channel count to interleaved stereo f32.
pub fn to_stereo_f32<T: Copy>(
    input: &[T],
    channels: usize,
    to_f32: impl Fn(T) -> f32,
    out: &mut Vec<f32>,
) {
    out.clear();
    if channels == 0 {
        return;
    }
    out.reserve(input.len() / channels * 2);
    for frame in input.chunks_exact(channels) {
        let l = to_f32(frame[0]);
        let r = if channels >= 2 { to_f32(frame[1]) } else { l };
        out.push(l);
        out.push(r);
    }
}

pub fn i16_to_f32(s: i16) -> f32 {
    f32::from(s) / 32768.0
}

pub fn i32_to_f32(s: i32) -> f32 {
    (f64::from(s) / 2_147_483_648.0) as f32
}

pub fn u8_to_f32(s: u8) -> f32 {
    (f32::from(s) - 128.0) / 128.0
}

/// Streaming linear resampler for interleaved stereo.
#[derive(Debug, Clone)]
pub struct StereoResampler {
    /// Input frames advanced per output frame.
    step: f64,
    /// Position of the next output frame in the current chunk's input coordinates; -1.0 refers
    /// to the previous chunk's last frame.
    t: f64,
    prev: [f32; 2],
}

impl StereoResampler {
    pub fn new(in_rate: u32, out_rate: u32) -> Self {
        Self {
            step: f64::from(in_rate) / f64::from(out_rate.max(1)),
            t: 0.0,
            prev: [0.0; 2],
        }
    }

    pub fn is_passthrough(&self) -> bool {
        self.step == 1.0
    }

    /// Appends the resampled frames of `input` (interleaved stereo) to `out`.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) {
        let n = input.len() / 2;
        if n == 0 {
            return;
        }
        if self.is_passthrough() {
            out.extend_from_slice(&input[..n * 2]);
            return;
        }
        let frame = |i: isize, prev: [f32; 2]| -> [f32; 2] {
            if i < 0 {
                prev
            } else {
                let i = i as usize * 2;
                [input[i], input[i + 1]]
            }
        };
        let last = n as f64 - 1.0;
        while self.t.floor() + 1.0 <= last {
            let i0 = self.t.floor();
            let frac = (self.t - i0) as f32;
            let a = frame(i0 as isize, self.prev);
            let b = frame(i0 as isize + 1, self.prev);
            out.push(a[0] + (b[0] - a[0]) * frac);
            out.push(a[1] + (b[1] - a[1]) * frac);
            self.t += self.step;
        }
        self.t -= n as f64;
        self.prev = frame(n as isize - 1, self.prev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_formats_and_channels() {
        let mut out = Vec::new();
        to_stereo_f32(&[i16::MIN, 0, 16384], 1, i16_to_f32, &mut out);
        assert_eq!(out, vec![-1.0, -1.0, 0.0, 0.0, 0.5, 0.5]);
        to_stereo_f32(&[0u8, 255, 128, 128], 2, u8_to_f32, &mut out);
        assert_eq!(out, vec![-1.0, 127.0 / 128.0, 0.0, 0.0]);
        // Surround: front left/right are kept.
        to_stereo_f32(&[0.1f32, 0.2, 0.9, 0.9, 0.9, 0.9], 6, |s| s, &mut out);
        assert_eq!(out, vec![0.1, 0.2]);
        to_stereo_f32(&[i32::MIN, i32::MAX], 2, i32_to_f32, &mut out);
        assert!((out[0] + 1.0).abs() < 1e-6 && (out[1] - 1.0).abs() < 1e-6);
    }

    /// Frequency of a stereo signal's left channel by zero crossings.
    fn frequency(samples: &[f32], rate: f64) -> f64 {
        let left: Vec<f32> = samples.chunks_exact(2).map(|f| f[0]).collect();
        let crossings = left
            .windows(2)
            .filter(|w| w[0] <= 0.0 && w[1] > 0.0)
            .count();
        crossings as f64 / (left.len() as f64 / rate)
    }

    #[test]
    fn keeps_pitch_and_length_across_rates_and_chunkings() {
        // (input rate, chunk frames): every rate a device commonly offers, odd chunk sizes.
        let cases = [
            (16_000, 160),
            (44_100, 1024),
            (48_000, 480),
            (96_000, 777),
            (22_050, 1),
        ];
        for (rate, chunk) in cases {
            let secs = 1.0;
            let n = (rate as f64 * secs) as usize;
            let input: Vec<f32> = (0..n)
                .flat_map(|i| {
                    let v =
                        (2.0 * std::f64::consts::PI * 440.0 * i as f64 / rate as f64).sin() as f32;
                    [v, v]
                })
                .collect();
            let mut rs = StereoResampler::new(rate, 48_000);
            let mut out = Vec::new();
            for c in input.chunks(chunk * 2) {
                rs.process(c, &mut out);
            }
            let frames = out.len() / 2;
            // Interpolation holds back at most one input frame until the next chunk arrives.
            let slack = 48_000 / rate as i64 + 2;
            assert!(
                (frames as i64 - 48_000).abs() <= slack,
                "{rate} Hz: {frames} frames"
            );
            let f = frequency(&out, 48_000.0);
            assert!((f - 440.0).abs() < 3.0, "{rate} Hz: pitch {f}");
            // No clicks at chunk edges: neighbouring samples of a 440 Hz sine stay close.
            let max_jump = out
                .chunks_exact(2)
                .map(|f| f[0])
                .collect::<Vec<_>>()
                .windows(2)
                .map(|w| (w[1] - w[0]).abs())
                .fold(0.0f32, f32::max);
            assert!(max_jump < 0.07, "{rate} Hz: jump {max_jump}");
        }
    }
}
