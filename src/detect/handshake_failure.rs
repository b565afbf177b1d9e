//! `handshake-failure`: SYNs that were refused or never answered, grouped
//! by the pattern the attempts share.
//!
//! RFC 9293 §3.5: a SYN to a port without a listener is answered with RST
//! (connect() fails with ECONNREFUSED; Linux tcp_v4_send_reset from
//! tcp_v4_rcv when no socket matches). A SYN that gets no answer is
//! retransmitted with exponential backoff (Linux: 1 s, 2 s, 4 s ...,
//! `net.ipv4.tcp_syn_retries`) until connect() gives up with ETIMEDOUT.
//!
//! No answer has several causes, and the packets can tell some apart, so
//! the finding says which pattern it saw and which causes that rules out:
//! - every SYN to one port dropped, whatever its timestamp, while another
//!   port of the same host answered: a firewall rule (or a stuck listener)
//!   for that port;
//! - some SYNs to a port dropped while the same port answered others: a
//!   full listen queue (tcp_conn_request drops when the SYN or accept
//!   queue is full: TcpExtListenOverflows, TcpExtListenDrops) or a lossy
//!   path;
//! - a host that answered nothing at all: down, unreachable or firewalled.
//!
//! Grouping: attempts are grouped by server ip:port (many clients hitting
//! one closed or filtered port is one finding), except that one client
//! trying many ports of one host is one finding of its own: a port scan or
//! a misconfigured health check (info: the failures are what a scan
//! expects, and one warning per port would bury the report).
//!
//! A SYN the capture ended too soon to judge (less than its retransmission
//! timeout before the capture's last packet, `handshake.cut_by_capture_end`,
//! and no SYN of the attempt a whole initial timeout old) is no failure: neither the answer nor
//! the next retransmission could be in the file yet. They are one info
//! finding per server port, "not answered before the capture ended", and
//! count for no pattern.
//!
//! Fires when: a connection's SYNs were refused (RST) or never answered.
//! Does not fire for SYNs `paws-syn-drop` proved rejected (a TIME_WAIT
//! socket's bare ACK, or per-host drops that follow the client's clock) or
//! answered by a challenge ACK; silent drops PAWS cannot be proven for stay
//! here, with the causes the pattern points at.

use super::{
    Claims, Context, Detector, EvidenceSet, Finding, FindingKind, Groups, KindSpec, Severity,
    ip_filter, plural, sorted, syn_filter,
};
use crate::flow::Endpoint;
use crate::track::{ConnectionRecord, HandshakeState};
use arrayvec::ArrayVec;
use rustc_hash::FxHashSet as HashSet;
use std::net::IpAddr;

pub const SPEC: KindSpec = KindSpec {
    name: "handshake-failure",
    explanation: "A SYN answered by RST means nothing listens on that port (connect() returns \
     ECONNREFUSED). A SYN with no answer is retransmitted with exponential backoff until \
     connect() times out (ETIMEDOUT): a firewall dropping it, a listener whose SYN or accept \
     queue is full (nstat TcpExtListenOverflows, TcpExtListenDrops), or a host that is down.",
    advice: "For refusals, check the service is listening on the address and port (`ss -ltn`). For \
     unanswered SYNs, check firewall rules on the path and on the server (`nft list ruleset`, \
     `iptables -S`), and the server's listen queue: `nstat -az TcpExtListenOverflows \
     TcpExtListenDrops`, `ss -ltn` (Recv-Q against the backlog), net.core.somaxconn and the \
     application's listen() backlog.",
    doc: include_str!("../../docs/findings/handshake-failure.md"),
};

/// One client trying at least this many ports of one host without success
/// is a scan (or a health check aimed at the wrong ports), not a service
/// failing on each port.
const SCAN_MIN_PORTS: usize = 10;

/// Client/host pairs followed for the scan pattern; past this (a SYN flood
/// from spoofed sources) new pairs are only grouped by server port.
const MAX_PAIRS: usize = 100_000;

/// Lone SYNs never retried to one port: from this many on they are a
/// pattern (clients with a connect timeout under a second, failing),
/// worth a warning.
const LONE_SYNS_FOR_A_PATTERN: u64 = 3;

/// Linux's initial SYN retransmission timeout (TCP_TIMEOUT_INIT).
const INITIAL_RTO_S: f64 = 1.0;

/// Clients counted per server port; more are "many".
const MAX_CLIENTS: usize = 16;

