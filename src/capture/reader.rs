//! The one place that drives pcap-parser's streaming readers
//! (`next` / `consume` / `refill`), so memory stays at one buffer however
//! large the file is.

use super::timestamp::{PcapngClock, pcap_timestamp};
use super::{CaptureError, CaptureFacts, CaptureFormat, Damage, DamageKind, LinkType, Record};
use crate::time::Timestamp;
use pcap_parser::pcapng::Block;
use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{LegacyPcapBlock, LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};
use std::io::{Cursor, Read};
use std::ops::ControlFlow;

/// The read buffer, of which each read fills at most [`READ_BYTES`];
/// also the largest record we accept. Wireshark's own
/// limit for ordinary link types is 256 KiB, so 4 MiB only rejects lengths
/// that are damage (the corpus has 4 GB "records").
const BUFFER_BYTES: usize = 4 << 20;

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
/// Block type of the obsolete Packet Block (pcapng draft, still written by old tools).
const OPB_TYPE: u32 = 2;

/// Reads a whole capture, calling `on_record` for every packet record in
/// file order. Returns what was learned about the file; damage after the
/// header (truncation, a corrupt record) ends reading but is not an error:
/// it is reported in [`CaptureFacts::damage`] and everything before it was
/// delivered.
pub fn read_capture<R: Read, F: FnMut(&Record<'_>)>(
    input: R,
    mut on_record: F,
) -> Result<CaptureFacts, CaptureError> {
    read_capture_until(input, |r| {
        on_record(r);
        ControlFlow::Continue(())
    })
}

/// Several files as one timeline: rotated `tcpdump -C/-G` files in the
/// order of their first record, whatever their names sort to
/// (`dump.pcap10` sorts before `dump.pcap2`). Standard input (`-`) keeps
/// the order as given; files that cannot be read or hold no record go
/// last, in the order given.
pub fn in_time_order(paths: &[String]) -> Vec<String> {
    if paths.len() < 2 || paths.iter().any(|f| f == "-") {
        return paths.to_vec();
    }
    let mut keyed: Vec<(Option<Timestamp>, usize, &String)> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let first = std::fs::File::open(p)
                .ok()
                .and_then(|f| first_timestamp(f).ok().flatten());
            (first, i, p)
        })
        .collect();
    keyed.sort_by_key(|(ts, i, _)| (ts.is_none(), *ts, *i));
    keyed.into_iter().map(|(_, _, p)| p.clone()).collect()
}

/// The time of the first record, reading no further: used to put rotated
/// files (`tcpdump -C/-G`) in time order. None for a capture without records.
pub fn first_timestamp<R: Read>(input: R) -> Result<Option<Timestamp>, CaptureError> {
    let mut first = None;
    read_capture_until(input, |r| {
        first = Some(r.ts);
        ControlFlow::Break(())
    })?;
    Ok(first)
}

/// [`read_capture`], stopping after the record for which `on_record`
/// returns `Break`.
pub fn read_capture_until<R: Read, F: FnMut(&Record<'_>) -> ControlFlow<()>>(
    input: R,
    on_record: F,
) -> Result<CaptureFacts, CaptureError> {
    // gzip and zstd are undone on the fly, detected by magic.
    let mut input = super::Input::new(input).map_err(CaptureError::Io)?;
    let mut prefix = [0u8; 32];
    let got = read_up_to(&mut input, &mut prefix).map_err(CaptureError::Io)?;
    if got == 0 {
        return Err(CaptureError::Empty);
    }
    let head = &prefix[..got];
    let format = sniff(head)?;
    let chained = FullReads {
        input: Cursor::new(head.to_vec()).chain(input),
    };
    match format {
        Sniffed::Pcap => read_pcap(chained, on_record, true),
        Sniffed::Pcapng => read_pcapng(chained, on_record),
    }
}

enum Sniffed {
    Pcap,
    Pcapng,
}

