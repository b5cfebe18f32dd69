//! The SHA-256 of a whole upload, computed off the request's path while the bytes arrive.
//!
//! Why: hashed in the request's writer, every `PATCH` waited for SHA-256 of its bytes before
//! it could answer (the writer ran 4-6 ms behind the network per 8 MiB chunk), and the hash
//! stood still while the client sent its next request. Here each request's frames go to a
//! thread of their own (a cheap `Bytes` clone each), which starts from where the previous
//! request's thread ended and may finish after the answer; only the upload's last request
//! waits for the digest. No thread outlives its request's bytes, so an abandoned upload holds
//! a finished hash state, never a thread.
//!
//! A hash cannot take bytes back: when a request's bytes are rolled back after some were
//! handed over, the caller drops the hash and completion reads the file once instead.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use axum::body::Bytes;
use sha2::{Digest, Sha256};

/// Frames waiting for the hash: bounds memory per request (a few MiB) when it falls behind;
/// the writer then waits.
const QUEUED_FRAMES: usize = 16;

enum State {
    Ready(Box<Sha256>),
    /// A request's thread is still hashing; it hands the state over when done.
    Pending(Receiver<Sha256>),
}

/// The hash of an upload's first [`RunningHash::covered`] bytes.
pub(crate) struct RunningHash {
    state: State,
    /// Bytes this hash covers (set by the caller once a request's bytes are kept).
    pub(crate) covered: u64,
}

/// Hands one request's frames to its hash thread (from the writer thread).
pub(crate) struct Feeder(SyncSender<Bytes>);

impl Feeder {
    /// Blocks while the hash is [`QUEUED_FRAMES`] behind; false if its thread is gone.
    pub(crate) fn feed(&self, b: &Bytes) -> bool {
        self.0.send(b.clone()).is_ok()
    }
}

impl RunningHash {
    /// The hash of nothing yet.
    pub(crate) fn new() -> RunningHash {
        RunningHash {
            state: State::Ready(Box::new(Sha256::new())),
            covered: 0,
        }
    }

    /// Starts a thread that continues this hash with one request's frames; returns what to
    /// feed them to and the hash that will include them (`covered` unchanged: the caller
    /// sets it if the bytes are kept). `None` if no thread can be started: the caller then
    /// goes without a hash.
    pub(crate) fn extend(self) -> Option<(Feeder, RunningHash)> {
        let (tx, rx) = sync_channel::<Bytes>(QUEUED_FRAMES);
        let (done_tx, done_rx) = sync_channel::<Sha256>(1);
        let before = self.state;
        std::thread::Builder::new()
            .name("upload-sha256".into())
            .spawn(move || {
                let mut h = match before {
                    State::Ready(h) => *h,
                    // The previous request's thread is still at it: continue after it.
                    State::Pending(prev) => match prev.recv() {
                        Ok(h) => h,
                        Err(_) => return,
                    },
                };
                // Ends when the writer drops the feeder (the request's body is done).
                while let Ok(b) = rx.recv() {
                    h.update(&b);
                }
                let _ = done_tx.send(h);
            })
            .ok()?;
        Some((
            Feeder(tx),
            RunningHash {
                state: State::Pending(done_rx),
                covered: self.covered,
            },
        ))
    }

    /// The digest, once every thread before has finished.
    pub(crate) async fn finish(self) -> Option<[u8; 32]> {
        let h = match self.state {
            State::Ready(h) => *h,
            State::Pending(rx) => tokio::task::spawn_blocking(move || rx.recv().ok())
                .await
                .ok()??,
        };
        Some(h.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn the_digest_covers_every_request_in_order() {
        // (requests, each a list of frames): one SHA-256 over everything must come out,
        // whether or not the threads before had finished.
        let big = vec![7u8; 300_000];
        let mib = vec![9u8; 1 << 20];
        let many: Vec<&[u8]> = vec![&mib; 20];
        let cases: [&[&[&[u8]]]; 5] = [
            &[],
            &[&[]],
            &[&[b"abc"]],
            &[&[b"a", b""], &[], &[b"bc"]],
            &[&[&big, &[8u8; 5]], &many, &[&big]],
        ];
        for requests in cases {
            let mut hash = RunningHash::new();
            let mut want = Sha256::new();
            for frames in requests {
                let (feeder, next) = hash.extend().unwrap();
                let owned: Vec<Bytes> = frames.iter().map(|f| Bytes::copy_from_slice(f)).collect();
                for b in &owned {
                    want.update(b);
                }
                // Fed from a blocking thread, as the writer does (more than the queue holds).
                tokio::task::spawn_blocking(move || {
                    for b in &owned {
                        assert!(feeder.feed(b));
                    }
                })
                .await
                .unwrap();
                hash = next;
            }
            let want: [u8; 32] = want.finalize().into();
            assert_eq!(
                hash.finish().await.unwrap(),
                want,
                "{} requests",
                requests.len()
            );
        }
    }

    #[tokio::test]
    async fn dropped_hashes_and_requests_without_frames_are_harmless() {
        // A rolled-back request drops its hash: its thread still drains the frames, then
        // ends with no one to hand the state to.
        let (feeder, hash) = RunningHash::new().extend().unwrap();
        drop(hash);
        assert!(
            feeder.feed(&Bytes::from_static(b"x")),
            "the thread is still reading"
        );
        drop(feeder);
        // Requests that sent nothing leave the digest of nothing.
        let (feeder, hash) = RunningHash::new().extend().unwrap();
        let (feeder2, after) = hash.extend().unwrap();
        drop(feeder);
        drop(feeder2);
        let empty: [u8; 32] = Sha256::digest(b"").into();
        assert_eq!(after.finish().await, Some(empty));
    }
}
