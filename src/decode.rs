//! From captured frames to TCP segments: link layer, IPv4/IPv6 and the TCP
//! header with its timestamp option.
//!
//! Only this file uses etherparse, in its lax mode: a frame cut by the snap
//! length (`tcpdump -s 96`) still yields a full segment as long as the TCP
//! header is complete, with the payload length taken from the IP header.
//! Frames that carry no usable TCP header are not errors but counted skips
//! ([`SkipReason`]), so the report can say what was left out and why.

use crate::capture::{LinkType, Record};
use crate::flow::Endpoint;
use crate::seq::{SeqNum, TsVal};
use crate::time::Timestamp;
use etherparse::{
    EtherType, IpNumber, LaxNetSlice, LaxSlicedPacket, TcpOptionElement, TransportSlice,
};
use serde::Serialize;
use std::fmt;
use std::net::IpAddr;

/// TCP header flags (RFC 9293 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
    pub fn syn(self) -> bool {
        self.has(Self::SYN)
    }
    pub fn ack(self) -> bool {
        self.has(Self::ACK)
    }
    pub fn fin(self) -> bool {
        self.has(Self::FIN)
    }
    pub fn rst(self) -> bool {
        self.has(Self::RST)
    }
}

impl fmt::Display for TcpFlags {
    /// tcpdump's spelling: `S`, `S.`, `F.`, `R.`, `P.` ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        for (bit, c) in [
            (Self::SYN, 'S'),
            (Self::FIN, 'F'),
            (Self::PSH, 'P'),
            (Self::RST, 'R'),
            (Self::URG, 'U'),
            (Self::ECE, 'E'),
            (Self::CWR, 'W'),
        ] {
            if self.has(bit) {
                s.push(c);
            }
        }
        if self.ack() {
            s.push('.');
        }
        if s.is_empty() {
            s.push_str("none");
        }
        f.write_str(&s)
    }
}

/// The RFC 7323 timestamp option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpTimestamps {
    /// The sender's clock when it sent the segment.
    pub tsval: TsVal,
    /// The latest TSval the sender received from its peer (echo reply).
    pub tsecr: TsVal,
}

/// One TCP segment, copied out of the frame: everything the tracker needs
/// and nothing that borrows the capture buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub frame: u64,
    pub ts: Timestamp,
    pub src: Endpoint,
    pub dst: Endpoint,
    pub seq: SeqNum,
    pub ack: SeqNum,
    pub flags: TcpFlags,
    pub window: u16,
    /// Payload bytes as the IP header declares them (not as captured).
    pub payload_len: u32,
    pub tsopt: Option<TcpTimestamps>,
}

impl Segment {
    /// Sequence space the segment occupies: payload plus one for SYN and
    /// one for FIN (RFC 9293 §3.4).
    pub fn seq_len(&self) -> u32 {
        self.payload_len + u32::from(self.flags.syn()) + u32::from(self.flags.fin())
    }
    /// The sequence number of the FIN flag, if the segment carries one.
    pub fn fin_seq(&self) -> SeqNum {
        self.seq
            .plus(self.payload_len + u32::from(self.flags.syn()))
    }
}

/// Why a frame yielded no TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// A link type timewait does not decode (counted per type separately).
    UnsupportedLinkType,
    /// The link-layer header is cut or malformed.
    LinkHeader,
    /// Not IPv4 or IPv6 (ARP, LLDP, ...).
    NotIp,
    /// The IP header is cut or malformed.
    IpHeader,
    /// A fragment of an IP datagram (not reassembled).
    IpFragment,
    /// IP, but not TCP (UDP, ICMP, tunnels timewait does not open).
    NotTcp,
    /// The TCP header is cut by the snap length or malformed.
    TcpHeader,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::UnsupportedLinkType => "unsupported_link_type",
            SkipReason::LinkHeader => "link_header",
            SkipReason::NotIp => "not_ip",
            SkipReason::IpHeader => "ip_header",
            SkipReason::IpFragment => "ip_fragment",
            SkipReason::NotTcp => "not_tcp",
            SkipReason::TcpHeader => "tcp_header",
        }
    }

    /// A phrase for the report ("12 frames skipped: not IP").
    pub fn describe(self) -> &'static str {
        match self {
            SkipReason::UnsupportedLinkType => "link type not decoded",
            SkipReason::LinkHeader => "link-layer header cut or malformed",
            SkipReason::NotIp => "not IP (ARP, LLDP, ...)",
            SkipReason::IpHeader => "IP header cut or malformed",
            SkipReason::IpFragment => "IP fragment (not reassembled)",
            SkipReason::NotTcp => "IP but not TCP",
            SkipReason::TcpHeader => "TCP header cut or malformed",
        }
    }
}

/// How deep IP-in-IP encapsulation is followed.
const MAX_IP_NESTING: u8 = 3;

