//! `paws-syn-drop` and `timestamp-regression`: SYNs a TIME_WAIT socket or
//! per-host PAWS turned away, and TCP timestamps that went backwards.
//!
//! The kernel's rules, encoded here (net/ipv4/tcp_minisocks.c,
//! tcp_input.c, tcp_metrics.c):
//!
//! 1. **TIME_WAIT, every kernel** (`tcp_timewait_state_process`). A SYN on a
//!    4-tuple the receiver holds in TIME_WAIT is PAWS-rejected when both
//!    the old connection and the SYN carry timestamps and the SYN's TSval
//!    is below the socket's `ts_recent` (the last TSval it received on that
//!    4-tuple; 32-bit serial, `tcp_paws_reject`), counted in
//!    `TcpExtPAWSTimewait`. Otherwise it is accepted only if its sequence
//!    number is after the old `rcv_nxt` or its TSval is above `ts_recent`.
//!    A rejected SYN is answered by a bare ACK with seq = the old
//!    `snd_nxt`, ack = the old `rcv_nxt`, TSecr = `ts_recent`
//!    (`tcp_v4_timewait_ack`), at most one per `tcp_invalid_ratelimit`
//!    (500 ms, `tcp_oow_rate_limited`), so a SYN retransmitted sooner gets
//!    silence and is still counted. A PAWS reject re-arms the 60 s timer.
//!    Without timestamps the same ACK answers a SYN whose sequence number
//!    is not above `rcv_nxt`: a reject by sequence, not PAWS (not counted
//!    in `TcpExtPAWSTimewait`). The client's kernel answers the ACK (it
//!    acknowledges nothing it sent) with RST, stays in SYN_SENT and sends
//!    the SYN again (RFC 9293 §3.10.7.3); the RST frees the TIME_WAIT socket
//!    unless `tcp_rfc1337=1`, so the retry connects or is rejected again.
//!    The tracker keeps what the TIME_WAIT socket keeps (holder,
//!    `ts_recent`, `rcv_nxt`, `snd_nxt`, the frame TIME_WAIT began:
//!    [`crate::track::TimeWaitSocket`]) and hands it over when a SYN
//!    reopens the 4-tuple ([`crate::track::Reuse`]); the detector keeps it
//!    as a tombstone for the rest of the TIME_WAIT window, judges every SYN
//!    on that 4-tuple the way the kernel does, and calls a reject proven only when
//!    the bare ACK echoes that `rcv_nxt` (and `ts_recent`), or, for silence,
//!    when such an ACK went out less than 500 ms before.
//! 2. **Per peer IP, kernels < 4.12 with `tcp_tw_recycle=1`**
//!    (`tcp_conn_request` → `tcp_peer_is_proven`). The server remembers per
//!    peer address the `ts_recent` of the last connection it closed
//!    actively (`tcp_remember_stamp`) for 60 s (`TCP_PAWS_MSL`) and drops a
//!    SYN from that address whose TSval is more than 1 (`TCP_PAWS_WINDOW`)
//!    below it, without an answer (`TcpExtPAWSPassive`). Silence has other
//!    causes, so this is claimed only when the address's SYNs follow one
//!    or a few monotone clocks and the drops follow the rule: every SYN the
//!    rule rejects dropped, the others answered, and the chance that drops
//!    unrelated to the TSval line up this well at most 1 %. That rules out
//!    drops that follow the port (firewall, no listener: the SYNs ahead of
//!    the clock to the same server would be lost too) and listen-queue or
//!    SYN-cookie drops (they do not pick the SYNs behind the clock).
//!    Anything else unanswered is left to `handshake-failure`.
//! 3. **timestamp-regression** (info): the SYNs from one IP (only SYNs: a
//!    connection the address accepted carries another socket's offset)
//!    went backwards yet were answered at once, and they follow several
//!    clocks of which at least one is continued by later SYNs (NAT).
//!    Linux's per-connection timestamp offsets (4.10, and again in kernels
//!    since 2026) make every SYN a clock of its own: routine, not
//!    reported; two SYNs cannot tell that from NAT. SYNs up to 10 ticks
//!    behind the newest (simultaneous connects from one host, sent out of
//!    order) are one clock, not a regression.
//!
//! Memory: tombstones only for the 4-tuples a SYN reopened, for their
//! TIME_WAIT window (purged whenever the map doubles; the sockets of every
//! closed connection live with it in the tracker); per-connection state
//! until the connection is retired; the rest is per pair of addresses
//! (stamps purged after `TCP_PAWS_MSL` whenever their map doubles).
//!
//! Severity: error when a reject is proven and the connection never got a
//! SYN-ACK; warning when it connected late.

use super::{
    Claims, Context, DetectConfig, Detector, EvidenceSet, FactsWanted, Finding, FindingKind,
    KindSpec, SegmentFacts, Severity, pair, plural, syn_filter,
};
use crate::decode::Segment;
use crate::flow::{Endpoint, Side};
use crate::frame::FrameId;
use crate::seq::{SeqNum, TsVal};
use crate::time::Timestamp;
use crate::track::{ConnId, ConnectionRecord, HandshakeState, Reuse, TimeWaitSocket};
use arrayvec::ArrayVec;
use rustc_hash::FxHashMap as HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;

pub const PAWS_SPEC: KindSpec = KindSpec {
    name: "paws-syn-drop",
    explanation: "A host that closed a connection first keeps its 4-tuple in TIME_WAIT (60 s on Linux). \
     Every kernel turns away a new SYN on that 4-tuple whose TCP timestamp (TSval) is below \
     the last one the TIME_WAIT socket received (ts_recent: PAWS, RFC 7323, counted in \
     TcpExtPAWSTimewait), or, without timestamps, whose sequence number is not above the old \
     connection's: it answers with a bare ACK for the old connection (at most one per 500 ms). \
     The client answers that ACK with RST and sends the SYN again; the RST frees the TIME_WAIT \
     socket unless net.ipv4.tcp_rfc1337=1, in which case every retry is turned away and \
     connect() times out. Behind NAT this happens when the NAT hands a second host the public \
     port of a connection the server closed less than 60 s ago: the hosts' timestamp clocks \
     are unrelated. Kernels before 4.12 with net.ipv4.tcp_tw_recycle=1 also remembered the \
     newest timestamp per client IP for 60 s and dropped older SYNs from that IP silently \
     (TcpExtPAWSPassive).",
    advice: "Make the server not hold TIME_WAIT for these clients: let clients close first, or keep \
     connections open (pool, keep-alive). Behind NAT, make the NAT spread clients over source \
     ports (port randomisation) instead of reusing one port within 60 s. Leave \
     net.ipv4.tcp_rfc1337 at 0 unless you need it. Never enable net.ipv4.tcp_tw_recycle \
     (removed in Linux 4.12). Confirm on the server with `nstat -az TcpExtPAWSTimewait \
     TcpExtPAWSPassive TcpExtTCPACKSkippedTimeWait`.",
    doc: include_str!("../../docs/findings/paws-syn-drop.md"),
};

