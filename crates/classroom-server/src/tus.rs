//! The tus 1.0 endpoint (`/files/`): core protocol plus creation, creation-with-upload,
//! checksum (sha1, sha256), termination and expiration.
//!
//! How a request's bytes travel: hyper's body frames go through a small bounded channel to a
//! blocking thread that hashes them (the whole-file SHA-256 for the media entry, and the
//! request's `Upload-Checksum` if any) and writes them to storage; memory stays flat whatever
//! the size. Nothing counts until the request's bytes are committed (fsync, then the offset in
//! the database); a checksum mismatch or an oversize body rolls the file back, so the offset
//! is unchanged. One request per upload at a time (a per-upload lock; a second waits, then
//! gets 423). The database offset is the truth: bytes past it on disk are leftovers of a cut
//! write and are dropped on the next PATCH.
//!
//! Completing an upload files its media entry in one transaction guarded by a UNIQUE
//! `upload_id`, so a retried last PATCH can never make two entries; the response (and HEAD on
//! a complete upload) carries `Media-Entry: <id>`.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{options, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use classroom_api::tus as t;
use futures_util::StreamExt;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use crate::access;
use crate::auth::{Caller, MaybeCaller};
use crate::db::{hex, is_id, new_id, now_ms};
use crate::error::ApiError;
use crate::running_hash::RunningHash;
use crate::server::AppState;
use crate::validate;

/// Largest `Upload-Metadata` accepted (the header as sent).
const MAX_METADATA_LEN: usize = 4096;

/// Per-upload state kept in memory while the server runs: the lock that serialises requests
/// on one upload, and the running whole-file SHA-256 so completion does not re-read the file.
#[derive(Default)]
pub struct Uploads {
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
}

#[derive(Default)]
struct Slot {
    /// The SHA-256 of the bytes kept so far. Missing after a restart, or after a request whose
    /// bytes were rolled back once some had reached the hash: completion then reads the file.
    hash: Option<RunningHash>,
}

impl Uploads {
    fn slot(&self, id: &str) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(id.to_string()).or_default().clone()
    }
    fn forget(&self, id: &str) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.remove(id);
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/files", post(create).options(discover))
        .route("/files/", post(create).options(discover))
        .route(
            "/files/{id}",
            options(discover)
                .head(status)
                .patch(patch)
                .delete(terminate),
        )
        .layer(axum::middleware::map_response(tus_resumable))
}

/// Every tus response says which protocol version it speaks.
async fn tus_resumable(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(t::TUS_RESUMABLE, HeaderValue::from_static(t::VERSION));
    resp
}

fn hv(v: impl ToString) -> HeaderValue {
    // Every value passed here is digits, an id or an HTTP date: always a valid header value.
    HeaderValue::from_str(&v.to_string()).unwrap_or(HeaderValue::from_static(""))
}

/// `OPTIONS`: what this server supports. No sign-in needed.
async fn discover(State(state): State<AppState>) -> Response {
    let mut h = HeaderMap::new();
    h.insert(t::TUS_VERSION, HeaderValue::from_static(t::VERSION));
    h.insert(t::TUS_EXTENSION, HeaderValue::from_static(t::EXTENSIONS));
    h.insert(t::TUS_MAX_SIZE, hv(state.config.max_upload_size));
    h.insert(
        t::TUS_CHECKSUM_ALGORITHM,
        HeaderValue::from_static(t::CHECKSUM_ALGORITHMS),
    );
    (StatusCode::NO_CONTENT, h).into_response()
}

/// The caller, after the protocol version check (412 first, as tus servers do, then 401).
fn tus_caller(headers: &HeaderMap, caller: MaybeCaller) -> Result<Caller, ApiError> {
    match headers.get(t::TUS_RESUMABLE).map(|v| v.as_bytes()) {
        Some(v) if v == t::VERSION.as_bytes() => {}
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                format!(
                    "unsupported Tus-Resumable; this server speaks {}",
                    t::VERSION
                ),
            )
            .with_header(
                header::HeaderName::from_static(t::TUS_VERSION),
                HeaderValue::from_static(t::VERSION),
            ));
        }
        None => {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                format!("Tus-Resumable: {} header is required", t::VERSION),
            )
            .with_header(
                header::HeaderName::from_static(t::TUS_VERSION),
                HeaderValue::from_static(t::VERSION),
            ));
        }
    }
    caller.0.ok_or_else(ApiError::unauthorized)
}

