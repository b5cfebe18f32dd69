//! Where a recording goes by default: `<Videos>/Breakout recordings/<room> <date> <time>.mp4`.

use std::path::{Path, PathBuf};

/// The folder name under the user's videos directory.
pub const FOLDER: &str = "Breakout recordings";

/// The user's videos directory (XDG), falling back to `~/Videos`, then the current directory.
pub fn default_dir() -> PathBuf {
    let videos = directories::UserDirs::new().and_then(|u| {
        u.video_dir()
            .map(Path::to_path_buf)
            .or_else(|| Some(u.home_dir().join("Videos")))
    });
    videos.unwrap_or_else(|| PathBuf::from(".")).join(FOLDER)
}

/// A file name safe on every common file system, from a room name and a start time.
pub fn file_name(room: &str, started: chrono::DateTime<chrono::Local>) -> String {
    let clean: String = room
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '-',
            c if c.is_control() => '-',
            c => c,
        })
        .collect();
    let clean = clean.trim().trim_matches('.').trim();
    let clean: String = clean.chars().take(80).collect();
    let room = if clean.is_empty() {
        "Recording"
    } else {
        &clean
    };
    format!("{room} {}.mp4", started.format("%Y-%m-%d %H-%M-%S"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names_are_safe_and_dated() {
        let t = chrono::Local
            .with_ymd_and_hms(2026, 12, 3, 9, 5, 7)
            .unwrap();
        let cases = [
            ("Room 1", "Room 1 2026-12-03 09-05-07.mp4"),
            ("../../etc/passwd", "-..-etc-passwd 2026-12-03 09-05-07.mp4"),
            ("", "Recording 2026-12-03 09-05-07.mp4"),
            ("  ..  ", "Recording 2026-12-03 09-05-07.mp4"),
            ("a\nb\tc", "a-b-c 2026-12-03 09-05-07.mp4"),
            (
                "Gruppe Ä: Photosynthese?",
                "Gruppe Ä- Photosynthese- 2026-12-03 09-05-07.mp4",
            ),
        ];
        for (room, want) in cases {
            assert_eq!(file_name(room, t), want, "{room:?}");
        }
        assert!(file_name(&"x".repeat(500), t).len() < 120);
    }
}
