//! An animated stage window: the frame counter as binary blocks in a top band, a moving bar and
//! a shifting background below, and an optional white flash.
//!
//! The counter is the stage's own notion of time, `floor(elapsed * 30)`, so reading it back
//! from a recorded frame tells when that frame's pixels were on screen.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use x11rb::COPY_DEPTH_FROM_PARENT;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ChangeGCAux, ConnectionExt as _, CreateGCAux, CreateWindowAux, Rectangle, WindowClass,
};
use x11rb::wrapper::ConnectionExt as _;

/// Bits of the counter; blocks span the band's width.
pub const COUNTER_BITS: u32 = 12;
/// Height of the counter band, as a fraction of the stage height.
pub const BAND_FRACTION: f64 = 0.2;
pub const STAGE_FPS: f64 = 30.0;

/// A running stage; stops when dropped.
pub struct Stage {
    stop: Arc<AtomicBool>,
    flash_at: Arc<Mutex<Option<Instant>>>,
    started: Instant,
    thread: Option<JoinHandle<()>>,
}

impl Stage {
    /// Opens a `w`x`h` window at (`x`, `y`) on `display` and animates it at 60 Hz.
    pub fn start(display: &str, x: i16, y: i16, w: u16, h: u16) -> Result<Stage> {
        let (conn, screen_num) = x11rb::connect(Some(display)).context("stage: connect")?;
        let screen = &conn.setup().roots[screen_num];
        let win = conn.generate_id()?;
        conn.create_window(
            COPY_DEPTH_FROM_PARENT,
            win,
            screen.root,
            x,
            y,
            w,
            h,
            0,
            WindowClass::INPUT_OUTPUT,
            0,
            // No window manager runs under Xvfb; override-redirect keeps it exactly in place.
            &CreateWindowAux::new()
                .background_pixel(screen.black_pixel)
                .override_redirect(1),
        )?;
        let gc = conn.generate_id()?;
        conn.create_gc(gc, win, &CreateGCAux::new().foreground(screen.white_pixel))?;
        conn.map_window(win)?;
        conn.sync()?;

        let stop = Arc::new(AtomicBool::new(false));
        let flash_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
        let started = Instant::now();
        let thread = {
            let (stop, flash_at) = (stop.clone(), flash_at.clone());
            std::thread::spawn(move || {
                let mut tick = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let mut due = started + Duration::from_secs_f64(f64::from(tick) / 60.0);
                    let now = Instant::now();
                    // Wake exactly for a flash due before the next tick, so it is on screen at
                    // the instant the test says (the beep is scheduled for the same instant).
                    if let Some(f) = flash_at.lock().ok().and_then(|f| *f)
                        && f > now
                        && f < due
                    {
                        due = f;
                    }
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    tick += 1;
                    let t = started.elapsed().as_secs_f64();
                    let flashing = flash_at.lock().ok().and_then(|f| *f).is_some_and(|f| {
                        let now = Instant::now();
                        now >= f && now < f + Duration::from_millis(200)
                    });
                    let counter = (t * STAGE_FPS).floor() as u32;
                    let band = (f64::from(h) * BAND_FRACTION) as u16;
                    let block = w / COUNTER_BITS as u16;
                    let mut rects = Vec::new();
                    // Background (or the flash), then the counter's "1" bits in white.
                    let bg = if flashing {
                        0x00ff_ffff
                    } else {
                        let v = (t * 40.0) as u32 % 160;
                        (v << 16) | (40 << 8) | (160 - v)
                    };
                    let _ = conn.change_gc(gc, &ChangeGCAux::new().foreground(bg));
                    let _ = conn.poly_fill_rectangle(
                        win,
                        gc,
                        &[Rectangle {
                            x: 0,
                            y: band as i16,
                            width: w,
                            height: h - band,
                        }],
                    );
                    let _ = conn.change_gc(gc, &ChangeGCAux::new().foreground(0));
                    let _ = conn.poly_fill_rectangle(
                        win,
                        gc,
                        &[Rectangle {
                            x: 0,
                            y: 0,
                            width: w,
                            height: band,
                        }],
                    );
                    for bit in 0..COUNTER_BITS {
                        if counter >> (COUNTER_BITS - 1 - bit) & 1 == 1 {
                            rects.push(Rectangle {
                                x: (bit as u16 * block) as i16,
                                y: 0,
                                width: block,
                                height: band,
                            });
                        }
                    }
                    if !flashing {
                        let bar_x = ((t * 300.0) as u32 % u32::from(w)) as i16;
                        rects.push(Rectangle {
                            x: bar_x,
                            y: band as i16,
                            width: 24,
                            height: h - band,
                        });
                    }
                    let _ = conn.change_gc(gc, &ChangeGCAux::new().foreground(0x00ff_ffff));
                    let _ = conn.poly_fill_rectangle(win, gc, &rects);
                    let _ = conn.sync();
                }
            })
        };
        Ok(Stage {
            stop,
            flash_at,
            started,
            thread: Some(thread),
        })
    }

    /// When the stage's counter was zero.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Turns the stage white for 200 ms from `at`.
    pub fn flash_at(&self, at: Instant) {
        if let Ok(mut f) = self.flash_at.lock() {
            *f = Some(at);
        }
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
