//! Screen capture from an X11 display through MIT-SHM, region only.
//!
//! Why x11rb rather than `scrap`: scrap grabs the whole screen into a world-readable (0777)
//! segment and crops afterwards; here the X server copies only the stage rectangle into
//! owner-only segments ([`crate::shm`]), one per pooled buffer, so frames reach the encoder
//! without a copy and nobody else on the machine can read them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use x11rb::connection::Connection;
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{ImageFormat, ImageOrder, VisualClass, Window};
use x11rb::rust_connection::RustConnection;

use crate::region::Region;
use crate::shm::ShmSegment;
use crate::video::{FrameSource, PixelBuffer};
use crate::{CaptureError, Result};

/// Picks the display to use: an explicit name, else `$DISPLAY`; explains Wayland-only sessions.
pub fn resolve_display(explicit: Option<&str>) -> Result<String> {
    if let Some(d) = explicit.filter(|d| !d.trim().is_empty()) {
        return Ok(d.to_owned());
    }
    match std::env::var("DISPLAY") {
        Ok(d) if !d.trim().is_empty() => Ok(d),
        _ if std::env::var_os("WAYLAND_DISPLAY").is_some() => Err(CaptureError::WaylandOnly),
        _ => Err(CaptureError::NoDisplay),
    }
}

/// The stage's top-left corner, shared with whoever tracks the window so capture follows it.
/// Size is fixed for a recording; only the origin moves.
#[derive(Debug, Clone, Default)]
pub struct StageOrigin(Arc<AtomicU64>);

impl StageOrigin {
    pub fn new(x: i32, y: i32) -> Self {
        let o = Self::default();
        o.set(x, y);
        o
    }

    pub fn set(&self, x: i32, y: i32) {
        self.0.store(
            (u64::from(x as u32) << 32) | u64::from(y as u32),
            Ordering::Relaxed,
        );
    }

    pub fn get(&self) -> (i32, i32) {
        let v = self.0.load(Ordering::Relaxed);
        ((v >> 32) as u32 as i32, v as u32 as i32)
    }
}

/// Captures a fixed-size rectangle of an X screen.
pub struct X11Source {
    conn: RustConnection,
    root: Window,
    screen_w: u32,
    screen_h: u32,
    width: u32,
    height: u32,
    origin: StageOrigin,
}

impl std::fmt::Debug for X11Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X11Source")
            .field("screen", &(self.screen_w, self.screen_h))
            .field("size", &(self.width, self.height))
            .field("origin", &self.origin.get())
            .finish()
    }
}

fn x_err(e: impl std::fmt::Display) -> CaptureError {
    CaptureError::X11(e.to_string())
}

/// Size of the default screen of `display`, for validating regions before recording.
pub fn display_size(display: &str) -> Result<(u32, u32)> {
    let (conn, screen_num) = connect(display)?;
    let s = &conn.setup().roots[screen_num];
    Ok((u32::from(s.width_in_pixels), u32::from(s.height_in_pixels)))
}

fn connect(display: &str) -> Result<(RustConnection, usize)> {
    x11rb::connect(Some(display)).map_err(|e| CaptureError::Connect {
        display: display.to_owned(),
        reason: e.to_string(),
    })
}

impl X11Source {
    /// Connects to `display` and prepares to capture `region` (validated against the screen).
    /// `region = None` captures the whole screen.
    pub fn open(display: &str, region: Option<Region>) -> Result<(Self, StageOrigin)> {
        let (conn, screen_num) = connect(display)?;
        let setup = conn.setup();
        let screen = &setup.roots[screen_num];
        let (screen_w, screen_h) = (
            u32::from(screen.width_in_pixels),
            u32::from(screen.height_in_pixels),
        );
        let region = region.unwrap_or(Region::full(screen_w, screen_h));
        region.validate_within(screen_w, screen_h)?;

        // Frames are handed on as BGRX: insist on the one layout that means.
        let depth = screen.root_depth;
        let bpp = setup
            .pixmap_formats
            .iter()
            .find(|f| f.depth == depth)
            .map_or(0, |f| f.bits_per_pixel);
        let visual_ok = screen
            .allowed_depths
            .iter()
            .flat_map(|d| d.visuals.iter())
            .find(|v| v.visual_id == screen.root_visual)
            .is_some_and(|v| {
                v.class == VisualClass::TRUE_COLOR
                    && v.red_mask == 0x00ff_0000
                    && v.green_mask == 0x0000_ff00
                    && v.blue_mask == 0x0000_00ff
            });
        if !(matches!(depth, 24 | 32)
            && bpp == 32
            && visual_ok
            && setup.image_byte_order == ImageOrder::LSB_FIRST)
        {
            return Err(CaptureError::UnsupportedVisual {
                depth,
                bits_per_pixel: bpp,
            });
        }
        let has_shm = conn.shm_query_version().map_err(x_err)?.reply().is_ok();
        if !has_shm {
            return Err(CaptureError::NoShm);
        }
        let root = screen.root;
        let origin = StageOrigin::new(region.x, region.y);
        Ok((
            Self {
                conn,
                root,
                screen_w,
                screen_h,
                width: region.width,
                height: region.height,
                origin: origin.clone(),
            },
            origin,
        ))
    }
}

impl FrameSource for X11Source {
    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn stride(&self) -> usize {
        self.width as usize * 4
    }

    fn new_buffer(&mut self) -> Result<PixelBuffer> {
        let seg =
            ShmSegment::new(self.stride() * self.height as usize).map_err(CaptureError::Shm)?;
        let xid = self.conn.generate_id().map_err(x_err)?;
        shm::attach(&self.conn, xid, seg.id() as u32, false)
            .map_err(x_err)?
            .check()
            .map_err(x_err)?;
        // The server holds its own attachment now; ours is the only other. Once both are gone
        // the kernel frees the memory, even if this process is killed.
        seg.mark_for_removal().map_err(CaptureError::Shm)?;
        Ok(PixelBuffer::Shm { seg, xid })
    }

    fn capture(&mut self, buf: &mut PixelBuffer) -> Result<()> {
        let PixelBuffer::Shm { xid, .. } = buf else {
            return Err(CaptureError::X11(
                "buffer was not made by this source".into(),
            ));
        };
        let region = Region::new(
            self.origin.get().0,
            self.origin.get().1,
            self.width,
            self.height,
        )
        .clamped_to(self.screen_w, self.screen_h);
        let reply = shm::get_image(
            &self.conn,
            self.root,
            region.x as i16,
            region.y as i16,
            self.width as u16,
            self.height as u16,
            !0,
            ImageFormat::Z_PIXMAP.into(),
            *xid,
            0,
        )
        .map_err(x_err)?
        .reply()
        .map_err(x_err)?;
        let want = self.stride() * self.height as usize;
        if (reply.size as usize) < want {
            return Err(CaptureError::X11(format!(
                "short image: {} of {want} bytes",
                reply.size
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_round_trips_negative_coordinates() {
        for (x, y) in [(0, 0), (-5, 7), (1919, -1080), (i32::MIN, i32::MAX)] {
            assert_eq!(StageOrigin::new(x, y).get(), (x, y));
        }
    }
}
