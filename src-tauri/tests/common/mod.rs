//! Test kit for driving the real app: a private X display and sound server (`e2e::TestEnv`),
//! a real classroom server on a random loopback port with a fresh SQLite database, and the
//! built `breakout-recorder` binary started by `tauri-driver` (which drives WebKitWebDriver)
//! and clicked through with WebDriver (`fantoccini`).
//!
//! Needs `tauri-driver` (cargo install; `scripts/test.sh` installs it) and `WebKitWebDriver`
//! (Debian's webkit2gtk-driver). Screenshots of every step go to
//! `target/tmp/app-e2e/<test>/NN-step.png`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use classroom_server::{Config, DemoInfo, RunningServer};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// The product's texts (DESIGN.md §3); the page must show exactly these.
pub const ASK_START: &str = "Do you want to start recording?";
pub const START_BUTTON: &str = "Start recording";
pub const STARTING: &str = "Recording will start momentarily.";
pub const RECORDED: &str = "This session is being recorded.";
pub const CONFIRM: &str = "Confirm";
pub const RECORD: &str = "Record";
pub const STOP: &str = "Stop recording";

/// How long a step may take on a loaded 2-core machine before the test calls it stuck.
pub const STEP: Duration = Duration::from_secs(30);

/// Kills (and reaps) a child process when dropped, so a failing test leaks nothing. A child
/// started as the leader of its own process group (`process_group(0)`) takes its whole group
/// with it: tauri-driver does not stop the WebKitWebDriver it starts, which otherwise outlived
/// every test run.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.0.id()) {
            // SAFETY: kill() only sends a signal; a pid that leads no group gives ESRCH.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs one WebDriver call, failing the test with `what` if it hangs (a stuck page or driver
/// must be a clear failure, not a test that never ends).
pub async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(STEP, f).await {
        Ok(v) => v,
        Err(_) => panic!("WebDriver hung for {STEP:?} while {what}"),
    }
}

