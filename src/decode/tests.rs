//! decode's unit tests: every link layer, tunnel and edge case, from
//! bytes the tests build.

use super::fast::{fast_ethernet_ipv4_tcp, fast_into};
use super::link::ethernet_sliced;
use super::tcp::options;
use super::*;
use crate::capture::LinkType;
use etherparse::{IpNumber, TcpOptionElement};

/// Every capture file under `dir`, recursively.
fn captures_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            captures_under(&path, out);
        } else if let Some(name) = path.file_name().and_then(|n| n.to_str())
            && [
                ".pcap",
                ".pcapng",
                ".cap",
                ".pcap.gz",
                ".pcapng.gz",
                ".pcap.zst",
            ]
            .iter()
            .any(|ext| name.ends_with(ext))
        {
            out.push(path);
        }
    }
}

/// The hand-written Ethernet/IPv4/TCP path gives exactly etherparse's
/// segment on every frame it takes, over every fixture, and over the
/// public corpus too when `TIMEWAIT_CORPUS` names its folder (about a
/// minute in a debug build).
#[test]
fn fast_path_equals_etherparse_on_every_capture() {
    let mut files = Vec::new();
    captures_under(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures"),
        &mut files,
    );
    let fixtures = files.len();
    if let Ok(corpus) = std::env::var("TIMEWAIT_CORPUS") {
        captures_under(std::path::Path::new(&corpus), &mut files);
    }
    assert!(fixtures >= 20, "fixtures found: {fixtures}");
    let (mut fast, mut ethernet) = (0u64, 0u64);
    for path in &files {
        let Ok(file) = std::fs::File::open(path) else {
            continue;
        };
        let Ok(input) = crate::capture::Input::new(file) else {
            continue;
        };
        // Damaged files deliver what precedes the damage; that is enough.
        let _ = crate::capture::read_capture(input, |rec| {
            if rec.link != LinkType::ETHERNET {
                return;
            }
            ethernet += 1;
            let Some(seg) = fast_ethernet_ipv4_tcp(rec, rec.data) else {
                return;
            };
            fast += 1;
            let mut cx = Cx {
                record: rec,
                frag: None,
                held: false,
            };
            assert_eq!(
                ethernet_sliced(&mut cx, rec.data, 0),
                Ok(seg),
                "{} frame {}",
                path.display(),
                rec.frame
            );
            // The reading thread's way: the same segment in its slot, and
            // the key the tracker would make of it.
            let mut slot = seg;
            slot.frame = crate::frame::FrameId(u64::MAX);
            slot.tsopt = None;
            let key = fast_into(rec, rec.data, &mut slot);
            assert_eq!(slot, seg, "{} frame {}", path.display(), rec.frame);
            assert_eq!(key, Some(crate::flow::FlowKey::new(seg.src, seg.dst)));
        });
    }
    eprintln!(
        "{} files, {ethernet} Ethernet frames, {fast} on the fast path",
        files.len()
    );
    assert!(
        fast > 1000,
        "the fast path took {fast} of {ethernet} frames"
    );
}

/// The kernel's `tcp_parse_options` (net/ipv4/tcp_input.c) for the two
/// options read here, transcribed as plainly as it is written, to test the
/// decoder's walk against.
fn tcp_parse_options(opts: &[u8], syn: bool) -> (Option<TcpTimestamps>, Option<u8>) {
    let (mut ts, mut ws) = (None, None);
    let mut ptr = 0usize;
    let mut length = opts.len() as isize;
    while length > 0 {
        let opcode = opts[ptr];
        ptr += 1;
        match opcode {
            // TCPOPT_EOL
            0 => return (ts, ws),
            // TCPOPT_NOP
            1 => {
                length -= 1;
                continue;
            }
            _ => {
                if length < 2 {
                    return (ts, ws);
                }
                let opsize = isize::from(opts[ptr]);
                ptr += 1;
                if opsize < 2 || opsize > length {
                    // "silly options", "don't parse partial options"
                    return (ts, ws);
                }
                let at =
                    |i: usize| u32::from_be_bytes([opts[i], opts[i + 1], opts[i + 2], opts[i + 3]]);
                match opcode {
                    3 if opsize == 3 && syn => ws = Some(opts[ptr]),
                    8 if opsize == 10 => {
                        ts = Some(TcpTimestamps {
                            tsval: TsVal(at(ptr)),
                            tsecr: TsVal(at(ptr + 4)),
                        })
                    }
                    _ => {}
                }
                ptr += (opsize - 2) as usize;
                length -= opsize;
            }
        }
    }
    (ts, ws)
}

