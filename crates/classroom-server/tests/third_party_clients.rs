//! Real third-party tus clients against the real server: tus-js-client (npm) and tuspy
//! (PyPI) upload a file, are killed (SIGKILL) half-way, and a second run resumes the same
//! upload to a byte-identical file and exactly one media entry.
//!
//! The clients are installed by `tests/tus-clients/setup.sh` (which `scripts/test.sh` runs);
//! when they are missing these tests fail and say so — they never skip.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use classroom_api::{BreakoutRecordings, UploadStatus};
use common::{bytes, sha256_hex};
use reqwest::Method;

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tus-clients")
}

fn require(path: &Path, what: &str) {
    assert!(
        path.exists(),
        "{what} is not installed ({} is missing): run crates/classroom-server/tests/tus-clients/setup.sh \
         (scripts/test.sh does it)",
        path.display()
    );
}

/// Runs a client; returns its exit status and the JSON events it printed.
fn run(
    client: &str,
    args: &[String],
) -> (std::process::ExitStatus, Vec<serde_json::Value>, String) {
    let dir = clients_dir();
    let mut cmd = match client {
        "tus-js-client" => {
            require(&dir.join("node_modules/tus-js-client"), "tus-js-client");
            let mut c = Command::new("node");
            c.arg(dir.join("tus-js-upload.mjs"));
            c
        }
        _ => {
            require(&dir.join(".pydeps/tusclient"), "tuspy");
            let mut c = Command::new("python3");
            c.arg(dir.join("tuspy_upload.py"))
                .env("PYTHONPATH", dir.join(".pydeps"));
            c
        }
    };
    let out = cmd.args(args).output().unwrap_or_else(|e| {
        panic!("cannot start {client} ({e}); is node/python3 installed? run scripts/test.sh")
    });
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let events = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let log = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    (out.status, events, log)
}

fn event<'a>(events: &'a [serde_json::Value], name: &str) -> Option<&'a serde_json::Value> {
    events.iter().rev().find(|e| e["event"] == name)
}

async fn interrupted_then_resumed(client: &'static str) {
    let t = common::start().await;
    let work = tempfile::tempdir().unwrap();
    let data = bytes(3 * 1024 * 1024 + 12_345, 42);
    let file = work.path().join("take.mp4");
    std::fs::write(&file, &data).unwrap();
    let title = format!("Interrupted {client} take");
    let meta = serde_json::json!({
        "live_room": t.c.room,
        "breakout_room": t.c.breakouts[1],
        "title": title,
        "started_at": "2025-03-03T10:00:00+01:00",
        "duration_ms": "93000",
        "filename": "take.mp4",
        "filetype": "video/mp4",
    });
    let args = |mode: &str| -> Vec<String> {
        vec![
            format!("{}/files/", t.base),
            t.token("participant").unwrap().to_string(),
            file.display().to_string(),
            meta.to_string(),
            work.path().join("urls.json").display().to_string(),
            mode.to_string(),
        ]
    };

    let a = args("interrupt");
    let (status, events, log) = tokio::task::spawn_blocking(move || run(client, &a))
        .await
        .unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "{client} should have been killed half-way:\n{log}"
    );
    let url = event(&events, "url")
        .and_then(|e| e["url"].as_str())
        .unwrap_or_else(|| panic!("no upload URL:\n{log}"))
        .to_string();
    let path = url.trim_start_matches(&t.base).to_string();
    assert!(path.starts_with("/files/up_"), "{url}");

    // The server kept what arrived before the kill (possibly after the cut request settles).
    let mut offset = 0;
    for _ in 0..50 {
        let r = t
            .tus("participant", Method::HEAD, &path)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        offset = r.headers()["upload-offset"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap();
        if offset > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        offset > 0 && offset < data.len() as u64,
        "offset after the kill: {offset}"
    );

    let a = args("resume");
    let (status, events, log) = tokio::task::spawn_blocking(move || run(client, &a))
        .await
        .unwrap();
    assert!(status.success(), "{client} resume failed:\n{log}");
    let done = event(&events, "success")
        .and_then(|e| e["url"].as_str())
        .unwrap_or_else(|| panic!("no success:\n{log}"));
    assert_eq!(
        done, url,
        "{client} resumed the same upload (not a new one)"
    );
    if client == "tuspy" {
        let start = event(&events, "start").unwrap();
        assert_eq!(start["url"].as_str(), Some(url.as_str()));
        assert_eq!(
            start["offset"].as_u64(),
            Some(offset),
            "tuspy resumed from the server's offset"
        );
    }

    let id = path.trim_start_matches("/files/");
    let s: UploadStatus = t
        .req("participant", Method::GET, &format!("/api/uploads/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(s.complete);
    let m = s.media.unwrap();
    assert_eq!(
        (m.size, m.sha256.as_str()),
        (data.len() as u64, sha256_hex(&data).as_str())
    );
    assert_eq!(m.title, title);
    assert_eq!(m.started_at, "2025-03-03T09:00:00.000Z");
    assert_eq!(m.duration_ms, 93_000);
    let got = t
        .req("moderator", Method::GET, &m.download_url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(
        got.as_ref() == data.as_slice(),
        "downloaded file differs from the original"
    );
    let folder: BreakoutRecordings = t
        .req(
            "moderator",
            Method::GET,
            &format!("/api/live-rooms/{}/breakout-recordings", t.c.room),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let all: Vec<&str> = folder
        .folders
        .iter()
        .flat_map(|f| f.entries.iter().map(|e| e.id.as_str()))
        .collect();
    assert_eq!(all, [m.id.as_str()], "exactly one media entry");
    assert_eq!(folder.folders[1].entries.len(), 1);
    assert_eq!(t.stored_files().len(), 1, "one file on disk");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_js_client_killed_half_way_resumes_to_an_identical_file() {
    interrupted_then_resumed("tus-js-client").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuspy_killed_half_way_resumes_to_an_identical_file() {
    interrupted_then_resumed("tuspy").await;
}
