//! The `classroom-server` binary: admin commands, `demo` (idempotent), and `serve` on port 0
//! stopping cleanly on SIGTERM.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_classroom-server");

fn cmd(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("CLASSROOM_PASSWORD", "a-long-password")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn admin_commands_and_demo() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = cmd(
        d,
        &["add-user", "--username", "ana", "--display-name", "Ana"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = cmd(
        d,
        &["add-user", "--username", "ana", "--display-name", "Ana"],
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("taken"));
    let out = cmd(d, &["add-channel", "--name", "Physics", "--manager", "ana"]);
    let channel = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(channel.starts_with("ch_"), "{channel}");
    let out = cmd(
        d,
        &[
            "add-live-room",
            "--channel",
            &channel,
            "--name",
            "Lab",
            "--creator",
            "ana",
            "--breakout",
            "A",
            "--breakout",
            "B",
        ],
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("invite code") && text.matches("breakout room").count() == 2,
        "{text}"
    );
    let bad = cmd(
        d,
        &[
            "add-member",
            "--channel",
            &channel,
            "--username",
            "ana",
            "--role",
            "owner",
        ],
    );
    assert!(!bad.status.success());
    let bad = cmd(
        d,
        &[
            "add-live-room",
            "--channel",
            "ch_nope",
            "--name",
            "X",
            "--creator",
            "ana",
            "--breakout",
            "A",
        ],
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no channel"));

    let first = String::from_utf8(cmd(d, &["demo", "--seed-only"]).stdout).unwrap();
    let second = String::from_utf8(cmd(d, &["demo", "--seed-only"]).stdout).unwrap();
    assert!(
        first.contains("teacher / teacher-demo") && first.contains("student / student-demo"),
        "{first}"
    );
    assert!(
        first.contains("Group A, Group B, Group C") && first.contains("invite code"),
        "{first}"
    );
    assert_eq!(first, second, "demo seeds once");
}

#[test]
fn serve_on_port_zero_and_stop_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["demo", "--addr", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let base = first.strip_prefix("listening on ").unwrap().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (status, page) = rt.block_on(async {
        let r = reqwest::get(format!("{base}/")).await.unwrap();
        (r.status(), r.text().await.unwrap())
    });
    assert_eq!(status, 200);
    assert!(page.contains("Sign in"));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let st = child.wait().unwrap();
    assert!(st.success(), "exit after SIGTERM: {st:?}");
}
