//! The TCP header made into a [`Segment`]: ports, sequence numbers, flags,
//! window, the timestamp and window-scale options, and the payload length
//! by the IP header, all copied out so that nothing borrows the capture
//! buffer. (`fast.rs` reads the same fields by hand for its frames; both read
//! the options with [`options`].)

use super::{Fragmentation, Segment, TcpFlags, TcpTimestamps};
use crate::capture::Record;
use crate::flow::Endpoint;
use crate::seq::{SeqNum, TsVal};
use etherparse::TcpSlice;
use std::net::IpAddr;

/// The segment of a TCP header etherparse has sliced. `ip_payload_len`
/// is the IP payload's length, as the IP header declares it when the
/// snap length cut the packet, so that a cut payload still counts whole.
pub(super) fn segment(
    record: &Record<'_>,
    src: IpAddr,
    dst: IpAddr,
    ip_id: Option<u16>,
    tcp: &TcpSlice<'_>,
    ip_payload_len: usize,
) -> Segment {
    let header_len = usize::from(tcp.data_offset()) * 4;
    let payload_len = ip_payload_len.saturating_sub(header_len) as u32;
    let mut flags = 0u8;
    for (set, bit) in [
        (tcp.fin(), TcpFlags::FIN),
        (tcp.syn(), TcpFlags::SYN),
        (tcp.rst(), TcpFlags::RST),
        (tcp.psh(), TcpFlags::PSH),
        (tcp.ack(), TcpFlags::ACK),
        (tcp.urg(), TcpFlags::URG),
        (tcp.ece(), TcpFlags::ECE),
        (tcp.cwr(), TcpFlags::CWR),
    ] {
        if set {
            flags |= bit;
        }
    }
    let (tsopt, wscale) = options(tcp.options(), tcp.syn());
    Segment {
        frame: crate::frame::FrameId(record.frame),
        ts: record.ts,
        fragmentation: Fragmentation::Whole,
        src: Endpoint::new(src, tcp.source_port()),
        dst: Endpoint::new(dst, tcp.destination_port()),
        seq: SeqNum(tcp.sequence_number()),
        ack: SeqNum(tcp.acknowledgment_number()),
        flags: TcpFlags(flags),
        window: tcp.window_size(),
        payload_len,
        tsopt,
        ip_id,
        wscale,
    }
}

/// The timestamp option and (in a SYN) the window scale option, walked as
/// the kernel's `tcp_parse_options` walks them (both decode paths use this
/// walk): the end option stops it and a no-op is one byte; any other option
/// is skipped by its length byte, whether its kind is known or not (MPTCP,
/// Fast Open, ...), unless that length is below 2 ("silly options") or runs
/// past the header ("partial options"), which stop it. A timestamp option
/// counts only at its length, 10, and a window scale at 3; the last of each
/// wins, as the kernel overwrites what it saw. (etherparse's iterator, used
/// before, stopped at the first kind it does not know, and so missed the
/// timestamps behind one.)
#[inline(always)]
pub(super) fn options(mut rest: &[u8], syn: bool) -> (Option<TcpTimestamps>, Option<u8>) {
    let (mut tsopt, mut wscale) = (None, None);
    while let [kind, ..] = *rest {
        let len = match kind {
            // End of options list.
            0 => break,
            // No-operation.
            1 => 1,
            _ => match rest.get(1) {
                Some(&len) if len >= 2 && usize::from(len) <= rest.len() => usize::from(len),
                _ => break,
            },
        };
        match (kind, len) {
            (8, 10) => {
                if let [_, _, v0, v1, v2, v3, e0, e1, e2, e3, ..] = *rest {
                    tsopt = Some(TcpTimestamps {
                        tsval: TsVal(u32::from_be_bytes([v0, v1, v2, v3])),
                        tsecr: TsVal(u32::from_be_bytes([e0, e1, e2, e3])),
                    });
                }
            }
            (3, 3) if syn => wscale = Some(rest[2]),
            _ => {}
        }
        rest = &rest[len..];
    }
    (tsopt, wscale)
}
