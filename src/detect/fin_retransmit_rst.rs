//! `fin-retransmit-rst`: the passive closer retransmits its FIN and the
//! active closer answers with RST.
//!
//! RFC 9293 §3.6: the active closer ACKs the peer's FIN and waits in
//! TIME_WAIT for 2·MSL, so that a lost final ACK can be sent again when the
//! FIN is retransmitted. Linux answers a segment for which no socket exists
//! with RST (tcp_v4_send_reset). A FIN retransmitted into an RST therefore
//! proves the active closer's TIME_WAIT socket was gone: not created
//! (`tcp_max_tw_buckets` reached, TcpExtTCPTimeWaitOverflow), killed
//! (`tcp_tw_recycle` before 4.12, SO_LINGER 0) or never needed because the
//! application aborted.
//!
//! Fires when: the first RST from the side that sent the first FIN comes
//! after the other side sent its own FIN at least twice with the same
//! sequence number: a TIME_WAIT ACK was due and an RST came instead. Does
//! not fire when: the RST answers the first FIN (no retransmission; that
//! is `abortive-close`), follows a retransmission of data without FIN, or
//! an earlier RST from the closer explains it: Linux resets a socket that
//! was closed (not just shut down for writing) when data arrives after its
//! FIN (tcp_rcv_state_process, FIN_WAIT1/FIN_WAIT2 with RCV_SHUTDOWN,
//! TcpExtTCPAbortOnData), and every later segment of the peer, its FIN
//! retransmissions included, then meets no socket; that is an
//! `abortive-close` (data after close), not a missing TIME_WAIT socket.

use super::{
    Claims, Context, Detector, EarliestRows, EvidenceSet, FactsWanted, Finding, FindingKind, Keyed,
    KindSpec, SegmentFacts, Severity, findings_of, ip_filter, plural,
};
use crate::decode::Segment;
use crate::flow::Side;
use crate::frame::FrameId;
use crate::time::Timestamp;
use crate::track::{ConnId, Connection, ConnectionRecord, Observation};
use rustc_hash::FxHashMap as HashMap;
use std::collections::BTreeMap;
use std::net::IpAddr;

pub const SPEC: KindSpec = KindSpec {
    name: "fin-retransmit-rst",
    explanation: "The passive closer waits in LAST_ACK until its FIN is acknowledged. The active closer's \
     final ACK did not arrive, so the FIN was retransmitted; a TIME_WAIT socket would have \
     answered it with the ACK again (that is what TIME_WAIT is for), but the active closer \
     answered with RST: it had no socket for the 4-tuple. Linux skips the TIME_WAIT socket when \
     net.ipv4.tcp_max_tw_buckets is reached (nstat TcpExtTCPTimeWaitOverflow), and kernels \
     before 4.12 killed it early with tcp_tw_recycle; SO_LINGER 0 resets instead of closing. \
     The peer sees a reset instead of a clean close, and on a lossy path its LAST_ACK sockets \
     linger until their retransmissions give up.",
    advice: "On the active closer, check `nstat -az TcpExtTCPTimeWaitOverflow` and `ss -tan state \
     time-wait | wc -l` against `sysctl net.ipv4.tcp_max_tw_buckets`; raise the limit, or \
     better make fewer connections end on this side: reuse connections (pool, keep-alive), or \
     let the peer close first. Never use SO_LINGER 0 for ordinary closes.",
    doc: include_str!("../../docs/findings/fin-retransmit-rst.md"),
};

/// A case on a connection still open: what its evidence row needs, the
/// note unformatted. Cases wait here until the connection ends (past its
/// TIME_WAIT), so a formatted note per case would cost about a hundred
/// bytes for every lossy close in the last minute; it is formatted only
/// when the finding's evidence keeps the row. (The closer's address is the
/// record's: [`Case::closer`] names its side.)
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Case {
    /// The side that sent the first FIN and then the RST.
    closer: Side,
    /// How often the passive closer sent its FIN.
    fin_count: u32,
    at: Timestamp,
    /// Ascending.
    frames: Box<[FrameId]>,
}

impl Case {
    fn note(&self) -> String {
        format!(
            "the {} sent its FIN {} times; the {} answered with RST, not the ACK a TIME_WAIT \
             socket sends",
            self.closer.peer(),
            self.fin_count,
            self.closer
        )
    }
}