/// Failed attempts toward one server ip:port.
#[derive(Default)]
struct PortGroup {
    evidence: EvidenceSet,
    refused: u64,
    unanswered: u64,
    /// Unanswered attempts whose only answer was a segment the client's
    /// kernel ignores (an RST without an acceptable ACK in SYN_SENT, RFC
    /// 9293 §3.10.7.3, tcp_rcv_synsent_state_process): an answer, if an
    /// odd one, not a drop.
    ignored_answers: u64,
    /// Unanswered attempts of a single SYN, never retried although the
    /// capture went on past the initial retransmission timeout: no
    /// kernel's connect() that waited (it retries after 1 s,
    /// tcp_retransmit_timer), but a client that gave up at once, a probe,
    /// or a crafted packet.
    lone_syns: u64,
    /// Attempts per client, for the first [`MAX_CLIENTS`] clients.
    clients: ArrayVec<(IpAddr, u64), MAX_CLIENTS>,
    more_clients: bool,
}

/// What one client did toward one host: the ports that failed and the
/// ports that answered. The evidence of a scan is gathered at the end
/// from the port groups, so a pair costs a few dozen bytes.
#[derive(Default)]
struct Pair {
    /// Ports tried without success (attempts cut by the capture's end
    /// included: a scan's last probes often are).
    failed_ports: PortSet,
    open_ports: PortSet,
    refused: u64,
    unanswered: u64,
    cut: u64,
}

/// A set of ports: a few in line (the clients of a service use one or
/// two), a hash set past them (a scan's thousands). Every completed
/// handshake puts its port in its pair's set, and a hash set's table of
/// its own was one more cache miss for each (this detector's share of the
/// folding thread on the 1 GB benchmark: 12 % with hash sets, 10 % in
/// line). 24 bytes, where a hash set took 32 and its table.
#[derive(Default)]
struct PortSet {
    few: ArrayVec<u16, FEW_PORTS>,
    many: Option<Box<HashSet<u16>>>,
}

/// Ports a [`PortSet`] holds in line.
const FEW_PORTS: usize = 6;

impl PortSet {
    fn insert(&mut self, port: u16) {
        match &mut self.many {
            Some(many) => {
                many.insert(port);
            }
            None if self.few.contains(&port) => {}
            None => {
                if self.few.try_push(port).is_err() {
                    let mut many: HashSet<u16> = self.few.drain(..).collect();
                    many.insert(port);
                    self.many = Some(Box::new(many));
                }
            }
        }
    }

    fn contains(&self, port: u16) -> bool {
        match &self.many {
            Some(many) => many.contains(&port),
            None => self.few.contains(&port),
        }
    }

    fn len(&self) -> usize {
        self.many.as_ref().map_or(self.few.len(), |many| many.len())
    }

    /// How many of these ports `other` lacks.
    fn count_not_in(&self, other: &PortSet) -> usize {
        match &self.many {
            Some(many) => many.iter().filter(|&&p| !other.contains(p)).count(),
            None => self.few.iter().filter(|&&p| !other.contains(p)).count(),
        }
    }
}

/// Attempts to one server port cut by the capture's end, and whether one
/// client made them all (then a scan of that client may take them in).
#[derive(Default)]
struct CutGroup {
    evidence: EvidenceSet,
    client: Option<IpAddr>,
    several: bool,
}

/// Failed handshakes per server port, and per client and host for scans.
#[derive(Default)]
pub struct HandshakeFailure {
    ports: Groups<Endpoint, PortGroup>,
    /// Handshakes answered (SYN-ACK seen) per server ip:port.
    answered: Groups<Endpoint, u64>,
    pairs: Groups<(IpAddr, IpAddr), Pair>,
    /// Attempts cut by the capture's end, per server ip:port.
    cut: Groups<Endpoint, CutGroup>,
    /// What the capture saw of each server host: whether it holds any
    /// packet from it, and whether a connection to it completed anyway.
    hosts: Groups<IpAddr, HostSeen>,
}

/// A server host as the capture saw it. A host that sent nothing while a
/// connection to it completed (its client acknowledged a SYN-ACK the
/// capture lacks) sits on the side the capture did not record: its
/// silence says nothing about SYNs.
#[derive(Default, Clone, Copy)]
struct HostSeen {
    sent: u64,
    completed_unseen: bool,
}

impl HandshakeFailure {
    fn pair(&mut self, client: IpAddr, server: IpAddr) -> Option<&mut Pair> {
        let full = self.pairs.len() >= MAX_PAIRS;
        match self.pairs.entry((client, server)) {
            std::collections::hash_map::Entry::Occupied(e) => Some(e.into_mut()),
            std::collections::hash_map::Entry::Vacant(e) if !full => {
                Some(e.insert(Pair::default()))
            }
            std::collections::hash_map::Entry::Vacant(_) => None,
        }
    }
}

