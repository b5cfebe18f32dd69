//! Microphone and room sound from the sound server (PulseAudio, or PipeWire's PulseAudio
//! service) through cpal's native PulseAudio host.
//!
//! Devices are opened in their own format (whatever rate, channel count and sample type they
//! default to) and converted here, in the callback, to the mix format; each buffer is stamped
//! with the instant its first sample was captured, on the recording clock.
//!
//! Clocking: positions advance by sample count, which is smooth, while the device's own clock
//! slowly drifts from the system's monotonic clock. Each callback's timestamp is compared with
//! the counted position; a callback can only be *late* (the thread was not scheduled, the
//! latency estimate lagged), never early, so the smallest difference over the last
//! [`DRIFT_WINDOW`] callbacks is the true offset. Once it exceeds [`RESYNC_AFTER`] the position
//! is corrected in one step, keeping audio within a few milliseconds of video over hours.

use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{Data, InputCallbackInfo, SampleFormat, StreamConfig};
use crossbeam_channel::Sender;

use crate::clock::RecordingClock;
use crate::mixer::{MIX_RATE, SourceChunk};
use crate::resample::{StereoResampler, i16_to_f32, i32_to_f32, to_stereo_f32, u8_to_f32};
use crate::{CaptureError, Result};

/// Smoothed clock disagreement that triggers a re-anchor of a source's position.
pub const RESYNC_AFTER: Duration = Duration::from_millis(10);
/// Callbacks over which the offset between stamps and counted positions is taken (about 1 s).
pub const DRIFT_WINDOW: usize = 48;

/// Which sounds to record.
#[derive(Debug, Clone, Default)]
pub struct AudioSpec {
    pub mic: bool,
    pub room: bool,
    /// A source name (`recorder devices` lists them); default: the default input.
    pub mic_device: Option<String>,
    /// A source name; default: the monitor of the default output.
    pub room_device: Option<String>,
}

impl AudioSpec {
    pub fn any(&self) -> bool {
        self.mic || self.room
    }
}

/// One input the sound server offers.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    pub name: String,
    pub description: String,
    pub is_monitor: bool,
}

/// Open audio streams; recording continues as long as this lives.
pub struct AudioCapture {
    streams: Vec<cpal::Stream>,
    /// Names of the sources actually recorded, in mixer order.
    pub sources: Vec<String>,
    /// Problems that did not stop the recording (no microphone, a busy one, ...).
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for AudioCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioCapture")
            .field("streams", &self.streams.len())
            .field("sources", &self.sources)
            .field("warnings", &self.warnings)
            .finish()
    }
}

fn host() -> Result<cpal::Host> {
    cpal::host_from_id(cpal::HostId::PulseAudio).map_err(|e| {
        CaptureError::Audio(format!(
            "no sound server reachable ({e}); start PulseAudio or PipeWire, set PULSE_SERVER, or record with --audio none"
        ))
    })
}

fn device_name(d: &cpal::Device) -> String {
    d.id().map(|id| id.id().to_owned()).unwrap_or_default()
}

/// The inputs of the sound server, monitors included.
pub fn list_devices() -> Result<Vec<DeviceInfo>> {
    let host = host()?;
    let devices = host
        .input_devices()
        .map_err(|e| CaptureError::Audio(format!("cannot list devices: {e}")))?;
    Ok(devices
        .map(|d| {
            let name = device_name(&d);
            DeviceInfo {
                description: d.description().map(|x| x.to_string()).unwrap_or_default(),
                is_monitor: name.ends_with(".monitor"),
                name,
            }
        })
        .collect())
}

fn find_input(host: &cpal::Host, name: &str) -> Result<Option<cpal::Device>> {
    let mut devices = host
        .input_devices()
        .map_err(|e| CaptureError::Audio(format!("cannot list devices: {e}")))?;
    Ok(devices.find(|d| device_name(d) == name))
}

/// Devices chosen for a recording, not yet started: choosing is where a missing sound server or
/// a wrong device name shows up, before any file is created.
pub struct Prepared {
    chosen: Vec<(&'static str, cpal::Device)>,
    warnings: Vec<String>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.chosen.iter().map(|(_, d)| device_name(d)).collect();
        f.debug_struct("Prepared")
            .field("chosen", &names)
            .field("warnings", &self.warnings)
            .finish()
    }
}

