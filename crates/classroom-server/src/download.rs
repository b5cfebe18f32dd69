//! Serving a media file: whole, or one byte range (`Range: bytes=...`, answered 206 with
//! `Content-Range`), which is what lets a `<video>` element seek. The file is read on a
//! blocking thread in 256 KiB pieces and streamed; it is never loaded whole.

use std::io::Read;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::library::MediaRow;
use crate::server::AppState;

#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    Full,
    /// Inclusive byte positions.
    Part(u64, u64),
    Unsatisfiable,
}

/// Reads a `Range` header for a file of `size` bytes. Anything we do not serve as one range
/// (several ranges, other units, garbage) means the whole file, as HTTP allows.
fn parse_range(value: Option<&HeaderValue>, size: u64) -> RangeRequest {
    let Some(spec) = value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.len() <= 19 && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (a.trim(), b.trim()) {
        ("", n) => match num(n) {
            Some(0) => RangeRequest::Unsatisfiable,
            Some(n) => RangeRequest::Part(size - n.min(size), size - 1),
            None => RangeRequest::Full,
        },
        (s, "") => match num(s) {
            Some(s) if s < size => RangeRequest::Part(s, size - 1),
            Some(_) => RangeRequest::Unsatisfiable,
            None => RangeRequest::Full,
        },
        (s, e) => match (num(s), num(e)) {
            (Some(s), Some(e)) if s <= e && s < size => RangeRequest::Part(s, e.min(size - 1)),
            (Some(s), Some(e)) if s <= e => RangeRequest::Unsatisfiable,
            _ => RangeRequest::Full,
        },
    }
}

/// `Content-Disposition` with an ASCII fallback name and the UTF-8 one percent-encoded, so no
/// title or file name can break out of the header.
fn disposition(filename: &str) -> HeaderValue {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " ._-()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in filename.bytes() {
        if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&format!(
        "inline; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or(HeaderValue::from_static("inline"))
}

pub(crate) async fn respond(
    state: &AppState,
    m: &MediaRow,
    req: &HeaderMap,
    head_only: bool,
) -> Result<Response, ApiError> {
    let size = m.entry.size;
    let etag = format!("\"{}\"", m.entry.sha256);
    let mut range = parse_range(req.get(header::RANGE), size);
    if let Some(if_range) = req.get(header::IF_RANGE) {
        if if_range.as_bytes() != etag.as_bytes() {
            range = RangeRequest::Full;
        }
    }
    let mut h = HeaderMap::new();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    let (status, start, len) = match range {
        RangeRequest::Full => (StatusCode::OK, 0, size),
        RangeRequest::Part(s, e) => {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {s}-{e}/{size}")) {
                h.insert(header::CONTENT_RANGE, v);
            }
            (StatusCode::PARTIAL_CONTENT, s, e - s + 1)
        }
        RangeRequest::Unsatisfiable => {
            let mut e = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("the range is outside the file's {size} bytes"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                e = e.with_header(header::CONTENT_RANGE, v);
            }
            return Err(e);
        }
    };
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(&m.entry.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CONTENT_DISPOSITION, disposition(&m.entry.filename));
    if head_only {
        return Ok((status, h, Body::empty()).into_response());
    }

    let storage = state.classroom.storage.clone();
    let key = m.storage_key.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let mut reader = match storage.open_read(&key, start) {
            Ok(r) => r.take(len),
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        let mut left = len;
        while left > 0 {
            let mut buf = vec![0u8; usize::try_from(left.min(256 * 1024)).unwrap_or(256 * 1024)];
            match reader.read(&mut buf) {
                Ok(0) => {
                    let _ = tx.blocking_send(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "media file is shorter than its entry says",
                    )));
                    return;
                }
                Ok(n) => {
                    buf.truncate(n);
                    left -= n as u64;
                    // The client went away: stop reading.
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok((status, h, Body::from_stream(stream)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |s: &str| {
            parse_range(
                Some(&HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""))),
                1000,
            )
        };
        assert_eq!(parse_range(None, 1000), RangeRequest::Full);
        assert_eq!(r("bytes=0-"), RangeRequest::Part(0, 999));
        assert_eq!(r("bytes=0-0"), RangeRequest::Part(0, 0));
        assert_eq!(r("bytes=500-"), RangeRequest::Part(500, 999));
        assert_eq!(r("bytes=500-2000"), RangeRequest::Part(500, 999));
        assert_eq!(r("bytes=-100"), RangeRequest::Part(900, 999));
        assert_eq!(r("bytes=-5000"), RangeRequest::Part(0, 999));
        assert_eq!(r("bytes=1000-"), RangeRequest::Unsatisfiable);
        assert_eq!(r("bytes=1000-1001"), RangeRequest::Unsatisfiable);
        assert_eq!(r("bytes=-0"), RangeRequest::Unsatisfiable);
        for ignored in [
            "bytes=5-1",
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=a-b",
            "bytes=-",
            "bytes=99999999999999999999-",
        ] {
            assert_eq!(r(ignored), RangeRequest::Full, "{ignored}");
        }
        let d = disposition("Gruppe \"A\"\r\n.mp4");
        let s = d.to_str().unwrap_or("");
        assert!(
            s.starts_with("inline; filename=\"Gruppe _A___.mp4\""),
            "{s}"
        );
    }
}
