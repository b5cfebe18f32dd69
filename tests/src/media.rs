//! Reading a recording back with the FFmpeg command-line tools: an independent decoder, so a
//! test checks what players will see rather than what our encoder believes it wrote.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::stage::{BAND_FRACTION, COUNTER_BITS};

/// Stream facts from ffprobe.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    pub duration: f64,
    pub video_frames: u64,
    pub width: u32,
    pub height: u32,
    pub video_codec: String,
    pub audio_codec: Option<String>,
    pub audio_rate: Option<u32>,
    pub audio_channels: Option<u32>,
}

fn run(cmd: &mut Command) -> Result<Vec<u8>> {
    let out = cmd
        .output()
        .with_context(|| format!("running {cmd:?} (is ffmpeg installed?)"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(out.stdout)
}

pub fn probe(path: &Path) -> Result<Probe> {
    let field = |sel: &str, entries: &str| -> Result<String> {
        let out = run(Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-select_streams",
                sel,
                "-count_frames",
                "-show_entries",
                entries,
                "-of",
                "csv=p=0",
            ])
            .arg(path))?;
        Ok(String::from_utf8_lossy(&out).trim().to_owned())
    };
    let v = field("v:0", "stream=codec_name,width,height,nb_read_frames")?;
    let v: Vec<&str> = v.split(',').collect();
    if v.len() < 4 {
        bail!("no video stream in {}", path.display());
    }
    let a = field("a:0", "stream=codec_name,sample_rate,channels")?;
    let a: Vec<&str> = a.split(',').filter(|s| !s.is_empty()).collect();
    let duration: f64 = field("v:0", "format=duration")?.parse().unwrap_or(0.0);
    Ok(Probe {
        duration,
        video_codec: v[0].to_owned(),
        width: v[1].parse()?,
        height: v[2].parse()?,
        video_frames: v[3].parse()?,
        audio_codec: a.first().map(|s| (*s).to_owned()),
        audio_rate: a.get(1).and_then(|s| s.parse().ok()),
        audio_channels: a.get(2).and_then(|s| s.parse().ok()),
    })
}

/// What `ffmpeg -v error -i FILE -f null -` prints: empty for a clean file.
pub fn decode_errors(path: &Path) -> Result<String> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .context("running ffmpeg")?;
    let mut s = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        s.push_str(&format!("\n(exit {})", out.status));
    }
    Ok(s)
}

/// Every video frame as (presentation time, grey pixels at `w`x`h`).
pub fn gray_frames(path: &Path, w: u32, h: u32) -> Result<Vec<(f64, Vec<u8>)>> {
    let pts = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=pts_time",
            "-of",
            "csv=p=0",
        ])
        .arg(path))?;
    let pts: Vec<f64> = String::from_utf8_lossy(&pts)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    let raw = run(Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args([
            "-fps_mode",
            "passthrough",
            "-vf",
            &format!("scale={w}:{h},format=gray"),
            "-f",
            "rawvideo",
            "-",
        ]))?;
    let size = (w * h) as usize;
    let frames: Vec<Vec<u8>> = raw.chunks_exact(size).map(<[u8]>::to_vec).collect();
    if frames.len() != pts.len() {
        bail!(
            "{} frames decoded but {} timestamps",
            frames.len(),
            pts.len()
        );
    }
    Ok(pts.into_iter().zip(frames).collect())
}

/// The first frame a player shows after seeking to `at` seconds (input seeking, as players do:
/// jump to the keyframe before `at` through the file's index, then decode up to `at`), as
/// (presentation time, grey pixels at `w`x`h`).
pub fn frame_after_seek(path: &Path, at: f64, w: u32, h: u32) -> Result<(f64, Vec<u8>)> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-copyts", "-ss", &format!("{at:.3}"), "-i"])
        .arg(path)
        .args([
            "-frames:v",
            "1",
            "-vf",
            &format!("showinfo,scale={w}:{h},format=gray"),
            "-f",
            "rawvideo",
            "-",
        ])
        .output()
        .context("running ffmpeg")?;
    if !out.status.success() {
        bail!(
            "seeking to {at} s failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let log = String::from_utf8_lossy(&out.stderr);
    let pts = log
        .split("pts_time:")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse::<f64>().ok())
        .with_context(|| format!("no frame after seeking to {at} s: {log}"))?;
    if out.stdout.len() != (w * h) as usize {
        bail!("seeking to {at} s gave {} bytes", out.stdout.len());
    }
    Ok((pts, out.stdout))
}

/// Reads the stage's counter from a grey frame of the stage (`None` if the band is unreadable).
pub fn read_counter(gray: &[u8], w: u32, h: u32) -> Option<u32> {
    let y = (f64::from(h) * BAND_FRACTION / 2.0) as u32;
    let block = w / COUNTER_BITS;
    let mut v = 0;
    for bit in 0..COUNTER_BITS {
        let x = bit * block + block / 2;
        let p = *gray.get((y * w + x) as usize)?;
        // Blocks are pure black or white; anything in between means a frame mid-change.
        let b = match p {
            0..=60 => 0,
            196..=255 => 1,
            _ => return None,
        };
        v = (v << 1) | b;
    }
    Some(v)
}

