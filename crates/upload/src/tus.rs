//! A tus 1.0 client (core protocol, creation, checksum, termination) on reqwest. One method per
//! request; the policy of what to do when a request fails lives in [`crate::runner`].
//!
//! Works with any tus 1.0 server that offers creation: the classroom server's `Media-Entry`
//! header is read when present and ignored otherwise.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::TusError;

pub use classroom_api::tus::{MEDIA_ENTRY, OFFSET_OCTET_STREAM, VERSION as TUS_VERSION};

/// How a request authenticates: a bearer token and/or extra headers (e.g. an API key).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for Auth {
    // Secrets stay out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("bearer", &self.bearer.as_ref().map(|_| "<redacted>"))
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Auth {
    pub fn bearer(token: impl Into<String>) -> Self {
        Auth {
            bearer: Some(token.into()),
            headers: Vec::new(),
        }
    }

    /// The headers to add to every request; an invalid name or value is a clear error.
    pub fn header_map(&self) -> Result<HeaderMap, TusError> {
        let mut h = HeaderMap::new();
        if let Some(t) = &self.bearer {
            let mut v = HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| {
                TusError::Request("the token has characters a header cannot carry".into())
            })?;
            v.set_sensitive(true);
            h.insert(reqwest::header::AUTHORIZATION, v);
        }
        for (k, v) in &self.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| TusError::Request(format!("invalid header name {k:?}")))?;
            let mut value = HeaderValue::from_str(v)
                .map_err(|_| TusError::Request(format!("invalid value for header {k}")))?;
            value.set_sensitive(true);
            h.append(name, value);
        }
        Ok(h)
    }
}

/// What `OPTIONS` said about the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerInfo {
    pub versions: Vec<String>,
    pub extensions: Vec<String>,
    pub max_size: Option<u64>,
    pub checksum_algorithms: Vec<String>,
}

impl ServerInfo {
    /// The checksum to send with every chunk: the cheapest the server lists (a CRC finds
    /// transmission errors as well as a hash, at a fraction of the CPU on both ends), sha256
    /// when the server did not answer OPTIONS (sending it to a server without the extension
    /// is harmless: tus servers ignore unknown headers), none when it lists none we know.
    pub fn checksum(&self) -> Option<ChecksumAlgorithm> {
        if self.extensions.is_empty() {
            return Some(ChecksumAlgorithm::Sha256);
        }
        ChecksumAlgorithm::PREFERENCE
            .into_iter()
            .find(|a| self.checksum_algorithms.iter().any(|s| s == a.name()))
    }
}

/// An `Upload-Checksum` algorithm of the tus checksum extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    /// CRC-32 (IEEE), the 4-byte value big-endian.
    Crc32,
    Sha256,
    /// The one every tus server with the checksum extension must accept.
    Sha1,
}

impl ChecksumAlgorithm {
    /// Cheapest first.
    pub const PREFERENCE: [ChecksumAlgorithm; 3] = [Self::Crc32, Self::Sha256, Self::Sha1];

    pub fn name(self) -> &'static str {
        match self {
            Self::Crc32 => "crc32",
            Self::Sha256 => "sha256",
            Self::Sha1 => "sha1",
        }
    }

    /// An incremental hasher for this algorithm.
    pub fn hasher(self) -> ChecksumHasher {
        ChecksumHasher {
            alg: self,
            state: match self {
                Self::Crc32 => HasherState::Crc32(crc32fast::Hasher::new()),
                Self::Sha256 => HasherState::Sha256(Sha256::new()),
                Self::Sha1 => HasherState::Sha1(sha1::Sha1::new()),
            },
        }
    }

    /// The `Upload-Checksum` header value for a CRC-32 computed elsewhere.
    pub fn crc32_header(crc: u32) -> String {
        format!(
            "{} {}",
            Self::Crc32.name(),
            STANDARD.encode(crc.to_be_bytes())
        )
    }

    /// The `Upload-Checksum` header value for `data`.
    pub fn header(self, data: &[u8]) -> String {
        let mut h = self.hasher();
        h.update(data);
        h.finish()
    }
}

