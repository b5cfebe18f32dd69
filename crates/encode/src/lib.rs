//! Encodes captured frames and mixed audio into a crash-safe MP4 with FFmpeg (ffmpeg-next).
//!
//! H.264 (libx264) + AAC in *fragmented* MP4: the header is written up front with an empty
//! `moov`, and every keyframe (2 s by default) closes a self-contained fragment. A crash or power
//! loss therefore leaves a file that plays up to its last complete fragment; finishing normally
//! adds the `mfra` index that makes seeking instant.
//!
//! This crate knows nothing of X11, sound servers or the network: it takes raw BGRX pixels (or
//! pictures its [`Converter`] made from them) and interleaved f32 stereo samples with their
//! positions, and writes a file.

mod audio;
pub mod convert;
mod video;

use std::path::{Path, PathBuf};

use ffmpeg_next as ffmpeg;

pub use audio::AUDIO_FRAME_SIZE;
pub use convert::{Converter, I420Layout};

/// Errors of the encoder. `DiskFull` is separate because the recorder reacts to it (clean stop,
/// tell the user) rather than treating it as a bug.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("FFmpeg has no {0} encoder (install FFmpeg built with libx264 and aac)")]
    MissingEncoder(&'static str),
    #[error("cannot create {path}: {reason}")]
    Create { path: PathBuf, reason: String },
    #[error("the disk is full: stopped writing {0}")]
    DiskFull(PathBuf),
    #[error("{what}: {source}")]
    Ffmpeg {
        what: &'static str,
        #[source]
        source: ffmpeg::Error,
    },
    #[error("bad input: {0}")]
    BadInput(String),
}

pub type Result<T, E = EncodeError> = std::result::Result<T, E>;

pub(crate) fn ff(what: &'static str) -> impl FnOnce(ffmpeg::Error) -> EncodeError {
    move |source| EncodeError::Ffmpeg { what, source }
}

/// How long a media file plays, as FFmpeg's demuxer sees it (it reads a fragmented MP4's
/// fragments, which a box-header scan cannot date). `None` when FFmpeg cannot open the file or
/// it states no duration.
pub fn probe_duration_ms(path: &Path) -> Option<u64> {
    ffmpeg::init().ok()?;
    let input = ffmpeg::format::input(path).ok()?;
    let micros = input.duration();
    // AV_NOPTS_VALUE (i64::MIN) and negatives mean "unknown".
    (micros > 0).then(|| u64::try_from(micros / 1000).unwrap_or(0))
}

/// The picture going in and coming out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoParams {
    pub in_width: u32,
    pub in_height: u32,
    /// Bytes between rows of the input (at least `in_width * 4`).
    pub in_stride: usize,
    /// Even, at most 1920x1080: see `capture::OutputSize`.
    pub out_width: u32,
    pub out_height: u32,
    pub fps: u32,
}

/// Encoder settings; the defaults are OBS's recording defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub preset: String,
    pub crf: u8,
    pub keyframe_secs: u32,
    pub audio_bitrate: usize,
    /// Extra libx264 options (`key=value:key=value`); see [`Settings::bounded_memory_x264`].
    pub x264_params: String,
}

impl Settings {
    /// libx264 options that keep a 1080p recording's memory near 100 MB instead of ~250 MB,
    /// measured with `scripts/bench-record.sh` (see README, Performance).
    ///
    /// Why: with its defaults x264 runs one frame thread per 2/3 core, each holding whole
    /// reference and look-ahead frames (~12 MB each at 1080p). Sliced threads share one frame
    /// between threads, and a 3-frame look-ahead (still covering veryfast's B-frames) halves the
    /// frames waiting in the queue. Without B-pyramid (a B-frame used as a reference) x264
    /// keeps one reconstructed 1080p frame fewer, with its half-pel planes: about 23 MB, for
    /// 1.7 % more bytes at the same CRF (measured on FFmpeg's testsrc2). The cost is a few
    /// percent of file size in all, and the CPU cost goes *down*.
    pub fn bounded_memory_x264() -> String {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
        format!("threads={threads}:sliced-threads=1:rc-lookahead=3:sync-lookahead=0:b-pyramid=none")
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            preset: "veryfast".into(),
            crf: 23,
            keyframe_secs: 2,
            audio_bitrate: 128_000,
            x264_params: Self::bounded_memory_x264(),
        }
    }
}