/// A non-negative decimal integer header, strictly (no sign, spaces or exponent).
fn u64_header(headers: &HeaderMap, name: &str) -> Result<Option<u64>, ApiError> {
    let Some(v) = headers.get(name) else {
        return Ok(None);
    };
    let s = v.to_str().unwrap_or("");
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(format!(
            "{name} must be a non-negative integer"
        )));
    }
    s.parse()
        .map(Some)
        .map_err(|_| ApiError::bad_request(format!("{name} is out of range")))
}

fn http_date(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    httpdate::fmt_http_date(t)
}

/// What a recording upload's `Upload-Metadata` must say.
struct RecordingMeta {
    live_room: String,
    breakout_room: String,
    title: String,
    started_at: i64,
    duration_ms: i64,
    filename: String,
    content_type: String,
}

/// Parses `key base64value,key base64value,...` strictly: valid keys, no duplicates, padded
/// standard base64, UTF-8 values. Unknown keys (clients add their own) are allowed and ignored.
fn parse_metadata(raw: &str) -> Result<HashMap<String, String>, ApiError> {
    let bad = |m: String| ApiError::bad_request(format!("malformed Upload-Metadata: {m}"));
    if raw.len() > MAX_METADATA_LEN {
        return Err(bad(format!("longer than {MAX_METADATA_LEN} bytes")));
    }
    let mut out = HashMap::new();
    for pair in raw.split(',') {
        let pair = pair.trim();
        if pair.is_empty() {
            return Err(bad("empty pair".into()));
        }
        let (key, value) = match pair.split_once(' ') {
            Some((k, v)) => (k, v),
            None => (pair, ""),
        };
        if key.is_empty()
            || key.len() > 64
            || !key.bytes().all(|b| b.is_ascii_graphic() && b != b',')
        {
            return Err(bad(format!(
                "invalid key {:?}",
                key.chars().take(64).collect::<String>()
            )));
        }
        let bytes = STANDARD
            .decode(value)
            .map_err(|_| bad(format!("value of {key} is not base64")))?;
        let text =
            String::from_utf8(bytes).map_err(|_| bad(format!("value of {key} is not UTF-8")))?;
        if out.insert(key.to_string(), text).is_some() {
            return Err(bad(format!("key {key} appears twice")));
        }
    }
    Ok(out)
}

fn recording_meta(raw: &str) -> Result<RecordingMeta, ApiError> {
    let m = parse_metadata(raw)?;
    let req = |k: &str| {
        m.get(k)
            .ok_or_else(|| ApiError::bad_request(format!("Upload-Metadata needs {k}")))
    };
    let id = |k: &str| -> Result<String, ApiError> {
        let v = req(k)?;
        if !is_id(v) {
            return Err(ApiError::bad_request(format!("{k} is not a valid id")));
        }
        Ok(v.clone())
    };
    let started_at = chrono::DateTime::parse_from_rfc3339(req(t::meta::STARTED_AT)?)
        .map_err(|_| ApiError::bad_request("started_at must be an RFC 3339 time"))?
        .timestamp_millis();
    let duration = req(t::meta::DURATION_MS)?;
    let duration_ms = if !duration.is_empty()
        && duration.len() <= 12
        && duration.bytes().all(|b| b.is_ascii_digit())
    {
        duration.parse::<i64>().unwrap_or(-1)
    } else {
        -1
    };
    if duration_ms < 0 {
        return Err(ApiError::bad_request(
            "duration_ms must be a non-negative integer (milliseconds)",
        ));
    }
    Ok(RecordingMeta {
        live_room: id(t::meta::LIVE_ROOM)?,
        breakout_room: id(t::meta::BREAKOUT_ROOM)?,
        title: validate::text("title", req(t::meta::TITLE)?, t::MAX_TITLE_CHARS)?,
        started_at,
        duration_ms,
        filename: match m.get(t::meta::FILENAME) {
            Some(f) => validate::filename(f)?,
            None => "recording.mp4".into(),
        },
        content_type: match m.get(t::meta::FILETYPE) {
            Some(f) => validate::media_type(f)?,
            None => "video/mp4".into(),
        },
    })
}

/// An `Upload-Checksum` header: the algorithm and the expected digest.
#[derive(Clone)]
struct Checksum {
    algorithm: Algorithm,
    expected: Vec<u8>,
}

#[derive(Clone, Copy)]
enum Algorithm {
    Sha1,
    Sha256,
    Crc32,
}

enum ChunkHasher {
    Sha1(Sha1),
    Sha256(Sha256),
    Crc32(crc32fast::Hasher),
}

