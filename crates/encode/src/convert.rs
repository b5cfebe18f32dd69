//! BGRX pixels → planar YUV 4:2:0 at the output size, with swscale.
//!
//! Used in two places: inside the video encoder (pixels handed to [`crate::Mp4Writer`] as
//! BGRX), and on the capture thread, where a [`Converter`] turns each captured frame into a
//! compact [`I420Layout`] buffer right away. The second is why this type exists apart: a 1080p
//! BGRX frame is 8.3 MB, its 4:2:0 form 3.1 MB, so converting before the queue keeps only one
//! big capture buffer alive and the queued frames small (see README, Performance).

use ffmpeg_next as ffmpeg;

use ffmpeg::ffi;

use crate::{EncodeError, Result, VideoParams};

/// Where the planes of a packed 4:2:0 picture are in one buffer: Y (`y_stride` x `height`),
/// then U and V (`c_stride` x `height / 2` each). Strides are rounded up to 32 bytes, so
/// swscale's SIMD stores stay aligned whatever the width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct I420Layout {
    pub width: u32,
    pub height: u32,
    pub y_stride: usize,
    pub c_stride: usize,
}

const ALIGN: usize = 32;

impl I420Layout {
    /// The layout for an even-sized picture.
    pub fn new(width: u32, height: u32) -> Self {
        let round = |n: usize| n.div_ceil(ALIGN) * ALIGN;
        Self {
            width,
            height,
            y_stride: round(width as usize),
            c_stride: round(width.div_ceil(2) as usize),
        }
    }

    fn chroma_rows(&self) -> usize {
        self.height.div_ceil(2) as usize
    }

    /// Byte offsets of the Y, U and V planes.
    pub fn offsets(&self) -> [usize; 3] {
        let y = self.y_stride * self.height as usize;
        let c = self.c_stride * self.chroma_rows();
        [0, y, y + c]
    }

    /// Bytes of one picture.
    pub fn len(&self) -> usize {
        self.offsets()[2] + self.c_stride * self.chroma_rows()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Plane `i`'s row stride and its number of rows.
    pub(crate) fn plane(&self, i: usize) -> (usize, usize) {
        if i == 0 {
            (self.y_stride, self.height as usize)
        } else {
            (self.c_stride, self.chroma_rows())
        }
    }
}

/// A swscale context converting (and scaling) BGRX input to YUV 4:2:0 output.
pub struct Converter {
    ctx: *mut ffi::SwsContext,
    params: VideoParams,
}

// SAFETY: a SwsContext is plain heap state with no thread affinity; this value owns it
// exclusively (no aliases escape) and `&mut self` serialises every use, so moving it to another
// thread (the capture thread) is sound.
unsafe impl Send for Converter {}

impl std::fmt::Debug for Converter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Converter")
            .field("params", &self.params)
            .finish()
    }
}

impl Converter {
    pub fn new(params: VideoParams) -> Result<Self> {
        if params.in_stride < params.in_width as usize * 4 {
            return Err(EncodeError::BadInput(format!(
                "row stride {} is shorter than {} pixels",
                params.in_stride, params.in_width
            )));
        }
        let dims = [
            params.in_width,
            params.in_height,
            params.out_width,
            params.out_height,
        ];
        if dims.iter().any(|&d| d == 0 || d > 16384) {
            return Err(EncodeError::BadInput(format!(
                "impossible picture size {}x{} -> {}x{}",
                dims[0], dims[1], dims[2], dims[3]
            )));
        }
        // BGRX is declared as BGRA (same layout; the alpha byte is dropped since yuv420p has no
        // alpha plane) because FFmpeg 5.1 has SIMD input converters for BGRA only, and with
        // FULL_CHR_H_INP the chroma is computed at full width by that SIMD code and then
        // filtered down, instead of the scalar "average two pixels" path. Measured: half the
        // CPU of the conversion (README, Performance).
        let flags = ffi::SWS_BILINEAR | ffi::SWS_FULL_CHR_H_INP;
        // SAFETY: plain constructor; sizes were checked above, null filters and params mean
        // swscale's defaults. A null result is handled.
        let ctx = unsafe {
            ffi::sws_getContext(
                params.in_width as i32,
                params.in_height as i32,
                ffi::AVPixelFormat::AV_PIX_FMT_BGRA,
                params.out_width as i32,
                params.out_height as i32,
                ffi::AVPixelFormat::AV_PIX_FMT_YUV420P,
                flags,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null(),
            )
        };
        if ctx.is_null() {
            return Err(EncodeError::BadInput(format!(
                "swscale cannot convert {}x{} to {}x{}",
                dims[0], dims[1], dims[2], dims[3]
            )));
        }
        Ok(Self { ctx, params })
    }

    /// The layout [`Self::convert`] writes.
    pub fn layout(&self) -> I420Layout {
        I420Layout::new(self.params.out_width, self.params.out_height)
    }

    fn check_input(&self, bgrx: &[u8]) -> Result<()> {
        let p = self.params;
        let need = p.in_stride * (p.in_height as usize - 1) + p.in_width as usize * 4;
        if bgrx.len() < need {
            return Err(EncodeError::BadInput(format!(
                "frame of {} bytes, need {need}",
                bgrx.len()
            )));
        }
        Ok(())
    }

