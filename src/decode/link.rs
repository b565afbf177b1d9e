//! Link layers: the capture's link type says what the frame starts with
//! (Ethernet, Linux cooked SLL/SLL2, raw IP, BSD null/loopback, PPP, Cisco
//! HDLC, PPI, NFLOG, IPoIB, 802.11 and radiotap, ARCnet, FDDI, Juniper),
//! and each arm of [`link_layer`] skips that header to the network layer.
//! 802.2 LLC and PPP are here too: link types carry them, and tunnels
//! (PPPoE, L2TP, GRE) lead back to them.

use super::fast::fast_ethernet_ipv4_tcp;
use super::ip::{ip, segment_from};
use super::tunnel::{ether_type, mpls};
use super::{Cx, MAX_NESTING, Segment, SkipReason, be16};
use crate::capture::LinkType;
use etherparse::LaxSlicedPacket;

pub(super) fn link_layer(
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

pub(super) fn ethernet(cx: &mut Cx<'_, '_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
    if let Some(seg) = fast_ethernet_ipv4_tcp(cx.record, data) {
        return Ok(seg);
    }
    ethernet_sliced(cx, data, depth)
}

/// Ethernet through etherparse's slicing: every case.
pub(super) fn ethernet_sliced(
    cx: &mut Cx<'_, '_>,
    data: &[u8],
    depth: u8,
) -> Result<Segment, SkipReason> {
    let sliced = LaxSlicedPacket::from_ethernet(data).map_err(|_| SkipReason::LinkHeader)?;
    segment_from(cx, &sliced, depth)
}

/// IEEE 802.2 LLC: SNAP (`aa aa 03`, OUI, EtherType) or the IP SAP (6).
pub(super) fn llc(cx: &mut Cx<'_, '_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
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

/// A PPP frame (link types 9 and 50): optional `ff 03` address and
/// control, then a 1- or 2-byte protocol (RFC 1661 §6.5 compression).
pub(super) fn ppp(cx: &mut Cx<'_, '_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
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

pub(super) fn ppp_proto(
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
