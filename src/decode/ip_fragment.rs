//! IP fragments as frames carry them: reads a fragment's IPv4 or IPv6
//! header (`FragmentView`), hands a fragment captured whole to the
//! reassembler of `frag.rs` (which keeps the kernel's rules and knows
//! nothing of frames) and decodes the datagram it completes; an IPv4 first
//! fragment cut by the snap length is read alone, as tshark does.

use super::frag::{Fragment, Key, Outcome};
use super::ip::ip;
use super::{Cx, Fragmentation, MAX_NESTING, Segment, SkipReason, be16};
use etherparse::LaxNetSlice;

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
///
/// [`Decoder`]: super::Decoder
pub(super) fn fragment(
    cx: &mut Cx<'_, '_>,
    net: &LaxNetSlice<'_>,
    depth: u8,
) -> Result<Segment, SkipReason> {
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