    /// Converts one frame into `out`, laid out as [`Self::layout`] says.
    pub fn convert(&mut self, bgrx: &[u8], out: &mut [u8]) -> Result<()> {
        let layout = self.layout();
        if out.len() < layout.len() {
            return Err(EncodeError::BadInput(format!(
                "output buffer of {} bytes, need {}",
                out.len(),
                layout.len()
            )));
        }
        let [y, u, v] = layout.offsets();
        let base = out.as_mut_ptr();
        // SAFETY: the three planes lie inside `out` (its length was checked against
        // `layout.len()`, which ends with the V plane) and do not overlap; `bgrx` is a
        // different, shared borrow.
        unsafe {
            self.convert_into(
                bgrx,
                [base.add(y), base.add(u), base.add(v)],
                [layout.y_stride, layout.c_stride, layout.c_stride],
            )
        }
    }

    /// Converts one frame into three caller-owned planes.
    ///
    /// # Safety
    /// `planes[i]` must be valid for writes of `strides[i]` bytes times the plane's rows
    /// (`out_height` for Y, half of it rounded up for U and V), and the planes must not
    /// overlap each other or `bgrx`.
    pub(crate) unsafe fn convert_into(
        &mut self,
        bgrx: &[u8],
        planes: [*mut u8; 3],
        strides: [usize; 3],
    ) -> Result<()> {
        self.check_input(bgrx)?;
        let p = self.params;
        let src = [
            bgrx.as_ptr(),
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
        ];
        let src_stride = [p.in_stride as i32, 0, 0, 0];
        let dst = [planes[0], planes[1], planes[2], std::ptr::null_mut()];
        let dst_stride = [strides[0] as i32, strides[1] as i32, strides[2] as i32, 0];
        // SAFETY: the context was built for these sizes and formats; the input holds
        // `in_height` rows of `in_stride` bytes (checked) and the caller vouches for the output.
        let rows = unsafe {
            ffi::sws_scale(
                self.ctx,
                src.as_ptr(),
                src_stride.as_ptr(),
                0,
                p.in_height as i32,
                dst.as_ptr(),
                dst_stride.as_ptr(),
            )
        };
        if rows <= 0 {
            return Err(EncodeError::BadInput("swscale converted nothing".into()));
        }
        Ok(())
    }
}

impl Drop for Converter {
    fn drop(&mut self) {
        // SAFETY: the context was created by sws_getContext and is freed once, here.
        unsafe { ffi::sws_freeContext(self.ctx) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_aligned_and_sized_for_their_planes() {
        // (width, height, y_stride, c_stride, total bytes)
        let cases = [
            (1920, 1080, 1920, 960, 1920 * 1080 + 2 * 960 * 540),
            (1280, 720, 1280, 640, 1280 * 720 + 2 * 640 * 360),
            (100, 50, 128, 64, 128 * 50 + 2 * 64 * 25),
            (16, 16, 32, 32, 32 * 16 + 2 * 32 * 8),
        ];
        for (w, h, ys, cs, len) in cases {
            let l = I420Layout::new(w, h);
            assert_eq!((l.y_stride, l.c_stride, l.len()), (ys, cs, len), "{w}x{h}");
            assert_eq!(l.offsets()[1], ys * h as usize);
        }
    }

    #[test]
    fn converts_flat_colours_to_their_bt601_values() {
        let params = VideoParams {
            in_width: 64,
            in_height: 32,
            in_stride: 64 * 4 + 16,
            out_width: 64,
            out_height: 32,
            fps: 30,
        };
        let mut conv = Converter::new(params).unwrap();
        let layout = conv.layout();
        // (BGRX pixel, expected Y, U, V) in limited range BT.601, swscale's default.
        let cases = [
            ([0, 0, 0, 0], 16, 128, 128),
            ([255, 255, 255, 0], 235, 128, 128),
            ([0, 0, 255, 0], 81, 90, 240),
            ([255, 0, 0, 0], 41, 240, 110),
        ];
        for (px, y, u, v) in cases {
            let mut bgrx = vec![0u8; params.in_stride * 32];
            for row in bgrx.chunks_exact_mut(params.in_stride) {
                for p in row[..64 * 4].chunks_exact_mut(4) {
                    p.copy_from_slice(&px);
                }
            }
            let mut out = vec![0u8; layout.len()];
            conv.convert(&bgrx, &mut out).unwrap();
            let [_, uo, vo] = layout.offsets();
            let near = |a: u8, b: u8| a.abs_diff(b) <= 2;
            assert!(near(out[layout.y_stride * 10 + 10], y), "Y of {px:?}");
            assert!(near(out[uo + layout.c_stride * 5 + 5], u), "U of {px:?}");
            assert!(near(out[vo + layout.c_stride * 5 + 5], v), "V of {px:?}");
        }
    }

    #[test]
    fn refuses_short_buffers_and_impossible_sizes() {
        let params = VideoParams {
            in_width: 32,
            in_height: 32,
            in_stride: 128,
            out_width: 32,
            out_height: 32,
            fps: 30,
        };
        let mut conv = Converter::new(params).unwrap();
        let mut out = vec![0u8; conv.layout().len()];
        assert!(conv.convert(&[0u8; 100], &mut out).is_err());
        assert!(conv.convert(&vec![0u8; 128 * 32], &mut [0u8; 10]).is_err());
        let bad_stride = VideoParams {
            in_stride: 64,
            ..params
        };
        assert!(Converter::new(bad_stride).is_err());
        let zero = VideoParams {
            out_width: 0,
            ..params
        };
        assert!(Converter::new(zero).is_err());
    }
}