impl ChunkHasher {
    fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha1 => ChunkHasher::Sha1(Sha1::new()),
            Algorithm::Sha256 => ChunkHasher::Sha256(Sha256::new()),
            Algorithm::Crc32 => ChunkHasher::Crc32(crc32fast::Hasher::new()),
        }
    }
    fn update(&mut self, b: &[u8]) {
        match self {
            ChunkHasher::Sha1(h) => h.update(b),
            ChunkHasher::Sha256(h) => h.update(b),
            ChunkHasher::Crc32(h) => h.update(b),
        }
    }
    fn finish(self) -> Vec<u8> {
        match self {
            ChunkHasher::Sha1(h) => h.finalize().to_vec(),
            ChunkHasher::Sha256(h) => h.finalize().to_vec(),
            ChunkHasher::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
        }
    }
}

fn checksum_header(headers: &HeaderMap) -> Result<Option<Checksum>, ApiError> {
    let Some(v) = headers.get(t::UPLOAD_CHECKSUM) else {
        return Ok(None);
    };
    let s = v
        .to_str()
        .map_err(|_| ApiError::bad_request("Upload-Checksum must be ASCII"))?;
    let (alg, b64) = s
        .trim()
        .split_once(' ')
        .ok_or_else(|| ApiError::bad_request("Upload-Checksum must be '<algorithm> <base64>'"))?;
    let (algorithm, len) = match alg {
        "sha1" => (Algorithm::Sha1, 20),
        "sha256" => (Algorithm::Sha256, 32),
        "crc32" => (Algorithm::Crc32, 4),
        _ => {
            return Err(ApiError::bad_request(format!(
                "unsupported checksum algorithm; use one of {}",
                t::CHECKSUM_ALGORITHMS
            )));
        }
    };
    let expected = STANDARD
        .decode(b64.trim())
        .map_err(|_| ApiError::bad_request("Upload-Checksum digest is not base64"))?;
    if expected.len() != len {
        return Err(ApiError::bad_request(format!(
            "Upload-Checksum {alg} digest must be {len} bytes"
        )));
    }
    Ok(Some(Checksum {
        algorithm,
        expected,
    }))
}

/// An upload as stored.
struct UploadRow {
    id: String,
    owner_id: String,
    live_room_id: String,
    breakout_room_id: String,
    title: String,
    started_at: i64,
    duration_ms: i64,
    filename: String,
    content_type: String,
    length: u64,
    offset: u64,
    storage_key: String,
    metadata: String,
    expires_at: i64,
    completed: bool,
}

async fn load_upload(pool: &sqlx::SqlitePool, id: &str) -> Result<Option<UploadRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, owner_id, live_room_id, breakout_room_id, title, started_at, duration_ms,
                filename, content_type, upload_length, upload_offset, storage_key, metadata,
                expires_at, completed_at
         FROM uploads WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| UploadRow {
        id: r.get("id"),
        owner_id: r.get("owner_id"),
        live_room_id: r.get("live_room_id"),
        breakout_room_id: r.get("breakout_room_id"),
        title: r.get("title"),
        started_at: r.get("started_at"),
        duration_ms: r.get("duration_ms"),
        filename: r.get("filename"),
        content_type: r.get("content_type"),
        length: u64::try_from(r.get::<i64, _>("upload_length")).unwrap_or(0),
        offset: u64::try_from(r.get::<i64, _>("upload_offset")).unwrap_or(0),
        storage_key: r.get("storage_key"),
        metadata: r.get("metadata"),
        expires_at: r.get("expires_at"),
        completed: r.get::<Option<i64>, _>("completed_at").is_some(),
    }))
}

/// The caller's own upload: anyone else's, or an unknown id, is the same 404.
async fn owned_upload(state: &AppState, caller: &Caller, id: &str) -> Result<UploadRow, ApiError> {
    let not_found = || ApiError::not_found("no such upload");
    if !is_id(id) {
        return Err(not_found());
    }
    let up = load_upload(&state.classroom.pool, id)
        .await?
        .ok_or_else(not_found)?;
    if up.owner_id != caller.user_id {
        return Err(not_found());
    }
    Ok(up)
}

fn expired(up: &UploadRow) -> bool {
    !up.completed && up.expires_at <= now_ms()
}

fn gone() -> ApiError {
    ApiError::new(StatusCode::GONE, "this upload expired; start a new one")
}

/// The media entry's id of a complete upload.
async fn media_id(state: &AppState, upload_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM media WHERE upload_id = $1")
        .bind(upload_id)
        .fetch_optional(&state.classroom.pool)
        .await
}

