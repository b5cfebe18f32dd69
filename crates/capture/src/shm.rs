//! Private SysV shared-memory segments for MIT-SHM capture.
//!
//! Why not `scrap`: its X11 capturer creates its segment with mode 0777, so on a shared lab
//! computer any local user could attach it and read the stage. Ours are created 0600 (owner
//! only) in the same `shmget` call, so there is no window in which they are readable by others,
//! and are marked for removal as soon as the X server has attached them, so a crash cannot leak
//! them either.

use std::io;
use std::ptr::NonNull;

/// One owner-only shared-memory segment, mapped into this process.
#[derive(Debug)]
pub struct ShmSegment {
    id: i32,
    addr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is owned exclusively by this value; moving it to another thread moves
// the only handle. Shared access goes through `&self` (read-only slices).
unsafe impl Send for ShmSegment {}
// SAFETY: `&ShmSegment` only hands out shared byte slices.
unsafe impl Sync for ShmSegment {}

/// The permission bits every capture segment is created with.
pub const SEGMENT_MODE: i32 = 0o600;

impl ShmSegment {
    pub fn new(len: usize) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty segment"));
        }
        // SAFETY: plain syscall; arguments are valid by construction.
        let id = unsafe { libc::shmget(libc::IPC_PRIVATE, len, libc::IPC_CREAT | SEGMENT_MODE) };
        if id < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `id` is a segment we just created; a null address lets the kernel choose.
        let addr = unsafe { libc::shmat(id, std::ptr::null(), 0) };
        if addr as isize == -1 {
            let err = io::Error::last_os_error();
            // SAFETY: removing the segment we created; nothing is attached.
            unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
            return Err(err);
        }
        let addr =
            NonNull::new(addr.cast::<u8>()).ok_or_else(|| io::Error::other("shmat gave null"))?;
        Ok(Self { id, addr, len })
    }

    pub fn id(&self) -> i32 {
        self.id
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Marks the segment for deletion once every process detached it. Call after the X server
    /// attached it: from then on a crash of either side frees the memory.
    pub fn mark_for_removal(&self) -> io::Result<()> {
        // SAFETY: valid id owned by us.
        let rc = unsafe { libc::shmctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the mapping is `len` bytes and lives as long as `self`. The X server writes
        // into it only while a GetImage request we issued is in flight, and we read only after
        // its reply arrived.
        unsafe { std::slice::from_raw_parts(self.addr.as_ptr(), self.len) }
    }

    /// Mode bits of the segment as the kernel reports them (for tests and diagnostics).
    pub fn mode(&self) -> io::Result<u32> {
        // SAFETY: `ds` is a valid out-parameter for IPC_STAT.
        let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::shmctl(self.id, libc::IPC_STAT, &mut ds) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(u32::from(ds.shm_perm.mode) & 0o777)
    }
}

impl Drop for ShmSegment {
    fn drop(&mut self) {
        // SAFETY: we attached `addr` and own `id`; errors here cannot be acted on.
        unsafe {
            libc::shmdt(self.addr.as_ptr().cast());
            libc::shmctl(self.id, libc::IPC_RMID, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_owner_only() {
        let seg = ShmSegment::new(4096).unwrap();
        assert_eq!(seg.mode().unwrap(), 0o600);
        assert_eq!(seg.as_slice().len(), 4096);
    }

    #[test]
    fn empty_segment_is_refused() {
        assert!(ShmSegment::new(0).is_err());
    }
}
