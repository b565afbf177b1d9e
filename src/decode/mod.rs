//! From captured frames to TCP segments: link layer, IPv4/IPv6 and the TCP
//! header with its timestamp option.
//!
//! Only this file uses etherparse, in its lax mode: a frame cut by the snap
//! length (`tcpdump -s 96`) still yields a full segment as long as the TCP
//! header is complete, with the payload length taken from the IP header.
//! Frames that carry no usable TCP header are not errors but counted skips
//! ([`SkipReason`]), so the report can say what was left out and why.
//!
//! IP fragments are put together again by a [`Decoder`], which holds the
//! fragment queues of one capture ([`frag`] has the kernel's rules); the
//! free function [`decode`] looks at one frame alone and reassembles
//! nothing.

use crate::capture::{LinkType, Record};
use crate::flow::Endpoint;
use crate::seq::{SeqNum, TsVal};
use crate::time::Timestamp;
use etherparse::{
    EtherType, IpNumber, LaxNetSlice, LaxSlicedPacket, TcpOptionElement, TransportSlice,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

pub mod frag;
use frag::{Fragment, Key, Outcome, Reassembler};

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
    /// Whether the IP datagram that carried the segment was fragmented.
    pub fragmentation: Fragmentation,
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

/// How the IP datagram carrying a segment reached the capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fragmentation {
    /// In one piece (the usual case).
    #[default]
    Whole,
    /// Reassembled from `fragments` fragments; the segment carries the
    /// frame number and time of the fragment that completed it, and
    /// `first_frame` is the earliest of them in the capture.
    Reassembled { first_frame: u64, fragments: u32 },
    /// Only the first fragment (IPv4), whose data the snap length cut so
    /// that it could not be reassembled: its TCP header is taken as it is
    /// (as tshark does), and `payload_len` covers this fragment alone.
    FirstFragmentOnly,
}