pub const REGRESSION_SPEC: KindSpec = KindSpec {
    name: "timestamp-regression",
    explanation: "TCP timestamps from one source IP went backwards across connections, yet every SYN was \
     answered at once, and the SYNs follow several timestamp clocks: several hosts share the \
     address (NAT). Harmless while every SYN is answered; it turns into rejected SYNs when the \
     NAT reuses a port the server still holds in TIME_WAIT (any kernel) or where per-host PAWS \
     applies (tcp_tw_recycle, kernels before 4.12). Linux's own per-connection timestamp \
     offsets (4.10, and kernels since 2026; 4.11 to 6.x offset per address pair) are not \
     reported.",
    advice: "Nothing to change now. Keep net.ipv4.tcp_tw_recycle off on every server these clients \
     reach, prefer client-side close, and watch for `paws-syn-drop` findings.",
    doc: include_str!("../../docs/findings/timestamp-regression.md"),
};

/// `tcp_invalid_ratelimit`: a TIME_WAIT socket sends at most one ACK to
/// out-of-window segments (SYNs included) per this many seconds.
const INVALID_RATELIMIT_S: f64 = 0.5;

/// `TCP_PAWS_MSL`: how long per-host PAWS remembers a peer's timestamp.
const PAWS_MSL_S: f64 = 60.0;

/// `TCP_PAWS_WINDOW`: per-host PAWS drops a SYN only when the remembered
/// TSval is more than this far ahead of it.
const PAWS_WINDOW: i32 = 1;

/// Per-host drops must line up with the clock this well: the chance that
/// as many drops unrelated to the TSval hit exactly the SYNs the rule
/// rejects is at most this.
const MAX_CHANCE: f64 = 0.01;

/// Timestamp clocks are told apart by their rate: Linux ticks at 1 kHz
/// (RFC 7323 allows 1 Hz to 1 kHz); a SYN continues a clock when its TSval
/// is ahead of the clock's last one by no more than this rate allows.
const MAX_TS_HZ: f64 = 1000.0;

/// A SYN this many ticks or fewer behind a clock still belongs to it:
/// simultaneous connects from one host take their TSvals a tick apart and
/// may leave in either order.
const CLOCK_SLACK: u32 = 10;

/// Clocks remembered per pair of addresses: NAT behind one address rarely
/// hides more hosts that all connect to one server within a minute.
const MAX_CLOCKS: usize = 16;

/// "A few" clocks: per-host PAWS is attributable only when an address's
/// SYNs follow at most this many.
const FEW_CLOCKS: u64 = 4;

/// Rejected SYNs listed per connection (the count goes on).
const MAX_REJECTS_KEPT: usize = 32;

/// A TIME_WAIT socket a SYN met, kept for the rest of its window: what
/// the tracker handed over, and what the socket does from then on.
#[derive(Clone, Copy, Debug)]
struct Tomb {
    /// The connection that left it.
    conn: ConnId,
    socket: TimeWaitSocket,
    /// When its TIME_WAIT ends; a PAWS reject re-arms the timer.
    until: Timestamp,
    /// The last out-of-window ACK the socket sent (rate limit).
    last_ack: Option<Timestamp>,
}

/// How the kernel's TIME_WAIT socket judges one SYN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Accept,
    /// TSval below ts_recent.
    Paws,
    /// No usable timestamps (or TSval equal to ts_recent) and the sequence
    /// number not above rcv_nxt.
    Sequence,
}

/// `tcp_timewait_state_process` for a SYN without ACK.
fn judge(t: &Tomb, seq: SeqNum, tsval: Option<TsVal>) -> Verdict {
    // tw_ts_recent_stamp != 0 and the SYN carries the option (saw_tstamp).
    let ts = t.socket.ts_recent.zip(tsval);
    // tcp_paws_reject: ts_recent == 0 is never a reason to reject.
    let paws_reject = ts.is_some_and(|(recent, v)| recent.0 != 0 && v.before(recent));
    if paws_reject {
        return Verdict::Paws;
    }
    if seq.after(t.socket.rcv_nxt) || ts.is_some_and(|(recent, v)| v.after(recent)) {
        Verdict::Accept
    } else {
        Verdict::Sequence
    }
}

/// One SYN the TIME_WAIT socket turned away.
#[derive(Clone, Copy, Debug)]
struct Reject {
    syn_frame: FrameId,
    at: Timestamp,
    tsval: Option<TsVal>,
    seq: SeqNum,
    verdict: Verdict,
    /// The bare ACK that answered it; None when the answer was suppressed
    /// by the rate limit (an ACK went out less than 500 ms before).
    ack_frame: Option<FrameId>,
    /// The client's RST to that ACK.
    rst_frame: Option<FrameId>,
}

/// A SYN waiting for its answer.
#[derive(Clone, Copy, Debug)]
struct Pending {
    frame: FrameId,
    at: Timestamp,
    tsval: Option<TsVal>,
    seq: SeqNum,
    verdict: Verdict,
}

/// A new connection on a 4-tuple held in TIME_WAIT, SYN by SYN.
#[derive(Debug)]
struct Attempt {
    key: (Endpoint, Endpoint),
    tomb: Tomb,
    pending: Option<Pending>,
    rejects: ArrayVec<Reject, MAX_REJECTS_KEPT>,
    paws: u64,
    sequence: u64,
    /// SYNs the model says are rejected but whose answer does not prove it
    /// (silence beyond the rate limit, an ACK that echoes something else).
    unproven: u64,
    /// The SYN that got through and its SYN-ACK.
    synack: Option<(FrameId, FrameId)>,
}

impl Attempt {
    /// The pending SYN got no answer before `now` (the next SYN, or the
    /// end): a rate-limited reject or an unexplained silence.
    fn silence(&mut self) {
        let Some(p) = self.pending.take() else { return };
        if p.verdict == Verdict::Accept {
            return;
        }
        // A repeat of the same SYN with the same TSval is a copy in the
        // capture, not a second SYN the kernel saw.
        if self
            .rejects
            .last()
            .is_some_and(|r| r.seq == p.seq && r.tsval == p.tsval && p.tsval.is_some())
        {
            return;
        }
        let limited = self
            .tomb
            .last_ack
            .is_some_and(|a| p.at.secs_since(a) < INVALID_RATELIMIT_S && p.at >= a);
        if limited {
            self.reject(p, None);
        } else {
            self.unproven += 1;
        }
    }

    fn reject(&mut self, p: Pending, ack_frame: Option<FrameId>) {
        match p.verdict {
            Verdict::Paws => self.paws += 1,
            Verdict::Sequence => self.sequence += 1,
            Verdict::Accept => return,
        }
        if !self.rejects.is_full() {
            self.rejects.push(Reject {
                syn_frame: p.frame,
                at: p.at,
                tsval: p.tsval,
                seq: p.seq,
                verdict: p.verdict,
                ack_frame,
                rst_frame: None,
            });
        }
    }
}

/// The newest TSval seen from one source IP toward one destination IP.
#[derive(Clone, Copy)]
struct Newest {
    tsval: TsVal,
    at: Timestamp,
    frame: FrameId,
    conn: ConnId,
}

