//! A deterministic generator of realistic server-side TCP captures, for
//! benchmarks and scale tests (benches/run.sh). Same seed and size, same
//! bytes, every run.
//!
//! ```text
//! cargo run --release --example gen_capture -- OUT.pcap --size 100M [--seed 1] [--rate 500]
//! cargo run --release --example gen_capture -- OUT.pcap --conns 300000 --rate 15000
//! ```
//!
//! `--conns N` stops after N connections instead of at a size: at a rate of
//! 15,000/s, 300,000 connections all sit inside one 60 s TIME_WAIT window
//! (the hot-proxy case of benches/run.sh).
//!
//! The capture point is a server (10.0.0.1, ports 80 and 443) that
//! thousands of clients talk to. Connections interleave and end in every
//! way the detectors care about:
//! - short request/response connections closed by the client (most), or by
//!   the server after a keep-alive idle timeout (clustered around 5 s);
//! - RST closes (client abort), simultaneous closes;
//! - unanswered SYNs retransmitted at 1 s, 2 s, 4 s, some answered late, and
//!   SYNs refused by RST (port 8080);
//! - a NAT address (10.2.0.1) hiding four hosts whose TCP timestamp clocks
//!   differ, so its TSvals go backwards;
//! - FIN retransmissions answered by RST (the client's TIME_WAIT socket is
//!   gone and its last ACK was lost);
//! - a proxy (10.3.0.1) cycling through the whole ephemeral range, so its
//!   port counter wraps, and one (10.3.0.2) confined to 500 ports, so it
//!   reuses 4-tuples while they are still in TIME_WAIT;
//! - some bulk downloads (hundreds of full-size segments).
//!
//! `--syn-flood PACKETS` writes only SYNs instead: PACKETS of them from 256
//! addresses (10.9.0.0/24) and random ports to 10.0.0.1:80, at `--rate`
//! SYNs per second (default 2,000), none answered.
//!
//! Output is pcap (microsecond, Ethernet), written with plain bytes; frames
//! are built with etherparse's `PacketBuilder`.

use etherparse::{PacketBuilder, TcpOptionElement};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{BufWriter, Write};

/// splitmix64: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// One packet to write, ordered by time then by creation order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Pkt {
    ts_us: u64,
    order: u64,
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    len: u16,
    /// (TSval, TSecr), or none.
    ts: Option<(u32, u32)>,
}

const SERVER: [u8; 4] = [10, 0, 0, 1];
const NORMAL_HOSTS: u32 = 2000;
const NAT_HOST: [u8; 4] = [10, 2, 0, 1];
const PROXY_WRAP: [u8; 4] = [10, 3, 0, 1];
const PROXY_REUSE: [u8; 4] = [10, 3, 0, 2];

struct Host {
    ip: [u8; 4],
    next_port: u16,
    port_lo: u16,
    port_hi: u16,
    /// Offsets of this address's timestamp clocks (several behind a NAT).
    clocks: Vec<u32>,
    rtt_us: u64,
}

impl Host {
    fn port(&mut self) -> u16 {
        let p = self.next_port;
        self.next_port = if p >= self.port_hi {
            self.port_lo
        } else {
            p + 1
        };
        p
    }
}

/// Builds one connection's packets.
struct Conn<'a> {
    out: &'a mut Vec<Pkt>,
    c: [u8; 4],
    s: [u8; 4],
    cport: u16,
    sport: u16,
    /// Next sequence numbers of client and server.
    cseq: u32,
    sseq: u32,
    cclock: u32,
    sclock: u32,
    t0: u64,
}

