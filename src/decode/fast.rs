//! The fast path for the most common frame, Ethernet II carrying a whole
//! unfragmented IPv4 datagram with TCP, read by hand: etherparse's slicing
//! (and its copying of a large result struct) was the reading thread's
//! largest cost. Anything else falls through to the general decoder.

use super::tcp::options;
use super::{Fragmentation, Segment, TcpFlags};
use crate::capture::Record;
use crate::flow::{Endpoint, FlowKey};
use crate::seq::SeqNum;
use std::net::{IpAddr, Ipv4Addr};

/// The common frame without etherparse's slicing (and its copying of a
/// large result struct, the reading thread's largest cost): Ethernet II,
/// IPv4 that is not a fragment, TCP, the whole datagram captured, every
/// length consistent. None for anything else, which takes
/// [`ethernet_sliced`]; where both apply they give the same segment
/// (test `fast_path_equals_etherparse_on_every_capture`).
///
/// [`ethernet_sliced`]: super::link::ethernet_sliced
pub(super) fn fast_ethernet_ipv4_tcp(record: &Record<'_>, data: &[u8]) -> Option<Segment> {
    fast(record, data, |seg, _, _| seg)
}

/// [`fast_ethernet_ipv4_tcp`] written into `slot`, returning the segment's
/// flow key made from the header's words: the reading thread fills its
/// batch in place (a returned segment, 136 bytes, was copied into it) and
/// builds no endpoints for the key.
#[inline]
pub(super) fn fast_into(record: &Record<'_>, data: &[u8], slot: &mut Segment) -> Option<FlowKey> {
    fast(record, data, |seg, src, dst| {
        *slot = seg;
        FlowKey::of_v4(src, dst)
    })
}

/// The checks and the reading of both, handing the segment and its
/// endpoints (address bits, port) to `put`. Inlined into each, so that
/// the segment is built where `put` puts it.
#[inline(always)]
fn fast<T>(
    record: &Record<'_>,
    data: &[u8],
    put: impl FnOnce(Segment, (u32, u16), (u32, u16)) -> T,
) -> Option<T> {
    if data.len() < 14 + 20 + 20 || data[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &data[14..];
    if ip[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    // MF, or a fragment offset: reassembly's business. Not TCP: etherparse.
    if ihl < 20 || total < ihl + 20 || total > ip.len() || ip[6] & 0x3f != 0 || ip[7] != 0 {
        return None;
    }
    if ip[9] != 6 {
        return None;
    }
    let tcp = &ip[ihl..total];
    let header_len = usize::from(tcp[12] >> 4) * 4;
    if header_len < 20 || header_len > tcp.len() {
        return None;
    }
    let flags = tcp[13];
    let (tsopt, wscale) = options(&tcp[20..header_len], flags & TcpFlags::SYN != 0);
    let src = (be32(ip, 12), be16(tcp, 0));
    let dst = (be32(ip, 16), be16(tcp, 2));
    let seg = Segment {
        frame: crate::frame::FrameId(record.frame),
        ts: record.ts,
        fragmentation: Fragmentation::Whole,
        src: Endpoint::new(IpAddr::V4(Ipv4Addr::from_bits(src.0)), src.1),
        dst: Endpoint::new(IpAddr::V4(Ipv4Addr::from_bits(dst.0)), dst.1),
        seq: SeqNum(be32(tcp, 4)),
        ack: SeqNum(be32(tcp, 8)),
        flags: TcpFlags(flags),
        window: be16(tcp, 14),
        payload_len: (tcp.len() - header_len) as u32,
        tsopt,
        ip_id: Some(be16(ip, 4)),
        wscale,
    };
    Some(put(seg, src, dst))
}

#[inline(always)]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline(always)]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