/// A SYN whose TSval was older than the newest from its source.
#[derive(Clone, Copy)]
struct Regression {
    syn_frame: FrameId,
    syn_tsval: TsVal,
    at: Timestamp,
    newest: Newest,
}

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
            let behind = v0.0.wrapping_sub(tsval.0);
            behind <= CLOCK_SLACK || ahead <= at.secs_since(*t0).max(0.0) * MAX_TS_HZ * 1.05 + 100.0
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

    /// One or a few clocks, each continued: what per-host PAWS needs to be
    /// told from chance.
    fn few(&self) -> bool {
        self.fresh <= FEW_CLOCKS && self.fresh < self.syns
    }
}

/// What per-host PAWS (`tcp_tw_recycle`) remembers of a peer:
/// `tcpm_ts`, `tcpm_ts_stamp`, and the connection it came from.
#[derive(Clone, Copy)]
struct Stamp {
    tsval: TsVal,
    at: Timestamp,
    conn: ConnId,
    frame: FrameId,
}

/// A first SYN judged by the per-host rule, and what became of it.
#[derive(Clone, Copy)]
struct RecycleSyn {
    frame: FrameId,
    at: Timestamp,
    tsval: Option<TsVal>,
    stamp: Stamp,
    rejected: bool,
    /// Dropped (sent again before any SYN-ACK) or answered; tallied the
    /// moment it is known, so that a connection retired later is judged
    /// with every SYN seen by then.
    dropped: Option<bool>,
}

/// The per-host rule's predictions against what happened, per client IP
/// and server IP.
#[derive(Default)]
struct Recycle {
    rejected_dropped: u64,
    rejected_answered: u64,
    passed_dropped: u64,
    passed_answered: u64,
    evidence: EvidenceSet,
    failed: u64,
    worst: f64,
}

impl Recycle {
    fn tally(&mut self, rejected: bool, dropped: bool) {
        match (rejected, dropped) {
            (true, true) => self.rejected_dropped += 1,
            (true, false) => self.rejected_answered += 1,
            (false, true) => self.passed_dropped += 1,
            (false, false) => self.passed_answered += 1,
        }
    }

    /// The chance that drops unrelated to the TSval fall on exactly the
    /// SYNs the rule rejects: hypergeometric, C(K, R) / C(N, R) with K
    /// drops among N SYNs, R of them rejected by the rule.
    fn chance(&self) -> f64 {
        let r = self.rejected_dropped + self.rejected_answered;
        let n = r + self.passed_dropped + self.passed_answered;
        let k = self.rejected_dropped + self.passed_dropped;
        if r == 0 || k < r {
            return 1.0;
        }
        (0..r).map(|i| (k - i) as f64 / (n - i) as f64).product()
    }

    /// The drops follow the rule: every SYN it rejects was dropped, and
    /// chance does not explain it.
    fn proven(&self, clocks: Option<&Clocks>) -> bool {
        self.rejected_dropped > 0
            && self.rejected_answered == 0
            && self.chance() <= MAX_CHANCE
            && clocks.is_some_and(Clocks::few)
    }
}

/// TIME_WAIT rejects per client IP, server and reason.
#[derive(Default)]
struct Rejected {
    evidence: EvidenceSet,
    /// Connections that never got a SYN-ACK.
    failed: u64,
    connections: u64,
    /// The longest connect() delay among those that connected.
    worst: f64,
    /// Rejected SYNs beyond [`MAX_REJECTS_KEPT`] per connection: counted,
    /// not listed.
    unlisted: u64,
}

pub struct PawsSynDrop {
    time_wait_s: f64,
    /// TIME_WAIT tombstones by (peer, holder), of the 4-tuples a SYN
    /// reopened while the previous incarnation's socket may still be in
    /// TIME_WAIT.
    tombs: HashMap<(Endpoint, Endpoint), Tomb>,
    /// Tombstones after the last purge of expired ones.
    tombs_after_purge: usize,
    attempts: HashMap<ConnId, Attempt>,
    rejected: HashMap<(IpAddr, Endpoint, bool), Rejected>,
    newest: HashMap<(IpAddr, IpAddr), Newest>,
    /// Regressions on connections still open, decided when they end.
    regressions: HashMap<ConnId, Regression>,
    answered: HashMap<(IpAddr, Endpoint), EvidenceSet>,
    clocks: HashMap<(IpAddr, IpAddr), Clocks>,
    stamps: HashMap<(IpAddr, IpAddr), Stamp>,
    /// Stamps after the last purge of expired ones.
    stamps_after_purge: usize,
    recycle_syns: HashMap<ConnId, RecycleSyn>,
    recycle: HashMap<(IpAddr, IpAddr), Recycle>,
}

impl PawsSynDrop {
    pub fn new(config: &DetectConfig) -> PawsSynDrop {
        PawsSynDrop {
            time_wait_s: config.time_wait_s,
            tombs: HashMap::default(),
            tombs_after_purge: 0,
            attempts: HashMap::default(),
            rejected: HashMap::default(),
            newest: HashMap::default(),
            regressions: HashMap::default(),
            answered: HashMap::default(),
            clocks: HashMap::default(),
            stamps: HashMap::default(),
            stamps_after_purge: 0,
            recycle_syns: HashMap::default(),
            recycle: HashMap::default(),
        }
    }

    /// A SYN reopened a 4-tuple: the TIME_WAIT sockets its previous
    /// incarnation left (the tracker keeps them, see
    /// [`crate::track::TimeWaitSocket`]) become tombstones here, so this
    /// map follows the 4-tuples new SYNs met, not every closed connection.
    /// A newer incarnation's socket replaces an older one's on the same
    /// 4-tuple and side.
    #[inline(never)]
    fn take_sockets(&mut self, seg: &Segment, reuse: &Reuse) {
        if reuse.sockets.is_empty() {
            return;
        }
        for (key, s) in handed_over(seg, reuse) {
            self.tombs.insert(
                key,
                Tomb {
                    conn: reuse.previous,
                    socket: *s,
                    until: s.until(self.time_wait_s),
                    last_ack: None,
                },
            );
        }
        if self.tombs.len() >= 1024 && self.tombs.len() >= 2 * self.tombs_after_purge {
            self.tombs.retain(|_, t| t.until >= seg.ts);
            self.tombs_after_purge = self.tombs.len();
        }
    }

    /// `tcp_remember_stamp`: when the server enters TIME_WAIT, what
    /// per-host PAWS would keep of the client (at most one stamp per pair
    /// of addresses, purged once older than `TCP_PAWS_MSL` whenever the map
    /// doubled).
    #[inline(never)]
    fn remember_stamp(&mut self, now: Timestamp, facts: &SegmentFacts) {
        let Some(s) = facts.server_socket_opened else {
            return;
        };
        let (true, Some(v)) = (s.opened, s.ts_recent) else {
            return;
        };
        let since = s.since;
        let stamp = Stamp {
            tsval: v,
            at: since,
            conn: facts.conn,
            frame: s.since_frame,
        };
        self.stamps
            .entry((facts.client().ip(), facts.server().ip()))
            .and_modify(|s| {
                if !v.before(s.tsval) || since.secs_since(s.at) >= PAWS_MSL_S {
                    *s = stamp;
                }
            })
            .or_insert(stamp);
        if self.stamps.len() >= 1024 && self.stamps.len() >= 2 * self.stamps_after_purge {
            self.stamps.retain(|_, s| now.secs_since(s.at) < PAWS_MSL_S);
            self.stamps_after_purge = self.stamps.len();
        }
    }