/// Option bytes as they come, or nearly: known kinds with right, wrong and
/// cut lengths, unknown kinds, ends and no-ops, in any order.
fn option_bytes() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let option = prop_oneof![
        Just(vec![0u8]),
        Just(vec![1u8]),
        Just(vec![2u8, 4, 5, 0xb4]),
        (any::<u8>()).prop_map(|s| vec![3u8, 3, s]),
        Just(vec![4u8, 2]),
        (any::<[u8; 8]>()).prop_map(|t| [&[8u8, 10][..], &t].concat()),
        prop::sample::select(vec![10u8, 18, 26, 34, 9, 12]).prop_map(|len| [
            vec![5u8, len],
            vec![7; usize::from(len).saturating_sub(2)]
        ]
        .concat()),
        (any::<u8>(), any::<u8>()).prop_map(|(k, l)| vec![k, l]),
        // Kinds the walk does not know (MPTCP, Fast Open, ...), whole.
        (prop::sample::select(vec![6u8, 7, 9, 30, 34, 254]), 2u8..12).prop_map(|(k, l)| [
            vec![k, l],
            vec![1; usize::from(l) - 2]
        ]
        .concat()),
        (0u8..10, any::<u8>(), any::<[u8; 8]>())
            .prop_map(|(k, l, rest)| { [&[k, l][..], &rest].concat() }),
    ];
    (prop::collection::vec(option, 0..8), 0usize..48).prop_map(|(opts, cut)| {
        let mut bytes = opts.concat();
        // A header's options are at most 40 bytes; cut anywhere.
        bytes.truncate(cut.min(40));
        bytes
    })
}

proptest::proptest! {
    /// The decoder's walk of the options finds what the kernel's finds,
    /// whatever the bytes.
    #[test]
    fn options_walk_as_the_kernel_on_any_bytes(bytes in option_bytes(), syn in proptest::bool::ANY) {
        proptest::prop_assert_eq!(options(&bytes, syn), tcp_parse_options(&bytes, syn));
    }
}

