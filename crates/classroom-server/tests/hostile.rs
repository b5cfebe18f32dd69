//! Hostile and malformed input, as tables: each request gets a clear 4xx (never a 5xx), and
//! afterwards nothing stored is corrupted (the upload's offset is unchanged and the finished
//! file is byte-identical to what the honest client sent).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{b64, bytes, create_upload, metadata, patch, sha256_b64, sha256_hex};
use reqwest::{Method, RequestBuilder};

const OCTET: &str = "application/offset+octet-stream";

fn with_meta_field(t: &common::TestServer, field: &str, value: &str) -> String {
    let mut parts: Vec<String> = metadata(&t.c.room, &t.c.breakouts[0], "x")
        .split(',')
        .filter(|p| !p.starts_with(&format!("{field} ")))
        .map(String::from)
        .collect();
    parts.push(format!("{field} {}", b64(value)));
    parts.join(",")
}

async fn check(
    t: &common::TestServer,
    what: &str,
    req: RequestBuilder,
    expect: u16,
    failures: &mut Vec<String>,
) {
    match req.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            if status != expect || status >= 500 {
                failures.push(format!("{what}: {status} (expected {expect}) {body}"));
            } else if status >= 400 && !body.is_empty() && status != 431 {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                if v["error"].as_str().is_none_or(str::is_empty) {
                    failures.push(format!(
                        "{what}: error body is not {{\"error\": ...}}: {body}"
                    ));
                }
            }
        }
        Err(e) => failures.push(format!("{what}: request failed: {e}")),
    }
    let _ = t;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_tus_requests_get_clear_4xx_and_corrupt_nothing() {
    let t = common::start_with(|c| c.max_upload_size = 1 << 20).await;
    let data = bytes(1000, 77);
    let meta = metadata(&t.c.room, &t.c.breakouts[0], "victim");
    let path = create_upload(&t, "moderator", &meta, 1000).await;
    assert_eq!(
        patch(&t, "moderator", &path, 0, &data[..100])
            .await
            .status(),
        204
    );
    let good = &data[100..200];
    let p = |t: &common::TestServer, off: &str| {
        t.tus("moderator", Method::PATCH, &path)
            .header("content-type", OCTET)
            .header("upload-offset", off)
    };
    let post = |t: &common::TestServer| {
        t.tus("moderator", Method::POST, "/files/")
            .header("upload-length", "1000")
    };

    let cases: Vec<(&str, RequestBuilder, u16)> = vec![
        (
            "PATCH wrong Upload-Offset (behind)",
            p(&t, "50").body(good.to_vec()),
            409,
        ),
        (
            "PATCH wrong Upload-Offset (ahead)",
            p(&t, "200").body(good.to_vec()),
            409,
        ),
        (
            "PATCH bad checksum",
            p(&t, "100")
                .header(
                    "upload-checksum",
                    format!("sha256 {}", sha256_b64(b"other")),
                )
                .body(good.to_vec()),
            460,
        ),
        (
            "PATCH bad sha1 checksum",
            p(&t, "100")
                .header("upload-checksum", "sha1 AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
                .body(good.to_vec()),
            460,
        ),
        (
            "PATCH bad crc32 checksum",
            p(&t, "100")
                .header("upload-checksum", "crc32 AAAAAA==")
                .body(good.to_vec()),
            460,
        ),
        (
            "PATCH crc32 checksum, wrong digest length",
            p(&t, "100")
                .header("upload-checksum", "crc32 AAAAAAAA")
                .body(good.to_vec()),
            400,
        ),
        (
            "PATCH checksum, unsupported algorithm",
            p(&t, "100")
                .header("upload-checksum", "md5 AAAAAAAAAAAAAAAAAAAAAA==")
                .body(good.to_vec()),
            400,
        ),
        (
            "PATCH checksum, not base64",
            p(&t, "100")
                .header("upload-checksum", "sha256 !!!")
                .body(good.to_vec()),
            400,
        ),
        (
            "PATCH checksum, wrong digest length",
            p(&t, "100")
                .header("upload-checksum", "sha256 AAAA")
                .body(good.to_vec()),
            400,
        ),
        (
            "PATCH checksum, no digest",
            p(&t, "100")
                .header("upload-checksum", "sha256")
                .body(good.to_vec()),
            400,
        ),
        (
            "PATCH without Tus-Resumable",
            t.req("moderator", Method::PATCH, &path)
                .header("content-type", OCTET)
                .header("upload-offset", "100")
                .body(good.to_vec()),
            412,
        ),
        (
            "PATCH with Tus-Resumable 0.2.2",
            t.req("moderator", Method::PATCH, &path)
                .header("tus-resumable", "0.2.2")
                .header("content-type", OCTET)
                .header("upload-offset", "100")
                .body(good.to_vec()),
            412,
        ),
        (
            "HEAD without Tus-Resumable",
            t.req("moderator", Method::HEAD, &path),
            412,
        ),
        (
            "PATCH wrong Content-Type",
            t.tus("moderator", Method::PATCH, &path)
                .header("content-type", "application/json")
                .header("upload-offset", "100")
                .body(good.to_vec()),
            415,
        ),
        (
            "PATCH without Upload-Offset",
            t.tus("moderator", Method::PATCH, &path)
                .header("content-type", OCTET)
                .body(good.to_vec()),
            400,
        ),
        (
            "PATCH Upload-Offset -1",
            p(&t, "-1").body(good.to_vec()),
            400,
        ),
        (
            "PATCH Upload-Offset 1e2",
            p(&t, "1e2").body(good.to_vec()),
            400,
        ),
        (
            "PATCH Upload-Offset huge",
            p(&t, "99999999999999999999999").body(good.to_vec()),
            400,
        ),
        (
            "PATCH body past Upload-Length",
            p(&t, "100").body(vec![1u8; 2000]),
            413,
        ),
        (
            "PATCH chunked body past Upload-Length",
            p(&t, "100").body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                (0..20).map(|_| Ok::<_, std::io::Error>(vec![2u8; 100])),
            ))),
            413,
        ),
        (
            "PATCH someone else's upload",
            t.tus("member", Method::PATCH, &path)
                .header("content-type", OCTET)
                .header("upload-offset", "100")
                .body(good.to_vec()),
            404,
        ),
        (
            "PATCH bad token",
            t.http
                .patch(t.url(&path))
                .bearer_auth("brt_forged")
                .header("tus-resumable", "1.0.0")
                .header("content-type", OCTET)
                .header("upload-offset", "100")
                .body(good.to_vec()),
            401,
        ),
        (
            "PATCH unknown upload",
            t.tus(
                "moderator",
                Method::PATCH,
                "/files/up_00000000000000000000000000000000",
            )
            .header("content-type", OCTET)
            .header("upload-offset", "0")
            .body(good.to_vec()),
            404,
        ),
        (
            "PATCH path traversal id",
            t.tus("moderator", Method::PATCH, "/files/..%2F..%2Fclassroom.db")
                .header("content-type", OCTET)
                .header("upload-offset", "0")
                .body(good.to_vec()),
            404,
        ),
        (
            "POST over Tus-Max-Size",
            t.tus("moderator", Method::POST, "/files/")
                .header("upload-length", (2u64 << 20).to_string())
                .header("upload-metadata", meta.clone()),
            413,
        ),
        (
            "POST without Upload-Length",
            t.tus("moderator", Method::POST, "/files/")
                .header("upload-metadata", meta.clone()),
            400,
        ),
        (
            "POST Upload-Length abc",
            t.tus("moderator", Method::POST, "/files/")
                .header("upload-length", "abc")
                .header("upload-metadata", meta.clone()),
            400,
        ),
        (
            "POST Upload-Length 0",
            t.tus("moderator", Method::POST, "/files/")
                .header("upload-length", "0")
                .header("upload-metadata", meta.clone()),
            400,
        ),
        (
            "POST Upload-Defer-Length",
            t.tus("moderator", Method::POST, "/files/")
                .header("upload-defer-length", "1")
                .header("upload-metadata", meta.clone()),
            400,
        ),
        ("POST without Upload-Metadata", post(&t), 400),
        (
            "POST metadata not base64",
            post(&t).header("upload-metadata", format!("{meta},title %%%")),
            400,
        ),
        (
            "POST metadata duplicate key",
            post(&t).header("upload-metadata", format!("{meta},title {}", b64("again"))),
            400,
        ),
        (
            "POST metadata missing title",
            post(&t).header(
                "upload-metadata",
                meta.split(',')
                    .filter(|p| !p.starts_with("title "))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            400,
        ),
        (
            "POST metadata empty",
            post(&t).header("upload-metadata", ""),
            400,
        ),
        (
            "POST metadata only commas",
            post(&t).header("upload-metadata", ",,,"),
            400,
        ),
        (
            "POST metadata started_at not a time",
            post(&t).header(
                "upload-metadata",
                with_meta_field(&t, "started_at", "yesterday"),
            ),
            400,
        ),
        (
            "POST metadata negative duration",
            post(&t).header("upload-metadata", with_meta_field(&t, "duration_ms", "-1")),
            400,
        ),
        (
            "POST metadata title with control characters",
            post(&t).header(
                "upload-metadata",
                with_meta_field(&t, "title", "evil\u{1b}[2J\ntitle"),
            ),
            400,
        ),
        (
            "POST metadata title with a NUL",
            post(&t).header("upload-metadata", with_meta_field(&t, "title", "a\u{0}b")),
            400,
        ),
        (
            "POST metadata empty title",
            post(&t).header("upload-metadata", with_meta_field(&t, "title", "   ")),
            400,
        ),
        (
            "POST metadata title too long",
            post(&t).header(
                "upload-metadata",
                with_meta_field(&t, "title", &"x".repeat(201)),
            ),
            400,
        ),
        (
            "POST metadata filename with a path",
            post(&t).header(
                "upload-metadata",
                with_meta_field(&t, "filename", "../../../etc/cron.d/x"),
            ),
            400,
        ),
        (
            "POST metadata filetype with a header injection",
            post(&t).header(
                "upload-metadata",
                with_meta_field(&t, "filetype", "text/html\r\nX-Evil: 1"),
            ),
            400,
        ),
        (
            "POST metadata live_room path traversal",
            post(&t).header(
                "upload-metadata",
                with_meta_field(&t, "live_room", "../../x"),
            ),
            400,
        ),
        (
            "POST metadata unknown live room",
            post(&t).header(
                "upload-metadata",
                with_meta_field(&t, "live_room", "lr_0000"),
            ),
            404,
        ),
        (
            "POST metadata breakout room of another live room",
            post(&t).header(
                "upload-metadata",
                with_meta_field(&t, "breakout_room", &t.c.other_breakouts[0]),
            ),
            400,
        ),
        (
            "POST metadata not UTF-8",
            post(&t).header(
                "upload-metadata",
                format!("{meta},note {}", base64_of(&[0xff, 0xfe])),
            ),
            400,
        ),
        (
            "POST metadata 8 KiB",
            post(&t).header(
                "upload-metadata",
                format!("{meta},pad {}", b64(&"p".repeat(6000))),
            ),
            400,
        ),
        (
            "POST a 1 MiB header",
            post(&t)
                .header("upload-metadata", meta.clone())
                .header("x-huge", "h".repeat(1 << 20)),
            431,
        ),
        (
            "POST with a non-tus body",
            post(&t)
                .header("upload-metadata", meta.clone())
                .header("content-type", "text/plain")
                .body("hello"),
            415,
        ),
        (
            "POST creation-with-upload, bad checksum",
            post(&t)
                .header("upload-metadata", meta.clone())
                .header("content-type", OCTET)
                .header("upload-checksum", format!("sha256 {}", sha256_b64(b"x")))
                .body(vec![0u8; 10]),
            460,
        ),
        (
            "POST creation-with-upload, body past length",
            post(&t)
                .header("upload-metadata", meta.clone())
                .header("content-type", OCTET)
                .body(vec![0u8; 1001]),
            413,
        ),
        (
            "POST to the other room",
            t.tus("moderator", Method::POST, "/files/")
                .header("upload-length", "10")
                .header(
                    "upload-metadata",
                    metadata(&t.c.other_room, &t.c.other_breakouts[0], "x"),
                ),
            403,
        ),
        (
            "POST without a token",
            t.http
                .post(t.url("/files/"))
                .header("tus-resumable", "1.0.0")
                .header("upload-length", "10")
                .header("upload-metadata", meta.clone()),
            401,
        ),
        (
            "PUT on an upload",
            t.tus("moderator", Method::PUT, &path).body(good.to_vec()),
            405,
        ),
        (
            "GET an unknown route",
            t.req("moderator", Method::GET, "/files/a/b/c"),
            404,
        ),
    ];
    let stored_before = t.stored_files();
    let mut failures = Vec::new();
    for (what, req, expect) in cases {
        check(&t, what, req, expect, &mut failures).await;
        // After every hostile request, the honest upload is where it was.
        let r = t
            .tus("moderator", Method::HEAD, &path)
            .send()
            .await
            .unwrap();
        if r.headers()["upload-offset"] != "100" {
            failures.push(format!(
                "{what}: offset moved to {:?}",
                r.headers()["upload-offset"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "hostile tus requests:\n{}",
        failures.join("\n")
    );
    // Refused creations left no files behind (the accepted upload is the only one).
    assert_eq!(t.stored_files(), stored_before);

    // The honest client finishes, and the file is exactly what it sent.
    assert_eq!(
        patch(&t, "moderator", &path, 100, &data[100..])
            .await
            .status(),
        204
    );
    let r = t
        .tus("moderator", Method::HEAD, &path)
        .send()
        .await
        .unwrap();
    let media = r.headers()["media-entry"].to_str().unwrap().to_string();
    let got = t
        .req(
            "moderator",
            Method::GET,
            &format!("/api/media/{media}/download"),
        )
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(sha256_hex(&got), sha256_hex(&data));

    // A path-traversal title is just text; it never becomes a path.
    let id = create_upload(
        &t,
        "moderator",
        &with_meta_field(&t, "title", "../../../../tmp/pwned"),
        10,
    )
    .await;
    assert!(
        t.stored_files()
            .contains(&id.trim_start_matches("/files/").to_string())
    );
    assert!(!std::path::Path::new("/tmp/pwned").exists());

    // PATCH and HEAD after termination.
    let doomed = create_upload(&t, "moderator", &meta, 1000).await;
    assert_eq!(
        patch(&t, "moderator", &doomed, 0, &data[..10])
            .await
            .status(),
        204
    );
    assert_eq!(
        t.tus("moderator", Method::DELETE, &doomed)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        patch(&t, "moderator", &doomed, 10, &data[10..20])
            .await
            .status(),
        404
    );
    assert_eq!(
        t.tus("moderator", Method::HEAD, &doomed)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        t.tus("moderator", Method::DELETE, &doomed)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert!(
        !t.stored_files()
            .contains(&doomed.trim_start_matches("/files/").to_string())
    );
    t.shutdown().await;
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_uploads_answer_410_then_are_swept() {
    let t = common::start_with(|c| {
        c.upload_expiry = Duration::from_millis(1500);
        c.cleanup_interval = Duration::from_secs(3600);
    })
    .await;
    let meta = metadata(&t.c.room, &t.c.breakouts[0], "slow");
    let path = create_upload(&t, "moderator", &meta, 1000).await;
    let r = patch(&t, "moderator", &path, 0, &[7u8; 10]).await;
    assert_eq!(r.status(), 204);
    let expires =
        httpdate::parse_http_date(r.headers()["upload-expires"].to_str().unwrap()).unwrap();
    assert!(expires > std::time::SystemTime::now());
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(
        patch(&t, "moderator", &path, 10, &[7u8; 10]).await.status(),
        410
    );
    assert_eq!(
        t.tus("moderator", Method::HEAD, &path)
            .send()
            .await
            .unwrap()
            .status(),
        410
    );
    let id = path.trim_start_matches("/files/");
    assert_eq!(
        t.req("moderator", Method::GET, &format!("/api/uploads/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        410
    );
    t.shutdown().await;

    // With a sweeper running, the expired upload's row and bytes go away (then 404).
    let t = common::start_with(|c| {
        c.upload_expiry = Duration::from_millis(500);
        c.cleanup_interval = Duration::from_millis(200);
    })
    .await;
    let meta = metadata(&t.c.room, &t.c.breakouts[0], "abandoned");
    let path = create_upload(&t, "moderator", &meta, 1000).await;
    let id = path.trim_start_matches("/files/").to_string();
    assert!(t.stored_files().contains(&id));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !t.stored_files().contains(&id),
        "expired upload's file was swept"
    );
    assert_eq!(
        t.tus("moderator", Method::HEAD, &path)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_json_api_requests_get_clear_4xx() {
    let t = common::start().await;
    let room = t.c.room.clone();
    let json = |m: Method, path: &str, body: &str| {
        t.http
            .request(m, t.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    let sessions = "/api/sessions";
    let cases: Vec<(&str, RequestBuilder, u16)> = vec![
        (
            "sign in, not JSON",
            json(Method::POST, sessions, "{username: teacher"),
            400,
        ),
        (
            "sign in, JSON of the wrong shape",
            json(Method::POST, sessions, "[1,2,3]"),
            400,
        ),
        (
            "sign in, missing password",
            json(Method::POST, sessions, r#"{"username":"teacher"}"#),
            400,
        ),
        (
            "sign in, wrong types",
            json(Method::POST, sessions, r#"{"username":1,"password":true}"#),
            400,
        ),
        (
            "sign in, empty fields",
            json(Method::POST, sessions, r#"{"username":"","password":""}"#),
            400,
        ),
        ("sign in, empty body", json(Method::POST, sessions, ""), 400),
        (
            "sign in, wrong password",
            json(
                Method::POST,
                sessions,
                r#"{"username":"teacher","password":"teacher-passwore"}"#,
            ),
            401,
        ),
        (
            "sign in, unknown user",
            json(
                Method::POST,
                sessions,
                r#"{"username":"nobody","password":"whatever1"}"#,
            ),
            401,
        ),
        (
            "sign in, SQL in the username",
            json(
                Method::POST,
                sessions,
                r#"{"username":"' OR 1=1 --","password":"x"}"#,
            ),
            401,
        ),
        (
            "sign in, 10 KiB username",
            json(
                Method::POST,
                sessions,
                &format!(r#"{{"username":"{}","password":"x"}}"#, "u".repeat(10_000)),
            ),
            401,
        ),
        (
            "sign in, 1 MiB body",
            json(
                Method::POST,
                sessions,
                &format!(r#"{{"username":"{}","password":"x"}}"#, "u".repeat(1 << 20)),
            ),
            413,
        ),
        (
            "sign in, form instead of JSON",
            t.http
                .post(t.url(sessions))
                .form(&[("username", "teacher")]),
            415,
        ),
        (
            "guest join, empty display name",
            json(
                Method::POST,
                "/api/guests",
                &format!(
                    r#"{{"invite_code":"{}","display_name":"  "}}"#,
                    t.c.invite_code
                ),
            ),
            400,
        ),
        (
            "guest join, control characters in the name",
            json(
                Method::POST,
                "/api/guests",
                &format!(
                    r#"{{"invite_code":"{}","display_name":"a\u0007b"}}"#,
                    t.c.invite_code
                ),
            ),
            400,
        ),
        (
            "guest join, 65-character name",
            json(
                Method::POST,
                "/api/guests",
                &format!(
                    r#"{{"invite_code":"{}","display_name":"{}"}}"#,
                    t.c.invite_code,
                    "n".repeat(65)
                ),
            ),
            400,
        ),
        (
            "guest join, unknown invite code",
            json(
                Method::POST,
                "/api/guests",
                r#"{"invite_code":"aaaa-bbbb-cccc","display_name":"Eve"}"#,
            ),
            404,
        ),
        (
            "guest join, hostile invite code",
            json(
                Method::POST,
                "/api/guests",
                r#"{"invite_code":"'; DROP TABLE users; --","display_name":"Eve"}"#,
            ),
            400,
        ),
        (
            "permission, not a boolean",
            json(
                Method::PUT,
                &format!("/api/live-rooms/{room}/permission"),
                r#"{"participants_may_record":"yes"}"#,
            )
            .bearer_auth(t.token("moderator").unwrap()),
            400,
        ),
        (
            "permission, empty body",
            json(
                Method::PUT,
                &format!("/api/live-rooms/{room}/permission"),
                "",
            )
            .bearer_auth(t.token("moderator").unwrap()),
            400,
        ),
        (
            "join, empty invite code",
            json(
                Method::POST,
                "/api/live-rooms/join",
                r#"{"invite_code":""}"#,
            )
            .bearer_auth(t.token("member").unwrap()),
            400,
        ),
        (
            "a guest joining as an account",
            json(
                Method::POST,
                "/api/live-rooms/join",
                &format!(r#"{{"invite_code":"{}"}}"#, t.c.invite_code),
            )
            .bearer_auth(t.token("guest").unwrap()),
            403,
        ),
        (
            "me with a malformed Authorization",
            t.http
                .get(t.url("/api/me"))
                .header("authorization", "Bearer"),
            401,
        ),
        (
            "me with a Basic Authorization",
            t.http
                .get(t.url("/api/me"))
                .header("authorization", "Basic dGVhY2hlcjp4"),
            401,
        ),
        (
            "me with a forged token",
            t.http
                .get(t.url("/api/me"))
                .bearer_auth("brt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            401,
        ),
        (
            "media, hostile id",
            t.req(
                "moderator",
                Method::GET,
                "/api/media/..%2F..%2Fclassroom.db",
            ),
            404,
        ),
        (
            "media, unknown id",
            t.req("moderator", Method::GET, "/api/media/m_ffff"),
            404,
        ),
        (
            "live room, SQL in the id",
            t.req("moderator", Method::GET, "/api/live-rooms/1'%20OR%20'1'='1"),
            404,
        ),
        (
            "unknown API route",
            t.req("moderator", Method::GET, "/api/nothing"),
            404,
        ),
        (
            "wrong method",
            t.req("moderator", Method::DELETE, "/api/me"),
            405,
        ),
        (
            "web sign in, wrong password",
            t.http
                .post(t.url("/login"))
                .form(&[("username", "teacher"), ("password", "nope")]),
            401,
        ),
        (
            "web sign in, missing fields",
            t.http
                .post(t.url("/login"))
                .form(&[("username", "teacher")]),
            400,
        ),
    ];
    let mut failures = Vec::new();
    for (what, req, expect) in cases {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let html = r
            .headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("text/html"));
        let body = r.text().await.unwrap();
        if status != expect {
            failures.push(format!("{what}: {status} (expected {expect}) {body}"));
        } else if !html {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            if v["error"].as_str().is_none_or(str::is_empty) {
                failures.push(format!(
                    "{what}: error body is not {{\"error\": ...}}: {body}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "hostile API requests:\n{}",
        failures.join("\n")
    );
    // The hostile requests left the accounts working.
    common::sign_in(&t.http, &t.base, "teacher", "teacher-password").await;
    t.shutdown().await;
}

/// Table: a 401 says what to do. Without a token: sign in; with one the server no longer knows
/// (signed out, mistyped, forged): that sign-in has ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_tells_a_missing_sign_in_from_an_ended_one() {
    let t = common::start().await;
    // (case, Authorization header, words the message must have)
    let cases = [
        ("no token", None, "sign in first"),
        ("forged token", Some("Bearer brt_forged"), "no longer valid"),
        ("other scheme", Some("Basic dXNlcjpwYXNz"), "sign in first"),
    ];
    for (case, header, want) in cases {
        let mut req = t.http.get(t.url("/api/me"));
        if let Some(h) = header {
            req = req.header("authorization", h);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{case}");
        let v: serde_json::Value = r.json().await.unwrap();
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(msg.contains(want), "{case}: {msg}");
    }
}
