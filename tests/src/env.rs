//! A private X display and sound server for one test.

use std::io::Read;
use std::os::fd::FromRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Xvfb + PulseAudio, stopped when dropped.
pub struct TestEnv {
    dir: tempfile::TempDir,
    display: String,
    xvfb: Child,
    pulse: Child,
}

impl TestEnv {
    /// Starts a `width`x`height` display and a sound server with two null sinks: `stage` (the
    /// default output: what the room plays) and `mic`, whose monitor is remapped to a source
    /// `micin` that is the default input (stands in for a microphone).
    pub fn start(width: u32, height: u32) -> Result<TestEnv> {
        let dir = tempfile::Builder::new().prefix("brec-e2e").tempdir()?;
        let (xvfb, display) = start_xvfb(width, height)?;
        let runtime = dir.path().join("run");
        std::fs::create_dir_all(&runtime)?;
        std::fs::set_permissions(
            &runtime,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )?;
        let pulse = Command::new("pulseaudio")
            .args([
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--log-target=stderr",
                "--log-level=error",
            ])
            .arg("--load=module-native-protocol-unix")
            // norewinds: a null sink that may rewind keeps up to 2 s of "rewindable" audio
            // queued for its monitor, delaying everything recorded from it by that much.
            .arg("--load=module-null-sink sink_name=stage norewinds=1")
            .arg("--load=module-null-sink sink_name=mic rate=16000 channels=1 norewinds=1")
            .arg("--load=module-remap-source master=mic.monitor source_name=micin")
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("HOME", dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start pulseaudio (install it: scripts/setup.sh)")?;
        let mut env = TestEnv {
            dir,
            display,
            xvfb,
            pulse,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !env.socket().exists() {
            if Instant::now() > deadline || env.pulse.try_wait()?.is_some() {
                bail!("pulseaudio did not start");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        env.pactl(&["set-default-sink", "stage"])?;
        env.pactl(&["set-default-source", "micin"])?;
        Ok(env)
    }

    pub fn display(&self) -> &str {
        &self.display
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn runtime(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    fn socket(&self) -> PathBuf {
        self.runtime().join("pulse/native")
    }

    /// The variables that point a program at this display and sound server.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DISPLAY", self.display.clone()),
            ("XDG_RUNTIME_DIR", self.runtime().display().to_string()),
            ("PULSE_SERVER", format!("unix:{}", self.socket().display())),
            ("HOME", self.dir.path().display().to_string()),
        ]
    }

    /// A command that runs against this environment (and nothing of the caller's desktop).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env_remove("WAYLAND_DISPLAY");
        for (k, v) in self.vars() {
            c.env(k, v);
        }
        c
    }

    pub fn pactl(&self, args: &[&str]) -> Result<String> {
        let out = self.command("pactl").args(args).output().context("pactl")?;
        if !out.status.success() {
            bail!("pactl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        for child in [&mut self.pulse, &mut self.xvfb] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts Xvfb on a display number it picks itself (`-displayfd`), so parallel tests never
/// race for the same number.
fn start_xvfb(width: u32, height: u32) -> Result<(Child, String)> {
    let mut fds = [0i32; 2];
    // Close-on-exec, so children that other tests spawn meanwhile do not inherit the write end;
    // only Xvfb gets it, below.
    // SAFETY: pipe2(2) fills two fds.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        bail!("pipe: {}", std::io::Error::last_os_error());
    }
    let [read_fd, write_fd] = fds;
    let mut cmd = Command::new("Xvfb");
    cmd.args([
        "-displayfd",
        &write_fd.to_string(),
        "-screen",
        "0",
        &format!("{width}x{height}x24"),
        "-nolisten",
        "tcp",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    // SAFETY: fcntl on an fd we own, in the child between fork and exec (async-signal-safe).
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            libc::fcntl(write_fd, libc::F_SETFD, 0);
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .context("cannot start Xvfb (install it: scripts/setup.sh)")?;
    // SAFETY: we own both fds; the child has its own copy of the write end.
    unsafe { libc::close(write_fd) };
    let mut reader = unsafe { std::fs::File::from_raw_fd(read_fd) };
    // Xvfb writes "N\n" once it accepts connections.
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while reader.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
        buf.push(byte[0]);
    }
    let n = String::from_utf8_lossy(&buf).trim().to_owned();
    if n.is_empty() {
        bail!("Xvfb did not report a display number");
    }
    Ok((child, format!(":{n}")))
}
