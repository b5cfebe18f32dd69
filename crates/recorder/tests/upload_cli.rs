//! The `recorder` CLI's upload commands as a person (or a crash) drives them, against the real
//! classroom server started in this test process: kill -9 mid-upload and start again, the
//! "sign in again" flow, the queue commands, bad flags, and `record --upload-to` on a real
//! X display.

#![allow(clippy::unwrap_used)] // a failed step should stop a test right there

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use upload_testkit::{Proxy, ProxyPlan, TestServer, random_file, sha256_file};

const RECORDER: &str = env!("CARGO_BIN_EXE_recorder");
const MIB: u64 = 1 << 20;

/// A proxy in front of the server, throttled to `rate` bytes/s so that an upload is still
/// running when the test acts on it.
async fn throttled(srv: &TestServer, rate: u64) -> Proxy {
    Proxy::start(
        srv.addr,
        ProxyPlan {
            cut_after: None,
            rate: Some(rate),
        },
    )
    .await
    .unwrap()
}

fn recorder(queue: &Path) -> Command {
    let mut c = Command::new(RECORDER);
    c.env("RECORDER_UPLOAD_QUEUE", queue)
        .env_remove("RECORDER_TOKEN")
        .stdin(Stdio::null());
    c
}

fn upload_cmd(
    queue: &Path,
    srv: &TestServer,
    server_url: &str,
    file: &Path,
    token: &str,
) -> Command {
    let mut c = recorder(queue);
    c.arg("upload")
        .arg(file)
        .args(["--server", server_url, "--live-room", &srv.live_room])
        .args(["--breakout-room", &srv.breakout_room, "--title", "Group A"])
        .env("RECORDER_TOKEN", token);
    c
}

async fn wait_output(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.wait_with_output().unwrap()
}

async fn output(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_output(child, limit).await
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn queue_json(queue: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(queue).unwrap()).unwrap()
}

