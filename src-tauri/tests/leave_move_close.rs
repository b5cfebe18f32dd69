//! The real app, the ways a recording ends besides the stop buttons, and bad input:
//! - wrong sign-ins and unreachable servers each get one clear line, and nothing else happens;
//! - recording offline (no server): the file stays on this computer;
//! - the window moves while recording: the capture follows the stage;
//! - leaving the room while recording stops and saves, and says where the file is;
//! - closing the window while recording asks first; "Keep recording" keeps it, "Stop and
//!   close" saves a finished file and ends the app.
//!
//! Screenshots: `target/tmp/app-e2e/leave_move_close/`.

#![allow(clippy::unwrap_used)] // a failed step should stop the test right there

mod common;

use std::time::{Duration, Instant};

use common::*;

const STAGE_RGB: [u8; 3] = [230, 160, 20];

fn mp4s(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "mp4"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The whole picture and its top-left corner show the stage's colour (the corner turns dark
/// when the capture stays put while the stage moves away).
fn assert_shows_stage(file: &std::path::Path, at: f64) {
    for got in [mean_rgb(file, at), corner_rgb(file, at)] {
        assert_colour(file, at, got, STAGE_RGB, 25.0);
    }
}

async fn start_recording(app: &App) {
    app.click("more-options").await;
    app.wait_visible("menu").await;
    app.click("menu-record").await;
    app.wait_dialog(ASK_START).await;
    app.click("dialog-primary").await;
    app.wait_dialog(RECORDED).await;
    app.click("dialog-primary").await;
    app.wait_visible("indicator").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sign_ins_then_offline_recordings_survive_leaving_moving_and_closing() {
    let world = World::start("leave_move_close", 1440, 900).await;
    let base = world.base_url();
    let mut app = world.app("offline").await;

    // (server, user, password, what the one-line error must say)
    let cases = [
        (
            base.as_str(),
            "teacher",
            "not-the-password",
            "wrong username or password",
        ),
        (
            "http://127.0.0.1:9",
            "teacher",
            "teacher-demo",
            "does not answer",
        ),
        ("ftp://example.org", "teacher", "teacher-demo", "http"),
        ("not a server at all", "teacher", "teacher-demo", "address"),
    ];
    for (server, user, password, want) in cases {
        app.fill("sign-in-server", server).await;
        app.fill("sign-in-username", user).await;
        app.fill("sign-in-password", password).await;
        app.click("sign-in-submit").await;
        app.wait_for(
            &format!("an error for {server:?}"),
            "return document.getElementById('start-error').textContent.length > 0",
        )
        .await;
        let shown = app.text("start-error").await;
        assert!(
            shown.to_lowercase().contains(want),
            "{server:?}/{user}: {shown:?} should say {want:?}"
        );
        assert!(!shown.contains('\n'), "one line: {shown:?}");
        assert!(
            app.visible("screen-start").await,
            "still on the start screen"
        );
    }
    app.fill("guest-server", &base).await;
    app.fill("guest-code", "NOPE-NOPE-NOPE").await;
    app.fill("guest-name", "Someone").await;
    app.click("guest-submit").await;
    app.wait_for(
        "an error for a wrong invite code",
        "return document.getElementById('start-error').textContent.includes('invite code')",
    )
    .await;
    app.shot(&world, "bad-invite-code").await;

    // ---- offline: record, move the window, leave while recording ---------------------
    app.click("offline-button").await;
    app.wait_visible("screen-rooms").await;
    app.enter("Offline recording").await;
    app.paint_stage(STAGE_RGB).await;
    let display = world.env.display().to_owned();
    let window = app_window(&display);
    start_recording(&app).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    move_window(&display, window, 90, 60);
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.shot(&world, "moved-while-recording").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    app.click("leave-button").await;
    app.wait_visible("rooms-notice").await;
    let said = app.text("rooms-notice").await;
    assert!(
        said.contains("Saved to") && said.contains("stays on this computer"),
        "{said}"
    );
    app.shot(&world, "left-while-recording").await;
    let files = mp4s(&app.recordings_dir);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(e2e::media::decode_errors(&files[0]).unwrap(), "");
    let probe = e2e::media::probe(&files[0]).unwrap();
    assert!(probe.duration > 3.5, "{probe:?}");
    assert_shows_stage(&files[0], 1.0);
    // After the move: still the stage, not what lies beside it.
    assert_shows_stage(&files[0], probe.duration - 0.7);

    // ---- closing while recording asks first ---------------------------------------------
    app.enter("Offline recording").await;
    app.wait_for(
        "the first recording in the panel as local",
        "return document.querySelectorAll('.recording--local_only').length === 1",
    )
    .await;
    app.paint_stage(STAGE_RGB).await;
    start_recording(&app).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    ask_window_to_close(&display, window);
    let ask = "A recording is in progress. Stop it, save it and close Breakout Recorder?";
    app.wait_dialog(ask).await;
    assert_eq!(
        app.dialog().await,
        Some((
            ask.to_owned(),
            "Stop and close".to_owned(),
            Some("Keep recording".to_owned())
        ))
    );
    app.shot(&world, "close-asks-first").await;
    app.click("dialog-secondary").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(app.visible("indicator").await, "Keep recording keeps it");
    ask_window_to_close(&display, window);
    app.wait_dialog(ask).await;
    let dir = app.recordings_dir.clone();
    // The app ends: the WebDriver session goes with it, so this click may not get an answer.
    let _ = tokio::time::timeout(Duration::from_secs(10), app.click("dialog-primary")).await;
    let deadline = Instant::now() + STEP;
    let second = loop {
        let files = mp4s(&dir);
        if files.len() == 2 {
            let p = e2e::media::probe(&files[1]);
            if p.as_ref().is_ok_and(|p| p.duration > 1.0)
                && e2e::media::decode_errors(&files[1]).is_ok_and(|e| e.is_empty())
            {
                break files[1].clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "no finished second recording: {files:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_shows_stage(&second, 1.0);
    // The app exited by itself (not killed): its window is gone.
    let deadline = Instant::now() + STEP;
    loop {
        let out = std::process::Command::new("xdotool")
            .env("DISPLAY", &display)
            .args(["search", "--onlyvisible", "--name", "^Breakout Recorder$"])
            .output()
            .unwrap();
        if out.stdout.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the app window is still there");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.quit().await;
}
