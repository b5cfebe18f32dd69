//! Test kit: a real server on 127.0.0.1:0 with a fresh database in a temporary directory, a
//! classroom seeded with every role the access rules distinguish, signed-in tokens for each,
//! and a small tus client for uploads.

#![allow(dead_code, clippy::unwrap_used)] // each test binary uses part of the kit

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use classroom_api::{ChannelRole, SessionResponse};
use classroom_server::{Config, RunningServer};
use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};

/// The roles of the access table, in the order the table runs them (the room's moderator last,
/// since some of its requests change state).
pub const ROLES: [&str; 7] = [
    "anonymous",
    "guest",
    "participant",
    "member",
    "other_moderator",
    "channel_moderator",
    "moderator",
];

pub struct Classroom {
    pub channel: String,
    pub other_channel: String,
    pub room: String,
    pub breakouts: Vec<String>,
    pub other_room: String,
    pub other_breakouts: Vec<String>,
    pub invite_code: String,
    /// Bearer token per role (none for "anonymous").
    pub tokens: HashMap<&'static str, String>,
}

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub dir: tempfile::TempDir,
    pub base: String,
    pub http: reqwest::Client,
    pub c: Classroom,
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

pub async fn start() -> TestServer {
    start_with(|_| {}).await
}

/// Starts a server (with `tweak` applied to its config) and seeds:
/// channel "Class 5b" (teacher: manager, cmod: moderator, member: member), live room "Monday"
/// created by teacher with `breakout_count` breakout rooms and participants allowed to record;
/// a second channel and live room "Other" by othermod; participant joined "Monday" by invite
/// code; a guest joined "Monday".
pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
    start_seeded(tweak, 3).await
}