/// Decodes one frame into a TCP segment, or says why it holds none.
pub fn decode(record: &Record<'_>) -> Result<Segment, SkipReason> {
    let data = record.data;
    let sliced = match record.link {
        LinkType::ETHERNET => {
            LaxSlicedPacket::from_ethernet(data).map_err(|_| SkipReason::LinkHeader)?
        }
        LinkType::NULL | LinkType::LOOP => {
            // 4-byte address family in the writer's byte order; the IP
            // version nibble is a surer guide than the family's number,
            // which differs between BSDs for IPv6.
            let ip = data.get(4..).ok_or(SkipReason::LinkHeader)?;
            from_ip(ip)?
        }
        LinkType::RAW
        | LinkType::RAW_BSD12
        | LinkType::RAW_BSD14
        | LinkType::IPV4
        | LinkType::IPV6 => from_ip(data)?,
        LinkType::LINUX_SLL => {
            // 16-byte cooked header, protocol (EtherType) in the last 2 bytes.
            let proto = data.get(14..16).ok_or(SkipReason::LinkHeader)?;
            let rest = data.get(16..).ok_or(SkipReason::LinkHeader)?;
            LaxSlicedPacket::from_ether_type(
                EtherType(u16::from_be_bytes([proto[0], proto[1]])),
                rest,
            )
        }
        LinkType::LINUX_SLL2 => {
            // 20-byte cooked header v2, protocol (EtherType) first.
            let proto = data.get(0..2).ok_or(SkipReason::LinkHeader)?;
            let rest = data.get(20..).ok_or(SkipReason::LinkHeader)?;
            LaxSlicedPacket::from_ether_type(
                EtherType(u16::from_be_bytes([proto[0], proto[1]])),
                rest,
            )
        }
        _ => return Err(SkipReason::UnsupportedLinkType),
    };
    segment_from(record, &sliced, 0)
}

fn from_ip(data: &[u8]) -> Result<LaxSlicedPacket<'_>, SkipReason> {
    match data.first().map(|b| b >> 4) {
        Some(4) | Some(6) => LaxSlicedPacket::from_ip(data).map_err(|_| SkipReason::IpHeader),
        Some(_) => Err(SkipReason::NotIp),
        None => Err(SkipReason::LinkHeader),
    }
}