/// Resolves the requested sources to devices.
pub fn prepare(spec: &AudioSpec) -> Result<Prepared> {
    let host = host()?;
    let mut chosen: Vec<(&'static str, cpal::Device)> = Vec::new();
    let mut warnings = Vec::new();

    if spec.mic {
        match &spec.mic_device {
            Some(name) => {
                let d = find_input(&host, name)?
                    .ok_or_else(|| CaptureError::AudioDeviceNotFound(name.clone()))?;
                chosen.push(("microphone", d));
            }
            None => match host.default_input_device() {
                // With no real microphone the server falls back to an output's monitor; taking
                // it would record the room sound twice.
                Some(d) if !device_name(&d).ends_with(".monitor") => chosen.push(("microphone", d)),
                _ => warnings.push("no microphone found: recording without it".to_owned()),
            },
        }
    }
    if spec.room {
        let name = match &spec.room_device {
            Some(n) => Some(n.clone()),
            None => host
                .default_output_device()
                .map(|d| format!("{}.monitor", device_name(&d))),
        };
        match name {
            Some(n) => match find_input(&host, &n)? {
                Some(d) => chosen.push(("room sound", d)),
                None if spec.room_device.is_some() => {
                    return Err(CaptureError::AudioDeviceNotFound(n));
                }
                None => warnings.push(format!(
                    "room sound unavailable (no source {n:?}): recording without it"
                )),
            },
            None => warnings.push("no audio output found: recording without room sound".to_owned()),
        }
    }
    Ok(Prepared { chosen, warnings })
}

impl Prepared {
    /// Starts the chosen sources. `chunks` receives their audio; source `i` of the returned
    /// `sources` list sends `SourceChunk::source == i`.
    pub fn start(self, clock: RecordingClock, chunks: &Sender<SourceChunk>) -> AudioCapture {
        let Prepared {
            chosen,
            mut warnings,
        } = self;
        let mut streams = Vec::new();
        let mut sources = Vec::new();
        for (role, device) in chosen {
            let index = sources.len();
            match start_stream(&device, index, clock, chunks.clone()) {
                Ok(stream) => {
                    streams.push(stream);
                    sources.push(device_name(&device));
                }
                // A busy or vanished microphone must not cost the recording.
                Err(e) => warnings.push(format!(
                    "{role} ({}) could not be opened: {e}; recording without it",
                    device_name(&device)
                )),
            }
        }
        AudioCapture {
            streams,
            sources,
            warnings,
        }
    }
}

/// Per-stream state living in the callback.
struct Feed {
    index: usize,
    channels: usize,
    clock: RecordingClock,
    resampler: StereoResampler,
    converted: Vec<f32>,
    next_frame: Option<i64>,
    offsets: std::collections::VecDeque<i64>,
    tx: Sender<SourceChunk>,
}

impl Feed {
    fn on_data(&mut self, data: &Data, info: &InputCallbackInfo) {
        let now = Instant::now();
        let ts = info.timestamp();
        let latency = ts.callback.saturating_duration_since(ts.capture);
        let captured_at = now.checked_sub(latency).unwrap_or(now);

        let ch = self.channels;
        let conv = &mut self.converted;
        match data.sample_format() {
            SampleFormat::F32 => {
                to_stereo_f32(data.as_slice::<f32>().unwrap_or(&[]), ch, |s| s, conv)
            }
            SampleFormat::I16 => {
                to_stereo_f32(data.as_slice::<i16>().unwrap_or(&[]), ch, i16_to_f32, conv)
            }
            SampleFormat::I32 => {
                to_stereo_f32(data.as_slice::<i32>().unwrap_or(&[]), ch, i32_to_f32, conv)
            }
            SampleFormat::U8 => {
                to_stereo_f32(data.as_slice::<u8>().unwrap_or(&[]), ch, u8_to_f32, conv)
            }
            _ => conv.clear(),
        }
        let mut samples = Vec::with_capacity(conv.len() * 2);
        self.resampler.process(conv, &mut samples);
        let frames = (samples.len() / 2) as i64;
        if frames == 0 {
            return;
        }

        let stamped = (self.clock.offset_secs(captured_at) * f64::from(MIX_RATE)).round() as i64;
        let start = match self.next_frame {
            None => stamped,
            Some(counted) => {
                if self.offsets.len() == DRIFT_WINDOW {
                    self.offsets.pop_front();
                }
                self.offsets.push_back(stamped - counted);
                let offset = self.offsets.iter().copied().min().unwrap_or(0);
                let limit = (RESYNC_AFTER.as_secs_f64() * f64::from(MIX_RATE)) as i64;
                // Only decide on a full window, unless the first stamp was far too late.
                let settled = self.offsets.len() >= DRIFT_WINDOW / 4;
                if settled && offset.abs() > limit {
                    self.offsets.clear();
                    counted + offset
                } else {
                    counted
                }
            }
        };
        if self.next_frame.is_none() {
            tracing::debug!(
                source = self.index,
                ?latency,
                stamped,
                frames,
                "first audio buffer"
            );
        }
        self.next_frame = Some(start + frames);
        let _ = self.tx.send(SourceChunk {
            source: self.index,
            start_frame: start,
            samples,
        });
    }
}

fn start_stream(
    device: &cpal::Device,
    index: usize,
    clock: RecordingClock,
    tx: Sender<SourceChunk>,
) -> Result<cpal::Stream> {
    let default = device
        .default_input_config()
        .map_err(|e| CaptureError::Audio(e.to_string()))?;
    let format = match default.sample_format() {
        f @ (SampleFormat::F32 | SampleFormat::I16 | SampleFormat::I32 | SampleFormat::U8) => f,
        // Anything else (24-bit, f64, ...): let the server convert to f32 for us.
        _ => SampleFormat::F32,
    };
    let config = StreamConfig {
        channels: default.channels(),
        sample_rate: default.sample_rate(),
        // With the default buffer, PulseAudio fills ~2 s before the first callback (and cpal's
        // play() waits for it); a fixed 1024-frame fragment starts within tens of milliseconds.
        buffer_size: cpal::BufferSize::Fixed(1024),
    };
    let mut feed = Feed {
        index,
        channels: usize::from(config.channels),
        clock,
        resampler: StereoResampler::new(config.sample_rate, MIX_RATE),
        converted: Vec::new(),
        next_frame: None,
        offsets: std::collections::VecDeque::with_capacity(DRIFT_WINDOW),
        tx,
    };
    let stream = device
        .build_input_stream_raw(
            config,
            format,
            move |data: &Data, info: &InputCallbackInfo| feed.on_data(data, info),
            |e| tracing::warn!("audio stream error: {e}"),
            Some(Duration::from_secs(3)),
        )
        .map_err(|e| CaptureError::Audio(e.to_string()))?;
    stream
        .play()
        .map_err(|e| CaptureError::Audio(e.to_string()))?;
    Ok(stream)
}
