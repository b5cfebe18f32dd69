//! The web page in real Chromium (Debian's `chromium`, driven by playwright-core): a moderator
//! signs in, sees the Breakout recordings folder by breakout room, opens a recording, and the
//! `<video>` plays and seeks (with 206 answers to its range requests); a participant sees no
//! Breakout recordings and is refused the folder, the player page and the file.
//!
//! The video is a real H.264/AAC MP4 made by the ffmpeg CLI at test time. Chromium,
//! playwright-core and ffmpeg are installed by `scripts/test.sh`; when missing, this test fails
//! and says so.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{bytes, metadata, upload};

fn require_tool(path: &str, what: &str) {
    assert!(
        Command::new(path)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "{what} ({path}) is not installed: run scripts/test.sh (it installs it)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderator_browses_plays_and_seeks_participant_is_refused() {
    require_tool("ffmpeg", "ffmpeg");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Chromium ({chromium}) is not installed: run scripts/test.sh (it installs Debian's chromium)"
    );
    let clients = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tus-clients");
    assert!(
        clients.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run crates/classroom-server/tests/tus-clients/setup.sh (scripts/test.sh does it)"
    );

    let work = tempfile::tempdir().unwrap();
    let mp4 = work.path().join("fixture.mp4");
    let st = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=5:size=320x240:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=5",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-movflags",
            "+faststart",
        ])
        .arg(&mp4)
        .status()
        .unwrap();
    assert!(st.success());
    let video = std::fs::read(&mp4).unwrap();

    let t = common::start().await;
    let room = t.c.room.clone();
    let (_, media) = upload(
        &t,
        "moderator",
        &metadata(&room, &t.c.breakouts[0], "Warm-up <i>quiz</i>"),
        &video,
        64 * 1024,
    )
    .await;
    let guest_bytes = bytes(5000, 3);
    upload(
        &t,
        "guest",
        &metadata(&room, &t.c.breakouts[2], "<img src=x onerror=alert(1)>"),
        &guest_bytes,
        5000,
    )
    .await;

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-page");
    std::fs::create_dir_all(&shots).unwrap();
    let args: Vec<String> = vec![
        clients.join("browse.mjs").display().to_string(),
        t.base.clone(),
        room.clone(),
        "teacher".into(),
        "teacher-password".into(),
        "participant".into(),
        "participant-password".into(),
        media.clone(),
        shots.display().to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args(&args)
            .env("CHROMIUM", chromium)
            .output()
    })
    .await
    .unwrap()
    .expect("cannot run node: run scripts/test.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let o: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|_| panic!("no result from the browser:\n{log}"));
    assert!(
        o["failure"].is_null(),
        "browser run failed: {}\n{log}",
        o["failure"]
    );

    // The folder, by breakout room, with the titles as text (escaped, not markup).
    assert_eq!(
        o["folders"],
        serde_json::json!([
            { "room": "Group 1", "titles": ["Warm-up <i>quiz</i>"] },
            { "room": "Group 2", "titles": [] },
            { "room": "Group 3", "titles": ["<img src=x onerror=alert(1)>"] },
        ])
    );
    assert_eq!(o["mediaTitle"], "Warm-up <i>quiz</i>");
    assert!(
        (o["duration"].as_f64().unwrap() - 5.0).abs() < 0.2,
        "duration {}",
        o["duration"]
    );
    assert_eq!(o["videoSize"], serde_json::json!([320, 240]));
    assert_eq!(o["videoError"], serde_json::Value::Null);
    assert!(
        o["playedTo"].as_f64().unwrap() >= 0.5,
        "the video played: {}",
        o["playedTo"]
    );
    for s in o["seeks"].as_array().unwrap() {
        let (target, now) = (
            s["target"].as_f64().unwrap(),
            s["currentTime"].as_f64().unwrap(),
        );
        assert!(
            (now - target).abs() < 0.25,
            "seek to {target} landed at {now}"
        );
    }
    let downloads = o["downloads"].as_array().unwrap();
    assert!(
        downloads.iter().any(|d| d["status"] == 206),
        "range requests answered 206: {downloads:?}"
    );
    assert!(
        downloads
            .iter()
            .all(|d| d["status"] == 200 || d["status"] == 206),
        "{downloads:?}"
    );

    // The participant sees no Breakout recordings and is refused them.
    assert_eq!(o["participantLinks"], 0, "{}", o["participantHome"]);
    assert!(
        !o["participantHome"]
            .as_str()
            .unwrap()
            .contains("Breakout recordings")
    );
    assert_eq!(o["participantFolderStatus"], 403);
    assert_eq!(o["participantFolderSections"], 0);
    assert_eq!(o["participantMediaStatus"], 404);
    assert_eq!(o["participantDownloadStatus"], 404);
    t.shutdown().await;
}
