//! `paws-syn-drop` and `timestamp-regression`: SYNs whose TCP timestamp
//! went backwards.
//!
//! RFC 7323 §5 (PAWS): a receiver drops a segment whose TSval is older, in
//! serial arithmetic, than the newest it recorded. Two Linux paths apply it
//! to a SYN: a TIME_WAIT socket on the same 4-tuple answers an older-TSval
//! SYN with a bare ACK (tcp_timewait_state_process, TcpExtPAWSTimewait),
//! after which the client's kernel sends RST and retries; and, before 4.12,
//! `tcp_tw_recycle` kept the newest TSval per peer IP and silently dropped
//! SYNs below it — fatal behind NAT, where several hosts with unrelated
//! clocks share one address. Linux also offsets each connection's
//! timestamps (see below), so TSvals from one IP going backwards is normal
//! and harmless when every SYN is answered.
//!
//! Fires (`paws-syn-drop`) when: a SYN's TSval is serially older than the
//! newest TSval seen from the same source IP toward the same server IP in
//! the last TIME_WAIT interval, and that SYN got no SYN-ACK: a bare ACK
//! instead (a socket on that 4-tuple rejected it: PAWS for certain), or
//! nothing (it was retransmitted or abandoned) while the same client's SYNs
//! whose TSval went forward were answered. Error when no SYN-ACK ever came,
//! warning when the connection was only delayed.
//!
//! The comparison with SYNs that went forward matters because a silent
//! drop has other causes (a full listen queue, a firewall), and a TSval
//! going backwards is common: Linux 4.10 and again kernels since 2026
//! (commit 165573e41f2f, backported to stable series) give each connection
//! its own timestamp offset, so about half of a client's SYNs look
//! "older". Only when SYNs that went forward are answered and the ones that
//! went back are not do the drops point at PAWS; otherwise they are left to
//! `handshake-failure`.
//! Fires (`timestamp-regression`, info) when such SYNs were answered at
//! once. Does not fire when: the TSval wrapped past 2^32 (serially newer),
//! the SYN carries no timestamp option, or SYNs are retransmitted without a
//! regression (`handshake-failure`).

use super::{
    Claims, Context, Detector, EvidenceSet, Finding, FindingKind, Severity, pair, plural,
    syn_filter,
};
use crate::analysis::Options;
use crate::decode::Segment;
use crate::flow::Endpoint;
use crate::seq::TsVal;
use crate::time::Timestamp;
use crate::track::{ConnId, Connection, ConnectionRecord, HandshakeState, Observation};
use arrayvec::ArrayVec;
use rustc_hash::FxHashMap as HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;

pub const PAWS_TEXTS: (&str, &str) = (
    "PAWS (RFC 7323) makes a receiver drop segments whose timestamp is older than the newest \
     it has seen from that peer. A TIME_WAIT socket on the same 4-tuple answers such a SYN with \
     a bare ACK instead of a SYN-ACK (Linux counts TcpExtPAWSTimewait); the client then sends \
     RST and retries after its SYN timeout. Kernels before 4.12 with net.ipv4.tcp_tw_recycle=1 \
     kept the newest timestamp per peer IP and dropped older SYNs silently: behind a NAT, \
     several hosts with unrelated timestamp clocks share one source address, so all but one \
     of them lose SYNs.",
    "Never enable net.ipv4.tcp_tw_recycle (removed in Linux 4.12). Make the server not hold \
     TIME_WAIT for these clients: let clients close first, or keep connections open (pool, \
     keep-alive). Behind NAT, make sure the NAT spreads clients over source ports instead of \
     reusing one port within 60 s. Confirm on the server with `nstat -az TcpExtPAWSTimewait \
     TcpExtPAWSActive TcpExtPAWSEstab`.",
);

pub const REGRESSION_TEXTS: (&str, &str) = (
    "TCP timestamps from one source IP went backwards across connections, yet every SYN was \
     answered at once. Linux 4.10, and kernels since 2026, give each connection its own \
     timestamp offset (4.11 to 6.x one per pair of addresses), and NAT puts several hosts' \
     clocks behind one address, so this is normal; it only turns into \
     dropped SYNs where per-host PAWS is applied (tcp_tw_recycle on old kernels) or where the \
     server holds a TIME_WAIT socket on the same 4-tuple.",
    "Nothing to change now. Keep net.ipv4.tcp_tw_recycle off on every server these clients \
     reach, and watch for `paws-syn-drop` findings.",
);