impl Fragmentation {
    /// A Wireshark display filter showing every frame of the segment
    /// whose own frame number is `frame`: the fragments name the frame
    /// they were reassembled in.
    pub fn display_filter(self, frame: u64) -> String {
        match self {
            Fragmentation::Reassembled { .. } => format!(
                "frame.number == {frame} || ip.reassembled_in == {frame} || ipv6.reassembled.in == {frame}"
            ),
            _ => format!("frame.number == {frame}"),
        }
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
    /// A fragment that cannot be reassembled: the snap length cut its
    /// data (and it is not a first fragment with a whole TCP header).
    IpFragment,
    /// IP, but not TCP (UDP, ICMP, tunnels timewait does not open).
    NotTcp,
    /// The TCP header is cut by the snap length or malformed.
    TcpHeader,
    /// A fragment reassembled into the datagram of a later frame.
    FragmentReassembled,
    /// A fragment of a datagram not complete within Linux's 30 s
    /// (`ipfrag_time`).
    FragmentTimedOut,
    /// A fragment of a datagram still incomplete when the capture ended.
    FragmentIncomplete,
    /// A fragment of a datagram discarded because fragments overlapped
    /// (RFC 5722; Linux does the same for IPv4).
    FragmentOverlap,
    /// A fragment the kernel discards for its length or end (and with it
    /// the datagram's other fragments, as the kernel does).
    FragmentInvalid,
    /// A fragment lying wholly within data already held: dropped alone.
    FragmentDuplicate,
    /// A fragment dropped because the fragments held reached the memory
    /// cap (Linux's `ipfrag_high_thresh`, 4 MB).
    FragmentOverCap,
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
            SkipReason::FragmentReassembled => "fragment_reassembled",
            SkipReason::FragmentTimedOut => "fragment_timed_out",
            SkipReason::FragmentIncomplete => "fragment_incomplete",
            SkipReason::FragmentOverlap => "fragment_overlap",
            SkipReason::FragmentInvalid => "fragment_invalid",
            SkipReason::FragmentDuplicate => "fragment_duplicate",
            SkipReason::FragmentOverCap => "fragment_over_cap",
        }
    }

    /// Every reason, in the order of the enum.
    pub const ALL: [SkipReason; 14] = [
        SkipReason::UnsupportedLinkType,
        SkipReason::LinkHeader,
        SkipReason::NotIp,
        SkipReason::IpHeader,
        SkipReason::IpFragment,
        SkipReason::NotTcp,
        SkipReason::TcpHeader,
        SkipReason::FragmentReassembled,
        SkipReason::FragmentTimedOut,
        SkipReason::FragmentIncomplete,
        SkipReason::FragmentOverlap,
        SkipReason::FragmentInvalid,
        SkipReason::FragmentDuplicate,
        SkipReason::FragmentOverCap,
    ];

    /// A phrase for the report ("12 frames skipped: not IP").
    pub fn describe(self) -> &'static str {
        match self {
            SkipReason::UnsupportedLinkType => "link type not decoded",
            SkipReason::LinkHeader => "link-layer header cut or malformed",
            SkipReason::NotIp => "not IP (ARP, LLDP, ...)",
            SkipReason::IpHeader => "IP header cut or malformed",
            SkipReason::IpFragment => "IP fragment cut by the snap length (not reassembled)",
            SkipReason::NotTcp => "IP but not TCP",
            SkipReason::TcpHeader => "TCP header cut or malformed",
            SkipReason::FragmentReassembled => "IP fragment reassembled (segment in a later frame)",
            SkipReason::FragmentTimedOut => {
                "IP fragment timed out (datagram incomplete after 30 s)"
            }
            SkipReason::FragmentIncomplete => {
                "IP fragment of a datagram still incomplete at the end"
            }
            SkipReason::FragmentOverlap => "IP fragment overlapping (datagram discarded)",
            SkipReason::FragmentInvalid => {
                "IP fragment with a bad length or end (datagram discarded)"
            }
            SkipReason::FragmentDuplicate => "IP fragment duplicated (dropped)",
            SkipReason::FragmentOverCap => "IP fragment dropped at the 4 MB reassembly cap",
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
/// HDLC, PPI, NFLOG, IPoIB, ARCnet, FDDI, Juniper Ethernet). Each layer is
/// a bounds-checked slice of the frame: no allocation, and at most
/// [`MAX_NESTING`] layers.
///
/// Not decoded, on purpose: TCP headers quoted inside ICMP errors (a copy
/// of a header some router saw, not a segment of the connection) and
/// headers sampled into sFlow records. This function sees one frame alone,
/// so a fragment whose data was captured whole is an `ip_fragment` skip
/// here; a [`Decoder`] reassembles it.
pub fn decode(record: &Record<'_>) -> Result<Segment, SkipReason> {
    let mut cx = Cx {
        record,
        frag: None,
        held: false,
    };
    link_layer(&mut cx, record.link, record.data, 0)
}

/// The decoder of one capture file: [`decode`] plus the IP fragment
/// queues, and the count of frames without a segment by reason.
///
/// A fragment is counted when its datagram's fate is known (see
/// [`frag`]), so after [`Decoder::finish`] every frame fed in is either a
/// segment or counted once.
#[derive(Debug)]
pub struct Decoder {
    frag: Reassembler,
    skipped: [u64; SkipReason::ALL.len()],
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder with Linux's reassembly limits (30 s, 4 MB).
    pub fn new() -> Decoder {
        Decoder::with_limits(frag::Limits::default())
    }

    pub fn with_limits(limits: frag::Limits) -> Decoder {
        Decoder {
            frag: Reassembler::new(limits),
            skipped: [0; SkipReason::ALL.len()],
        }
    }

    /// The segment in this frame, if it completes one. Frames without one
    /// are counted by reason.
    pub fn decode(&mut self, record: &Record<'_>) -> Option<Segment> {
        let mut cx = Cx {
            record,
            frag: Some(&mut self.frag),
            held: false,
        };
        match link_layer(&mut cx, record.link, record.data, 0) {
            Ok(seg) => Some(seg),
            Err(reason) => {
                // A fragment held for reassembly is counted by its fate.
                if !cx.held {
                    self.skipped[reason as usize] += 1;
                }
                None
            }
        }
    }

    /// Bytes held by the fragment queues now.
    pub fn fragment_memory(&self) -> usize {
        self.frag.memory()
    }

    /// The most bytes the fragment queues held at once.
    pub fn fragment_memory_peak(&self) -> usize {
        self.frag.peak_memory()
    }

    /// Settles the datagrams still waiting (timed out or incomplete) and
    /// returns the frames without a segment, by reason.
    pub fn finish(&mut self) -> BTreeMap<SkipReason, u64> {
        let c = self.frag.finish();
        let mut out = BTreeMap::new();
        for (reason, n) in SkipReason::ALL.iter().zip(self.skipped) {
            if n > 0 {
                out.insert(*reason, n);
            }
        }
        for (reason, n) in [
            (SkipReason::FragmentReassembled, c.reassembled),
            (SkipReason::FragmentTimedOut, c.timed_out),
            (SkipReason::FragmentIncomplete, c.incomplete),
            (SkipReason::FragmentOverlap, c.overlap),
            (SkipReason::FragmentInvalid, c.invalid),
        ] {
            if n > 0 {
                *out.entry(reason).or_default() += n;
            }
        }
        out
    }
}

/// What every layer of the decoder needs: the frame, and the fragment
/// queues when there are any.
struct Cx<'a, 'r> {
    record: &'a Record<'r>,
    frag: Option<&'a mut Reassembler>,
    /// The frame's fragment was kept for reassembly: it is counted later.
    held: bool,
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    data.get(at..at + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
}

fn link_layer(
    cx: &mut Cx<'_, '_>,
    link: LinkType,
    data: &[u8],
    depth: u8,
) -> Result<Segment, SkipReason> {
    let link_header = SkipReason::LinkHeader;
    match link {
        LinkType::ETHERNET => ethernet(cx, data, depth),
        LinkType::NULL | LinkType::LOOP => {
            // 4-byte address family in the writer's byte order; the IP
            // version nibble is a surer guide than the family's number,
            // which differs between BSDs for IPv6.
            ip(cx, data.get(4..).ok_or(link_header)?, depth)
        }
        LinkType::RAW
        | LinkType::RAW_BSD12
        | LinkType::RAW_BSD14
        | LinkType::IPV4
        | LinkType::IPV6 => ip(cx, data, depth),
        LinkType::LINUX_SLL => {
            // 16-byte cooked header, protocol (EtherType) in the last 2 bytes.
            let proto = be16(data, 14).ok_or(link_header)?;
            ether_type(cx, proto, data.get(16..).ok_or(link_header)?, depth)
        }
        LinkType::LINUX_SLL2 => {
            // 20-byte cooked header v2, protocol (EtherType) first.
            let proto = be16(data, 0).ok_or(link_header)?;
            ether_type(cx, proto, data.get(20..).ok_or(link_header)?, depth)
        }
        LinkType::PPP => ppp(cx, data, depth),
        LinkType::PPP_HDLC => match data.first() {
            // Cisco HDLC frames also appear under this link type.
            Some(0x0f | 0x8f) => c_hdlc(cx, data, depth),
            _ => ppp(cx, data, depth),
        },
        LinkType::C_HDLC => c_hdlc(cx, data, depth),
        LinkType::PPI => {
            // version, flags, header length (LE), inner DLT (LE, 4 bytes).
            let head = data.get(..8).ok_or(link_header)?;
            let len = usize::from(u16::from_le_bytes([head[2], head[3]]));
            let dlt = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
            let inner = data.get(len..).filter(|_| len >= 8).ok_or(link_header)?;
            if depth >= MAX_NESTING || LinkType(dlt) == LinkType::PPI {
                return Err(SkipReason::UnsupportedLinkType);
            }
            link_layer(cx, LinkType(dlt), inner, depth + 1)
        }
        LinkType::NFLOG => nflog(cx, data, depth),
        LinkType::IPOIB => {
            // A 40-byte pseudo-header (tcpdump's IPOIB_HDRLEN is 44: it
            // ends with the 20-byte IPoIB hardware address), then RFC
            // 4391's EtherType and 2 reserved bytes (tcpdump's ipoib.pcap).
            let proto = be16(data, 40).ok_or(link_header)?;
            ether_type(cx, proto, data.get(44..).ok_or(link_header)?, depth)
        }
        LinkType::IEEE802_11 => wlan(cx, data, depth),
        LinkType::IEEE802_11_RADIOTAP => {
            // version, pad, header length (LE), then 802.11.
            let len = data
                .get(2..4)
                .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
                .ok_or(link_header)?;
            wlan(cx, data.get(len..).ok_or(link_header)?, depth)
        }
        LinkType::ARCNET_BSD => arcnet(cx, data, 2, depth),
        LinkType::ARCNET_LINUX => arcnet(cx, data, 4, depth),
        LinkType::JUNIPER_ETHER => juniper(cx, data, depth),
        LinkType::FDDI => {
            // frame control, destination, source; then 802.2 LLC.
            llc(cx, data.get(13..).ok_or(link_header)?, depth)
        }
        _ => Err(SkipReason::UnsupportedLinkType),
    }
}

fn ethernet(cx: &mut Cx<'_, '_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
    if let Some(seg) = fast_ethernet_ipv4_tcp(cx.record, data) {
        return Ok(seg);
    }
    ethernet_sliced(cx, data, depth)
}

/// Ethernet through etherparse's slicing: every case.
fn ethernet_sliced(cx: &mut Cx<'_, '_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
    let sliced = LaxSlicedPacket::from_ethernet(data).map_err(|_| SkipReason::LinkHeader)?;
    segment_from(cx, &sliced, depth)
}

/// The common frame without etherparse's slicing (and its copying of a
/// large result struct, the reading thread's largest cost): Ethernet II,
/// IPv4 that is not a fragment, TCP, the whole datagram captured, every
/// length consistent. None for anything else, which takes
/// [`ethernet_sliced`]; where both apply they give the same segment
/// (test `fast_path_equals_etherparse_on_every_capture`). TCP options are
/// still read by etherparse's iterator.
fn fast_ethernet_ipv4_tcp(record: &Record<'_>, data: &[u8]) -> Option<Segment> {
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
        frame: record.frame,
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

fn ip(cx: &mut Cx<'_, '_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
    match data.first().map(|b| b >> 4) {
        Some(4) | Some(6) => {
            let sliced = LaxSlicedPacket::from_ip(data).map_err(|_| SkipReason::IpHeader)?;
            segment_from(cx, &sliced, depth)
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
fn ether_type(cx: &mut Cx<'_, '_>, et: u16, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
    if depth >= MAX_NESTING {
        return Err(SkipReason::NotTcp);
    }
    let depth = depth + 1;
    let link_header = SkipReason::LinkHeader;
    match et {
        ETH_MPLS_UNICAST | ETH_MPLS_MULTICAST => mpls(cx, data, depth),
        ETH_PPPOE_SESSION => {
            // RFC 2516: version/type, code, session id, length; then PPP
            // with a 2-byte protocol field.
            let proto = be16(data, 6).ok_or(link_header)?;
            ppp_proto(cx, proto, data.get(8..).ok_or(link_header)?, depth)
        }
        ETH_TEB => ethernet(cx, data, depth),
        ETH_E_TAG => {
            let inner = be16(data, 6).ok_or(link_header)?;
            ether_type(cx, inner, data.get(8..).ok_or(link_header)?, depth)
        }
        // An 802.3 length field: 802.2 LLC follows.
        0..=ETH_MAX_LENGTH => llc(cx, data, depth),
        _ => segment_from(
            cx,
            &LaxSlicedPacket::from_ether_type(EtherType(et), data),
            depth,
        ),
    }
}

/// IEEE 802.2 LLC: SNAP (`aa aa 03`, OUI, EtherType) or the IP SAP (6).
fn llc(cx: &mut Cx<'_, '_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
    match data.get(..3) {
        Some([0xaa, 0xaa, 0x03]) => {
            let et = be16(data, 6).ok_or(SkipReason::LinkHeader)?;
            ether_type(cx, et, &data[8..], depth)
        }
        Some([0x06, 0x06, 0x03]) => ip(cx, &data[3..], depth),
        Some(_) => Err(SkipReason::NotIp),
        None => Err(SkipReason::LinkHeader),
    }
}

/// MPLS (RFC 3032): pop 4-byte labels up to the bottom of the stack, then
/// IPv4/IPv6 by version nibble, or an Ethernet pseudowire after its
/// control word (RFC 4448), as tshark guesses.
fn mpls(cx: &mut Cx<'_, '_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
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
        Some(4 | 6) => ip(cx, rest, depth),
        Some(0) => ethernet(cx, rest.get(4..).ok_or(SkipReason::LinkHeader)?, depth),
        Some(_) => Err(SkipReason::NotIp),
        None => Err(SkipReason::LinkHeader),
    }
}

/// A PPP frame (link types 9 and 50): optional `ff 03` address and
/// control, then a 1- or 2-byte protocol (RFC 1661 §6.5 compression).
fn ppp(cx: &mut Cx<'_, '_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
    let data = match data {
        [0xff, 0x03, rest @ ..] => rest,
        _ => data,
    };
    match data {
        [p, rest @ ..] if p & 0x01 == 1 => ppp_proto(cx, u16::from(*p), rest, depth),
        [a, b, rest @ ..] => ppp_proto(cx, u16::from_be_bytes([*a, *b]), rest, depth),
        _ => Err(SkipReason::LinkHeader),
    }
}

fn ppp_proto(
    cx: &mut Cx<'_, '_>,
    proto: u16,
    data: &[u8],
    depth: u8,
) -> Result<Segment, SkipReason> {
    match proto {
        0x0021 | 0x0057 => ip(cx, data, depth),
        0x0281 | 0x0283 => mpls(cx, data, depth),
        _ => Err(SkipReason::NotIp),
    }
}

/// Cisco HDLC: address (0x0f or 0x8f), control, EtherType.
fn c_hdlc(cx: &mut Cx<'_, '_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
    let et = be16(data, 2).ok_or(SkipReason::LinkHeader)?;
    ether_type(cx, et, &data[4..], depth)
}

/// NFLOG: family, version, resource id, then TLVs (length and type in the
/// capturing host's byte order, values padded to 4 bytes); type 9
/// (NFULA_PAYLOAD) holds the IP packet.
fn nflog(cx: &mut Cx<'_, '_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
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
            return ip(cx, &data[at + 4..end], depth);
        }
        at += (len + 3) & !3;
    }
    Err(SkipReason::NotIp)
}

/// ARCnet: source, destination, (Linux: 2 offset bytes), protocol id, and
/// for the RFC 1201 protocols a split flag and sequence number (plus 4
/// bytes for an "exception" frame, flag 0xff).
fn arcnet(
    cx: &mut Cx<'_, '_>,
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
    ip(cx, data.get(at..).ok_or(SkipReason::LinkHeader)?, depth)
}

/// IEEE 802.11 data frames (unencrypted): the MAC header (24 bytes, 30
/// with four addresses, +2 QoS, +4 HT control), then 802.2 LLC/SNAP.
fn wlan(cx: &mut Cx<'_, '_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
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
    llc(cx, data.get(len..).ok_or(SkipReason::LinkHeader)?, depth)
}

/// GRE (RFC 2784/2890), and the enhanced GRE of PPTP (RFC 2637).
fn gre(cx: &mut Cx<'_, '_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
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
        GRE_ERSPAN_2 if !seq => ethernet(cx, rest, depth),
        GRE_ERSPAN_2 => ethernet(cx, rest.get(8..).ok_or(SkipReason::NotTcp)?, depth),
        GRE_ERSPAN_3 => {
            // 12 bytes, plus an 8-byte platform subheader when O is set.
            let o = rest.get(11).ok_or(SkipReason::NotTcp)? & 0x01 != 0;
            let len = if o { 20 } else { 12 };
            ethernet(cx, rest.get(len..).ok_or(SkipReason::NotTcp)?, depth)
        }
        // The WCCP redirect header (4 bytes) is optional: IPv4 follows
        // directly when the version nibble says so (tshark's rule).
        GRE_WCCP => match rest.first() {
            Some(b) if b >> 4 == 4 => ip(cx, rest, depth),
            _ => ip(cx, rest.get(4..).ok_or(SkipReason::NotTcp)?, depth),
        },
        GRE_PPP => ppp(cx, rest, depth),
        _ => ether_type(cx, proto, rest, depth),
    }
}

/// Tunnels over UDP, by well-known port (either direction, as tshark).
fn udp_tunnel(
    cx: &mut Cx<'_, '_>,
    ports: (u16, u16),
    data: &[u8],
    depth: u8,
) -> Result<Segment, SkipReason> {
    let is = |port| ports.0 == port || ports.1 == port;
    if is(UDP_VXLAN) {
        // RFC 7348: flags (I set), reserved, VNI, reserved; then Ethernet.
        match data.first() {
            Some(f) if f & 0x08 != 0 => {
                ethernet(cx, data.get(8..).ok_or(SkipReason::NotTcp)?, depth)
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
        ether_type(cx, proto, data.get(len..).ok_or(SkipReason::NotTcp)?, depth)
    } else if is(UDP_GTP_U) {
        gtp_u(cx, data, depth)
    } else if is(UDP_L2TP) {
        l2tp(cx, data, depth)
    } else {
        Err(SkipReason::NotTcp)
    }
}

/// L2TPv2 (RFC 2661) data messages: flags and version, then optional
/// length, tunnel and session ids, optional Ns/Nr and offset; then PPP.
fn l2tp(cx: &mut Cx<'_, '_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
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
    ppp(cx, data.get(at..).ok_or(not)?, depth)
}

/// GTP-U version 1 (3GPP TS 29.281): a G-PDU (type 255) carries an IP
/// packet after the 8-byte header, the optional sequence/N-PDU/next-type
/// word and any extension headers.
fn gtp_u(cx: &mut Cx<'_, '_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
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
    ip(cx, data.get(at..).ok_or(not)?, depth)
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

/// Juniper's capture header (LINKTYPE_JUNIPER_ETHER), as tcpdump's
/// print-juniper.c reads it in `juniper_parse_header`: the magic "MGC", a
/// flags byte, and when the extension flag (0x80) is set a 2-byte length
/// of TLV extensions; then the Ethernet frame, or, with the no-L2 flag
/// (0x02), 4 more bytes and the IP packet.
fn juniper(cx: &mut Cx<'_, '_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
    let link_header = SkipReason::LinkHeader;
    let flags = match data.get(..4) {
        Some([b'M', b'G', b'C', flags]) => *flags,
        _ => return Err(link_header),
    };
    let mut at = 4;
    if flags & 0x80 != 0 {
        at += 2 + usize::from(be16(data, 4).ok_or(link_header)?);
    }
    if flags & 0x02 != 0 {
        ip(cx, data.get(at + 4..).ok_or(link_header)?, depth)
    } else {
        ethernet(cx, data.get(at..).ok_or(link_header)?, depth)
    }
}

/// Extension headers walked to find an IPv6 Fragment header.
const MAX_IPV6_EXTENSIONS: usize = 16;

/// One fragment as its own bytes say: where it goes and what it holds.
struct FragmentView<'a> {
    key: Key,
    offset: u32,
    more: bool,
    /// The unfragmentable part: IPv4 header, or IPv6 header and the
    /// extension headers before the Fragment header.
    head: &'a [u8],
    /// IPv6: where in `head` the byte naming the Fragment header is, and
    /// the next header the Fragment header names.
    next_header: Option<(usize, u8)>,
    /// The data as captured, at most `declared` bytes.
    data: &'a [u8],
    /// The data's length as the IP header declares it.
    declared: usize,
}

impl FragmentView<'_> {
    /// This fragment alone as an unfragmented packet: the lengths of the
    /// header say `declared` bytes, the data is what was captured.
    fn alone(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.head);
        out.extend_from_slice(self.data);
        if let Some((at, next)) = self.next_header {
            out[at] = next;
            let len = (self.head.len() - 40 + self.declared).min(65535) as u16;
            out[4..6].copy_from_slice(&len.to_be_bytes());
        } else {
            out[6] &= 0x40;
            out[7] = 0;
        }
    }
}

/// Reads a fragment's IPv4 or IPv6 header (the whole IP packet as far as
/// captured in `raw`); None when the headers do not hold together.
fn fragment_view(raw: &[u8], layer: u8) -> Option<FragmentView<'_>> {
    match raw.first()? >> 4 {
        4 => {
            let ihl = usize::from(raw[0] & 0x0f) * 4;
            if ihl < 20 || raw.len() < ihl {
                return None;
            }
            let declared = usize::from(be16(raw, 2)?).checked_sub(ihl)?;
            let fo = be16(raw, 6)?;
            let end = raw.len().min(ihl + declared);
            Some(FragmentView {
                key: Key::V4 {
                    src: raw[12..16].try_into().ok()?,
                    dst: raw[16..20].try_into().ok()?,
                    id: be16(raw, 4)?,
                    proto: raw[9],
                    layer,
                },
                offset: u32::from(fo & 0x1fff) * 8,
                more: fo & 0x2000 != 0,
                head: &raw[..ihl],
                next_header: None,
                data: &raw[ihl..end],
                declared,
            })
        }
        6 => {
            if raw.len() < 40 {
                return None;
            }
            let plen = usize::from(be16(raw, 4)?);
            let (mut next, mut next_at, mut at) = (*raw.get(6)?, 6, 40);
            for _ in 0..MAX_IPV6_EXTENSIONS {
                let len = match next {
                    44 => break,
                    0 | 43 | 60 | 135 | 139 | 140 => (usize::from(*raw.get(at + 1)?) + 1) * 8,
                    51 => (usize::from(*raw.get(at + 1)?) + 2) * 4,
                    _ => return None,
                };
                next_at = at;
                next = *raw.get(at)?;
                at += len;
            }
            if next != 44 {
                return None;
            }
            let fh = raw.get(at..at + 8)?;
            let fo = u16::from_be_bytes([fh[2], fh[3]]);
            let declared = (40 + plen).checked_sub(at + 8)?;
            let end = raw.len().min(at + 8 + declared);
            Some(FragmentView {
                key: Key::V6 {
                    src: raw[8..24].try_into().ok()?,
                    dst: raw[24..40].try_into().ok()?,
                    id: u32::from_be_bytes([fh[4], fh[5], fh[6], fh[7]]),
                    layer,
                },
                offset: u32::from(fo & 0xfff8),
                more: fo & 0x0001 != 0,
                head: &raw[..at],
                next_header: Some((next_at, fh[0])),
                data: &raw[at + 8..end],
                declared,
            })
        }
        _ => None,
    }
}

/// An IP fragment. With its data captured whole, a [`Decoder`] queues it
/// for reassembly (and decodes the datagram in the frame that completes
/// it). An IPv4 first fragment whose data the snap length cut cannot be
/// reassembled; its TCP header is read on its own, which is what tshark
/// 4.0 does (packet-ip.c reassembles only fragments it has whole, and
/// dissects the payload of any other first fragment; packet-ipv6.c does
/// not, so neither does this). A whole first fragment whose datagram never
/// completes gives no segment, as in tshark and in the kernel: the
/// receiving host never saw it. Other cut fragments are `ip_fragment`
/// skips.
fn fragment(cx: &mut Cx<'_, '_>, net: &LaxNetSlice<'_>, depth: u8) -> Result<Segment, SkipReason> {
    // The packet's bytes, from etherparse's slices of it.
    let mut raw = match cx.frag.as_deref_mut() {
        Some(r) => r.buffer(),
        None => Vec::new(),
    };
    match net {
        LaxNetSlice::Ipv4(v4) => {
            raw.extend_from_slice(v4.header().slice());
            if let Some(auth) = v4.extensions().auth {
                raw.extend_from_slice(auth.slice());
            }
            raw.extend_from_slice(v4.payload().payload);
        }
        LaxNetSlice::Ipv6(v6) => {
            raw.extend_from_slice(v6.header().slice());
            raw.extend_from_slice(v6.extensions().slice());
            raw.extend_from_slice(v6.payload().payload);
        }
        LaxNetSlice::Arp(_) => return Err(SkipReason::NotIp),
    }
    let result = match fragment_view(&raw, depth) {
        Some(view) => fragment_of(cx, &view, depth),
        None => Err(SkipReason::IpHeader),
    };
    if let Some(r) = cx.frag.as_deref_mut() {
        r.recycle(raw);
    }
    result
}

fn fragment_of(
    cx: &mut Cx<'_, '_>,
    view: &FragmentView<'_>,
    depth: u8,
) -> Result<Segment, SkipReason> {
    if depth >= MAX_NESTING {
        return Err(SkipReason::NotTcp);
    }
    let whole = view.data.len() >= view.declared;
    if whole {
        let Some(r) = cx.frag.as_deref_mut() else {
            return Err(SkipReason::IpFragment);
        };
        let frag = Fragment {
            key: view.key,
            offset: view.offset,
            more: view.more,
            data: view.data,
            head: view.head,
            next_header: view.next_header,
        };
        return match r.insert(&frag, cx.record.frame, cx.record.ts.0) {
            Outcome::Held => {
                cx.held = true;
                Err(SkipReason::IpFragment)
            }
            Outcome::Dropped(reason) => Err(reason),
            Outcome::Complete {
                datagram,
                first_frame,
                fragments,
            } => {
                let result = ip(cx, &datagram, depth + 1);
                if let Some(r) = cx.frag.as_deref_mut() {
                    r.recycle(datagram);
                }
                result.map(|mut seg| {
                    if seg.fragmentation == Fragmentation::Whole {
                        seg.fragmentation = Fragmentation::Reassembled {
                            first_frame,
                            fragments,
                        };
                    }
                    seg
                })
            }
        };
    }
    // tshark 4.0 reads a cut first fragment alone for IPv4 only: its IPv6
    // dissector shows the data of a fragment it cannot reassemble as data.
    if view.offset != 0 || view.next_header.is_some() {
        return Err(SkipReason::IpFragment);
    }
    let mut one = match cx.frag.as_deref_mut() {
        Some(r) => r.buffer(),
        None => Vec::new(),
    };
    view.alone(&mut one);
    let result = ip(cx, &one, depth + 1);
    if let Some(r) = cx.frag.as_deref_mut() {
        r.recycle(one);
    }
    result.map(|mut seg| {
        if seg.fragmentation == Fragmentation::Whole {
            seg.fragmentation = Fragmentation::FirstFragmentOnly;
        }
        seg
    })
}

fn segment_from(
    cx: &mut Cx<'_, '_>,
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
                return ether_type(cx, p.ether_type.0, p.payload, depth);
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
        return match &sliced.net {
            Some(net) => fragment(cx, net, depth),
            None => Err(SkipReason::IpHeader),
        };
    }
    match payload.ip_number {
        IpNumber::TCP => {}
        IpNumber::IPV4 | IpNumber::IPV6 if depth < MAX_NESTING => {
            // IP-in-IP / 6in4 / 4in6: the inner packet is the connection.
            return ip(cx, payload.payload, depth + 1).map_err(|e| match e {
                SkipReason::NotIp | SkipReason::LinkHeader => SkipReason::IpHeader,
                e => e,
            });
        }
        IpNumber::GRE => return tunnelled(gre(cx, payload.payload, depth)),
        IpNumber::MPLS_IN_IP if depth < MAX_NESTING => {
            return tunnelled(mpls(cx, payload.payload, depth + 1));
        }
        IpNumber::UDP if depth < MAX_NESTING => {
            let Some(TransportSlice::Udp(udp)) = &sliced.transport else {
                return Err(SkipReason::NotTcp);
            };
            let ports = (udp.source_port(), udp.destination_port());
            return tunnelled(udp_tunnel(cx, ports, udp.payload(), depth + 1));
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
        frame: cx.record.frame,
        ts: cx.record.ts,
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
    })
}

#[cfg(test)]
mod tests;