/// A checksum computed piece by piece (for a body sent as it is read).
pub struct ChecksumHasher {
    alg: ChecksumAlgorithm,
    state: HasherState,
}

enum HasherState {
    Crc32(crc32fast::Hasher),
    Sha256(Sha256),
    Sha1(sha1::Sha1),
}

impl ChecksumHasher {
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            HasherState::Crc32(h) => h.update(data),
            HasherState::Sha256(h) => h.update(data),
            HasherState::Sha1(h) => h.update(data),
        }
    }

    /// The `Upload-Checksum` value (`algorithm base64(digest)`).
    pub fn finish(self) -> String {
        let digest = match self.state {
            HasherState::Crc32(h) => return ChecksumAlgorithm::crc32_header(h.finalize()),
            HasherState::Sha256(h) => h.finalize().to_vec(),
            HasherState::Sha1(h) => h.finalize().to_vec(),
        };
        format!("{} {}", self.alg.name(), STANDARD.encode(digest))
    }
}

/// Where an upload stands on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadState {
    pub offset: u64,
    pub length: Option<u64>,
    /// The classroom server's media entry id, once the upload is complete.
    pub media_entry: Option<String>,
}

/// Settings of a [`TusClient`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Connection set-up limit: an unreachable server is noticed quickly.
    pub connect_timeout: Duration,
    /// Limit for a whole `PATCH` (a chunk must go through within it).
    pub request_timeout: Duration,
    /// Limit for every other request (`OPTIONS`, `POST`, `HEAD`, `DELETE`, `GET`): they carry
    /// no body, so a server that takes longer is stuck, and waiting five minutes on one would
    /// look like a hang.
    pub control_timeout: Duration,
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(10),
            // A 4 MiB chunk in 5 minutes is ~14 kB/s: slower than that is treated as a stall.
            request_timeout: Duration::from_secs(300),
            control_timeout: Duration::from_secs(30),
            user_agent: format!("breakout-recorder-upload/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// A tus client for one set of credentials.
#[derive(Debug, Clone)]
pub struct TusClient {
    http: reqwest::Client,
    auth: HeaderMap,
    control_timeout: Duration,
}

/// Encodes `Upload-Metadata`: `key base64(value)` pairs joined by commas.
pub fn encode_metadata(meta: &BTreeMap<String, String>) -> String {
    meta.iter()
        .map(|(k, v)| format!("{k} {}", STANDARD.encode(v.as_bytes())))
        .collect::<Vec<_>>()
        .join(",")
}

fn method_name(m: &Method) -> &'static str {
    match *m {
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "GET",
    }
}

/// One line describing a transport error, with its root cause (reqwest's own message is vague).
fn network_reason(e: &reqwest::Error) -> String {
    let mut reason = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else {
        "connection lost".to_string()
    };
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut last = None;
    while let Some(s) = src {
        last = Some(s.to_string());
        src = s.source();
    }
    if let Some(l) = last {
        reason.push_str(": ");
        reason.push_str(&l);
    }
    reason
}

/// Why an answer could not be read, when something answered but not in usable HTTP (an SSH
/// or mail server, a database on the port given, a server sending megabytes of headers):
/// waiting will not change that, unlike a refused or cut connection.
fn unreadable_answer(e: &reqwest::Error) -> Option<&'static str> {
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            if h.is_parse_too_large() {
                return Some("the server's answer has more headers than a client reads");
            }
            if h.is_parse() {
                return Some("the server's answer is not HTTP; check the address and port");
            }
        }
        src = s.source();
    }
    None
}

