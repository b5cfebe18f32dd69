//! The JSON API under `/api` (documented in `docs/API.md`): sessions, guests, the caller, live
//! rooms and the record permission, the three library views, media metadata and download, and
//! an upload's status. Every route decides access itself through `access`.

use axum::extract::{FromRequest, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use classroom_api::{
    BreakoutRecordings, Channel, ChannelSummary, GuestJoinRequest, GuestJoinResponse,
    JoinLiveRoomRequest, LiveRoom, LiveRoomSummary, Me, MediaEntry, MediaList, Role,
    SessionResponse, SetPermissionRequest, SignInRequest, UploadStatus, UserKind,
};
use sqlx::Row;

use crate::access::{self, LiveRoomRow};
use crate::auth::{self, Caller};
use crate::db::{is_id, new_id, now_ms, rfc3339};
use crate::error::ApiError;
use crate::server::AppState;
use crate::{download, library, validate};

/// `Json<T>` whose rejections (bad JSON, wrong content type, missing fields) are our
/// `{ "error": ... }` 4xx answers.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// An id from the path; anything that is not one of our ids is simply not found.
fn path_id(id: &str, what: &str) -> Result<(), ApiError> {
    if is_id(id) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("no such {what}")))
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/sessions", post(sign_in).delete(sign_out))
        .route("/api/guests", post(join_as_guest))
        .route("/api/me", get(me))
        .route("/api/me/media", get(my_media))
        .route("/api/live-rooms/join", post(join_live_room))
        .route("/api/live-rooms/{id}", get(live_room))
        .route("/api/live-rooms/{id}/permission", put(set_permission))
        .route(
            "/api/live-rooms/{id}/breakout-recordings",
            get(breakout_recordings),
        )
        .route("/api/channels/{id}", get(channel))
        .route("/api/channels/{id}/media", get(channel_media))
        .route("/api/media/{id}", get(media))
        .route("/api/media/{id}/download", get(download_media))
        .route("/api/uploads/{id}", get(upload_status))
}

/// Checks a password against the account's hash, a few at a time; an unknown user costs as
/// much as a wrong password so timing does not tell which usernames exist.
pub(crate) async fn check_password(
    state: &AppState,
    username: &str,
    password: &str,
) -> Result<Option<String>, ApiError> {
    // A hash of nothing anyone knows, verified when the user does not exist.
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let row =
        sqlx::query("SELECT id, password_hash FROM users WHERE username = $1 AND kind = 'account'")
            .bind(username)
            .fetch_optional(&state.classroom.pool)
            .await?;
    let (id, hash) = match &row {
        Some(r) => (
            Some(r.get::<String, _>("id")),
            Some(r.get::<String, _>("password_hash")),
        ),
        None => (None, None),
    };
    let _permit = state
        .hashing
        .acquire()
        .await
        .map_err(|e| ApiError::internal("hashing queue", e))?;
    let password = password.to_string();
    let id_out = id.clone();
    let ok = tokio::task::spawn_blocking(move || {
        let hash = hash.unwrap_or_else(|| {
            DUMMY
                .get_or_init(|| auth::hash_password("no such user").unwrap_or_default())
                .clone()
        });
        auth::verify_password(&hash, &password) && id.is_some()
    })
    .await
    .map_err(|e| ApiError::internal("hashing task", e))?;
    Ok(if ok { id_out } else { None })
}

pub(crate) async fn new_session(
    state: &AppState,
    user_id: &str,
) -> Result<SessionResponse, ApiError> {
    let (token, expires) =
        auth::issue_token(&state.classroom.pool, user_id, state.config.token_ttl).await?;
    let caller = auth::caller_for_token(&state.classroom.pool, &token)
        .await?
        .ok_or_else(|| ApiError::internal("session", "new token not found"))?;
    Ok(SessionResponse {
        token,
        user: caller.api_user(),
        expires_at: rfc3339(expires),
    })
}

async fn sign_in(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SignInRequest>,
) -> Result<Json<SessionResponse>, ApiError> {
    if req.username.trim().is_empty() || req.password.is_empty() {
        return Err(ApiError::bad_request("username and password are required"));
    }
    if req.username.len() > 64 || req.password.len() > 1024 {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong username or password",
        ));
    }
    let Some(user_id) = check_password(&state, req.username.trim(), &req.password).await? else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong username or password",
        ));
    };
    Ok(Json(new_session(&state, &user_id).await?))
}