/// A closer's cases wait packed, this many at most; then they join its
/// earliest [`MAX_EVIDENCE`](super::MAX_EVIDENCE) rows and the rest,
/// only counted and listed. Most closers of a busy server have a few
/// cases, which never leave the packed list: packed (about 16 bytes a
/// case) they cost a tenth of what rows do (a row, its frames' box and
/// the list's slack, about 150 bytes); this many packed take about what a
/// closer's rows take once full.
const PACKED_CASES: u32 = 256;

/// One closer's cases: the last up to [`PACKED_CASES`] packed in the order
/// they came; those before them, its earliest ones with their notes
/// unformatted (about 60 bytes a row instead of 250 with the note and the
/// row), and every other case counted and listed, never a row. The
/// finding's evidence is built from all of them as if every case had been
/// added to one [`EvidenceSet`] in the order they came.
#[derive(Default)]
struct ByCloser {
    packed: packed::Cases,
    /// Cases of connections that ended, while they may be among the first
    /// [`MAX_EVIDENCE`](super::MAX_EVIDENCE) rows (ordered as
    /// [`EvidenceSet`]'s rows).
    kept: EarliestRows<Case>,
    rest: EvidenceSet,
    added: u64,
}

impl ByCloser {
    fn add(&mut self, conn: ConnId, case: Case) {
        self.packed.push(conn, &case);
        if self.packed.len() >= PACKED_CASES {
            self.unpack();
        }
    }

    /// Adds the packed cases to the rows and the rest, in the order they
    /// came, as if they had never been packed.
    fn unpack(&mut self) {
        for (conn, case) in std::mem::take(&mut self.packed).to_vec() {
            self.add_unpacked(conn, case);
        }
    }

    fn add_unpacked(&mut self, conn: ConnId, case: Case) {
        let key = (case.at, conn, self.added);
        self.added += 1;
        let out = if self.kept.keeps(&key) {
            self.kept.push(key, case)
        } else {
            Some(Keyed { key, item: case })
        };
        if let Some(out) = out {
            self.rest
                .add_unkept(out.key.1, out.item.at, &out.item.frames);
        }
    }

    fn evidence(mut self) -> EvidenceSet {
        self.unpack();
        let mut evidence = EvidenceSet::new();
        for k in self.kept.into_sorted() {
            let c = &k.item;
            evidence.add(k.key.1, c.at, &c.frames, || c.note());
        }
        evidence.absorb(self.rest);
        evidence
    }
}

/// Cases packed ([`varint`](super::varint)), each against the one before.
mod packed {
    use super::Case;
    use crate::detect::varint::{get, get_delta, get_signed, put, put_delta, put_signed, reserve};
    use crate::flow::Side;
    use crate::frame::FrameId;
    use crate::time::Timestamp;
    use crate::track::ConnId;

    /// Each case is varints: a head (how often the FIN was sent, the
    /// closer's side, whether the time is in whole microseconds), its time,
    /// connection and first frame (differences from the last case's),
    /// the number of frames and each later frame's difference from the
    /// one before it (frames ascend).
    #[derive(Default)]
    pub(super) struct Cases {
        buf: Vec<u8>,
        n: u32,
        /// The last case's time, connection and first frame.
        prev: (u64, u64, u64),
    }

    const SERVER: u64 = 1;
    const AT_US: u64 = 2;

    impl Cases {
        pub(super) fn len(&self) -> u32 {
            self.n
        }

        pub(super) fn push(&mut self, conn: ConnId, case: &Case) {
            reserve(&mut self.buf, 16 + 10 * case.frames.len());
            let at = case.at.0 as u64;
            let d = at.wrapping_sub(self.prev.0) as i64;
            let mut head = u64::from(case.fin_count) << 2;
            if case.closer == Side::Server {
                head |= SERVER;
            }
            if d % 1000 == 0 {
                head |= AT_US;
            }
            put(&mut self.buf, head);
            put_signed(&mut self.buf, if head & AT_US != 0 { d / 1000 } else { d });
            put_delta(&mut self.buf, self.prev.1, u64::from(conn.0));
            put(&mut self.buf, case.frames.len() as u64);
            let first = case.frames.first().map_or(self.prev.2, |f| f.0);
            let mut last = self.prev.2;
            for f in &case.frames {
                put_delta(&mut self.buf, last, f.0);
                last = f.0;
            }
            self.prev = (at, u64::from(conn.0), first);
            self.n += 1;
        }

