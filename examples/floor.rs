//! The floor for our crates: the tightest honest loop over the same crates
//! timewait reads with. pcap-parser's reader (`LegacyPcapReader` for pcap,
//! its generic reader for pcapng), etherparse's `SlicedPacket` of every
//! frame, and one counter per 4-tuple in an FxHash map keyed by a compact
//! fixed-size key (12 bytes for IPv4, 36 for IPv6; the two directions of a
//! connection share the key). No analysis at all; benches/run.sh measures
//! timewait against it.
//!
//! ```text
//! cargo run --release --example floor -- FILE
//! ```
//!
//! Prints `PACKETS packets, TUPLES 4-tuples`.

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError, create_reader};
use rustc_hash::FxHashMap;
use std::io::Read;

/// Per-4-tuple counters, one map per address family so that each key is
/// as small as its addresses.
#[derive(Default)]
struct Tuples {
    v4: FxHashMap<[u8; 12], u32>,
    v6: FxHashMap<[u8; 36], u32>,
}

impl Tuples {
    fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }
}

/// `[addr, port]` of both ends, lower end first, as one key.
fn key<const A: usize, const K: usize>(src: [u8; A], sp: u16, dst: [u8; A], dp: u16) -> [u8; K] {
    let (a, ap, b, bp) = if (src, sp) <= (dst, dp) {
        (src, sp, dst, dp)
    } else {
        (dst, dp, src, sp)
    };
    let mut k = [0u8; K];
    k[..A].copy_from_slice(&a);
    k[A..A + 2].copy_from_slice(&ap.to_be_bytes());
    k[A + 2..2 * A + 2].copy_from_slice(&b);
    k[2 * A + 2..].copy_from_slice(&bp.to_be_bytes());
    k
}

fn count(data: &[u8], tuples: &mut Tuples) {
    let Ok(p) = SlicedPacket::from_ethernet(data) else {
        return;
    };
    let (Some(net), Some(TransportSlice::Tcp(tcp))) = (&p.net, &p.transport) else {
        return;
    };
    let (sp, dp) = (tcp.source_port(), tcp.destination_port());
    match net {
        NetSlice::Ipv4(ip) => {
            let h = ip.header();
            *tuples
                .v4
                .entry(key(h.source(), sp, h.destination(), dp))
                .or_default() += 1;
        }
        NetSlice::Ipv6(ip) => {
            let h = ip.header();
            *tuples
                .v6
                .entry(key(h.source(), sp, h.destination(), dp))
                .or_default() += 1;
        }
        NetSlice::Arp(_) => {}
    }
}

/// Runs `on_frame` over every packet of a reader; returns packets seen.
fn drive<R: PcapReaderIterator + ?Sized>(
    reader: &mut R,
    mut on_frame: impl FnMut(&[u8]),
) -> Result<u64, Box<dyn std::error::Error>> {
    let mut packets = 0u64;
    loop {
        match reader.next() {
            Ok((len, block)) => {
                let data = match &block {
                    PcapBlockOwned::Legacy(b) => Some(b.data),
                    PcapBlockOwned::NG(pcap_parser::Block::EnhancedPacket(b)) => Some(b.data),
                    _ => None,
                };
                if let Some(data) = data {
                    packets += 1;
                    on_frame(data);
                }
                reader.consume(len);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => reader.refill().map_err(|e| format!("{e:?}"))?,
            Err(e) => return Err(format!("{e:?}").into()),
        }
    }
    Ok(packets)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: floor FILE")?;
    let mut magic = [0u8; 4];
    std::fs::File::open(&path)?.read_exact(&mut magic)?;
    let file = std::fs::File::open(&path)?;
    let mut tuples = Tuples::default();
    let on_frame = |data: &[u8]| count(data, &mut tuples);
    let legacy = matches!(
        u32::from_le_bytes(magic),
        0xa1b2_c3d4 | 0xa1b2_3c4d | 0xd4c3_b2a1 | 0x4d3c_b2a1
    );
    let packets = if legacy {
        drive(&mut LegacyPcapReader::new(1 << 20, file)?, on_frame)?
    } else {
        drive(&mut *create_reader(1 << 20, file)?, on_frame)?
    };
    println!("{packets} packets, {} 4-tuples", tuples.len());
    Ok(())
}