impl Detector for HandshakeFailure {
    fn kinds(&self) -> &'static [FindingKind] {
        &[FindingKind::HandshakeFailure]
    }

    fn on_connection_end(&mut self, c: &ConnectionRecord, claims: &mut Claims) {
        let h = &c.handshake;
        let seen = self.hosts.entry(c.server.ip()).or_default();
        seen.sent += c.server_to_client.packets;
        seen.completed_unseen |= h.synack_unseen;
        if h.synack_frame.is_some() {
            *self.answered.entry(c.server).or_default() += 1;
            // Open ports of a scan retire first (SYN, SYN-ACK, RST), before
            // the unanswered ones time out: count them for every pair.
            if !h.syn_frames.is_empty()
                && let Some(p) = self.pair(c.client.ip(), c.server.ip())
            {
                p.open_ports.insert(c.server.port());
            }
        }
        if !matches!(h.state, HandshakeState::Refused | HandshakeState::SynOnly)
            || claims.is_claimed(FindingKind::PawsSynDrop, c.id)
        {
            return;
        }
        // Only an attempt younger than the initial retransmission timeout
        // (TCP_TIMEOUT_INIT, 1 s) is unjudged: once its first SYN went a
        // whole timeout without an answer, the drop is seen, whatever the
        // capture's end cut off after it. Copies of one SYN a moment apart
        // are no such timeout.
        if h.cut_by_capture_end && c.duration_s < INITIAL_RTO_S {
            let g = self.cut.entry(c.server).or_default();
            match g.client {
                None => g.client = Some(c.client.ip()),
                Some(ip) if ip != c.client.ip() => g.several = true,
                Some(_) => {}
            }
            g.evidence.add(c.id, c.start, &h.syn_frames, || {
                format!(
                    "{} → {}: {} SYN(s), no answer yet when the capture ended",
                    c.client,
                    c.server,
                    h.syn_retransmits + 1
                )
            });
            if let Some(p) = self.pair(c.client.ip(), c.server.ip()) {
                p.failed_ports.insert(c.server.port());
                p.cut += 1;
            }
            return;
        }
        let refused = h.state == HandshakeState::Refused;
        let ignored_answer = !refused && c.ignored > 0 && c.server_to_client.packets > 0;
        let mut frames = h.syn_frames.to_vec();
        if refused {
            frames.extend(h.rst_frame);
        }
        if ignored_answer {
            frames.extend(c.ignored_frames.iter().copied());
        }
        let note = || {
            if ignored_answer {
                format!(
                    "{} → {}: {} SYN(s), answered only by a segment the client's kernel ignores \
                     (an RST without an acceptable ACK: a middlebox or a crafted reset)",
                    c.client,
                    c.server,
                    h.syn_retransmits + 1
                )
            } else if refused {
                format!(
                    "{} → {}: refused by RST after {} SYN(s)",
                    c.client,
                    c.server,
                    h.syn_retransmits + 1
                )
            } else {
                format!(
                    "{} → {}: {} SYN(s) over {:.1} s, never answered",
                    c.client,
                    c.server,
                    h.syn_retransmits + 1,
                    c.duration_s
                )
            }
        };
        let g = self.ports.entry(c.server).or_default();
        if refused {
            g.refused += 1;
        } else {
            g.unanswered += 1;
            g.ignored_answers += u64::from(ignored_answer);
            // Not cut by the capture's end (that returned above), so the
            // capture ran past the retry that never came.
            g.lone_syns += u64::from(!ignored_answer && h.syn_retransmits == 0);
        }
        if let Some((_, n)) = g.clients.iter_mut().find(|(ip, _)| *ip == c.client.ip()) {
            *n += 1;
        } else if g.clients.is_full() {
            g.more_clients = true;
        } else {
            g.clients.push((c.client.ip(), 1));
        }
        g.evidence.add(c.id, c.start, &frames, note);
        if let Some(p) = self.pair(c.client.ip(), c.server.ip()) {
            p.failed_ports.insert(c.server.port());
            if refused {
                p.refused += 1;
            } else {
                p.unanswered += 1;
            }
        }
    }

    fn finish(&mut self, _ctx: &Context<'_>) -> Vec<Finding> {
        // The scans, by client and host: each takes in the evidence of the
        // ports only its client tried.
        let mut scans: Groups<(IpAddr, IpAddr), (Pair, EvidenceSet)> =
            std::mem::take(&mut self.pairs)
                .into_iter()
                .filter(|(_, p)| p.failed_ports.len() >= SCAN_MIN_PORTS)
                .map(|(k, p)| (k, (p, EvidenceSet::new())))
                .collect();
        let answered = std::mem::take(&mut self.answered);
        // Ports of each host that answered at least one SYN.
        let mut answering_ports: Groups<IpAddr, Vec<u16>> = Groups::default();
        for (ep, _) in answered.iter() {
            answering_ports.entry(ep.ip()).or_default().push(ep.port());
        }
        let mut out = Vec::new();
        let mut port_findings = Vec::new();
        for (server, g) in sorted(std::mem::take(&mut self.ports)) {
            // Attempts from a scanner of this host are in the scan finding.
            let scanned: u64 = g
                .clients
                .iter()
                .filter(|(ip, _)| scans.contains_key(&(*ip, server.ip())))
                .map(|(_, n)| n)
                .sum();
            if !g.more_clients && scanned == g.refused + g.unanswered {
                // Only scanners tried this port (one, nearly always): its
                // evidence is the scan's.
                if let Some((_, evidence)) = scans.get_mut(&(g.clients[0].0, server.ip())) {
                    evidence.absorb(g.evidence);
                }
                continue;
            }
            let answered_here = answered.get(&server).copied().unwrap_or(0);
            let mut others: Vec<u16> = answering_ports
                .get(&server.ip())
                .map(|v| v.iter().copied().filter(|p| *p != server.port()).collect())
                .unwrap_or_default();
            others.sort_unstable();
            let seen = self.hosts.get(&server.ip()).copied().unwrap_or_default();
            port_findings.push(port_finding(server, g, answered_here, &others, seen));
        }
        let cut_groups = std::mem::take(&mut self.cut);
        let mut cut_findings = Vec::new();
        for (server, cut) in sorted(cut_groups) {
            let CutGroup {
                evidence,
                client,
                several,
            } = cut;
            if !several
                && let Some((_, scan)) = client.and_then(|c| scans.get_mut(&(c, server.ip())))
            {
                scan.absorb(evidence);
                continue;
            }
            cut_findings.push(cut_finding(server, evidence));
        }
        for ((client, server), (p, evidence)) in sorted(scans) {
            out.push(scan_finding(client, server, p, evidence));
        }
        out.extend(port_findings);
        out.extend(cut_findings);
        out
    }
}

