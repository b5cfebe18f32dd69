//! From the stage element's place in the page to the rectangle of the screen that is recorded.
//!
//! The page measures in CSS pixels; the screen in physical pixels. The window's content area
//! sits at `inner` (physical) on the screen and every CSS pixel is `scale` physical pixels, so
//! the stage is at `inner + css * scale`. The size is fixed when recording starts (the encoder's
//! picture size cannot change); when the window moves, only the origin follows.

use capture::Region;

use crate::types::CssRect;

/// Where the window's content area is, in physical screen pixels, and its scale factor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowPlacement {
    pub inner_x: i32,
    pub inner_y: i32,
    pub scale: f64,
}

/// The stage's offset inside the window and its size, both in physical pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageInWindow {
    pub dx: i32,
    pub dy: i32,
    pub width: u32,
    pub height: u32,
}

/// Why a stage rectangle cannot be recorded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeometryError {
    #[error(
        "the stage is too small to record ({width:.0}x{height:.0} pixels); make the window larger"
    )]
    TooSmall { width: f64, height: f64 },
    #[error("the page reported an impossible stage rectangle")]
    Invalid,
}

/// Smallest stage worth recording (the encoder needs at least 16x16).
const MIN_SIDE: f64 = 16.0;

impl StageInWindow {
    /// Converts the page's rectangle. Edges are rounded inwards, so the recording never
    /// includes a row or column of whatever borders the stage, and sizes are made even
    /// (H.264 with 4:2:0 chroma needs even sizes).
    pub fn from_css(rect: CssRect, scale: f64) -> Result<Self, GeometryError> {
        let values = [rect.x, rect.y, rect.width, rect.height, scale];
        if values.iter().any(|v| !v.is_finite()) || scale <= 0.0 || scale > 16.0 {
            return Err(GeometryError::Invalid);
        }
        let left = (rect.x * scale).ceil();
        let top = (rect.y * scale).ceil();
        let right = ((rect.x + rect.width) * scale).floor();
        let bottom = ((rect.y + rect.height) * scale).floor();
        let (w, h) = (right - left, bottom - top);
        if w < MIN_SIDE || h < MIN_SIDE {
            return Err(GeometryError::TooSmall {
                width: w.max(0.0),
                height: h.max(0.0),
            });
        }
        if left.abs() > 1e6 || top.abs() > 1e6 || w > 1e6 || h > 1e6 {
            return Err(GeometryError::Invalid);
        }
        let even = |v: f64| (v as u32) & !1;
        Ok(Self {
            dx: left as i32,
            dy: top as i32,
            width: even(w),
            height: even(h),
        })
    }

    /// The screen rectangle for a window placed at `window`.
    pub fn on_screen(&self, window: WindowPlacement) -> Region {
        Region::new(
            window.inner_x.saturating_add(self.dx),
            window.inner_y.saturating_add(self.dy),
            self.width,
            self.height,
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn css(x: f64, y: f64, width: f64, height: f64) -> CssRect {
        CssRect {
            x,
            y,
            width,
            height,
        }
    }

    #[test]
    fn converts_css_to_physical_pixels() {
        // (rect, scale, window origin, expected WxH+X+Y)
        let cases = [
            (css(0.0, 48.0, 960.0, 688.0), 1.0, (0, 0), "960x688+0+48"),
            (
                css(0.0, 48.0, 960.0, 688.0),
                1.0,
                (100, 50),
                "960x688+100+98",
            ),
            // HiDPI: everything doubles.
            (
                css(0.0, 48.0, 960.0, 688.0),
                2.0,
                (10, 20),
                "1920x1376+10+116",
            ),
            // Fractional scale: edges inwards, sizes even.
            (css(0.5, 47.5, 801.0, 600.3), 1.25, (0, 0), "1000x748+1+60"),
            // An odd width loses one column.
            (css(0.0, 0.0, 641.0, 361.0), 1.0, (0, 0), "640x360+0+0"),
        ];
        for (rect, scale, (wx, wy), want) in cases {
            let s = StageInWindow::from_css(rect, scale).unwrap();
            let r = s.on_screen(WindowPlacement {
                inner_x: wx,
                inner_y: wy,
                scale,
            });
            assert_eq!(r.to_string(), want, "{rect:?} at {scale}");
        }
    }

    #[test]
    fn refuses_impossible_rectangles() {
        let cases = [
            (css(0.0, 0.0, 10.0, 300.0), 1.0),
            (css(0.0, 0.0, 300.0, 0.0), 1.0),
            (css(0.0, 0.0, -5.0, 300.0), 1.0),
            (css(f64::NAN, 0.0, 300.0, 300.0), 1.0),
            (css(0.0, 0.0, f64::INFINITY, 300.0), 1.0),
            (css(0.0, 0.0, 300.0, 300.0), 0.0),
            (css(0.0, 0.0, 300.0, 300.0), -1.0),
            (css(0.0, 0.0, 1e12, 300.0), 1.0),
        ];
        for (rect, scale) in cases {
            assert!(
                StageInWindow::from_css(rect, scale).is_err(),
                "{rect:?} at {scale}"
            );
        }
    }
}
