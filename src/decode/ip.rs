//! The network layer: an IPv4 or IPv6 packet sliced by etherparse, and
//! where it leads: a fragment to reassemble (`ip_fragment.rs`), a tunnel to
//! open (IP-in-IP, GRE, MPLS in IP, UDP tunnels: `tunnel.rs`), or the TCP
//! header that becomes the segment (`tcp.rs`). Which skip a frame counts
//! when it leads nowhere is decided here too.

use super::ip_fragment::fragment;
use super::tunnel::{ether_type, gre, is_own_ether_type, mpls, tunnelled, udp_tunnel};
use super::{Cx, MAX_NESTING, Segment, SkipReason, tcp};
use etherparse::{IpNumber, LaxNetSlice, LaxSlicedPacket, TransportSlice};
use std::net::IpAddr;

pub(super) fn ip(cx: &mut Cx<'_, '_>, data: &[u8], depth: u8) -> Result<Segment, SkipReason> {
    match data.first().map(|b| b >> 4) {
        Some(4) | Some(6) => {
            let sliced = LaxSlicedPacket::from_ip(data).map_err(|_| SkipReason::IpHeader)?;
            segment_from(cx, &sliced, depth)
        }
        Some(_) => Err(SkipReason::NotIp),
        None => Err(SkipReason::LinkHeader),
    }
}

pub(super) fn segment_from(
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
    let ip_payload_len = match declared_len {
        Some(d) if payload.incomplete => d,
        _ => payload.payload.len(),
    };
    Ok(tcp::segment(
        cx.record,
        src,
        dst,
        ip_id,
        tcp,
        ip_payload_len,
    ))
}
