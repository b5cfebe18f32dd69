//! The media library: media entries as the API shows them, and the three views (a live room's
//! Breakout recordings folder by breakout room, a user's My Media, a channel's media). Access is
//! decided by the callers of these functions (see `access`); these only read.

use classroom_api::{
    BreakoutFolder, BreakoutRecordings, BreakoutRoom, MediaEntry, Recorder, UserKind,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

use crate::access::{LiveRoomRow, MediaPlacement};
use crate::db::rfc3339;

/// A media entry with what the server needs besides the API view.
pub struct MediaRow {
    pub entry: MediaEntry,
    pub storage_key: String,
}

impl MediaRow {
    pub fn placement(&self) -> MediaPlacement<'_> {
        MediaPlacement {
            live_room_id: &self.entry.live_room_id,
            recorder_id: &self.entry.recorder.id,
            channel_id: &self.entry.channel_id,
            in_my_media: self.entry.in_my_media,
            in_channel: self.entry.in_channel,
        }
    }
}

const SELECT_MEDIA: &str =
    "SELECT m.id, m.upload_id, m.title, m.recorder_id, u.display_name AS recorder_name,
        u.kind AS recorder_kind, m.live_room_id, l.name AS live_room_name, m.breakout_room_id,
        b.name AS breakout_room_name, m.channel_id, m.started_at, m.duration_ms, m.size, m.sha256,
        m.filename, m.content_type, m.created_at, m.in_my_media, m.in_channel, m.storage_key
    FROM media m
    JOIN users u ON u.id = m.recorder_id
    JOIN live_rooms l ON l.id = m.live_room_id
    JOIN breakout_rooms b ON b.id = m.breakout_room_id";

fn media_row(r: &SqliteRow) -> MediaRow {
    let id: String = r.get("id");
    MediaRow {
        entry: MediaEntry {
            download_url: format!("/api/media/{id}/download"),
            id,
            upload_id: r.get("upload_id"),
            title: r.get("title"),
            recorder: Recorder {
                id: r.get("recorder_id"),
                display_name: r.get("recorder_name"),
                kind: if r.get::<String, _>("recorder_kind") == "guest" {
                    UserKind::Guest
                } else {
                    UserKind::Account
                },
            },
            live_room_id: r.get("live_room_id"),
            live_room_name: r.get("live_room_name"),
            breakout_room_id: r.get("breakout_room_id"),
            breakout_room_name: r.get("breakout_room_name"),
            channel_id: r.get("channel_id"),
            started_at: rfc3339(r.get("started_at")),
            duration_ms: u64::try_from(r.get::<i64, _>("duration_ms")).unwrap_or(0),
            size: u64::try_from(r.get::<i64, _>("size")).unwrap_or(0),
            sha256: r.get("sha256"),
            filename: r.get("filename"),
            content_type: r.get("content_type"),
            created_at: rfc3339(r.get("created_at")),
            in_my_media: r.get("in_my_media"),
            in_channel: r.get("in_channel"),
        },
        storage_key: r.get("storage_key"),
    }
}

pub async fn load_media(pool: &SqlitePool, id: &str) -> Result<Option<MediaRow>, sqlx::Error> {
    let row = sqlx::query(&format!("{SELECT_MEDIA} WHERE m.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.as_ref().map(media_row))
}

pub async fn media_for_upload(
    pool: &SqlitePool,
    upload_id: &str,
) -> Result<Option<MediaRow>, sqlx::Error> {
    let row = sqlx::query(&format!("{SELECT_MEDIA} WHERE m.upload_id = $1"))
        .bind(upload_id)
        .fetch_optional(pool)
        .await?;
    Ok(row.as_ref().map(media_row))
}

pub async fn breakout_rooms(
    pool: &SqlitePool,
    live_room_id: &str,
) -> Result<Vec<BreakoutRoom>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, name FROM breakout_rooms WHERE live_room_id = $1 ORDER BY position",
    )
    .bind(live_room_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| BreakoutRoom {
            id: r.get("id"),
            name: r.get("name"),
        })
        .collect())
}

/// The live room's Breakout recordings folder: one subfolder per breakout room (empty ones
/// too), recordings oldest first within each.
pub async fn breakout_recordings(
    pool: &SqlitePool,
    room: &LiveRoomRow,
) -> Result<BreakoutRecordings, sqlx::Error> {
    let rooms = breakout_rooms(pool, &room.id).await?;
    let rows = sqlx::query(&format!(
        "{SELECT_MEDIA} WHERE m.live_room_id = $1 ORDER BY m.started_at, m.created_at, m.id"
    ))
    .bind(&room.id)
    .fetch_all(pool)
    .await?;
    let mut entries: Vec<MediaEntry> = rows.iter().map(|r| media_row(r).entry).collect();
    let folders = rooms
        .into_iter()
        .map(|br| {
            let (mine, rest): (Vec<_>, Vec<_>) =
                entries.drain(..).partition(|e| e.breakout_room_id == br.id);
            entries = rest;
            BreakoutFolder {
                breakout_room: br,
                entries: mine,
            }
        })
        .collect();
    Ok(BreakoutRecordings {
        live_room_id: room.id.clone(),
        live_room_name: room.name.clone(),
        folders,
    })
}

/// A credentialed user's My Media, newest first.
pub async fn my_media(pool: &SqlitePool, user_id: &str) -> Result<Vec<MediaEntry>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "{SELECT_MEDIA} WHERE m.recorder_id = $1 AND m.in_my_media = $2 ORDER BY m.started_at DESC, m.id"
    ))
    .bind(user_id)
    .bind(true)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(|r| media_row(r).entry).collect())
}

/// What is published to a channel, newest first.
pub async fn channel_media(
    pool: &SqlitePool,
    channel_id: &str,
) -> Result<Vec<MediaEntry>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "{SELECT_MEDIA} WHERE m.channel_id = $1 AND m.in_channel = $2 ORDER BY m.started_at DESC, m.id"
    ))
    .bind(channel_id)
    .bind(true)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(|r| media_row(r).entry).collect())
}
