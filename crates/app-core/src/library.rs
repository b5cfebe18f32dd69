//! The app's list of recordings made on this computer (`recordings.json` in its data directory).
//!
//! The upload queue knows the recordings that have a destination; this list also knows those
//! recorded offline, which wait until the user picks a classroom for them, and ties each
//! recording to its queue item. Written atomically (temporary file, fsync, rename), so a crash
//! at any instant leaves the old list or the new one; a damaged list is set aside, never
//! silently overwritten, and the recordings themselves are untouched either way.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    pub path: PathBuf,
    pub title: String,
    /// RFC 3339.
    pub started_at: String,
    pub duration_secs: f64,
    pub bytes: u64,
    /// "Live room › Breakout room"; empty for offline recordings.
    pub destination: String,
    /// The upload queue's item, once the recording has a destination.
    pub queue_item: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The list's file. Every change is read-modify-write of the whole (small) file.
#[derive(Debug, Clone)]
pub struct Library {
    path: PathBuf,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    version: u32,
    recordings: Vec<Entry>,
}

const VERSION: u32 = 1;

impl Library {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every recording, newest first. A damaged file is renamed `*.damaged-<time>` (so a
    /// person can look at it) and the list starts empty.
    pub fn load(&self) -> Result<Vec<Entry>, LibraryError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(LibraryError::Io {
                    what: "read",
                    path: self.path.clone(),
                    source,
                });
            }
        };
        match serde_json::from_slice::<File>(&bytes) {
            Ok(f) if f.version == VERSION => Ok(f.recordings),
            _ => {
                let aside = self.path.with_extension(format!(
                    "json.damaged-{}",
                    chrono::Local::now().format("%Y%m%d-%H%M%S-%f")
                ));
                tracing::warn!(
                    "the recordings list {} is damaged; kept as {}",
                    self.path.display(),
                    aside.display()
                );
                std::fs::rename(&self.path, &aside).map_err(|source| LibraryError::Io {
                    what: "set aside",
                    path: self.path.clone(),
                    source,
                })?;
                Ok(Vec::new())
            }
        }
    }

    /// Applies `change` to the list and saves it atomically.
    pub fn update<T>(&self, change: impl FnOnce(&mut Vec<Entry>) -> T) -> Result<T, LibraryError> {
        let mut list = self.load()?;
        let out = change(&mut list);
        self.save(list)?;
        Ok(out)
    }

    fn save(&self, recordings: Vec<Entry>) -> Result<(), LibraryError> {
        let io = |what: &'static str| {
            let path = self.path.clone();
            move |source| LibraryError::Io { what, path, source }
        };
        let dir = self
            .path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        std::fs::create_dir_all(&dir).map_err(io("create the folder of"))?;
        let body = serde_json::to_vec_pretty(&File {
            version: VERSION,
            recordings,
        })
        .map_err(|e| io("encode")(std::io::Error::other(e)))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io("write next to"))?;
        tmp.write_all(&body).map_err(io("write"))?;
        tmp.as_file().sync_all().map_err(io("sync"))?;
        tmp.persist(&self.path)
            .map_err(|e| io("replace")(e.error))?;
        // The rename itself must reach the disk too.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry(id: &str) -> Entry {
        Entry {
            id: id.into(),
            path: PathBuf::from(format!("/videos/{id}.mp4")),
            title: format!("Room {id}"),
            started_at: "2026-12-03T10:00:00Z".into(),
            duration_secs: 5.0,
            bytes: 1000,
            destination: String::new(),
            queue_item: None,
        }
    }

    #[test]
    fn round_trips_and_survives_damage() {
        let dir = tempfile::tempdir().unwrap();
        let lib = Library::new(dir.path().join("recordings.json"));
        assert!(lib.load().unwrap().is_empty());
        lib.update(|l| l.push(entry("a"))).unwrap();
        lib.update(|l| l.push(entry("b"))).unwrap();
        assert_eq!(lib.load().unwrap().len(), 2);

        // (file content, what load gives)
        let damaged: [&[u8]; 5] = [
            b"",
            b"{",
            b"\x00\xff garbage",
            br#"{"version": 99, "recordings": []}"#,
            br#"{"version": 1, "recordings": [{"id": 5}]}"#,
        ];
        for content in damaged {
            std::fs::write(lib.path(), content).unwrap();
            assert!(lib.load().unwrap().is_empty(), "{content:?}");
            assert!(!lib.path().exists(), "the damaged file was set aside");
        }
        let aside = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains("damaged")
            })
            .count();
        assert!(aside >= 1, "damaged copies are kept");
    }
}
