//! The access rules, in one place, checked by every route (JSON, tus and web alike):
//! a live room's moderators are its creator and its channel's managers and moderators; anyone
//! else who may enter (channel members, accounts that joined by invite code, the room's
//! guests) is a participant; the Breakout recordings folder is for moderators; My Media for its
//! owner; a channel's media for its members.

use classroom_api::{ChannelRole, Role, UserKind};
use sqlx::{Row, SqlitePool};

use crate::auth::Caller;
use crate::error::ApiError;

/// A live room as the access rules need it.
#[derive(Debug, Clone)]
pub struct LiveRoomRow {
    pub id: String,
    pub name: String,
    pub channel_id: String,
    pub channel_name: String,
    pub created_by: String,
    pub invite_code: String,
    pub participants_may_record: bool,
}

pub async fn load_live_room(
    pool: &SqlitePool,
    id: &str,
) -> Result<Option<LiveRoomRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT l.id, l.name, l.channel_id, c.name AS channel_name, l.created_by, l.invite_code,
                l.participants_may_record
         FROM live_rooms l JOIN channels c ON c.id = l.channel_id WHERE l.id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| LiveRoomRow {
        id: r.get("id"),
        name: r.get("name"),
        channel_id: r.get("channel_id"),
        channel_name: r.get("channel_name"),
        created_by: r.get("created_by"),
        invite_code: r.get("invite_code"),
        participants_may_record: r.get("participants_may_record"),
    }))
}

/// The caller's role in a channel, if a member (guests never are).
pub async fn channel_role(
    pool: &SqlitePool,
    caller: &Caller,
    channel_id: &str,
) -> Result<Option<ChannelRole>, sqlx::Error> {
    if caller.kind != UserKind::Account {
        return Ok(None);
    }
    let role: Option<String> = sqlx::query_scalar(
        "SELECT role FROM channel_members WHERE channel_id = $1 AND user_id = $2",
    )
    .bind(channel_id)
    .bind(&caller.user_id)
    .fetch_optional(pool)
    .await?;
    Ok(role.as_deref().and_then(ChannelRole::parse))
}

/// The caller's role in a live room, or `None` if they may not enter it.
pub async fn live_room_role(
    pool: &SqlitePool,
    caller: &Caller,
    room: &LiveRoomRow,
) -> Result<Option<Role>, sqlx::Error> {
    if caller.kind == UserKind::Guest {
        return Ok(
            (caller.guest_live_room_id.as_deref() == Some(room.id.as_str()))
                .then_some(Role::Participant),
        );
    }
    if room.created_by == caller.user_id {
        return Ok(Some(Role::Moderator));
    }
    match channel_role(pool, caller, &room.channel_id).await? {
        Some(ChannelRole::Manager | ChannelRole::Moderator) => return Ok(Some(Role::Moderator)),
        Some(ChannelRole::Member) => return Ok(Some(Role::Participant)),
        None => {}
    }
    let joined: Option<i64> = sqlx::query_scalar(
        "SELECT joined_at FROM live_room_joins WHERE live_room_id = $1 AND user_id = $2",
    )
    .bind(&room.id)
    .bind(&caller.user_id)
    .fetch_optional(pool)
    .await?;
    Ok(joined.map(|_| Role::Participant))
}

/// Whether a role may record given the room's setting.
pub fn may_record(role: Role, room: &LiveRoomRow) -> bool {
    role == Role::Moderator || room.participants_may_record
}

/// The live room and the caller's role in it: 404 if there is no such room, 403 if the caller
/// may not enter it.
pub async fn enter_live_room(
    pool: &SqlitePool,
    caller: &Caller,
    id: &str,
) -> Result<(LiveRoomRow, Role), ApiError> {
    let room = load_live_room(pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such live room"))?;
    let role = live_room_role(pool, caller, &room)
        .await?
        .ok_or_else(|| ApiError::forbidden("you are not a member of this live room"))?;
    Ok((room, role))
}

/// As [`enter_live_room`], for routes that are the moderators' only.
pub async fn moderate_live_room(
    pool: &SqlitePool,
    caller: &Caller,
    id: &str,
) -> Result<LiveRoomRow, ApiError> {
    let (room, role) = enter_live_room(pool, caller, id).await?;
    if role != Role::Moderator {
        return Err(ApiError::forbidden(
            "only the live room's moderators may do this",
        ));
    }
    Ok(room)
}

/// Where a media entry is filed, as the visibility rule needs it.
pub struct MediaPlacement<'a> {
    pub live_room_id: &'a str,
    pub recorder_id: &'a str,
    pub channel_id: &'a str,
    pub in_my_media: bool,
    pub in_channel: bool,
}

/// Whether the caller may see (list, read, download) a media entry: the live room's moderators
/// always; the recorder through My Media; the channel's members when it is published there.
pub async fn may_see_media(
    pool: &SqlitePool,
    caller: &Caller,
    m: &MediaPlacement<'_>,
) -> Result<bool, sqlx::Error> {
    if caller.is_account() && m.in_my_media && m.recorder_id == caller.user_id {
        return Ok(true);
    }
    if m.in_channel && channel_role(pool, caller, m.channel_id).await?.is_some() {
        return Ok(true);
    }
    if let Some(room) = load_live_room(pool, m.live_room_id).await? {
        return Ok(live_room_role(pool, caller, &room).await? == Some(Role::Moderator));
    }
    Ok(false)
}
