//! The stage rectangle (physical pixels) and the fixed output size derived from it.

use std::fmt;
use std::str::FromStr;

use crate::CaptureError;

/// A rectangle of the X screen in physical pixels. The caller converts logical (CSS/DPI-scaled)
/// coordinates to physical ones; capture never guesses a scale factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
}

impl Region {
    pub const MIN_SIDE: u32 = 16;

    pub fn new(x: i32, y: i32, width: u32, height: u32) -> Self {
        Self {
            x,
            y,
            width,
            height,
        }
    }

    /// Whole-display region.
    pub fn full(width: u32, height: u32) -> Self {
        Self::new(0, 0, width, height)
    }

    /// Checks that the region lies entirely on a `width`x`height` display.
    pub fn validate_within(&self, width: u32, height: u32) -> Result<(), CaptureError> {
        if self.width < Self::MIN_SIDE || self.height < Self::MIN_SIDE {
            return Err(CaptureError::RegionTooSmall(self.width, self.height));
        }
        let fits = self.x >= 0
            && self.y >= 0
            && (self.x as i64 + self.width as i64) <= width as i64
            && (self.y as i64 + self.height as i64) <= height as i64;
        if fits {
            Ok(())
        } else {
            Err(CaptureError::RegionOutsideDisplay {
                region: *self,
                width,
                height,
            })
        }
    }

    /// Moves the region so it stays on the display, keeping its size (the stage may be dragged
    /// partly off-screen; we record the visible part nearest to it rather than fail mid-way).
    pub fn clamped_to(&self, width: u32, height: u32) -> Region {
        let max_x = width.saturating_sub(self.width) as i32;
        let max_y = height.saturating_sub(self.height) as i32;
        Region {
            x: self.x.clamp(0, max_x),
            y: self.y.clamp(0, max_y),
            ..*self
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}+{}+{}", self.width, self.height, self.x, self.y)
    }
}

impl FromStr for Region {
    type Err = CaptureError;

    /// Parses X11 geometry `WIDTHxHEIGHT+X+Y` (offsets optional, default 0).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CaptureError::BadRegion(s.to_owned());
        let t = s.trim();
        let (size, offsets) = match t.find('+') {
            Some(i) => (&t[..i], &t[i + 1..]),
            None => (t, "0+0"),
        };
        let (w, h) = size.split_once(['x', 'X']).ok_or_else(bad)?;
        let (x, y) = offsets.split_once('+').ok_or_else(bad)?;
        let width: u32 = w.parse().map_err(|_| bad())?;
        let height: u32 = h.parse().map_err(|_| bad())?;
        let x: i32 = x.parse().map_err(|_| bad())?;
        let y: i32 = y.parse().map_err(|_| bad())?;
        if width == 0 || height == 0 || width > 16384 || height > 16384 {
            return Err(bad());
        }
        Ok(Region::new(x, y, width, height))
    }
}

/// The encoded picture size, fixed when a recording starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputSize {
    pub width: u32,
    pub height: u32,
}

impl OutputSize {
    pub const MAX_WIDTH: u32 = 1920;
    pub const MAX_HEIGHT: u32 = 1080;

    /// Scales `width`x`height` down (never up) to fit 1920x1080 keeping the aspect ratio, then
    /// rounds to even sides, which yuv420p requires.
    pub fn fit(width: u32, height: u32) -> Self {
        let scale = f64::min(
            1.0,
            f64::min(
                Self::MAX_WIDTH as f64 / width as f64,
                Self::MAX_HEIGHT as f64 / height as f64,
            ),
        );
        let even = |v: f64| ((v.round() as u32) & !1).max(2);
        OutputSize {
            width: even(width as f64 * scale),
            height: even(height as f64 * scale),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_geometry() {
        let cases: &[(&str, Option<Region>)] = &[
            ("1280x720+10+20", Some(Region::new(10, 20, 1280, 720))),
            ("640x480", Some(Region::new(0, 0, 640, 480))),
            (" 64X48+0+0 ", Some(Region::new(0, 0, 64, 48))),
            ("", None),
            ("x", None),
            ("0x10", None),
            ("10x10+1", None),
            ("10x10+-1+2", Some(Region::new(-1, 2, 10, 10))),
            ("99999x10", None),
            ("axb+1+2", None),
            ("10x10+1+2+3", None),
        ];
        for (text, want) in cases {
            let got = text.parse::<Region>().ok();
            assert_eq!(got, *want, "parsing {text:?}");
        }
    }

    #[test]
    fn validates_against_display() {
        let cases = [
            (Region::new(0, 0, 1920, 1080), true),
            (Region::new(1, 0, 1920, 1080), false),
            (Region::new(-1, 0, 100, 100), false),
            (Region::new(1800, 1000, 120, 80), true),
            (Region::new(1800, 1000, 121, 80), false),
            (Region::new(0, 0, 8, 100), false),
        ];
        for (region, ok) in cases {
            assert_eq!(region.validate_within(1920, 1080).is_ok(), ok, "{region}");
        }
    }

    #[test]
    fn output_size_fits_and_is_even() {
        let cases = [
            ((1920, 1080), (1920, 1080)),
            ((1280, 721), (1280, 720)),
            ((3840, 2160), (1920, 1080)),
            ((2560, 1600), (1728, 1080)),
            ((1001, 501), (1000, 500)),
            ((17, 17), (16, 16)),
        ];
        for ((w, h), (ow, oh)) in cases {
            let out = OutputSize::fit(w, h);
            assert_eq!((out.width, out.height), (ow, oh), "{w}x{h}");
        }
    }

    #[test]
    fn clamps_moved_region_onto_display() {
        let r = Region::new(1900, -5, 100, 100).clamped_to(1920, 1080);
        assert_eq!(r, Region::new(1820, 0, 100, 100));
    }
}
