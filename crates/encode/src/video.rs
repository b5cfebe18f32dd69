//! H.264 video: BGRX pixels -> (scale + convert with swscale) -> yuv420p -> libx264.

use std::path::Path;

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg_next as ffmpeg;

use crate::{EncodeError, Result, Settings, StreamOut, VideoParams, ff};

pub(crate) struct VideoEncoder {
    enc: ffmpeg::encoder::Video,
    sws: scaling::Context,
    yuv: ffmpeg::frame::Video,
    params: VideoParams,
    out: StreamOut,
    frames: u64,
    last_index: Option<u64>,
}

impl VideoEncoder {
    pub(crate) fn new(
        octx: &mut ffmpeg::format::context::Output,
        params: VideoParams,
        settings: &Settings,
    ) -> Result<Self> {
        let codec = ffmpeg::encoder::find_by_name("libx264")
            .ok_or(EncodeError::MissingEncoder("libx264"))?;
        let global_header = octx
            .format()
            .flags()
            .contains(ffmpeg::format::Flags::GLOBAL_HEADER);
        let mut stream = octx
            .add_stream(codec)
            .map_err(ff("adding the video stream"))?;
        let stream_index = stream.index();
        let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(ff("creating the H.264 encoder"))?;
        let enc_tb = ffmpeg::Rational::new(1, params.fps as i32);
        enc.set_width(params.out_width);
        enc.set_height(params.out_height);
        enc.set_format(Pixel::YUV420P);
        enc.set_time_base(enc_tb);
        enc.set_frame_rate(Some(ffmpeg::Rational::new(params.fps as i32, 1)));
        enc.set_gop(params.fps * settings.keyframe_secs);
        if global_header {
            enc.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
        }
        let mut opts = ffmpeg::Dictionary::new();
        opts.set("preset", &settings.preset);
        opts.set("crf", &settings.crf.to_string());
        if !settings.x264_params.is_empty() {
            opts.set("x264-params", &settings.x264_params);
        }
        let enc = enc.open_with(opts).map_err(ff("opening libx264"))?;
        stream.set_parameters(&enc);
        stream.set_time_base(enc_tb);

        // BGRX is declared as BGRA (same layout; the alpha byte is dropped since yuv420p has no
        // alpha plane) because FFmpeg 5.1 has SIMD input converters for BGRA only, and with
        // FULL_CHR_H_INP the chroma is computed at full width by that SIMD code and then
        // filtered down, instead of the scalar "average two pixels" path. Measured: half the
        // CPU of the conversion, which is most of this thread's work (README, Performance).
        let sws = scaling::Context::get(
            Pixel::BGRA,
            params.in_width,
            params.in_height,
            Pixel::YUV420P,
            params.out_width,
            params.out_height,
            scaling::Flags::BILINEAR | scaling::Flags::FULL_CHR_H_INP,
        )
        .map_err(ff("setting up pixel conversion"))?;
        Ok(Self {
            enc,
            sws,
            yuv: ffmpeg::frame::Video::new(Pixel::YUV420P, params.out_width, params.out_height),
            params,
            out: StreamOut::new(stream_index, enc_tb, 1, "writing video"),
            frames: 0,
            last_index: None,
        })
    }

    pub(crate) fn encode(
        &mut self,
        octx: &mut ffmpeg::format::context::Output,
        path: &Path,
        pixels: &[u8],
        index: u64,
    ) -> Result<()> {
        let p = self.params;
        let need = p.in_stride * (p.in_height as usize - 1) + p.in_width as usize * 4;
        if pixels.len() < need {
            return Err(EncodeError::BadInput(format!(
                "frame of {} bytes, need {need}",
                pixels.len()
            )));
        }
        // Presentation times must increase; a repeated index would be rejected by the muxer.
        if self.last_index.is_some_and(|last| index <= last) {
            return Ok(());
        }
        // SAFETY: x264 may still reference the previous picture; this gives us an exclusive
        // buffer (a no-op when it doesn't). The scaler reads `in_height` rows of `in_stride`
        // bytes from `pixels`, which we checked is long enough, and writes into `yuv`'s planes,
        // which were allocated for the output size and format the context was built for.
        unsafe {
            let rc = ffmpeg::ffi::av_frame_make_writable(self.yuv.as_mut_ptr());
            if rc < 0 {
                return Err(ff("reusing the picture buffer")(ffmpeg::Error::from(rc)));
            }
            let src = [
                pixels.as_ptr(),
                std::ptr::null(),
                std::ptr::null(),
                std::ptr::null(),
            ];
            let src_stride = [p.in_stride as i32, 0, 0, 0];
            let dst = (*self.yuv.as_mut_ptr()).data;
            let dst_stride = (*self.yuv.as_ptr()).linesize;
            ffmpeg::ffi::sws_scale(
                self.sws.as_mut_ptr(),
                src.as_ptr(),
                src_stride.as_ptr(),
                0,
                p.in_height as i32,
                dst.as_ptr(),
                dst_stride.as_ptr(),
            );
        }
        self.yuv.set_pts(Some(index as i64));
        self.enc
            .send_frame(&self.yuv)
            .map_err(ff("encoding a frame"))?;
        self.last_index = Some(index);
        self.frames += 1;
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

    pub(crate) fn duration_secs(&self) -> f64 {
        self.last_index
            .map_or(0.0, |i| (i + 1) as f64 / f64::from(self.params.fps))
    }
}