        /// The cases in the order pushed.
        pub(super) fn to_vec(&self) -> Vec<(ConnId, Case)> {
            let mut out = Vec::with_capacity(self.n as usize);
            let (mut at, mut prev) = (0, (0u64, 0u64, 0u64));
            while at < self.buf.len() {
                let head = get(&self.buf, &mut at);
                let mut d = get_signed(&self.buf, &mut at);
                if head & AT_US != 0 {
                    d = d.wrapping_mul(1000);
                }
                let time = prev.0.wrapping_add(d as u64);
                let conn = get_delta(&self.buf, &mut at, prev.1);
                let n = get(&self.buf, &mut at) as usize;
                let mut frames = Vec::with_capacity(n);
                let mut last = prev.2;
                for _ in 0..n {
                    last = get_delta(&self.buf, &mut at, last);
                    frames.push(FrameId(last));
                }
                let first = frames.first().map_or(prev.2, |f| f.0);
                out.push((
                    ConnId(conn as u32),
                    Case {
                        closer: if head & SERVER != 0 {
                            Side::Server
                        } else {
                            Side::Client
                        },
                        fin_count: (head >> 2) as u32,
                        at: Timestamp(time as i64),
                        frames: frames.into_boxed_slice(),
                    },
                ));
                prev = (time, conn, first);
            }
            out
        }
    }
}

pub(crate) fn case_of(seg: &Segment, obs: &Observation, conn: &Connection) -> Option<Case> {
    if !seg.flags.rst() {
        return None;
    }
    let closing = conn.closing()?;
    let closer = closing.first_fin_by?;
    if obs.sender != closer {
        return None;
    }
    // Only the closer's first RST can tell: after an earlier one (an
    // abort) the socket is gone for a reason of its own.
    if conn.rst_of(closer).is_some_and(|r| r.frame() != seg.frame) {
        return None;
    }
    let passive = closing.side(closer.peer());
    if passive.fin_count < 2 {
        return None;
    }
    let mut frames: Vec<FrameId> = closing
        .side(closer)
        .fin_first
        .map(|f| f.frame())
        .into_iter()
        .chain(passive.fin_frames.iter())
        .collect();
    frames.push(seg.frame);
    frames.sort_unstable();
    let at = closing.side(closer).fin_first.map_or(seg.ts, |f| f.at());
    Some(Case {
        closer,
        fin_count: passive.fin_count,
        at,
        frames: frames.into_boxed_slice(),
    })
}

#[derive(Default)]
pub struct FinRetransmitRst {
    /// Cases on connections still open.
    cases: HashMap<ConnId, Box<Case>>,
    by_closer: BTreeMap<IpAddr, ByCloser>,
}

