//! A tone played into a null sink in real time through `pacat`, with beeps at chosen instants.
//!
//! Samples are written when their time comes (5 ms chunks against a monotonic clock). A timed
//! tone has a 10 ms server buffer, so a beep scheduled for an instant is heard within about
//! 15 ms of it; but on a busy two-core machine the writer is sometimes late by more than that,
//! and the sink then plays a few ms of silence (seen as 50 ms windows with no tone while tests
//! ran side by side). A steady tone, for tests that only need the sound to be there, has a
//! 200 ms buffer instead, which rides out such delays.

use std::io::Write;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::TestEnv;

const RATE: u32 = 48_000;
/// Server buffer of a tone whose beeps are timed.
const TIMED_MS: u32 = 10;
/// Server buffer of a steady tone.
const STEADY_MS: u32 = 200;

/// A playing tone; stops when dropped.
pub struct Tone {
    stop: Arc<AtomicBool>,
    beep: Arc<Mutex<Option<(Instant, Duration, f64)>>>,
    child: Child,
    thread: Option<JoinHandle<()>>,
}

impl Tone {
    /// Plays a steady `freq` Hz sine at `amplitude` (0..1) into `sink` (200 ms buffer: not for
    /// beeps whose timing is measured).
    pub fn start(env: &TestEnv, sink: &str, freq: f64, amplitude: f32) -> Result<Tone> {
        Self::spawn(env.command("pacat"), sink, freq, amplitude, STEADY_MS)
    }

    /// Same with a 10 ms buffer, for a tone whose beeps must be heard when scheduled.
    pub fn start_timed(env: &TestEnv, sink: &str, freq: f64, amplitude: f32) -> Result<Tone> {
        Self::spawn(env.command("pacat"), sink, freq, amplitude, TIMED_MS)
    }

    /// A timed tone on the sound server of this process's environment.
    pub fn start_here(sink: &str, freq: f64, amplitude: f32) -> Result<Tone> {
        Self::spawn(
            std::process::Command::new("pacat"),
            sink,
            freq,
            amplitude,
            TIMED_MS,
        )
    }

    fn spawn(
        mut cmd: std::process::Command,
        sink: &str,
        freq: f64,
        amplitude: f32,
        latency_ms: u32,
    ) -> Result<Tone> {
        let mut child = cmd
            .args(["--playback", "--raw", "--format=float32le", "--channels=1"])
            .arg(format!("--latency-msec={latency_ms}"))
            .arg(format!("--rate={RATE}"))
            .arg(format!("--device={sink}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start pacat (install pulseaudio-utils)")?;
        let mut stdin = child.stdin.take().context("pacat stdin")?;
        let stop = Arc::new(AtomicBool::new(false));
        let beep: Arc<Mutex<Option<(Instant, Duration, f64)>>> = Arc::new(Mutex::new(None));
        let thread = {
            let (stop, beep) = (stop.clone(), beep.clone());
            std::thread::spawn(move || {
                let start = Instant::now();
                let chunk = RATE as usize / 200;
                let mut n: u64 = 0;
                let mut bytes = Vec::with_capacity(chunk * 4);
                while !stop.load(Ordering::Relaxed) {
                    let due = start + Duration::from_secs_f64(n as f64 / f64::from(RATE));
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    let b = beep.lock().ok().and_then(|b| *b);
                    bytes.clear();
                    for i in 0..chunk as u64 {
                        let at = start + Duration::from_secs_f64((n + i) as f64 / f64::from(RATE));
                        let t = (n + i) as f64 / f64::from(RATE);
                        let mut v =
                            f64::from(amplitude) * (2.0 * std::f64::consts::PI * freq * t).sin();
                        if let Some((b_at, b_len, b_freq)) = b
                            && at >= b_at
                            && at < b_at + b_len
                        {
                            v += 0.5 * (2.0 * std::f64::consts::PI * b_freq * t).sin();
                        }
                        bytes.extend_from_slice(&(v as f32).to_le_bytes());
                    }
                    if stdin.write_all(&bytes).is_err() {
                        return;
                    }
                    n += chunk as u64;
                }
            })
        };
        Ok(Tone {
            stop,
            beep,
            child,
            thread: Some(thread),
        })
    }

    /// Adds a `freq` Hz beep of `len` starting at `at`.
    pub fn beep_at(&self, at: Instant, len: Duration, freq: f64) {
        if let Ok(mut b) = self.beep.lock() {
            *b = Some((at, len, freq));
        }
    }
}

impl Drop for Tone {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