impl Conn<'_> {
    fn tsval(clock: u32, t: u64, t0: u64) -> u32 {
        clock.wrapping_add(((t - t0) / 1000) as u32)
    }
    fn client(&mut self, t: u64, flags: u8, len: u16) {
        let ts = Some((Self::tsval(self.cclock, t, self.t0), self.sclock));
        let ack = if flags & ACK != 0 { self.sseq } else { 0 };
        self.out.push(Pkt {
            ts_us: t,
            order: 0,
            src: self.c,
            dst: self.s,
            sport: self.cport,
            dport: self.sport,
            seq: self.cseq,
            ack,
            flags,
            len,
            ts,
        });
        self.cseq = self
            .cseq
            .wrapping_add(u32::from(len) + u32::from(flags & (SYN | FIN) != 0));
    }
    fn server(&mut self, t: u64, flags: u8, len: u16) {
        let ts = Some((Self::tsval(self.sclock, t, self.t0), self.cclock));
        let ack = if flags & ACK != 0 { self.cseq } else { 0 };
        self.out.push(Pkt {
            ts_us: t,
            order: 0,
            src: self.s,
            dst: self.c,
            sport: self.sport,
            dport: self.cport,
            seq: self.sseq,
            ack,
            flags,
            len,
            ts,
        });
        self.sseq = self
            .sseq
            .wrapping_add(u32::from(len) + u32::from(flags & (SYN | FIN) != 0));
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Ending {
    ClientFin,
    ServerFin,
    ClientRst,
    FinRetransmitRst,
    Simultaneous,
}

fn connection(rng: &mut Rng, host: &mut Host, t0: u64, out: &mut Vec<Pkt>) {
    let rtt = host.rtt_us + rng.below(host.rtt_us / 4 + 1);
    let sport = if rng.below(3) == 0 { 443 } else { 80 };
    let clock = host.clocks[rng.below(host.clocks.len() as u64) as usize];
    let mut c = Conn {
        out,
        c: host.ip,
        s: SERVER,
        cport: host.port(),
        sport,
        cseq: rng.next() as u32,
        sseq: rng.next() as u32,
        // The NAT'd hosts' clocks differ by far more than a capture lasts.
        cclock: clock.wrapping_add((t0 / 1000) as u32),
        sclock: 0x1000_0000u32.wrapping_add((t0 / 1000) as u32),
        t0,
    };
    let roll = rng.below(1000);
    // Handshake failures first.
    if roll < 20 {
        // Refused: nothing listens on 8080.
        c.sport = 8080;
        c.client(t0, SYN, 0);
        c.server(t0 + 40, RST | ACK, 0);
        return;
    }
    let mut t = t0;
    if roll < 50 {
        // Unanswered SYN, retransmitted at 1, 2, 4 s; a third get answered late.
        let late = roll < 30;
        let isn = c.cseq;
        for (i, gap) in [0u64, 1_000_000, 2_000_000, 4_000_000].iter().enumerate() {
            t += gap;
            c.cseq = isn;
            c.client(t, SYN, 0);
            if late && i == 2 {
                break;
            }
        }
        if !late {
            return;
        }
    } else {
        c.client(t, SYN, 0);
    }
    // Server side capture: the SYN-ACK leaves at once, the ACK comes an RTT later.
    t += 30;
    c.server(t, SYN | ACK, 0);
    t += rtt;
    c.client(t, ACK, 0);
    let bulk = rng.below(500) == 0;
    let requests = if rng.below(5) == 0 {
        rng.range(2, 4)
    } else {
        1
    };
    for _ in 0..requests {
        t += 100;
        c.client(t, PSH | ACK, rng.range(80, 400) as u16);
        t += rng.range(200, 3000);
        let mut body: u64 = if bulk {
            rng.range(50, 200) * 1448
        } else {
            rng.range(100, 1400)
        };
        let mut n = 0;
        while body > 0 {
            let seg = body.min(1448);
            body -= seg;
            c.server(t, if body == 0 { PSH | ACK } else { ACK }, seg as u16);
            n += 1;
            if n % 2 == 0 && body > 0 {
                c.client(t + rtt, ACK, 0);
            }
            t += 12;
        }
        t += rtt;
        c.client(t, ACK, 0);
    }
    let ending = match rng.below(1000) {
        0..=599 => Ending::ClientFin,
        600..=849 => Ending::ServerFin,
        850..=939 => Ending::ClientRst,
        940..=979 => Ending::FinRetransmitRst,
        _ => Ending::Simultaneous,
    };
    match ending {
        Ending::ClientFin => {
            t += rng.range(100, 20_000);
            c.client(t, FIN | ACK, 0);
            t += 40;
            c.server(t, FIN | ACK, 0);
            t += rtt;
            c.client(t, ACK, 0);
        }
        Ending::ServerFin => {
            // Keep-alive timeout: the idle time clusters around 5 s.
            t += 5_000_000 + rng.below(2000);
            c.server(t, FIN | ACK, 0);
            t += rtt;
            c.client(t, ACK, 0);
            t += rng.range(50, 500);
            c.client(t, FIN | ACK, 0);
            t += 30;
            c.server(t, ACK, 0);
        }
        Ending::ClientRst => {
            t += rng.range(100, 20_000);
            c.client(t, RST | ACK, 0);
        }
        Ending::FinRetransmitRst => {
            t += rng.range(100, 20_000);
            c.client(t, FIN | ACK, 0);
            t += 40;
            let fin_seq = c.sseq;
            c.server(t, FIN | ACK, 0);
            // The client's last ACK is lost; the server retransmits its FIN
            // and the client, without a TIME_WAIT socket, resets.
            t += 200_000 + rtt;
            c.sseq = fin_seq;
            c.server(t, FIN | ACK, 0);
            t += rtt;
            c.client(t, RST, 0);
        }
        Ending::Simultaneous => {
            t += rng.range(100, 20_000);
            let (cs, ss) = (c.cseq, c.sseq);
            c.client(t, FIN | ACK, 0);
            // The server's FIN leaves before the client's arrives: it does
            // not acknowledge it.
            c.cseq = cs;
            c.server(t + 20, FIN | ACK, 0);
            c.cseq = cs.wrapping_add(1);
            c.server(t + 50, ACK, 0);
            c.sseq = ss.wrapping_add(1);
            c.client(t + rtt, ACK, 0);
        }
    }
}

fn frame(p: &Pkt, payload: &[u8], buf: &mut Vec<u8>) {
    buf.clear();
    let mut b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
        .ipv4(p.src, p.dst, 64)
        .tcp(p.sport, p.dport, p.seq, 64240);
    if p.flags & SYN != 0 {
        b = b.syn();
    }
    if p.flags & FIN != 0 {
        b = b.fin();
    }
    if p.flags & RST != 0 {
        b = b.rst();
    }
    if p.flags & PSH != 0 {
        b = b.psh();
    }
    if p.flags & ACK != 0 {
        b = b.ack(p.ack);
    }
    if let Some((tsval, tsecr)) = p.ts {
        let opts: &[TcpOptionElement] = if p.flags & SYN != 0 {
            &[
                TcpOptionElement::MaximumSegmentSize(1460),
                TcpOptionElement::Timestamp(tsval, tsecr),
            ]
        } else {
            &[TcpOptionElement::Timestamp(tsval, tsecr)]
        };
        b = b.options(opts).expect("options fit");
    }
    b.write(buf, &payload[..usize::from(p.len)])
        .expect("write to a Vec");
}

fn parse_size(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 1 << 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<f64>()
        .map(|n| (n * mult as f64) as u64)
        .map_err(|_| format!("`{s}` is not a size (e.g. 100M, 1G)"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out_path = None;
    let mut size = 100u64 << 20;
    let mut seed = 1u64;
    let mut rate = None;
    let mut flood: Option<u64> = None;
    let mut max_conns: Option<u64> = None;
    let mut i = 0;
    while i < args.len() {
        let value = || args.get(i + 1).cloned().ok_or("missing value");
        match args[i].as_str() {
            "--size" => size = parse_size(&value()?)?,
            "--seed" => seed = value()?.parse()?,
            "--rate" => rate = Some(value()?.parse::<f64>()?),
            "--syn-flood" => flood = Some(value()?.parse()?),
            "--conns" => max_conns = Some(value()?.parse()?),
            "-h" | "--help" => {
                println!(
                    "gen_capture OUT.pcap [--size 100M | --conns N] [--seed 1] [--rate CONNS_PER_S]\n\
                     gen_capture OUT.pcap --syn-flood PACKETS [--seed 1] [--rate SYNS_PER_S]\n\
                     Writes a deterministic server-side capture of about SIZE bytes, or a\n\
                     flood of unanswered SYNs from random ports."
                );
                return Ok(());
            }
            other if out_path.is_none() => {
                out_path = Some(other.to_string());
                i += 1;
                continue;
            }
            other => return Err(format!("unexpected argument `{other}`").into()),
        }
        i += 2;
    }
    let out_path = out_path.ok_or("usage: gen_capture OUT.pcap [--size 100M]")?;
    if let Some(n) = flood {
        return syn_flood(&out_path, n, rate.unwrap_or(2_000.0), seed);
    }
    let rate = rate.unwrap_or(500.0);
    let mut rng = Rng(seed);
    let mut hosts: Vec<Host> = (0..NORMAL_HOSTS)
        .map(|i| Host {
            ip: [10, 1, (i >> 8) as u8, (i & 0xff) as u8],
            next_port: 32768 + (i * 97 % 28000) as u16,
            port_lo: 32768,
            port_hi: 60999,
            clocks: vec![i.wrapping_mul(0x9e37_79b9)],
            rtt_us: 1_000 + u64::from(i % 40) * 1_000,
        })
        .collect();
    let nat = hosts.len();
    hosts.push(Host {
        ip: NAT_HOST,
        next_port: 40000,
        port_lo: 32768,
        port_hi: 60999,
        clocks: vec![0x0100_0000, 0x4000_0000, 0x8000_0000, 0xc000_0000],
        rtt_us: 20_000,
    });
    let wrap = hosts.len();
    hosts.push(Host {
        ip: PROXY_WRAP,
        next_port: 60000,
        port_lo: 32768,
        port_hi: 60999,
        clocks: vec![0x2000_0000],
        rtt_us: 500,
    });
    let reuse = hosts.len();
    hosts.push(Host {
        ip: PROXY_REUSE,
        next_port: 50000,
        port_lo: 50000,
        port_hi: 50499,
        clocks: vec![0x3000_0000],
        rtt_us: 500,
    });

    let mut w = create_pcap(&out_path)?;
    let mut written: u64 = 24;
    let mut packets: u64 = 0;
    let mut conns: u64 = 0;

    let payload = vec![0x61u8; 1500];
    let mut buf = Vec::with_capacity(2048);
    let mut queue: BinaryHeap<Reverse<Pkt>> = BinaryHeap::new();
    let mut fresh = Vec::new();
    let mut order = 0u64;
    let mut now: u64 = 1_700_000_000 * 1_000_000;
    let mean_gap_us = 1e6 / rate;
    let mut write_until = |limit: u64,
                           queue: &mut BinaryHeap<Reverse<Pkt>>,
                           w: &mut BufWriter<std::fs::File>,
                           written: &mut u64,
                           packets: &mut u64|
     -> std::io::Result<()> {
        while let Some(Reverse(p)) = queue.peek().copied() {
            if p.ts_us >= limit {
                break;
            }
            queue.pop();
            frame(&p, &payload, &mut buf);
            let secs = (p.ts_us / 1_000_000) as u32;
            let usecs = (p.ts_us % 1_000_000) as u32;
            w.write_all(&secs.to_le_bytes())?;
            w.write_all(&usecs.to_le_bytes())?;
            w.write_all(&(buf.len() as u32).to_le_bytes())?;
            w.write_all(&(buf.len() as u32).to_le_bytes())?;
            w.write_all(&buf)?;
            *written += 16 + buf.len() as u64;
            *packets += 1;
        }
        Ok(())
    };
    if max_conns.is_some() {
        size = u64::MAX;
    }
    while written < size && max_conns.is_none_or(|m| conns < m) {
        let gap = -(1.0 - rng.unit()).ln() * mean_gap_us;
        now += gap.max(1.0) as u64;
        write_until(now, &mut queue, &mut w, &mut written, &mut packets)?;
        let which = match rng.below(100) {
            0..=7 => nat,
            8..=27 => wrap,
            28..=32 => reuse,
            _ => rng.below(u64::from(NORMAL_HOSTS)) as usize,
        };
        fresh.clear();
        connection(&mut rng, &mut hosts[which], now, &mut fresh);
        for mut p in fresh.drain(..) {
            p.order = order;
            order += 1;
            queue.push(Reverse(p));
        }
        conns += 1;
    }
    write_until(u64::MAX, &mut queue, &mut w, &mut written, &mut packets)?;
    w.flush()?;
    eprintln!("{out_path}: {written} bytes, {packets} packets, {conns} connections (seed {seed})");
    Ok(())
}

/// A pcap file with its global header: microseconds, little endian,
/// Ethernet.
fn create_pcap(path: &str) -> std::io::Result<BufWriter<std::fs::File>> {
    let file = std::fs::File::create(path)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&0i32.to_le_bytes())?;
    w.write_all(&0u32.to_le_bytes())?;
    w.write_all(&65535u32.to_le_bytes())?;
    w.write_all(&1u32.to_le_bytes())?;
    Ok(w)
}

/// `--syn-flood`: `n` unanswered SYNs from random ports of 256 addresses.
fn syn_flood(path: &str, n: u64, rate: f64, seed: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = Rng(seed);
    let mut w = create_pcap(path)?;
    let mut buf = Vec::with_capacity(128);
    let mut now: u64 = 1_700_000_000 * 1_000_000;
    let mean_gap_us = 1e6 / rate;
    let mut written: u64 = 24;
    for _ in 0..n {
        let gap = -(1.0 - rng.unit()).ln() * mean_gap_us;
        now += gap.max(1.0) as u64;
        let r = rng.next();
        let p = Pkt {
            ts_us: now,
            order: 0,
            src: [10, 9, 0, (r & 0xff) as u8],
            dst: SERVER,
            sport: 1024 + ((r >> 8) % 64_512) as u16,
            dport: 80,
            seq: (r >> 32) as u32,
            ack: 0,
            flags: SYN,
            len: 0,
            ts: None,
        };
        frame(&p, &[], &mut buf);
        w.write_all(&((now / 1_000_000) as u32).to_le_bytes())?;
        w.write_all(&((now % 1_000_000) as u32).to_le_bytes())?;
        w.write_all(&(buf.len() as u32).to_le_bytes())?;
        w.write_all(&(buf.len() as u32).to_le_bytes())?;
        w.write_all(&buf)?;
        written += 16 + buf.len() as u64;
    }
    w.flush()?;
    eprintln!("{path}: {written} bytes, {n} SYNs (seed {seed})");
    Ok(())
}
