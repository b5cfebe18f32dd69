//! Who is calling: argon2 password hashes, opaque bearer tokens (stored as SHA-256, so the
//! database alone signs nobody in), and the extractors that turn a request's
//! `Authorization: Bearer` header, or the web page's session cookie, into a [`Caller`].

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use classroom_api::UserKind;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::db::{self, now_ms};
use crate::error::{ApiError, Error};
use crate::server::AppState;

/// Name of the web page's session cookie (same token as the bearer one).
pub const SESSION_COOKIE: &str = "classroom_session";

/// An argon2id hash (PHC string) of `password` with a fresh salt. Slow on purpose: call it
/// from a blocking thread.
pub fn hash_password(password: &str) -> Result<String, Error> {
    let salt = SaltString::encode_b64(&db::random_bytes::<16>()?)
        .map_err(|e| Error::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Hash(e.to_string()))
}

/// Whether `password` matches `hash`. A malformed hash never matches.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A new bearer token and the hash under which it is stored.
pub fn new_token() -> Result<(String, String), Error> {
    let token = format!("brt_{}", URL_SAFE_NO_PAD.encode(db::random_bytes::<32>()?));
    let hash = token_hash(&token);
    Ok((token, hash))
}

pub fn token_hash(token: &str) -> String {
    db::hex(&Sha256::digest(token.as_bytes()))
}

/// Stores a new token for `user_id`; returns it and its expiry (ms).
pub async fn issue_token(
    pool: &sqlx::SqlitePool,
    user_id: &str,
    ttl: std::time::Duration,
) -> Result<(String, i64), Error> {
    let (token, hash) = new_token()?;
    let now = now_ms();
    let expires = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
    sqlx::query(
        "INSERT INTO tokens (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&hash)
    .bind(user_id)
    .bind(now)
    .bind(expires)
    .execute(pool)
    .await?;
    Ok((token, expires))
}

/// The signed-in user (an account or a guest) making a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub kind: UserKind,
    pub display_name: String,
    pub username: Option<String>,
    /// Guests belong to exactly one live room.
    pub guest_live_room_id: Option<String>,
    /// Hash of the token used, so signing out revokes exactly this session.
    pub token_hash: String,
}

impl Caller {
    pub fn is_account(&self) -> bool {
        self.kind == UserKind::Account
    }
    pub fn api_user(&self) -> classroom_api::User {
        classroom_api::User {
            id: self.user_id.clone(),
            display_name: self.display_name.clone(),
            username: self.username.clone(),
            kind: self.kind,
        }
    }
}

/// Looks a token up; `None` for unknown or expired tokens.
pub async fn caller_for_token(
    pool: &sqlx::SqlitePool,
    token: &str,
) -> Result<Option<Caller>, sqlx::Error> {
    // Anything that is not one of our tokens is rejected before touching the database.
    if !token.starts_with("brt_") || token.len() > 100 {
        return Ok(None);
    }
    let hash = token_hash(token);
    let row = sqlx::query(
        "SELECT u.id, u.kind, u.display_name, u.username, u.guest_live_room_id
         FROM tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = $1 AND t.expires_at > $2",
    )
    .bind(&hash)
    .bind(now_ms())
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| Caller {
        user_id: r.get("id"),
        kind: if r.get::<String, _>("kind") == "guest" {
            UserKind::Guest
        } else {
            UserKind::Account
        },
        display_name: r.get("display_name"),
        username: r.get("username"),
        guest_live_room_id: r.get("guest_live_room_id"),
        token_hash: hash,
    }))
}

/// The token a request carries: the bearer header, or for GET/HEAD only the session cookie
/// (so a cross-site form can never make a signed-in browser change anything through the API).
pub fn request_token(parts: &Parts) -> Option<String> {
    if let Some(v) = parts.headers.get(header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_string());
    }
    if parts.method == Method::GET || parts.method == Method::HEAD {
        return session_cookie(&parts.headers);
    }
    None
}

/// The session cookie's value, if any.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == SESSION_COOKIE).then(|| v.to_string())
        })
}

/// Extractor: the caller, or 401.
impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match MaybeCaller::from_request_parts(parts, state).await?.0 {
            Some(c) => Ok(c),
            // A token was sent but is unknown: the person did sign in, and that sign-in ended
            // (signed out, or the token was mistyped); "sign in first" would confuse them.
            None if request_token(parts).is_some() => Err(ApiError::unauthorized_with(
                "this sign-in is no longer valid (signed out or mistyped token): sign in again",
            )),
            None => Err(ApiError::unauthorized()),
        }
    }
}

/// Extractor: the caller if the request is signed in.
pub struct MaybeCaller(pub Option<Caller>);

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = request_token(parts) else {
            return Ok(MaybeCaller(None));
        };
        Ok(MaybeCaller(
            caller_for_token(&state.classroom.pool, &token).await?,
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn passwords_and_tokens() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "correct horsf"));
        assert!(!verify_password("not a hash", "x"));
        let (t1, h1) = new_token().unwrap();
        let (t2, _) = new_token().unwrap();
        assert_ne!(t1, t2);
        assert_eq!(token_hash(&t1), h1);
        assert!(!h1.contains(&t1));
    }
}
