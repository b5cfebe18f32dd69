//! The access-control table: every role the rules distinguish × every library, upload and web
//! route → the expected status. Runs against a real server with real recordings in it.

#![allow(clippy::unwrap_used)]

mod common;

use common::{ROLES, TestServer, bytes, create_upload, metadata, upload};
use reqwest::{Method, RequestBuilder};

type Build = Box<dyn Fn(&TestServer, &str) -> RequestBuilder>;

struct Row {
    what: &'static str,
    build: Build,
    /// Expected status per role, in `ROLES` order: anonymous, guest, participant, member,
    /// other_moderator, channel_moderator, moderator.
    expect: [u16; 7],
    /// JSON routes answer errors with `{ "error": ... }`.
    json: bool,
}

fn api(what: &'static str, method: Method, path: String, expect: [u16; 7]) -> Row {
    Row {
        what,
        build: Box::new(move |t, role| t.req(role, method.clone(), &path)),
        expect,
        json: true,
    }
}

fn web(what: &'static str, path: String, expect: [u16; 7]) -> Row {
    Row {
        what,
        build: Box::new(move |t, role| t.page(role, &path)),
        expect,
        json: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_times_every_route() {
    let t = common::start().await;
    let room = t.c.room.clone();
    let b = t.c.breakouts.clone();
    let data = bytes(40_000, 1);
    let (mod_done, mod_media) = upload(
        &t,
        "moderator",
        &metadata(&room, &b[0], "Teacher's take"),
        &data,
        16_384,
    )
    .await;
    let (_, guest_media) = upload(
        &t,
        "guest",
        &metadata(&room, &b[1], "Guest take"),
        &data,
        40_000,
    )
    .await;
    let (_, part_media) = upload(
        &t,
        "participant",
        &metadata(&room, &b[2], "Participant take"),
        &data,
        40_000,
    )
    .await;
    let mod_open =
        create_upload(&t, "moderator", &metadata(&room, &b[0], "unfinished"), 1000).await;
    let mod_doomed =
        create_upload(&t, "moderator", &metadata(&room, &b[0], "to delete"), 1000).await;
    let mod_done_id = mod_done.trim_start_matches("/files/").to_string();
    let ch = t.c.channel.clone();
    let other = t.c.other_room.clone();
    let meta_a = metadata(&room, &b[0], "access table");

    let rows = vec![
        api(
            "GET breakout recordings",
            Method::GET,
            format!("/api/live-rooms/{room}/breakout-recordings"),
            [401, 403, 403, 403, 403, 200, 200],
        ),
        api(
            "GET other room's breakout recordings",
            Method::GET,
            format!("/api/live-rooms/{other}/breakout-recordings"),
            [401, 403, 403, 403, 200, 403, 403],
        ),
        api(
            "GET my media",
            Method::GET,
            "/api/me/media".into(),
            [401, 403, 200, 200, 200, 200, 200],
        ),
        api(
            "GET me",
            Method::GET,
            "/api/me".into(),
            [401, 200, 200, 200, 200, 200, 200],
        ),
        api(
            "GET channel",
            Method::GET,
            format!("/api/channels/{ch}"),
            [401, 403, 403, 200, 403, 200, 200],
        ),
        api(
            "GET channel media",
            Method::GET,
            format!("/api/channels/{ch}/media"),
            [401, 403, 403, 200, 403, 200, 200],
        ),
        api(
            "GET live room",
            Method::GET,
            format!("/api/live-rooms/{room}"),
            [401, 200, 200, 200, 403, 200, 200],
        ),
        api(
            "GET other live room",
            Method::GET,
            format!("/api/live-rooms/{other}"),
            [401, 403, 403, 403, 200, 403, 403],
        ),
        api(
            "GET moderator's media",
            Method::GET,
            format!("/api/media/{mod_media}"),
            [401, 404, 404, 200, 404, 200, 200],
        ),
        api(
            "GET guest's media",
            Method::GET,
            format!("/api/media/{guest_media}"),
            [401, 404, 404, 404, 404, 200, 200],
        ),
        api(
            "GET participant's media",
            Method::GET,
            format!("/api/media/{part_media}"),
            [401, 404, 200, 200, 404, 200, 200],
        ),
        api(
            "download moderator's media",
            Method::GET,
            format!("/api/media/{mod_media}/download"),
            [401, 404, 404, 200, 404, 200, 200],
        ),
        api(
            "HEAD guest's media download",
            Method::HEAD,
            format!("/api/media/{guest_media}/download"),
            [401, 404, 404, 404, 404, 200, 200],
        ),
        Row {
            what: "range request on guest's media",
            build: Box::new({
                let p = format!("/api/media/{guest_media}/download");
                move |t, role| {
                    t.req(role, Method::GET, &p)
                        .header("range", "bytes=100-199")
                }
            }),
            expect: [401, 404, 404, 404, 404, 206, 206],
            json: true,
        },
        Row {
            what: "PUT record permission",
            build: Box::new({
                let p = format!("/api/live-rooms/{room}/permission");
                move |t, role| {
                    t.req(role, Method::PUT, &p)
                        .json(&serde_json::json!({ "participants_may_record": true }))
                }
            }),
            expect: [401, 403, 403, 403, 403, 200, 200],
            json: true,
        },
        Row {
            what: "POST /files/ (create an upload)",
            build: Box::new(move |t, role| {
                t.tus(role, Method::POST, "/files/")
                    .header("upload-length", "10")
                    .header("upload-metadata", meta_a.clone())
            }),
            expect: [401, 201, 201, 201, 403, 201, 201],
            json: true,
        },
        Row {
            what: "HEAD someone's upload",
            build: Box::new({
                let p = mod_open.clone();
                move |t, role| t.tus(role, Method::HEAD, &p)
            }),
            expect: [401, 404, 404, 404, 404, 404, 200],
            json: false,
        },
        Row {
            what: "PATCH someone's upload (wrong offset, so nothing is written)",
            build: Box::new({
                let p = mod_open.clone();
                move |t, role| {
                    t.tus(role, Method::PATCH, &p)
                        .header("content-type", "application/offset+octet-stream")
                        .header("upload-offset", "999")
                        .body(vec![0u8; 1])
                }
            }),
            expect: [401, 404, 404, 404, 404, 404, 409],
            json: true,
        },
        Row {
            what: "DELETE someone's upload",
            build: Box::new({
                let p = mod_doomed.clone();
                move |t, role| t.tus(role, Method::DELETE, &p)
            }),
            expect: [401, 404, 404, 404, 404, 404, 204],
            json: true,
        },
        api(
            "GET upload status",
            Method::GET,
            format!("/api/uploads/{mod_done_id}"),
            [401, 404, 404, 404, 404, 404, 200],
        ),
        web(
            "web: Breakout recordings page",
            format!("/live-rooms/{room}/recordings"),
            [303, 403, 403, 403, 403, 200, 200],
        ),
        web(
            "web: moderator's media page",
            format!("/media/{mod_media}"),
            [303, 404, 404, 200, 404, 200, 200],
        ),
        web(
            "web: guest's media page",
            format!("/media/{guest_media}"),
            [303, 404, 404, 404, 404, 200, 200],
        ),
        web(
            "web: channel page",
            format!("/channels/{ch}"),
            [303, 403, 403, 200, 403, 200, 200],
        ),
        web(
            "web: My Media page",
            "/my-media".into(),
            [303, 403, 200, 200, 200, 200, 200],
        ),
        web("web: home", "/".into(), [200, 200, 200, 200, 200, 200, 200]),
    ];

    let mut failures = Vec::new();
    for row in &rows {
        for (i, role) in ROLES.iter().enumerate() {
            let resp = (row.build)(&t, role).send().await.unwrap();
            let status = resp.status().as_u16();
            let is_head = resp.url().path().starts_with("/files/") || row.what.starts_with("HEAD");
            let body = resp.text().await.unwrap();
            if status != row.expect[i] {
                failures.push(format!(
                    "{:<55} as {role:<17}: {status} (expected {}) {body}",
                    row.what, row.expect[i]
                ));
                continue;
            }
            if row.json && status >= 400 && !is_head {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|_| {
                    panic!("{} as {role}: error body is not JSON: {body}", row.what)
                });
                assert!(
                    v["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "{} as {role}: {body}",
                    row.what
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "access table mismatches:\n{}",
        failures.join("\n")
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_permission_is_enforced_and_only_moderators_change_it() {
    let t = common::start().await;
    let room = t.c.room.clone();
    let meta = metadata(&room, &t.c.breakouts[0], "permission");
    let set = |role: &'static str, allowed: bool| {
        t.req(
            role,
            Method::PUT,
            &format!("/api/live-rooms/{room}/permission"),
        )
        .json(&serde_json::json!({ "participants_may_record": allowed }))
    };
    assert_eq!(
        set("participant", false).send().await.unwrap().status(),
        403
    );
    assert_eq!(set("member", false).send().await.unwrap().status(), 403);
    let r = set("moderator", false).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let view: classroom_api::LiveRoom = r.json().await.unwrap();
    assert!(!view.participants_may_record && view.i_may_record);

    for role in ["participant", "guest", "member"] {
        let r = t
            .req(role, Method::GET, &format!("/api/live-rooms/{room}"))
            .send()
            .await
            .unwrap();
        let v: classroom_api::LiveRoom = r.json().await.unwrap();
        assert_eq!(v.my_role, classroom_api::Role::Participant, "{role}");
        assert!(!v.i_may_record, "{role}");
        assert_eq!(
            v.invite_code, None,
            "participants do not see the invite code"
        );
        let r = t
            .tus(role, Method::POST, "/files/")
            .header("upload-length", "10")
            .header("upload-metadata", meta.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{role}");
        let e: classroom_api::ErrorBody = r.json().await.unwrap();
        assert!(
            e.error.contains("recording is turned off for participants"),
            "{}",
            e.error
        );
    }
    for role in ["moderator", "channel_moderator"] {
        create_upload(&t, role, &meta, 10).await;
    }
    // A channel moderator is a moderator of the room too, and may turn it back on.
    assert_eq!(
        set("channel_moderator", true)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    create_upload(&t, "guest", &meta, 10).await;
    t.shutdown().await;
}