/// Headers describing where an upload stands after a request.
async fn progress_headers(
    state: &AppState,
    up: &UploadRow,
    offset: u64,
) -> Result<HeaderMap, ApiError> {
    let mut h = HeaderMap::new();
    h.insert(t::UPLOAD_OFFSET, hv(offset));
    if offset >= up.length {
        if let Some(m) = media_id(state, &up.id).await? {
            h.insert(t::MEDIA_ENTRY, hv(m));
        }
    } else {
        h.insert(t::UPLOAD_EXPIRES, hv(http_date(up.expires_at)));
    }
    Ok(h)
}

/// `POST /files/`: creates an upload for a recording (and takes its first bytes when the body
/// is `application/offset+octet-stream`).
async fn create(
    State(state): State<AppState>,
    caller: MaybeCaller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = tus_caller(&headers, caller)?;
    if headers.contains_key(t::UPLOAD_DEFER_LENGTH) {
        return Err(ApiError::bad_request(
            "Upload-Defer-Length is not supported; send Upload-Length",
        ));
    }
    let length = u64_header(&headers, t::UPLOAD_LENGTH)?
        .ok_or_else(|| ApiError::bad_request("Upload-Length header is required"))?;
    if length > state.config.max_upload_size {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Upload-Length {length} is over this server's Tus-Max-Size {}",
                state.config.max_upload_size
            ),
        ));
    }
    if length == 0 {
        return Err(ApiError::bad_request("Upload-Length must be at least 1"));
    }
    let raw_meta = headers
        .get(t::UPLOAD_METADATA)
        .ok_or_else(|| ApiError::bad_request("Upload-Metadata header is required"))?
        .to_str()
        .map_err(|_| ApiError::bad_request("malformed Upload-Metadata: not ASCII"))?
        .to_string();
    let meta = recording_meta(&raw_meta)?;
    let with_body = is_offset_octet_stream(&headers);
    if !with_body
        && headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("a body on POST must be {}", t::OFFSET_OCTET_STREAM),
        ));
    }
    let checksum = if with_body {
        checksum_header(&headers)?
    } else {
        None
    };

    let pool = &state.classroom.pool;
    let (room, role) = access::enter_live_room(pool, &caller, &meta.live_room).await?;
    if !access::may_record(role, &room) {
        return Err(ApiError::forbidden(
            "recording is turned off for participants in this live room; ask a moderator to enable it",
        ));
    }
    let in_room: Option<String> =
        sqlx::query_scalar("SELECT id FROM breakout_rooms WHERE id = $1 AND live_room_id = $2")
            .bind(&meta.breakout_room)
            .bind(&room.id)
            .fetch_optional(pool)
            .await?;
    if in_room.is_none() {
        return Err(ApiError::bad_request(
            "breakout_room is not a breakout room of this live room",
        ));
    }

    let id = new_id("up_")?;
    let storage = state.classroom.storage.clone();
    let key = id.clone();
    tokio::task::spawn_blocking(move || storage.create(&key))
        .await
        .map_err(|e| ApiError::internal("storage task", e))?
        .map_err(|e| ApiError::internal("cannot create the upload file", e))?;
    let now = now_ms();
    let expires_at = now.saturating_add(millis(state.config.upload_expiry));
    let inserted = sqlx::query(
        "INSERT INTO uploads (id, owner_id, live_room_id, breakout_room_id, title, started_at,
             duration_ms, filename, content_type, upload_length, upload_offset, storage_key,
             metadata, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, $12, $13, $14)",
    )
    .bind(&id)
    .bind(&caller.user_id)
    .bind(&room.id)
    .bind(&meta.breakout_room)
    .bind(&meta.title)
    .bind(meta.started_at)
    .bind(meta.duration_ms)
    .bind(&meta.filename)
    .bind(&meta.content_type)
    .bind(i64::try_from(length).unwrap_or(i64::MAX))
    .bind(&id)
    .bind(&raw_meta)
    .bind(now)
    .bind(expires_at)
    .execute(pool)
    .await;
    if let Err(e) = inserted {
        let _ = state.classroom.storage.delete(&id);
        return Err(e.into());
    }
    tracing::info!(upload = %id, user = %caller.user_id, live_room = %room.id, length, "upload created");

    let mut h = HeaderMap::new();
    h.insert(header::LOCATION, hv(format!("{}{id}", t::FILES_PATH)));
    if with_body {
        let slot = state.uploads.slot(&id);
        let mut guard = slot.lock().await;
        let Some(up) = load_upload(pool, &id).await? else {
            return Err(ApiError::not_found("no such upload"));
        };
        match write_chunk(&state, &up, &mut guard, body, checksum).await {
            Ok(offset) => h.extend(progress_headers(&state, &up, offset).await?),
            Err(e) => {
                // Nothing half-made stays behind: the client creates again.
                drop(guard);
                discard(&state, &id, &up.storage_key).await;
                return Err(e);
            }
        }
    } else {
        h.insert(t::UPLOAD_EXPIRES, hv(http_date(expires_at)));
    }
    Ok((StatusCode::CREATED, h).into_response())
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn is_offset_octet_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(t::OFFSET_OCTET_STREAM))
}

