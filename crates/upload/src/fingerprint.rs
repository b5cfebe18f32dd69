//! What a local file was when it was queued: size, modification time, change time, identity
//! (device and inode), SHA-256 and a CRC-32 per MiB (the chunks' tus checksums, see
//! [`Fingerprint::block_crc32`]). The cheap part is checked after every read while uploading;
//! the hash is compared with the server's media entry once the upload is complete.
//!
//! Why the stat check is enough while sending: any write to a file, or a rename of another
//! file over it, moves its change time (ctime) or its inode, and unlike the modification time
//! no ordinary user can set the ctime back. So bytes read between two matching checks are the
//! bytes that were hashed at queueing time, and a recording that changed after it was queued
//! never becomes a media entry. Re-hashing every chunk on the way out used to cost a second
//! full SHA-256 pass of every upload (README, issue #4's benchmark).

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::UNIX_EPOCH;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Read size for hashing: large enough for sequential throughput, small enough to stay in cache.
const HASH_BUF: usize = 1 << 20;

/// Bytes per block of [`Fingerprint::block_crc32`].
pub const CRC_BLOCK: u64 = 1 << 20;

/// A file's identity at the time it was queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch.
    pub mtime_ns: i128,
    /// Status change time in nanoseconds since the Unix epoch (0: not recorded, from a queue
    /// written by an older version; then it is not compared).
    #[serde(default)]
    pub ctime_ns: i128,
    /// Device and inode numbers (0, 0: not recorded, as above).
    #[serde(default)]
    pub file_id: (u64, u64),
    /// SHA-256 of the whole file, lowercase hex.
    pub sha256: String,
    /// CRC-32 of every [`CRC_BLOCK`] bytes (the last block may be shorter), 4 bytes each,
    /// big-endian, base64; computed in the same pass as the SHA-256. Any chunk made of whole
    /// blocks gets its tus checksum from these, so the upload never reads a chunk twice (once
    /// for the checksum header, once to send it). 5.5 KB per GiB. Empty in queues written by
    /// older versions (a checksum pass then reads each chunk first).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub block_crc32: String,
}

/// What can be checked without reading the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub file_id: (u64, u64),
}

/// Why a file no longer matches its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileProblem {
    #[error("the local file is gone ({0})")]
    Missing(String),
    #[error("the local file changed after it was queued ({0})")]
    Changed(String),
}

/// Size, times and identity of `path` (following symlinks, like the reads that follow).
pub fn stat(path: &Path) -> std::io::Result<Stat> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(path)?;
    if !md.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mtime_ns = match md.modified()?.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    Ok(Stat {
        size: md.len(),
        mtime_ns,
        ctime_ns: i128::from(md.ctime()) * 1_000_000_000 + i128::from(md.ctime_nsec()),
        file_id: (md.dev(), md.ino()),
    })
}