impl TusClient {
    pub fn new(config: &ClientConfig, auth: &Auth) -> Result<Self, TusError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(config.user_agent.clone())
            // tus answers are never redirects we should follow with a body.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| TusError::Request(format!("cannot set up HTTP: {e}")))?;
        Ok(TusClient {
            http,
            auth: auth.header_map()?,
            control_timeout: config.control_timeout,
        })
    }

    fn request(&self, method: Method, url: &Url) -> reqwest::RequestBuilder {
        let timeout = method != Method::PATCH;
        let req = self
            .http
            .request(method, url.clone())
            .headers(self.auth.clone())
            .header("tus-resumable", TUS_VERSION);
        if timeout {
            req.timeout(self.control_timeout)
        } else {
            req
        }
    }

    /// Sends a request; transport failures become [`TusError::Network`], any status outside
    /// `ok` becomes [`TusError::Status`] with the server's message.
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        method: &Method,
        url: &Url,
        ok: &[StatusCode],
    ) -> Result<reqwest::Response, TusError> {
        let resp = req.send().await.map_err(|e| {
            if let Some(reason) = unreadable_answer(&e) {
                TusError::Protocol {
                    url: url.to_string(),
                    reason: reason.into(),
                }
            } else {
                TusError::Network {
                    url: url.to_string(),
                    reason: network_reason(&e),
                }
            }
        })?;
        if ok.contains(&resp.status()) {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        // The body explains the status; a short read limit keeps a hostile server from
        // flooding memory (messages are one line).
        let message = if *method == Method::HEAD {
            String::new()
        } else {
            read_message(resp).await
        };
        Err(TusError::Status {
            method: method_name(method),
            url: url.to_string(),
            status,
            message,
        })
    }

    /// `OPTIONS`: the server's versions, extensions and limits.
    pub async fn options(&self, endpoint: &Url) -> Result<ServerInfo, TusError> {
        let m = Method::OPTIONS;
        let resp = self
            .send(
                self.request(m.clone(), endpoint),
                &m,
                endpoint,
                &[StatusCode::OK, StatusCode::NO_CONTENT],
            )
            .await?;
        let h = resp.headers();
        let list = |name: &str| -> Vec<String> {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .map(|s| {
                    s.split(',')
                        .map(|x| x.trim().to_string())
                        .filter(|x| !x.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(ServerInfo {
            versions: list("tus-version"),
            extensions: list("tus-extension"),
            max_size: header_u64(h, "tus-max-size"),
            checksum_algorithms: list("tus-checksum-algorithm"),
        })
    }

    /// `POST`: creates an upload of `length` bytes; returns its URL (relative `Location`s are
    /// resolved against the endpoint).
    pub async fn create(
        &self,
        endpoint: &Url,
        length: u64,
        metadata: &BTreeMap<String, String>,
    ) -> Result<Url, TusError> {
        let m = Method::POST;
        let req = self
            .request(m.clone(), endpoint)
            .header("upload-length", length.to_string())
            .header("upload-metadata", encode_metadata(metadata))
            .header(reqwest::header::CONTENT_LENGTH, "0");
        let resp = self.send(req, &m, endpoint, &[StatusCode::CREATED]).await?;
        let loc = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| TusError::Protocol {
                url: endpoint.to_string(),
                reason: "201 Created without a Location header".into(),
            })?;
        if loc.len() > MAX_LOCATION {
            // The queue stores the URL to resume with; one this long is a broken server.
            return Err(TusError::Protocol {
                url: endpoint.to_string(),
                reason: format!(
                    "the upload's Location is {} characters long (at most {MAX_LOCATION})",
                    loc.len()
                ),
            });
        }
        let url = endpoint.join(loc).map_err(|e| TusError::Protocol {
            url: endpoint.to_string(),
            reason: format!("bad Location {loc:?}: {e}"),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(TusError::Protocol {
                url: endpoint.to_string(),
                reason: format!("Location {url} is not an HTTP URL"),
            });
        }
        Ok(url)
    }

    /// `HEAD`: the server's offset (where to resume).
    pub async fn head(&self, upload: &Url) -> Result<UploadState, TusError> {
        let m = Method::HEAD;
        let resp = self
            .send(
                self.request(m.clone(), upload),
                &m,
                upload,
                &[StatusCode::OK, StatusCode::NO_CONTENT],
            )
            .await?;
        let offset =
            header_u64(resp.headers(), "upload-offset").ok_or_else(|| TusError::Protocol {
                url: upload.to_string(),
                reason: "HEAD answer without a valid Upload-Offset".into(),
            })?;
        Ok(UploadState {
            offset,
            length: header_u64(resp.headers(), "upload-length"),
            media_entry: header_str(resp.headers(), MEDIA_ENTRY),
        })
    }

    /// `PATCH`: sends `body` at `offset`, with its `Upload-Checksum` header value when given
    /// (see [`ChecksumAlgorithm::hasher`]; computed by the caller, off the async runtime).
    /// The body should declare its length (bytes, or a body with an exact size hint).
    /// Returns the server's new offset (and the media entry when this completed the upload).
    pub async fn patch(
        &self,
        upload: &Url,
        offset: u64,
        body: impl Into<reqwest::Body>,
        checksum: Option<&str>,
    ) -> Result<UploadState, TusError> {
        let m = Method::PATCH;
        let mut req = self
            .request(m.clone(), upload)
            .header("upload-offset", offset.to_string())
            .header(reqwest::header::CONTENT_TYPE, OFFSET_OCTET_STREAM);
        if let Some(c) = checksum {
            req = req.header("upload-checksum", c);
        }
        let resp = self
            .send(
                req.body(body),
                &m,
                upload,
                &[StatusCode::NO_CONTENT, StatusCode::OK],
            )
            .await?;
        let new =
            header_u64(resp.headers(), "upload-offset").ok_or_else(|| TusError::Protocol {
                url: upload.to_string(),
                reason: "PATCH answer without a valid Upload-Offset".into(),
            })?;
        Ok(UploadState {
            offset: new,
            length: None,
            media_entry: header_str(resp.headers(), MEDIA_ENTRY),
        })
    }

    /// `DELETE` (termination): abandons an unfinished upload and its bytes.
    pub async fn terminate(&self, upload: &Url) -> Result<(), TusError> {
        let m = Method::DELETE;
        self.send(
            self.request(m.clone(), upload),
            &m,
            upload,
            &[StatusCode::NO_CONTENT, StatusCode::OK],
        )
        .await
        .map(|_| ())
    }

    /// `GET` of a JSON document with the same credentials (the classroom server's upload status).
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &Url) -> Result<T, TusError> {
        let m = Method::GET;
        let resp = self
            .send(
                self.http.get(url.clone()).headers(self.auth.clone()),
                &m,
                url,
                &[StatusCode::OK],
            )
            .await?;
        resp.json().await.map_err(|e| TusError::Protocol {
            url: url.to_string(),
            reason: format!("unexpected answer: {e}"),
        })
    }
}

fn header_str(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn header_u64(h: &HeaderMap, name: &str) -> Option<u64> {
    let s = header_str(h, name)?;
    if s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// The longest upload URL accepted from a server (the queue stores it).
const MAX_LOCATION: usize = 2048;

/// At most this much of an error body is read.
const MAX_MESSAGE: usize = 4096;

/// The server's explanation: the JSON `{"error": "..."}` body, or the first line of text.
async fn read_message(mut resp: reqwest::Response) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= MAX_MESSAGE {
            body.truncate(MAX_MESSAGE);
            break;
        }
    }
    #[derive(Deserialize)]
    struct ErrorBody {
        error: String,
    }
    let text = match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(e) => e.error,
        Err(_) => String::from_utf8_lossy(&body).into_owned(),
    };
    one_line(&text)
}

/// A server's error body as one short line: a JSON message as is, an HTML page by its title
/// (a web server's error page would otherwise show as markup), plain text by its first line.
fn one_line(text: &str) -> String {
    let trimmed = text.trim_start();
    let html = trimmed.len() > 1
        && trimmed.as_bytes()[0] == b'<'
        && (trimmed.as_bytes()[1].is_ascii_alphabetic() || trimmed.as_bytes()[1] == b'!');
    let line = if html {
        html_title(trimmed).unwrap_or_else(|| strip_tags(trimmed))
    } else {
        trimmed.lines().next().unwrap_or("").to_string()
    };
    let visible: String = line
        .chars()
        // Bidi controls too: a server must not be able to make the line read differently.
        .map(|c| {
            if classroom_api::tus::is_forbidden_in_text(c) {
                ' '
            } else {
                c
            }
        })
        .collect();
    let words = visible.split_whitespace().collect::<Vec<_>>().join(" ");
    words.chars().take(200).collect()
}

/// The text of the first `<title>` (or `<h1>`) element.
fn html_title(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    for tag in ["title", "h1"] {
        let Some(start) = lower.find(&format!("<{tag}")) else {
            continue;
        };
        let Some(open_end) = lower[start..].find('>') else {
            continue;
        };
        let from = start + open_end + 1;
        let to = lower[from..]
            .find(&format!("</{tag}"))
            .map_or(lower.len(), |e| from + e);
        // Lowercasing ASCII keeps byte positions, so they index `html` too.
        let title = strip_tags(&html[from..to]);
        if !title.trim().is_empty() {
            return Some(title);
        }
    }
    None
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_and_checksum_encoding() {
        let mut m = BTreeMap::new();
        m.insert("title".to_string(), "Group A".to_string());
        m.insert("live_room".to_string(), "lr_1".to_string());
        assert_eq!(encode_metadata(&m), "live_room bHJfMQ==,title R3JvdXAgQQ==");
        // (algorithm, data, header): the published digests of "abc" (CRC-32 0x352441C2).
        let cases = [
            (
                ChecksumAlgorithm::Sha256,
                "sha256 ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=",
            ),
            (ChecksumAlgorithm::Sha1, "sha1 qZk+NkcGgWq6PiVxeFDCbJzQ2J0="),
            (ChecksumAlgorithm::Crc32, "crc32 NSRBwg=="),
        ];
        for (alg, want) in cases {
            assert_eq!(alg.header(b"abc"), want, "{alg:?}");
        }
    }

    #[test]
    fn picks_the_cheapest_checksum_the_server_lists() {
        let info = |ext: &str, algs: &str| ServerInfo {
            extensions: ext
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            checksum_algorithms: algs
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            ..ServerInfo::default()
        };
        // (Tus-Extension, Tus-Checksum-Algorithm, chosen)
        let cases = [
            ("", "", Some(ChecksumAlgorithm::Sha256)),
            (
                "creation,checksum",
                "sha1,sha256,crc32",
                Some(ChecksumAlgorithm::Crc32),
            ),
            (
                "creation,checksum",
                "md5,sha1,sha256",
                Some(ChecksumAlgorithm::Sha256),
            ),
            ("creation,checksum", "sha1", Some(ChecksumAlgorithm::Sha1)),
            ("creation,checksum", "md5", None),
            ("creation", "", None),
        ];
        for (ext, algs, want) in cases {
            assert_eq!(info(ext, algs).checksum(), want, "{ext:?} {algs:?}");
        }
    }

    #[test]
    fn error_bodies_become_one_short_line() {
        let nginx = "<html>\r\n<head><title>501 Not Implemented</title></head>\r\n<body>\r\n<center><h1>501 Not Implemented</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
        let python = "<!DOCTYPE HTML>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\n<title>Error response</title></head><body><h1>Error response</h1><p>Error code: 501</p></body></html>";
        let huge_title = format!("<title>{}</title>", "x".repeat(10_000));
        // (body, line shown)
        let cases = [
            ("live room not found", "live room not found"),
            ("first line\nsecond line", "first line"),
            (nginx, "501 Not Implemented"),
            (python, "Error response"),
            ("<p>no <b>title</b> here</p>", "no title here"),
            ("<h1>Gone</h1>", "Gone"),
            ("a < b > c", "a < b > c"),
            ("bell\u{7}and\u{1b}[31mescape", "bell and [31mescape"),
            ("evil\u{202E}txt.exe", "evil txt.exe"),
            ("", ""),
        ];
        for (body, want) in cases {
            assert_eq!(one_line(body), want, "{body:?}");
        }
        assert_eq!(one_line(&huge_title).chars().count(), 200);
    }

    #[test]
    fn auth_headers_are_validated_and_redacted() {
        let a = Auth {
            bearer: Some("secret-token".into()),
            headers: vec![("x-api-key".into(), "k".into())],
        };
        let h = a.header_map().unwrap();
        assert_eq!(h["authorization"], "Bearer secret-token");
        assert_eq!(h["x-api-key"], "k");
        assert!(!format!("{a:?}").contains("secret"));
        assert!(Auth::bearer("bad\ntoken").header_map().is_err());
        let bad = Auth {
            bearer: None,
            headers: vec![("bad name".into(), "v".into())],
        };
        assert!(bad.header_map().is_err());
    }
}