/// Mean brightness of the part below the counter band.
pub fn body_brightness(gray: &[u8], w: u32, h: u32) -> f64 {
    let band = (f64::from(h) * BAND_FRACTION) as u32 + 2;
    let body = &gray[(band * w) as usize..];
    body.iter().map(|&p| f64::from(p)).sum::<f64>() / body.len().max(1) as f64
}

/// The audio track mixed to mono at 48 kHz.
pub fn audio_mono(path: &Path) -> Result<Vec<f32>> {
    let raw = run(Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-vn", "-ac", "1", "-ar", "48000", "-f", "f32le", "-"]))?;
    Ok(raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Amplitude of the `freq` component of `samples` (Goertzel), comparable to a sine's peak.
pub fn tone_level(samples: &[f32], freq: f64, rate: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let k = 2.0 * (2.0 * std::f64::consts::PI * freq / rate).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - k * s1 * s2;
    2.0 * power.max(0.0).sqrt() / samples.len() as f64
}

/// The `freq` component's level in consecutive windows of `win` seconds: a tone that is there
/// throughout gives the same level in every window, whereas one long Goertzel sum also drops
/// when the tone's phase jumps once (a gap in the capture), which says nothing about loudness.
pub fn tone_levels(samples: &[f32], freq: f64, rate: f64, win: f64) -> Vec<f64> {
    let n = ((rate * win) as usize).max(1);
    samples
        .chunks_exact(n)
        .map(|w| tone_level(w, freq, rate))
        .collect()
}

/// The typical level of the `freq` component: the median of its 50 ms window levels, so a
/// few ms of silence from an overloaded tone source do not read as "no tone" (one Goertzel
/// sum over a whole second cancels itself out after a single phase jump).
pub fn tone_median(samples: &[f32], freq: f64, rate: f64) -> f64 {
    let mut levels = tone_levels(samples, freq, rate, 0.05);
    if levels.is_empty() {
        return 0.0;
    }
    levels.sort_by(f64::total_cmp);
    levels[levels.len() / 2]
}

/// First time (s) at which the `freq` component in a sliding 5 ms window exceeds `threshold`.
pub fn onset(samples: &[f32], freq: f64, rate: f64, threshold: f64) -> Option<f64> {
    let win = (rate * 0.005) as usize;
    let step = (rate * 0.001) as usize;
    (0..samples.len().saturating_sub(win))
        .step_by(step.max(1))
        .find(|&i| tone_level(&samples[i..i + win], freq, rate) > threshold)
        .map(|i| (i + win / 2) as f64 / rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goertzel_finds_the_tone_and_its_onset() {
        let rate = 48_000.0;
        let s: Vec<f32> = (0..48_000)
            .map(|i| {
                let t = f64::from(i) / rate;
                let beep = if t >= 0.5 {
                    0.5 * (2.0 * std::f64::consts::PI * 3000.0 * t).sin()
                } else {
                    0.0
                };
                (0.3 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin() + beep) as f32
            })
            .collect();
        assert!((tone_level(&s, 1000.0, rate) - 0.3).abs() < 0.02);
        // A 3 ms gap every 100 ms: the tone is still there in nearly every window.
        let gappy: Vec<f32> = s
            .iter()
            .enumerate()
            .map(|(i, &x)| if i % 4800 < 144 { 0.0 } else { x })
            .collect();
        assert!((tone_median(&gappy, 1000.0, rate) - 0.3).abs() < 0.05);
        assert!(tone_median(&gappy, 440.0, rate) < 0.02);
        assert_eq!(tone_median(&[], 1000.0, rate), 0.0);
        assert!(tone_level(&s, 440.0, rate) < 0.01);
        let t = onset(&s, 3000.0, rate, 0.25).unwrap();
        assert!((t - 0.5).abs() < 0.004, "onset {t}");
    }

    #[test]
    fn reads_the_counter_from_blocks() {
        let (w, h) = (120u32, 50u32);
        let block = w / COUNTER_BITS;
        let value = 0b1010_0110_0001u32;
        let mut g = vec![0u8; (w * h) as usize];
        for y in 0..h {
            for x in 0..w {
                let bit = x / block;
                if bit < COUNTER_BITS && (value >> (COUNTER_BITS - 1 - bit)) & 1 == 1 {
                    g[(y * w + x) as usize] = 255;
                }
            }
        }
        assert_eq!(read_counter(&g, w, h), Some(value));
        g[(5 * w + block / 2) as usize] = 128;
        assert_eq!(read_counter(&g, w, h), None);
    }
}
