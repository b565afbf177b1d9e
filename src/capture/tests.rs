//! Property tests of the container formats, on files built here byte by
//! byte: pcapng frame numbering across sections and interfaces with their
//! own `if_tsresol`/`if_tsoffset` and byte order, and the four classic pcap
//! variants (little/big endian × micro/nanosecond).

use super::*;
use proptest::prelude::*;

/// Appends `v` in the section's byte order.
fn put32(out: &mut Vec<u8>, v: u32, be: bool) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

fn put16(out: &mut Vec<u8>, v: u16, be: bool) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

/// One pcapng block: type, total length, body (padded to 32 bits), length.
fn block(out: &mut Vec<u8>, kind: u32, body: &[u8], be: bool) {
    let padded = body.len().div_ceil(4) * 4;
    let total = (12 + padded) as u32;
    put32(out, kind, be);
    put32(out, total, be);
    out.extend_from_slice(body);
    out.resize(out.len() + padded - body.len(), 0);
    put32(out, total, be);
}

fn section_header(out: &mut Vec<u8>, be: bool) {
    let mut body = Vec::new();
    put32(&mut body, 0x1a2b_3c4d, be);
    put16(&mut body, 1, be);
    put16(&mut body, 0, be);
    body.extend_from_slice(&[0xff; 8]); // section length: unknown
    block(out, 0x0a0d_0d0a, &body, be);
}

#[derive(Debug, Clone)]
struct Iface {
    link: u16,
    tsresol: u8,
    tsoffset: i64,
}

fn interface_description(out: &mut Vec<u8>, iface: &Iface, be: bool) {
    let mut body = Vec::new();
    put16(&mut body, iface.link, be);
    put16(&mut body, 0, be);
    put32(&mut body, 262_144, be);
    // if_tsresol (9): one byte, padded.
    put16(&mut body, 9, be);
    put16(&mut body, 1, be);
    body.extend_from_slice(&[iface.tsresol, 0, 0, 0]);
    // if_tsoffset (14): signed 64-bit seconds.
    put16(&mut body, 14, be);
    put16(&mut body, 8, be);
    body.extend_from_slice(&if be {
        iface.tsoffset.to_be_bytes()
    } else {
        iface.tsoffset.to_le_bytes()
    });
    put16(&mut body, 0, be); // opt_endofopt
    put16(&mut body, 0, be);
    block(out, 1, &body, be);
}

fn enhanced_packet(out: &mut Vec<u8>, if_id: u32, ticks: u64, data: &[u8], be: bool) {
    let mut body = Vec::new();
    put32(&mut body, if_id, be);
    put32(&mut body, (ticks >> 32) as u32, be);
    put32(&mut body, ticks as u32, be);
    put32(&mut body, data.len() as u32, be);
    put32(&mut body, data.len() as u32 + 7, be);
    body.extend_from_slice(data);
    block(out, 6, &body, be);
}

/// Nanoseconds since the epoch of `ticks` at `tsresol`, computed another
/// way than the reader does: exact multiplication for powers of ten up to
/// 10^9, a shift for powers of two. Times past 2262 saturate.
fn expected_nanos(ticks: u64, tsresol: u8, offset: i64) -> i64 {
    let exp = u32::from(tsresol & 0x7f);
    let ns: i128 = if tsresol & 0x80 != 0 {
        (i128::from(ticks) * 1_000_000_000) >> exp
    } else if exp <= 9 {
        i128::from(ticks) * 10i128.pow(9 - exp)
    } else {
        i128::from(ticks) / 10i128.pow(exp - 9)
    };
    (ns + i128::from(offset) * 1_000_000_000).clamp(i64::MIN.into(), i64::MAX.into()) as i64
}

#[derive(Debug, Clone)]
struct Section {
    big_endian: bool,
    interfaces: Vec<Iface>,
    /// (interface index, tick count, data length)
    packets: Vec<(usize, u64, usize)>,
}