fn segment_from(
    record: &Record<'_>,
    sliced: &LaxSlicedPacket<'_>,
    depth: u8,
) -> Result<Segment, SkipReason> {
    let (src, dst, payload, declared_len) = match &sliced.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            let p = v4.payload();
            // A TSO frame may carry total length 0; then the slice decides.
            let declared = usize::from(h.total_len()).checked_sub(
                usize::from(h.ihl()) * 4 + v4.extensions().auth.map_or(0, |a| a.slice().len()),
            );
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                p,
                declared,
            )
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            let p = v6.payload();
            let declared = usize::from(h.payload_length())
                .checked_sub(v6.extensions().slice().len())
                .filter(|_| h.payload_length() != 0);
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                p,
                declared,
            )
        }
        Some(LaxNetSlice::Arp(_)) => return Err(SkipReason::NotIp),
        None => {
            return Err(match &sliced.stop_err {
                Some(_) if sliced.link.is_some() || !sliced.link_exts.is_empty() => {
                    SkipReason::IpHeader
                }
                Some(_) => SkipReason::LinkHeader,
                None => SkipReason::NotIp,
            });
        }
    };
    if payload.fragmented {
        return Err(SkipReason::IpFragment);
    }
    match payload.ip_number {
        IpNumber::TCP => {}
        IpNumber::IPV4 | IpNumber::IPV6 if depth < MAX_IP_NESTING => {
            // IP-in-IP / 6in4 / 4in6: the inner packet is the connection.
            let inner =
                LaxSlicedPacket::from_ip(payload.payload).map_err(|_| SkipReason::IpHeader)?;
            return segment_from(record, &inner, depth + 1);
        }
        _ => return Err(SkipReason::NotTcp),
    }
    let Some(TransportSlice::Tcp(tcp)) = &sliced.transport else {
        return Err(SkipReason::TcpHeader);
    };
    let header_len = usize::from(tcp.data_offset()) * 4;
    let ip_payload_len = match declared_len {
        Some(d) if payload.incomplete => d,
        _ => payload.payload.len(),
    };
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
    let tsopt = tcp.options_iterator().find_map(|opt| match opt {
        Ok(TcpOptionElement::Timestamp(tsval, tsecr)) => Some(TcpTimestamps {
            tsval: TsVal(tsval),
            tsecr: TsVal(tsecr),
        }),
        _ => None,
    });
    Ok(Segment {
        frame: record.frame,
        ts: record.ts,
        src: Endpoint::new(src, tcp.source_port()),
        dst: Endpoint::new(dst, tcp.destination_port()),
        seq: SeqNum(tcp.sequence_number()),
        ack: SeqNum(tcp.acknowledgment_number()),
        flags: TcpFlags(flags),
        window: tcp.window_size(),
        payload_len,
        tsopt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn record(link: LinkType, data: &[u8]) -> Record<'_> {
        Record {
            frame: 7,
            ts: Timestamp(1),
            link,
            data,
            orig_len: data.len() as u32,
        }
    }

    fn syn_with_timestamp() -> Vec<u8> {
        let builder = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 80, 1000, 64240)
            .syn()
            .options(&[
                TcpOptionElement::MaximumSegmentSize(1460),
                TcpOptionElement::Timestamp(123456, 0),
            ])
            .unwrap();
        let mut out = Vec::new();
        builder.write(&mut out, &[]).unwrap();
        out
    }

    #[test]
    fn ethernet_syn_decodes_with_timestamp_option() {
        let bytes = syn_with_timestamp();
        let seg = decode(&record(LinkType::ETHERNET, &bytes)).unwrap();
        assert_eq!(seg.frame, 7);
        assert_eq!(seg.src.to_string(), "10.0.0.1:40000");
        assert_eq!(seg.dst.to_string(), "10.0.0.2:80");
        assert!(seg.flags.syn() && !seg.flags.ack());
        assert_eq!(seg.seq, SeqNum(1000));
        assert_eq!(seg.payload_len, 0);
        assert_eq!(seg.tsopt.unwrap().tsval, TsVal(123456));
    }

    #[test]
    fn snaplen_cut_payload_keeps_declared_length() {
        let builder = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 80, 1000, 64240)
            .ack(5);
        let mut bytes = Vec::new();
        builder.write(&mut bytes, &[0xaa; 1000]).unwrap();
        bytes.truncate(14 + 20 + 20 + 10);
        let seg = decode(&record(LinkType::ETHERNET, &bytes)).unwrap();
        assert_eq!(seg.payload_len, 1000);
    }

    #[test]
    fn every_prefix_of_a_frame_decodes_or_skips_without_panic() {
        let bytes = syn_with_timestamp();
        let tcp_end = 14 + 20 + 20;
        for len in 0..bytes.len() {
            let r = decode(&record(LinkType::ETHERNET, &bytes[..len]));
            if len < 14 {
                assert_eq!(r.unwrap_err(), SkipReason::LinkHeader, "len {len}");
            } else if len < 14 + 20 {
                assert_eq!(r.unwrap_err(), SkipReason::IpHeader, "len {len}");
            } else if len < tcp_end {
                assert_eq!(r.unwrap_err(), SkipReason::TcpHeader, "len {len}");
            }
        }
    }

    #[test]
    fn linux_sll2_and_raw_ip_decode() {
        let builder = PacketBuilder::ipv6([0xfd; 16], [0xfe; 16], 64)
            .tcp(1234, 443, 9, 1000)
            .fin()
            .ack(77);
        let mut ip = Vec::new();
        builder.write(&mut ip, b"bye").unwrap();
        let raw = decode(&record(LinkType::RAW, &ip)).unwrap();
        assert!(raw.flags.fin() && raw.flags.ack());
        assert_eq!(raw.payload_len, 3);
        assert_eq!(raw.fin_seq(), SeqNum(12));

        let mut sll2 = vec![
            0x86, 0xdd, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        sll2.extend_from_slice(&ip);
        assert_eq!(decode(&record(LinkType::LINUX_SLL2, &sll2)).unwrap(), raw);

        let mut null = 30u32.to_le_bytes().to_vec();
        null.extend_from_slice(&ip);
        assert_eq!(decode(&record(LinkType::NULL, &null)).unwrap(), raw);
    }

    #[test]
    fn udp_and_arp_and_unknown_links_are_skips() {
        let builder = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(53, 53);
        let mut udp = Vec::new();
        builder.write(&mut udp, b"x").unwrap();
        assert_eq!(
            decode(&record(LinkType::ETHERNET, &udp)),
            Err(SkipReason::NotTcp)
        );
        let mut arp = vec![0u8; 12];
        arp.extend_from_slice(&[0x08, 0x06]);
        arp.extend_from_slice(&[0u8; 28]);
        assert_eq!(
            decode(&record(LinkType::ETHERNET, &arp)),
            Err(SkipReason::NotIp)
        );
        assert_eq!(
            decode(&record(LinkType(147), &udp)),
            Err(SkipReason::UnsupportedLinkType)
        );
    }

    #[test]
    fn flags_print_like_tcpdump() {
        assert_eq!(TcpFlags(TcpFlags::SYN | TcpFlags::ACK).to_string(), "S.");
        assert_eq!(TcpFlags(TcpFlags::FIN | TcpFlags::ACK).to_string(), "F.");
        assert_eq!(TcpFlags(TcpFlags::RST).to_string(), "R");
    }
}
