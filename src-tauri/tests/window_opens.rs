//! The real app starts: the built `breakout-recorder` binary opens its "Breakout Recorder"
//! window on a private Xvfb display and WebKit paints the room view (`ui/`) into it.
//!
//! Needs `Xvfb`, `xdotool` and ImageMagick's `import` (all in `scripts/setup.sh`). The
//! screenshot is left in `target/tmp/` for a human to look at.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const TITLE: &str = "Breakout Recorder";
/// A cold WebKit start under a loaded 2-core machine takes seconds, not minutes; a minute
/// is generous and still bounds a hang.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// `--bg` and `--panel` in `ui/app.css`: seeing both proves the page itself was painted, not
/// just an empty (white or black) toplevel window.
const BODY_BG: [u8; 3] = [0x14, 0x17, 0x1f];
const PANEL_BG: [u8; 3] = [0x1f, 0x24, 0x30];

/// Kills (SIGKILL) and reaps a child when dropped, so a failing assertion leaks no process.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts Xvfb on a display number the server picks itself (`-displayfd`), so parallel
/// tests and other users' displays never collide. Returns the server and `":N"`.
fn start_xvfb() -> (KillOnDrop, String) {
    let mut child = Command::new("Xvfb")
        // -displayfd 1: Xvfb writes the chosen display number to our stdout pipe once it
        // accepts connections, which is also the readiness signal.
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1440x900x24",
            "-nolisten",
            "tcp",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb must be installed (./scripts/setup.sh installs it)");
    let stdout = child.stdout.take().expect("stdout is piped");
    let server = KillOnDrop(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("reading Xvfb's display number");
    let number: u32 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("Xvfb printed {line:?} instead of a display number"));
    (server, format!(":{number}"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}"))
}

/// Finds the app's toplevel X window by its exact title; `None` until it is mapped.
fn find_window(display: &str) -> Option<String> {
    let out = run(Command::new("xdotool").env("DISPLAY", display).args([
        "search",
        "--onlyvisible",
        "--name",
        &format!("^{TITLE}$"),
    ]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(|id| id.trim().to_owned())
}

/// A screenshot of one window as raw RGB pixels (`import` writes binary PPM to stdout).
fn grab_rgb(display: &str, window: &str) -> Option<(usize, usize, Vec<u8>)> {
    let out = run(Command::new("import")
        .env("DISPLAY", display)
        .args(["-silent", "-window", window, "-depth", "8", "ppm:-"]));
    if !out.status.success() {
        return None;
    }
    parse_ppm(&out.stdout)
}

/// Parses a binary PPM ("P6", maxval 255): four whitespace-separated header fields, then one
/// whitespace byte, then the pixels.
fn parse_ppm(data: &[u8]) -> Option<(usize, usize, Vec<u8>)> {
    let mut fields = Vec::new();
    let mut pos = 0;
    while fields.len() < 4 {
        while data.get(pos)?.is_ascii_whitespace() {
            pos += 1;
        }
        let start = pos;
        while !data.get(pos)?.is_ascii_whitespace() {
            pos += 1;
        }
        fields.push(std::str::from_utf8(&data[start..pos]).ok()?);
    }
    let (w, h): (usize, usize) = (fields[1].parse().ok()?, fields[2].parse().ok()?);
    let pixels = data.get(pos + 1..pos + 1 + w * h * 3)?;
    (fields[0] == "P6" && fields[3] == "255").then(|| (w, h, pixels.to_vec()))
}

/// Share of pixels within a small tolerance of `rgb` (anti-aliased edges are not exact).
fn share_of(pixels: &[u8], rgb: [u8; 3]) -> f64 {
    let total = pixels.len() / 3;
    let near = pixels
        .chunks_exact(3)
        .filter(|p| p.iter().zip(rgb).all(|(&a, b)| a.abs_diff(b) <= 3))
        .count();
    near as f64 / total.max(1) as f64
}

fn read_log(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    text
}

#[test]
fn app_opens_its_window_and_renders_the_room_view() {
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("app-window");
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&out_dir).expect("creating the test's output directory");
    let log_path = out_dir.join("app.log");
    let shot_path = out_dir.join("app-window.png");

    let (_xvfb, display) = start_xvfb();

    let log = std::fs::File::create(&log_path).expect("creating the app log");
    let mut app = Command::new(env!("CARGO_BIN_EXE_breakout-recorder"));
    app.env("DISPLAY", &display)
        // Force X11 even when the developer's own session is Wayland.
        .env_remove("WAYLAND_DISPLAY")
        .env("GDK_BACKEND", "x11")
        // Measured pitfall check (Debian 12, WebKitGTK 2.50, Xvfb, as root): WebKit paints
        // without WEBKIT_DISABLE_COMPOSITING_MODE, WEBKIT_DISABLE_DMABUF_RENDERER or
        // LIBGL_ALWAYS_SOFTWARE (Xvfb's GLX is Mesa software rendering anyway) and logs
        // nothing, so none is set here: the test then proves the default setup works. If a
        // future WebKit shows a blank or black window here, WEBKIT_DISABLE_COMPOSITING_MODE=1 is
        // the first thing to try; the colour check below catches that case.
        // Keep WebKit's data, cache and config out of the developer's home.
        .env("XDG_DATA_HOME", out_dir.join("data"))
        .env("XDG_CACHE_HOME", out_dir.join("cache"))
        .env("XDG_CONFIG_HOME", out_dir.join("config"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("cloning the log handle"))
        .stderr(log);
    let mut app = KillOnDrop(app.spawn().expect("starting the app binary"));

    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let mut rendered = None;
    while Instant::now() < deadline {
        if let Some(status) = app.0.try_wait().expect("polling the app") {
            panic!(
                "the app exited ({status}) before showing its window; log:\n{}",
                read_log(&log_path)
            );
        }
        if let Some(window) = find_window(&display)
            && let Some((w, h, rgb)) = grab_rgb(&display, &window)
        {
            let (bg, panel) = (share_of(&rgb, BODY_BG), share_of(&rgb, PANEL_BG));
            // The stage and bars cover most of the window; a few percent of each colour
            // means the page is painted, while a blank window has none.
            if bg > 0.01 && panel > 0.03 {
                rendered = Some((window, w, h));
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }

    // The screenshot is taken either way: on failure it shows what the window looked like.
    let shot = run(Command::new("import")
        .env("DISPLAY", &display)
        .args(["-silent", "-window", "root"])
        .arg(&shot_path));
    assert!(
        shot.status.success(),
        "screenshot failed: {}",
        String::from_utf8_lossy(&shot.stderr)
    );

    let Some((window, w, h)) = rendered else {
        panic!(
            "no rendered \"{TITLE}\" window within {STARTUP_TIMEOUT:?}; screenshot: {}; log:\n{}",
            shot_path.display(),
            read_log(&log_path)
        );
    };
    // The window is the size tauri.conf.json asks for (no window manager on Xvfb to change it).
    assert_eq!(
        (w, h),
        (1280, 800),
        "window {window} has an unexpected size"
    );
    eprintln!("screenshot of the running app: {}", shot_path.display());
}