fn iface() -> impl Strategy<Value = Iface> {
    (
        prop::sample::select(vec![1u16, 101, 113, 276, 0, 228]),
        prop_oneof![0u8..=12, Just(0x80 | 10), Just(0x80 | 20), Just(0x80 | 30)],
        -1_000_000i64..1_000_000,
    )
        .prop_map(|(link, tsresol, tsoffset)| Iface {
            link,
            tsresol,
            tsoffset,
        })
}

fn section() -> impl Strategy<Value = Section> {
    (any::<bool>(), prop::collection::vec(iface(), 1..4)).prop_flat_map(|(be, ifaces)| {
        let n = ifaces.len();
        prop::collection::vec((0..n, 0u64..(1 << 60), 0usize..70), 0..8).prop_map(move |packets| {
            Section {
                big_endian: be,
                interfaces: ifaces.clone(),
                packets,
            }
        })
    })
}

proptest! {
    #[test]
    fn pcapng_frames_are_numbered_across_sections_with_each_interface_clock(
        sections in prop::collection::vec(section(), 1..5)
    ) {
        let mut file = Vec::new();
        // What each frame should come out as: (link, nanos, data).
        let mut expected: Vec<(u32, i64, Vec<u8>)> = Vec::new();
        for s in &sections {
            section_header(&mut file, s.big_endian);
            for i in &s.interfaces {
                interface_description(&mut file, i, s.big_endian);
            }
            for &(i, ticks, len) in &s.packets {
                let data: Vec<u8> = (0..len).map(|b| (expected.len() + b) as u8).collect();
                enhanced_packet(&mut file, i as u32, ticks, &data, s.big_endian);
                let iface = &s.interfaces[i];
                expected.push((
                    u32::from(iface.link),
                    expected_nanos(ticks, iface.tsresol, iface.tsoffset),
                    data,
                ));
            }
        }
        let mut got: Vec<(u64, u32, i64, Vec<u8>, u32)> = Vec::new();
        let facts = read_capture(&file[..], |r| {
            got.push((r.frame, r.link.0, r.ts.0, r.data.to_vec(), r.orig_len))
        })
        .unwrap();
        prop_assert_eq!(facts.damage, None);
        prop_assert_eq!(facts.sections as usize, sections.len());
        prop_assert_eq!(
            facts.interfaces as usize,
            sections.iter().map(|s| s.interfaces.len()).sum::<usize>()
        );
        prop_assert_eq!(facts.big_endian, sections.iter().any(|s| s.big_endian));
        prop_assert_eq!(facts.records as usize, expected.len());
        prop_assert_eq!(facts.bytes as usize, file.len());
        prop_assert_eq!(got.len(), expected.len());
        for (n, (g, e)) in got.iter().zip(&expected).enumerate() {
            prop_assert_eq!(g.0, n as u64 + 1, "frame numbers are 1..=total");
            prop_assert_eq!(g.1, e.0, "frame {} link type", g.0);
            prop_assert_eq!(g.2, e.1, "frame {} time", g.0);
            prop_assert_eq!(&g.3, &e.2, "frame {} data", g.0);
            prop_assert_eq!(g.4 as usize, e.2.len() + 7, "frame {} orig_len", g.0);
        }
    }

    #[test]
    fn pcap_byte_order_and_precision_variants_read_alike(
        big_endian: bool,
        nanosecond: bool,
        link in prop::sample::select(vec![1u32, 101, 113, 276, 0x0400_0001]),
        records in prop::collection::vec((any::<u32>(), 0u32..2_000_000_000, 0usize..100), 0..20),
    ) {
        let be = big_endian;
        let mut file = Vec::new();
        put32(&mut file, if nanosecond { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }, be);
        put16(&mut file, 2, be);
        put16(&mut file, 4, be);
        file.extend_from_slice(&[0; 8]);
        put32(&mut file, 65_535, be);
        put32(&mut file, link, be);
        for (i, &(secs, frac, len)) in records.iter().enumerate() {
            put32(&mut file, secs, be);
            put32(&mut file, frac, be);
            put32(&mut file, len as u32, be);
            put32(&mut file, len as u32 + 1, be);
            file.extend((0..len).map(|b| (i + b) as u8));
        }
        let mut got = Vec::new();
        let facts = read_capture(&file[..], |r| got.push((r.frame, r.ts, r.link, r.data.len(), r.orig_len)))
            .unwrap();
        prop_assert_eq!(facts.damage, None);
        prop_assert_eq!(facts.big_endian, be);
        prop_assert_eq!(
            facts.format,
            if nanosecond { CaptureFormat::PcapNanosecond } else { CaptureFormat::Pcap }
        );
        prop_assert_eq!(got.len(), records.len());
        for (n, (g, &(secs, frac, len))) in got.iter().zip(&records).enumerate() {
            let frac_ns = if nanosecond { i64::from(frac) } else { i64::from(frac) * 1000 };
            prop_assert_eq!(g.0, n as u64 + 1);
            prop_assert_eq!(g.1, crate::time::Timestamp(i64::from(secs) * 1_000_000_000 + frac_ns));
            // The FCS bits above the low 16 are not part of the link type.
            prop_assert_eq!(g.2, LinkType(link & 0xffff));
            prop_assert_eq!(g.3, len);
            prop_assert_eq!(g.4 as usize, len + 1);
        }
    }
}

