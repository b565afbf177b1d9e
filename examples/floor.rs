//! The floor for our crates: read a pcap/pcapng file with pcap-parser,
//! slice each frame with etherparse, count packets per 4-tuple in a
//! HashMap. No analysis at all; benches/run.sh measures timewait against it.
//!
//! ```text
//! cargo run --release --example floor -- FILE
//! ```

use etherparse::{LaxNetSlice, LaxSlicedPacket, TransportSlice};
use pcap_parser::{PcapBlockOwned, PcapError, create_reader};
use std::collections::HashMap;
use std::net::IpAddr;

type Tuple = (IpAddr, u16, IpAddr, u16);

fn count(data: &[u8], tuples: &mut HashMap<Tuple, u64>) {
    let Ok(p) = LaxSlicedPacket::from_ethernet(data) else {
        return;
    };
    let (Some(net), Some(TransportSlice::Tcp(tcp))) = (&p.net, &p.transport) else {
        return;
    };
    let (src, dst): (IpAddr, IpAddr) = match net {
        LaxNetSlice::Ipv4(ip) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        LaxNetSlice::Ipv6(ip) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        LaxNetSlice::Arp(_) => return,
    };
    let (a, b) = ((src, tcp.source_port()), (dst, tcp.destination_port()));
    let key = if a <= b {
        (a.0, a.1, b.0, b.1)
    } else {
        (b.0, b.1, a.0, a.1)
    };
    *tuples.entry(key).or_default() += 1;
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: floor FILE")?;
    let file = std::fs::File::open(&path)?;
    let mut reader = create_reader(1 << 20, file)?;
    let mut tuples: HashMap<Tuple, u64> = HashMap::new();
    let mut packets = 0u64;
    loop {
        let consumed = match reader.next() {
            Ok((len, block)) => {
                let data = match &block {
                    PcapBlockOwned::Legacy(b) => Some(b.data),
                    PcapBlockOwned::NG(pcap_parser::Block::EnhancedPacket(b)) => Some(b.data),
                    _ => None,
                };
                if let Some(data) = data {
                    packets += 1;
                    count(data, &mut tuples);
                }
                Some(len)
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => None,
            Err(e) => return Err(format!("{e:?}").into()),
        };
        match consumed {
            Some(len) => reader.consume(len),
            None => reader.refill().map_err(|e| format!("{e:?}"))?,
        }
    }
    println!("{packets} packets, {} 4-tuples", tuples.len());
    Ok(())
}