/// The server's offset for an upload (tus HEAD).
async fn server_offset(url: &str, token: &str) -> u64 {
    let resp = reqwest::Client::new()
        .head(url)
        .bearer_auth(token)
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    resp.headers()["upload-offset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_upload_the_next_run_continues_where_the_server_is() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start(&dir.path().join("server")).await.unwrap();
    // Throttled so the kill lands mid-upload.
    let proxy = throttled(&srv, 16 * MIB).await;
    let size = 40 * MIB + 99;
    let file = dir.path().join("rec.bin");
    random_file(&file, size, 11).unwrap();
    let queue = dir.path().join("queue.json");

    let mut cmd = upload_cmd(&queue, &srv, &proxy.url(), &file, &srv.token);
    cmd.args(["--any-file", "--chunk-mib", "1", "--json"]);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Wait until the server has a good part of it, then SIGKILL: no chance to clean up.
    let t0 = Instant::now();
    let url = loop {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no upload URL stored"
        );
        assert!(child.try_wait().unwrap().is_none(), "the CLI ended early");
        if queue.exists() {
            if let Some(u) = queue_json(&queue)["items"][0]["upload_url"].as_str() {
                if server_offset(u, &srv.token).await >= 12 * MIB {
                    break u.to_string();
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();
    // Whatever was in flight is rolled back by the server (its checksum cannot match).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let offset_after_kill = server_offset(&url, &srv.token).await;
    assert!(offset_after_kill >= 12 * MIB && offset_after_kill < size);
    assert!(srv.media_entries().await.unwrap().is_empty());
    let q = queue_json(&queue);
    assert_eq!(
        q["items"][0]["state"]["kind"], "uploading",
        "as the kill left it"
    );

    let before = proxy.upstream_bytes.load(Ordering::Relaxed);
    let mut run = recorder(&queue);
    run.args(["queue", "run", "--json", "--chunk-mib", "1"])
        .env("RECORDER_TOKEN", "unused: the item keeps its own token");
    let out = output(run, Duration::from_secs(120)).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = &json_lines(&out)[0];
    assert_eq!(report["state"], "done", "{report}");
    assert_eq!(
        report["resumed_at"], offset_after_kill,
        "resumed at the server's offset"
    );
    assert_eq!(
        report["wire_bytes"],
        size - offset_after_kill,
        "only the rest was sent"
    );
    let resent = proxy.upstream_bytes.load(Ordering::Relaxed) - before;
    assert!(
        resent < size - offset_after_kill + MIB,
        "the second run sent {resent} bytes for {} missing",
        size - offset_after_kill
    );
    assert!(stderr(&out).contains("resumed at"), "{}", stderr(&out));

    let entries = srv.media_entries().await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].sha256, sha256_file(&file).unwrap());
    assert_eq!(
        srv.download_sha256(&entries[0]).await.unwrap().1,
        entries[0].sha256
    );
    assert!(
        url.ends_with(&entries[0].upload_id),
        "the same upload finished"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_again_then_retry_list_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start(&dir.path().join("server")).await.unwrap();
    let file = dir.path().join("rec.bin");
    random_file(&file, 3 * MIB, 12).unwrap();
    let queue = dir.path().join("queue.json");

    let mut cmd = upload_cmd(&queue, &srv, &srv.base_url, &file, "revoked-token");
    cmd.arg("--any-file");
    let out = output(cmd, Duration::from_secs(30)).await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("sign in again"), "{}", stderr(&out));
    let id = queue_json(&queue)["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let out = output(
        {
            let mut c = recorder(&queue);
            c.args(["queue", "list"]);
            c
        },
        Duration::from_secs(10),
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&id) && text.contains("sign in again") && text.contains("0%"),
        "{text}"
    );

    // The token is never printed, not even in JSON.
    let out = output(
        {
            let mut c = recorder(&queue);
            c.args(["queue", "list", "--json"]);
            c
        },
        Duration::from_secs(10),
    )
    .await;
    assert!(!String::from_utf8_lossy(&out.stdout).contains("revoked-token"));
    assert_eq!(json_lines(&out)[0]["state"]["kind"], "needs_sign_in");

    let token = srv.sign_in_again().await.unwrap();
    let out = output(
        {
            let mut c = recorder(&queue);
            c.args(["queue", "retry", &id])
                .env("RECORDER_TOKEN", &token);
            c
        },
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("Uploaded"), "{}", stderr(&out));

    let out = output(
        {
            let mut c = recorder(&queue);
            c.args(["queue", "list"]);
            c
        },
        Duration::from_secs(10),
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("done (m_") && text.contains("100%"), "{text}");
    assert_eq!(srv.media_entries().await.unwrap().len(), 1);

    let out = output(
        {
            let mut c = recorder(&queue);
            c.args(["queue", "remove", &id]);
            c
        },
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(file.exists(), "remove never deletes the recording");
    assert!(queue_json(&queue)["items"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flags_and_bad_queue_files_get_one_clear_line_and_a_nonzero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let queue = d.join("queue.json");
    let text = d.join("notes.txt");
    std::fs::write(&text, "not a video").unwrap();
    let bin = d.join("rec.bin");
    std::fs::write(&bin, [7u8; 100]).unwrap();
    let (t, b) = (text.to_str().unwrap(), bin.to_str().unwrap());
    let rooms = ["--live-room", "lr_1", "--breakout-room", "br_1"];
    let up = |extra: &[&str]| -> Vec<String> {
        let mut v = vec!["upload".to_string()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let with_rooms = |extra: &[&str]| -> Vec<String> {
        let mut v = up(extra);
        v.extend(rooms.iter().map(|s| s.to_string()));
        v
    };
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (up(&[b, "--server", "http://127.0.0.1:9"]), 2, "--live-room"),
        (with_rooms(&[b]), 2, "--server"),
        (
            with_rooms(&[b, "--server", "ftp://x"]),
            2,
            "http:// or https://",
        ),
        (with_rooms(&[b, "--server", "not a url"]), 2, "--server"),
        (
            with_rooms(&[b, "--server", &format!("http://{}", "a".repeat(100_000))]),
            2,
            "--server",
        ),
        (
            with_rooms(&[b, "--server", "http://h", "--token", "abc\r\nX-Evil: 1"]),
            2,
            "paste only the token",
        ),
        (
            with_rooms(&[b, "--server", "http://h", "--token", &"t".repeat(5000)]),
            2,
            "paste only the token",
        ),
        (
            with_rooms(&[
                b,
                "--server",
                "http://h",
                "--any-file",
                "--token",
                "t",
                "--title",
                "evil\u{202E}4pm.exe",
            ]),
            2,
            "text-direction",
        ),
        (
            with_rooms(&[
                b,
                "--server",
                "http://h",
                "--any-file",
                "--token",
                "t",
                "--title",
                &"t".repeat(201),
            ]),
            2,
            "longer than 200",
        ),
        (
            vec![
                "queue".into(),
                "retry".into(),
                "ffffffff".into(),
                "--token".into(),
                "a\u{1}b".into(),
            ],
            2,
            "paste only the token",
        ),
        (
            vec!["queue".into(), "retry".into(), "x".repeat(10_000)],
            2,
            "is not an item id",
        ),
        (
            vec!["queue".into(), "remove".into(), "../../etc".into()],
            2,
            "is not an item id",
        ),
        (
            vec![
                "queue".into(),
                "list".into(),
                "--queue".into(),
                d.to_str().unwrap().into(),
            ],
            1,
            "not a regular file (a directory)",
        ),
        (
            with_rooms(&[b, "--server", "http://h", "--chunk-mib", "0"]),
            2,
            "--chunk-mib",
        ),
        (
            with_rooms(&[b, "--server", "http://h", "--chunk-mib", "lots"]),
            2,
            "--chunk-mib",
        ),
        (
            with_rooms(&[b, "--server", "http://h", "--max-chunk-mib", "300"]),
            2,
            "--max-chunk-mib",
        ),
        (
            with_rooms(&[
                b,
                "--server",
                "http://h",
                "--chunk-mib",
                "16",
                "--max-chunk-mib",
                "8",
            ]),
            2,
            "--max-chunk-mib (8) is smaller than --chunk-mib (16)",
        ),
        (
            vec![
                "queue".into(),
                "list".into(),
                "--max-chunk-mib".into(),
                "0".into(),
            ],
            2,
            "--max-chunk-mib",
        ),
        (
            with_rooms(&[b, "--server", "http://h", "--header", "nocolon"]),
            2,
            "Name: value",
        ),
        (
            with_rooms(&[b, "--server", "http://h", "--duration=-1"]),
            2,
            "seconds between",
        ),
        (
            with_rooms(&[b, "--server", "http://h", "--started-at", "today"]),
            2,
            "RFC 3339",
        ),
        (
            with_rooms(&["/nonexistent/x.mp4", "--server", "http://h"]),
            1,
            "is not a file",
        ),
        (
            with_rooms(&[t, "--server", "http://h", "--token", "t"]),
            1,
            "not an MP4",
        ),
        (
            with_rooms(&[b, "--server", "http://h", "--any-file", "--token", " "]),
            2,
            "no sign-in: set RECORDER_TOKEN",
        ),
        (
            vec!["queue".into(), "retry".into(), "ffffffff".into()],
            1,
            "no item \"ffffffff\"",
        ),
        (
            vec!["queue".into(), "remove".into(), "ffffffff".into()],
            1,
            "no item",
        ),
        (
            vec!["queue".into(), "explode".into()],
            2,
            "unrecognized subcommand",
        ),
        (
            vec!["record".into(), "--upload-to".into(), "http://h".into()],
            2,
            "--live-room",
        ),
        (
            // Said before recording starts (no display is needed to get this far).
            vec![
                "record".into(),
                "-o".into(),
                d.join("never.mp4").to_str().unwrap().into(),
                "--upload-to".into(),
                "http://h".into(),
                "--live-room".into(),
                "lr_1".into(),
                "--breakout-room".into(),
                "br_1".into(),
            ],
            2,
            "no sign-in",
        ),
    ];
    for (args, code, message) in cases {
        let out = output(
            {
                let mut c = recorder(&queue);
                c.args(&args);
                c
            },
            Duration::from_secs(20),
        )
        .await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(
            err.contains(message),
            "{args:?}: expected {message:?} in: {err}"
        );
        let error_lines = err.lines().filter(|l| l.starts_with("error")).count();
        assert_eq!(error_lines, 1, "{args:?}: one error line: {err}");
        assert!(err.len() < 600, "{args:?}: a short line: {err}");
    }
    assert!(d.is_dir(), "a directory given as --queue is left alone");
    assert!(!queue.exists() || queue_json(&queue)["items"].as_array().unwrap().is_empty());

    // A corrupt queue file: one line saying where it was kept, the bytes kept, then a fresh start.
    std::fs::write(&queue, b"{\"version\": 1, \"items\": [ {\"id\": ").unwrap();
    let out = output(
        {
            let mut c = recorder(&queue);
            c.args(["queue", "list"]);
            c
        },
        Duration::from_secs(10),
    )
    .await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("unreadable") && err.contains(".corrupt-"),
        "{err}"
    );
    let kept: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("queue.json.corrupt-")
        })
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        std::fs::read(kept[0].path()).unwrap(),
        b"{\"version\": 1, \"items\": [ {\"id\": "
    );
    let out = output(
        {
            let mut c = recorder(&queue);
            c.args(["queue", "list"]);
            c
        },
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("empty"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_with_upload_to_sends_the_finished_recording() {
    let env = e2e::TestEnv::start(640, 480).unwrap();
    let srv = TestServer::start(&env.dir().join("server")).await.unwrap();
    let queue = env.dir().join("queue.json");
    let out_file = env.dir().join("group.mp4");
    let mut cmd = env.command(RECORDER);
    cmd.args([
        "record",
        "--region",
        "320x240+0+0",
        "--duration",
        "2",
        "--audio",
        "none",
    ])
    .args(["--min-free-mb", "8", "-o"])
    .arg(&out_file)
    .args(["--upload-to", &srv.base_url, "--live-room", &srv.live_room])
    .args([
        "--breakout-room",
        &srv.breakout_room,
        "--title",
        "Group A recording",
    ])
    .env("RECORDER_UPLOAD_QUEUE", &queue)
    .env("RECORDER_TOKEN", &srv.token);
    let out = output(cmd, Duration::from_secs(60)).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("Uploaded"), "{}", stderr(&out));
    let entries = srv.media_entries().await.unwrap();
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(e.sha256, sha256_file(&out_file).unwrap());
    assert_eq!(e.title, "Group A recording");
    assert_eq!(e.filename, "group.mp4");
    assert!((1500..=3000).contains(&e.duration_ms), "{}", e.duration_ms);
    assert!(out_file.exists(), "kept after upload");
}

/// A stand-in for what sits at a wrong address, or a broken server: answers every request
/// with `reply(request line)` after reading the request (head and body), on a random loopback
/// port. Returns its base URL.
fn fake_server(reply: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let reply = std::sync::Arc::new(reply);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let reply = reply.clone();
            std::thread::spawn(move || {
                conn.set_read_timeout(Some(Duration::from_secs(2))).ok();
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                // Read the body too: closing with unread bytes would reset the connection
                // before the client reads the answer.
                let body_len = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<u64>().ok())?
                    })
                    .unwrap_or(0);
                let _ = std::io::copy(&mut (&mut conn).take(body_len), &mut std::io::sink());
                let line = head.lines().next().unwrap_or("").to_string();
                let _ = conn.write_all(&reply(&line));
            });
        }
    });
    url
}