/// A script that says whether `#id` is on screen (not hidden, not empty).
fn visible_js(id: &str) -> String {
    format!(
        "const e = document.getElementById({id:?}); if (!e) return false;
         const r = e.getBoundingClientRect();
         return !e.closest('[hidden]') && r.width > 0 && r.height > 0;"
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Everything one test needs: display, sound, classroom server with the demo classroom.
pub struct World {
    pub env: e2e::TestEnv,
    pub server: RunningServer,
    pub demo: DemoInfo,
    pub shots: PathBuf,
    shot_no: std::sync::atomic::AtomicU32,
}

impl World {
    pub async fn start(test: &str, width: u32, height: u32) -> World {
        let env = e2e::TestEnv::start(width, height).expect("Xvfb and PulseAudio start");
        let mut config = Config::new(env.dir().join("classroom"));
        config.addr = "127.0.0.1:0".parse().unwrap();
        let server = classroom_server::serve(config)
            .await
            .expect("classroom server");
        let demo = server
            .classroom()
            .seed_demo()
            .await
            .expect("demo classroom");
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("app-e2e")
            .join(test);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).unwrap();
        World {
            env,
            server,
            demo,
            shots,
            shot_no: Default::default(),
        }
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The demo's breakout rooms, by position.
    pub fn breakout(&self, i: usize) -> &classroom_api::BreakoutRoom {
        &self.demo.live_room.breakout_rooms[i]
    }

    /// Starts the app for one person (its own data and recordings directories).
    pub async fn app(&self, who: &str) -> App {
        App::start(self, who, false).await
    }

    /// Starts the app as the README's run command does: with its built-in demo classroom.
    pub async fn app_with_builtin_classroom(&self, who: &str) -> App {
        App::start(self, who, true).await
    }

    fn next_shot(&self, name: &str) -> PathBuf {
        let n = self
            .shot_no
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.shots.join(format!("{n:02}-{name}.png"))
    }
}

/// One running app, driven through WebDriver.
pub struct App {
    pub client: Client,
    pub data_dir: PathBuf,
    pub recordings_dir: PathBuf,
    pub log: PathBuf,
    driver: KillOnDrop,
    shots: Vec<PathBuf>,
}

impl App {
    async fn start(world: &World, who: &str, builtin_classroom: bool) -> App {
        let home = world.env.dir().join(format!("app-{who}"));
        let data_dir = home.join("data");
        let recordings_dir = home.join("Videos");
        std::fs::create_dir_all(&home).unwrap();
        let log = world.shots.join(format!("{who}-app.log"));
        let log_file = std::fs::File::create(&log).unwrap();
        let (port, native) = (free_port(), free_port());
        let mut cmd = world.env.command("tauri-driver");
        cmd.args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ])
        // The app inherits this environment through WebKitWebDriver.
        .env("GDK_BACKEND", "x11")
        .env(
            "BREAKOUT_RECORDER_EMBEDDED",
            if builtin_classroom { "1" } else { "0" },
        )
        .env("BREAKOUT_RECORDER_DATA_DIR", &data_dir)
        .env("BREAKOUT_RECORDER_RECORDINGS_DIR", &recordings_dir)
        .env("XDG_DATA_HOME", home.join("xdg-data"))
        .env("XDG_CACHE_HOME", home.join("xdg-cache"))
        .env("XDG_CONFIG_HOME", home.join("xdg-config"))
        .env("RUST_LOG", "info,sqlx=warn")
        // Its own process group, so that dropping the driver also ends WebKitWebDriver.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file);
        let driver = KillOnDrop(cmd.spawn().expect(
            "tauri-driver must be installed (scripts/test.sh installs it: cargo install tauri-driver)",
        ));
        let url = format!("http://127.0.0.1:{port}");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "tauri:options".into(),
            json!({ "application": env!("CARGO_BIN_EXE_breakout-recorder") }),
        );
        caps.insert("browserName".into(), json!("wry"));
        let deadline = Instant::now() + STEP;
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!(
                    "no WebDriver session for {who}: {e}; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ),
            }
        };
        let app = App {
            client,
            data_dir,
            recordings_dir,
            log,
            driver,
            shots: Vec::new(),
        };
        // The page records every text its notices and dialog ever showed, so a message that
        // is replaced quickly ("Recording will start momentarily.") can still be checked.
        app.wait_for("the page to load", "return document.readyState === 'complete' && !!document.getElementById('sign-in-form')").await;
        app.js(
            "window.__seen = [];
             const note = (n) => { const t = (n.textContent || '').trim(); if (t) window.__seen.push(t); };
             new MutationObserver((ms) => ms.forEach((m) => {
                 m.addedNodes.forEach(note);
                 if (m.type === 'characterData' || m.type === 'childList') note(m.target);
             })).observe(document.body, { subtree: true, childList: true, characterData: true });",
        )
        .await;
        app
    }

    /// Runs `script` (a function body) in the page and returns its value.
    pub async fn js(&self, script: &str) -> Value {
        within(
            &format!("running {script}"),
            self.client.execute(script, vec![]),
        )
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until `script` returns true.
    pub async fn wait_for(&self, what: &str, script: &str) {
        let deadline = Instant::now() + STEP;
        loop {
            if let Ok(Value::Bool(true)) = within(
                &format!("waiting for {what}"),
                self.client.execute(script, vec![]),
            )
            .await
            {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; page text:\n{}\nlog:\n{}",
                    self.page_text().await,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn page_text(&self) -> String {
        self.client
            .execute("return document.body.innerText", vec![])
            .await
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    }

    pub async fn by_id(&self, id: &str) -> fantoccini::elements::Element {
        within(&format!("finding #{id}"), self.client.find(Locator::Id(id)))
            .await
            .unwrap_or_else(|e| panic!("no #{id}: {e}"))
    }

    pub async fn click(&self, id: &str) {
        let e = self.by_id(id).await;
        within(&format!("clicking #{id}"), e.click())
            .await
            .unwrap_or_else(|e| panic!("cannot click #{id}: {e}"));
    }

    pub async fn visible(&self, id: &str) -> bool {
        self.js(&visible_js(id)).await == Value::Bool(true)
    }

    pub async fn text(&self, id: &str) -> String {
        self.js(&format!(
            "const e = document.getElementById({id:?}); return e ? e.textContent.trim() : null;"
        ))
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    pub async fn wait_visible(&self, id: &str) {
        self.wait_for(&format!("#{id} to show"), &visible_js(id))
            .await;
    }

    /// Types into an input (replacing what is there).
    pub async fn fill(&self, id: &str, value: &str) {
        let e = self.by_id(id).await;
        within(&format!("clearing #{id}"), e.clear()).await.unwrap();
        within(&format!("typing into #{id}"), e.send_keys(value))
            .await
            .unwrap();
    }

    /// Saves a screenshot of the screen (what the user sees) as `NN-name.png`.
    ///
    /// Taken by the X server (ImageMagick's `import`), not WebDriver: WebKitWebDriver's
    /// screenshot waits for a compositor frame, and without compositing (which the app turns
    /// off to save CPU) it can wait forever.
    pub async fn shot(&mut self, world: &World, name: &str) -> PathBuf {
        // Let the page paint what just changed first.
        let _ = within(
            "waiting for a paint",
            self.client.execute_async(
                "const done = arguments[arguments.length - 1];
                 requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(() => done(true), 50)));",
                vec![],
            ),
        )
        .await;
        let path = world.next_shot(name);
        let out = world
            .env
            .command("import")
            .args(["-silent", "-window", "root"])
            .arg(&path)
            .output()
            .expect("ImageMagick's import is installed (scripts/setup.sh)");
        assert!(
            out.status.success(),
            "screenshot failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.shots.push(path.clone());
        path
    }

    /// Runs `script`, which returns an array of strings.
    async fn strings(&self, script: &str) -> Vec<String> {
        self.js(script)
            .await
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Texts the page showed at some point since it loaded.
    pub async fn seen(&self) -> Vec<String> {
        self.strings("return window.__seen").await
    }

    /// The visible items of the 3 Dots menu, by their text.
    pub async fn menu_items(&self) -> Vec<String> {
        self.strings(
            "return [...document.querySelectorAll('#menu [role^=menuitem]')]
                .filter((b) => !b.hidden).map((b) => b.textContent.trim())",
        )
        .await
    }

    /// Signs in on the start screen and waits for the breakout rooms.
    pub async fn sign_in(&self, server: &str, user: &str, password: &str) {
        self.fill("sign-in-server", server).await;
        self.fill("sign-in-username", user).await;
        self.fill("sign-in-password", password).await;
        self.click("sign-in-submit").await;
        self.wait_visible("screen-rooms").await;
        self.wait_for(
            "the breakout rooms to be listed",
            "return document.querySelectorAll('.rooms__enter').length > 0",
        )
        .await;
    }

    pub async fn join_as_guest(&self, server: &str, code: &str, name: &str) {
        self.fill("guest-server", server).await;
        self.fill("guest-code", code).await;
        self.fill("guest-name", name).await;
        self.click("guest-submit").await;
        self.wait_visible("screen-rooms").await;
    }

    /// Clicks the breakout room called `name` and waits for the room view.
    pub async fn enter(&self, name: &str) {
        let buttons = self
            .client
            .find_all(Locator::Css(".rooms__enter"))
            .await
            .unwrap();
        let mut found = None;
        for b in buttons {
            if b.text().await.unwrap().trim() == name {
                found = Some(b);
            }
        }
        found
            .unwrap_or_else(|| panic!("no breakout room {name:?} to enter"))
            .click()
            .await
            .unwrap();
        self.wait_visible("stage").await;
    }

    /// Fills the whiteboard with one colour, so the recording's picture can be recognised.
    pub async fn paint_stage(&self, rgb: [u8; 3]) {
        self.js(&format!(
            "const c = document.getElementById('whiteboard'); const g = c.getContext('2d');
             g.fillStyle = 'rgb({}, {}, {})'; g.fillRect(0, 0, c.width, c.height); return true;",
            rgb[0], rgb[1], rgb[2]
        ))
        .await;
    }

    /// The text of the dialog and its buttons, when it is open.
    pub async fn dialog(&self) -> Option<(String, String, Option<String>)> {
        if !self.visible("dialog").await {
            return None;
        }
        let secondary = if self.visible("dialog-secondary").await {
            Some(self.text("dialog-secondary").await)
        } else {
            None
        };
        Some((
            self.text("dialog-text").await,
            self.text("dialog-primary").await,
            secondary,
        ))
    }

    pub async fn wait_dialog(&self, text: &str) {
        self.wait_for(
            &format!("the dialog {text:?}"),
            &format!(
                "const d = document.getElementById('dialog');
                 return !d.hidden && document.getElementById('dialog-text').textContent === {text:?};"
            ),
        )
        .await;
    }

    /// Where an element is in the window (CSS pixels): x, y, width, height.
    pub async fn rect(&self, id: &str) -> (f64, f64, f64, f64) {
        let v = self
            .js(&format!(
                "const r = document.getElementById({id:?}).getBoundingClientRect();
                 return [r.x, r.y, r.width, r.height, window.innerWidth, window.innerHeight];"
            ))
            .await;
        let a: Vec<f64> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        (a[0], a[1], a[2], a[3])
    }

    pub async fn window_size(&self) -> (f64, f64) {
        let v = self
            .js("return [window.innerWidth, window.innerHeight]")
            .await;
        let a = v.as_array().unwrap();
        (a[0].as_f64().unwrap(), a[1].as_f64().unwrap())
    }

    /// Local recordings (the recordings panel's data) as the page sees them.
    pub async fn recordings(&self) -> Value {
        self.client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 window.__TAURI_INTERNALS__.invoke('recordings').then(done, (e) => done({ error: e }));",
                vec![],
            )
            .await
            .expect("recordings")
    }

    /// Waits until the recording `path` is uploaded (the panel says so).
    pub async fn wait_uploaded(&self, count: usize) {
        self.wait_for(
            &format!("{count} uploaded recordings in the panel"),
            &format!("return document.querySelectorAll('.recording--done').length >= {count}"),
        )
        .await;
    }

    pub async fn quit(self) {
        let _ = self.client.close().await;
        drop(self.driver);
    }
}

/// A signed-in API client for checks through the server's JSON API.
pub struct Api {
    pub base: String,
    pub token: String,
    http: reqwest::Client,
}

impl Api {
    pub async fn sign_in(base: &str, user: &str, password: &str) -> Api {
        let http = reqwest::Client::new();
        let s: classroom_api::SessionResponse = http
            .post(format!("{base}/api/sessions"))
            .json(&json!({ "username": user, "password": password }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Api {
            base: base.to_owned(),
            token: s.token,
            http,
        }
    }

    /// GET `path`: (status, JSON body or Null).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Downloads `path` into `to`.
    pub async fn download(&self, path: &str, to: &Path) -> u16 {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        if status == 200 {
            std::fs::write(to, r.bytes().await.unwrap()).unwrap();
        }
        status
    }
}

/// Fails unless `got` (a mean colour of `file` at `at` s) is within `tolerance` of `want` in
/// every channel.
pub fn assert_colour(file: &Path, at: f64, got: [f64; 3], want: [u8; 3], tolerance: f64) {
    let near = got
        .iter()
        .zip(want)
        .all(|(g, w)| (g - f64::from(w)).abs() < tolerance);
    assert!(
        near,
        "{} at {at} s shows {got:?}, the stage was painted {want:?}",
        file.display()
    );
}

/// Mean colour (R, G, B) of the frame at `at` seconds of a video, decoded by the FFmpeg CLI.
pub fn mean_rgb(video: &Path, at: f64) -> [f64; 3] {
    region_rgb(video, at, (0, 0, 64, 36))
}

/// Mean colour of the top-left tenth of the frame at `at` seconds: what would turn dark if
/// the capture stayed put while the stage moved away.
pub fn corner_rgb(video: &Path, at: f64) -> [f64; 3] {
    region_rgb(video, at, (0, 0, 6, 4))
}

/// Mean colour of a rectangle (x, y, w, h) of the frame scaled to 64x36.
fn region_rgb(video: &Path, at: f64, (rx, ry, rw, rh): (usize, usize, usize, usize)) -> [f64; 3] {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-ss", &format!("{at:.2}"), "-i"])
        .arg(video)
        .args([
            "-frames:v",
            "1",
            "-vf",
            "scale=64:36",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ])
        .output()
        .expect("ffmpeg is installed");
    let px = out.stdout;
    assert_eq!(
        px.len(),
        64 * 36 * 3,
        "no frame at {at} s in {}",
        video.display()
    );
    let mut sum = [0f64; 3];
    for y in ry..ry + rh {
        for x in rx..rx + rw {
            for c in 0..3 {
                sum[c] += f64::from(px[(y * 64 + x) * 3 + c]);
            }
        }
    }
    sum.map(|s| s / (rw * rh) as f64)
}

/// The app's toplevel X window (by its exact title), as the window manager would see it.
pub fn app_window(display: &str) -> u32 {
    let out = Command::new("xdotool")
        .env("DISPLAY", display)
        .args(["search", "--onlyvisible", "--name", "^Breakout Recorder$"])
        .output()
        .expect("xdotool is installed (scripts/setup.sh)");
    let text = String::from_utf8_lossy(&out.stdout);
    let ids: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    assert_eq!(ids.len(), 1, "one app window on {display}: {ids:?}");
    ids[0]
}

/// Asks the window to close, as a window manager's close button does (WM_DELETE_WINDOW).
pub fn ask_window_to_close(display: &str, window: u32) {
    use x11rb::protocol::xproto::{ClientMessageEvent, ConnectionExt, EventMask};
    let (conn, _) = x11rb::connect(Some(display)).expect("X connection");
    let atom = |name: &[u8]| conn.intern_atom(false, name).unwrap().reply().unwrap().atom;
    let (protocols, delete) = (atom(b"WM_PROTOCOLS"), atom(b"WM_DELETE_WINDOW"));
    let event = ClientMessageEvent::new(
        32,
        window,
        protocols,
        [delete, x11rb::CURRENT_TIME, 0, 0, 0],
    );
    conn.send_event(false, window, EventMask::NO_EVENT, event)
        .unwrap();
    sync(&conn);
}

/// Waits until the X server has handled every request sent so far. Without it, a connection
/// closed right after a request may lose it: a busy server (one recording, say) can see the
/// end of the connection before it gets to the request, and drops both.
fn sync(conn: &impl x11rb::protocol::xproto::ConnectionExt) {
    conn.get_input_focus().unwrap().reply().unwrap();
}

/// Moves the window's top-left corner to (x, y) on the screen.
pub fn move_window(display: &str, window: u32, x: i32, y: i32) {
    use x11rb::protocol::xproto::{ConfigureWindowAux, ConnectionExt};
    let (conn, _) = x11rb::connect(Some(display)).expect("X connection");
    conn.configure_window(window, &ConfigureWindowAux::new().x(x).y(y))
        .unwrap();
    sync(&conn);
}

/// Resizes the window's content to `width` x `height` pixels.
pub fn resize_window(display: &str, window: u32, width: u32, height: u32) {
    use x11rb::protocol::xproto::{ConfigureWindowAux, ConnectionExt};
    let (conn, _) = x11rb::connect(Some(display)).expect("X connection");
    conn.configure_window(
        window,
        &ConfigureWindowAux::new().width(width).height(height),
    )
    .unwrap();
    sync(&conn);
}

/// Where the window's content starts on the screen, in pixels.
pub fn window_origin(display: &str, window: u32) -> (i32, i32) {
    use x11rb::protocol::xproto::ConnectionExt;
    let (conn, screen) = x11rb::connect(Some(display)).expect("X connection");
    let root = x11rb::connection::Connection::setup(&conn).roots[screen].root;
    let r = conn
        .translate_coordinates(window, root, 0, 0)
        .unwrap()
        .reply()
        .unwrap();
    (i32::from(r.dst_x), i32::from(r.dst_y))
}
