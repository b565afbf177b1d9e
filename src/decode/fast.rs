//! The fast path for the most common frame, Ethernet II carrying a whole
//! unfragmented IPv4 datagram with TCP, read by hand: etherparse's slicing
//! (and its copying of a large result struct) was the reading thread's
//! largest cost. Anything else falls through to the general decoder.

use super::{Fragmentation, Segment, TcpFlags, TcpTimestamps};
use crate::capture::Record;
use crate::flow::Endpoint;
use crate::seq::{SeqNum, TsVal};
use etherparse::TcpOptionElement;
use std::net::IpAddr;

/// The common frame without etherparse's slicing (and its copying of a
/// large result struct, the reading thread's largest cost): Ethernet II,
/// IPv4 that is not a fragment, TCP, the whole datagram captured, every
/// length consistent. None for anything else, which takes
/// [`ethernet_sliced`]; where both apply they give the same segment
/// (test `fast_path_equals_etherparse_on_every_capture`). TCP options are
/// still read by etherparse's iterator.
///
/// [`ethernet_sliced`]: super::link::ethernet_sliced
pub(super) fn fast_ethernet_ipv4_tcp(record: &Record<'_>, data: &[u8]) -> Option<Segment> {
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
    let be32 = |at: usize| u32::from_be_bytes([tcp[at], tcp[at + 1], tcp[at + 2], tcp[at + 3]]);
    let be16 = |b: &[u8], at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
    let flags = tcp[13];
    let options = || etherparse::TcpOptionsIterator::from_slice(&tcp[20..header_len]);
    let tsopt = options().find_map(|opt| match opt {
        Ok(TcpOptionElement::Timestamp(tsval, tsecr)) => Some(TcpTimestamps {
            tsval: TsVal(tsval),
            tsecr: TsVal(tsecr),
        }),
        _ => None,
    });
    let wscale = if flags & TcpFlags::SYN != 0 {
        options().find_map(|opt| match opt {
            Ok(TcpOptionElement::WindowScale(shift)) => Some(shift),
            _ => None,
        })
    } else {
        None
    };
    let src = IpAddr::V4(std::net::Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]));
    let dst = IpAddr::V4(std::net::Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]));
    Some(Segment {
        frame: crate::frame::FrameId(record.frame),
        ts: record.ts,
        fragmentation: Fragmentation::Whole,
        src: Endpoint::new(src, be16(tcp, 0)),
        dst: Endpoint::new(dst, be16(tcp, 2)),
        seq: SeqNum(be32(4)),
        ack: SeqNum(be32(8)),
        flags: TcpFlags(flags),
        window: be16(tcp, 14),
        payload_len: (tcp.len() - header_len) as u32,
        tsopt,
        ip_id: Some(be16(ip, 4)),
        wscale,
    })
}