/// Attempts to one port cut by the capture's end: no failure the capture
/// can tell.
fn cut_finding(server: Endpoint, evidence: EvidenceSet) -> Finding {
    let n = evidence.count();
    Finding::new(
        FindingKind::HandshakeFailure,
        Severity::Info,
        format!(
            "{server}: {} not answered before the capture ended; the capture stopped within the \
             SYN's retransmission timeout, so neither the answer nor the next try could be in \
             it: no failure, as far as the capture can tell",
            plural(n, "connection attempt")
        ),
        Some(server.to_string()),
        evidence,
    )
    .with_broad_filter(syn_filter(None, server))
}

/// One client, many ports of one host: the scan pattern.
fn scan_finding(client: IpAddr, server: IpAddr, p: Pair, evidence: EvidenceSet) -> Finding {
    let mut parts = Vec::new();
    if p.unanswered > 0 {
        parts.push(format!(
            "{} never answered",
            plural(p.unanswered, "attempt")
        ));
    }
    if p.refused > 0 {
        parts.push(format!("{} refused (RST)", plural(p.refused, "attempt")));
    }
    if p.cut > 0 {
        parts.push(format!(
            "{} not answered before the capture ended",
            plural(p.cut, "attempt")
        ));
    }
    parts.push(format!(
        "{} answered with SYN-ACK (open)",
        plural(p.open_ports.len() as u64, "port")
    ));
    let ports = p.failed_ports.len() + p.open_ports.count_not_in(&p.failed_ports);
    Finding::new(
        FindingKind::HandshakeFailure,
        Severity::Info,
        format!(
            "{client} tried {} of {server} with SYNs only: a port scan or a health check \
             aimed at the wrong ports; {}",
            plural(ports as u64, "port"),
            parts.join(", ")
        ),
        Some(format!("{client} → {server}")),
        evidence,
    )
    .with_broad_filter(format!(
        "{} && {} && tcp.flags.syn == 1 && tcp.flags.ack == 0",
        ip_filter("src", client),
        ip_filter("dst", server)
    ))
}

