//! Truncation everywhere: every fixture capture cut at every record
//! boundary ± a few bytes and at pseudo-random offsets, analyzed in-process.
//!
//! The record boundaries come from walking the pcap/pcapng structure here,
//! independently of the reader. For every cut:
//!
//! * a cut inside the file header (pcap's 24 bytes, pcapng's first
//!   section header block) may fail, but only with the documented header
//!   errors (`Empty`, `ShortHeader`, `BadHeader`);
//! * any other cut reads: exactly the complete records before the cut are
//!   delivered, and when bytes remain past the last complete record (or
//!   block) the damage is `Truncated` with `after_frame` = that count;
//! * at sampled cuts, the connections are those of the complete prefix,
//!   analyzed on its own.

use std::path::Path;
use timewait::analysis::{Analysis, Options, analyze};
use timewait::capture::{CaptureError, DamageKind};

/// The structure of a capture file, as this test reads it.
struct Layout {
    /// Bytes of the file header: pcap's 24, or pcapng's first SHB.
    header: usize,
    /// End offset of every complete block (pcapng) or record (pcap), with
    /// the number of packet records complete at that offset.
    ends: Vec<(usize, u64)>,
}

impl Layout {
    /// Packet records complete before `cut`, and the end of the last
    /// complete block.
    fn complete_before(&self, cut: usize) -> (u64, usize) {
        let i = self.ends.partition_point(|(end, _)| *end <= cut);
        match i {
            0 => (0, self.header),
            _ => (self.ends[i - 1].1, self.ends[i - 1].0),
        }
    }
}

fn u32_at(b: &[u8], at: usize, be: bool) -> u32 {
    let w: [u8; 4] = b[at..at + 4].try_into().unwrap();
    if be {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    }
}

fn layout(bytes: &[u8]) -> Layout {
    if bytes[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
        let mut ends = Vec::new();
        let (mut off, mut be, mut records) = (0, false, 0u64);
        let mut header = 0;
        while off + 12 <= bytes.len() {
            let kind = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap());
            if kind == 0x0a0d_0d0a {
                be = bytes[off + 8..off + 12] == [0x1a, 0x2b, 0x3c, 0x4d];
            }
            let len = u32_at(bytes, off + 4, be) as usize;
            assert!(len >= 12 && off + len <= bytes.len(), "fixture is whole");
            let kind = u32_at(bytes, off, be);
            // Enhanced, Simple and the obsolete Packet Block are records.
            if matches!(kind, 6 | 3 | 2) {
                records += 1;
            }
            off += len;
            if header == 0 {
                header = off;
            } else {
                ends.push((off, records));
            }
        }
        assert_eq!(off, bytes.len());
        Layout { header, ends }
    } else {
        let be = bytes[..4] == [0xa1, 0xb2, 0xc3, 0xd4] || bytes[..4] == [0xa1, 0xb2, 0x3c, 0x4d];
        let mut ends = Vec::new();
        let mut off = 24;
        while off < bytes.len() {
            off += 16 + u32_at(bytes, off + 8, be) as usize;
            ends.push((off, ends.len() as u64 + 1));
        }
        assert_eq!(off, bytes.len(), "fixture is whole");
        Layout { header: 24, ends }
    }
}

/// The fixture captures, except the one that is truncated on purpose.
fn fixture_captures() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            (name.ends_with(".pcap") || name.ends_with(".pcapng")) && name != "truncated.pcap"
        })
        .collect();
    out.sort();
    out
}

/// Where to cut: every record boundary ± 3 bytes (boundaries sampled
/// evenly in large files), inside the header, and pseudo-random offsets.
fn cuts(l: &Layout, len: usize, seed: u64) -> Vec<usize> {
    let mut out: Vec<usize> = (0..=l.header + 3).collect();
    let step = l.ends.len().div_ceil(60).max(1);
    for (i, (end, _)) in l.ends.iter().enumerate() {
        if i % step == 0 || i + 3 >= l.ends.len() {
            out.extend(end.saturating_sub(3)..=end + 3);
        }
    }
    let mut x = seed | 1;
    for _ in 0..40 {
        // xorshift64: deterministic, no dependency.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push((x % len as u64) as usize);
    }
    out.retain(|c| *c <= len);
    out.sort_unstable();
    out.dedup();
    out
}

/// What the connections of an analysis are, for comparing two runs.
fn connections(a: &Analysis) -> Vec<(String, String, u64, u64, String)> {
    a.connections
        .iter()
        .map(|c| {
            (
                c.client.to_string(),
                c.server.to_string(),
                c.first_frame.0,
                c.last_frame.0,
                c.history.to_string(),
            )
        })
        .collect()
}

#[test]
fn every_cut_of_every_fixture_delivers_the_complete_records_and_reports_truncation() {
    let options = Options::default();
    let mut checked = 0;
    for path in fixture_captures() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(&path).unwrap();
        let l = layout(&bytes);
        let cuts = cuts(&l, bytes.len(), bytes.len() as u64 * 0x9e37_79b9);
        for (n, &cut) in cuts.iter().enumerate() {
            let result = analyze(&name, &bytes[..cut], &options);
            if cut < l.header {
                // Inside the file header: no records, and either a header
                // error or (pcapng SHB read whole but its options cut) a
                // truncated, empty capture.
                match result {
                    Err(
                        CaptureError::Empty
                        | CaptureError::ShortHeader { .. }
                        | CaptureError::BadHeader { .. },
                    ) => {}
                    Err(e) => panic!("{name} cut at {cut}: undocumented header error {e:?}"),
                    Ok(a) => {
                        assert_eq!(a.captures[0].packets, 0, "{name} cut at {cut}");
                        let d = a.captures[0].damage.as_ref();
                        assert_eq!(
                            d.map(|d| d.kind),
                            Some(DamageKind::Truncated),
                            "{name} {cut}"
                        );
                    }
                }
                continue;
            }
            let a = result.unwrap_or_else(|e| panic!("{name} cut at {cut}: {e}"));
            let cap = &a.captures[0];
            let (records, complete_end) = l.complete_before(cut);
            assert_eq!(
                cap.packets, records,
                "{name} cut at {cut}: records delivered"
            );
            if cut > complete_end {
                let d = cap
                    .damage
                    .as_ref()
                    .unwrap_or_else(|| panic!("{name} cut at {cut}: no damage reported"));
                assert_eq!(d.kind, DamageKind::Truncated, "{name} cut at {cut}: {d:?}");
                assert_eq!(d.after_frame, records, "{name} cut at {cut}");
                assert!(cap.truncated);
            } else {
                assert_eq!(cap.damage, None, "{name} cut at a block boundary {cut}");
            }
            // Every few cuts: the connections are those of the complete
            // prefix alone (truncation loses nothing before it).
            if n % 8 == 0 && cut > complete_end {
                let whole = analyze(&name, &bytes[..complete_end], &options).unwrap();
                assert_eq!(connections(&a), connections(&whole), "{name} cut at {cut}");
                assert_eq!(a.summary.connections, whole.summary.connections);
            }
            checked += 1;
        }
    }
    assert!(checked > 1000, "only {checked} cuts checked");
}