/// `HEAD /files/{id}`: the offset to resume from.
async fn status(
    State(state): State<AppState>,
    caller: MaybeCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = tus_caller(&headers, caller)?;
    let up = owned_upload(&state, &caller, &id).await?;
    if expired(&up) {
        return Err(gone());
    }
    let mut h = progress_headers(&state, &up, up.offset).await?;
    h.insert(t::UPLOAD_LENGTH, hv(up.length));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&up.metadata) {
        h.insert(t::UPLOAD_METADATA, v);
    }
    Ok((StatusCode::OK, h).into_response())
}

/// `PATCH /files/{id}`: appends the body at `Upload-Offset`.
async fn patch(
    State(state): State<AppState>,
    caller: MaybeCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = tus_caller(&headers, caller)?;
    if !is_offset_octet_stream(&headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("PATCH needs Content-Type: {}", t::OFFSET_OCTET_STREAM),
        ));
    }
    let offset = u64_header(&headers, t::UPLOAD_OFFSET)?
        .ok_or_else(|| ApiError::bad_request("Upload-Offset header is required"))?;
    let checksum = checksum_header(&headers)?;
    let up = owned_upload(&state, &caller, &id).await?;
    if expired(&up) {
        return Err(gone());
    }

    let slot = state.uploads.slot(&id);
    let mut guard = tokio::time::timeout(state.config.upload_lock_wait, slot.lock_owned())
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::LOCKED,
                "another request is writing to this upload; retry shortly",
            )
        })?;
    // Re-read under the lock: the request we waited for may have moved the offset (or the
    // sweeper may have removed an expired upload).
    let up = owned_upload(&state, &caller, &id).await?;
    if expired(&up) {
        return Err(gone());
    }
    let mismatch = |current: u64| {
        ApiError::conflict(format!(
            "Upload-Offset {offset} does not match the upload's offset {current}"
        ))
        .with_header(
            header::HeaderName::from_static(t::UPLOAD_OFFSET),
            hv(current),
        )
    };
    if up.completed {
        // A retried last PATCH: the entry exists already; say so again, make nothing new.
        if offset == up.length {
            let mut stream = body.into_data_stream();
            while let Some(frame) = stream.next().await {
                if frame.is_ok_and(|b| !b.is_empty()) {
                    return Err(too_large(&up));
                }
            }
            let h = progress_headers(&state, &up, up.length).await?;
            return Ok((StatusCode::NO_CONTENT, h).into_response());
        }
        return Err(mismatch(up.offset));
    }
    if offset != up.offset {
        return Err(mismatch(up.offset));
    }
    if let Some(len) = u64_header(&headers, header::CONTENT_LENGTH.as_str())? {
        if len > up.length - up.offset {
            return Err(too_large(&up));
        }
    }
    let new_offset = write_chunk(&state, &up, &mut guard, body, checksum).await?;
    let h = progress_headers(&state, &up, new_offset).await?;
    Ok((StatusCode::NO_CONTENT, h).into_response())
}

fn too_large(up: &UploadRow) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the body goes past Upload-Length {} (offset {})",
            up.length, up.offset
        ),
    )
}

/// How reading a request body ended.
enum BodyEnd {
    Clean,
    TooLarge,
    WriterStopped,
    ClientGone(String),
}

/// What the writer thread hands back.
struct WriterOut {
    writer: Option<Box<dyn crate::storage::ObjectWriter>>,
    /// Some of this request's bytes went to the running hash.
    fed: bool,
    chunk_digest: Option<Vec<u8>>,
    error: Option<io::Error>,
}