    /// A SYN without ACK: judged against the TIME_WAIT socket on its
    /// 4-tuple, if any.
    #[inline(never)]
    fn on_syn(&mut self, facts: &SegmentFacts) {
        let (seg, conn) = (&facts.seg, facts.conn);
        let tsval = seg.tsopt.map(|t| t.tsval);
        let p = |verdict| Pending {
            frame: seg.frame,
            at: seg.ts,
            tsval,
            seq: seg.seq,
            verdict,
        };
        if let Some(a) = self.attempts.get_mut(&conn) {
            a.silence();
            if a.synack.is_some() {
                return;
            }
            // Still the socket the first SYN met (a SYN-ACK would have
            // ended the attempt), unless its window ran out.
            if seg.ts > a.tomb.until {
                return;
            }
            let v = judge(&a.tomb, seg.seq, tsval);
            a.pending = Some(p(v));
            return;
        }
        // The connection's own TIME_WAIT socket on this 4-tuple, when it
        // has one, is the newest: a SYN of its own (same ISN) is no reuse.
        if facts.own_socket_at_dst {
            return;
        }
        let key = (seg.src, seg.dst);
        let Some(t) = self.tombs.get(&key) else {
            return;
        };
        if t.conn == conn || seg.ts > t.until {
            return;
        }
        let tomb = *t;
        let v = judge(&tomb, seg.seq, tsval);
        self.attempts.insert(
            conn,
            Attempt {
                key,
                tomb,
                pending: Some(p(v)),
                rejects: ArrayVec::new(),
                paws: 0,
                sequence: 0,
                unproven: 0,
                synack: None,
            },
        );
    }

    /// A segment of a connection that met a TIME_WAIT socket (one that
    /// [`tells_an_attempt`]).
    #[inline(never)]
    fn on_attempt_segment(&mut self, seg: &Segment, conn: ConnId) {
        let Some(a) = self.attempts.get_mut(&conn) else {
            return;
        };
        let f = seg.flags;
        let from_holder = seg.src == a.key.1;
        if from_holder && f.syn() && f.ack() {
            if let Some(p) = a.pending.take() {
                a.synack.get_or_insert((p.frame, seg.frame));
            }
            // The TIME_WAIT socket is gone: the SYN was accepted, or an
            // RST had freed the 4-tuple.
            let key = a.key;
            if self.tombs.get(&key).is_some_and(|t| t.conn == a.tomb.conn) {
                self.tombs.remove(&key);
            }
            return;
        }
        if from_holder && is_bare_ack(seg) {
            let Some(p) = a.pending else { return };
            let echoes = seg.ack == a.tomb.socket.rcv_nxt
                && seg.seq == a.tomb.socket.snd_nxt
                && match (a.tomb.socket.ts_recent, seg.tsopt) {
                    (Some(r), Some(t)) => t.tsecr == r,
                    (None, _) => true,
                    (Some(_), None) => false,
                };
            a.pending = None;
            if echoes && p.verdict != Verdict::Accept {
                a.tomb.last_ack = Some(seg.ts);
                if p.verdict == Verdict::Paws {
                    // A PAWS reject re-arms the TIME_WAIT timer.
                    a.tomb.until = seg.ts.add_secs(self.time_wait_s.max(PAWS_MSL_S));
                }
                a.reject(p, Some(seg.frame));
                let (key, tomb) = (a.key, a.tomb);
                if let Some(t) = self.tombs.get_mut(&key)
                    && t.conn == tomb.conn
                {
                    t.until = tomb.until;
                    t.last_ack = tomb.last_ack;
                }
            } else {
                a.unproven += 1;
            }
            return;
        }
        if !from_holder
            && f.rst()
            && let Some(r) = a.rejects.last_mut()
            && r.ack_frame.is_some()
            && r.rst_frame.is_none()
            && seg.seq == a.tomb.socket.rcv_nxt
        {
            r.rst_frame = Some(seg.frame);
        }
    }

