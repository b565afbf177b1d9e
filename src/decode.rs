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
    /// The IPv4 identification field (None for IPv6): a frame captured
    /// twice carries the same one, a retransmission from a connected Linux
    /// socket a new one (`ip_select_ident_segs`).
    pub ip_id: Option<u16>,
    /// The window scale option (RFC 7323 §2), sent only with SYN.
    pub wscale: Option<u8>,
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

/// How many encapsulations (IP-in-IP, GRE, VXLAN, Geneve, GTP-U, MPLS,
/// PPPoE, PPI, ...) are opened before giving up: a bound on the work per
/// frame, whatever a crafted frame nests.
const MAX_NESTING: u8 = 8;

// EtherTypes (and GRE protocol types) timewait opens itself because
// etherparse 0.21 does not (it handles VLAN, QinQ and MACsec).
const ETH_MPLS_UNICAST: u16 = 0x8847;
const ETH_MPLS_MULTICAST: u16 = 0x8848;
const ETH_PPPOE_SESSION: u16 = 0x8864;
/// Transparent Ethernet Bridging: an Ethernet frame follows (GRE, Geneve).
const ETH_TEB: u16 = 0x6558;
/// IEEE 802.1BR E-Tag: a 6-byte tag, then the real EtherType.
const ETH_E_TAG: u16 = 0x893f;
/// ERSPAN type I/II inside GRE.
const GRE_ERSPAN_2: u16 = 0x88be;
/// ERSPAN type III inside GRE.
const GRE_ERSPAN_3: u16 = 0x22eb;
/// WCCP redirection inside GRE.
const GRE_WCCP: u16 = 0x883e;
/// PPP inside enhanced GRE (PPTP, RFC 2637).
const GRE_PPP: u16 = 0x880b;
/// The largest value of an 802.3 length field; larger values are EtherTypes.
const ETH_MAX_LENGTH: u16 = 1500;

// UDP ports of tunnels whose inner packets tshark dissects by default.
const UDP_VXLAN: u16 = 4789;
const UDP_GENEVE: u16 = 6081;
const UDP_GTP_U: u16 = 2152;
const UDP_L2TP: u16 = 1701;

