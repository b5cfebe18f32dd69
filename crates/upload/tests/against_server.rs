//! The upload client and queue against the real classroom server (in-process, fresh SQLite
//! database per test, on 127.0.0.1), through a TCP proxy that cuts or throttles connections.
//! Every test checks the server's side too: media entries, their SHA-256, the stored bytes.

#![allow(clippy::unwrap_used)] // a failed step should stop a test right there

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use upload::{
    Activity, Auth, Backoff, Destination, EnqueueOptions, Item, QueueFile, RunMode, RunReport,
    Runner, RunnerConfig, State,
};
use upload_testkit::{Proxy, ProxyPlan, TestServer, random_file, sha256_file};

const MIB: u64 = 1 << 20;

/// Fixed-size chunks: the tests count bytes per chunk (growth is tested in `chunks`).
fn config(chunk: u64) -> RunnerConfig {
    RunnerConfig {
        chunk_size: usize::try_from(chunk).unwrap(),
        max_chunk_size: usize::try_from(chunk).unwrap(),
        backoff: Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(400),
        },
        ..RunnerConfig::default()
    }
}

fn destination(srv: &TestServer, base: &str) -> Destination {
    Destination {
        server: base.to_string(),
        endpoint: format!("{base}/files/"),
        live_room: srv.live_room.clone(),
        breakout_room: srv.breakout_room.clone(),
        title: "Group A, Tuesday".into(),
        started_at: "2025-01-31T09:30:00Z".into(),
        duration_ms: 61_000,
        filename: "group-a.mp4".into(),
    }
}

/// Queues `file` (any bytes: these tests are about transfer mechanics).
fn enqueue(q: &QueueFile, file: &Path, dest: Destination, auth: Auth) -> Item {
    let opts = EnqueueOptions {
        any_file: true,
        ..Default::default()
    };
    upload::enqueue(q, file, dest, auth, opts).unwrap().item
}

fn item(q: &QueueFile, id: &str) -> Item {
    q.load().unwrap().get(id).unwrap().clone()
}

async fn run(runner: &Runner, limit: Duration) -> RunReport {
    tokio::time::timeout(limit, runner.run(RunMode::UntilIdle))
        .await
        .expect("the run did not end in time")
        .unwrap()
}

/// Asserts the server holds exactly one media entry, for this file, with its bytes.
async fn assert_one_entry(srv: &TestServer, file: &Path) -> String {
    let entries = srv.media_entries().await.unwrap();
    assert_eq!(entries.len(), 1, "{entries:#?}");
    let local = sha256_file(file).unwrap();
    let size = std::fs::metadata(file).unwrap().len();
    assert_eq!(entries[0].sha256, local, "server's recorded sha256");
    assert_eq!(entries[0].size, size);
    assert_eq!(
        srv.download_sha256(&entries[0]).await.unwrap(),
        (size, local),
        "downloaded bytes"
    );
    assert_eq!(entries[0].title, "Group A, Tuesday");
    assert_eq!(entries[0].breakout_room_id, srv.breakout_room);
    entries[0].id.clone()
}

