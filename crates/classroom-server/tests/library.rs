//! Where finished uploads land (DESIGN §2): always the live room's Breakout recordings folder
//! under their breakout room; My Media and the launching channel only for credentialed
//! recorders. Also: downloads are byte-identical, ranges are exact, a retried last PATCH makes
//! no second entry, and an upload survives a server restart.

#![allow(clippy::unwrap_used)]

mod common;

use classroom_api::{BreakoutRecordings, MediaEntry, MediaList, UploadStatus, UserKind};
use common::{bytes, create_upload, metadata, patch, sha256_hex, upload};
use reqwest::Method;

async fn json<T: serde::de::DeserializeOwned>(r: reqwest::Response) -> T {
    assert!(r.status().is_success(), "{} {}", r.status(), r.url());
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_are_filed_where_the_design_says() {
    let t = common::start().await;
    let room = t.c.room.clone();
    let b = t.c.breakouts.clone();
    let d1 = bytes(150_000, 11);
    let d2 = bytes(70_000, 12);
    let d3 = bytes(1_000, 13);
    let (_, m_mod) = upload(
        &t,
        "moderator",
        &metadata(&room, &b[0], "Group 1 <script>alert(1)</script>"),
        &d1,
        64 * 1024,
    )
    .await;
    let (_, m_guest) = upload(
        &t,
        "guest",
        &metadata(&room, &b[1], "Gina's take"),
        &d2,
        70_000,
    )
    .await;
    let (_, m_part) = upload(
        &t,
        "participant",
        &metadata(&room, &b[2], "../../etc/passwd"),
        &d3,
        500,
    )
    .await;

    let folder: BreakoutRecordings = json(
        t.req(
            "moderator",
            Method::GET,
            &format!("/api/live-rooms/{room}/breakout-recordings"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(folder.live_room_name, "Monday");
    let names: Vec<&str> = folder
        .folders
        .iter()
        .map(|f| f.breakout_room.name.as_str())
        .collect();
    assert_eq!(names, ["Group 1", "Group 2", "Group 3"]);
    let ids = |i: usize| {
        folder.folders[i]
            .entries
            .iter()
            .map(|e| e.id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        (ids(0), ids(1), ids(2)),
        (
            vec![m_mod.clone()],
            vec![m_guest.clone()],
            vec![m_part.clone()]
        )
    );

    let e: &MediaEntry = &folder.folders[0].entries[0];
    assert_eq!(e.title, "Group 1 <script>alert(1)</script>");
    assert_eq!(e.recorder.display_name, "Ms Teacher");
    assert_eq!(e.recorder.kind, UserKind::Account);
    assert_eq!(e.breakout_room_name, "Group 1");
    assert_eq!(e.started_at, "2025-03-03T09:15:00.000Z");
    assert_eq!(e.duration_ms, 5000);
    assert_eq!(e.size, d1.len() as u64);
    assert_eq!(e.sha256, sha256_hex(&d1));
    assert!(e.in_my_media && e.in_channel);
    let g = &folder.folders[1].entries[0];
    assert_eq!(g.recorder.kind, UserKind::Guest);
    assert!(
        !g.in_my_media && !g.in_channel,
        "guests' recordings land in the folder only"
    );

    let mine: MediaList = json(
        t.req("moderator", Method::GET, "/api/me/media")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        mine.entries.iter().map(|e| &e.id).collect::<Vec<_>>(),
        [&m_mod]
    );
    let mine: MediaList = json(
        t.req("participant", Method::GET, "/api/me/media")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        mine.entries.iter().map(|e| &e.id).collect::<Vec<_>>(),
        [&m_part]
    );
    let mine: MediaList = json(
        t.req("member", Method::GET, "/api/me/media")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(mine.entries.is_empty());
    let chan: MediaList = json(
        t.req(
            "member",
            Method::GET,
            &format!("/api/channels/{}/media", t.c.channel),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    let mut chan_ids: Vec<&String> = chan.entries.iter().map(|e| &e.id).collect();
    chan_ids.sort();
    let mut want = vec![&m_mod, &m_part];
    want.sort();
    assert_eq!(
        chan_ids, want,
        "credentialed recordings are published to the launching channel; the guest's is not"
    );

    // Downloads are byte-identical; ranges are exact.
    let r = t
        .req(
            "moderator",
            Method::GET,
            &format!("/api/media/{m_mod}/download"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(r.headers()["content-type"], "video/mp4");
    assert_eq!(r.bytes().await.unwrap().as_ref(), d1.as_slice());
    for (range, slice, content_range) in [
        ("bytes=1000-1999", &d1[1000..2000], "bytes 1000-1999/150000"),
        (
            "bytes=149990-",
            &d1[149_990..],
            "bytes 149990-149999/150000",
        ),
        ("bytes=-10", &d1[149_990..], "bytes 149990-149999/150000"),
        ("bytes=0-0", &d1[..1], "bytes 0-0/150000"),
    ] {
        let r = t
            .req(
                "moderator",
                Method::GET,
                &format!("/api/media/{m_mod}/download"),
            )
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206, "{range}");
        assert_eq!(r.headers()["content-range"], content_range);
        assert_eq!(r.bytes().await.unwrap().as_ref(), slice, "{range}");
    }
    let r = t
        .req(
            "moderator",
            Method::GET,
            &format!("/api/media/{m_mod}/download"),
        )
        .header("range", "bytes=150000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */150000");

    // The web page escapes the hostile title.
    let page = t
        .page("moderator", &format!("/live-rooms/{room}/recordings"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Group 1 &lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(!page.contains("<script>"));
    // Files are stored under server-made names only, whatever the title said.
    assert!(
        t.stored_files()
            .iter()
            .all(|f| f.starts_with("up_") && f.len() == 35),
        "{:?}",
        t.stored_files()
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_last_patch_makes_no_second_entry() {
    let t = common::start().await;
    let data = bytes(100_000, 5);
    let meta = metadata(&t.c.room, &t.c.breakouts[0], "retry");
    let path = create_upload(&t, "moderator", &meta, data.len() as u64).await;
    assert_eq!(
        patch(&t, "moderator", &path, 0, &data[..60_000])
            .await
            .status(),
        204
    );
    let last = patch(&t, "moderator", &path, 60_000, &data[60_000..]).await;
    assert_eq!(last.status(), 204);
    let media = last.headers()["media-entry"].to_str().unwrap().to_string();

    // The same last PATCH again (the client never saw the answer): 409 with the real offset.
    let again = patch(&t, "moderator", &path, 60_000, &data[60_000..]).await;
    assert_eq!(again.status(), 409);
    assert_eq!(again.headers()["upload-offset"], "100000");
    // An empty PATCH at the end, and HEAD, name the same entry.
    let r = t
        .tus("moderator", Method::PATCH, &path)
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", "100000")
        .body(Vec::new())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["media-entry"].to_str().unwrap(), media);
    let r = t
        .tus("moderator", Method::HEAD, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["upload-offset"], "100000");
    assert_eq!(r.headers()["media-entry"].to_str().unwrap(), media);
    assert!(r.headers().get("upload-expires").is_none());
    let id = path.trim_start_matches("/files/");
    let s: UploadStatus = json(
        t.req("moderator", Method::GET, &format!("/api/uploads/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(s.complete);
    assert_eq!(s.media.unwrap().id, media);
    // Terminating a finished upload would delete a library file: refused.
    assert_eq!(
        t.tus("moderator", Method::DELETE, &path)
            .send()
            .await
            .unwrap()
            .status(),
        409
    );
    let folder: BreakoutRecordings = json(
        t.req(
            "moderator",
            Method::GET,
            &format!("/api/live-rooms/{}/breakout-recordings", t.c.room),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(folder.folders[0].entries.len(), 1);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creation_with_upload_and_resume_across_a_restart() {
    let mut t = common::start().await;
    let data = bytes(300_000, 9);
    let meta = metadata(&t.c.room, &t.c.breakouts[1], "restart");
    // creation-with-upload: the POST carries the first 100 000 bytes.
    let r = t
        .tus("moderator", Method::POST, "/files/")
        .header("upload-length", data.len().to_string())
        .header("upload-metadata", meta)
        .header("content-type", "application/offset+octet-stream")
        .body(data[..100_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["upload-offset"], "100000");
    assert!(r.headers().contains_key("upload-expires"));
    let path = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        patch(&t, "moderator", &path, 100_000, &data[100_000..200_000])
            .await
            .status(),
        204
    );

    t.restart().await;
    let r = t
        .tus("moderator", Method::HEAD, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["upload-offset"], "200000");
    assert_eq!(r.headers()["upload-length"], "300000");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["tus-resumable"], "1.0.0");
    assert!(
        r.headers()["upload-metadata"]
            .to_str()
            .unwrap()
            .contains("live_room ")
    );
    let r = patch(&t, "moderator", &path, 200_000, &data[200_000..]).await;
    assert_eq!(r.status(), 204);
    let media = r.headers()["media-entry"].to_str().unwrap().to_string();
    // The server lost its running hash with the restart; the entry's checksum is still right.
    let e: MediaEntry = json(
        t.req("moderator", Method::GET, &format!("/api/media/{media}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(e.sha256, sha256_hex(&data));
    let got = t
        .req("moderator", Method::GET, &e.download_url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), data.as_slice());
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_uploads_from_different_breakout_rooms() {
    let t = common::start_seeded(|_| {}, 20).await;
    let t = std::sync::Arc::new(t);
    let roles = [
        "moderator",
        "participant",
        "guest",
        "member",
        "channel_moderator",
    ];
    let mut tasks = Vec::new();
    for i in 0..20usize {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let role = roles[i % roles.len()];
            let data = bytes(200_000 + i * 7_919, 100 + i as u64);
            let title = format!("Concurrent {i}");
            let meta = metadata(&t.c.room, &t.c.breakouts[i], &title);
            let (_, media) = upload(&t, role, &meta, &data, 32 * 1024 + i * 100).await;
            (i, role, title, data, media)
        }));
    }
    let mut done = Vec::new();
    for task in tasks {
        done.push(task.await.unwrap());
    }
    let folder: BreakoutRecordings = json(
        t.req(
            "moderator",
            Method::GET,
            &format!("/api/live-rooms/{}/breakout-recordings", t.c.room),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(folder.folders.len(), 20);
    for (i, role, title, data, media) in done {
        let f = &folder.folders[i];
        assert_eq!(f.breakout_room.name, format!("Group {}", i + 1));
        assert_eq!(f.entries.len(), 1, "breakout room {i}");
        let e = &f.entries[0];
        assert_eq!(
            (&e.id, &e.title, e.size),
            (&media, &title, data.len() as u64),
            "{role}"
        );
        assert_eq!(e.sha256, sha256_hex(&data));
        let got = t
            .req("moderator", Method::GET, &e.download_url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(got.as_ref(), data.as_slice(), "upload {i}");
    }
    assert_eq!(t.stored_files().len(), 20, "no stray files");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_an_upload_in_flight_finish() {
    let mut t = common::start().await;
    let data = bytes(400_000, 21);
    let meta = metadata(&t.c.room, &t.c.breakouts[0], "in flight");
    let path = create_upload(&t, "moderator", &meta, data.len() as u64).await;
    // A slow body: ten pieces, 100 ms apart.
    let pieces: Vec<Vec<u8>> = data.chunks(40_000).map(<[u8]>::to_vec).collect();
    let body = futures_util::stream::unfold(pieces.into_iter(), |mut it| async move {
        let next = it.next()?;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        Some((Ok::<_, std::io::Error>(next), it))
    });
    let req = t
        .tus("moderator", Method::PATCH, &path)
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", "0")
        .body(reqwest::Body::wrap_stream(body))
        .send();
    let server = t.server.take().unwrap();
    let (resp, stopped) = tokio::join!(req, async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        server.shutdown().await
    });
    stopped.unwrap();
    let resp = resp.unwrap();
    assert_eq!(
        resp.status(),
        204,
        "the in-flight PATCH finished during shutdown"
    );
    let media = resp.headers()["media-entry"].to_str().unwrap().to_string();
    t.restart().await;
    let e: MediaEntry = json(
        t.req("moderator", Method::GET, &format!("/api/media/{media}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(e.sha256, sha256_hex(&data));
    t.shutdown().await;
}
