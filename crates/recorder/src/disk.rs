//! Free-space checks: refuse to start on a nearly full disk, warn when it runs low, and stop
//! (with a finished, playable file) before it is full.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Thresholds in bytes of free space on the output's file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskPolicy {
    /// Stop the recording when free space falls below this. It must hold the encoder's
    /// in-flight fragment and the index, so it is generous.
    pub reserve: u64,
    /// Warn the user when free space falls below this.
    pub warn: u64,
}

impl DiskPolicy {
    pub const MIB: u64 = 1024 * 1024;

    /// Reserve `reserve_mib`, warn at ten times that (at least 1 GiB by default).
    pub fn with_reserve_mib(reserve_mib: u64) -> Self {
        let reserve = reserve_mib.saturating_mul(Self::MIB);
        Self {
            reserve,
            warn: reserve.saturating_mul(4),
        }
    }

    /// Starting needs room for a meaningful recording on top of the reserve.
    pub fn start_floor(&self) -> u64 {
        self.reserve.saturating_mul(2)
    }
}

impl Default for DiskPolicy {
    fn default() -> Self {
        Self {
            reserve: 256 * Self::MIB,
            warn: 1024 * Self::MIB,
        }
    }
}

/// Bytes available to this user on the file system holding `path`.
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: `st` is a valid out-parameter and `c` a NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Human-readable byte count, e.g. "1.5 GB".
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_sizes() {
        let cases = [
            (0, "0 B"),
            (999, "999 B"),
            (1000, "1.0 kB"),
            (1_500_000, "1.5 MB"),
            (3_210_000_000, "3.2 GB"),
        ];
        for (n, s) in cases {
            assert_eq!(human(n), s);
        }
    }

    #[test]
    fn reads_free_space_and_rejects_bad_paths() {
        assert!(free_bytes(Path::new("/")).unwrap() > 0);
        assert!(free_bytes(Path::new("/no/such/dir")).is_err());
    }
}
