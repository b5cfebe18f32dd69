//! The classroom server's JSON API as the app uses it (`docs/API.md`): sign in, join as a
//! guest, who am I, a live room with its breakout rooms and the record permission.

use std::time::Duration;

use classroom_api::{
    ErrorBody, GuestJoinRequest, GuestJoinResponse, LiveRoom, Me, SessionResponse,
    SetPermissionRequest, SignInRequest,
};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What went wrong talking to the server, sorted by what the user can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadAddress(String),
    #[error("the classroom server at {server} does not answer ({reason})")]
    Unreachable { server: String, reason: String },
    /// 401: the token is gone or wrong.
    #[error("{0}")]
    SignIn(String),
    /// 403 and friends: the server says no.
    #[error("{0}")]
    Refused(String),
    /// 400, 404, 409, 413: the request was wrong.
    #[error("{0}")]
    Rejected(String),
    #[error("the classroom server failed: {0}")]
    Server(String),
}

/// A client for one server, with or without a token.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// Turns what a person typed into a server base URL: `host:port` gets `http://`, a trailing
/// slash goes, anything that is not an http(s) URL with a host is refused.
pub fn normalize_server(input: &str) -> Result<String, ApiError> {
    let t = input.trim();
    if t.is_empty() {
        return Err(ApiError::BadAddress(
            "enter the classroom server's address".into(),
        ));
    }
    let with_scheme = if t.contains("://") {
        t.to_owned()
    } else {
        format!("http://{t}")
    };
    let url = reqwest::Url::parse(&with_scheme)
        .map_err(|e| ApiError::BadAddress(format!("{t:?} is not a server address ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ApiError::BadAddress(format!(
            "{t:?} is not an http:// or https:// server address"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ApiError::BadAddress(format!(
            "{t:?}: give the server's address without ? or #"
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

impl ApiClient {
    pub fn new(server: &str, token: Option<String>) -> Result<Self, ApiError> {
        let base = normalize_server(server)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| ApiError::Server(e.to_string()))?;
        Ok(Self { http, base, token })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The bearer token, once signed in.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub fn with_token(&self, token: String) -> Self {
        Self {
            token: Some(token),
            ..self.clone()
        }
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| ApiError::Unreachable {
            server: self.base.clone(),
            reason: short_reason(&e),
        })?;
        let status = resp.status();
        if status.is_success() {
            return resp
                .json::<T>()
                .await
                .map_err(|e| ApiError::Server(format!("unexpected answer: {e}")));
        }
        let message = resp
            .json::<ErrorBody>()
            .await
            .map(|b| b.error)
            .unwrap_or_else(|_| status.to_string());
        Err(match status {
            StatusCode::UNAUTHORIZED => ApiError::SignIn(message),
            StatusCode::FORBIDDEN => ApiError::Refused(message),
            s if s.is_client_error() => ApiError::Rejected(message),
            _ => ApiError::Server(message),
        })
    }

    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
    ) -> Result<SessionResponse, ApiError> {
        let body = SignInRequest {
            username: username.to_owned(),
            password: password.to_owned(),
        };
        self.call(Method::POST, "/api/sessions", Some(&body)).await
    }

    pub async fn join_as_guest(
        &self,
        invite_code: &str,
        display_name: &str,
    ) -> Result<GuestJoinResponse, ApiError> {
        let body = GuestJoinRequest {
            invite_code: invite_code.to_owned(),
            display_name: display_name.to_owned(),
        };
        self.call(Method::POST, "/api/guests", Some(&body)).await
    }

    pub async fn me(&self) -> Result<Me, ApiError> {
        self.call::<(), _>(Method::GET, "/api/me", None).await
    }

    pub async fn live_room(&self, id: &str) -> Result<LiveRoom, ApiError> {
        let path = format!("/api/live-rooms/{}", path_segment(id)?);
        self.call::<(), _>(Method::GET, &path, None).await
    }

    pub async fn set_permission(&self, id: &str, allowed: bool) -> Result<LiveRoom, ApiError> {
        let path = format!("/api/live-rooms/{}/permission", path_segment(id)?);
        let body = SetPermissionRequest {
            participants_may_record: allowed,
        };
        self.call(Method::PUT, &path, Some(&body)).await
    }
}

/// Ids come from the server, but never let one change the path it is put in.
fn path_segment(id: &str) -> Result<&str, ApiError> {
    if !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Ok(id)
    } else {
        Err(ApiError::Rejected(format!("{id:?} is not a valid id")))
    }
}

/// reqwest's errors nest the useful part ("Connection refused") deep in their sources.
fn short_reason(e: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    let mut last = e.to_string();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    if e.is_timeout() {
        "timed out".into()
    } else {
        last
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn normalizes_what_people_type() {
        let ok = [
            ("127.0.0.1:8080", "http://127.0.0.1:8080"),
            (" http://localhost:8080/ ", "http://localhost:8080"),
            ("https://class.example/", "https://class.example"),
            (
                "https://class.example/school",
                "https://class.example/school",
            ),
        ];
        for (input, want) in ok {
            assert_eq!(normalize_server(input).unwrap(), want, "{input:?}");
        }
        let bad = [
            "",
            "   ",
            "ftp://class.example",
            "http://",
            "http://a b",
            "file:///etc/passwd",
            "http://x/?q=1",
        ];
        for input in bad {
            assert!(normalize_server(input).is_err(), "{input:?}");
        }
    }

    #[test]
    fn ids_cannot_escape_their_path_segment() {
        for id in ["lr_abc", "br-1", "A9"] {
            assert!(path_segment(id).is_ok(), "{id}");
        }
        for id in ["", "../x", "a/b", "a?b", "a b", "%2e%2e"] {
            assert!(path_segment(id).is_err(), "{id}");
        }
    }
}
