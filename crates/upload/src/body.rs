//! A `PATCH` body streamed from the file in small pieces, and the checksum pass before it.
//!
//! Why streamed: a chunk read whole into memory was copied through a buffer larger than the
//! CPU's caches, and reading the next chunk competed for the CPU with the start of each
//! request (measured on two cores: the server's handler started 1.9 ms after the client sent
//! with the read-ahead, 0.3 ms without). Pieces of [`PIECE`] bytes are read and sent while
//! still in the cache, as `curl -T` does, and memory no longer grows with the chunk size, so
//! chunks can grow on fast links (see [`crate::chunks`]).
//!
//! The body declares its length (`Content-Length`). The tus checksum goes in a header, before
//! the body, so it is computed by a separate pass over the same bytes ([`checksum`]), done for
//! the next chunk while this one is on the wire. (A trailer would avoid that pass, but a
//! chunked body made the classroom server's writes to its page cache twice as costly in our
//! measurements, for a cause not found, though before the benchmark corrected for order
//! effects; see the README.)
//!
//! The reader runs on a blocking thread and hands pieces over a small channel. After each
//! piece is read and before it is handed over, the file is checked unchanged (size, times,
//! inode), so bytes of a changed file never complete an upload: the body ends with an error,
//! the request is cut, and [`FileBody::failure`] says why.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

use crate::buffers::BufferPool;
use crate::fingerprint::Fingerprint;
use crate::tus::ChecksumAlgorithm;

/// Bytes per read: small enough to stay in the CPU's cache between the read and the socket
/// write; large enough that per-read costs do not show.
pub(crate) const PIECE: usize = 256 << 10;

/// Pieces waiting in the channel: keeps the reader a little ahead of the socket.
const AHEAD: usize = 4;

/// Pieces alive at once: the channel's, the one being read and the ones in the HTTP stack.
pub(crate) const POOLED_PIECES: usize = AHEAD + 4;

/// The file being uploaded, as every chunk reads it.
#[derive(Clone)]
pub(crate) struct Source {
    pub file: Arc<File>,
    pub path: PathBuf,
    pub fingerprint: Fingerprint,
    pub buffers: Arc<BufferPool>,
}

impl Source {
    /// Reads `len` bytes at `offset` piece by piece, checking the file unchanged after each
    /// read, and gives each piece to `each` (which returns false to stop). Errors are one
    /// line for the user.
    fn read_pieces(
        &self,
        offset: u64,
        len: u64,
        mut each: impl FnMut(crate::buffers::PooledBuf) -> bool,
    ) -> Result<(), String> {
        let end = offset + len;
        let mut pos = offset;
        while pos < end {
            let n = usize::try_from((end - pos).min(PIECE as u64)).unwrap_or(PIECE);
            let mut buf = self.buffers.take(n);
            self.file
                .read_exact_at(buf.as_mut_slice(), pos)
                .map_err(|e| match e.kind() {
                    io::ErrorKind::UnexpectedEof => {
                        format!("{} is shorter than expected", self.path.display())
                    }
                    _ => format!("cannot read {}: {e}", self.path.display()),
                })?;
            // After the read: bytes are only used when the file was still the same once they
            // were read.
            self.fingerprint
                .check_stat(&self.path)
                .map_err(|p| p.to_string())?;
            if !each(buf) {
                return Ok(());
            }
            pos += n as u64;
        }
        Ok(())
    }
}

/// The `Upload-Checksum` value of `len` bytes at `offset` (blocking: run it off the runtime).
pub(crate) fn checksum(
    src: &Source,
    offset: u64,
    len: u64,
    alg: ChecksumAlgorithm,
) -> Result<String, String> {
    let mut h = alg.hasher();
    src.read_pieces(offset, len, |piece| {
        h.update(piece.as_ref());
        true
    })?;
    Ok(h.finish())
}

/// Why the body ended early (the file changed or could not be read).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct BodyError(String);

/// The body of one `PATCH`: `len` bytes of the file from `offset`.
pub(crate) struct FileBody {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    remaining: u64,
    failure: Arc<Mutex<Option<String>>>,
}

