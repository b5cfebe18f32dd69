//! The small web page: sign in (a session cookie holding the same kind of token as the API),
//! then browse exactly what the server lets this user see — Breakout recordings by breakout
//! room (moderators), My Media, channel pages — and play a recording in an HTML5 `<video>`
//! whose source is the API's range-capable download route.
//!
//! Server-rendered with maud, which escapes every interpolated value: titles and names are
//! hostile input. No JavaScript; a strict Content-Security-Policy says so.

use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use classroom_api::{MediaEntry, Role, UserKind};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use crate::access;
use crate::api;
use crate::auth::{self, Caller, MaybeCaller, SESSION_COOKIE};
use crate::db::is_id;
use crate::error::ApiError;
use crate::library;
use crate::server::AppState;

const CSS: &str = "
body{font-family:system-ui,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
header{background:#1d2330;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1rem;align-items:center}
header a{color:#fff}header form{margin-left:auto}
main{max-width:60rem;margin:1.2rem auto;padding:0 1.2rem}
section.folder{background:#fff;border:1px solid #d8dbe2;border-radius:6px;padding:.4rem 1rem;margin:1rem 0}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #eceef2}
.empty{color:#667}.error{color:#a40000}video{width:100%;max-height:70vh;background:#000}
form.signin{background:#fff;border:1px solid #d8dbe2;border-radius:6px;padding:1rem;max-width:22rem}
form.signin label{display:block;margin:.5rem 0}input{font:inherit;padding:.3rem;width:100%;box-sizing:border-box}
button{font:inherit;padding:.35rem .9rem}
";

const CSP: &str = "default-src 'none'; style-src 'self'; media-src 'self'; img-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/style.css", get(style))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/my-media", get(my_media_page))
        .route("/channels/{id}", get(channel_page))
        .route("/live-rooms/{id}/recordings", get(recordings_page))
        .route("/media/{id}", get(media_page))
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        CSS,
    )
        .into_response()
}

fn page(status: StatusCode, title: &str, caller: Option<&Caller>, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Classroom" }
                link rel="stylesheet" href="/style.css";
            }
            body {
                header {
                    a href="/" { "Classroom" }
                    @if let Some(c) = caller {
                        @if c.kind == UserKind::Account { a href="/my-media" { "My Media" } }
                        form method="post" action="/logout" {
                            span { (c.display_name) " " }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    };
    let mut resp = (status, markup.into_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// An error as a page (the JSON API answers JSON; people get HTML).
fn error_page(caller: Option<&Caller>, e: ApiError) -> Response {
    let title = match e.status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        s if s.is_server_error() => "Server error",
        _ => "Cannot do that",
    };
    page(
        e.status,
        title,
        caller,
        html! { h1 { (title) } p.error { (e.message) } p { a href="/" { "Back" } } },
    )
}

fn sign_in_form(message: Option<&str>) -> Markup {
    html! {
        h1 { "Sign in" }
        @if let Some(m) = message { p.error role="alert" { (m) } }
        form.signin method="post" action="/login" {
            label { "Username" input name="username" autocomplete="username" required; }
            label { "Password" input name="password" type="password" autocomplete="current-password" required; }
            button type="submit" { "Sign in" }
        }
    }
}

async fn home(State(state): State<AppState>, MaybeCaller(caller): MaybeCaller) -> Response {
    let Some(caller) = caller else {
        return page(StatusCode::OK, "Sign in", None, sign_in_form(None));
    };
    let me = match api::me_view(&state, &caller).await {
        Ok(m) => m,
        Err(e) => return error_page(Some(&caller), e),
    };
    page(
        StatusCode::OK,
        "Library",
        Some(&caller),
        html! {
            h1 { "Hello, " (me.user.display_name) }
            @if caller.kind == UserKind::Account {
                p { a href="/my-media" { "My Media" } }
            }
            h2 { "Live rooms" }
            @if me.live_rooms.is_empty() { p.empty { "No live rooms." } }
            ul id="live-rooms" {
                @for r in &me.live_rooms {
                    li {
                        (r.name)
                        @if r.my_role == Role::Moderator {
                            " (moderator) — "
                            a href={ "/live-rooms/" (r.id) "/recordings" } { "Breakout recordings" }
                        } @else {
                            " (participant)"
                        }
                    }
                }
            }
            @if caller.kind == UserKind::Account {
                h2 { "Channels" }
                @if me.channels.is_empty() { p.empty { "No channels." } }
                ul id="channels" {
                    @for c in &me.channels {
                        li { a href={ "/channels/" (c.id) } { (c.name) } }
                    }
                }
            }
        },
    )
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return page(
            StatusCode::BAD_REQUEST,
            "Sign in",
            None,
            sign_in_form(Some("Enter a username and a password.")),
        );
    };
    let username = f.username.trim();
    if username.is_empty() || f.password.is_empty() {
        return page(
            StatusCode::BAD_REQUEST,
            "Sign in",
            None,
            sign_in_form(Some("Enter a username and a password.")),
        );
    }
    let wrong = || {
        page(
            StatusCode::UNAUTHORIZED,
            "Sign in",
            None,
            sign_in_form(Some("Wrong username or password.")),
        )
    };
    if username.len() > 64 || f.password.len() > 1024 {
        return wrong();
    }
    let user_id = match api::check_password(&state, username, &f.password).await {
        Ok(Some(id)) => id,
        Ok(None) => return wrong(),
        Err(e) => return error_page(None, e),
    };
    let session = match api::new_session(&state, &user_id).await {
        Ok(s) => s,
        Err(e) => return error_page(None, e),
    };
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}",
        session.token,
        state.config.token_ttl.as_secs()
    );
    let mut resp = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = auth::session_cookie(&headers) {
        let res = sqlx::query("DELETE FROM tokens WHERE token_hash = $1")
            .bind(auth::token_hash(&token))
            .execute(&state.classroom.pool)
            .await;
        if let Err(e) = res {
            return error_page(None, e.into());
        }
    }
    let mut resp = Redirect::to("/").into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("classroom_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    resp
}

fn duration(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn size(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / MIB)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

fn media_table(entries: &[MediaEntry], show_room: bool) -> Markup {
    html! {
        @if entries.is_empty() {
            p.empty { "No recordings yet." }
        } @else {
            table {
                thead { tr {
                    th { "Title" } th { "Recorded by" }
                    @if show_room { th { "Room" } }
                    th { "Started (UTC)" } th { "Duration" } th { "Size" }
                } }
                tbody {
                    @for e in entries {
                        tr.recording data-media-id=(e.id) {
                            td { a href={ "/media/" (e.id) } { (e.title) } }
                            td { (e.recorder.display_name) @if e.recorder.kind == UserKind::Guest { " (guest)" } }
                            @if show_room { td { (e.live_room_name) " / " (e.breakout_room_name) } }
                            td { (e.started_at.get(..19).unwrap_or(&e.started_at).replace('T', " ")) }
                            td { (duration(e.duration_ms)) }
                            td { (size(e.size)) }
                        }
                    }
                }
            }
        }
    }
}

fn to_sign_in() -> Response {
    Redirect::to("/").into_response()
}

async fn recordings_page(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    Path(id): Path<String>,
) -> Response {
    let Some(caller) = caller else {
        return to_sign_in();
    };
    if !is_id(&id) {
        return error_page(Some(&caller), ApiError::not_found("no such page"));
    }
    let pool = &state.classroom.pool;
    let room = match access::moderate_live_room(pool, &caller, &id).await {
        Ok(r) => r,
        Err(e) => return error_page(Some(&caller), e),
    };
    let view = match library::breakout_recordings(pool, &room).await {
        Ok(v) => v,
        Err(e) => return error_page(Some(&caller), e.into()),
    };
    page(
        StatusCode::OK,
        "Breakout recordings",
        Some(&caller),
        html! {
            p { "Media Manager › " (view.live_room_name) }
            h1 { "Breakout recordings" }
            @for f in &view.folders {
                section.folder data-breakout-room=(f.breakout_room.name) {
                    h2 { (f.breakout_room.name) }
                    (media_table(&f.entries, false))
                }
            }
        },
    )
}

async fn my_media_page(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
) -> Response {
    let Some(caller) = caller else {
        return to_sign_in();
    };
    if caller.kind != UserKind::Account {
        return error_page(
            Some(&caller),
            ApiError::forbidden("guests have no My Media"),
        );
    }
    match library::my_media(&state.classroom.pool, &caller.user_id).await {
        Ok(entries) => page(
            StatusCode::OK,
            "My Media",
            Some(&caller),
            html! { h1 { "My Media" } (media_table(&entries, true)) },
        ),
        Err(e) => error_page(Some(&caller), e.into()),
    }
}

async fn channel_page(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    Path(id): Path<String>,
) -> Response {
    let Some(caller) = caller else {
        return to_sign_in();
    };
    let ch = match api::member_channel(&state, &caller, &id).await {
        Ok(c) => c,
        Err(e) => return error_page(Some(&caller), e),
    };
    match library::channel_media(&state.classroom.pool, &ch.id).await {
        Ok(entries) => page(
            StatusCode::OK,
            &ch.name,
            Some(&caller),
            html! { h1 { (ch.name) } (media_table(&entries, true)) },
        ),
        Err(e) => error_page(Some(&caller), e.into()),
    }
}

async fn media_page(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    Path(id): Path<String>,
) -> Response {
    let Some(caller) = caller else {
        return to_sign_in();
    };
    let m = match api::visible_media(&state, &caller, &id).await {
        Ok(m) => m.entry,
        Err(e) => return error_page(Some(&caller), e),
    };
    page(
        StatusCode::OK,
        &m.title,
        Some(&caller),
        html! {
            p { (m.live_room_name) " › " (m.breakout_room_name) }
            h1 { (m.title) }
            video id="player" controls preload="metadata" src=(m.download_url) {
                "Your browser cannot play this video; " a href=(m.download_url) { "download it" } "."
            }
            dl {
                dt { "Recorded by" } dd { (m.recorder.display_name) }
                dt { "Started (UTC)" } dd { (m.started_at) }
                dt { "Duration" } dd { (duration(m.duration_ms)) }
                dt { "Size" } dd { (size(m.size)) " (" (m.size) " bytes)" }
                dt { "SHA-256" } dd { code { (m.sha256) } }
            }
            p { a href=(m.download_url) download=(m.filename) { "Download" } }
        },
    )
}
