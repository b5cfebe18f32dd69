//! A cheap "is this a finished MP4?" check before a file is queued: the first box is `ftyp` and a
//! `moov` box follows at the top level. It reads a few box headers (seeking over media data), never
//! the file's content, so it costs the same for a minute or an hour of video. It also reads the
//! movie duration from `mvhd` (or `mehd` for fragmented files) when the file states one.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// What the box scan found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mp4Info {
    /// The movie's duration if the file says (fragmented files written live often do not).
    pub duration_ms: Option<u64>,
}

/// Top-level boxes scanned at most; a real recording has a few thousand (two per fragment), and
/// `moov` comes early in fragmented files.
const MAX_BOXES: usize = 1_000_000;
/// `moov` is small (a few KiB to a few MiB); a bigger one is not worth reading for a duration.
const MAX_MOOV: u64 = 64 << 20;

/// Checks `path` looks like a finished MP4 (see the module doc). The error is one line.
pub fn check(path: &Path) -> Result<Mp4Info, String> {
    let mut f = File::open(path).map_err(|e| e.to_string())?;
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    match len {
        0 => return Err("the file is empty".into()),
        1..8 => return Err(format!("not an MP4 file ({len} bytes)")),
        _ => {}
    }
    // The type of the first box decides "is it an MP4 at all" before any size is trusted.
    let mut first = [0u8; 8];
    if len >= 8 {
        f.read_exact(&mut first).map_err(|e| e.to_string())?;
        if &first[4..8] != b"ftyp" {
            return Err("not an MP4 file (it does not start with an ftyp box)".into());
        }
    }
    let mut pos = 0u64;
    for i in 0..MAX_BOXES {
        if pos + 8 > len {
            break;
        }
        let (kind, header, size) = read_box_header(&mut f, pos, len)?;
        if i == 0 && &kind != b"ftyp" {
            return Err("not an MP4 file (it does not start with an ftyp box)".into());
        }
        if &kind == b"moov" {
            let body = size - header;
            let duration_ms = if body <= MAX_MOOV {
                let mut moov = vec![0u8; usize::try_from(body).map_err(|e| e.to_string())?];
                f.read_exact(&mut moov).map_err(|e| e.to_string())?;
                movie_duration_ms(&moov)
            } else {
                None
            };
            return Ok(Mp4Info { duration_ms });
        }
        pos += size;
    }
    Err("no moov box: the MP4 is incomplete (still being recorded, or cut short)".into())
}

/// Reads the box header at `pos`: (type, header length, total size). Size 0 means "to the end".
fn read_box_header(f: &mut File, pos: u64, len: u64) -> Result<([u8; 4], u64, u64), String> {
    f.seek(SeekFrom::Start(pos)).map_err(|e| e.to_string())?;
    let mut h = [0u8; 8];
    f.read_exact(&mut h).map_err(|e| e.to_string())?;
    let kind = [h[4], h[5], h[6], h[7]];
    let (header, size) = match u32::from_be_bytes([h[0], h[1], h[2], h[3]]) {
        0 => (8, len - pos),
        1 => {
            let mut big = [0u8; 8];
            f.read_exact(&mut big).map_err(|e| e.to_string())?;
            (16, u64::from_be_bytes(big))
        }
        s => (8, u64::from(s)),
    };
    if size < header || pos.saturating_add(size) > len {
        return Err(format!(
            "broken MP4 box {:?} at byte {pos} (the file is truncated or not an MP4)",
            String::from_utf8_lossy(&kind)
        ));
    }
    Ok((kind, header, size))
}

/// Iterates over the boxes inside a box body: (type, body).
fn children(mut data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 8 {
            return None;
        }
        let size = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
        let kind = [data[4], data[5], data[6], data[7]];
        if size < 8 || size > data.len() {
            return None;
        }
        let body = &data[8..size];
        data = &data[size..];
        Some((kind, body))
    })
}

fn be32(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 4)
        .map(|s| u64::from(u32::from_be_bytes([s[0], s[1], s[2], s[3]])))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at + 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_be_bytes(a))
}