#[test]
fn options_are_walked_as_the_kernel_walks_them() {
    let ts = [8u8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
    let found = (
        Some(TcpTimestamps {
            tsval: TsVal(1),
            tsecr: TsVal(2),
        }),
        Some(7),
    );
    for (bytes, syn, expected) in [
        // NOP, NOP, timestamps: the usual ACK.
        ([&[1u8, 1][..], &ts].concat(), false, (found.0, None)),
        // A SYN's MSS, SACK permitted, timestamps, NOP, window scale.
        (
            [&[2u8, 4, 5, 0xb4, 4, 2][..], &ts, &[1, 3, 3, 7]].concat(),
            true,
            found,
        ),
        // The window scale counts in a SYN only.
        ([&[3u8, 3, 7][..], &ts].concat(), false, (found.0, None)),
        // A kind the kernel does not read (34, TCP Fast Open; 30, MPTCP) is
        // skipped by its length: the timestamps behind it count.
        ([&[34u8, 2][..], &ts].concat(), false, (found.0, None)),
        ([&[30u8, 4, 0, 0][..], &ts].concat(), false, (found.0, None)),
        // So is a known kind of another length (not read).
        ([&[3u8, 4, 7, 0][..], &ts].concat(), true, (found.0, None)),
        // The end option stops the walk, as do a length below 2 and one
        // past the header.
        ([&[0u8, 1][..], &ts].concat(), false, (None, None)),
        ([&[34u8, 1][..], &ts].concat(), false, (None, None)),
        ([&[34u8, 40][..], &ts].concat(), false, (None, None)),
        // A timestamp option cut short.
        (ts[..9].to_vec(), false, (None, None)),
        // A SACK block, then timestamps.
        (
            [&[5u8, 10, 0, 0, 0, 1, 0, 0, 0, 2][..], &ts].concat(),
            false,
            (found.0, None),
        ),
        // Two timestamp options: the kernel keeps the last.
        (
            [&ts[..], &[8u8, 10, 0, 0, 0, 3, 0, 0, 0, 4]].concat(),
            false,
            (
                Some(TcpTimestamps {
                    tsval: TsVal(3),
                    tsecr: TsVal(4),
                }),
                None,
            ),
        ),
    ] {
        assert_eq!(options(&bytes, syn), expected, "{bytes:?}");
        assert_eq!(tcp_parse_options(&bytes, syn), expected, "{bytes:?}");
    }
}

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
    assert_eq!(seg.frame, crate::frame::FrameId(7));
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
    let builder = PacketBuilder::ethernet2([1; 6], [2; 6]).ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64);
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
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x30, 0x20, 0x00, 0x03, 0x80, 0x00, 0x05, 0x50, 0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x10, 0xe0, 0x00, 0x66, 0x4a, 0xb4, 0x51, 0x08, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00, 0x3c,
    0x00, 0x44, 0x40, 0x00, 0x40, 0x06, 0x49, 0x05, 0xc0, 0xa8, 0x38, 0x0a, 0xc0, 0xa8, 0x38, 0x18,
    0x85, 0x7a, 0x00, 0x16, 0x2f, 0x94, 0x10, 0xf6, 0x00, 0x00, 0x00, 0x00, 0xa0, 0xc2, 0x80, 0xd7,
    0xef, 0xae, 0x00, 0x00, 0x02, 0x04, 0xff, 0xc8, 0x04, 0x02, 0x08, 0x0a, 0x03, 0xb5, 0x21, 0x61,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x08,
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

/// `ip` cut into IPv4 fragments of `size` data bytes, id 77.
fn fragments_v4(ip: &[u8], size: usize) -> Vec<Vec<u8>> {
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let data = &ip[ihl..];
    let mut out = Vec::new();
    for (i, chunk) in data.chunks(size).enumerate() {
        let mut h = ip[..ihl].to_vec();
        let more = (i + 1) * size < data.len();
        h[2..4].copy_from_slice(&((ihl + chunk.len()) as u16).to_be_bytes());
        h[4..6].copy_from_slice(&77u16.to_be_bytes());
        let fo = ((i * size / 8) as u16) | if more { 0x2000 } else { 0 };
        h[6..8].copy_from_slice(&fo.to_be_bytes());
        h.extend_from_slice(chunk);
        out.push(h);
    }
    out
}

fn record_at(frame: u64, link: LinkType, data: &[u8]) -> Record<'_> {
    Record {
        frame,
        ts: Timestamp(frame as i64 * 1000),
        link,
        data,
        orig_len: data.len() as u32,
    }
}