/// Failed attempts toward one server ip:port, with what the pattern says
/// about the cause.
fn port_finding(
    server: Endpoint,
    g: PortGroup,
    answered_here: u64,
    others: &[u16],
    seen: HostSeen,
) -> Finding {
    // The capture recorded one side only: nothing it lacks is evidence.
    let one_sided = g.refused == 0 && seen.sent == 0 && seen.completed_unseen;
    let odd = g.refused == 0 && g.unanswered > 0 && g.ignored_answers == g.unanswered;
    // One or two lone SYNs, never retried: too little to call a failure.
    let lone = g.refused == 0
        && g.unanswered > 0
        && g.lone_syns == g.unanswered
        && g.unanswered < LONE_SYNS_FOR_A_PATTERN;
    let mut parts = Vec::new();
    if g.refused > 0 {
        parts.push(format!("{} refused (RST)", g.refused));
    }
    if g.unanswered > 0 {
        parts.push(if one_sided {
            format!("{} with no answer in the capture", g.unanswered)
        } else if odd {
            format!(
                "{} answered only by segments the client ignores",
                g.unanswered
            )
        } else {
            format!("{} never answered", g.unanswered)
        });
    }
    let clients = match (g.clients.len(), g.more_clients) {
        (_, true) => format!("more than {MAX_CLIENTS} clients"),
        (1, false) => format!("client {}", g.clients[0].0),
        (n, false) => format!("{n} clients"),
    };
    let port = server.port();
    let cause = if one_sided {
        format!(
            "the capture holds no packet from {} although a connection to it completed (its \
             client acknowledged a SYN-ACK the capture lacks): a capture of one direction \
             cannot tell whether these SYNs were answered",
            server.ip()
        )
    } else if odd {
        "a client in SYN_SENT drops an RST without an acceptable ACK (RFC 9293 §3.10.7.3): \
         a middlebox or a crafted reset answered, nothing was dropped"
            .to_string()
    } else if lone {
        format!(
            "{} sent once and never retried although the capture went on: a kernel's connect() \
             retries after 1 s, so the client gave up at once (a connect timeout under 1 s), \
             probed, or the packet was crafted; too little to call a failure",
            if g.unanswered == 1 {
                "the SYN was"
            } else {
                "each SYN was"
            }
        )
    } else if g.unanswered == 0 {
        if answered_here == 0 {
            format!("nothing listens on port {port}")
        } else {
            format!(
                "port {port} also accepted {}: the listener came and went, or a firewall \
                 rejects some clients",
                plural(answered_here, "connection")
            )
        }
    } else if answered_here > 0 {
        format!(
            "the same port answered {} meanwhile: drops while the server answers others point \
             at a full listen queue (TcpExtListenOverflows, TcpExtListenDrops) or a lossy path, \
             not a firewall rule",
            plural(answered_here, "other attempt")
        )
    } else if !others.is_empty() {
        let listed: Vec<String> = others.iter().take(3).map(u16::to_string).collect();
        format!(
            "every SYN to port {port} was lost while port{} {} of the same host answered: a \
             firewall rule or filter for this port, or a listener that stopped accepting",
            if others.len() == 1 { "" } else { "s" },
            listed.join(", ")
        )
    } else {
        "the host answered no SYN at all in this capture: down, unreachable, or filtered"
            .to_string()
    };
    let severity = if one_sided || odd || lone {
        Severity::Info
    } else {
        Severity::Warning
    };
    Finding::new(
        FindingKind::HandshakeFailure,
        severity,
        format!(
            "{server}: {} from {clients}: {}; {cause}",
            plural(g.refused + g.unanswered, "connection attempt"),
            parts.join(", ")
        ),
        Some(server.to_string()),
        g.evidence,
    )
    .with_broad_filter(syn_filter(None, server))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port set holds what a hash set of the same ports holds, in line
    /// and past it, with repeats: its size, membership and the ports
    /// another set lacks; and it stays in line for a few ports.
    #[test]
    fn a_port_set_holds_what_a_hash_set_holds() {
        for n in [0u16, 1, 5, 6, 7, 40] {
            let (mut a, mut b) = (PortSet::default(), PortSet::default());
            let (mut ha, mut hb) = (HashSet::default(), HashSet::default());
            for i in 0..3 * n {
                let (pa, pb) = (i % n.max(1) * 7, i % (n / 2 + 1) * 7);
                a.insert(pa);
                ha.insert(pa);
                b.insert(pb);
                hb.insert(pb);
            }
            assert_eq!(a.len(), ha.len(), "n = {n}");
            assert_eq!(a.many.is_some(), ha.len() > FEW_PORTS, "n = {n}");
            for p in 0..300 {
                assert_eq!(a.contains(p), ha.contains(&p), "n = {n}, port {p}");
            }
            assert_eq!(a.count_not_in(&b), ha.difference(&hb).count(), "n = {n}");
            assert_eq!(b.count_not_in(&a), hb.difference(&ha).count(), "n = {n}");
        }
    }
}