/// Streams `body` into the upload at its current offset, verifies the checksum, commits (or
/// rolls back), records the new offset, and files the media entry when the upload is complete.
/// Called with the upload's lock held. Returns the new offset.
async fn write_chunk(
    state: &AppState,
    up: &UploadRow,
    slot: &mut Slot,
    body: Body,
    checksum: Option<Checksum>,
) -> Result<u64, ApiError> {
    let offset = up.offset;
    let remaining = up.length - offset;
    let before = match slot.hash.take() {
        Some(h) if h.covered == offset => Some(h),
        _ if offset == 0 => Some(RunningHash::new()),
        _ => None,
    };
    let (feeder, mut running) = before.and_then(RunningHash::extend).unzip();
    let chunk_hasher = checksum.as_ref().map(|c| ChunkHasher::new(c.algorithm));
    // A few frames in flight between the network and the disk: enough to keep both busy,
    // small enough that memory does not depend on the upload's size.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let storage = state.classroom.storage.clone();
    let key = up.storage_key.clone();
    let writer_task = tokio::task::spawn_blocking(move || {
        let mut out = WriterOut {
            writer: None,
            fed: false,
            chunk_digest: None,
            error: None,
        };
        let mut writer = match storage.open_append(&key, offset) {
            Ok(w) => w,
            Err(e) => {
                out.error = Some(e);
                return out;
            }
        };
        let mut chunk_hasher = chunk_hasher;
        let mut feeder = feeder;
        while let Some(b) = rx.blocking_recv() {
            if let Some(f) = &feeder {
                out.fed = true;
                if !f.feed(&b) {
                    // The hash thread is gone: completion will read the file.
                    feeder = None;
                }
            }
            if let Some(h) = &mut chunk_hasher {
                h.update(&b);
            }
            if let Err(e) = writer.write_all(&b) {
                out.error = Some(e);
                break;
            }
        }
        out.chunk_digest = chunk_hasher.map(ChunkHasher::finish);
        out.writer = Some(writer);
        out
    });

    let mut stream = body.into_data_stream();
    let mut received: u64 = 0;
    let mut end = BodyEnd::Clean;
    while let Some(frame) = stream.next().await {
        match frame {
            Ok(bytes) => {
                received += bytes.len() as u64;
                if received > remaining {
                    end = BodyEnd::TooLarge;
                    break;
                }
                if tx.send(bytes).await.is_err() {
                    end = BodyEnd::WriterStopped;
                    break;
                }
            }
            Err(e) => {
                end = BodyEnd::ClientGone(e.to_string());
                break;
            }
        }
    }
    drop(tx);
    drop(stream);
    let out = writer_task
        .await
        .map_err(|e| ApiError::internal("writer task", e))?;
    // The hash is still right when none of this request's bytes reached it; otherwise it is
    // kept only once those bytes are (below), and every failure from here drops it.
    if !out.fed {
        slot.hash = running.take();
    }

    let Some(writer) = out.writer else {
        // The file could not be opened at the offset. If the disk has fewer bytes than the
        // database says (the OS lost unsynced data), believe the disk and let the client resume.
        let e = out
            .error
            .unwrap_or_else(|| io::Error::other("writer vanished"));
        if e.kind() == io::ErrorKind::UnexpectedEof {
            let storage = state.classroom.storage.clone();
            let key = up.storage_key.clone();
            let actual = tokio::task::spawn_blocking(move || storage.size(&key))
                .await
                .map_err(|e| ApiError::internal("storage task", e))?
                .map_err(|e| ApiError::internal("cannot read the upload file", e))?;
            set_offset(state, up, actual).await?;
            slot.hash = None;
            return Err(ApiError::conflict(format!(
                "the server has only {actual} bytes of this upload; resume from there"
            ))
            .with_header(
                header::HeaderName::from_static(t::UPLOAD_OFFSET),
                hv(actual),
            ));
        }
        return Err(storage_error(e));
    };

    let rollback = |writer: Box<dyn crate::storage::ObjectWriter>| async move {
        match tokio::task::spawn_blocking(move || writer.rollback()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "rollback of an upload write failed"),
            Err(e) => tracing::error!(error = %e, "rollback task failed"),
        }
    };

    if let Some(e) = out.error {
        rollback(writer).await;
        return Err(storage_error(e));
    }
    match &end {
        BodyEnd::TooLarge => {
            rollback(writer).await;
            return Err(too_large(up));
        }
        BodyEnd::WriterStopped => {
            rollback(writer).await;
            return Err(ApiError::internal("upload write", "writer stopped early"));
        }
        BodyEnd::ClientGone(reason) if checksum.is_some() => {
            // A checksum covers the whole body; a cut body cannot be verified, so keep nothing.
            rollback(writer).await;
            return Err(ApiError::bad_request(format!(
                "the body was cut short ({reason}); nothing of it was kept"
            )));
        }
        BodyEnd::Clean | BodyEnd::ClientGone(_) => {}
    }
    if let (Some(c), Some(digest)) = (&checksum, &out.chunk_digest) {
        if *digest != c.expected {
            rollback(writer).await;
            return Err(ApiError::new(
                StatusCode::from_u16(t::STATUS_CHECKSUM_MISMATCH)
                    .unwrap_or(StatusCode::BAD_REQUEST),
                format!(
                    "checksum mismatch: nothing of this request was kept; the offset stays {offset}"
                ),
            )
            .with_header(
                header::HeaderName::from_static(t::UPLOAD_OFFSET),
                hv(offset),
            ));
        }
    }
    let new_offset = tokio::task::spawn_blocking(move || writer.commit())
        .await
        .map_err(|e| ApiError::internal("storage task", e))?
        .map_err(storage_error)?;
    set_offset(state, up, new_offset).await?;
    if let Some(mut h) = running {
        h.covered = new_offset;
        slot.hash = Some(h);
    }

    if let BodyEnd::ClientGone(reason) = end {
        tracing::info!(upload = %up.id, kept = new_offset - offset, %reason, "upload request cut short; its bytes were kept");
        return Err(ApiError::bad_request(format!(
            "the body was cut short ({reason}); the offset is now {new_offset}"
        )));
    }
    if new_offset == up.length {
        let hash = match slot.hash.take() {
            Some(h) if h.covered == up.length => h.finish().await,
            _ => None,
        };
        complete(state, up, hash).await?;
        state.uploads.forget(&up.id);
    }
    Ok(new_offset)
}