/// Gives at most `.1` bytes a read, so that records straddle reads and the
/// reader refills in the middle of them.
struct Trickle<'a>(&'a [u8], usize);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.1).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// A record's captured length: small ones, and lengths at and past the
/// 4 MiB limit with no data behind them.
fn caplen() -> impl Strategy<Value = u32> {
    prop_oneof![
        8 => 0u32..200,
        1 => prop::sample::select(vec![
            (4 << 20) - 17,
            (4 << 20) - 16,
            (4 << 20) - 15,
            4 << 20,
            0xffff_fff0,
            u32::MAX,
        ]),
    ]
}

proptest! {
    /// `next_plain` reads a classic pcap as pcap-parser's `next` does: the
    /// same records, and the same end (damage kind, message, frame and
    /// offset), however the file is cut and however its reads are split.
    #[test]
    fn plain_records_read_as_pcap_parser_reads_them(
        big_endian: bool,
        nanosecond: bool,
        modified: bool,
        records in prop::collection::vec((any::<u32>(), any::<u32>(), caplen()), 0..12),
        cut in any::<prop::sample::Index>(),
        chunk in prop_oneof![1usize..40, Just(usize::MAX)],
    ) {
        let be = big_endian;
        let mut file = Vec::new();
        let magic = match (modified, nanosecond) {
            (true, _) => 0xa1b2_cd34,
            (false, true) => 0xa1b2_3c4d,
            (false, false) => 0xa1b2_c3d4,
        };
        put32(&mut file, magic, be);
        put16(&mut file, 2, be);
        put16(&mut file, 4, be);
        file.extend_from_slice(&[0; 8]);
        put32(&mut file, 65_535, be);
        put32(&mut file, 1, be);
        for (i, &(secs, frac, len)) in records.iter().enumerate() {
            put32(&mut file, secs, be);
            put32(&mut file, frac, be);
            put32(&mut file, len, be);
            put32(&mut file, len.wrapping_add(3), be);
            if modified {
                file.extend_from_slice(&[0; 8]);
            }
            if len < 200 {
                file.extend((0..len).map(|b| (i as u32 + b) as u8));
            }
        }
        file.truncate(24 + cut.index(file.len() - 23));
        let read = |plain: bool| {
            let mut got = Vec::new();
            let facts = super::reader::read_pcap(
                Trickle(&file, chunk),
                |r| {
                    got.push((r.frame, r.ts, r.link, r.data.to_vec(), r.orig_len));
                    std::ops::ControlFlow::Continue(())
                },
                plain,
            )
            .map(|f| (f.records, f.bytes, f.damage, f.big_endian, f.format));
            (got, facts.map_err(|e| e.to_string()))
        };
        let (got, facts) = read(true);
        let (expected, expected_facts) = read(false);
        prop_assert_eq!(got, expected);
        prop_assert_eq!(facts, expected_facts);
    }
}