/// Duration from `mvhd` (or `mvex/mehd` when `mvhd` says 0, as fragmented files do).
fn movie_duration_ms(moov: &[u8]) -> Option<u64> {
    let mut timescale = None;
    let mut duration = None;
    let mut fragment_duration = None;
    for (kind, body) in children(moov) {
        match &kind {
            b"mvhd" => {
                let v1 = body.first() == Some(&1);
                timescale = if v1 { be32(body, 20) } else { be32(body, 12) };
                duration = if v1 { be64(body, 24) } else { be32(body, 16) };
            }
            b"mvex" => {
                for (k, b) in children(body) {
                    if &k == b"mehd" {
                        fragment_duration = if b.first() == Some(&1) {
                            be64(b, 4)
                        } else {
                            be32(b, 4)
                        };
                    }
                }
            }
            _ => {}
        }
    }
    let ts = timescale.filter(|t| *t > 0)?;
    let d = duration
        .filter(|d| *d > 0 && *d != u64::from(u32::MAX))
        .or(fragment_duration.filter(|d| *d > 0))?;
    Some(d.saturating_mul(1000) / ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = u32::try_from(body.len() + 8)
            .unwrap()
            .to_be_bytes()
            .to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    fn mvhd_v0(timescale: u32, duration: u32) -> Vec<u8> {
        let mut b = vec![0u8; 100];
        b[12..16].copy_from_slice(&timescale.to_be_bytes());
        b[16..20].copy_from_slice(&duration.to_be_bytes());
        mp4_box(b"mvhd", &b)
    }

    fn check_bytes(bytes: &[u8]) -> Result<Mp4Info, String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.mp4");
        std::fs::write(&p, bytes).unwrap();
        check(&p)
    }

    #[test]
    fn table_of_files() {
        let ftyp = mp4_box(b"ftyp", b"isomiso2");
        let mdat = mp4_box(b"mdat", &[0u8; 1000]);
        let moov = mp4_box(b"moov", &mvhd_v0(1000, 2500));
        let moov_frag = {
            let mut body = mvhd_v0(1000, 0);
            let mut mehd = vec![0u8; 4];
            mehd.extend_from_slice(&3000u32.to_be_bytes());
            body.extend(mp4_box(b"mvex", &mp4_box(b"mehd", &mehd)));
            mp4_box(b"moov", &body)
        };
        let moov_unknown = mp4_box(b"moov", &mvhd_v0(1000, 0));
        let cat = |parts: &[&[u8]]| parts.concat();

        type Case = (&'static str, Vec<u8>, Result<Option<u64>, &'static str>);
        let cases: Vec<Case> = vec![
            ("moov first", cat(&[&ftyp, &moov, &mdat]), Ok(Some(2500))),
            (
                "moov after mdat",
                cat(&[&ftyp, &mdat, &moov]),
                Ok(Some(2500)),
            ),
            (
                "fragmented, mehd",
                cat(&[&ftyp, &moov_frag, &mdat]),
                Ok(Some(3000)),
            ),
            ("no duration stated", cat(&[&ftyp, &moov_unknown]), Ok(None)),
            ("empty file", vec![], Err("the file is empty")),
            (
                "7 bytes",
                b"\0\0\0\x08fty".to_vec(),
                Err("not an MP4 file (7 bytes)"),
            ),
            ("just an ftyp", ftyp.clone(), Err("no moov")),
            (
                "text file",
                b"hello, this is not a video at all".to_vec(),
                Err("ftyp"),
            ),
            ("no moov yet", cat(&[&ftyp, &mdat]), Err("no moov")),
            (
                "truncated mdat",
                cat(&[&ftyp, &mdat[..500]]),
                Err("broken MP4 box"),
            ),
            (
                "zero-size box",
                cat(&[&ftyp, &[0, 0, 0, 3, b'm', b'd', b'a', b't']]),
                Err("broken"),
            ),
        ];
        for (name, bytes, want) in cases {
            let got = check_bytes(&bytes);
            match (got, want) {
                (Ok(info), Ok(d)) => assert_eq!(info.duration_ms, d, "{name}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{name}: {e}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }
}