#[test]
fn a_decoder_reassembles_tcp_in_a_fragmented_gre_packet() {
    let builder = PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(40000, 80, 1000, 64240)
        .ack(5);
    let mut inner = Vec::new();
    builder.write(&mut inner, &[0xab; 1400]).unwrap();
    let gre = cat(&[&[0x00, 0x00, 0x08, 0x00], &inner]);
    let mut outer = Vec::new();
    PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
        .write(&mut outer, IpNumber::GRE, &gre)
        .unwrap();
    let frags = fragments_v4(&outer, 800);
    assert_eq!(frags.len(), 2);
    let mut d = Decoder::new();
    // Last fragment first: held, no segment yet.
    assert_eq!(d.decode(&record_at(3, LinkType::RAW, &frags[1])), None);
    let seg = d
        .decode(&record_at(4, LinkType::RAW, &frags[0]))
        .expect("complete");
    assert_eq!(seg.frame, crate::frame::FrameId(4));
    assert_eq!(seg.payload_len, 1400);
    assert_eq!(seg.src.to_string(), "10.0.0.1:40000");
    assert_eq!(
        seg.fragmentation,
        Fragmentation::Reassembled {
            first_frame: 3,
            fragments: 2
        }
    );
    assert!(
        seg.fragmentation
            .display_filter(4)
            .contains("ip.reassembled_in == 4")
    );
    assert_eq!(d.fragment_memory(), 0);
    let skipped = d.finish();
    assert_eq!(skipped[&SkipReason::FragmentReassembled], 1);
    assert_eq!(skipped.len(), 1);
    // Alone, a frame reassembles nothing.
    assert_eq!(
        decode(&record_at(4, LinkType::RAW, &frags[0])),
        Err(SkipReason::IpFragment)
    );
}

#[test]
fn a_first_fragment_cut_by_the_snap_length_is_read_alone() {
    let builder = PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(40000, 80, 1000, 64240)
        .syn();
    let mut ip = Vec::new();
    builder.write(&mut ip, &[0u8; 1000]).unwrap();
    let frags = fragments_v4(&ip, 600);
    let cut = &frags[0][..60];
    let mut d = Decoder::new();
    let seg = d
        .decode(&record_at(1, LinkType::RAW, cut))
        .expect("header read");
    assert!(seg.flags.syn());
    assert_eq!(seg.fragmentation, Fragmentation::FirstFragmentOnly);
    // The fragment's own share: 600 bytes less the TCP header.
    assert_eq!(seg.payload_len, 580);
    // A cut later fragment cannot be used at all.
    let later = &frags[1][..30];
    assert_eq!(d.decode(&record_at(2, LinkType::RAW, later)), None);
    assert_eq!(d.finish()[&SkipReason::IpFragment], 1);
    // Without enough bytes for the TCP header, a cut header skip.
    assert_eq!(
        decode(&record_at(1, LinkType::RAW, &frags[0][..30])),
        Err(SkipReason::TcpHeader)
    );
}

#[test]
fn juniper_ethernet_decodes() {
    let (ip, want) = inner_v4();
    // "MGC", flags: extensions present; 4 bytes of TLVs; then Ethernet.
    let jun = cat(&[b"MGC\x80", &[0x00, 0x04], &[3, 1, 1, 0], &eth(0x0800, &ip)]);
    assert_eq!(decode(&record(LinkType::JUNIPER_ETHER, &jun)), Ok(want));
    // No L2 header: 4 bytes, then IP.
    let no_l2 = cat(&[b"MGC\x02", &[0; 4], &ip]);
    assert_eq!(decode(&record(LinkType::JUNIPER_ETHER, &no_l2)), Ok(want));
    assert_eq!(
        decode(&record(LinkType::JUNIPER_ETHER, b"XYZ\x00")),
        Err(SkipReason::LinkHeader)
    );
}

#[test]
fn skip_reasons_index_their_counters() {
    for (i, r) in SkipReason::ALL.iter().enumerate() {
        assert_eq!(*r as usize, i, "{r:?}");
    }
    // Every reason serializes under the name the JSON documents.
    for r in SkipReason::ALL {
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            format!("\"{}\"", r.as_str())
        );
    }
}

#[test]
fn flags_print_like_tcpdump() {
    assert_eq!(TcpFlags(TcpFlags::SYN | TcpFlags::ACK).to_string(), "S.");
    assert_eq!(TcpFlags(TcpFlags::FIN | TcpFlags::ACK).to_string(), "F.");
    assert_eq!(TcpFlags(TcpFlags::RST).to_string(), "R");
}
