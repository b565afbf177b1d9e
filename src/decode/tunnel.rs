//! Encapsulations between the link layer and the connection's IP packet:
//! the EtherTypes etherparse 0.21 does not open (MPLS, PPPoE, Transparent
//! Ethernet Bridging, E-Tag, 802.3 lengths leading to LLC) and the tunnels
//! tshark dissects by default (GRE with ERSPAN, WCCP and PPTP; VXLAN,
//! Geneve, GTP-U and L2TP over UDP). Each header is skipped by its length,
//! within [`MAX_NESTING`], and what it carries goes back to `link.rs` or
//! `ip.rs`.

use super::ip::{ip, segment_from};
use super::link::{ethernet, llc, ppp, ppp_proto};
use super::{Cx, MAX_NESTING, Segment, SkipReason, be16};
use etherparse::{EtherType, LaxSlicedPacket};

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

/// The EtherTypes opened here rather than by etherparse.
pub(super) fn is_own_ether_type(et: u16) -> bool {
    et <= ETH_MAX_LENGTH
        || matches!(
            et,
            ETH_MPLS_UNICAST | ETH_MPLS_MULTICAST | ETH_PPPOE_SESSION | ETH_TEB | ETH_E_TAG
        )
}

/// A payload announced by an EtherType (Linux SLL, VLAN, C-HDLC, GRE,
/// Geneve, SNAP, ...).
pub(super) fn ether_type(
    cx: &mut Cx<'_, '_>,
    et: u16,
    data: &[u8],
    depth: u8,
) -> Result<Segment, SkipReason> {
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

/// MPLS (RFC 3032): pop 4-byte labels up to the bottom of the stack, then
/// IPv4/IPv6 by version nibble, or an Ethernet pseudowire after its
/// control word (RFC 4448), as tshark guesses.
pub(super) fn mpls(cx: &mut Cx<'_, '_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
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

/// GRE (RFC 2784/2890), and the enhanced GRE of PPTP (RFC 2637).
pub(super) fn gre(cx: &mut Cx<'_, '_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
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
pub(super) fn udp_tunnel(
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
pub(super) fn tunnelled(result: Result<Segment, SkipReason>) -> Result<Segment, SkipReason> {
    result.map_err(|e| match e {
        SkipReason::NotIp | SkipReason::LinkHeader | SkipReason::UnsupportedLinkType => {
            SkipReason::NotTcp
        }
        e => e,
    })
}
