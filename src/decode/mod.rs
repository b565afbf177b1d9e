//! From captured frames to TCP segments: link layer, IPv4/IPv6 and the TCP
//! header with its timestamp option.
//!
//! Only this module uses etherparse, in its lax mode: a frame cut by the snap
//! length (`tcpdump -s 96`) still yields a full segment as long as the TCP
//! header is complete, with the payload length taken from the IP header.
//! Frames that carry no usable TCP header are not errors but counted skips
//! ([`SkipReason`]), so the report can say what was left out and why.
//!
//! IP fragments are put together again by a [`Decoder`], which holds the
//! fragment queues of one capture ([`frag`] has the kernel's rules); the
//! free function [`decode`] looks at one frame alone and reassembles
//! nothing.
//!
//! This file holds what the rest of the crate sees ([`Segment`] and its
//! parts, [`SkipReason`], [`decode`], [`Decoder`]) and what every layer
//! shares (`Cx`, `be16`, `MAX_NESTING`). Each layer has its own file, and
//! the layers call one another as the frame's headers say:
//! - `link.rs`: the capture's link type (Ethernet, Linux SLL/SLL2, raw IP,
//!   null/loopback, PPP, Cisco HDLC, PPI, NFLOG, IPoIB, 802.11, ARCnet,
//!   FDDI, Juniper) and 802.2 LLC;
//! - `fast.rs`: the hand-written path for plain Ethernet/IPv4/TCP;
//! - `tunnel.rs`: EtherTypes etherparse does not open (MPLS, PPPoE, TEB,
//!   E-Tag) and tunnels (GRE, VXLAN, Geneve, GTP-U, L2TP);
//! - `ip.rs`: IPv4/IPv6, and where the packet leads;
//! - `ip_fragment.rs`: a fragment's own headers, handed to [`frag`];
//! - `tcp.rs`: the TCP header made into a [`Segment`].

use crate::capture::Record;
use crate::flow::{Endpoint, FlowKey};
use crate::seq::{SeqNum, TsVal};
use crate::time::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

mod fast;
pub mod frag;
mod ip;
mod ip_fragment;
mod link;
mod tcp;
mod tunnel;

use frag::Reassembler;
use link::link_layer;

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
    /// Wireshark's frame number as decoded (file 0's id); the pipeline
    /// names the file in it for later files ([`crate::frame`]).
    pub frame: crate::frame::FrameId,
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
        // The common frame first, as `link::ethernet` takes it: the segment
        // then goes straight to the caller, not through each layer's
        // `Result` (a copy of 136 bytes per layer was a tenth of the
        // reading thread).
        if record.link == crate::capture::LinkType::ETHERNET
            && let Some(seg) = fast::fast_ethernet_ipv4_tcp(record, record.data)
        {
            return Some(seg);
        }
        self.decode_general(record)
    }

    /// [`Decoder::decode`] into `slot`, returning the segment's flow key
    /// (`FlowKey::new(seg.src, seg.dst)`); `slot` is left alone when the
    /// frame completes no segment. The reading thread's way: the common
    /// frame is written straight into its batch, and its key made from the
    /// header's words.
    #[inline]
    pub fn decode_into(&mut self, record: &Record<'_>, slot: &mut Segment) -> Option<FlowKey> {
        if record.link == crate::capture::LinkType::ETHERNET
            && let Some(key) = fast::fast_into(record, record.data, slot)
        {
            return Some(key);
        }
        let seg = self.decode_general(record)?;
        *slot = seg;
        Some(FlowKey::new(seg.src, seg.dst))
    }

    /// Every frame the fast path does not take.
    fn decode_general(&mut self, record: &Record<'_>) -> Option<Segment> {
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

#[cfg(test)]
mod tests;