/// Table: servers that will never take the upload (not HTTP at all, a web server without tus,
/// a broken tus server). Each ends at once (no minutes of retrying) with exit 1 and a reason a
/// person can act on, and the queue stays readable with the item kept as failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_that_cannot_take_uploads_fail_at_once_with_a_clear_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = d.join("rec.bin");
    random_file(&file, 300_000, 5).unwrap();
    let nginx_501 = "<html>\r\n<head><title>501 Not Implemented</title></head>\r\n<body>\r\n<center><h1>501 Not Implemented</h1></center>\r\n</body>\r\n</html>\r\n";
    let long_location = format!("/files/{}", "a".repeat(5000));
    // (case, what the server sends, words of the reason)
    let cases = [
        (
            "an SSH server",
            b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n".to_vec(),
            "not HTTP",
        ),
        (
            "a web server without tus",
            format!(
                "HTTP/1.1 501 Not Implemented\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{nginx_501}",
                nginx_501.len()
            )
            .into_bytes(),
            "501: 501 Not Implemented",
        ),
        (
            "a 5000-character Location",
            format!(
                "HTTP/1.1 201 Created\r\nlocation: {long_location}\r\ntus-resumable: 1.0.0\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
            .into_bytes(),
            "Location is 5007 characters long",
        ),
    ];
    for (case, reply, want) in cases {
        let url = fake_server(move |_| reply.clone());
        let queue = d.join(format!("{}.json", case.replace(' ', "-")));
        let mut cmd = recorder(&queue);
        cmd.arg("upload")
            .arg(&file)
            .args([
                "--server",
                &url,
                "--live-room",
                "lr_1",
                "--breakout-room",
                "br_1",
            ])
            .args(["--any-file", "--token", "t"]);
        let started = Instant::now();
        let out = output(cmd, Duration::from_secs(60)).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{case}: {err}");
        assert!(err.contains(want), "{case}: expected {want:?} in: {err}");
        assert!(
            !err.contains("<html") && !err.contains("<h1"),
            "{case}: no markup: {err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{case}: gave up only after {:?}",
            started.elapsed()
        );
        let q = queue_json(&queue);
        assert_eq!(q["items"][0]["state"]["kind"], "failed", "{case}: {q}");
        assert!(q["items"][0]["upload_url"].is_null(), "{case}: {q}");
    }
    // A tus server that answers every PATCH "204, Upload-Offset: 0": it used to be asked
    // again and again, thousands of times a second, forever.
    let stuck = fake_server(|line| {
        let (status, extra) = match line.split(' ').next().unwrap_or("") {
            "OPTIONS" => (
                "204 No Content",
                "tus-version: 1.0.0\r\ntus-extension: creation\r\n",
            ),
            "POST" => ("201 Created", "location: /files/stuck\r\n"),
            "HEAD" => ("200 OK", "upload-offset: 0\r\nupload-length: 300000\r\n"),
            _ => ("204 No Content", "upload-offset: 0\r\n"),
        };
        format!("HTTP/1.1 {status}\r\ntus-resumable: 1.0.0\r\n{extra}content-length: 0\r\nconnection: close\r\n\r\n").into_bytes()
    });
    let queue = d.join("stuck.json");
    let mut cmd = recorder(&queue);
    cmd.arg("upload")
        .arg(&file)
        .args([
            "--server",
            &stuck,
            "--live-room",
            "lr_1",
            "--breakout-room",
            "br_1",
        ])
        .args(["--any-file", "--token", "t"]);
    let out = output(cmd, Duration::from_secs(60)).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("offset does not advance"), "{err}");
    assert!(err.lines().count() < 20, "a few lines, not a flood: {err}");

    let set_aside = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .count();
    assert_eq!(set_aside, 0, "no queue was set aside");
}

