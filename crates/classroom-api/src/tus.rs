//! The tus 1.0 protocol as this server speaks it: header names, the `Upload-Metadata` keys a
//! recording upload carries, and the one header this server adds (`Media-Entry`).

/// Where uploads are created (`POST`); an upload's URL is this plus its id.
pub const FILES_PATH: &str = "/files/";
/// The only protocol version spoken.
pub const VERSION: &str = "1.0.0";
/// Extensions answered in `Tus-Extension`.
pub const EXTENSIONS: &str = "creation,creation-with-upload,checksum,termination,expiration";
/// Algorithms accepted in `Upload-Checksum`. `crc32` (IEEE, as in gzip; the 4-byte value
/// big-endian) catches transmission errors at a fraction of a hash's cost, which matters when
/// every chunk of a long recording is checked on both ends; the SHA family is there for
/// clients that want it (tus requires sha1).
pub const CHECKSUM_ALGORITHMS: &str = "sha1,sha256,crc32";
/// Content type of `PATCH` bodies (and of a `POST` carrying the first bytes).
pub const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

pub const TUS_RESUMABLE: &str = "tus-resumable";
pub const TUS_VERSION: &str = "tus-version";
pub const TUS_EXTENSION: &str = "tus-extension";
pub const TUS_MAX_SIZE: &str = "tus-max-size";
pub const TUS_CHECKSUM_ALGORITHM: &str = "tus-checksum-algorithm";
pub const UPLOAD_OFFSET: &str = "upload-offset";
pub const UPLOAD_LENGTH: &str = "upload-length";
pub const UPLOAD_METADATA: &str = "upload-metadata";
pub const UPLOAD_CHECKSUM: &str = "upload-checksum";
pub const UPLOAD_EXPIRES: &str = "upload-expires";
pub const UPLOAD_DEFER_LENGTH: &str = "upload-defer-length";
/// This server's addition: on the response that completes an upload (and on `HEAD` of a
/// complete upload), the id of the media entry it became.
pub const MEDIA_ENTRY: &str = "media-entry";

/// HTTP status for a checksum that does not match the chunk (tus checksum extension).
pub const STATUS_CHECKSUM_MISMATCH: u16 = 460;

/// The most characters a recording's title may have (after trimming).
pub const MAX_TITLE_CHARS: usize = 200;
/// The most characters a recording's file name may have.
pub const MAX_FILENAME_CHARS: usize = 200;

/// Characters no typed name, title or file name may contain: control characters (newlines,
/// NULs, terminal escapes) and the bidi controls that can make `evil\u{202E}4pm.exe` read as
/// `evilexe.mp4`. Shared so the app refuses at once what the server would refuse later.
pub fn is_forbidden_in_text(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// Why a typed title or name breaks the rules the server applies (see [`text_problem`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextProblem {
    Empty,
    TooLong,
    /// A character [`is_forbidden_in_text`].
    Forbidden,
}

/// Checks `value`, trimmed, against the server's rule for a title or name: 1..=`max`
/// characters, none [`is_forbidden_in_text`]. One rule, so the app refuses exactly what the
/// server would; each side words the answer for its own audience.
pub fn text_problem(value: &str, max: usize) -> Option<TextProblem> {
    let v = value.trim();
    if v.is_empty() {
        Some(TextProblem::Empty)
    } else if v.chars().count() > max {
        Some(TextProblem::TooLong)
    } else if v.chars().any(is_forbidden_in_text) {
        Some(TextProblem::Forbidden)
    } else {
        None
    }
}

/// Whether a file name would name a path rather than a file (a separator, `.` or `..`).
pub fn is_path_like(name: &str) -> bool {
    name.contains(['/', '\\']) || matches!(name, "." | "..")
}

/// `Upload-Metadata` keys (values are base64 in the header, UTF-8 once decoded).
pub mod meta {
    /// Required: the live room's id.
    pub const LIVE_ROOM: &str = "live_room";
    /// Required: the breakout room's id (must belong to the live room).
    pub const BREAKOUT_ROOM: &str = "breakout_room";
    /// Required: the recording's title, 1–[`super::MAX_TITLE_CHARS`] characters, none
    /// [`super::is_forbidden_in_text`].
    pub const TITLE: &str = "title";
    /// Required: when the recording started, RFC 3339.
    pub const STARTED_AT: &str = "started_at";
    /// Required: the recording's duration in milliseconds (a decimal integer).
    pub const DURATION_MS: &str = "duration_ms";
    /// Optional: the file's name, without any directory, at most
    /// [`super::MAX_FILENAME_CHARS`] characters (default `recording.mp4`).
    pub const FILENAME: &str = "filename";
    /// Optional: the file's media type (default `video/mp4`).
    pub const FILETYPE: &str = "filetype";
}
