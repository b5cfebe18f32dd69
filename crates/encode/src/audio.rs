//! AAC audio: interleaved f32 stereo blocks -> planar float -> FFmpeg's native AAC encoder.

use std::path::Path;

use ffmpeg::ChannelLayout;
use ffmpeg::format::Sample;
use ffmpeg::format::sample::Type as SampleType;
use ffmpeg_next as ffmpeg;

use crate::{EncodeError, Result, Settings, StreamOut, ff};

/// Frames per block the encoder takes: the AAC frame size.
pub const AUDIO_FRAME_SIZE: usize = 1024;
const RATE: i32 = 48_000;

pub(crate) struct AudioEncoder {
    enc: ffmpeg::encoder::Audio,
    frame: ffmpeg::frame::Audio,
    out: StreamOut,
    frames: u64,
    next_start: Option<u64>,
}

impl AudioEncoder {
    pub(crate) fn new(
        octx: &mut ffmpeg::format::context::Output,
        settings: &Settings,
    ) -> Result<Self> {
        let codec = ffmpeg::encoder::find(ffmpeg::codec::Id::AAC)
            .ok_or(EncodeError::MissingEncoder("aac"))?;
        let global_header = octx
            .format()
            .flags()
            .contains(ffmpeg::format::Flags::GLOBAL_HEADER);
        let mut stream = octx
            .add_stream(codec)
            .map_err(ff("adding the audio stream"))?;
        let stream_index = stream.index();
        let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(ff("creating the AAC encoder"))?;
        let enc_tb = ffmpeg::Rational::new(1, RATE);
        enc.set_rate(RATE);
        enc.set_channel_layout(ChannelLayout::STEREO);
        enc.set_channels(2);
        enc.set_format(Sample::F32(SampleType::Planar));
        enc.set_bit_rate(settings.audio_bitrate);
        enc.set_time_base(enc_tb);
        if global_header {
            enc.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
        }
        let enc = enc.open().map_err(ff("opening the AAC encoder"))?;
        stream.set_parameters(&enc);
        stream.set_time_base(enc_tb);
        let mut frame = ffmpeg::frame::Audio::new(
            Sample::F32(SampleType::Planar),
            AUDIO_FRAME_SIZE,
            ChannelLayout::STEREO,
        );
        frame.set_rate(RATE as u32);
        Ok(Self {
            enc,
            frame,
            out: StreamOut::new(
                stream_index,
                enc_tb,
                AUDIO_FRAME_SIZE as i64,
                "writing audio",
            ),
            frames: 0,
            next_start: None,
        })
    }

    pub(crate) fn encode(
        &mut self,
        octx: &mut ffmpeg::format::context::Output,
        path: &Path,
        samples: &[f32],
        start_frame: u64,
    ) -> Result<()> {
        if samples.len() != AUDIO_FRAME_SIZE * 2 {
            return Err(EncodeError::BadInput(format!(
                "audio block of {} samples, need {}",
                samples.len(),
                AUDIO_FRAME_SIZE * 2
            )));
        }
        // Blocks are contiguous by construction; an overlap would break the muxer's ordering.
        if self.next_start.is_some_and(|next| start_frame < next) {
            return Ok(());
        }
        // SAFETY: see VideoEncoder::encode: the encoder may still hold the previous buffer.
        let rc = unsafe { ffmpeg::ffi::av_frame_make_writable(self.frame.as_mut_ptr()) };
        if rc < 0 {
            return Err(ff("reusing the audio buffer")(ffmpeg::Error::from(rc)));
        }
        for ch in 0..2 {
            let plane = self.frame.plane_mut::<f32>(ch);
            for (dst, frame) in plane.iter_mut().zip(samples.chunks_exact(2)) {
                *dst = frame[ch];
            }
        }
        self.frame.set_pts(Some(start_frame as i64));
        self.enc
            .send_frame(&self.frame)
            .map_err(ff("encoding audio"))?;
        self.next_start = Some(start_frame + AUDIO_FRAME_SIZE as u64);
        self.frames += AUDIO_FRAME_SIZE as u64;
        self.out.drain(&mut self.enc, octx, path)
    }

    pub(crate) fn flush(
        &mut self,
        octx: &mut ffmpeg::format::context::Output,
        path: &Path,
    ) -> Result<()> {
        self.out.flush(&mut self.enc, octx, path)
    }

    pub(crate) fn frames(&self) -> u64 {
        self.frames
    }
}