/// Decodes one frame into a TCP segment, or says why it holds none.
///
/// Follows the same encapsulations tshark 4.0 dissects by default, so that
/// connection ids agree with `tcp.stream`: tunnels (IP-in-IP, GRE incl.
/// ERSPAN, WCCP and PPTP, VXLAN on udp/4789, Geneve on udp/6081, GTP-U on
/// udp/2152, MPLS, PPPoE, 802.2 LLC/SNAP, E-Tag) and link types (PPP, Cisco
/// HDLC, PPI, NFLOG, IPoIB, ARCnet, FDDI). Each layer is a bounds-checked
/// slice of the frame: no allocation, and at most [`MAX_NESTING`] layers.
///
/// Not decoded, on purpose: TCP headers quoted inside ICMP errors (a copy
/// of a header some router saw, not a segment of the connection), headers
/// sampled into sFlow records, and IP fragments (not reassembled).
pub fn decode(record: &Record<'_>) -> Result<Segment, SkipReason> {
    link_layer(record, record.link, record.data, 0)
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    data.get(at..at + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
}

fn link_layer(
    record: &Record<'_>,
    link: LinkType,
    data: &[u8],
    depth: u8,
) -> Result<Segment, SkipReason> {
    let link_header = SkipReason::LinkHeader;
    match link {
        LinkType::ETHERNET => ethernet(record, data, depth),
        LinkType::NULL | LinkType::LOOP => {
            // 4-byte address family in the writer's byte order; the IP
            // version nibble is a surer guide than the family's number,
            // which differs between BSDs for IPv6.
            ip(record, data.get(4..).ok_or(link_header)?, depth)
        }
        LinkType::RAW
        | LinkType::RAW_BSD12
        | LinkType::RAW_BSD14
        | LinkType::IPV4
        | LinkType::IPV6 => ip(record, data, depth),
        LinkType::LINUX_SLL => {
            // 16-byte cooked header, protocol (EtherType) in the last 2 bytes.
            let proto = be16(data, 14).ok_or(link_header)?;
            ether_type(record, proto, data.get(16..).ok_or(link_header)?, depth)
        }
        LinkType::LINUX_SLL2 => {
            // 20-byte cooked header v2, protocol (EtherType) first.
            let proto = be16(data, 0).ok_or(link_header)?;
            ether_type(record, proto, data.get(20..).ok_or(link_header)?, depth)
        }
        LinkType::PPP => ppp(record, data, depth),
        LinkType::PPP_HDLC => match data.first() {
            // Cisco HDLC frames also appear under this link type.
            Some(0x0f | 0x8f) => c_hdlc(record, data, depth),
            _ => ppp(record, data, depth),
        },
        LinkType::C_HDLC => c_hdlc(record, data, depth),
        LinkType::PPI => {
            // version, flags, header length (LE), inner DLT (LE, 4 bytes).
            let head = data.get(..8).ok_or(link_header)?;
            let len = usize::from(u16::from_le_bytes([head[2], head[3]]));
            let dlt = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
            let inner = data.get(len..).filter(|_| len >= 8).ok_or(link_header)?;
            if depth >= MAX_NESTING || LinkType(dlt) == LinkType::PPI {
                return Err(SkipReason::UnsupportedLinkType);
            }
            link_layer(record, LinkType(dlt), inner, depth + 1)
        }
        LinkType::NFLOG => nflog(record, data, depth),
        LinkType::IPOIB => {
            // A 40-byte pseudo-header (tcpdump's IPOIB_HDRLEN is 44: it
            // ends with the 20-byte IPoIB hardware address), then RFC
            // 4391's EtherType and 2 reserved bytes (tcpdump's ipoib.pcap).
            let proto = be16(data, 40).ok_or(link_header)?;
            ether_type(record, proto, data.get(44..).ok_or(link_header)?, depth)
        }
        LinkType::IEEE802_11 => wlan(record, data, depth),
        LinkType::IEEE802_11_RADIOTAP => {
            // version, pad, header length (LE), then 802.11.
            let len = data
                .get(2..4)
                .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
                .ok_or(link_header)?;
            wlan(record, data.get(len..).ok_or(link_header)?, depth)
        }
        LinkType::ARCNET_BSD => arcnet(record, data, 2, depth),
        LinkType::ARCNET_LINUX => arcnet(record, data, 4, depth),
        LinkType::FDDI => {
            // frame control, destination, source; then 802.2 LLC.
            llc(record, data.get(13..).ok_or(link_header)?, depth)
        }
        _ => Err(SkipReason::UnsupportedLinkType),
    }
}

fn ethernet(record: &Record<'_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
    let sliced = LaxSlicedPacket::from_ethernet(data).map_err(|_| SkipReason::LinkHeader)?;
    segment_from(record, &sliced, depth)
}

fn ip(record: &Record<'_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
    match data.first().map(|b| b >> 4) {
        Some(4) | Some(6) => {
            let sliced = LaxSlicedPacket::from_ip(data).map_err(|_| SkipReason::IpHeader)?;
            segment_from(record, &sliced, depth)
        }
        Some(_) => Err(SkipReason::NotIp),
        None => Err(SkipReason::LinkHeader),
    }
}

/// The EtherTypes opened here rather than by etherparse.
fn is_own_ether_type(et: u16) -> bool {
    et <= ETH_MAX_LENGTH
        || matches!(
            et,
            ETH_MPLS_UNICAST | ETH_MPLS_MULTICAST | ETH_PPPOE_SESSION | ETH_TEB | ETH_E_TAG
        )
}

/// A payload announced by an EtherType (Linux SLL, VLAN, C-HDLC, GRE,
/// Geneve, SNAP, ...).
fn ether_type(record: &Record<'_>, et: u16, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
    if depth >= MAX_NESTING {
        return Err(SkipReason::NotTcp);
    }
    let depth = depth + 1;
    let link_header = SkipReason::LinkHeader;
    match et {
        ETH_MPLS_UNICAST | ETH_MPLS_MULTICAST => mpls(record, data, depth),
        ETH_PPPOE_SESSION => {
            // RFC 2516: version/type, code, session id, length; then PPP
            // with a 2-byte protocol field.
            let proto = be16(data, 6).ok_or(link_header)?;
            ppp_proto(record, proto, data.get(8..).ok_or(link_header)?, depth)
        }
        ETH_TEB => ethernet(record, data, depth),
        ETH_E_TAG => {
            let inner = be16(data, 6).ok_or(link_header)?;
            ether_type(record, inner, data.get(8..).ok_or(link_header)?, depth)
        }
        // An 802.3 length field: 802.2 LLC follows.
        0..=ETH_MAX_LENGTH => llc(record, data, depth),
        _ => segment_from(
            record,
            &LaxSlicedPacket::from_ether_type(EtherType(et), data),
            depth,
        ),
    }
}

/// IEEE 802.2 LLC: SNAP (`aa aa 03`, OUI, EtherType) or the IP SAP (6).
fn llc(record: &Record<'_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
    match data.get(..3) {
        Some([0xaa, 0xaa, 0x03]) => {
            let et = be16(data, 6).ok_or(SkipReason::LinkHeader)?;
            ether_type(record, et, &data[8..], depth)
        }
        Some([0x06, 0x06, 0x03]) => ip(record, &data[3..], depth),
        Some(_) => Err(SkipReason::NotIp),
        None => Err(SkipReason::LinkHeader),
    }
}

/// MPLS (RFC 3032): pop 4-byte labels up to the bottom of the stack, then
/// IPv4/IPv6 by version nibble, or an Ethernet pseudowire after its
/// control word (RFC 4448), as tshark guesses.
fn mpls(record: &Record<'_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
    let mut at = 0;
    loop {
        let entry = data.get(at..at + 4).ok_or(SkipReason::LinkHeader)?;
        at += 4;
        if entry[2] & 0x01 != 0 {
            break;
        }
        if at >= 4 * usize::from(MAX_NESTING) {
            return Err(SkipReason::NotIp);
        }
    }
    let rest = &data[at..];
    match rest.first().map(|b| b >> 4) {
        Some(4 | 6) => ip(record, rest, depth),
        Some(0) => ethernet(record, rest.get(4..).ok_or(SkipReason::LinkHeader)?, depth),
        Some(_) => Err(SkipReason::NotIp),
        None => Err(SkipReason::LinkHeader),
    }
}

/// A PPP frame (link types 9 and 50): optional `ff 03` address and
/// control, then a 1- or 2-byte protocol (RFC 1661 §6.5 compression).
fn ppp(record: &Record<'_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
    let data = match data {
        [0xff, 0x03, rest @ ..] => rest,
        _ => data,
    };
    match data {
        [p, rest @ ..] if p & 0x01 == 1 => ppp_proto(record, u16::from(*p), rest, depth),
        [a, b, rest @ ..] => ppp_proto(record, u16::from_be_bytes([*a, *b]), rest, depth),
        _ => Err(SkipReason::LinkHeader),
    }
}

fn ppp_proto(
    record: &Record<'_>,
    proto: u16,
    data: &[u8],
    depth: u8,
) -> Result<Segment, SkipReason> {
    match proto {
        0x0021 | 0x0057 => ip(record, data, depth),
        0x0281 | 0x0283 => mpls(record, data, depth),
        _ => Err(SkipReason::NotIp),
    }
}

/// Cisco HDLC: address (0x0f or 0x8f), control, EtherType.
fn c_hdlc(record: &Record<'_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
    let et = be16(data, 2).ok_or(SkipReason::LinkHeader)?;
    ether_type(record, et, &data[4..], depth)
}

/// NFLOG: family, version, resource id, then TLVs (length and type in the
/// capturing host's byte order, values padded to 4 bytes); type 9
/// (NFULA_PAYLOAD) holds the IP packet.
fn nflog(record: &Record<'_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
    const NFULA_PAYLOAD: u16 = 9;
    let mut at = 4;
    // The byte order is that of the host; a TLV length must be at least 4
    // and fit, which tells the two apart on the first TLV.
    let little = match data.get(at..at + 2) {
        Some(&[a, b]) => {
            let le = usize::from(u16::from_le_bytes([a, b]));
            le >= 4 && le <= data.len() - at
        }
        _ => return Err(SkipReason::LinkHeader),
    };
    while let Some(tl) = data.get(at..at + 4) {
        let (len, kind) = if little {
            (
                u16::from_le_bytes([tl[0], tl[1]]),
                u16::from_le_bytes([tl[2], tl[3]]),
            )
        } else {
            (
                u16::from_be_bytes([tl[0], tl[1]]),
                u16::from_be_bytes([tl[2], tl[3]]),
            )
        };
        let len = usize::from(len);
        if len < 4 {
            return Err(SkipReason::LinkHeader);
        }
        if kind & 0x7fff == NFULA_PAYLOAD {
            let end = (at + len).min(data.len());
            return ip(record, &data[at + 4..end], depth);
        }
        at += (len + 3) & !3;
    }
    Err(SkipReason::NotIp)
}

/// ARCnet: source, destination, (Linux: 2 offset bytes), protocol id, and
/// for the RFC 1201 protocols a split flag and sequence number (plus 4
/// bytes for an "exception" frame, flag 0xff).
fn arcnet(
    record: &Record<'_>,
    data: &[u8],
    proto_at: usize,
    depth: u8,
) -> Result<Segment, SkipReason> {
    let proto = *data.get(proto_at).ok_or(SkipReason::LinkHeader)?;
    let mut at = proto_at + 1;
    match proto {
        // RFC 1201 IPv4, IPv6.
        0xd4 | 0xc4 => {
            if data.get(at) == Some(&0xff) {
                at += 4;
            }
            at += 3;
        }
        // RFC 1051 IPv4.
        0xf0 => {}
        _ => return Err(SkipReason::NotIp),
    }
    ip(record, data.get(at..).ok_or(SkipReason::LinkHeader)?, depth)
}

/// IEEE 802.11 data frames (unencrypted): the MAC header (24 bytes, 30
/// with four addresses, +2 QoS, +4 HT control), then 802.2 LLC/SNAP.
fn wlan(record: &Record<'_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
    let (fc0, fc1) = match data {
        [a, b, ..] => (*a, *b),
        _ => return Err(SkipReason::LinkHeader),
    };
    let kind = (fc0 >> 2) & 0x03;
    let subtype = fc0 >> 4;
    // Only data frames with a body (not null-function), not protected.
    if kind != 2 || subtype & 0x04 != 0 || fc1 & 0x40 != 0 {
        return Err(SkipReason::NotIp);
    }
    let qos = subtype & 0x08 != 0;
    let mut len = 24;
    if fc1 & 0x03 == 0x03 {
        len += 6;
    }
    if qos {
        len += 2;
        if fc1 & 0x80 != 0 {
            len += 4;
        }
    }
    llc(
        record,
        data.get(len..).ok_or(SkipReason::LinkHeader)?,
        depth,
    )
}

/// GRE (RFC 2784/2890), and the enhanced GRE of PPTP (RFC 2637).
fn gre(record: &Record<'_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
    let (flags, proto) = match (be16(data, 0), be16(data, 2)) {
        (Some(f), Some(p)) => (f, p),
        _ => return Err(SkipReason::NotTcp),
    };
    let checksum = flags & 0x8000 != 0;
    let routing = flags & 0x4000 != 0;
    let key = flags & 0x2000 != 0;
    let seq = flags & 0x1000 != 0;
    let version = flags & 0x0007;
    if routing {
        return Err(SkipReason::NotTcp);
    }
    let mut at = 4;
    match version {
        0 => at += 4 * (usize::from(checksum) + usize::from(key) + usize::from(seq)),
        // Enhanced GRE: key always, sequence if S, acknowledgment if A.
        1 => at += 4 + 4 * (usize::from(seq) + usize::from(flags & 0x0080 != 0)),
        _ => return Err(SkipReason::NotTcp),
    }
    let rest = data.get(at..).ok_or(SkipReason::NotTcp)?;
    if depth >= MAX_NESTING {
        return Err(SkipReason::NotTcp);
    }
    let depth = depth + 1;
    match proto {
        // Type I has no header (and no GRE sequence number), type II 8 bytes.
        GRE_ERSPAN_2 if !seq => ethernet(record, rest, depth),
        GRE_ERSPAN_2 => ethernet(record, rest.get(8..).ok_or(SkipReason::NotTcp)?, depth),
        GRE_ERSPAN_3 => {
            // 12 bytes, plus an 8-byte platform subheader when O is set.
            let o = rest.get(11).ok_or(SkipReason::NotTcp)? & 0x01 != 0;
            let len = if o { 20 } else { 12 };
            ethernet(record, rest.get(len..).ok_or(SkipReason::NotTcp)?, depth)
        }
        // The WCCP redirect header (4 bytes) is optional: IPv4 follows
        // directly when the version nibble says so (tshark's rule).
        GRE_WCCP => match rest.first() {
            Some(b) if b >> 4 == 4 => ip(record, rest, depth),
            _ => ip(record, rest.get(4..).ok_or(SkipReason::NotTcp)?, depth),
        },
        GRE_PPP => ppp(record, rest, depth),
        _ => ether_type(record, proto, rest, depth),
    }
}

/// Tunnels over UDP, by well-known port (either direction, as tshark).
fn udp_tunnel(
    record: &Record<'_>,
    ports: (u16, u16),
    data: &[u8],
    depth: u8,
) -> Result<Segment, SkipReason> {
    let is = |port| ports.0 == port || ports.1 == port;
    if is(UDP_VXLAN) {
        // RFC 7348: flags (I set), reserved, VNI, reserved; then Ethernet.
        match data.first() {
            Some(f) if f & 0x08 != 0 => {
                ethernet(record, data.get(8..).ok_or(SkipReason::NotTcp)?, depth)
            }
            _ => Err(SkipReason::NotTcp),
        }
    } else if is(UDP_GENEVE) {
        // RFC 8926: version and option length (4-byte words), flags,
        // protocol type (EtherType), VNI; then options.
        let first = *data.first().ok_or(SkipReason::NotTcp)?;
        if first >> 6 != 0 {
            return Err(SkipReason::NotTcp);
        }
        let len = 8 + 4 * usize::from(first & 0x3f);
        let proto = be16(data, 2).ok_or(SkipReason::NotTcp)?;
        ether_type(
            record,
            proto,
            data.get(len..).ok_or(SkipReason::NotTcp)?,
            depth,
        )
    } else if is(UDP_GTP_U) {
        gtp_u(record, data, depth)
    } else if is(UDP_L2TP) {
        l2tp(record, data, depth)
    } else {
        Err(SkipReason::NotTcp)
    }
}

/// L2TPv2 (RFC 2661) data messages: flags and version, then optional
/// length, tunnel and session ids, optional Ns/Nr and offset; then PPP.
fn l2tp(record: &Record<'_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
    let not = SkipReason::NotTcp;
    let flags = be16(data, 0).ok_or(not)?;
    // Control messages (T) carry no PPP; only version 2.
    if flags & 0x8000 != 0 || flags & 0x000f != 2 {
        return Err(not);
    }
    let mut at = 2 + 4;
    if flags & 0x4000 != 0 {
        at += 2;
    }
    if flags & 0x0800 != 0 {
        at += 4;
    }
    if flags & 0x0200 != 0 {
        at += 2 + usize::from(be16(data, at).ok_or(not)?);
    }
    ppp(record, data.get(at..).ok_or(not)?, depth)
}

/// GTP-U version 1 (3GPP TS 29.281): a G-PDU (type 255) carries an IP
/// packet after the 8-byte header, the optional sequence/N-PDU/next-type
/// word and any extension headers.
fn gtp_u(record: &Record<'_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
    let not = SkipReason::NotTcp;
    let head = data.get(..8).ok_or(not)?;
    if head[0] >> 5 != 1 || head[0] & 0x10 == 0 || head[1] != 0xff {
        return Err(not);
    }
    let mut at = 8;
    if head[0] & 0x07 != 0 {
        let mut next = *data.get(at + 3).ok_or(not)?;
        at += 4;
        // Extension headers: length in 4-byte words, next type last.
        let mut count = 0;
        while next != 0 {
            let words = usize::from(*data.get(at).ok_or(not)?);
            count += 1;
            if words == 0 || count > MAX_NESTING {
                return Err(not);
            }
            at += 4 * words;
            next = *data.get(at - 1).ok_or(not)?;
        }
    }
    ip(record, data.get(at..).ok_or(not)?, depth)
}

/// Inside a tunnel, a frame that does not lead to IP is still an IP
/// packet that is not TCP.
fn tunnelled(result: Result<Segment, SkipReason>) -> Result<Segment, SkipReason> {
    result.map_err(|e| match e {
        SkipReason::NotIp | SkipReason::LinkHeader | SkipReason::UnsupportedLinkType => {
            SkipReason::NotTcp
        }
        e => e,
    })
}

fn segment_from(
    record: &Record<'_>,
    sliced: &LaxSlicedPacket<'_>,
    depth: u8,
) -> Result<Segment, SkipReason> {
    let (src, dst, payload, declared_len, ip_id) = match &sliced.net {
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
                Some(h.identification()),
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
                None,
            )
        }
        Some(LaxNetSlice::Arp(_)) => return Err(SkipReason::NotIp),
        None => {
            // An EtherType etherparse does not open (MPLS, PPPoE, LLC, ...),
            // possibly after VLAN tags.
            if sliced.stop_err.is_none()
                && let Some(p) = sliced.ether_payload()
                && is_own_ether_type(p.ether_type.0)
            {
                return ether_type(record, p.ether_type.0, p.payload, depth);
            }
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
        IpNumber::IPV4 | IpNumber::IPV6 if depth < MAX_NESTING => {
            // IP-in-IP / 6in4 / 4in6: the inner packet is the connection.
            return ip(record, payload.payload, depth + 1).map_err(|e| match e {
                SkipReason::NotIp | SkipReason::LinkHeader => SkipReason::IpHeader,
                e => e,
            });
        }
        IpNumber::GRE => return tunnelled(gre(record, payload.payload, depth)),
        IpNumber::MPLS_IN_IP if depth < MAX_NESTING => {
            return tunnelled(mpls(record, payload.payload, depth + 1));
        }
        IpNumber::UDP if depth < MAX_NESTING => {
            let Some(TransportSlice::Udp(udp)) = &sliced.transport else {
                return Err(SkipReason::NotTcp);
            };
            let ports = (udp.source_port(), udp.destination_port());
            return tunnelled(udp_tunnel(record, ports, udp.payload(), depth + 1));
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
    let wscale = if tcp.syn() {
        tcp.options_iterator().find_map(|opt| match opt {
            Ok(TcpOptionElement::WindowScale(shift)) => Some(shift),
            _ => None,
        })
    } else {
        None
    };
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
        ip_id,
        wscale,
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

    /// An IPv4 SYN from 10.0.0.1:40000 to 10.0.0.2:80, and what it decodes to.
    fn inner_v4() -> (Vec<u8>, Segment) {
        let builder = PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 80, 1000, 64240)
            .syn();
        let mut ip = Vec::new();
        builder.write(&mut ip, &[]).unwrap();
        let seg = decode(&record(LinkType::RAW, &ip)).unwrap();
        (ip, seg)
    }

    fn inner_v6() -> (Vec<u8>, Segment) {
        let builder = PacketBuilder::ipv6([0xfd; 16], [0xfe; 16], 64)
            .tcp(1234, 443, 9, 1000)
            .ack(77);
        let mut ip = Vec::new();
        builder.write(&mut ip, b"data").unwrap();
        let seg = decode(&record(LinkType::RAW, &ip)).unwrap();
        (ip, seg)
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// Ethernet II with the given EtherType.
    fn eth(ether_type: u16, payload: &[u8]) -> Vec<u8> {
        cat(&[&[2; 6], &[1; 6], &ether_type.to_be_bytes(), payload])
    }

    /// Outer Ethernet + IPv4 (192.0.2.1 -> 192.0.2.2) with the given protocol.
    fn outer_ip(proto: IpNumber, payload: &[u8]) -> Vec<u8> {
        let builder =
            PacketBuilder::ethernet2([1; 6], [2; 6]).ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64);
        let mut out = Vec::new();
        builder.write(&mut out, proto, payload).unwrap();
        out
    }

    /// Outer Ethernet + IPv4 + UDP to the given port.
    fn outer_udp(dport: u16, payload: &[u8]) -> Vec<u8> {
        let builder = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .udp(50000, dport);
        let mut out = Vec::new();
        builder.write(&mut out, payload).unwrap();
        out
    }

    fn eth_decode(bytes: &[u8]) -> Result<Segment, SkipReason> {
        decode(&record(LinkType::ETHERNET, bytes))
    }

    #[test]
    fn mpls_after_vlan_decodes() {
        let (ip, want) = inner_v4();
        // Two labels, the second with the bottom-of-stack bit.
        let mpls = cat(&[&[0x00, 0x01, 0x00, 0x40], &[0x00, 0x02, 0x01, 0x40], &ip]);
        let vlan = cat(&[&[0x00, 0x0a], &0x8847u16.to_be_bytes(), &mpls]);
        assert_eq!(eth_decode(&eth(0x8100, &vlan)), Ok(want));
        assert_eq!(eth_decode(&eth(0x8847, &mpls)), Ok(want));
        // Ethernet pseudowire with a control word.
        let pw = cat(&[&[0x00, 0x01, 0x01, 0x40], &[0; 4], &eth(0x0800, &ip)]);
        assert_eq!(eth_decode(&eth(0x8847, &pw)), Ok(want));
    }

    #[test]
    fn pppoe_session_decodes_ipv4_and_ipv6() {
        let (ip, want) = inner_v4();
        let pppoe = cat(&[
            &[0x11, 0x00, 0x00, 0x01],
            &(ip.len() as u16 + 2).to_be_bytes(),
            &[0x00, 0x21],
            &ip,
        ]);
        assert_eq!(eth_decode(&eth(0x8864, &pppoe)), Ok(want));
        let (ip6, want6) = inner_v6();
        let pppoe6 = cat(&[&[0x11, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x57], &ip6]);
        // PPPoE inside QinQ.
        let qinq = cat(&[&[0x00, 0x01, 0x81, 0x00, 0x00, 0x02, 0x88, 0x64], &pppoe6]);
        assert_eq!(eth_decode(&eth(0x88a8, &qinq)), Ok(want6));
    }

    #[test]
    fn llc_snap_over_802_3_and_fddi_decode() {
        let (ip, want) = inner_v4();
        let snap = cat(&[&[0xaa, 0xaa, 0x03, 0x00, 0x00, 0x00, 0x08, 0x00], &ip]);
        let dot3 = eth(snap.len() as u16, &snap);
        assert_eq!(eth_decode(&dot3), Ok(want));
        let fddi = cat(&[&[0x50], &[2; 6], &[1; 6], &snap]);
        assert_eq!(decode(&record(LinkType::FDDI, &fddi)), Ok(want));
        // Other LLC SAPs (spanning tree, NetBIOS) are not IP.
        let stp = eth(7, &[0x42, 0x42, 0x03, 0, 0, 0, 0]);
        assert_eq!(eth_decode(&stp), Err(SkipReason::NotIp));
    }

    #[test]
    fn e_tag_decodes() {
        let (ip, want) = inner_v4();
        let etag = cat(&[&[0; 6], &[0x08, 0x00], &ip]);
        assert_eq!(eth_decode(&eth(0x893f, &etag)), Ok(want));
    }

    #[test]
    fn gre_variants_decode() {
        let (ip, want) = inner_v4();
        // Plain GRE carrying IPv4, with key and sequence number.
        let gre = cat(&[&[0x30, 0x00, 0x08, 0x00], &[0; 8], &ip]);
        assert_eq!(eth_decode(&outer_ip(IpNumber::GRE, &gre)), Ok(want));
        // Transparent Ethernet Bridging.
        let teb = cat(&[&[0x00, 0x00, 0x65, 0x58], &eth(0x0800, &ip)]);
        assert_eq!(eth_decode(&outer_ip(IpNumber::GRE, &teb)), Ok(want));
        // ERSPAN type II (sequence number present, 8-byte header).
        let erspan2 = cat(&[
            &[0x10, 0x00, 0x88, 0xbe],
            &[0; 4],
            &[0x10, 0, 0, 0, 0, 0, 0, 0],
            &eth(0x0800, &ip),
        ]);
        assert_eq!(eth_decode(&outer_ip(IpNumber::GRE, &erspan2)), Ok(want));
        // ERSPAN type I (no sequence number, no header).
        let erspan1 = cat(&[&[0x00, 0x00, 0x88, 0xbe], &eth(0x0800, &ip)]);
        assert_eq!(eth_decode(&outer_ip(IpNumber::GRE, &erspan1)), Ok(want));
        // ERSPAN type III with the optional platform subheader (O bit).
        let erspan3 = cat(&[
            &[0x10, 0x00, 0x22, 0xeb],
            &[0; 4],
            &[0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01],
            &[0; 8],
            &eth(0x0800, &ip),
        ]);
        assert_eq!(eth_decode(&outer_ip(IpNumber::GRE, &erspan3)), Ok(want));
        // WCCP, with and without its 4-byte redirect header.
        let wccp = cat(&[&[0x00, 0x00, 0x88, 0x3e], &ip]);
        assert_eq!(eth_decode(&outer_ip(IpNumber::GRE, &wccp)), Ok(want));
        let wccp_hdr = cat(&[&[0x00, 0x00, 0x88, 0x3e], &[0x00, 0x00, 0x00, 0x01], &ip]);
        assert_eq!(eth_decode(&outer_ip(IpNumber::GRE, &wccp_hdr)), Ok(want));
        // PPTP's enhanced GRE (version 1, key, sequence) carrying PPP.
        let pptp = cat(&[
            &[0x30, 0x01, 0x88, 0x0b],
            &[0; 8],
            &[0xff, 0x03, 0x00, 0x21],
            &ip,
        ]);
        assert_eq!(eth_decode(&outer_ip(IpNumber::GRE, &pptp)), Ok(want));
        // GRE with routing present is not opened.
        let routed = cat(&[&[0x40, 0x00, 0x08, 0x00], &ip]);
        assert_eq!(
            eth_decode(&outer_ip(IpNumber::GRE, &routed)),
            Err(SkipReason::NotTcp)
        );
    }

    #[test]
    fn udp_tunnels_decode() {
        let (ip, want) = inner_v4();
        let (ip6, want6) = inner_v6();
        let vxlan = cat(&[&[0x08, 0, 0, 0, 0, 0, 0x2a, 0], &eth(0x86dd, &ip6)]);
        assert_eq!(eth_decode(&outer_udp(4789, &vxlan)), Ok(want6));
        // Geneve with one 8-byte option (length 2 words), Ethernet inside.
        let geneve = cat(&[
            &[0x02, 0x00, 0x65, 0x58, 0, 0, 0x2a, 0],
            &[0; 8],
            &eth(0x0800, &ip),
        ]);
        assert_eq!(eth_decode(&outer_udp(6081, &geneve)), Ok(want));
        // Geneve carrying IPv4 directly.
        let geneve_ip = cat(&[&[0x00, 0x00, 0x08, 0x00, 0, 0, 0x2a, 0], &ip]);
        assert_eq!(eth_decode(&outer_udp(6081, &geneve_ip)), Ok(want));
        // GTP-U G-PDU with the E flag and one 4-byte extension header.
        let gtp = cat(&[
            &[0x34, 0xff, 0x00, 0x00, 0, 0, 0, 1],
            &[0, 0, 0, 0x85],
            &[0x01, 0x00, 0x01, 0x00],
            &ip,
        ]);
        assert_eq!(eth_decode(&outer_udp(2152, &gtp)), Ok(want));
        // GTP-U echo request (not a G-PDU) is no TCP.
        assert_eq!(
            eth_decode(&outer_udp(
                2152,
                &[0x32, 0x01, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0]
            )),
            Err(SkipReason::NotTcp)
        );
        // L2TPv2 data with length and sequence fields, then PPP.
        let l2tp = cat(&[
            &[0x48, 0x02],
            &[0, 0],
            &[0, 1, 0, 2],
            &[0; 4],
            &[0xff, 0x03, 0x00, 0x57],
            &ip6,
        ]);
        assert_eq!(eth_decode(&outer_udp(1701, &l2tp)), Ok(want6));
        // Other UDP stays a non-TCP skip.
        assert_eq!(eth_decode(&outer_udp(53, &vxlan)), Err(SkipReason::NotTcp));
    }

    #[test]
    fn ppp_and_hdlc_links_decode() {
        let (ip, want) = inner_v4();
        let (ip6, want6) = inner_v6();
        let framed = cat(&[&[0xff, 0x03, 0x00, 0x21], &ip]);
        assert_eq!(decode(&record(LinkType::PPP, &framed)), Ok(want));
        assert_eq!(decode(&record(LinkType::PPP_HDLC, &framed)), Ok(want));
        let bare = cat(&[&[0x00, 0x57], &ip6]);
        assert_eq!(decode(&record(LinkType::PPP, &bare)), Ok(want6));
        // Protocol-field compression: one odd byte.
        let compressed = cat(&[&[0x21], &ip]);
        assert_eq!(decode(&record(LinkType::PPP, &compressed)), Ok(want));
        // PPP carrying MPLS.
        let ppp_mpls = cat(&[&[0xff, 0x03, 0x02, 0x81, 0x00, 0x01, 0x01, 0x40], &ip]);
        assert_eq!(decode(&record(LinkType::PPP, &ppp_mpls)), Ok(want));
        let chdlc = cat(&[&[0x0f, 0x00, 0x08, 0x00], &ip]);
        assert_eq!(decode(&record(LinkType::C_HDLC, &chdlc)), Ok(want));
        assert_eq!(decode(&record(LinkType::PPP_HDLC, &chdlc)), Ok(want));
        // LCP is not IP.
        let lcp = [0xff, 0x03, 0xc0, 0x21, 0x01, 0x01, 0x00, 0x04];
        assert_eq!(decode(&record(LinkType::PPP, &lcp)), Err(SkipReason::NotIp));
    }

    #[test]
    fn ppi_nflog_arcnet_and_wlan_links_decode() {
        let (ip, want) = inner_v4();
        // PPI: version 0, flags 0, length 8, DLT 1 (Ethernet), all LE.
        let ppi = cat(&[&[0, 0, 8, 0, 1, 0, 0, 0], &eth(0x0800, &ip)]);
        assert_eq!(decode(&record(LinkType::PPI, &ppi)), Ok(want));
        // NFLOG: AF_INET, version 0, resource 0; a prefix TLV, then the
        // payload TLV (little-endian lengths and types).
        let prefix = [8u8, 0, 10, 0, b'a', b'b', 0, 0];
        let payload_tlv = cat(&[&(ip.len() as u16 + 4).to_le_bytes(), &[9, 0], &ip]);
        let nflog = cat(&[&[2, 0, 0, 0], &prefix, &payload_tlv]);
        assert_eq!(decode(&record(LinkType::NFLOG, &nflog)), Ok(want));
        // ARCnet, Linux header: RFC 1051 and RFC 1201 encapsulations.
        let rfc1051 = cat(&[&[0x01, 0x02, 0, 0, 0xf0], &ip]);
        assert_eq!(decode(&record(LinkType::ARCNET_LINUX, &rfc1051)), Ok(want));
        let rfc1201 = cat(&[&[0x01, 0x02, 0, 0, 0xd4, 0x00, 0x00, 0x01], &ip]);
        assert_eq!(decode(&record(LinkType::ARCNET_LINUX, &rfc1201)), Ok(want));
        let bsd = cat(&[&[0x01, 0x02, 0xd4, 0x00, 0x00, 0x01], &ip]);
        assert_eq!(decode(&record(LinkType::ARCNET_BSD, &bsd)), Ok(want));
        // 802.11 QoS data frame (from DS), then LLC/SNAP; and under radiotap.
        let snap = [0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];
        let wlan = cat(&[&[0x88, 0x02, 0, 0], &[0; 18], &[0; 2], &[0; 2], &snap, &ip]);
        assert_eq!(decode(&record(LinkType::IEEE802_11, &wlan)), Ok(want));
        let radiotap = cat(&[&[0, 0, 8, 0, 0, 0, 0, 0], &wlan]);
        assert_eq!(
            decode(&record(LinkType::IEEE802_11_RADIOTAP, &radiotap)),
            Ok(want)
        );
        // A protected (encrypted) data frame is not opened.
        let mut protected = wlan.clone();
        protected[1] |= 0x40;
        assert_eq!(
            decode(&record(LinkType::IEEE802_11, &protected)),
            Err(SkipReason::NotIp)
        );
    }

    /// tcpdump/ipoib.pcap frame 9 (shortened: the SYN's last option bytes
    /// are kept, nothing after the TCP header existed).
    const IPOIB_SYN: &[u8] = &[
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x30, 0x20, 0x00, 0x03, 0x80, 0x00, 0x05, 0x50, 0xfe, 0x80, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x10, 0xe0, 0x00, 0x66, 0x4a, 0xb4, 0x51, 0x08, 0x00, 0x00, 0x00, 0x45,
        0x00, 0x00, 0x3c, 0x00, 0x44, 0x40, 0x00, 0x40, 0x06, 0x49, 0x05, 0xc0, 0xa8, 0x38, 0x0a,
        0xc0, 0xa8, 0x38, 0x18, 0x85, 0x7a, 0x00, 0x16, 0x2f, 0x94, 0x10, 0xf6, 0x00, 0x00, 0x00,
        0x00, 0xa0, 0xc2, 0x80, 0xd7, 0xef, 0xae, 0x00, 0x00, 0x02, 0x04, 0xff, 0xc8, 0x04, 0x02,
        0x08, 0x0a, 0x03, 0xb5, 0x21, 0x61, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x08,
    ];

    #[test]
    fn ipoib_frame_from_tcpdump_decodes() {
        let seg = decode(&record(LinkType::IPOIB, IPOIB_SYN)).unwrap();
        assert_eq!(seg.src.to_string(), "192.168.56.10:34170");
        assert_eq!(seg.dst.to_string(), "192.168.56.24:22");
        assert_eq!(seg.seq, SeqNum(798232822));
        assert!(seg.flags.syn() && !seg.flags.ack());
        assert_eq!(seg.tsopt.unwrap().tsval, TsVal(0x03b52161));
    }

    #[test]
    fn nesting_is_bounded() {
        let (ip, _) = inner_v4();
        // 20 GRE layers around the packet: opened up to MAX_NESTING, then
        // skipped, never recursing without bound.
        let mut frame = ip;
        for _ in 0..20 {
            let builder = PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64);
            let mut out = Vec::new();
            let gre = cat(&[&[0x00, 0x00, 0x08, 0x00], &frame]);
            builder.write(&mut out, IpNumber::GRE, &gre).unwrap();
            frame = out;
        }
        assert_eq!(
            decode(&record(LinkType::RAW, &frame)),
            Err(SkipReason::NotTcp)
        );
        // A PPI header naming PPI again is refused, not followed.
        let ppi = [0u8, 0, 8, 0, 192, 0, 0, 0, 0, 0, 8, 0, 192, 0, 0, 0];
        assert_eq!(
            decode(&record(LinkType::PPI, &ppi)),
            Err(SkipReason::UnsupportedLinkType)
        );
        // Every prefix of a tunnelled frame decodes or skips without panic.
        let (ip, _) = inner_v4();
        let gtp = outer_udp(
            2152,
            &cat(&[
                &[0x34, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x85, 0x01, 0, 1, 0],
                &ip,
            ]),
        );
        for len in 0..gtp.len() {
            let _ = eth_decode(&gtp[..len]);
        }
    }

    /// Deliberate difference from tshark: a TCP header quoted in an ICMP
    /// error is a copy of some earlier segment, not a segment of the
    /// connection, so it is not decoded (tshark gives it a `tcp.stream`).
    #[test]
    fn tcp_quoted_in_icmp_error_is_not_a_segment() {
        let (ip, _) = inner_v4();
        let builder = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([192, 0, 2, 1], [10, 0, 0, 1], 64)
            .icmpv4_raw(3, 3, [0; 4]);
        let mut out = Vec::new();
        builder.write(&mut out, &ip[..28]).unwrap();
        assert_eq!(eth_decode(&out), Err(SkipReason::NotTcp));
    }

    #[test]
    fn flags_print_like_tcpdump() {
        assert_eq!(TcpFlags(TcpFlags::SYN | TcpFlags::ACK).to_string(), "S.");
        assert_eq!(TcpFlags(TcpFlags::FIN | TcpFlags::ACK).to_string(), "F.");
        assert_eq!(TcpFlags(TcpFlags::RST).to_string(), "R");
    }
}