pub async fn start_seeded(tweak: impl FnOnce(&mut Config), breakout_count: usize) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().join("data"));
    config.addr = "127.0.0.1:0".parse().unwrap();
    config.shutdown_grace = Duration::from_secs(5);
    tweak(&mut config);
    let server = classroom_server::serve(config).await.unwrap();
    let base = server.base_url();
    let db = server.classroom().clone();
    let users = [
        ("teacher", "Ms Teacher"),
        ("cmod", "Channel Moderator"),
        ("member", "Channel Member"),
        ("othermod", "Other Moderator"),
        ("participant", "Invited Participant"),
    ];
    for (u, n) in users {
        db.add_user(u, n, &format!("{u}-password")).await.unwrap();
    }
    let channel = db.add_channel("Class 5b").await.unwrap();
    db.add_channel_member(&channel, "teacher", ChannelRole::Manager)
        .await
        .unwrap();
    db.add_channel_member(&channel, "cmod", ChannelRole::Moderator)
        .await
        .unwrap();
    db.add_channel_member(&channel, "member", ChannelRole::Member)
        .await
        .unwrap();
    let names: Vec<String> = (1..=breakout_count).map(|i| format!("Group {i}")).collect();
    let room = db
        .add_live_room(&channel, "Monday", "teacher", &names, true)
        .await
        .unwrap();
    let other_channel = db.add_channel("Class 6a").await.unwrap();
    db.add_channel_member(&other_channel, "othermod", ChannelRole::Manager)
        .await
        .unwrap();
    let other = db
        .add_live_room(
            &other_channel,
            "Other",
            "othermod",
            &["Other group".to_string()],
            true,
        )
        .await
        .unwrap();

    let http = client();
    let mut tokens = HashMap::new();
    for (role, user) in [
        ("moderator", "teacher"),
        ("channel_moderator", "cmod"),
        ("member", "member"),
        ("other_moderator", "othermod"),
        ("participant", "participant"),
    ] {
        tokens.insert(
            role,
            sign_in(&http, &base, user, &format!("{user}-password")).await,
        );
    }
    let r = http
        .post(format!("{base}/api/live-rooms/join"))
        .bearer_auth(&tokens["participant"])
        .json(&serde_json::json!({ "invite_code": room.invite_code }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(format!("{base}/api/guests"))
        .json(&serde_json::json!({ "invite_code": room.invite_code, "display_name": "Guest Gina" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let g: classroom_api::GuestJoinResponse = r.json().await.unwrap();
    tokens.insert("guest", g.session.token);

    TestServer {
        server: Some(server),
        dir,
        base,
        http,
        c: Classroom {
            channel,
            other_channel,
            room: room.id,
            breakouts: room.breakout_rooms.into_iter().map(|b| b.id).collect(),
            other_room: other.id,
            other_breakouts: other.breakout_rooms.into_iter().map(|b| b.id).collect(),
            invite_code: room.invite_code,
            tokens,
        },
    }
}

pub async fn sign_in(http: &reqwest::Client, base: &str, user: &str, password: &str) -> String {
    let r = http
        .post(format!("{base}/api/sessions"))
        .json(&serde_json::json!({ "username": user, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "sign in as {user}");
    r.json::<SessionResponse>().await.unwrap().token
}

impl TestServer {
    pub fn token(&self, role: &str) -> Option<&str> {
        self.c.tokens.get(role).map(String::as_str)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request as `role` (bearer token; none for anonymous).
    pub fn req(&self, role: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
        let b = self.http.request(method, self.url(path));
        match self.token(role) {
            Some(t) => b.bearer_auth(t),
            None => b,
        }
    }

    /// A request for the web page as `role` (session cookie).
    pub fn page(&self, role: &str, path: &str) -> reqwest::RequestBuilder {
        let b = self.http.get(self.url(path));
        match self.token(role) {
            Some(t) => b.header("cookie", format!("classroom_session={t}")),
            None => b,
        }
    }

    /// A tus request as `role` with `Tus-Resumable` set.
    pub fn tus(&self, role: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.req(role, method, path)
            .header("tus-resumable", "1.0.0")
    }

    /// Stops the server and starts a new one on the same data directory (new port).
    pub async fn restart(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.unwrap();
        }
        let mut config = Config::new(self.dir.path().join("data"));
        config.addr = "127.0.0.1:0".parse().unwrap();
        let server = classroom_server::serve(config).await.unwrap();
        self.base = server.base_url();
        self.server = Some(server);
    }

    /// The files in the media storage directory.
    pub fn stored_files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path().join("data/media"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    pub async fn shutdown(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.unwrap();
        }
    }
}

pub fn b64(s: &str) -> String {
    STANDARD.encode(s)
}

/// `Upload-Metadata` for a recording in `live_room`/`breakout_room`.
pub fn metadata(live_room: &str, breakout_room: &str, title: &str) -> String {
    format!(
        "live_room {},breakout_room {},title {},started_at {},duration_ms {},filename {}",
        b64(live_room),
        b64(breakout_room),
        b64(title),
        b64("2025-03-03T09:15:00Z"),
        b64("5000"),
        b64("recording.mp4")
    )
}

/// Creates an upload; returns its path (`/files/...`).
pub async fn create_upload(t: &TestServer, role: &str, meta: &str, len: u64) -> String {
    let r = t
        .tus(role, Method::POST, "/files/")
        .header("upload-length", len.to_string())
        .header("upload-metadata", meta)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    r.headers()["location"].to_str().unwrap().to_string()
}

pub fn sha256_b64(data: &[u8]) -> String {
    STANDARD.encode(Sha256::digest(data))
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// PATCHes `data` at `offset` (with a sha256 checksum); returns the response.
pub async fn patch(
    t: &TestServer,
    role: &str,
    path: &str,
    offset: u64,
    data: &[u8],
) -> reqwest::Response {
    t.tus(role, Method::PATCH, path)
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", offset.to_string())
        .header("upload-checksum", format!("sha256 {}", sha256_b64(data)))
        .body(data.to_vec())
        .send()
        .await
        .unwrap()
}

/// Uploads `data` as `role` in chunks; returns (upload path, media entry id).
pub async fn upload(
    t: &TestServer,
    role: &str,
    meta: &str,
    data: &[u8],
    chunk: usize,
) -> (String, String) {
    let path = create_upload(t, role, meta, data.len() as u64).await;
    let mut offset = 0usize;
    let mut media = None;
    while offset < data.len() {
        let end = (offset + chunk).min(data.len());
        let r = patch(t, role, &path, offset as u64, &data[offset..end]).await;
        assert_eq!(
            r.status(),
            StatusCode::NO_CONTENT,
            "{}",
            r.text().await.unwrap()
        );
        assert_eq!(r.headers()["upload-offset"], end.to_string().as_str());
        media = r
            .headers()
            .get("media-entry")
            .map(|v| v.to_str().unwrap().to_string());
        offset = end;
    }
    (path, media.expect("the last PATCH names the media entry"))
}

/// Deterministic pseudo-random bytes (so a failure can be reproduced).
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
