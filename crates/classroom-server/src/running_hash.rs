//! The SHA-256 of a whole upload, computed on its own thread while the bytes arrive.
//!
//! Why a thread: hashed in the request's writer, every `PATCH` waited for SHA-256 of its
//! bytes before it could answer (the writer ran 4-6 ms behind the network per 8 MiB chunk),
//! and the hash stood still while the client sent its next request. Here the writer hands
//! each frame over (a cheap `Bytes` clone) and the hash keeps working between requests; only
//! the upload's last request waits for it.
//!
//! A hash cannot take bytes back: when a request's bytes are rolled back after some were
//! handed over, the caller drops the hash and completion reads the file once instead.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use axum::body::Bytes;
use sha2::{Digest, Sha256};

/// Frames waiting for the hash: bounds memory per upload (a few MiB) when it falls behind;
/// the writer then waits.
const QUEUED_FRAMES: usize = 16;

enum Msg {
    Data(Bytes),
    Finish(tokio::sync::oneshot::Sender<[u8; 32]>),
}

/// The hash of an upload's first [`RunningHash::covered`] bytes (once its queue is drained).
pub(crate) struct RunningHash {
    tx: SyncSender<Msg>,
    /// Bytes handed over so far.
    pub(crate) covered: u64,
}

/// Hands frames to a [`RunningHash`] from the writer thread.
pub(crate) struct Feeder(SyncSender<Msg>);

impl Feeder {
    /// Blocks while the hash is [`QUEUED_FRAMES`] behind; false if its thread is gone.
    pub(crate) fn feed(&self, b: &Bytes) -> bool {
        self.0.send(Msg::Data(b.clone())).is_ok()
    }
}

impl RunningHash {
    /// A hash of nothing yet, on a new thread; `None` if no thread can be started (completion
    /// then reads the file).
    pub(crate) fn start() -> Option<RunningHash> {
        let (tx, rx) = sync_channel(QUEUED_FRAMES);
        std::thread::Builder::new()
            .name("upload-sha256".into())
            .spawn(move || hash_thread(&rx))
            .ok()?;
        Some(RunningHash { tx, covered: 0 })
    }

    pub(crate) fn feeder(&self) -> Feeder {
        Feeder(self.tx.clone())
    }

    /// The digest of everything handed over, once the thread has caught up.
    pub(crate) async fn finish(self) -> Option<[u8; 32]> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        // The queue may be full: wait for room off the async runtime.
        let sender = self.tx;
        tokio::task::spawn_blocking(move || sender.send(Msg::Finish(tx)))
            .await
            .ok()?
            .ok()?;
        rx.await.ok()
    }
}

fn hash_thread(rx: &Receiver<Msg>) {
    let mut h = Sha256::new();
    // Ends when every sender is gone (the hash was dropped) or after `Finish`.
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Data(b) => h.update(&b),
            Msg::Finish(done) => {
                let _ = done.send(h.finalize().into());
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn the_digest_covers_every_frame_in_order_from_any_thread() {
        // (frames) — the digest must equal one SHA-256 over their concatenation.
        let cases: [&[&[u8]]; 4] = [
            &[],
            &[b"abc"],
            &[b"a", b"", b"bc"],
            &[&[7u8; 300_000], &[8u8; 5], &[9u8; 1 << 20]],
        ];
        for frames in cases {
            let hash = RunningHash::start().unwrap();
            let feeder = hash.feeder();
            let owned: Vec<Bytes> = frames.iter().map(|f| Bytes::copy_from_slice(f)).collect();
            // Fed from a blocking thread, as the writer does (more frames than the queue holds).
            let fed = owned.clone();
            tokio::task::spawn_blocking(move || {
                for _ in 0..3 {
                    for b in &fed {
                        assert!(feeder.feed(b));
                    }
                }
            })
            .await
            .unwrap();
            let mut want = Sha256::new();
            for _ in 0..3 {
                for b in &owned {
                    want.update(b);
                }
            }
            let want: [u8; 32] = want.finalize().into();
            assert_eq!(hash.finish().await.unwrap(), want);
        }
    }

    #[tokio::test]
    async fn after_finish_the_thread_is_gone_and_feeding_says_so() {
        let hash = RunningHash::start().unwrap();
        let feeder = hash.feeder();
        assert!(hash.finish().await.is_some());
        // The thread returns right after answering; give it a moment to drop its end.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while feeder.feed(&Bytes::from_static(b"x")) {
            assert!(
                std::time::Instant::now() < deadline,
                "the hash thread did not end"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}