async fn assert_nothing_stored(srv: &TestServer) {
    assert!(
        srv.media_entries().await.unwrap().is_empty(),
        "no media entry"
    );
    assert!(
        srv.stored_files().is_empty(),
        "no bytes left on the server: {:?}",
        srv.stored_files()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_mid_chunk_resumes_at_the_servers_offset() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start(&dir.path().join("server")).await.unwrap();
    let chunk = 4 * MIB;
    let size = 24 * MIB + 12_345;
    // Inside the third chunk's body (headers add a little to the byte count).
    let cut_at = 10 * MIB + 77_777;
    let proxy = Proxy::start(
        srv.addr,
        ProxyPlan {
            cut_after: Some(cut_at),
            rate: None,
        },
    )
    .await
    .unwrap();
    let file = dir.path().join("rec.bin");
    random_file(&file, size, 1).unwrap();
    let q = QueueFile::new(dir.path().join("queue.json"));
    let it = enqueue(
        &q,
        &file,
        destination(&srv, &proxy.url()),
        Auth::bearer(&srv.token),
    );

    let runner = Runner::new(QueueFile::new(q.path()), config(chunk));
    let mut progress = runner.handle().progress();
    let watcher = tokio::spawn(async move {
        let mut seen = Vec::new();
        while progress.changed().await.is_ok() {
            if let Activity::Uploading(p) = &progress.borrow().activity {
                seen.push((p.sent, p.total, p.rate));
            }
        }
        seen
    });
    let report = run(&runner, Duration::from_secs(120)).await;
    drop(runner);

    assert!(
        proxy.cut_done.load(std::sync::atomic::Ordering::Relaxed),
        "the cut happened"
    );
    let r = &report.items[0];
    let stored = item(&q, &it.id);
    let State::Done {
        media_id: Some(media_id),
    } = &stored.state
    else {
        panic!("{:?} {:?}", stored.state, stored.last_error);
    };
    assert_eq!(
        stored.attempts, 1,
        "one failed attempt (the cut), then the resume"
    );
    // Resumed, not restarted: at most the cut chunk went twice.
    assert!(
        r.wire_bytes > size,
        "something was resent: {}",
        r.wire_bytes
    );
    assert!(
        r.wire_bytes <= size + chunk,
        "resent more than one chunk: {} for {size}",
        r.wire_bytes
    );
    assert_eq!(&assert_one_entry(&srv, &file).await, media_id);
    assert_eq!(srv.stored_files().len(), 1);

    // Progress was observable: growing offsets with a rate, ending at the total.
    let seen = watcher.await.unwrap();
    assert!(seen.len() >= 5, "{seen:?}");
    assert!(
        seen.windows(2)
            .all(|w| w[0].0 <= w[1].0 || w[1].0 >= 8 * MIB)
    );
    assert_eq!(seen.last().unwrap().0, size);
    assert!(seen.iter().any(|s| s.2 > 0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_runner_resumes_where_the_server_is_never_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start(&dir.path().join("server")).await.unwrap();
    let size = 12 * MIB + 1;
    // Slow enough to stop it halfway.
    let proxy = Proxy::start(
        srv.addr,
        ProxyPlan {
            cut_after: None,
            rate: Some(8 * MIB),
        },
    )
    .await
    .unwrap();
    let file = dir.path().join("rec.bin");
    random_file(&file, size, 2).unwrap();
    let q = QueueFile::new(dir.path().join("queue.json"));
    let it = enqueue(
        &q,
        &file,
        destination(&srv, &proxy.url()),
        Auth::bearer(&srv.token),
    );

    let first = Runner::new(QueueFile::new(q.path()), config(MIB));
    let handle = first.handle();
    let mut progress = handle.progress();
    tokio::spawn(async move {
        loop {
            if progress.changed().await.is_err() {
                return;
            }
            let sent = match &progress.borrow().activity {
                Activity::Uploading(p) => p.sent,
                _ => 0,
            };
            if sent >= 4 * MIB {
                handle.stop();
                return;
            }
        }
    });
    let report = run(&first, Duration::from_secs(60)).await;
    assert!(report.stopped);
    let stopped = item(&q, &it.id);
    assert_eq!(
        stopped.state,
        State::Waiting,
        "still queued, with its upload URL"
    );
    assert!(stopped.upload_url.is_some());

    // As after a restart: a new runner, a new process's worth of state.
    let second = Runner::new(QueueFile::new(q.path()), config(MIB));
    let report = run(&second, Duration::from_secs(60)).await;
    let r = &report.items[0];
    assert!(matches!(r.state, State::Done { .. }), "{r:?}");
    assert!(r.resumed_at >= 4 * MIB, "resumed at {}", r.resumed_at);
    assert_eq!(
        r.wire_bytes,
        size - r.resumed_at,
        "exactly the rest was sent"
    );
    assert_eq!(
        item(&q, &it.id).upload_url,
        stopped.upload_url,
        "same upload"
    );
    assert_one_entry(&srv, &file).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_wait_while_the_server_is_down_and_go_when_it_comes_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    // The server existed (the token is real), then went away; it comes back on the same port.
    let mut srv = TestServer::start(&data).await.unwrap();
    let addr = srv.addr;
    let token = srv.token.clone();
    srv.stop().await.unwrap();

    let file = dir.path().join("rec.bin");
    random_file(&file, 3 * MIB, 3).unwrap();
    let q = QueueFile::new(dir.path().join("queue.json"));
    let it = enqueue(
        &q,
        &file,
        destination(&srv, &srv.base_url),
        Auth::bearer(&token),
    );

    let runner = Arc::new(Runner::new(QueueFile::new(q.path()), config(MIB)));
    let task = {
        let r = runner.clone();
        tokio::spawn(async move { r.run(RunMode::UntilIdle).await })
    };
    // Offline: it keeps trying, says why, and stays pending.
    let t0 = Instant::now();
    loop {
        let i = item(&q, &it.id);
        if i.attempts >= 3 {
            assert_eq!(i.state, State::Waiting);
            assert!(
                i.last_error.as_deref().unwrap().contains("cannot reach"),
                "{:?}",
                i.last_error
            );
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "no retries");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let srv = TestServer::start_with(&data, addr, |_| {}).await.unwrap();
    let up = Instant::now();
    let report = tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(report.items[0].state, State::Done { .. }),
        "{report:?}"
    );
    // Backoff is capped at 400 ms here: noticed quickly once the server answers.
    assert!(up.elapsed() < Duration::from_secs(10), "{:?}", up.elapsed());
    assert_one_entry(&srv, &file).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_token_stops_in_sign_in_again_and_a_new_token_completes() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start(&dir.path().join("server")).await.unwrap();
    let file = dir.path().join("rec.bin");
    random_file(&file, 2 * MIB + 3, 4).unwrap();
    let q = QueueFile::new(dir.path().join("queue.json"));
    let dest = destination(&srv, &srv.base_url);
    let it = enqueue(&q, &file, dest, Auth::bearer("expired-or-revoked-token"));

    let runner = Runner::new(QueueFile::new(q.path()), config(MIB));
    let report = run(&runner, Duration::from_secs(30)).await;
    let stored = item(&q, &it.id);
    assert!(
        matches!(&stored.state, State::NeedsSignIn { .. }),
        "{:?}",
        stored.state
    );
    assert_eq!(report.items[0].state, stored.state);
    assert_eq!(stored.state.label(), "sign in again");
    assert_nothing_stored(&srv).await;
    // Final: running again does not hammer the server.
    let report = run(&runner, Duration::from_secs(5)).await;
    assert!(report.items.is_empty());

    let token = srv.sign_in_again().await.unwrap();
    assert_eq!(
        upload::set_auth_for_server(&q, &srv.base_url, Auth::bearer(token)).unwrap(),
        1
    );
    let report = run(&runner, Duration::from_secs(30)).await;
    assert!(
        matches!(report.items[0].state, State::Done { .. }),
        "{report:?}"
    );
    assert_one_entry(&srv, &file).await;
}

/// What happens to the local file, and when.
#[derive(Debug, Clone, Copy)]
enum FileChange {
    DeletedBefore,
    GrownBefore,
    /// Overwritten ahead of what was sent; the modification time changes as usual.
    OverwrittenDuring,
    /// Overwritten ahead of what was sent, then the old modification time put back: the
    /// change time (which nobody can set back) still tells.
    OverwrittenDuringSameMtime,
    DeletedDuring,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_or_changed_file_fails_clearly_and_leaves_nothing_on_the_server() {
    // (change, any of these words in the reason)
    let cases: [(FileChange, &[&str]); 5] = [
        (FileChange::DeletedBefore, &["gone"]),
        (FileChange::GrownBefore, &["changed"]),
        (FileChange::OverwrittenDuring, &["changed"]),
        // The runner may look between the write and the reset of the modification time (seen
        // once in a full run); either way the change is caught. The change-time check alone
        // is tested deterministically in `fingerprint`.
        (
            FileChange::OverwrittenDuringSameMtime,
            &[
                "written to or its times were reset",
                "modification time is different",
            ],
        ),
        (FileChange::DeletedDuring, &["gone"]),
    ];
    for (change, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let srv = TestServer::start(&dir.path().join("server")).await.unwrap();
        let proxy = Proxy::start(
            srv.addr,
            ProxyPlan {
                cut_after: None,
                rate: Some(8 * MIB),
            },
        )
        .await
        .unwrap();
        let size = 12 * MIB;
        let file = dir.path().join("rec.bin");
        random_file(&file, size, 5).unwrap();
        let q = QueueFile::new(dir.path().join("queue.json"));
        let it = enqueue(
            &q,
            &file,
            destination(&srv, &proxy.url()),
            Auth::bearer(&srv.token),
        );

        match change {
            FileChange::DeletedBefore => std::fs::remove_file(&file).unwrap(),
            FileChange::GrownBefore => {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&file)
                    .unwrap();
                f.write_all(b"more").unwrap();
            }
            _ => {}
        }
        let runner = Runner::new(QueueFile::new(q.path()), config(MIB));
        let mut progress = runner.handle().progress();
        let path = file.clone();
        let changer = tokio::spawn(async move {
            if matches!(change, FileChange::DeletedBefore | FileChange::GrownBefore) {
                return;
            }
            loop {
                if progress.changed().await.is_err() {
                    return;
                }
                let sent = match &progress.borrow().activity {
                    Activity::Uploading(p) => p.sent,
                    _ => 0,
                };
                if sent >= 2 * MIB {
                    break;
                }
            }
            use std::os::unix::fs::FileExt;
            match change {
                FileChange::DeletedDuring => std::fs::remove_file(&path).unwrap(),
                _ => {
                    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                    let mtime = f.metadata().unwrap().modified().unwrap();
                    // Far ahead of the sender (it reads a few 256 KiB pieces ahead).
                    f.write_all_at(b"tampered", 11 * MIB).unwrap();
                    if matches!(change, FileChange::OverwrittenDuringSameMtime) {
                        f.set_modified(mtime).unwrap();
                    }
                }
            }
        });
        let report = run(&runner, Duration::from_secs(60)).await;
        changer.await.unwrap();
        let stored = item(&q, &it.id);
        let State::Failed { reason } = &stored.state else {
            panic!("{change:?}: {:?}", stored.state);
        };
        assert!(
            want.iter().any(|w| reason.contains(w)),
            "{change:?}: {reason}"
        );
        assert!(!reason.contains('\n'), "one line");
        assert_eq!(report.items[0].state, stored.state);
        assert_nothing_stored(&srv).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_or_unknown_upload_starts_anew_and_ends_in_one_entry() {
    for how in ["expired (410)", "terminated elsewhere (404)"] {
        let dir = tempfile::tempdir().unwrap();
        let expire = how.starts_with("expired");
        let srv = TestServer::start_with(
            &dir.path().join("server"),
            "127.0.0.1:0".parse().unwrap(),
            |c| {
                if expire {
                    c.upload_expiry = Duration::from_millis(1500);
                }
            },
        )
        .await
        .unwrap();
        let proxy = Proxy::start(
            srv.addr,
            ProxyPlan {
                cut_after: None,
                rate: Some(8 * MIB),
            },
        )
        .await
        .unwrap();
        let size = 6 * MIB + 5;
        let file = dir.path().join("rec.bin");
        random_file(&file, size, 6).unwrap();
        let q = QueueFile::new(dir.path().join("queue.json"));
        let it = enqueue(
            &q,
            &file,
            destination(&srv, &proxy.url()),
            Auth::bearer(&srv.token),
        );

        let first = Runner::new(QueueFile::new(q.path()), config(MIB));
        let handle = first.handle();
        let mut progress = handle.progress();
        tokio::spawn(async move {
            while progress.changed().await.is_ok() {
                if matches!(&progress.borrow().activity, Activity::Uploading(p) if p.sent >= 2 * MIB)
                {
                    handle.stop();
                    return;
                }
            }
        });
        assert!(run(&first, Duration::from_secs(60)).await.stopped);
        let old_url = item(&q, &it.id).upload_url.unwrap();
        if expire {
            tokio::time::sleep(Duration::from_millis(1700)).await;
        } else {
            let resp = reqwest::Client::new()
                .delete(&old_url)
                .bearer_auth(&srv.token)
                .header("tus-resumable", "1.0.0")
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 204);
        }
        let second = Runner::new(QueueFile::new(q.path()), config(MIB));
        let report = run(&second, Duration::from_secs(60)).await;
        assert!(
            matches!(report.items[0].state, State::Done { .. }),
            "{how}: {report:?}"
        );
        assert_eq!(report.items[0].resumed_at, 0, "{how}: a new upload");
        let new_url = item(&q, &it.id).upload_url.unwrap();
        assert_ne!(new_url, old_url, "{how}");
        assert_one_entry(&srv, &file).await;
        let entries = srv.media_entries().await.unwrap();
        assert!(new_url.ends_with(&entries[0].upload_id), "{how}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_for_the_server_is_a_final_state() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start_with(
        &dir.path().join("server"),
        "127.0.0.1:0".parse().unwrap(),
        |c| {
            c.max_upload_size = MIB;
        },
    )
    .await
    .unwrap();
    let file = dir.path().join("rec.bin");
    random_file(&file, 2 * MIB, 7).unwrap();
    for discover in [true, false] {
        // With OPTIONS the client knows the limit; without, the server's 413 says it.
        let q = QueueFile::new(dir.path().join(format!("queue-{discover}.json")));
        let it = enqueue(
            &q,
            &file,
            destination(&srv, &srv.base_url),
            Auth::bearer(&srv.token),
        );
        let mut cfg = config(MIB);
        cfg.discover = discover;
        let runner = Runner::new(QueueFile::new(q.path()), cfg);
        run(&runner, Duration::from_secs(30)).await;
        let State::Failed { reason } = item(&q, &it.id).state else {
            panic!("discover={discover}: {:?}", item(&q, &it.id).state);
        };
        assert!(reason.contains("too large"), "{reason}");
    }
    assert_nothing_stored(&srv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_mp4_recording_goes_through_the_playable_check() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start(&dir.path().join("server")).await.unwrap();
    let mp4 = dir.path().join("rec.mp4");
    let ok = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=3:size=320x240:rate=30",
        ])
        .args(["-c:v", "libx264", "-movflags", "+frag_keyframe+empty_moov"])
        .arg(&mp4)
        .status()
        .expect("ffmpeg is installed by scripts/setup.sh");
    assert!(ok.success());
    let q = QueueFile::new(dir.path().join("queue.json"));
    let dest = destination(&srv, &srv.base_url);
    let auth = Auth::bearer(&srv.token);

    // Half a file (a recording still being written, or cut short) is refused...
    let half = dir.path().join("half.mp4");
    let bytes = std::fs::read(&mp4).unwrap();
    std::fs::write(&half, &bytes[..40]).unwrap();
    let err = upload::enqueue(
        &q,
        &half,
        dest.clone(),
        auth.clone(),
        EnqueueOptions::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("not a finished recording"),
        "{err}"
    );
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a video").unwrap();
    let err = upload::enqueue(
        &q,
        &text,
        dest.clone(),
        auth.clone(),
        EnqueueOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("not an MP4"), "{err}");
    assert!(q.load().unwrap().items.is_empty());

    // ...the finished one goes, and the library gets a playable file.
    let add = || {
        upload::enqueue(
            &q,
            &mp4,
            dest.clone(),
            auth.clone(),
            EnqueueOptions::default(),
        )
    };
    let first = add().unwrap();
    assert!(!first.already_queued);
    let it = first.item;
    // Queued again while it waits (the same command run twice): the same item, not a second
    // upload and a second media entry.
    let again = add().unwrap();
    assert!(again.already_queued);
    assert_eq!(again.item.id, it.id);
    assert_eq!(q.load().unwrap().items.len(), 1);
    let runner = Runner::new(QueueFile::new(q.path()), config(MIB));
    run(&runner, Duration::from_secs(30)).await;
    assert!(matches!(item(&q, &it.id).state, State::Done { .. }));
    // And once uploaded, queuing it again says so.
    let err = add().unwrap_err();
    assert!(
        matches!(&err, upload::QueueError::AlreadyUploaded { id, .. } if *id == it.id),
        "{err}"
    );
    let entries = srv.media_entries().await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].sha256, sha256_file(&mp4).unwrap());
    assert!(mp4.exists(), "the local file is kept by default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn growing_chunks_and_queues_without_block_crcs_upload_every_byte_once() {
    // (chunk sizes from, to; the item keeps its block CRCs: false = a queue written before
    // they existed, so every chunk's checksum comes from reading the chunk first)
    let cases = [
        (MIB, 8 * MIB, true),
        (MIB, 8 * MIB, false),
        (2 * MIB, 2 * MIB, false),
    ];
    for (min, max, with_blocks) in cases {
        let dir = tempfile::tempdir().unwrap();
        let srv = TestServer::start(&dir.path().join("server")).await.unwrap();
        let size = 20 * MIB + 3;
        let file = dir.path().join("rec.bin");
        random_file(&file, size, 11).unwrap();
        let q = QueueFile::new(dir.path().join("queue.json"));
        let it = enqueue(
            &q,
            &file,
            destination(&srv, &srv.base_url),
            Auth::bearer(&srv.token),
        );
        assert!(it.file.block_crcs().is_some(), "new items carry block CRCs");
        if !with_blocks {
            q.update(|q| {
                q.get_mut(&it.id).unwrap().file.block_crc32.clear();
                Ok(())
            })
            .unwrap();
        }
        let config = RunnerConfig {
            max_chunk_size: usize::try_from(max).unwrap(),
            ..config(min)
        };
        let report = run(
            &Runner::new(QueueFile::new(q.path()), config),
            Duration::from_secs(60),
        )
        .await;
        let r = &report.items[0];
        let case = format!("{min}..{max}, blocks {with_blocks}");
        assert!(matches!(r.state, State::Done { .. }), "{case}: {r:?}");
        assert_eq!(r.wire_bytes, size, "{case}: every byte once");
        assert_one_entry(&srv, &file).await;
    }
}