/// What was written, for the recording's summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileSummary {
    pub path: PathBuf,
    pub video_frames: u64,
    pub audio_frames: u64,
    /// End of the last video frame, in seconds.
    pub duration_secs: f64,
    pub bytes: u64,
}

/// Carries one stream's encoded packets into the muxer; shared by the audio and video paths.
pub(crate) struct StreamOut {
    index: usize,
    enc_tb: ffmpeg::Rational,
    /// Packet duration (in `enc_tb`) used when the encoder leaves it unset: without one, the
    /// muxer guesses the duration of each fragment's last packet, and says so on stderr.
    default_duration: i64,
    what: &'static str,
    packet: ffmpeg::Packet,
}

impl StreamOut {
    pub(crate) fn new(
        index: usize,
        enc_tb: ffmpeg::Rational,
        default_duration: i64,
        what: &'static str,
    ) -> Self {
        Self {
            index,
            enc_tb,
            default_duration,
            what,
            packet: ffmpeg::Packet::empty(),
        }
    }

    /// Writes every packet the encoder has ready.
    pub(crate) fn drain(
        &mut self,
        enc: &mut ffmpeg::encoder::Encoder,
        octx: &mut ffmpeg::format::context::Output,
        path: &Path,
    ) -> Result<()> {
        let stream_tb = octx
            .stream(self.index)
            .map_or(self.enc_tb, |s| s.time_base());
        while enc.receive_packet(&mut self.packet).is_ok() {
            self.packet.set_stream(self.index);
            if self.packet.duration() == 0 {
                self.packet.set_duration(self.default_duration);
            }
            self.packet.rescale_ts(self.enc_tb, stream_tb);
            self.packet
                .write_interleaved(octx)
                .map_err(|e| write_error(path, self.what, e))?;
        }
        Ok(())
    }

    /// Ends the stream: the encoder gives up what it still holds (lookahead, B-frames).
    pub(crate) fn flush(
        &mut self,
        enc: &mut ffmpeg::encoder::Encoder,
        octx: &mut ffmpeg::format::context::Output,
        path: &Path,
    ) -> Result<()> {
        // A second EOF is refused: it means the stream was already flushed.
        if enc.send_eof().is_ok() {
            self.drain(enc, octx, path)?;
        }
        Ok(())
    }
}

/// An MP4 file being written.
pub struct Mp4Writer {
    path: PathBuf,
    octx: ffmpeg::format::context::Output,
    video: video::VideoEncoder,
    audio: Option<audio::AudioEncoder>,
    finished: bool,
}

impl std::fmt::Debug for Mp4Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mp4Writer")
            .field("path", &self.path)
            .finish()
    }
}

/// Maps a write error to `DiskFull` when that is what it is.
pub(crate) fn write_error(path: &Path, what: &'static str, e: ffmpeg::Error) -> EncodeError {
    match e {
        ffmpeg::Error::Other { errno } if errno == libc::ENOSPC => {
            EncodeError::DiskFull(path.to_owned())
        }
        source => EncodeError::Ffmpeg { what, source },
    }
}

impl Mp4Writer {
    /// Creates `path` (which must not exist yet) and writes the MP4 header.
    pub fn create(
        path: &Path,
        video: VideoParams,
        with_audio: bool,
        settings: &Settings,
    ) -> Result<Self> {
        ffmpeg::init().map_err(ff("initialising FFmpeg"))?;
        // libx264 and the muxer chat on stderr at "info"; our own status line says what matters.
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Error);
        if video.in_stride < video.in_width as usize * 4 || video.fps == 0 {
            return Err(EncodeError::BadInput(format!("{video:?}")));
        }
        let create_err = |reason: String| EncodeError::Create {
            path: path.to_owned(),
            reason,
        };
        // Never clobber an earlier recording.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| create_err(e.to_string()))?;
        let mut octx =
            ffmpeg::format::output_as(path, "mp4").map_err(|e| create_err(e.to_string()))?;
        let video_enc = video::VideoEncoder::new(&mut octx, video, settings)?;
        let audio_enc = if with_audio {
            Some(audio::AudioEncoder::new(&mut octx, settings)?)
        } else {
            None
        };

