//! What the classroom server and the desktop app say to each other: the JSON bodies of the
//! `/api` routes, the roles, the media library views, the error body, and the names of the tus
//! headers and `Upload-Metadata` keys. No HTTP framework and no SQL here, so the app can depend
//! on it without pulling in the server.
//!
//! Timestamps are RFC 3339 strings in UTC (`2025-01-31T09:30:00Z`); durations are milliseconds;
//! sizes are bytes; checksums are lowercase hex.

use serde::{Deserialize, Serialize};

pub mod tus;

/// Every 4xx/5xx answer of the JSON API (and of the tus endpoint) has this body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// One line, meant for a person.
    pub error: String,
}

/// Whether a user has a password (an account) or joined a live room by invite code (a guest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserKind {
    Account,
    Guest,
}

/// A user's role in one live room. Moderators are the room's creator and the launching
/// channel's managers and moderators; everyone else who joins is a participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Moderator,
    Participant,
}

/// A member's role in a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelRole {
    Manager,
    Moderator,
    Member,
}

impl ChannelRole {
    /// The name used in the API, the database and the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelRole::Manager => "manager",
            ChannelRole::Moderator => "moderator",
            ChannelRole::Member => "member",
        }
    }

    /// Parses [`ChannelRole::as_str`]'s names.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "manager" => Some(ChannelRole::Manager),
            "moderator" => Some(ChannelRole::Moderator),
            "member" => Some(ChannelRole::Member),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub display_name: String,
    /// Accounts only.
    pub username: Option<String>,
    pub kind: UserKind,
}

/// `POST /api/sessions`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignInRequest {
    pub username: String,
    pub password: String,
}

/// Answer to signing in or joining as a guest: a bearer token for `Authorization: Bearer …`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionResponse {
    pub token: String,
    pub user: User,
    /// When the token stops working.
    pub expires_at: String,
}

/// `POST /api/guests`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GuestJoinRequest {
    pub invite_code: String,
    pub display_name: String,
}

/// Answer to `POST /api/guests`: the session and the live room the guest joined.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GuestJoinResponse {
    pub session: SessionResponse,
    pub live_room: LiveRoom,
}

/// `POST /api/live-rooms/join` (accounts joining by invite code).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinLiveRoomRequest {
    pub invite_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSummary {
    pub id: String,
    pub name: String,
    pub my_role: ChannelRole,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveRoomSummary {
    pub id: String,
    pub name: String,
    pub channel_id: String,
    pub my_role: Role,
}

/// `GET /api/me`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Me {
    pub user: User,
    /// Channels the user is a member of (none for guests).
    pub channels: Vec<ChannelSummary>,
    /// Live rooms the user may enter, with their role in each.
    pub live_rooms: Vec<LiveRoomSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakoutRoom {
    pub id: String,
    pub name: String,
}

/// `GET /api/live-rooms/{id}`: the room, its breakout rooms, the caller's role and the record
/// permission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveRoom {
    pub id: String,
    pub name: String,
    pub channel_id: String,
    pub channel_name: String,
    pub breakout_rooms: Vec<BreakoutRoom>,
    pub my_role: Role,
    /// The room's "participants may record" setting.
    pub participants_may_record: bool,
    /// Whether the caller may record now (moderators always; participants per the setting).
    pub i_may_record: bool,
    /// Only shown to moderators.
    pub invite_code: Option<String>,
}

/// `PUT /api/live-rooms/{id}/permission` (moderators only).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetPermissionRequest {
    pub participants_may_record: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorder {
    pub id: String,
    pub display_name: String,
    pub kind: UserKind,
}

/// One finished recording in the media library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaEntry {
    pub id: String,
    /// The tus upload it came from.
    pub upload_id: String,
    pub title: String,
    pub recorder: Recorder,
    pub live_room_id: String,
    pub live_room_name: String,
    pub breakout_room_id: String,
    pub breakout_room_name: String,
    pub channel_id: String,
    pub started_at: String,
    pub duration_ms: u64,
    pub size: u64,
    /// SHA-256 of the whole file, lowercase hex.
    pub sha256: String,
    pub filename: String,
    pub content_type: String,
    pub created_at: String,
    /// Filed in the recorder's My Media (credentialed recorders only).
    pub in_my_media: bool,
    /// Published to the launching channel (credentialed recorders only).
    pub in_channel: bool,
    /// Relative URL of the file; answers range requests.
    pub download_url: String,
}

/// One breakout room's subfolder of a live room's "Breakout recordings" folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakoutFolder {
    pub breakout_room: BreakoutRoom,
    pub entries: Vec<MediaEntry>,
}

/// `GET /api/live-rooms/{id}/breakout-recordings` (the live room's moderators only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakoutRecordings {
    pub live_room_id: String,
    pub live_room_name: String,
    /// One per breakout room, in the room's order, empty ones included.
    pub folders: Vec<BreakoutFolder>,
}

/// `GET /api/me/media` and `GET /api/channels/{id}/media`: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaList {
    pub entries: Vec<MediaEntry>,
}

/// `GET /api/channels/{id}` (members only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    pub id: String,
    pub name: String,
    pub my_role: ChannelRole,
}

/// `GET /api/uploads/{id}` (the upload's creator only): where an upload stands, and its media
/// entry once complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadStatus {
    pub upload_id: String,
    pub offset: u64,
    pub length: u64,
    pub complete: bool,
    pub expires_at: Option<String>,
    pub media: Option<MediaEntry>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn roles_are_snake_case_on_the_wire() {
        assert_eq!(
            serde_json::to_string(&Role::Moderator).unwrap(),
            "\"moderator\""
        );
        assert_eq!(
            serde_json::to_string(&UserKind::Guest).unwrap(),
            "\"guest\""
        );
        for r in [
            ChannelRole::Manager,
            ChannelRole::Moderator,
            ChannelRole::Member,
        ] {
            assert_eq!(ChannelRole::parse(r.as_str()), Some(r));
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
        }
        assert_eq!(ChannelRole::parse("owner"), None);
    }
}