    /// The newest-SYN-TSval-per-address bookkeeping behind
    /// `timestamp-regression`, the clock model and per-host PAWS. Only SYNs
    /// count: each starts a connection's clock on the client, and the
    /// question is how many clocks the address's connects follow; the
    /// TSvals of a connection the address accepted come from another
    /// socket's offset and say nothing about that.
    #[inline(never)]
    fn on_syn_timestamp(&mut self, facts: &SegmentFacts) {
        let seg = &facts.seg;
        let Some(ts) = seg.tsopt else { return };
        let this = Newest {
            tsval: ts.tsval,
            at: seg.ts,
            frame: seg.frame,
            conn: facts.conn,
        };
        let first_syn = !facts.syn_retransmit;
        let key = (seg.src.ip(), seg.dst.ip());
        if first_syn
            && let Some(s) = self.stamps.get(&key)
            && seg.ts.secs_since(s.at) < PAWS_MSL_S
            && s.conn != facts.conn
            && !self.attempts.contains_key(&facts.conn)
        {
            self.recycle_syns.insert(
                facts.conn,
                RecycleSyn {
                    frame: seg.frame,
                    at: seg.ts,
                    tsval: Some(ts.tsval),
                    stamp: *s,
                    rejected: s.tsval.diff(ts.tsval) > PAWS_WINDOW,
                    dropped: None,
                },
            );
        }
        let newest = match self.newest.entry(key) {
            Entry::Vacant(e) => {
                e.insert(this);
                return;
            }
            Entry::Occupied(e) => e.into_mut(),
        };
        let fresh = seg.ts.secs_since(newest.at) <= self.time_wait_s.max(PAWS_MSL_S);
        // A tick or two behind is the same clock, sent out of order.
        let behind = newest.tsval.0.wrapping_sub(ts.tsval.0);
        let regressed = ts.tsval.before(newest.tsval) && behind > CLOCK_SLACK;
        if fresh && newest.conn != facts.conn && regressed {
            self.regressions.entry(facts.conn).or_insert(Regression {
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

    /// A connection that met a TIME_WAIT socket ended: its proven rejects
    /// become evidence, and it is claimed when there is one.
    fn end_attempt(&mut self, c: &ConnectionRecord, mut a: Attempt, claims: &mut Claims) {
        a.silence();
        if a.paws + a.sequence == 0 {
            return;
        }
        claims.claim(FindingKind::PawsSynDrop, c.id);
        let connected = a.synack;
        let t = a.tomb;
        let holder = if t.socket.holder == Side::Server {
            "server"
        } else {
            "client"
        };
        for paws in [true, false] {
            let n = if paws { a.paws } else { a.sequence };
            if n == 0 {
                continue;
            }
            let g = self
                .rejected
                .entry((c.client.ip(), c.server, paws))
                .or_default();
            g.connections += 1;
            match connected {
                None => g.failed += 1,
                Some(_) => g.worst = g.worst.max(c.handshake.connect_s.unwrap_or(0.0)),
            }
            let rows: Vec<&Reject> = a
                .rejects
                .iter()
                .filter(|r| (r.verdict == Verdict::Paws) == paws)
                .collect();
            let last = rows.len().saturating_sub(1);
            for (i, r) in rows.iter().enumerate() {
                let mut frames = vec![t.socket.since_frame, r.syn_frame];
                frames.extend(r.ack_frame);
                frames.extend(r.rst_frame);
                if i == last
                    && let Some((syn, sa)) = connected
                {
                    frames.extend([syn, sa]);
                }
                frames.sort_unstable();
                frames.dedup();
                g.evidence.add(c.id, r.at, &frames, || {
                    let why = match (r.verdict, r.tsval, t.socket.ts_recent) {
                        (Verdict::Paws, Some(v), Some(recent)) => format!(
                            "SYN TSval {v} is below ts_recent {recent} of the TIME_WAIT socket \
                             the {holder} holds since frame {} (connection {}, {:.3} s earlier)",
                            t.socket.since_frame,
                            t.conn,
                            r.at.secs_since(t.socket.since)
                        ),
                        _ => format!(
                            "SYN seq {} is not after rcv_nxt {} of the TIME_WAIT socket the \
                             {holder} holds since frame {} (connection {}){}",
                            r.seq.0,
                            t.socket.rcv_nxt.0,
                            t.socket.since_frame,
                            t.conn,
                            if t.socket.ts_recent.is_none() || r.tsval.is_none() {
                                ", without timestamps: a reject by sequence, not PAWS"
                            } else {
                                ", TSval equal to ts_recent: a reject by sequence"
                            }
                        ),
                    };
                    let answer = match r.ack_frame {
                        Some(f) => format!(
                            "answered by bare ACK {f} (ack {}{})",
                            t.socket.rcv_nxt.0,
                            t.socket
                                .ts_recent
                                .map(|v| format!(", TSecr {v}"))
                                .unwrap_or_default()
                        ),
                        None => "no answer: the ACK was rate-limited (one per 500 ms)".to_string(),
                    };
                    let rst = r
                        .rst_frame
                        .map(|f| format!("; client RST {f}"))
                        .unwrap_or_default();
                    let outcome = if i != last {
                        String::new()
                    } else {
                        match (connected, c.handshake.connect_s) {
                            (Some((syn, sa)), Some(d)) => {
                                format!("; connected after {d:.3} s (SYN {syn}, SYN-ACK {sa})")
                            }
                            (Some((syn, sa)), None) => {
                                format!("; connected (SYN {syn}, SYN-ACK {sa})")
                            }
                            (None, _) => format!(
                                "; never connected ({} SYNs over {:.1} s)",
                                c.handshake.syn_retransmits + 1,
                                c.duration_s
                            ),
                        }
                    };
                    let unproven = if i == last && a.unproven > 0 {
                        format!(
                            "; {} more SYNs got no answer the kernel would give (not counted)",
                            a.unproven
                        )
                    } else {
                        String::new()
                    };
                    format!("{why}; {answer}{rst}{outcome}{unproven}")
                });
            }
            // Rejects beyond those listed still count.
            g.unlisted += n - rows.len() as u64;
        }
    }

    /// A first SYN judged by the per-host rule: tally prediction against
    /// outcome, and claim when the drops are proven to follow the clock.
    fn end_recycle(&mut self, c: &ConnectionRecord, r: RecycleSyn, claims: &mut Claims) {
        let h = &c.handshake;
        // Answered in another way: not what per-host PAWS does.
        if matches!(
            h.state,
            HandshakeState::Refused | HandshakeState::Challenged | HandshakeState::NotCaptured
        ) {
            return;
        }
        if !(r.rejected && r.dropped == Some(true)) {
            return;
        }
        let key = (c.client.ip(), c.server.ip());
        let g = self.recycle.entry(key).or_default();
        if h.synack_frame.is_none() {
            g.failed += 1;
        } else if let Some(d) = h.connect_s {
            g.worst = g.worst.max(d);
        }
        let mut frames = vec![r.stamp.frame];
        frames.extend(h.syn_frames.iter().copied());
        frames.extend(h.synack_frame);
        frames.sort_unstable();
        frames.dedup();
        let behind = r.stamp.tsval.0.wrapping_sub(r.tsval.map_or(0, |v| v.0));
        g.evidence.add(c.id, r.at, &frames, || {
            let outcome = match (h.synack_frame, h.connect_s) {
                (Some(_), Some(d)) => {
                    format!("connected after {d:.3} s and {} retries", h.syn_retransmits)
                }
                (Some(_), None) => "connected".to_string(),
                (None, _) => format!(
                    "never connected ({} SYNs over {:.1} s)",
                    h.syn_retransmits + 1,
                    c.duration_s
                ),
            };
            format!(
                "SYN {} TSval {} is {behind} behind TSval {} the server kept for {} when it \
                 closed connection {} {:.3} s earlier (per-host PAWS, tcp_tw_recycle); not \
                 answered; {outcome}",
                r.frame,
                r.tsval.map_or(0, |v| v.0),
                r.stamp.tsval,
                c.client.ip(),
                r.stamp.conn,
                r.at.secs_since(r.stamp.at)
            )
        });
        if g.proven(self.clocks.get(&key)) {
            claims.claim(FindingKind::PawsSynDrop, c.id);
        }
    }
}

/// The TIME_WAIT sockets a reuse handed over, each keyed as
/// [`PawsSynDrop::take_sockets`] keeps it: (peer, holder), the source and
/// destination of a SYN that would meet it.
fn handed_over<'r>(
    seg: &Segment,
    reuse: &'r Reuse,
) -> impl Iterator<Item = ((Endpoint, Endpoint), &'r TimeWaitSocket)> + 'r {
    let client = reuse.previous_client;
    let server = if seg.src == client { seg.dst } else { seg.src };
    reuse.sockets.iter().map(move |s| {
        let key = match s.holder {
            Side::Client => (server, client),
            Side::Server => (client, server),
        };
        (key, s)
    })
}

/// Which connections' bare ACKs [`PawsSynDrop`] could read, decided on the
/// tracking thread before the facts are handed on: a bare ACK only tells
/// an attempt how it went ([`PawsSynDrop::on_attempt_segment`]), and most
/// connections never make one. Bare ACKs are about three in five of the
/// segments a busy server's facts were (a SYN, a SYN-ACK, an ACK or two per
/// connection); building and folding them was about an eighth of a run's
/// CPU.
///
/// The tracking thread cannot see the detector's attempts, so it keeps a
/// superset of what they could be, by the same rules and never smaller:
/// per (SYN source, SYN destination), until when a TIME_WAIT socket may
/// still be there (the sockets a reuse handed over, as `take_sockets`
/// keeps them; the later of two, where the detector keeps the newer;
/// every bare ACK of a marked connection re-arming it as a PAWS reject
/// may, `TCP_PAWS_MSL` or the TIME_WAIT length from then; never the
/// removals). A SYN without ACK that arrives on one before its end marks
/// its connection, as `on_syn` would open an attempt, and the marked
/// connections' bare ACKs are handed on until their record. The map is
/// purged as the detector's is, of sockets ended before the newest
/// segment; a SYN older than that (the capture's clock went back) marks
/// its connection whatever the map says. Test
/// `detectors_shown_only_the_segments_they_want_find_what_they_find_shown_every_segment`,
/// which also checks that no bare ACK left out belonged to an attempt.
#[derive(Debug)]
pub struct AttemptGate {
    time_wait_s: f64,
    /// (SYN source, SYN destination), by the hash of the pair: until when
    /// a TIME_WAIT socket there may still take a SYN. Two pairs of one
    /// hash share an entry, the later end: a SYN of one may then be marked
    /// for the other's socket, never left unmarked (16 bytes an entry
    /// instead of 48; a capture of 300,000 connections in one window
    /// holds 20,000).
    sockets: HashMap<u64, Timestamp>,
    sockets_after_purge: usize,
    /// Sockets that ended before this were purged.
    purged_before: Option<Timestamp>,
    /// The newest segment's time.
    newest: Option<Timestamp>,
    /// Connections whose SYN may have opened an attempt.
    marked: rustc_hash::FxHashSet<ConnId>,
}

impl AttemptGate {
    pub fn new(config: &DetectConfig) -> AttemptGate {
        AttemptGate {
            time_wait_s: config.time_wait_s,
            sockets: HashMap::default(),
            sockets_after_purge: 0,
            purged_before: None,
            newest: None,
            marked: rustc_hash::FxHashSet::default(),
        }
    }

    /// Whether connection `conn` may have an attempt: then its bare ACKs
    /// are handed on.
    #[inline]
    pub fn marks(&self, conn: ConnId) -> bool {
        !self.marked.is_empty() && self.marked.contains(&conn)
    }

    /// Facts about to be handed on (every one, before the detectors see
    /// it).
    pub fn hand_on(&mut self, facts: &SegmentFacts) {
        let seg = &facts.seg;
        if is_bare_ack(seg) && self.marks(facts.conn) {
            // It may re-arm the socket its connection's SYN met: from the
            // holder to the SYN's source, the key of that socket.
            let until = seg.ts.add_secs(self.time_wait_s.max(PAWS_MSL_S));
            self.extend((seg.dst, seg.src), until);
        }
        self.newest = Some(self.newest.map_or(seg.ts, |n| n.max(seg.ts)));
        if let Some(r) = &facts.reuse {
            for (key, s) in handed_over(seg, r) {
                self.extend(key, s.until(self.time_wait_s));
            }
        }
        let f = seg.flags;
        if f.syn() && !f.ack() && !f.rst() {
            let met = self
                .sockets
                .get(&pair_hash((seg.src, seg.dst)))
                .is_some_and(|&until| seg.ts <= until)
                || self.purged_before.is_some_and(|p| seg.ts < p);
            if met {
                self.marked.insert(facts.conn);
            }
        }
    }

    /// A connection's record was handed on: no fact of it follows.
    #[inline]
    pub fn ended(&mut self, conn: ConnId) {
        if !self.marked.is_empty() {
            self.marked.remove(&conn);
        }
    }

    fn extend(&mut self, key: (Endpoint, Endpoint), until: Timestamp) {
        let u = self.sockets.entry(pair_hash(key)).or_insert(until);
        *u = (*u).max(until);
        if self.sockets.len() >= 1024 && self.sockets.len() >= 2 * self.sockets_after_purge {
            if let Some(now) = self.newest {
                self.sockets.retain(|_, u| *u >= now);
                self.purged_before = Some(self.purged_before.map_or(now, |p| p.max(now)));
            }
            self.sockets_after_purge = self.sockets.len();
        }
    }
}

/// The gate's key of a (SYN source, SYN destination) pair.
fn pair_hash(pair: (Endpoint, Endpoint)) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(pair)
}

/// Segments of a connection that met a TIME_WAIT socket: only a SYN-ACK,
/// a bare ACK or an RST tells an attempt something
/// ([`PawsSynDrop::on_attempt_segment`]); data and FINs, most segments,
/// are not looked up (nor handed over, [`super::SegmentFacts::wanted`]).
pub(super) fn tells_an_attempt(seg: &Segment) -> bool {
    let f = seg.flags;
    (f.syn() && f.ack()) || f.rst() || is_bare_ack(seg)
}

/// An ACK without SYN, RST, FIN or payload: what a TIME_WAIT socket
/// answers a SYN it turns away with (`tcp_timewait_state_process`).
pub(super) fn is_bare_ack(seg: &Segment) -> bool {
    let f = seg.flags;
    f.ack() && !f.syn() && !f.rst() && !f.fin() && seg.payload_len == 0
}

impl Detector for PawsSynDrop {
    fn kinds(&self) -> &'static [FindingKind] {
        &[FindingKind::PawsSynDrop, FindingKind::TimestampRegression]
    }

    fn facts_wanted(&self) -> FactsWanted {
        FactsWanted::All
    }

    fn on_segment_facts(&mut self, facts: &mut SegmentFacts) {
        let seg = &facts.seg;
        #[cfg(test)]
        assert!(
            !(facts.left_out && tells_an_attempt(seg) && self.attempts.contains_key(&facts.conn)),
            "a bare ACK the gate leaves out belongs to an attempt: frame {}",
            seg.frame.0
        );
        if let Some(r) = &facts.reuse {
            self.take_sockets(seg, r);
        }
        let f = seg.flags;
        if f.syn() && !f.ack() && !f.rst() {
            self.on_syn(facts);
            self.on_syn_timestamp(facts);
        } else if !self.attempts.is_empty() && tells_an_attempt(seg) {
            self.on_attempt_segment(seg, facts.conn);
        }
        if !self.recycle_syns.is_empty()
            && f.syn()
            && (f.ack() || facts.syn_retransmit)
            && let Some(r) = self.recycle_syns.get_mut(&facts.conn)
            && r.dropped.is_none()
        {
            // A SYN-ACK answered the first SYN, or the SYN went again.
            let dropped = !f.ack();
            r.dropped = Some(dropped);
            let rejected = r.rejected;
            self.recycle
                .entry((facts.client().ip(), facts.server().ip()))
                .or_default()
                .tally(rejected, dropped);
            if !(rejected && dropped) {
                // Tallied, and only a rejected SYN that was dropped is
                // evidence when its connection ends (`end_recycle`): the
                // others need not wait here through the connection and
                // its TIME_WAIT.
                self.recycle_syns.remove(&facts.conn);
            }
        }
        // Only the segment that made the server's socket (`opened` in
        // `remember_stamp`) carries it.
        if facts.server_socket_opened.is_some() {
            self.remember_stamp(seg.ts, facts);
        }
    }

    fn on_connection_end(&mut self, c: &ConnectionRecord, claims: &mut Claims) {
        // Most records are in none of the three maps, which are often
        // empty: then no lookup (a hash each) is made.
        if !self.attempts.is_empty()
            && let Some(a) = self.attempts.remove(&c.id)
        {
            self.end_attempt(c, a, claims);
        }
        if !self.recycle_syns.is_empty()
            && let Some(r) = self.recycle_syns.remove(&c.id)
            && !claims.is_claimed(FindingKind::PawsSynDrop, c.id)
        {
            self.end_recycle(c, r, claims);
        }
        if self.regressions.is_empty() {
            return;
        }
        let h = &c.handshake;
        let Some(r) = self.regressions.remove(&c.id) else {
            return;
        };
        let answered_at_once = h.challenge_ack_frame.is_none()
            && h.syn_retransmits == 0
            && matches!(
                h.state,
                HandshakeState::Complete | HandshakeState::SynAckOnly
            );
        if !answered_at_once {
            return;
        }
        let behind = r.newest.tsval.0.wrapping_sub(r.syn_tsval.0);
        self.answered
            .entry((c.client.ip(), c.server))
            .or_default()
            .add(c.id, r.at, &[r.newest.frame, r.syn_frame], || {
                format!(
                    "SYN TSval {} is {behind} behind TSval {} (connection {}), answered at once",
                    r.syn_tsval, r.newest.tsval, r.newest.conn
                )
            });
    }

    fn finish(&mut self, _ctx: &Context<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut rejected: Vec<_> = std::mem::take(&mut self.rejected)
            .into_iter()
            .map(|(k, g)| ((pair(k.0, k.1), !k.2), k, g))
            .collect();
        rejected.sort_by(|a, b| a.0.cmp(&b.0));
        for ((host, _), (client, server, paws), g) in rejected {
            let n = g.evidence.count() + g.unlisted;
            let severity = if g.failed > 0 {
                Severity::Error
            } else {
                Severity::Warning
            };
            let how = if paws {
                "PAWS: TSval below the socket's ts_recent"
            } else {
                "by sequence: no timestamps, ISN not above the old rcv_nxt; not PAWS"
            };
            let outcome = if g.failed > 0 {
                format!("{} never connected", plural(g.failed, "connection"))
            } else {
                format!("all connected in the end, delayed up to {:.3} s", g.worst)
            };
            let summary = format!(
                "{} from {host} rejected by a TIME_WAIT socket on the same 4-tuple ({how}), \
                 over {}; {outcome}",
                plural(n, "SYN"),
                plural(g.connections, "connection")
            );
            out.push(
                Finding::new(
                    FindingKind::PawsSynDrop,
                    severity,
                    summary,
                    Some(host),
                    g.evidence,
                )
                .with_broad_filter(syn_filter(Some(client), server)),
            );
        }
        for ((client, server), g) in super::sorted(std::mem::take(&mut self.recycle)) {
            if !g.proven(self.clocks.get(&(client, server))) {
                continue;
            }
            let host = format!("{client} → {server}");
            let n = g.evidence.count();
            let severity = if g.failed > 0 {
                Severity::Error
            } else {
                Severity::Warning
            };
            let outcome = if g.failed > 0 {
                format!("{} never connected", plural(g.failed, "connection"))
            } else {
                format!("all connected in the end, delayed up to {:.3} s", g.worst)
            };
            let summary = format!(
                "{} from {host} with a TSval more than 1 behind the one the server kept from \
                 its last close got no answer, and {} of {} whose TSval was ahead were \
                 answered: the drops follow the timestamp clock (per-host PAWS, \
                 tcp_tw_recycle, kernels before 4.12; chance {:.2} %, so not a firewall, \
                 closed port or full queue); {outcome}",
                plural(n, "connection"),
                g.passed_answered,
                g.passed_answered + g.passed_dropped,
                g.chance() * 100.0,
            );
            out.push(Finding::new(
                FindingKind::PawsSynDrop,
                severity,
                summary,
                Some(host),
                g.evidence,
            ));
        }
        let mut answered: Vec<(String, (IpAddr, Endpoint), EvidenceSet)> =
            std::mem::take(&mut self.answered)
                .into_iter()
                .map(|(k, e)| (pair(k.0, k.1), k, e))
                .collect();
        answered.sort_by(|a, b| a.0.cmp(&b.0));
        for (host, (client, server), evidence) in answered {
            let n = evidence.count();
            // Only when some clock is continued by later SYNs: SYNs that
            // each start a clock of their own are what kernels that offset
            // every connection send (routine), and two SYNs cannot tell
            // that from NAT.
            let Some(c) = self
                .clocks
                .get(&(client, server.ip()))
                .filter(|c| c.fresh < c.syns && c.fresh > 1)
            else {
                continue;
            };
            let behind = format!(
                "; its SYNs follow {} timestamp clocks, so several hosts share the address",
                c.fresh
            );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{TcpFlags as F, TcpTimestamps};
    use crate::track::Tracker;

    /// Feeds segments through a tracker into the detector, the way the
    /// pipeline does.
    struct Run {
        tracker: Tracker,
        paws: PawsSynDrop,
        gate: AttemptGate,
        frame: u64,
    }

    impl Run {
        fn new() -> Run {
            Run {
                tracker: Tracker::new(60.0),
                paws: PawsSynDrop::new(&DetectConfig::default()),
                gate: AttemptGate::new(&DetectConfig::default()),
                frame: 0,
            }
        }

        /// One segment at `ms` milliseconds, with TSval `tsval`.
        #[allow(clippy::too_many_arguments)]
        fn send(
            &mut self,
            ms: i64,
            src: Endpoint,
            dst: Endpoint,
            flags: u8,
            seq: u32,
            ack: u32,
            tsval: u32,
        ) {
            self.frame += 1;
            let mut seg = segment(self.frame, at_ms(ms), (src, dst), flags, seq, ack);
            seg.tsopt = Some(TcpTimestamps {
                tsval: TsVal(tsval),
                tsecr: TsVal(0),
            });
            self.feed(&seg);
        }

        /// Tracks `seg` and hands its facts on if wanted; whether they were.
        fn feed(&mut self, seg: &Segment) -> bool {
            let (obs, conn) = self.tracker.on_segment_conn(seg);
            let mut wanted = false;
            if let Some(conn) = conn
                && !obs.notes.duplicate
                && !obs.notes.ignored
                && SegmentFacts::wanted(seg, &obs, conn, &self.gate)
            {
                let mut facts = SegmentFacts::of(seg, &obs, conn);
                self.gate.hand_on(&facts);
                self.paws.on_segment_facts(&mut facts);
                wanted = true;
            }
            // The gate never leaves out a bare ACK an attempt could read.
            for conn in self.paws.attempts.keys() {
                assert!(self.gate.marked.contains(conn), "frame {}", self.frame);
            }
            wanted
        }

        /// A connection from `client` that the server closes first; the
        /// client's last TSval is `tsval` + 3.
        fn server_closes(&mut self, ms: i64, client: Endpoint, server: Endpoint, tsval: u32) {
            self.send(ms, client, server, F::SYN, 100, 0, tsval);
            self.send(ms + 1, server, client, F::SYN | F::ACK, 500, 101, 7000);
            self.send(ms + 2, client, server, F::ACK, 101, 501, tsval + 1);
            self.send(ms + 3, server, client, F::FIN | F::ACK, 501, 101, 7001);
            self.send(ms + 4, client, server, F::ACK, 101, 502, tsval + 2);
            self.send(ms + 5, client, server, F::FIN | F::ACK, 101, 502, tsval + 3);
            self.send(ms + 6, server, client, F::ACK, 502, 102, 7002);
        }
    }

    fn ep(s: &str) -> Endpoint {
        s.parse::<Endpoint>().unwrap()
    }

    /// `ms` milliseconds into the test's capture.
    fn at_ms(ms: i64) -> Timestamp {
        Timestamp::from_parts(1000, ms * 1_000_000)
    }

    /// A segment without options or payload from `ends.0` to `ends.1`.
    fn segment(
        frame: u64,
        ts: Timestamp,
        ends: (Endpoint, Endpoint),
        flags: u8,
        seq: u32,
        ack: u32,
    ) -> Segment {
        Segment {
            frame: FrameId(frame),
            ts,
            fragmentation: Default::default(),
            src: ends.0,
            dst: ends.1,
            seq: SeqNum(seq),
            ack: SeqNum(ack),
            flags: crate::decode::TcpFlags(flags),
            window: 1000,
            payload_len: 0,
            tsopt: None,
            ip_id: None,
            wscale: None,
        }
    }

    #[test]
    fn tombstones_follow_the_4_tuples_a_syn_reopened_not_every_closed_connection() {
        let mut run = Run::new();
        let server = ep("10.0.0.2:80");
        let client = |port: u16| ep(&format!("10.0.0.1:{port}"));
        for i in 0..3000u16 {
            run.server_closes(i64::from(i) * 10, client(20000 + i), server, 1000);
        }
        // 3000 sockets in TIME_WAIT, all in the tracker; none here.
        assert!(run.paws.tombs.is_empty());
        // The per-host stamp is one per pair of addresses.
        assert_eq!(run.paws.stamps.len(), 1);

        // A second host behind the same NAT address takes port 20005 with a
        // clock far behind: the server's socket turns the SYN away (PAWS).
        run.send(40_000, client(20005), server, F::SYN, 9000, 0, 50);
        assert_eq!(run.paws.tombs.len(), 1);
        let t = run.paws.tombs[&(client(20005), server)];
        assert_eq!(t.socket.holder, Side::Server);
        assert_eq!(t.socket.ts_recent, Some(TsVal(1003)));
        assert_eq!(t.until, t.socket.since.add_secs(60.0));
        let a = run
            .paws
            .attempts
            .values()
            .next()
            .expect("the SYN met the socket");
        assert_eq!(a.pending.map(|p| p.verdict), Some(Verdict::Paws));

        // A SYN ahead of ts_recent on another port is accepted.
        run.send(40_100, client(20006), server, F::SYN, 9000, 0, 2000);
        assert_eq!(run.paws.tombs.len(), 2);
        let accepted = run
            .paws
            .attempts
            .values()
            .filter(|a| a.pending.is_some_and(|p| p.verdict == Verdict::Accept))
            .count();
        assert_eq!(accepted, 1);
    }

    #[test]
    fn a_paws_reject_keeps_the_socket_marking_syns_after_its_first_end() {
        let mut run = Run::new();
        let (client, server) = (ep("10.0.0.1:20005"), ep("10.0.0.2:80"));
        run.server_closes(0, client, server, 1000);
        // The server entered TIME_WAIT at 6 ms (rcv_nxt 102, snd_nxt 502,
        // ts_recent 1003): a SYN with an older TSval is turned away, and
        // the server's ACK for the old connection re-arms the socket.
        run.send(40_000, client, server, F::SYN, 9000, 0, 50);
        let first = *run.paws.attempts.keys().next().expect("an attempt");
        assert!(run.gate.marked.contains(&first));
        let ack = |run: &mut Run, ms: i64| {
            run.frame += 1;
            let mut seg = segment(run.frame, at_ms(ms), (server, client), F::ACK, 502, 102);
            seg.tsopt = Some(TcpTimestamps {
                tsval: TsVal(7003),
                tsecr: TsVal(1003),
            });
            run.feed(&seg)
        };
        assert!(ack(&mut run, 40_001), "a marked connection's bare ACK");
        let t = run.paws.tombs[&(client, server)];
        assert_eq!(t.until, Timestamp::from_parts(1100, 1_000_000));
        // 64 s after the server's TIME_WAIT began, 24 after the reject: the
        // socket's first end has passed, the re-armed one not. A new SYN
        // meets it, and `Run::send` checks that the gate marked it.
        run.send(64_000, client, server, F::SYN, 20_000, 0, 60);
        let second = run
            .paws
            .attempts
            .iter()
            .find(|(_, a)| a.pending.is_some_and(|p| p.frame == FrameId(run.frame)))
            .map(|(c, _)| *c)
            .expect("the new SYN met the re-armed socket");
        assert_ne!(second, first, "a new connection");
        assert!(run.gate.marked.contains(&second));
        assert!(run.gate.sockets[&pair_hash((client, server))] >= t.until);
        // Their records handed on (the attempts end with them), the
        // connections' bare ACKs stay behind.
        for c in run.gate.marked.clone() {
            run.paws.attempts.remove(&c);
            run.gate.ended(c);
        }
        assert!(!ack(&mut run, 64_001));
    }

    #[test]
    fn a_syn_from_before_the_gates_purge_is_marked_whatever_its_map_says() {
        let mut gate = AttemptGate::new(&DetectConfig::default());
        let at = |s: i64| Timestamp::from_parts(s, 0);
        let key = |port: u16| (ep(&format!("10.0.0.1:{port}")), ep("10.0.0.2:80"));
        gate.newest = Some(at(1000));
        for port in 0..1024u16 {
            gate.extend(key(port), at(500));
        }
        assert!(gate.sockets.is_empty(), "ended before the newest segment");
        assert_eq!(gate.purged_before, Some(at(1000)));
        let syn = |gate: &mut AttemptGate, s: i64, conn: u32| {
            gate.hand_on(&SegmentFacts {
                seg: segment(1, at(s), key(7), F::SYN, 1, 0),
                conn: ConnId(conn),
                syn_retransmit: false,
                reuse: None,
                from_client: true,
                own_socket_at_dst: false,
                server_socket_opened: None,
                fin_case: None,
                left_out: false,
            });
            gate.marked.contains(&ConnId(conn))
        };
        // The capture's clock went back: port 7's socket may have been there.
        assert!(syn(&mut gate, 400, 1));
        assert!(!syn(&mut gate, 1001, 2));
    }

    #[test]
    fn a_socket_whose_window_passed_judges_nothing() {
        let mut run = Run::new();
        let (client, server) = (ep("10.0.0.1:20000"), ep("10.0.0.2:80"));
        run.server_closes(0, client, server, 1000);
        // 61 s after the server's ACK: TIME_WAIT is over.
        run.send(61_007, client, server, F::SYN, 9000, 0, 50);
        assert!(run.paws.attempts.is_empty());
    }
}
