//! Where media bytes live, behind a small interface so an object store can follow the local
//! disk. Calls are blocking and made from blocking threads (`spawn_blocking`): an upload's
//! bytes are hashed and written off the async runtime, one chunk at a time, never held whole.
//!
//! Keys are server-made ids (`[a-z0-9_]`), never client text, so they cannot name a path
//! outside the storage root; [`LocalStorage`] checks that anyway.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

/// An object store for media files.
pub trait Storage: Send + Sync + 'static {
    /// Creates an empty object (fails if it exists).
    fn create(&self, key: &str) -> io::Result<()>;
    /// Opens the object to write from `offset`: anything after `offset` (leftovers of a write
    /// that was never committed) is discarded first.
    fn open_append(&self, key: &str, offset: u64) -> io::Result<Box<dyn ObjectWriter>>;
    /// Reads the object from `start`.
    fn open_read(&self, key: &str, start: u64) -> io::Result<Box<dyn Read + Send>>;
    /// The object's current size.
    fn size(&self, key: &str) -> io::Result<u64>;
    /// Removes the object; removing a missing object is not an error.
    fn delete(&self, key: &str) -> io::Result<()>;
}

/// Writes one request's bytes into an object; nothing counts until [`ObjectWriter::commit`].
pub trait ObjectWriter: Send {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes what was written durable and returns the object's new size.
    fn commit(self: Box<Self>) -> io::Result<u64>;
    /// Forgets what was written: the object is back to the size it had when opened.
    fn rollback(self: Box<Self>) -> io::Result<()>;
}

/// Objects as files in one directory.
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    pub fn new(root: PathBuf) -> io::Result<Self> {
        std::fs::create_dir_all(&root)?;
        Ok(LocalStorage { root })
    }

    fn path(&self, key: &str) -> io::Result<PathBuf> {
        if key.is_empty()
            || key.len() > 128
            || !key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "storage key must be [a-z0-9_]",
            ));
        }
        Ok(self.root.join(key))
    }
}

impl Storage for LocalStorage {
    fn create(&self, key: &str) -> io::Result<()> {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.path(key)?)?;
        Ok(())
    }

    fn open_append(&self, key: &str, offset: u64) -> io::Result<Box<dyn ObjectWriter>> {
        let mut file = OpenOptions::new().write(true).open(self.path(key)?)?;
        let len = file.metadata()?.len();
        if len < offset {
            // The database promised bytes the disk does not have (the OS lost unsynced data):
            // refuse rather than write a hole; the caller resets the offset to what is there.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("object has {len} bytes, expected at least {offset}"),
            ));
        }
        if len > offset {
            file.set_len(offset)?;
        }
        file.seek(SeekFrom::Start(offset))?;
        Ok(Box::new(LocalWriter {
            // Hyper hands over body frames of a few KiB to a few hundred; batching them into
            // 1 MiB writes keeps the syscall count low.
            file: io::BufWriter::with_capacity(1 << 20, file),
            start: offset,
            written: 0,
            flushing: 0,
        }))
    }

    fn open_read(&self, key: &str, start: u64) -> io::Result<Box<dyn Read + Send>> {
        let mut file = File::open(self.path(key)?)?;
        file.seek(SeekFrom::Start(start))?;
        Ok(Box::new(file))
    }

    fn size(&self, key: &str) -> io::Result<u64> {
        Ok(std::fs::metadata(self.path(key)?)?.len())
    }

    fn delete(&self, key: &str) -> io::Result<()> {
        match std::fs::remove_file(self.path(key)?) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

struct LocalWriter {
    file: io::BufWriter<File>,
    start: u64,
    written: u64,
    /// Bytes (from `start`) whose writeback to the disk has been started.
    flushing: u64,
}

/// Writeback is started every this many bytes while a request streams in, so the disk works
/// while the network does and `commit`'s fsync only waits for the tail. Without it, every
/// chunk of a chunked upload (tus clients send a few MiB per PATCH) paid a full synchronous
/// disk write on top of its transfer.
const WRITEBACK_STEP: u64 = 2 << 20;

/// Asks the kernel to start writing `len` bytes at `offset` to the disk, without waiting.
/// Advisory: durability still comes from `sync_data` in `commit`.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: sync_file_range only reads the descriptor number, which `file` keeps open.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), off, n, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

impl ObjectWriter for LocalWriter {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)?;
        self.written += buf.len() as u64;
        // Only bytes that left the buffer are in the page cache and can be written back.
        let in_file = self.written - self.file.buffer().len() as u64;
        if in_file - self.flushing >= WRITEBACK_STEP {
            start_writeback(
                self.file.get_ref(),
                self.start + self.flushing,
                in_file - self.flushing,
            );
            self.flushing = in_file;
        }
        Ok(())
    }

    fn commit(self: Box<Self>) -> io::Result<u64> {
        let file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.sync_data()?;
        Ok(self.start + self.written)
    }

    fn rollback(self: Box<Self>) -> io::Result<()> {
        // Whatever is still buffered is dropped with the writer, never reaching the file.
        let (file, _) = self.file.into_parts();
        file.set_len(self.start)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn commit_rollback_and_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path().to_path_buf()).unwrap();
        s.create("up_1").unwrap();
        assert!(s.create("up_1").is_err(), "create never overwrites");
        let mut w = s.open_append("up_1", 0).unwrap();
        w.write_all(b"hello ").unwrap();
        assert_eq!(w.commit().unwrap(), 6);
        let mut w = s.open_append("up_1", 6).unwrap();
        w.write_all(b"garbage").unwrap();
        w.rollback().unwrap();
        assert_eq!(s.size("up_1").unwrap(), 6);
        // Leftovers past the committed offset (a crash mid-write) are cut on the next open.
        std::fs::write(dir.path().join("up_1"), b"hello junk").unwrap();
        let mut w = s.open_append("up_1", 6).unwrap();
        w.write_all(b"world").unwrap();
        assert_eq!(w.commit().unwrap(), 11);
        let mut out = String::new();
        s.open_read("up_1", 0)
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello world");
        assert!(s.open_append("up_1", 100).is_err(), "no holes");
        for bad in ["", "../x", "a/b", "A", "x.y"] {
            assert!(s.create(bad).is_err(), "{bad:?} accepted");
        }
        s.delete("up_1").unwrap();
        s.delete("up_1").unwrap();
    }
}