        let mut opts = ffmpeg::Dictionary::new();
        opts.set(
            "movflags",
            "frag_keyframe+empty_moov+default_base_moof+negative_cts_offsets",
        );
        // Hand each fragment to the kernel as soon as it is complete, not when a buffer fills.
        opts.set("flush_packets", "1");
        // avformat_write_header returns 1 when the muxer initialised in init_output; ffmpeg-next
        // only accepts 0, so call it directly and treat only negatives as errors.
        // SAFETY: `octx` is a valid output context with its streams added; `opts` is a valid
        // dictionary whose ownership passes to FFmpeg and is freed below.
        let rc = unsafe {
            let mut raw = opts.disown();
            let rc = ffmpeg::ffi::avformat_write_header(octx.as_mut_ptr(), &mut raw);
            ffmpeg::ffi::av_dict_free(&mut raw);
            rc
        };
        if rc < 0 {
            return Err(write_error(
                path,
                "writing the MP4 header",
                ffmpeg::Error::from(rc),
            ));
        }
        Ok(Self {
            path: path.to_owned(),
            octx,
            video: video_enc,
            audio: audio_enc,
            finished: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Encodes one frame shown from `index / fps` seconds on.
    pub fn write_video(&mut self, pixels: &[u8], index: u64) -> Result<()> {
        self.video.convert(pixels, index)?;
        self.video.encode_converted(&mut self.octx, &self.path)
    }

    /// The first half of [`Self::write_video`]: converts `pixels` into the encoder's own
    /// picture, after which the caller may reuse them (a capture buffer goes back to its pool
    /// before x264, the slow part, runs). Returns false when the frame is skipped because its
    /// index does not increase. Follow with [`Self::encode_converted_video`].
    pub fn convert_video(&mut self, pixels: &[u8], index: u64) -> Result<bool> {
        self.video.convert(pixels, index)
    }

    /// Encodes a picture a [`Converter`] made already (laid out as [`I420Layout`] says for
    /// the output size) without copying it: `release` gets the buffer back once FFmpeg is done
    /// with it, whatever happens (encoded, skipped because its index does not increase, or
    /// failed).
    pub fn write_converted_video(
        &mut self,
        data: Vec<u8>,
        index: u64,
        release: impl FnOnce(Vec<u8>) + Send + 'static,
    ) -> Result<()> {
        self.video
            .encode_shared(&mut self.octx, &self.path, data, index, release)
    }

    /// The second half of [`Self::write_video`]: encodes what [`Self::convert_video`] made
    /// (nothing when there is none).
    pub fn encode_converted_video(&mut self) -> Result<()> {
        self.video.encode_converted(&mut self.octx, &self.path)
    }

    /// Encodes one block of [`AUDIO_FRAME_SIZE`] interleaved stereo frames starting at
    /// `start_frame` (1/48000 s). Ignored when the file has no audio track.
    pub fn write_audio(&mut self, samples: &[f32], start_frame: u64) -> Result<()> {
        match &mut self.audio {
            Some(a) => a.encode(&mut self.octx, &self.path, samples, start_frame),
            None => Ok(()),
        }
    }

    /// Flushes the encoders and closes the file with its index.
    pub fn finish(mut self) -> Result<FileSummary> {
        self.video.flush(&mut self.octx, &self.path)?;
        if let Some(a) = &mut self.audio {
            a.flush(&mut self.octx, &self.path)?;
        }
        self.finished = true;
        // av_write_trailer returns the size of the mfra box (a positive number) from the MP4
        // muxer of FFmpeg 5.1, which ffmpeg-next reports as an error: only negatives are.
        // SAFETY: valid output context whose header was written.
        let rc = unsafe { ffmpeg::ffi::av_write_trailer(self.octx.as_mut_ptr()) };
        if rc < 0 {
            return Err(write_error(
                &self.path,
                "writing the MP4 index",
                ffmpeg::Error::from(rc),
            ));
        }
        Ok(FileSummary {
            path: self.path.clone(),
            video_frames: self.video.frames(),
            audio_frames: self.audio.as_ref().map_or(0, |a| a.frames()),
            duration_secs: self.video.duration_secs(),
            bytes: std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0),
        })
    }
}

impl Drop for Mp4Writer {
    fn drop(&mut self) {
        if !self.finished {
            // Not finished (an error or a panic upstream): whatever fragments were written stay
            // playable; give the muxer the chance to write what it still buffers.
            let _ = self.video.flush(&mut self.octx, &self.path);
            // SAFETY: as in `finish`.
            unsafe { ffmpeg::ffi::av_write_trailer(self.octx.as_mut_ptr()) };
        }
    }
}