/// The newest TSval seen from one source IP toward one destination IP.
#[derive(Clone, Copy)]
struct Newest {
    tsval: TsVal,
    at: Timestamp,
    frame: u64,
    conn: ConnId,
}

/// A SYN whose TSval was older than the newest from its source.
#[derive(Clone, Copy)]
struct Regression {
    syn_frame: u64,
    syn_tsval: TsVal,
    at: Timestamp,
    newest: Newest,
}

/// Connections (with a SYN and timestamps) from one client to one server
/// whose SYN did *not* go back: how many, and how many of those SYNs got
/// no SYN-ACK either. The baseline a drop after a regression is held
/// against.
#[derive(Default, Clone, Copy)]
struct Forward {
    connections: u64,
    unanswered: u64,
}

impl Forward {
    /// SYNs that went forward were dropped too, often enough (at least two,
    /// and a tenth) that drops after a regression prove nothing.
    fn drops_too(self) -> bool {
        self.unanswered >= 2 && self.unanswered * 10 >= self.connections
    }
}

/// Timestamp clocks are told apart by their rate: Linux ticks at 1 kHz
/// (RFC 7323 allows 1 Hz to 1 kHz); a SYN continues a clock when its TSval
/// is ahead of the clock's last one by no more than this rate allows.
const MAX_TS_HZ: f64 = 1000.0;

/// Clocks remembered per pair of addresses: NAT behind one address rarely
/// hides more hosts that all connect to one server within a minute.
const MAX_CLOCKS: usize = 16;

/// The timestamp clocks behind one source IP toward one destination IP,
/// tracked from its first regression on (so a flood of one-SYN sources
/// costs nothing): NAT shows a few clocks, each continued by later SYNs;
/// a kernel with per-connection timestamp offsets starts a new clock with
/// every SYN.
struct Clocks {
    /// Last (time, TSval) of each clock, most recent first.
    last: ArrayVec<(Timestamp, TsVal), MAX_CLOCKS>,
    syns: u64,
    /// SYNs that continued none of the clocks kept.
    fresh: u64,
}

impl Clocks {
    /// From the newest TSval seen before the first regression.
    fn seeded(at: Timestamp, tsval: TsVal) -> Clocks {
        let mut last = ArrayVec::new();
        last.push((at, tsval));
        Clocks {
            last,
            syns: 1,
            fresh: 1,
        }
    }

    fn add(&mut self, at: Timestamp, tsval: TsVal) {
        self.syns += 1;
        let continues = self.last.iter().position(|(t0, v0)| {
            let ahead = f64::from(tsval.0.wrapping_sub(v0.0));
            ahead <= at.secs_since(*t0).max(0.0) * MAX_TS_HZ * 1.05 + 100.0
        });
        match continues {
            Some(i) => {
                self.last.remove(i);
            }
            None => {
                self.fresh += 1;
                if self.last.is_full() {
                    self.last.pop();
                }
            }
        }
        self.last.insert(0, (at, tsval));
    }

    /// Every SYN started a clock of its own, three or more times: the
    /// client's kernel offsets each connection's timestamps, and TSvals
    /// going backwards say nothing.
    fn per_connection(&self) -> bool {
        self.syns >= 3 && self.fresh == self.syns
    }
}

/// SYNs that got no SYN-ACK after a regression, per client and server.
#[derive(Default)]
struct Dropped {
    evidence: EvidenceSet,
    failed: u64,
    /// The longest connect() delay among those that connected.
    worst: f64,
}

pub struct PawsSynDrop {
    window_s: f64,
    newest: HashMap<(IpAddr, IpAddr), Newest>,
    /// Regressions on connections still open, decided when they end.
    regressions: HashMap<ConnId, Regression>,
    dropped: HashMap<(IpAddr, Endpoint), Dropped>,
    answered: HashMap<(IpAddr, Endpoint), EvidenceSet>,
    forward: HashMap<(IpAddr, Endpoint), Forward>,
    clocks: HashMap<(IpAddr, IpAddr), Clocks>,
}