async fn sign_out(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    sqlx::query("DELETE FROM tokens WHERE token_hash = $1")
        .bind(&caller.token_hash)
        .execute(&state.classroom.pool)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn room_by_invite(state: &AppState, code: &str) -> Result<LiveRoomRow, ApiError> {
    let code = validate::invite_code(code)?;
    let id: Option<String> = sqlx::query_scalar("SELECT id FROM live_rooms WHERE invite_code = $1")
        .bind(&code)
        .fetch_optional(&state.classroom.pool)
        .await?;
    let not_found = || ApiError::not_found("no live room has this invite code");
    let id = id.ok_or_else(not_found)?;
    access::load_live_room(&state.classroom.pool, &id)
        .await?
        .ok_or_else(not_found)
}

async fn join_as_guest(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<GuestJoinRequest>,
) -> Result<Json<GuestJoinResponse>, ApiError> {
    let name = validate::text("display_name", &req.display_name, 64)?;
    let room = room_by_invite(&state, &req.invite_code).await?;
    let id = new_id("g_")?;
    sqlx::query(
        "INSERT INTO users (id, kind, display_name, guest_live_room_id, created_at)
         VALUES ($1, 'guest', $2, $3, $4)",
    )
    .bind(&id)
    .bind(&name)
    .bind(&room.id)
    .bind(now_ms())
    .execute(&state.classroom.pool)
    .await?;
    let session = new_session(&state, &id).await?;
    let live_room = live_room_view(&state, &room, Role::Participant).await?;
    Ok(Json(GuestJoinResponse { session, live_room }))
}

async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<Me>, ApiError> {
    Ok(Json(me_view(&state, &caller).await?))
}

/// The caller, their channels and the live rooms they may enter (also the web home page).
pub(crate) async fn me_view(state: &AppState, caller: &Caller) -> Result<Me, ApiError> {
    let pool = &state.classroom.pool;
    let channels = if caller.is_account() {
        sqlx::query(
            "SELECT c.id, c.name, m.role FROM channel_members m JOIN channels c ON c.id = m.channel_id
             WHERE m.user_id = $1 ORDER BY c.name, c.id",
        )
        .bind(&caller.user_id)
        .fetch_all(pool)
        .await?
        .iter()
        .filter_map(|r| {
            Some(ChannelSummary {
                id: r.get("id"),
                name: r.get("name"),
                my_role: classroom_api::ChannelRole::parse(&r.get::<String, _>("role"))?,
            })
        })
        .collect()
    } else {
        Vec::new()
    };
    let candidates: Vec<String> = if let Some(room) = &caller.guest_live_room_id {
        vec![room.clone()]
    } else {
        sqlx::query_scalar(
            "SELECT l.id FROM live_rooms l
             WHERE l.created_by = $1
                OR l.channel_id IN (SELECT channel_id FROM channel_members WHERE user_id = $1)
                OR l.id IN (SELECT live_room_id FROM live_room_joins WHERE user_id = $1)
             ORDER BY l.created_at, l.id",
        )
        .bind(&caller.user_id)
        .fetch_all(pool)
        .await?
    };
    let mut live_rooms = Vec::new();
    for id in candidates {
        if let Some(room) = access::load_live_room(pool, &id).await? {
            if let Some(role) = access::live_room_role(pool, caller, &room).await? {
                live_rooms.push(LiveRoomSummary {
                    id: room.id,
                    name: room.name,
                    channel_id: room.channel_id,
                    my_role: role,
                });
            }
        }
    }
    Ok(Me {
        user: caller.api_user(),
        channels,
        live_rooms,
    })
}

async fn my_media(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<MediaList>, ApiError> {
    if caller.kind == UserKind::Guest {
        return Err(ApiError::forbidden(
            "guests have no My Media; their recordings go to the live room's moderators",
        ));
    }
    Ok(Json(MediaList {
        entries: library::my_media(&state.classroom.pool, &caller.user_id).await?,
    }))
}

async fn live_room_view(
    state: &AppState,
    room: &LiveRoomRow,
    role: Role,
) -> Result<LiveRoom, ApiError> {
    Ok(LiveRoom {
        id: room.id.clone(),
        name: room.name.clone(),
        channel_id: room.channel_id.clone(),
        channel_name: room.channel_name.clone(),
        breakout_rooms: library::breakout_rooms(&state.classroom.pool, &room.id).await?,
        my_role: role,
        participants_may_record: room.participants_may_record,
        i_may_record: access::may_record(role, room),
        invite_code: (role == Role::Moderator).then(|| room.invite_code.clone()),
    })
}

async fn join_live_room(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<JoinLiveRoomRequest>,
) -> Result<Json<LiveRoom>, ApiError> {
    if !caller.is_account() {
        return Err(ApiError::forbidden("guests join through /api/guests"));
    }
    let room = room_by_invite(&state, &req.invite_code).await?;
    sqlx::query(
        "INSERT INTO live_room_joins (live_room_id, user_id, joined_at) VALUES ($1, $2, $3)
         ON CONFLICT (live_room_id, user_id) DO NOTHING",
    )
    .bind(&room.id)
    .bind(&caller.user_id)
    .bind(now_ms())
    .execute(&state.classroom.pool)
    .await?;
    let role = access::live_room_role(&state.classroom.pool, &caller, &room)
        .await?
        .unwrap_or(Role::Participant);
    Ok(Json(live_room_view(&state, &room, role).await?))
}

async fn live_room(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<LiveRoom>, ApiError> {
    path_id(&id, "live room")?;
    let (room, role) = access::enter_live_room(&state.classroom.pool, &caller, &id).await?;
    Ok(Json(live_room_view(&state, &room, role).await?))
}

async fn set_permission(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SetPermissionRequest>,
) -> Result<Json<LiveRoom>, ApiError> {
    path_id(&id, "live room")?;
    let room = access::moderate_live_room(&state.classroom.pool, &caller, &id).await?;
    sqlx::query("UPDATE live_rooms SET participants_may_record = $1 WHERE id = $2")
        .bind(req.participants_may_record)
        .bind(&room.id)
        .execute(&state.classroom.pool)
        .await?;
    tracing::info!(live_room = %room.id, by = %caller.user_id, allowed = req.participants_may_record, "record permission changed");
    let room = LiveRoomRow {
        participants_may_record: req.participants_may_record,
        ..room
    };
    Ok(Json(live_room_view(&state, &room, Role::Moderator).await?))
}

async fn breakout_recordings(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<BreakoutRecordings>, ApiError> {
    path_id(&id, "live room")?;
    let room = access::moderate_live_room(&state.classroom.pool, &caller, &id).await?;
    Ok(Json(
        library::breakout_recordings(&state.classroom.pool, &room).await?,
    ))
}

/// A channel the caller is a member of: 404 if unknown, 403 if not a member.
pub(crate) async fn member_channel(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Channel, ApiError> {
    path_id(id, "channel")?;
    let name: Option<String> = sqlx::query_scalar("SELECT name FROM channels WHERE id = $1")
        .bind(id)
        .fetch_optional(&state.classroom.pool)
        .await?;
    let name = name.ok_or_else(|| ApiError::not_found("no such channel"))?;
    let role = access::channel_role(&state.classroom.pool, caller, id)
        .await?
        .ok_or_else(|| ApiError::forbidden("only the channel's members can see it"))?;
    Ok(Channel {
        id: id.to_string(),
        name,
        my_role: role,
    })
}

async fn channel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Channel>, ApiError> {
    Ok(Json(member_channel(&state, &caller, &id).await?))
}

async fn channel_media(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<MediaList>, ApiError> {
    let ch = member_channel(&state, &caller, &id).await?;
    Ok(Json(MediaList {
        entries: library::channel_media(&state.classroom.pool, &ch.id).await?,
    }))
}

/// A media entry the caller may see; anything else (unknown or not theirs to see) is 404.
pub(crate) async fn visible_media(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<library::MediaRow, ApiError> {
    path_id(id, "media entry")?;
    let not_found = || ApiError::not_found("no such media entry");
    let m = library::load_media(&state.classroom.pool, id)
        .await?
        .ok_or_else(not_found)?;
    if !access::may_see_media(&state.classroom.pool, caller, &m.placement()).await? {
        return Err(not_found());
    }
    Ok(m)
}

async fn media(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<MediaEntry>, ApiError> {
    Ok(Json(visible_media(&state, &caller, &id).await?.entry))
}

async fn download_media(
    State(state): State<AppState>,
    caller: Caller,
    method: Method,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let m = visible_media(&state, &caller, &id).await?;
    download::respond(&state, &m, &headers, method == Method::HEAD).await
}

async fn upload_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<UploadStatus>, ApiError> {
    path_id(&id, "upload")?;
    let row = sqlx::query(
        "SELECT owner_id, upload_offset, upload_length, completed_at, expires_at FROM uploads WHERE id = $1",
    )
    .bind(&id)
    .fetch_optional(&state.classroom.pool)
    .await?
    .filter(|r| r.get::<String, _>("owner_id") == caller.user_id)
    .ok_or_else(|| ApiError::not_found("no such upload"))?;
    let complete = row.get::<Option<i64>, _>("completed_at").is_some();
    let expires_at: i64 = row.get("expires_at");
    if !complete && expires_at <= now_ms() {
        return Err(ApiError::new(
            StatusCode::GONE,
            "this upload expired; start a new one",
        ));
    }
    let media = if complete {
        library::media_for_upload(&state.classroom.pool, &id)
            .await?
            .map(|m| m.entry)
    } else {
        None
    };
    Ok(Json(UploadStatus {
        upload_id: id,
        offset: u64::try_from(row.get::<i64, _>("upload_offset")).unwrap_or(0),
        length: u64::try_from(row.get::<i64, _>("upload_length")).unwrap_or(0),
        complete,
        expires_at: (!complete).then(|| rfc3339(expires_at)),
        media,
    }))
}