impl Fingerprint {
    /// Reads the whole file once. Blocking: call it off the async runtime for big files.
    pub fn compute(path: &Path) -> std::io::Result<Fingerprint> {
        let before = stat(path)?;
        let mut f = File::open(path)?;
        let mut hasher = Sha256::new();
        let mut blocks = Vec::new();
        let mut block = crc32fast::Hasher::new();
        let mut buf = vec![0u8; HASH_BUF];
        let mut n = 0u64;
        loop {
            // Reads never cross a block boundary, so each block's CRC ends on one.
            let want =
                usize::try_from(CRC_BLOCK - n % CRC_BLOCK).map_or(HASH_BUF, |w| w.min(HASH_BUF));
            let got = match f.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(got) => got,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..got]);
            block.update(&buf[..got]);
            n += got as u64;
            if n % CRC_BLOCK == 0 {
                blocks.extend_from_slice(&std::mem::take(&mut block).finalize().to_be_bytes());
            }
        }
        if n % CRC_BLOCK != 0 {
            blocks.extend_from_slice(&block.finalize().to_be_bytes());
        }
        let after = stat(path)?;
        // A file still being written would give a hash of nothing in particular.
        if before != after || n != after.size {
            return Err(std::io::Error::other(
                "the file changed while it was being read; is it still being written?",
            ));
        }
        Ok(Fingerprint {
            size: after.size,
            mtime_ns: after.mtime_ns,
            ctime_ns: after.ctime_ns,
            file_id: after.file_id,
            sha256: hex(&hasher.finalize()),
            block_crc32: STANDARD.encode(blocks),
        })
    }

    /// The block CRCs, when present and matching the file's size.
    pub fn block_crcs(&self) -> Option<Vec<u32>> {
        let raw = STANDARD.decode(&self.block_crc32).ok()?;
        let crcs: Vec<u32> = raw
            .chunks_exact(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        (raw.len() % 4 == 0 && crcs.len() as u64 == self.size.div_ceil(CRC_BLOCK)).then_some(crcs)
    }

    /// The CRC-32 of `len` bytes at `offset`, from `blocks` (see [`Self::block_crcs`]), when
    /// the range starts on a block boundary and ends on one or at the end of the file.
    pub fn range_crc32(&self, blocks: &[u32], offset: u64, len: u64) -> Option<u32> {
        let end = offset.checked_add(len)?;
        if offset % CRC_BLOCK != 0 || (end % CRC_BLOCK != 0 && end != self.size) || end > self.size
        {
            return None;
        }
        let first = usize::try_from(offset / CRC_BLOCK).ok()?;
        let last = usize::try_from(end.div_ceil(CRC_BLOCK)).ok()?;
        let mut crc = crc32fast::Hasher::new();
        for (i, &b) in blocks.get(first..last)?.iter().enumerate() {
            let start = (first + i) as u64 * CRC_BLOCK;
            let block_len = CRC_BLOCK.min(self.size - start);
            crc.combine(&crc32fast::Hasher::new_with_initial_len(b, block_len));
        }
        Some(crc.finalize())
    }

    /// The cheap check: the file is there, the same file, with the same size and times.
    pub fn check_stat(&self, path: &Path) -> Result<(), FileProblem> {
        let now = stat(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                FileProblem::Missing(format!("{} was deleted or moved", path.display()))
            } else {
                FileProblem::Missing(format!("{}: {e}", path.display()))
            }
        })?;
        if now.size != self.size {
            return Err(FileProblem::Changed(format!(
                "size was {} bytes, now {}",
                self.size, now.size
            )));
        }
        if now.mtime_ns != self.mtime_ns {
            return Err(FileProblem::Changed(
                "its modification time is different".into(),
            ));
        }
        if self.file_id != (0, 0) && now.file_id != self.file_id {
            return Err(FileProblem::Changed(
                "another file was put in its place".into(),
            ));
        }
        if self.ctime_ns != 0 && now.ctime_ns != self.ctime_ns {
            return Err(FileProblem::Changed(
                "it was written to or its times were reset".into(),
            ));
        }
        Ok(())
    }
}