fn sniff(head: &[u8]) -> Result<Sniffed, CaptureError> {
    if head.len() < 4 {
        return Err(CaptureError::ShortHeader { len: head.len() });
    }
    let magic = [head[0], head[1], head[2], head[3]];
    let be = u32::from_be_bytes(magic);
    let le = u32::from_le_bytes(magic);
    let pcap_magics = [0xa1b2_c3d4, 0xa1b2_3c4d, 0xa1b2_cd34];
    if magic == PCAPNG_MAGIC {
        if head.len() < 28 {
            return Err(CaptureError::ShortHeader { len: head.len() });
        }
        // Byte-order magic decides the section's endianness; version 1.x only.
        let bom = &head[8..12];
        let major = match bom {
            [0x4d, 0x3c, 0x2b, 0x1a] => u16::from_le_bytes([head[12], head[13]]),
            [0x1a, 0x2b, 0x3c, 0x4d] => u16::from_be_bytes([head[12], head[13]]),
            _ => {
                return Err(CaptureError::BadHeader {
                    reason: format!("pcapng byte-order magic {bom:02x?} is not 0x1a2b3c4d"),
                });
            }
        };
        if major != 1 {
            return Err(CaptureError::BadHeader {
                reason: format!("pcapng version {major} (only 1.x exists)"),
            });
        }
        return Ok(Sniffed::Pcapng);
    }
    if pcap_magics.contains(&be) || pcap_magics.contains(&le) {
        if head.len() < 24 {
            return Err(CaptureError::ShortHeader { len: head.len() });
        }
        let major = if pcap_magics.contains(&le) {
            u16::from_le_bytes([head[4], head[5]])
        } else {
            u16::from_be_bytes([head[4], head[5]])
        };
        if major != 2 {
            return Err(CaptureError::BadHeader {
                reason: format!("pcap version {major} (only 2.x is readable)"),
            });
        }
        return Ok(Sniffed::Pcap);
    }
    Err(CaptureError::NotACapture {
        head: [head[0], head[1], head[2], head[3]],
    })
}

/// Fills `buf` as far as the input allows; pipes may deliver a header in
/// several short reads.
fn read_up_to<R: Read>(input: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Bytes asked for by each read after the first: the records of one read
/// are parsed while still in the core's cache (a whole 4 MiB buffer is
/// not, and reading it was a fifth of the reading thread). No less than
/// [`Input`]'s buffer, so that a plain file's reads skip it (64 KiB reads
/// went through it, a second copy, and cost more than they saved).
///
/// [`Input`]: super::Input
const READ_BYTES: usize = super::compressed::BUFFER_BYTES;

/// Makes every `read` fill what it asks for, at most [`READ_BYTES`],
/// unless the input ends: pipes deliver data in short pieces, and
/// pcap-parser parses the pcapng section header from its first `read`
/// alone (the corpus's largest is 3.6 KB). The reader only refills when
/// the next record is incomplete, so a record larger than that takes
/// several reads, and the buffer's size stays the largest record accepted.
/// (The first read filled the whole 4 MiB buffer: every page of it touched
/// before the first record was parsed, 3-4 ms at the start of each run and
/// 4 MB of resident memory that the later reads, which use the buffer's
/// first [`READ_BYTES`] or so, never needed.)
struct FullReads<R> {
    input: R,
}

impl<R: Read> Read for FullReads<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = buf.len().min(READ_BYTES);
        read_up_to(&mut self.input, &mut buf[..want])
    }
}

/// Shared bookkeeping of both readers.
struct Progress {
    frame: u64,
    consumed: u64,
}

impl Progress {
    fn damage(&self, kind: DamageKind, message: String) -> Damage {
        Damage {
            kind,
            after_frame: self.frame,
            offset: self.consumed,
            message,
        }
    }

    /// The record after the last one delivered claims `declared` bytes.
    fn too_large(&self, declared: Option<u32>) -> Damage {
        let next = self.frame + 1;
        let message = match declared {
            Some(len) => format!(
                "record {next} declares {len} bytes, more than the {} MiB limit; the file is damaged",
                BUFFER_BYTES >> 20
            ),
            None => format!("record {next} is larger than the read buffer"),
        };
        self.damage(DamageKind::Corrupt, message)
    }
}

