//! Checks on text that comes from outside (API bodies, tus metadata, admin commands): lengths,
//! control characters, allowed alphabets. Everything a person typed is stored as typed (after
//! trimming) and escaped on output; it is never used as a file name or in SQL text.

use crate::error::Error;

/// A name or title a person typed: trimmed, 1..=`max` characters, no control characters (no
/// newlines, NULs, escape sequences, or bidi overrides that would disguise a title).
pub fn text(field: &str, value: &str, max: usize) -> Result<String, Error> {
    use classroom_api::tus::TextProblem;
    match classroom_api::tus::text_problem(value, max) {
        None => Ok(value.trim().to_string()),
        Some(TextProblem::Empty) => Err(Error::Invalid(format!("{field} must not be empty"))),
        Some(TextProblem::TooLong) => Err(Error::Invalid(format!(
            "{field} is longer than {max} characters"
        ))),
        Some(TextProblem::Forbidden) => Err(Error::Invalid(format!(
            "{field} must not contain control characters"
        ))),
    }
}

/// A username: 1..=64 of `[A-Za-z0-9._-]`, compared case-sensitively.
pub fn username(value: &str) -> Result<String, Error> {
    let v = value.trim();
    if v.is_empty()
        || v.len() > 64
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(Error::Invalid(
            "username must be 1-64 characters of letters, digits, '.', '_' or '-'".into(),
        ));
    }
    Ok(v.to_string())
}

/// A new password: 8..=1024 bytes.
pub fn new_password(value: &str) -> Result<(), Error> {
    if value.chars().count() < 8 {
        return Err(Error::Invalid(
            "password must be at least 8 characters".into(),
        ));
    }
    if value.len() > 1024 {
        return Err(Error::Invalid("password is longer than 1024 bytes".into()));
    }
    Ok(())
}

/// A file name for a download: no directories, no control characters, not `.` or `..`.
pub fn filename(value: &str) -> Result<String, Error> {
    let v = text("filename", value, classroom_api::tus::MAX_FILENAME_CHARS)?;
    if classroom_api::tus::is_path_like(&v) {
        return Err(Error::Invalid("filename must not contain a path".into()));
    }
    Ok(v)
}

/// A media type such as `video/mp4`: `type/subtype` of token characters.
pub fn media_type(value: &str) -> Result<String, Error> {
    let ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match value.split_once('/') {
        Some((t, s)) if value.len() <= 100 && ok(t) && ok(s) => Ok(value.to_ascii_lowercase()),
        _ => Err(Error::Invalid(
            "filetype must be a media type like video/mp4".into(),
        )),
    }
}

/// Invite codes are case-insensitive and may be typed with spaces around them.
pub fn invite_code(value: &str) -> Result<String, Error> {
    let v = value.trim().to_ascii_lowercase();
    if v.is_empty() || v.len() > 64 || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(Error::Invalid(
            "invite code must be letters, digits and '-'".into(),
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hostile_text_is_refused_and_fine_text_kept() {
        assert_eq!(
            text("t", "  Group 1/2: ../../etc  ", 200).unwrap(),
            "Group 1/2: ../../etc"
        );
        assert_eq!(
            text("t", "Gruppe Ä — 日本 <b>&", 200).unwrap(),
            "Gruppe Ä — 日本 <b>&"
        );
        for bad in [
            "",
            "   ",
            "a\nb",
            "a\u{0}b",
            "\u{1b}[31m",
            "evil\u{202E}4pm.exe",
            "x\ry",
        ] {
            assert!(text("t", bad, 200).is_err(), "{bad:?} accepted");
        }
        assert!(text("t", &"é".repeat(201), 200).is_err());
        assert!(text("t", &"é".repeat(200), 200).is_ok());
        for bad in ["../x.mp4", "a/b", "a\\b", "..", "."] {
            assert!(filename(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(media_type("Video/MP4").unwrap(), "video/mp4");
        for bad in [
            "video",
            "video/",
            "/mp4",
            "video/mp4; x=\"y\"",
            "text/html\r\nX: y",
        ] {
            assert!(media_type(bad).is_err(), "{bad:?} accepted");
        }
        assert!(username("teacher.one").is_ok());
        assert!(username("a b").is_err());
        assert_eq!(invite_code(" ABC-def ").unwrap(), "abc-def");
        assert!(invite_code("a'; DROP").is_err());
        assert!(new_password("short").is_err());
    }
}