/// Two `recorder upload` at once on one queue: the second follows the first while it runs,
/// then sends its own file once the first is done with its own. Both files arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_upload_waits_for_the_first_then_sends_its_own_file() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start(&dir.path().join("server")).await.unwrap();
    // Slow enough that the second command starts while the first is sending.
    let proxy = throttled(&srv, 4 * MIB).await;
    let queue = dir.path().join("queue.json");
    let (first, second) = (dir.path().join("first.bin"), dir.path().join("second.bin"));
    random_file(&first, 12 * MIB, 21).unwrap();
    random_file(&second, MIB + 7, 22).unwrap();
    let spawn = |file: &Path| {
        let mut cmd = upload_cmd(&queue, &srv, &proxy.url(), file, &srv.token);
        cmd.args(["--any-file", "--chunk-mib", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn(&first);
    let t0 = Instant::now();
    while !(queue.exists() && queue_json(&queue)["items"][0]["upload_url"].is_string()) {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the first never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let b = spawn(&second);
    let (a, b) = (
        wait_output(a, Duration::from_secs(60)).await,
        wait_output(b, Duration::from_secs(60)).await,
    );
    assert_eq!(a.status.code(), Some(0), "first: {}", stderr(&a));
    assert_eq!(b.status.code(), Some(0), "second: {}", stderr(&b));
    let err_b = stderr(&b);
    assert!(err_b.contains("following its progress"), "{err_b}");
    assert!(err_b.contains("continuing here"), "{err_b}");
    let q = queue_json(&queue);
    let items = q["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let entries = srv.media_entries().await.unwrap();
    for it in items {
        assert_eq!(it["state"]["kind"], "done", "{it}");
        let media = it["state"]["media_id"].as_str().unwrap();
        let entry = entries.iter().find(|e| e.id == media).unwrap();
        let path = Path::new(it["path"].as_str().unwrap());
        assert_eq!(
            srv.download_sha256(entry).await.unwrap().1,
            sha256_file(path).unwrap(),
            "{}",
            path.display()
        );
    }
}

/// The same `upload` command run twice (after a Ctrl-C, or by mistake) is one upload and one
/// media entry; run once more after it went through, it says so and changes nothing. A file
/// name with characters a title may not have still gets a plain default title.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_file_queued_twice_is_one_upload() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start(&dir.path().join("server")).await.unwrap();
    let file = dir.path().join("Group A\u{202E}4pm.exe.bin");
    random_file(&file, 3 * MIB + 1, 31).unwrap();
    let queue = dir.path().join("queue.json");
    let run = |extra: &'static [&'static str]| {
        let mut cmd = recorder(&queue);
        cmd.arg("upload")
            .arg(&file)
            .args(["--server", &srv.base_url, "--live-room", &srv.live_room])
            .args(["--breakout-room", &srv.breakout_room, "--any-file"])
            .args(extra)
            .env("RECORDER_TOKEN", &srv.token);
        cmd
    };
    let first = output(run(&["--no-wait"]), Duration::from_secs(30)).await;
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let second = output(run(&[]), Duration::from_secs(60)).await;
    let err = stderr(&second);
    assert_eq!(second.status.code(), Some(0), "{err}");
    assert!(err.contains("was already queued as"), "{err}");
    let q = queue_json(&queue);
    assert_eq!(q["items"].as_array().unwrap().len(), 1, "{q}");
    assert_eq!(q["items"][0]["destination"]["title"], "Group A4pm.exe");
    let third = output(run(&[]), Duration::from_secs(30)).await;
    let err = stderr(&third);
    assert_eq!(third.status.code(), Some(0), "{err}");
    assert!(err.contains("already uploaded"), "{err}");
    assert_eq!(srv.media_entries().await.unwrap().len(), 1);
}