/// What one `next()` call means for the loop.
enum Step {
    Consumed(usize),
    Refill,
    End,
    Stop(DamageKind, String),
    /// The next record does not fit the buffer: its length is damage.
    TooLarge,
}

/// Carries out one step on the reader. `Break` ends the reading loop, with
/// the damage that ended it if any; `stop` is the caller's wish to end after
/// this record; `length_field` is where the next record's declared length
/// sits (offset, big-endian) for the too-large message.
fn advance(
    step: Step,
    reader: &mut impl PcapReaderIterator,
    progress: &mut Progress,
    stop: bool,
    length_field: (usize, bool),
) -> ControlFlow<Option<Damage>> {
    match step {
        Step::Consumed(len) => {
            // No shift here: `refill` moves the unread rest (part of one
            // record) to the front. `consume` moved half the buffer each
            // time it passed the middle, copying nearly every byte read.
            reader.consume_noshift(len);
            progress.consumed += len as u64;
            if stop {
                ControlFlow::Break(None)
            } else {
                ControlFlow::Continue(())
            }
        }
        Step::Refill => match reader.refill() {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => ControlFlow::Break(Some(progress.damage(DamageKind::Io, e.to_string()))),
        },
        Step::End => ControlFlow::Break(None),
        Step::Stop(kind, message) => ControlFlow::Break(Some(progress.damage(kind, message))),
        Step::TooLarge => {
            let declared = u32_at(reader.data(), length_field.0, length_field.1);
            ControlFlow::Break(Some(progress.too_large(declared)))
        }
    }
}

/// Translates a pcap-parser error into the loop's next step.
fn classify(err: &PcapError<&[u8]>, frame: u64) -> Step {
    let next = frame + 1;
    match err {
        PcapError::Eof => Step::End,
        PcapError::Incomplete(_) => Step::Refill,
        PcapError::UnexpectedEof => Step::Stop(
            DamageKind::Truncated,
            format!("the file ends in the middle of record {next}"),
        ),
        PcapError::BufferTooSmall => Step::TooLarge,
        PcapError::ReadError => Step::Stop(DamageKind::Io, "read error".to_string()),
        _ => Step::Stop(
            DamageKind::Corrupt,
            format!("record {next} cannot be parsed: {}", describe(err)),
        ),
    }
}

/// A pcap-parser error in one short line. Its Display of a parse error
/// prints the whole remaining input as a list of numbers ("Internal parser
/// error Verify, input [0, 0, ...]"): up to the 4 MiB buffer, i.e. ~20 MB
/// in one stderr line and in the JSON `damage.message` (the fuzzers and the
/// hostile-size tests found it). Keep only the check that failed.
fn describe<I>(err: &PcapError<I>) -> String
where
    PcapError<I>: std::fmt::Display,
{
    match err {
        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
            format!("malformed block or record header ({kind:?} check failed)")
        }
        other => other.to_string(),
    }
}