fn storage_error(e: io::Error) -> ApiError {
    if e.kind() == io::ErrorKind::StorageFull {
        tracing::error!(error = %e, "media storage is full");
        return ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "the server's storage is full",
        );
    }
    ApiError::internal("cannot write the upload", e)
}

async fn set_offset(state: &AppState, up: &UploadRow, offset: u64) -> Result<(), ApiError> {
    let expires_at = now_ms().saturating_add(millis(state.config.upload_expiry));
    sqlx::query("UPDATE uploads SET upload_offset = $1, expires_at = $2 WHERE id = $3")
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .bind(expires_at)
        .bind(&up.id)
        .execute(&state.classroom.pool)
        .await?;
    Ok(())
}

/// Files a complete upload as a media entry: always in its live room's Breakout recordings;
/// in My Media and the channel when the recorder has an account. Exactly once per upload.
async fn complete(
    state: &AppState,
    up: &UploadRow,
    hash: Option<[u8; 32]>,
) -> Result<String, ApiError> {
    let sha256 = match hash {
        Some(h) => hex(&h),
        None => {
            // No running hash (the server restarted mid-upload): read the file once.
            let storage = state.classroom.storage.clone();
            let key = up.storage_key.clone();
            tokio::task::spawn_blocking(move || -> io::Result<String> {
                let mut r = storage.open_read(&key, 0)?;
                let mut h = Sha256::new();
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = r.read(&mut buf)?;
                    if n == 0 {
                        return Ok(hex(&h.finalize()));
                    }
                    h.update(&buf[..n]);
                }
            })
            .await
            .map_err(|e| ApiError::internal("storage task", e))?
            .map_err(|e| ApiError::internal("cannot read the finished upload", e))?
        }
    };
    let pool = &state.classroom.pool;
    let kind: String = sqlx::query_scalar("SELECT kind FROM users WHERE id = $1")
        .bind(&up.owner_id)
        .fetch_one(pool)
        .await?;
    let credentialed = kind == "account";
    let channel_id: String = sqlx::query_scalar("SELECT channel_id FROM live_rooms WHERE id = $1")
        .bind(&up.live_room_id)
        .fetch_one(pool)
        .await?;
    let now = now_ms();
    let media_id = new_id("m_")?;
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE uploads SET completed_at = $1 WHERE id = $2 AND completed_at IS NULL")
        .bind(now)
        .bind(&up.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO media (id, upload_id, title, recorder_id, live_room_id, breakout_room_id,
             channel_id, started_at, duration_ms, size, sha256, filename, content_type,
             storage_key, in_my_media, in_channel, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
         ON CONFLICT (upload_id) DO NOTHING",
    )
    .bind(&media_id)
    .bind(&up.id)
    .bind(&up.title)
    .bind(&up.owner_id)
    .bind(&up.live_room_id)
    .bind(&up.breakout_room_id)
    .bind(&channel_id)
    .bind(up.started_at)
    .bind(up.duration_ms)
    .bind(i64::try_from(up.length).unwrap_or(i64::MAX))
    .bind(&sha256)
    .bind(&up.filename)
    .bind(&up.content_type)
    .bind(&up.storage_key)
    .bind(credentialed)
    .bind(credentialed)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let id = media_id_required(state, &up.id).await?;
    tracing::info!(upload = %up.id, media = %id, size = up.length, %sha256, "upload complete; media entry filed");
    Ok(id)
}

