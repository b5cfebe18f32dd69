//! Read buffers that go back to a small pool when the HTTP stack is done with them.
//!
//! Why: a fresh buffer above glibc's mmap threshold is an `mmap` that page-faults as it is
//! filled and an `munmap` when dropped; for whole 8 MiB chunks that cost about 1 ms per chunk
//! on two cores (measured: `scripts/bench-upload-client.sh`). The streamed bodies read 256 KiB
//! pieces ([`crate::body`]); a pooled piece is already mapped and initialised, so a read is one
//! `pread` into it.
//!
//! A buffer leaves as [`bytes::Bytes`] (what reqwest sends without copying); when the last
//! clone is dropped, the buffer returns here. The pool keeps at most `keep` idle buffers, so
//! memory stays bounded even if a caller holds more chunks than expected.

use std::sync::{Arc, Mutex, PoisonError};

/// Idle buffers, ready to be filled.
#[derive(Debug)]
pub(crate) struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
    keep: usize,
}

impl BufferPool {
    /// A pool that keeps at most `keep` idle buffers.
    pub(crate) fn new(keep: usize) -> Arc<Self> {
        Arc::new(BufferPool {
            free: Mutex::new(Vec::with_capacity(keep)),
            keep,
        })
    }

    /// A buffer of exactly `len` bytes, reused when one is idle. Its contents are whatever
    /// was there before: the caller overwrites all of it.
    pub(crate) fn take(self: &Arc<Self>, len: usize) -> PooledBuf {
        let reused = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut buf = reused.unwrap_or_default();
        // Shrinking keeps the mapping; growing zeroes only the new tail (the first use, or a
        // full chunk after the file's short last one).
        buf.resize(len, 0);
        PooledBuf {
            buf,
            pool: Arc::clone(self),
        }
    }

    /// Idle buffers right now (for tests).
    #[cfg(test)]
    fn idle(&self) -> usize {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// A buffer on loan from a [`BufferPool`].
#[derive(Debug)]
pub(crate) struct PooledBuf {
    buf: Vec<u8>,
    pool: Arc<BufferPool>,
}

impl PooledBuf {
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// Shares the buffer as `Bytes`; it returns to the pool when the last clone is dropped.
    pub(crate) fn into_bytes(self) -> bytes::Bytes {
        bytes::Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for PooledBuf {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        let mut free = self
            .pool
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if free.len() < self.pool.keep {
            free.push(std::mem::take(&mut self.buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_when_the_last_clone_is_dropped_and_are_reused() {
        let pool = BufferPool::new(2);
        let mut a = pool.take(8);
        a.as_mut_slice().copy_from_slice(b"abcdefgh");
        let addr = a.as_ref().as_ptr();
        let bytes = a.into_bytes();
        let clone = bytes.clone();
        assert_eq!(&clone[..], b"abcdefgh");
        drop(bytes);
        assert_eq!(pool.idle(), 0, "a clone still holds it");
        drop(clone);
        assert_eq!(pool.idle(), 1);
        // The same memory, resized to what is asked (a short last chunk).
        let b = pool.take(3);
        assert_eq!(b.as_ref().as_ptr(), addr);
        assert_eq!(b.as_ref(), b"abc");
        drop(b);
        let c = pool.take(8);
        assert_eq!(c.as_ref().len(), 8);
    }

    #[test]
    fn the_pool_keeps_at_most_keep_idle_buffers() {
        // (keep, buffers taken at once, idle afterwards)
        let cases = [(2, 1, 1), (2, 2, 2), (2, 5, 2), (0, 3, 0)];
        for (keep, taken, idle) in cases {
            let pool = BufferPool::new(keep);
            let bufs: Vec<_> = (0..taken).map(|_| pool.take(16)).collect();
            assert_eq!(pool.idle(), 0);
            drop(bufs);
            assert_eq!(pool.idle(), idle, "keep {keep}, taken {taken}");
        }
    }
}
