//! The TCP header made into a [`Segment`]: ports, sequence numbers, flags,
//! window, the timestamp and window-scale options, and the payload length
//! by the IP header, all copied out so that nothing borrows the capture
//! buffer. (`fast.rs` reads the same fields by hand for its frames.)

use super::{Fragmentation, Segment, TcpFlags};
use crate::capture::Record;
use crate::flow::Endpoint;
use crate::seq::SeqNum;
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
    let (tsopt, wscale) = super::fast::options(tcp.options(), tcp.syn());
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