fn u32_at(data: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let b: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

/// A pcap file's records. `plain_records`: read those of 16-byte headers
/// with [`next_plain`] rather than pcap-parser's `next` (false only in the
/// test that compares the two).
pub(super) fn read_pcap<R: Read, F: FnMut(&Record<'_>) -> ControlFlow<()>>(
    input: R,
    mut on_record: F,
    plain_records: bool,
) -> Result<CaptureFacts, CaptureError> {
    let mut reader =
        LegacyPcapReader::new(BUFFER_BYTES, input).map_err(|e| CaptureError::BadHeader {
            reason: describe(&e),
        })?;
    let mut facts = CaptureFacts {
        format: CaptureFormat::Pcap,
        big_endian: false,
        sections: 1,
        interfaces: 1,
        records: 0,
        bytes: 0,
        damage: None,
        skipped_blocks: 0,
    };
    let mut nanosecond = false;
    let mut link = LinkType::ETHERNET;
    let mut progress = Progress {
        frame: 0,
        consumed: 0,
    };
    let mut stop = false;
    // Past the header of a file with 16-byte record headers: its byte
    // order, and the records are read by `next_plain`.
    let mut plain: Option<bool> = None;
    loop {
        let next = match plain {
            Some(big_endian) => next_plain(&reader, big_endian)
                .map(|(len, block)| (len, PcapBlockOwned::Legacy(block))),
            None => reader.next(),
        };
        let step = match next {
            Ok((len, PcapBlockOwned::LegacyHeader(header))) => {
                if plain_records && !header.is_modified_format() {
                    plain = Some(header.is_bigendian());
                }
                facts.big_endian = header.is_bigendian();
                nanosecond = header.is_nanosecond_precision();
                facts.format = if header.is_modified_format() {
                    CaptureFormat::PcapModified
                } else if nanosecond {
                    CaptureFormat::PcapNanosecond
                } else {
                    CaptureFormat::Pcap
                };
                // The upper bits of the field carry FCS information (pcap spec
                // §LinkType); the link type itself is the low 16 bits.
                link = LinkType(header.network.0 as u32 & 0xffff);
                Step::Consumed(len)
            }
            Ok((len, PcapBlockOwned::Legacy(block))) => {
                progress.frame += 1;
                stop |= on_record(&Record {
                    frame: progress.frame,
                    ts: pcap_timestamp(block.ts_sec, block.ts_usec, nanosecond),
                    link,
                    data: block.data,
                    orig_len: block.origlen,
                })
                .is_break();
                Step::Consumed(len)
            }
            Ok((len, PcapBlockOwned::NG(_))) => Step::Consumed(len),
            Err(e) => classify(&e, progress.frame),
        };
        // A record header's length field: bytes 8..12 (caplen).
        let length_field = (8, facts.big_endian);
        if let ControlFlow::Break(damage) =
            advance(step, &mut reader, &mut progress, stop, length_field)
        {
            facts.damage = damage;
            break;
        }
    }
    facts.records = progress.frame;
    facts.bytes = progress.consumed;
    Ok(facts)
}

/// The next record of a pcap file whose record headers are the standard 16
/// bytes, exactly as pcap-parser's `LegacyPcapReader::next` gives it
/// (`parse_pcap_frame` or `_be`, then its end-of-file, truncation and
/// buffer-size rules, in its order), read in place: its `next` took about a
/// hundred instructions a record in calls (the parser by function pointer,
/// nom's `take`, the buffer's accessors). Test
/// `plain_records_read_as_pcap_parser_reads_them`.
fn next_plain(
    reader: &impl PcapReaderIterator,
    big_endian: bool,
) -> Result<(usize, LegacyPcapBlock<'_>), PcapError<&[u8]>> {
    let data = reader.data();
    if data.is_empty() && reader.position() == 0 && reader.reader_exhausted() {
        return Err(PcapError::Eof);
    }
    let needed = if data.len() < 16 {
        16 - data.len()
    } else {
        let word = |at: usize| {
            let b = [data[at], data[at + 1], data[at + 2], data[at + 3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let caplen = word(8);
        let len = caplen as usize;
        match data[16..].get(..len) {
            Some(bytes) => {
                let block = LegacyPcapBlock {
                    ts_sec: word(0),
                    ts_usec: word(4),
                    caplen,
                    origlen: word(12),
                    data: bytes,
                };
                return Ok((16 + len, block));
            }
            None => len - (data.len() - 16),
        }
    };
    // As `next` treats nom's `Incomplete`.
    if reader.reader_exhausted() {
        Err(PcapError::UnexpectedEof)
    } else if data.len() + needed >= BUFFER_BYTES {
        Err(PcapError::BufferTooSmall)
    } else {
        Err(PcapError::Incomplete(needed))
    }
}

/// One interface of the current pcapng section.
#[derive(Clone, Copy)]
struct Interface {
    link: LinkType,
    clock: PcapngClock,
}

fn read_pcapng<R: Read, F: FnMut(&Record<'_>) -> ControlFlow<()>>(
    input: R,
    mut on_record: F,
) -> Result<CaptureFacts, CaptureError> {
    let mut reader =
        PcapNGReader::new(BUFFER_BYTES, input).map_err(|e| CaptureError::BadHeader {
            reason: describe(&e),
        })?;
    let mut facts = CaptureFacts {
        format: CaptureFormat::Pcapng,
        big_endian: false,
        sections: 0,
        interfaces: 0,
        records: 0,
        bytes: 0,
        damage: None,
        skipped_blocks: 0,
    };
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut section_big_endian = false;
    let mut last_ts = Timestamp::default();
    let mut progress = Progress {
        frame: 0,
        consumed: 0,
    };
    let mut stop = false;
    loop {
        // Every pcapng block is at least 12 bytes (type, two lengths).
        // pcap-parser 0.17 computes `block_len - 12` before checking that
        // for the Process Information Block (its HDR_SZ is 4; block.rs:162),
        // which panics with overflow checks on (debug builds, fuzzing) and
        // wraps to a 4 GiB read otherwise. Found by the pipeline fuzzer.
        if let Some(block_len) = block_len(reader.data(), section_big_endian)
            && block_len < 12
        {
            facts.damage = Some(progress.damage(
                DamageKind::Corrupt,
                format!(
                    "the block after frame {} declares a length of {block_len} bytes, less than the 12-byte minimum; the file is damaged",
                    progress.frame
                ),
            ));
            break;
        }
        let step = match reader.next() {
            Ok((len, PcapBlockOwned::NG(block))) => {
                match block {
                    Block::SectionHeader(shb) => {
                        // Interfaces are numbered per section (pcapng §4.1).
                        interfaces.clear();
                        facts.sections += 1;
                        section_big_endian = shb.big_endian();
                        facts.big_endian |= section_big_endian;
                    }
                    Block::InterfaceDescription(idb) => {
                        facts.interfaces += 1;
                        // pcap-parser 0.17 decodes if_tsoffset little-endian
                        // whatever the section's byte order (its
                        // pcapng/time.rs), so a big-endian +3600 s reads as
                        // about -2^62 s; swapping the bytes undoes that.
                        let tsoffset = if section_big_endian {
                            idb.if_tsoffset.swap_bytes()
                        } else {
                            idb.if_tsoffset
                        };
                        interfaces.push(Interface {
                            link: LinkType(u32::from(idb.linktype.0 as u16)),
                            clock: PcapngClock::from_tsresol(idb.if_tsresol, tsoffset),
                        });
                    }
                    Block::EnhancedPacket(epb) => {
                        progress.frame += 1;
                        let iface = interfaces.get(epb.if_id as usize).copied();
                        let ts = iface
                            .map(|i| i.clock)
                            .unwrap_or_default()
                            .to_timestamp(epb.ts_high, epb.ts_low);
                        last_ts = ts;
                        stop |= on_record(&Record {
                            frame: progress.frame,
                            ts,
                            link: iface.map_or(LinkType(u32::MAX), |i| i.link),
                            data: epb.packet_data(),
                            orig_len: epb.origlen,
                        })
                        .is_break();
                    }
                    Block::SimplePacket(spb) => {
                        // An SPB has no timestamp and always belongs to
                        // interface 0; it inherits the previous record's time
                        // so the timeline stays ordered.
                        progress.frame += 1;
                        stop |= on_record(&Record {
                            frame: progress.frame,
                            ts: last_ts,
                            link: interfaces.first().map_or(LinkType(u32::MAX), |i| i.link),
                            data: spb.packet_data(),
                            orig_len: spb.origlen,
                        })
                        .is_break();
                    }
                    Block::Unknown(ub)
                        if ub.block_type == OPB_TYPE || ub.block_type.swap_bytes() == OPB_TYPE =>
                    {
                        progress.frame += 1;
                        let opb = ObsoletePacket::parse(ub.data, section_big_endian);
                        let iface = opb.and_then(|o| interfaces.get(o.if_id as usize).copied());
                        let ts = match (opb, iface) {
                            (Some(o), Some(i)) => i.clock.to_timestamp(o.ts_high, o.ts_low),
                            (Some(o), None) => {
                                PcapngClock::default().to_timestamp(o.ts_high, o.ts_low)
                            }
                            _ => last_ts,
                        };
                        last_ts = ts;
                        stop |= on_record(&Record {
                            frame: progress.frame,
                            ts,
                            link: iface.map_or(LinkType(u32::MAX), |i| i.link),
                            data: opb.map_or(&[][..], |o| o.data),
                            orig_len: opb.map_or(0, |o| o.orig_len),
                        })
                        .is_break();
                    }
                    _ => facts.skipped_blocks += 1,
                }
                Step::Consumed(len)
            }
            Ok((len, _)) => Step::Consumed(len),
            Err(e) => classify(&e, progress.frame),
        };
        // The parser wants more data although the whole block is in the
        // buffer: the block's contents (an EPB captured length, say) overrun
        // its own length. Without this check a small file reported
        // "truncated" and a large one "declares 96 bytes, more than the
        // 4 MiB limit", both wrong; the records after it are lost either
        // way (pcapng has no resync), so stop, but say why.
        let step = match step {
            Step::Refill | Step::TooLarge | Step::Stop(DamageKind::Truncated, _) => {
                match overrun_block(reader.data(), section_big_endian) {
                    Some(block_len) => Step::Stop(
                        DamageKind::Corrupt,
                        format!(
                            "the block after frame {} claims more data than its own length of {block_len} bytes; the file is damaged",
                            progress.frame
                        ),
                    ),
                    None => step,
                }
            }
            step => step,
        };
        // A block header's length field: bytes 4..8 (block total length).
        let length_field = (4, section_big_endian);
        if let ControlFlow::Break(damage) =
            advance(step, &mut reader, &mut progress, stop, length_field)
        {
            facts.damage = damage;
            break;
        }
    }
    facts.records = progress.frame;
    facts.bytes = progress.consumed;
    Ok(facts)
}

/// The total length of the pcapng block at the start of `data`, if its
/// header is buffered (a Section Header Block carries its own byte order).
fn block_len(data: &[u8], section_big_endian: bool) -> Option<u32> {
    let big_endian = if data.get(..4)? == PCAPNG_MAGIC {
        *data.get(8..12)? == [0x1a, 0x2b, 0x3c, 0x4d]
    } else {
        section_big_endian
    };
    u32_at(data, 4, big_endian)
}

/// The total length of the pcapng block at the start of `data` when the
/// whole block is there.
fn overrun_block(data: &[u8], section_big_endian: bool) -> Option<u32> {
    let len = block_len(data, section_big_endian)?;
    (len >= 12 && len as usize <= data.len()).then_some(len)
}

/// The obsolete Packet Block (type 2): interface id (16 bits), drops count,
/// 64-bit timestamp, captured and original length, then the packet.
#[derive(Clone, Copy)]
struct ObsoletePacket<'a> {
    if_id: u16,
    ts_high: u32,
    ts_low: u32,
    orig_len: u32,
    data: &'a [u8],
}

impl<'a> ObsoletePacket<'a> {
    fn parse(body: &'a [u8], big_endian: bool) -> Option<ObsoletePacket<'a>> {
        let if_id = body.get(0..2)?;
        let if_id = if big_endian {
            u16::from_be_bytes([if_id[0], if_id[1]])
        } else {
            u16::from_le_bytes([if_id[0], if_id[1]])
        };
        let caplen = u32_at(body, 12, big_endian)? as usize;
        let data = body.get(20..)?;
        Some(ObsoletePacket {
            if_id,
            ts_high: u32_at(body, 4, big_endian)?,
            ts_low: u32_at(body, 8, big_endian)?,
            orig_len: u32_at(body, 16, big_endian)?,
            data: &data[..caplen.min(data.len())],
        })
    }
}