impl PawsSynDrop {
    pub fn new(options: &Options) -> PawsSynDrop {
        PawsSynDrop {
            // Per-host PAWS remembered a peer for TCP_PAWS_MSL (60 s); a
            // TIME_WAIT socket lives as long as TIME_WAIT.
            window_s: options.time_wait_s.max(60.0),
            newest: HashMap::default(),
            regressions: HashMap::default(),
            dropped: HashMap::default(),
            answered: HashMap::default(),
            forward: HashMap::default(),
            clocks: HashMap::default(),
        }
    }
}

impl Detector for PawsSynDrop {
    fn kinds(&self) -> &'static [FindingKind] {
        &[FindingKind::PawsSynDrop, FindingKind::TimestampRegression]
    }

    fn wants_segments(&self) -> bool {
        true
    }

    fn on_segment(&mut self, seg: &Segment, obs: &Observation, _conn: &Connection) {
        let Some(ts) = seg.tsopt else { return };
        let this = Newest {
            tsval: ts.tsval,
            at: seg.ts,
            frame: seg.frame,
            conn: obs.conn,
        };
        // One hash lookup per segment: this runs on every segment with
        // timestamps, and a second lookup was a tenth of the tracking time.
        let key = (seg.src.ip(), seg.dst.ip());
        let newest = match self.newest.entry(key) {
            Entry::Vacant(e) => {
                e.insert(this);
                return;
            }
            Entry::Occupied(e) => e.into_mut(),
        };
        let fresh = seg.ts.secs_since(newest.at) <= self.window_s;
        let syn = seg.flags.syn() && !seg.flags.ack();
        let first_syn = syn && !obs.notes.syn_retransmit;
        if fresh && syn && newest.conn != obs.conn && ts.tsval.before(newest.tsval) {
            self.regressions.entry(obs.conn).or_insert(Regression {
                syn_frame: seg.frame,
                syn_tsval: ts.tsval,
                at: seg.ts,
                newest: *newest,
            });
            if first_syn {
                self.clocks
                    .entry(key)
                    .or_insert_with(|| Clocks::seeded(newest.at, newest.tsval))
                    .add(seg.ts, ts.tsval);
            }
        } else if first_syn && let Some(clocks) = self.clocks.get_mut(&key) {
            clocks.add(seg.ts, ts.tsval);
        }
        if !fresh || !ts.tsval.before(newest.tsval) {
            *newest = this;
        }
    }

    fn on_connection_end(&mut self, c: &ConnectionRecord, claims: &mut Claims) {
        let h = &c.handshake;
        let not_answered = h.challenge_ack_frame.is_some()
            || h.syn_retransmits > 0
            || matches!(
                h.state,
                HandshakeState::SynOnly | HandshakeState::Challenged
            );
        let key = (c.client.ip(), c.server);
        let Some(r) = self.regressions.remove(&c.id) else {
            if !h.syn_frames.is_empty() && c.client_to_server.timestamps {
                let f = self.forward.entry(key).or_default();
                f.connections += 1;
                f.unanswered += u64::from(not_answered);
            }
            return;
        };
        let id = c.id;
        let behind = r.newest.tsval.0.wrapping_sub(r.syn_tsval.0);
        // A silent drop is PAWS only if SYNs that went forward got through.
        if not_answered
            && h.challenge_ack_frame.is_none()
            && self.forward.get(&key).is_some_and(|f| f.drops_too())
        {
            return;
        }
        if !not_answered {
            if !matches!(
                h.state,
                HandshakeState::Complete | HandshakeState::SynAckOnly
            ) {
                return;
            }
            self.answered.entry(key).or_default().add(
                id,
                r.at,
                &[r.newest.frame, r.syn_frame],
                || {
                    format!(
                        "SYN TSval {} is {behind} behind TSval {} (connection {}), answered at once",
                        r.syn_tsval, r.newest.tsval, r.newest.conn
                    )
                },
            );
            return;
        }
        claims.claim(FindingKind::PawsSynDrop, id);
        let succeeded = h.synack_frame.is_some();
        let mut frames = vec![r.newest.frame];
        frames.extend(h.syn_frames.iter().copied());
        frames.extend(h.challenge_ack_frame);
        frames.extend(h.synack_frame);
        // The client's RST after the challenge ACK: it ended the attempt
        // (or, when no SYN-ACK ever came, the connection).
        frames.extend(h.attempt_rst_frame);
        if let (Some(rst), Some(crate::flow::Side::Client)) = (c.close.rst_frame, c.close.rst_by)
            && h.synack_frame.is_none()
        {
            frames.push(rst);
        }
        frames.sort_unstable();
        frames.dedup();
        let d = self.dropped.entry(key).or_default();
        if !succeeded {
            d.failed += 1;
        }
        if let Some(delay) = h.connect_s {
            d.worst = d.worst.max(delay);
        }
        d.evidence.add(id, r.at, &frames, || {
            let answer = if h.challenge_ack_frame.is_some() {
                "answered by a bare ACK (PAWS on a TIME_WAIT socket)"
            } else {
                "not answered (silently dropped)"
            };
            let outcome = match (succeeded, h.connect_s) {
                (true, Some(d)) => {
                    format!("connected after {d:.3} s and {} retries", h.syn_retransmits)
                }
                (true, None) => "connected".to_string(),
                (false, _) => format!(
                    "never connected ({} SYNs over {:.1} s)",
                    h.syn_retransmits + 1,
                    c.duration_s
                ),
            };
            format!(
                "SYN TSval {} is {behind} behind TSval {} seen {:.3} s earlier \
                 (connection {}); {answer}; {outcome}",
                r.syn_tsval,
                r.newest.tsval,
                r.at.secs_since(r.newest.at),
                r.newest.conn
            )
        });
    }

    fn finish(&mut self, _ctx: &Context<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut dropped: Vec<(String, (IpAddr, Endpoint), Dropped)> =
            std::mem::take(&mut self.dropped)
                .into_iter()
                .map(|(k, d)| (pair(k.0, k.1), k, d))
                .collect();
        dropped.sort_by(|a, b| a.0.cmp(&b.0));
        for (host, (client, server), d) in dropped {
            let failed = d.failed;
            let n = d.evidence.count();
            let worst = d.worst;
            let forward = self
                .forward
                .get(&(client, server))
                .copied()
                .unwrap_or_default();
            // Drops after a regression came before the baseline showed
            // drops of its own: what they prove is weaker, say so.
            let doubtful = forward.drops_too();
            let severity = if failed > 0 && !doubtful {
                Severity::Error
            } else {
                Severity::Warning
            };
            let mut summary = if failed > 0 {
                format!(
                    "{} from {host} with a TSval older than one seen just before got no SYN-ACK; \
                     {failed} never connected",
                    plural(n, "SYN")
                )
            } else {
                format!(
                    "{} from {host} with a TSval older than one seen just before got no SYN-ACK; \
                     all connected in the end, delayed up to {worst:.3} s",
                    plural(n, "SYN")
                )
            };
            if forward.connections > 0 {
                let answered = forward.connections - forward.unanswered;
                summary.push_str(&format!(
                    "; SYNs whose TSval went forward: {answered} of {} answered",
                    forward.connections
                ));
                if doubtful {
                    summary.push_str(" (so the drops may have another cause)");
                }
            }
            out.push(
                Finding::new(
                    FindingKind::PawsSynDrop,
                    severity,
                    summary,
                    Some(host),
                    d.evidence,
                )
                .with_broad_filter(syn_filter(Some(client), server)),
            );
        }
        let mut answered: Vec<(String, (IpAddr, Endpoint), EvidenceSet)> =
            std::mem::take(&mut self.answered)
                .into_iter()
                .map(|(k, e)| (pair(k.0, k.1), k, e))
                .collect();
        answered.sort_by(|a, b| a.0.cmp(&b.0));
        for (host, (client, server), evidence) in answered {
            let n = evidence.count();
            let clocks = self.clocks.get(&(client, server.ip()));
            if clocks.is_some_and(Clocks::per_connection) {
                // Routine on kernels that offset every connection.
                continue;
            }
            let behind = match clocks {
                Some(c) if c.fresh < c.syns => format!(
                    "; its SYNs follow {} timestamp clocks, so several hosts share the address",
                    c.fresh
                ),
                _ => String::new(),
            };
            out.push(
                Finding::new(
                    FindingKind::TimestampRegression,
                    Severity::Info,
                    format!(
                        "{} from {host} carried a TSval older than one seen before, and each was \
                         answered at once{behind}",
                        plural(n, "SYN")
                    ),
                    Some(host),
                    evidence,
                )
                .with_broad_filter(syn_filter(Some(client), server)),
            );
        }
        out
    }
}
