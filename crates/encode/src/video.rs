//! H.264 video: BGRX pixels -> (scale + convert with swscale) -> yuv420p -> libx264, or
//! pictures already converted on the capture thread ([`I420Layout`]) -> libx264.

use std::path::Path;

use ffmpeg::format::Pixel;
use ffmpeg_next as ffmpeg;

use crate::convert::{Converter, I420Layout};
use crate::{EncodeError, Result, Settings, StreamOut, VideoParams, ff};

pub(crate) struct VideoEncoder {
    enc: ffmpeg::encoder::Video,
    sws: Converter,
    /// The picture BGRX input is converted into; made on first use (converted input is
    /// handed to x264 in place and needs none).
    yuv: Option<ffmpeg::frame::Video>,
    params: VideoParams,
    out: StreamOut,
    frames: u64,
    last_index: Option<u64>,
    /// The index of the picture converted into `yuv` and not yet sent to x264.
    staged: Option<u64>,
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

        let sws = Converter::new(params)?;
        Ok(Self {
            enc,
            sws,
            yuv: None,
            params,
            out: StreamOut::new(stream_index, enc_tb, 1, "writing video"),
            frames: 0,
            last_index: None,
            staged: None,
        })
    }

    /// Converts `pixels` into the encoder's own picture, after which the caller may reuse them
    /// (the capture buffer goes back to its pool while x264 works). Returns false when the
    /// frame is skipped: presentation times must increase, and a repeated index would be
    /// rejected by the muxer.
    /// Whether a frame at `index` would be skipped: presentation times must increase, and a
    /// repeated index would be rejected by the muxer.
    fn stale(&self, index: u64) -> bool {
        self.staged
            .or(self.last_index)
            .is_some_and(|last| index <= last)
    }

    /// The picture BGRX input is converted into, exclusively ours: x264 may still reference
    /// the previous one (making it writable is a no-op when it doesn't).
    fn writable_picture(&mut self) -> Result<&mut ffmpeg::frame::Video> {
        let p = self.params;
        let yuv = self.yuv.get_or_insert_with(|| {
            ffmpeg::frame::Video::new(Pixel::YUV420P, p.out_width, p.out_height)
        });
        // SAFETY: `yuv` is a valid, allocated frame.
        let rc = unsafe { ffmpeg::ffi::av_frame_make_writable(yuv.as_mut_ptr()) };
        if rc < 0 {
            return Err(ff("reusing the picture buffer")(ffmpeg::Error::from(rc)));
        }
        Ok(yuv)
    }

    /// Converts BGRX `pixels` into the encoder's own picture, after which the caller may reuse
    /// them (the capture buffer goes back to its pool while x264 works). Returns false when
    /// the frame is skipped ([`Self::stale`]).
    pub(crate) fn convert(&mut self, pixels: &[u8], index: u64) -> Result<bool> {
        if self.stale(index) {
            return Ok(false);
        }
        let yuv = self.writable_picture()?;
        // SAFETY: `yuv` was allocated for the output size in yuv420p, so each plane holds
        // its linesize times its rows, and its planes are distinct from `pixels`.
        let (planes, strides) = unsafe {
            let f = &*yuv.as_ptr();
            (
                [f.data[0], f.data[1], f.data[2]],
                [0, 1, 2].map(|i| f.linesize[i] as usize),
            )
        };
        // SAFETY: as above.
        unsafe { self.sws.convert_into(pixels, planes, strides)? };
        self.staged = Some(index);
        Ok(true)
    }

    /// Encodes a picture converted elsewhere ([`Converter::convert`]) in place: x264 reads
    /// it straight from `data` (no copy), and `release` gets `data` back once FFmpeg let go
    /// of it, whether the frame was encoded, skipped or failed.
    pub(crate) fn encode_shared(
        &mut self,
        octx: &mut ffmpeg::format::context::Output,
        path: &Path,
        data: Vec<u8>,
        index: u64,
        release: impl FnOnce(Vec<u8>) + Send + 'static,
    ) -> Result<()> {
        let layout = I420Layout::new(self.params.out_width, self.params.out_height);
        if data.len() < layout.len() {
            let msg = format!(
                "converted frame of {} bytes, need {}",
                data.len(),
                layout.len()
            );
            release(data);
            return Err(EncodeError::BadInput(msg));
        }
        if self.stale(index) {
            release(data);
            return Ok(());
        }
        let mut frame = shared_frame(data, layout, release)?;
        frame.set_pts(Some(index as i64));
        self.enc
            .send_frame(&frame)
            .map_err(ff("encoding a frame"))?;
        // Dropping our reference; FFmpeg's own (if any) releases the buffer when it is done.
        drop(frame);
        self.last_index = Some(index);
        self.frames += 1;
        self.out.drain(&mut self.enc, octx, path)
    }

    /// Sends the picture [`Self::convert`] made to x264 and writes what comes out.
    pub(crate) fn encode_converted(
        &mut self,
        octx: &mut ffmpeg::format::context::Output,
        path: &Path,
    ) -> Result<()> {
        let Some(index) = self.staged.take() else {
            return Ok(());
        };
        let Some(yuv) = self.yuv.as_mut() else {
            return Ok(());
        };
        yuv.set_pts(Some(index as i64));
        self.enc.send_frame(yuv).map_err(ff("encoding a frame"))?;
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

/// What an [`ffi::AVBufferRef`] made by [`shared_frame`] owns: the pixels, and what to do with
/// them once FFmpeg drops its last reference.
struct SharedPixels {
    data: Vec<u8>,
    release: Box<dyn FnOnce(Vec<u8>) + Send>,
}

/// Called by FFmpeg when the last reference to a [`shared_frame`]'s buffer goes.
extern "C" fn release_shared(opaque: *mut std::ffi::c_void, _data: *mut u8) {
    // SAFETY: `opaque` is the Box::into_raw of `shared_frame`, and FFmpeg calls this exactly
    // once per buffer.
    let owned = unsafe { Box::from_raw(opaque.cast::<SharedPixels>()) };
    let SharedPixels { data, release } = *owned;
    // A panic must not unwind into C.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| release(data)));
}

/// A yuv420p frame whose planes are `data` (laid out as `layout`), reference-counted by
/// FFmpeg, so the encoder takes it without copying; `release` gets `data` back at the end.
fn shared_frame(
    data: Vec<u8>,
    layout: I420Layout,
    release: impl FnOnce(Vec<u8>) + Send + 'static,
) -> Result<ffmpeg::frame::Video> {
    let len = data.len();
    let owned = Box::new(SharedPixels {
        data,
        release: Box::new(release),
    });
    // The Vec's heap block does not move when the Vec (or its box) does.
    let base = owned.data.as_ptr().cast_mut();
    let opaque = Box::into_raw(owned);
    // SAFETY: `base` points at `len` bytes that live until `release_shared` runs, which
    // FFmpeg calls once when the buffer's last reference goes; READONLY tells FFmpeg never to
    // write through it.
    let buf = unsafe {
        ffmpeg::ffi::av_buffer_create(
            base,
            len,
            Some(release_shared),
            opaque.cast(),
            ffmpeg::ffi::AV_BUFFER_FLAG_READONLY,
        )
    };
    if buf.is_null() {
        // SAFETY: FFmpeg did not take ownership; take it back and hand the pixels back.
        let owned = unsafe { Box::from_raw(opaque) };
        let SharedPixels { data, release } = *owned;
        release(data);
        return Err(ff("wrapping a frame")(ffmpeg::Error::Other {
            errno: ffmpeg::util::error::ENOMEM,
        }));
    }
    let mut frame = ffmpeg::frame::Video::empty();
    let offsets = layout.offsets();
    // SAFETY: `frame` is a fresh, empty AVFrame; it takes over `buf` (freed with the frame),
    // and its planes point inside the buffer at the layout's offsets and strides.
    unsafe {
        let f = &mut *frame.as_mut_ptr();
        f.format = ffmpeg::ffi::AVPixelFormat::AV_PIX_FMT_YUV420P as i32;
        f.width = layout.width as i32;
        f.height = layout.height as i32;
        f.buf[0] = buf;
        for (i, offset) in offsets.into_iter().enumerate() {
            f.data[i] = base.add(offset);
            f.linesize[i] = layout.plane(i).0 as i32;
        }
    }
    Ok(frame)
}