impl Detector for FinRetransmitRst {
    fn kinds(&self) -> &'static [FindingKind] {
        &[FindingKind::FinRetransmitRst]
    }

    fn facts_wanted(&self) -> FactsWanted {
        FactsWanted::FinCase
    }

    fn on_segment_facts(&mut self, facts: &mut SegmentFacts) {
        if !self.cases.contains_key(&facts.conn)
            && let Some(case) = facts.fin_case.take()
        {
            self.cases.insert(facts.conn, case);
        }
    }

    fn on_connection_end(&mut self, c: &ConnectionRecord, claims: &mut Claims) {
        if self.cases.is_empty() {
            return;
        }
        if let Some(case) = self.cases.remove(&c.id) {
            claims.claim(FindingKind::FinRetransmitRst, c.id);
            self.by_closer
                .entry(c.endpoint(case.closer).ip())
                .or_default()
                .add(c.id, *case);
        }
    }

    fn finish(&mut self, _ctx: &Context<'_>) -> Vec<Finding> {
        // One finding per closer: thousands on a busy capture, made on two
        // threads when there are many (`findings_of`).
        let closers: Vec<(IpAddr, ByCloser)> =
            std::mem::take(&mut self.by_closer).into_iter().collect();
        findings_of(closers, |(closer, cases)| {
            let evidence = cases.evidence();
            let n = evidence.count();
            Some(
                Finding::new(
                    FindingKind::FinRetransmitRst,
                    Severity::Warning,
                    format!(
                        "{}: the peer retransmitted its FIN and {closer} (the active closer) \
                         answered with RST: its TIME_WAIT socket was gone",
                        plural(n, "connection")
                    ),
                    Some(closer.to_string()),
                    evidence,
                )
                .with_broad_filter(format!(
                    "{} && tcp.flags.reset == 1",
                    ip_filter("src", closer)
                )),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::MAX_EVIDENCE;

    /// Cases of one closer kept apart (the earliest as compact rows, the
    /// rest counted and listed) give the finding that adding each case to
    /// one EvidenceSet gave: rows, notes, lists, count and span; past
    /// MAX_EVIDENCE rows and MAX_LISTED ids, arriving out of time order.
    #[test]
    fn kept_apart_equals_adding_every_case() {
        for n in [1u32, 3, 50, 51, 256, 400, 2_600] {
            let mut x: u64 = u64::from(n);
            let mut by = ByCloser::default();
            let mut every = EvidenceSet::new();
            for i in 0..n {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // Ids in a scrambled order, times that mostly follow
                // them, some cases at the same instant.
                let id = ConnId((i.wrapping_mul(2_654_435_761)) % 100_000);
                let at = Timestamp(i64::from(id.0) * 1_000 + (x >> 54) as i64 * 7_000);
                let case = Case {
                    closer: if x & 1 == 0 {
                        Side::Client
                    } else {
                        Side::Server
                    },
                    fin_count: 2 + (x >> 60) as u32,
                    at,
                    frames: [u64::from(id.0) * 3, u64::from(id.0) * 3 + 1 + (x >> 62)]
                        .map(FrameId)
                        .into(),
                };
                every.add(id, at, &case.frames, || case.note());
                by.add(id, case);
            }
            let f = |e: EvidenceSet| {
                Finding::new(
                    FindingKind::FinRetransmitRst,
                    Severity::Warning,
                    String::new(),
                    None,
                    e,
                )
            };
            let (got, want) = (f(by.evidence()), f(every));
            assert_eq!(got.count, u64::from(n));
            assert_eq!(
                (got.count, got.first, got.last),
                (want.count, want.first, want.last)
            );
            assert_eq!(got.connections, want.connections);
            assert_eq!(got.frames, want.frames);
            assert_eq!(got.display_filter, want.display_filter);
            let rows = |f: &Finding| {
                f.evidence
                    .iter()
                    .map(|r| format!("{} {:?} {:?} {}", r.connection, r.frames, r.at, r.note))
                    .collect::<Vec<_>>()
            };
            assert_eq!(rows(&got), rows(&want), "n {n}");
            assert_eq!(got.evidence.len(), (n as usize).min(MAX_EVIDENCE));
        }
    }

    /// Packed cases come back as pushed, in order: times in nanoseconds
    /// or whole microseconds, going back as well as forward, any number
    /// of frames (none too), ids and frames far apart.
    #[test]
    fn packed_cases_come_back_as_pushed() {
        let mut x: u64 = 7;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 16
        };
        let mut cases = packed::Cases::default();
        let mut want = Vec::new();
        for i in 0..300u64 {
            let r = next();
            let at = 1_700_000_000_000_000_000 + (i as i64) * 2_000_000_000
                - (r % 5_000_000_000) as i64
                + if r & 1 == 0 { 0 } else { (r % 999) as i64 };
            let first = if i == 7 {
                u64::MAX - 3
            } else {
                i * 1000 + r % 700
            };
            let frames: Vec<FrameId> = (0..(r % 7))
                .scan(first, |f, k| {
                    *f = f.saturating_add(k * (r % 13));
                    Some(FrameId(*f))
                })
                .collect();
            let case = Case {
                closer: if r & 2 == 0 {
                    Side::Client
                } else {
                    Side::Server
                },
                fin_count: (r % 40) as u32 + if i == 9 { u32::MAX - 40 } else { 2 },
                at: Timestamp(at),
                frames: frames.into(),
            };
            let conn = ConnId(if i == 11 {
                u32::MAX
            } else {
                (r % 100_000) as u32
            });
            cases.push(conn, &case);
            want.push((conn, case));
        }
        assert_eq!(cases.len(), 300);
        assert_eq!(cases.to_vec(), want);
    }
}