/// A pcap with one record at `secs` seconds.
fn pcap_at(secs: u32) -> Vec<u8> {
    let mut out = Vec::new();
    put32(&mut out, 0xa1b2_c3d4, false);
    put16(&mut out, 2, false);
    put16(&mut out, 4, false);
    put32(&mut out, 0, false);
    put32(&mut out, 0, false);
    put32(&mut out, 65535, false);
    put32(&mut out, 1, false);
    put32(&mut out, secs, false);
    put32(&mut out, 0, false);
    put32(&mut out, 14, false);
    put32(&mut out, 14, false);
    out.extend_from_slice(&[0u8; 14]);
    out
}

#[test]
fn rotated_files_are_put_in_the_order_of_their_first_record() {
    let dir = std::env::temp_dir().join(format!("tw-order-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |n: &str| dir.join(n).to_str().unwrap().to_string();
    // Names sort the wrong way round: dump.pcap10 before dump.pcap2.
    std::fs::write(path("dump.pcap10"), pcap_at(2_000)).unwrap();
    std::fs::write(path("dump.pcap2"), pcap_at(1_000)).unwrap();
    std::fs::write(path("broken.pcap"), b"not a capture").unwrap();
    let given = vec![path("broken.pcap"), path("dump.pcap10"), path("dump.pcap2")];
    assert_eq!(
        super::in_time_order(&given),
        vec![path("dump.pcap2"), path("dump.pcap10"), path("broken.pcap")]
    );
    // Standard input cannot be peeked at: the order stays as given.
    let with_stdin = vec![path("dump.pcap10"), "-".to_string()];
    assert_eq!(super::in_time_order(&with_stdin), with_stdin);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Records the largest read asked of it.
struct Asked<'a> {
    data: &'a [u8],
    largest: &'a std::cell::Cell<usize>,
}

impl std::io::Read for Asked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.largest.set(self.largest.get().max(buf.len()));
        let n = buf.len().min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// No read, the first included, asks for more than 256 KiB: a read of the
/// whole 4 MiB buffer touched every page of it before the first record
/// was parsed (4 MB more resident, 3-4 ms later to the first record), and
/// later reads never use more than its first part. Records that straddle
/// reads, and one larger than a read, still come whole.
#[test]
fn no_read_asks_for_more_than_256_kib() {
    let big = vec![7u8; 300 << 10];
    let mut pcap = Vec::new();
    put32(&mut pcap, 0xa1b2_c3d4, false);
    put16(&mut pcap, 2, false);
    put16(&mut pcap, 4, false);
    pcap.extend_from_slice(&[0; 8]);
    put32(&mut pcap, 1 << 20, false);
    put32(&mut pcap, 1, false);
    let mut pcapng = Vec::new();
    section_header(&mut pcapng, false);
    let ethernet = Iface {
        link: 1,
        tsresol: 6,
        tsoffset: 0,
    };
    interface_description(&mut pcapng, &ethernet, false);
    let lens: Vec<usize> = (0..6000)
        .map(|i| if i == 3000 { big.len() } else { 60 + i % 1400 })
        .collect();
    for (i, &len) in lens.iter().enumerate() {
        put32(&mut pcap, i as u32, false);
        put32(&mut pcap, 0, false);
        put32(&mut pcap, len as u32, false);
        put32(&mut pcap, len as u32, false);
        pcap.extend_from_slice(&big[..len]);
        enhanced_packet(&mut pcapng, 0, i as u64, &big[..len], false);
    }
    for file in [&pcap, &pcapng] {
        assert!(file.len() > 4 << 20, "larger than the buffer");
        let largest = std::cell::Cell::new(0);
        let mut got = Vec::new();
        let facts = read_capture(
            Asked {
                data: file,
                largest: &largest,
            },
            |r| got.push(r.data.len()),
        )
        .unwrap();
        assert_eq!(facts.damage, None);
        assert_eq!(got, lens);
        assert!(
            largest.get() <= 256 << 10,
            "a read asked for {} bytes",
            largest.get()
        );
    }
}