impl FileBody {
    /// Starts reading `len` bytes at `offset` on a blocking thread.
    pub(crate) fn start(src: &Source, offset: u64, len: u64) -> FileBody {
        let (tx, rx) = tokio::sync::mpsc::channel(AHEAD);
        let src = src.clone();
        tokio::task::spawn_blocking(move || {
            let sent = src.read_pieces(offset, len, |piece| {
                // An error here means the request was dropped (cut, timed out, stopped).
                tx.blocking_send(Ok(piece.into_bytes())).is_ok()
            });
            if let Err(e) = sent {
                let _ = tx.blocking_send(Err(e));
            }
        });
        FileBody {
            rx,
            remaining: len,
            failure: Arc::new(Mutex::new(None)),
        }
    }

    /// Where the reason goes when the file fails mid-body: the HTTP stack only reports a
    /// cut request, and the caller must tell that from a network failure.
    pub(crate) fn failure(&self) -> Arc<Mutex<Option<String>>> {
        self.failure.clone()
    }

    fn fail(&self, reason: String) -> BodyError {
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason.clone());
        BodyError(reason)
    }
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(b))) => {
                self.remaining = self.remaining.saturating_sub(b.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(b))))
            }
            Poll::Ready(Some(Err(reason))) => Poll::Ready(Some(Err(self.fail(reason)))),
            Poll::Ready(None) => {
                let e = self.fail("the file reader stopped early".into());
                Poll::Ready(Some(Err(e)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http_body::Body as _;
    use http_body_util::BodyExt;

    fn source(dir: &std::path::Path, data: &[u8]) -> Source {
        let path = dir.join("f.bin");
        std::fs::write(&path, data).unwrap();
        Source {
            file: Arc::new(File::open(&path).unwrap()),
            fingerprint: Fingerprint::compute(&path).unwrap(),
            path,
            buffers: BufferPool::new(POOLED_PIECES),
        }
    }

    #[tokio::test]
    async fn bodies_carry_exactly_the_range_and_checksums_match_the_one_shot_header() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..(3 * PIECE + 123)).map(|i| (i % 251) as u8).collect();
        let src = source(dir.path(), &data);
        // (offset, len): inside one piece, across pieces, to the end, empty.
        let cases = [
            (0, 10),
            (5, PIECE + 7),
            (PIECE - 1, 2 * PIECE),
            (0, data.len()),
            (100, data.len() - 100),
            (7, 0),
        ];
        for (offset, len) in cases {
            let want = &data[offset..offset + len];
            let body = FileBody::start(&src, offset as u64, len as u64);
            assert_eq!(body.size_hint().exact(), Some(len as u64));
            let got = body.collect().await.unwrap().to_bytes();
            assert_eq!(&got[..], want, "{offset}+{len}");
            for alg in ChecksumAlgorithm::PREFERENCE {
                let src = src.clone();
                let ck = tokio::task::spawn_blocking(move || {
                    checksum(&src, offset as u64, len as u64, alg)
                })
                .await
                .unwrap()
                .unwrap();
                assert_eq!(ck, alg.header(want), "{alg:?} {offset}+{len}");
            }
        }
    }

    #[tokio::test]
    async fn a_file_that_changes_or_shrinks_ends_the_body_with_its_reason() {
        // (what happens to the file, words of the reason)
        type Change = fn(&std::path::Path);
        let cases: [(Change, &str); 3] = [
            (|p| std::fs::remove_file(p).unwrap(), "gone"),
            (
                |p| {
                    let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
                    f.set_len(10).unwrap();
                },
                "",
            ),
            (
                |p| {
                    use std::io::Write;
                    let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
                    f.write_all(b"more").unwrap();
                },
                "changed",
            ),
        ];
        for (change, want) in cases {
            let dir = tempfile::tempdir().unwrap();
            let data = vec![7u8; 4 * PIECE];
            let src = source(dir.path(), &data);
            change(&src.path);
            let body = FileBody::start(&src, 0, data.len() as u64);
            let failure = body.failure();
            let err = body.collect().await.expect_err("the body must fail");
            let reason = failure.lock().unwrap().clone().unwrap();
            assert_eq!(err.to_string(), reason);
            assert!(reason.contains(want), "{reason}");
            assert!(!reason.contains('\n'));
        }
    }
}