/// Lowercase hex, as the server reports checksums.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_matches_an_independent_hash_and_detects_changes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.bin");
        std::fs::write(&p, b"abc").unwrap();
        let fp = Fingerprint::compute(&p).unwrap();
        // SHA-256("abc") from FIPS 180-2.
        assert_eq!(
            fp.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(fp.size, 3);
        fp.check_stat(&p).unwrap();

        std::fs::write(&p, b"abcd").unwrap();
        assert!(matches!(fp.check_stat(&p), Err(FileProblem::Changed(_))));

        // Same size, different time.
        std::fs::write(&p, b"xyz").unwrap();
        let f = File::options().write(true).open(&p).unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(5))
            .unwrap();
        assert!(matches!(fp.check_stat(&p), Err(FileProblem::Changed(_))));

        // Same size, modification time set back: the change time still tells.
        std::fs::write(&p, b"abc").unwrap();
        let fp = Fingerprint::compute(&p).unwrap();
        let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&p, b"xyz").unwrap();
        File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert!(
            matches!(fp.check_stat(&p), Err(FileProblem::Changed(m)) if m.contains("times were reset")),
            "{:?}",
            fp.check_stat(&p)
        );

        // Another file renamed over it, same size and modification time.
        std::fs::write(&p, b"abc").unwrap();
        let fp = Fingerprint::compute(&p).unwrap();
        let other = dir.path().join("other.bin");
        std::fs::write(&other, b"abd").unwrap();
        File::options()
            .write(true)
            .open(&other)
            .unwrap()
            .set_modified(std::fs::metadata(&p).unwrap().modified().unwrap())
            .unwrap();
        std::fs::rename(&other, &p).unwrap();
        assert!(matches!(fp.check_stat(&p), Err(FileProblem::Changed(_))));

        // A queue written before change times were recorded still loads and checks the rest.
        let old = Fingerprint {
            ctime_ns: 0,
            file_id: (0, 0),
            ..Fingerprint::compute(&p).unwrap()
        };
        let json = serde_json::to_string(&old)
            .unwrap()
            .replace(",\"ctime_ns\":0,\"file_id\":[0,0]", "");
        assert!(!json.contains("ctime"), "{json}");
        let back: Fingerprint = serde_json::from_str(&json).unwrap();
        assert_eq!(back, old);
        back.check_stat(&p).unwrap();

        std::fs::remove_file(&p).unwrap();
        assert!(matches!(fp.check_stat(&p), Err(FileProblem::Missing(_))));
    }

    #[test]
    fn chunk_crcs_from_block_crcs_equal_a_direct_crc_and_refuse_unaligned_ranges() {
        let b = CRC_BLOCK;
        let dir = tempfile::tempdir().unwrap();
        // (file size, [(offset, len, available)])
        type Ranges<'a> = &'a [(u64, u64, bool)];
        let cases: [(u64, Ranges<'_>); 6] = [
            (0, &[(0, 0, true)]),
            (1, &[(0, 1, true), (0, 0, true)]),
            (b - 1, &[(0, b - 1, true), (1, b - 2, false)]),
            (b, &[(0, b, true), (0, b - 1, false)]),
            (
                b + 1,
                &[(0, b + 1, true), (b, 1, true), (0, b, true), (0, 2, false)],
            ),
            (
                3 * b + 5,
                &[
                    (0, 3 * b + 5, true),
                    (b, 2 * b, true),
                    (2 * b, b + 5, true),
                    (b, b + 5, false),
                    (b + 1, b, false),
                    (3 * b, 5, true),
                    (3 * b, 6, false),
                    (2 * b, u64::MAX, false),
                ],
            ),
        ];
        for (size, ranges) in cases {
            let data: Vec<u8> = (0..size).map(|i| (i * 7 % 256) as u8).collect();
            let p = dir.path().join(format!("f{size}.bin"));
            std::fs::write(&p, &data).unwrap();
            let fp = Fingerprint::compute(&p).unwrap();
            let blocks = fp.block_crcs().expect("block CRCs for a new fingerprint");
            assert_eq!(blocks.len() as u64, size.div_ceil(b), "size {size}");
            for &(offset, len, available) in ranges {
                let got = fp.range_crc32(&blocks, offset, len);
                let want = available
                    .then(|| crc32fast::hash(&data[offset as usize..(offset + len) as usize]));
                assert_eq!(got, want, "size {size}: {offset}+{len}");
            }
        }
        // A fingerprint from an older queue has none; a damaged list is not used.
        let p = dir.path().join("f1.bin");
        let mut fp = Fingerprint::compute(&p).unwrap();
        for bad in ["", "!!!", "AAAA", "AAAAAAAAAAA="] {
            fp.block_crc32 = bad.into();
            assert_eq!(fp.block_crcs(), None, "{bad:?}");
        }
    }
}