async fn media_id_required(state: &AppState, upload_id: &str) -> Result<String, ApiError> {
    media_id(state, upload_id)
        .await?
        .ok_or_else(|| ApiError::internal("media entry", "missing after insert"))
}

/// `DELETE /files/{id}`: abandons an unfinished upload and its bytes.
async fn terminate(
    State(state): State<AppState>,
    caller: MaybeCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = tus_caller(&headers, caller)?;
    owned_upload(&state, &caller, &id).await?;
    let slot = state.uploads.slot(&id);
    let _guard = tokio::time::timeout(state.config.upload_lock_wait, slot.lock_owned())
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::LOCKED,
                "another request is writing to this upload; retry shortly",
            )
        })?;
    let up = owned_upload(&state, &caller, &id).await?;
    if up.completed {
        return Err(ApiError::conflict(
            "this upload is complete and filed in the media library; it cannot be terminated",
        ));
    }
    discard(&state, &up.id, &up.storage_key).await;
    tracing::info!(upload = %up.id, "upload terminated");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Removes an unfinished upload: the row first (so no request finds it), then the bytes.
async fn discard(state: &AppState, id: &str, key: &str) {
    let res = sqlx::query("DELETE FROM uploads WHERE id = $1 AND completed_at IS NULL")
        .bind(id)
        .execute(&state.classroom.pool)
        .await;
    if let Err(e) = res {
        tracing::error!(upload = %id, error = %e, "cannot delete the upload row");
        return;
    }
    let storage = state.classroom.storage.clone();
    let key = key.to_string();
    match tokio::task::spawn_blocking(move || storage.delete(&key)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(upload = %id, error = %e, "cannot delete the upload file"),
        Err(e) => tracing::error!(upload = %id, error = %e, "storage task failed"),
    }
    state.uploads.forget(id);
}

/// Deletes expired unfinished uploads every `cleanup_interval` until `stop`.
pub async fn sweep_expired(state: AppState, stop: CancellationToken) {
    let mut tick = tokio::time::interval(state.config.cleanup_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {
                match sweep_once(&state).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "expired uploads removed"),
                    Err(e) => tracing::warn!(error = %e.message, "expired-upload sweep failed"),
                }
            }
        }
    }
}

async fn sweep_once(state: &AppState) -> Result<usize, ApiError> {
    let rows = sqlx::query(
        "SELECT id, storage_key FROM uploads WHERE completed_at IS NULL AND expires_at <= $1",
    )
    .bind(now_ms())
    .fetch_all(&state.classroom.pool)
    .await?;
    let mut removed = 0;
    for r in rows {
        let id: String = r.get("id");
        let key: String = r.get("storage_key");
        // An upload with a request in flight is not touched; the next sweep will see it.
        let slot = state.uploads.slot(&id);
        let Ok(_guard) = slot.try_lock_owned() else {
            continue;
        };
        discard(state, &id, &key).await;
        removed += 1;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn metadata_is_parsed_strictly() {
        let enc = |s: &str| STANDARD.encode(s);
        let ok = format!(
            "live_room {},breakout_room {},title {},started_at {},duration_ms {},flag",
            enc("lr_1"),
            enc("br_1"),
            enc("Group A"),
            enc("2025-01-31T09:30:00Z"),
            enc("61000")
        );
        let m = recording_meta(&ok).unwrap();
        assert_eq!(m.title, "Group A");
        assert_eq!(m.duration_ms, 61000);
        assert_eq!(m.filename, "recording.mp4");
        for bad in [
            "".to_string(),
            "title".to_string(),
            format!("{ok},title {}", enc("again")),
            ok.replace(&enc("61000"), "!!!"),
            ok.replace(&enc("61000"), &enc("-5")),
            ok.replace(&enc("2025-01-31T09:30:00Z"), &enc("yesterday")),
            ok.replace(&enc("lr_1"), &enc("../../etc")),
            ok.replace(&enc("Group A"), &enc("a\u{0}b")),
            format!("{ok},filename {}", enc("../x.mp4")),
            format!("{ok},{}", "k ".repeat(3000)),
            format!("{ok},,x"),
        ] {
            assert!(recording_meta(&bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_metadata(&format!("x {}", STANDARD.encode([0xff, 0xfe]))).is_err());
    }
}
