//! `connection-churn`: many short connections between one client and one
//! server:port, each carrying little.
//!
//! Every TCP connection costs a handshake (one round trip before the first
//! byte), a teardown, at least seven packets of overhead, and a TIME_WAIT
//! socket on the side that closes first for 60 s. A connection pool or
//! HTTP/Redis keep-alive pays that once.
//!
//! Fires when: at least 20 connections with a completed handshake go from
//! one client IP to one server ip:port, their median duration is under
//! 1 s and their median payload under 16 KiB. Does not fire for a few
//! connections, or for long or bulk ones (a pool would not change them).
//!
//! Severity weighs the rate, because the cost is a rate: a few connections
//! a minute cost nothing (info, with the rate at which the pattern starts
//! to hurt); from [`WARN_RATE`] a second on it is a warning. The rate is
//! connections over the span from the first one's start to the last one's
//! end.

use super::{
    Claims, Context, Detector, EvidenceSet, FINDINGS_ON_TWO_THREADS, Finding, FindingKind, Groups,
    KindSpec, MAX_EVIDENCE, MAX_LISTED, Severity, findings_of, fixed, pair, secs, sorted_if,
};
use crate::flow::Endpoint;
use crate::frame::FrameId;
use crate::time::Timestamp;
use crate::track::{Closer, ConnId, ConnectionRecord, HandshakeState};
use arrayvec::ArrayString;
use compact_str::CompactString;
use sketches_ddsketch::{Config, DDSketch};
use std::collections::BinaryHeap;
use std::net::IpAddr;

pub const SPEC: KindSpec = KindSpec {
    name: "connection-churn",
    explanation: "Each new TCP connection costs a three-way handshake (a round trip before the first \
     request), a four-segment teardown and a TIME_WAIT socket for 60 s on the side that closes \
     first. Opening one connection per request multiplies that cost by the request rate and \
     is the usual cause of TIME_WAIT pile-ups and ephemeral-port exhaustion.",
    advice: "Reuse connections: a connection pool in the client (database and Redis clients have one), \
     HTTP keep-alive (HTTP/1.1 default; check for `Connection: close`), or a multiplexed \
     protocol (HTTP/2, gRPC). Size the pool's idle timeout below the server's keep-alive \
     timeout so the client, not the server, closes idle connections.",
    doc: include_str!("../../docs/findings/connection-churn.md"),
};

/// Fewer connections than this between one pair are not churn.
pub const MIN_CONNECTIONS: usize = 20;
const MAX_MEDIAN_DURATION_S: f64 = 1.0;
/// Connections a second from which churn is a warning: 600 TIME_WAIT
/// sockets held at once (at 60 s each) and ten extra handshake round trips
/// a second, where a pool would hold one connection. Below it the same
/// pattern is info.
pub const WARN_RATE: f64 = 10.0;
const MAX_MEDIAN_BYTES: u64 = 16 * 1024;

/// Per client IP and server ip:port, over connections with a complete
/// handshake: counts, and what the finding prints of the connections
/// ([`Conns`]): up to [`EXACT_MEDIANS`] of them every one, packed; past
/// that the medians' sketches, the earliest [`MAX_EVIDENCE`] connections
/// (the evidence rows, if the pair turns out to churn) and the
/// [`MAX_LISTED`] smallest ids with their first frames (the evidence
/// lists), packed. Memory per pair is bounded, whatever the length of the
/// capture; rows are formatted only for the pairs that fire.
#[derive(Default)]
pub struct ConnectionChurn {
    pairs: Groups<(IpAddr, Endpoint), Pair>,
}

#[derive(Default)]
struct Pair {
    n: u64,
    /// First and last connection start, and the last end (set by the
    /// pair's first connection: a pair exists once it has one).
    first: Timestamp,
    last: Timestamp,
    end: Timestamp,
    tw_client: u64,
    tw_server: u64,
    overhead: u64,
    conns: Conns,
}

impl Pair {
    /// Enough connections to be churn: a finding is made for it, unless
    /// its medians say the connections are not short ones.
    fn may_fire(&self) -> bool {
        self.n >= MIN_CONNECTIONS as u64
    }
}

/// One connection of a pair, as the evidence and the medians need it.
#[derive(PartialEq, Debug, Clone, Copy)]
struct Sample {
    start: Timestamp,
    id: ConnId,
    first_frame: FrameId,
    duration_s: f64,
    bytes: u64,
}

impl Eq for Sample {}
impl PartialOrd for Sample {
    fn partial_cmp(&self, other: &Sample) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Sample {
    /// The evidence's row order: time, then connection.
    fn cmp(&self, other: &Sample) -> std::cmp::Ordering {
        (self.start, self.id).cmp(&(other.start, other.id))
    }
}

/// Exact values are kept for the medians up to this many connections per
/// pair; past it, a DDSketch of each (relative error 1 %), and the report
/// says "about". A connection packed takes about 15 bytes, so this many
/// take about what the sketches, the evidence rows and the id list that
/// replace them take (8.7 KB a pair on a 2 GB capture, valgrind massif):
/// below it, exact medians cost less memory than estimates. (At 128, a
/// 2 GB capture of 2,000 clients at 1,500 connections/s, most pairs with
/// 130-190 connections, peaked at 72 MB instead of 64.)
pub const EXACT_MEDIANS: usize = 512;

/// What a pair keeps of its connections.
enum Conns {
    /// Every connection so far (at most [`EXACT_MEDIANS`]), in arrival
    /// order, packed (about 15 bytes each instead of the 70 that a row,
    /// a list entry and a median value took): the rows, the lists and the
    /// exact medians all come out of it.
    Every(packed::Samples),
    /// Past [`EXACT_MEDIANS`]: only what the finding prints.
    Bounded(Box<Bounded>),
}

impl Default for Conns {
    fn default() -> Conns {
        Conns::Every(packed::Samples::default())
    }
}

/// A pair's connections past [`EXACT_MEDIANS`].
struct Bounded {
    /// Sketches of the durations and payloads.
    medians: (DDSketch, DDSketch),
    /// A max-heap of the earliest connections by (start, id).
    rows: BinaryHeap<Sample>,
    /// The [`MAX_LISTED`] smallest ids with their first frames.
    listed: packed::Smallest,
}

impl Bounded {
    /// One connection; `may_be_row` false when it is known not to be
    /// among the earliest (its start was not kept).
    fn add(&mut self, s: Sample, may_be_row: bool) {
        self.medians.0.add(s.duration_s);
        self.medians.1.add(s.bytes as f64);
        if !may_be_row {
        } else if self.rows.len() < MAX_EVIDENCE {
            self.rows.push(s);
        } else if self.rows.peek().is_some_and(|latest| s < *latest) {
            self.rows.pop();
            self.rows.push(s);
        }
        self.listed.push(s.id, s.first_frame);
    }
}

impl Conns {
    fn add(&mut self, s: Sample) {
        match self {
            Conns::Every(v) if v.len() < EXACT_MEDIANS => v.push(&s),
            Conns::Every(v) => {
                let mut b = Bounded {
                    medians: (
                        DDSketch::new(Config::defaults()),
                        DDSketch::new(Config::defaults()),
                    ),
                    rows: BinaryHeap::with_capacity(MAX_EVIDENCE),
                    listed: packed::Smallest::default(),
                };
                // In arrival order, as if they had been added one by one.
                for (x, may_be_row) in v.to_vec() {
                    b.add(x, may_be_row);
                }
                b.add(s, true);
                *self = Conns::Bounded(Box::new(b));
            }
            Conns::Bounded(b) => b.add(s, true),
        }
    }

    /// The median duration and payload (the upper middle value when
    /// exact) and whether they are estimates; the earliest
    /// [`MAX_EVIDENCE`] connections by (start, id); the [`MAX_LISTED`]
    /// smallest ids with their first frames, ascending.
    #[allow(clippy::type_complexity)]
    fn finish(self) -> ((f64, f64, bool), Vec<Sample>, Vec<(ConnId, FrameId)>) {
        match self {
            Conns::Every(v) => {
                let (all, may_be_row): (Vec<Sample>, Vec<bool>) = v.to_vec().into_iter().unzip();
                let medians = (
                    median(all.iter().map(|s| s.duration_s).collect()),
                    median(all.iter().map(|s| s.bytes as f64).collect()),
                    false,
                );
                let mut listed: Vec<(ConnId, FrameId)> =
                    all.iter().map(|s| (s.id, s.first_frame)).collect();
                listed.sort_unstable();
                listed.truncate(MAX_LISTED);
                let mut rows: Vec<Sample> = all
                    .into_iter()
                    .zip(may_be_row)
                    .filter_map(|(s, r)| r.then_some(s))
                    .collect();
                rows.sort_unstable();
                rows.truncate(MAX_EVIDENCE);
                (medians, rows, listed)
            }
            Conns::Bounded(b) => {
                let Bounded {
                    medians,
                    rows,
                    listed,
                } = *b;
                let q = |k: &DDSketch| k.quantile(0.5).ok().flatten().unwrap_or(0.0);
                (
                    (q(&medians.0), q(&medians.1), true),
                    rows.into_sorted_vec(),
                    listed.into_sorted(),
                )
            }
        }
    }
}

/// Byte-packed lists of a pair's connections ([`varint`](super::varint)).
mod packed {
    use super::{ConnId, MAX_EVIDENCE, MAX_LISTED, Sample};
    use crate::detect::varint::{get, get_delta, get_signed, put, put_delta, put_signed, reserve};
    use crate::frame::FrameId;
    use crate::time::Timestamp;
    use arrayvec::ArrayVec;

    /// Samples in the order pushed. Each is varints: a head (the
    /// duration and three flags), start (difference from the last start
    /// kept, in microseconds when exact), id and frame (differences from
    /// the last sample) and payload. The duration is nanoseconds, in
    /// microseconds when exact, plus one, shifted past the flags: a short
    /// one shares the head's bytes with them (a flags byte of its own was
    /// a tenth of a sample); 0 there says the f64's bits follow the head.
    /// A sample later than each of the first [`MAX_EVIDENCE`] (by start,
    /// then id) cannot be one of the earliest, the evidence rows: its
    /// start is not kept. Connections of a pair mostly end in the order
    /// they started, so past the first rows most are such.
    #[derive(Default)]
    pub struct Samples {
        buf: Vec<u8>,
        n: u32,
        /// The last start kept, and the last sample's id and frame, which
        /// the next one is encoded against.
        prev: (u64, u64, u64),
        /// The latest (start, id) of the first MAX_EVIDENCE samples.
        first_rows: (Timestamp, ConnId),
    }

    /// The head's flags, below the duration.
    const START: u64 = 1;
    const START_US: u64 = 2;
    const DURATION_US: u64 = 4;
    const FLAGS: u32 = 3;
    /// Durations up to this many units fit beside the flags.
    const MAX_PACKED: u64 = (u64::MAX >> FLAGS) - 1;

    impl Samples {
        pub fn len(&self) -> usize {
            self.n as usize
        }

        /// Bytes the packed samples take.
        #[cfg(test)]
        pub fn bytes(&self) -> usize {
            self.buf.len()
        }

        pub fn push(&mut self, s: &Sample) {
            reserve(&mut self.buf, 40);
            let key = (s.start, s.id);
            let may_be_row = (self.n as usize) < MAX_EVIDENCE || key < self.first_rows;
            if (self.n as usize) < MAX_EVIDENCE {
                self.first_rows = self.first_rows.max(key);
            }
            let mut flags = 0;
            let (start, id, frame) = (s.start.0 as u64, u64::from(s.id.0), s.first_frame.0);
            let d = start.wrapping_sub(self.prev.0) as i64;
            if may_be_row {
                flags |= START;
                if d % 1000 == 0 {
                    flags |= START_US;
                }
            }
            // A duration is nanoseconds over 1e9 (Timestamp::secs_since):
            // those nanoseconds, when they give back exactly this f64;
            // otherwise its bits.
            let ns = (s.duration_s * 1e9).round();
            let mut exact = None;
            if (0.0..4e18).contains(&ns)
                && ((ns as u64) as f64 / 1e9).to_bits() == s.duration_s.to_bits()
            {
                let ns = ns as u64;
                exact = Some(if ns.is_multiple_of(1000) {
                    flags |= DURATION_US;
                    ns / 1000
                } else {
                    ns
                });
            }
            match exact {
                Some(units) if units <= MAX_PACKED => {
                    put(&mut self.buf, ((units + 1) << FLAGS) | flags);
                }
                _ => {
                    put(&mut self.buf, flags & !DURATION_US);
                    self.buf
                        .extend_from_slice(&s.duration_s.to_bits().to_le_bytes());
                }
            }
            if may_be_row {
                put_signed(
                    &mut self.buf,
                    if flags & START_US != 0 { d / 1000 } else { d },
                );
                self.prev.0 = start;
            }
            put_delta(&mut self.buf, self.prev.1, id);
            put_delta(&mut self.buf, self.prev.2, frame);
            put(&mut self.buf, s.bytes);
            self.prev.1 = id;
            self.prev.2 = frame;
            self.n += 1;
        }

        /// The samples in the order pushed, each with whether it may be
        /// one of the earliest (else its start is not known and is 0).
        pub fn to_vec(&self) -> Vec<(Sample, bool)> {
            let mut out = Vec::with_capacity(self.len());
            let (mut at, mut prev) = (0, (0u64, 0u64, 0u64));
            while at < self.buf.len() {
                let head = get(&self.buf, &mut at);
                let units = head >> FLAGS;
                let duration_s = if units == 0 {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&self.buf[at..at + 8]);
                    at += 8;
                    f64::from_bits(u64::from_le_bytes(b))
                } else if head & DURATION_US != 0 {
                    ((units - 1) * 1000) as f64 / 1e9
                } else {
                    (units - 1) as f64 / 1e9
                };
                let mut start = 0;
                if head & START != 0 {
                    let mut d = get_signed(&self.buf, &mut at);
                    if head & START_US != 0 {
                        d *= 1000;
                    }
                    start = prev.0.wrapping_add(d as u64);
                    prev.0 = start;
                }
                let id = get_delta(&self.buf, &mut at, prev.1);
                let frame = get_delta(&self.buf, &mut at, prev.2);
                let bytes = get(&self.buf, &mut at);
                out.push((
                    Sample {
                        start: Timestamp(start as i64),
                        id: ConnId(id as u32),
                        first_frame: FrameId(frame),
                        duration_s,
                        bytes,
                    },
                    head & START != 0,
                ));
                prev.1 = id;
                prev.2 = frame;
            }
            out
        }
    }

    /// The [`MAX_LISTED`] smallest ids pushed, each with its frame: the
    /// kept ones packed in id order, the newest few unsorted beside them
    /// until there are [`TAIL`].
    #[derive(Default)]
    pub struct Smallest {
        packed: Vec<u8>,
        n: usize,
        /// The last packed id and frame, which the next is encoded against.
        last: (u64, u64),
        /// The largest id kept (packed or in `tail`).
        max: ConnId,
        tail: Vec<(ConnId, FrameId)>,
        /// Where each [`STRIDE`]th packed entry starts, and the id and
        /// frame before it: a merge decodes from the last one below the
        /// tail, not from the first entry (a thousand varint pairs decoded
        /// for each tail that came out of order, most of the merge). In
        /// place: an allocation of their own cost each pair 0.2 KB more.
        marks: ArrayVec<Mark, MARKS>,
    }

    const TAIL: usize = 32;

    /// Packed entries between two [`Mark`]s.
    const STRIDE: usize = 128;

    /// Marks of a full list.
    const MARKS: usize = MAX_LISTED.div_ceil(STRIDE);

    /// 16 bytes: a packed list is a few kilobytes, ids are 32 bits.
    #[derive(Clone, Copy, Default)]
    struct Mark {
        at: u32,
        id: u32,
        frame: u64,
    }

    impl Mark {
        fn at(&self) -> usize {
            self.at as usize
        }

        /// The id and frame of the entry before it, which its first is
        /// encoded against.
        fn before(&self) -> (u64, u64) {
            (u64::from(self.id), self.frame)
        }
    }

    impl Smallest {
        /// Ids are distinct. Ids come nearly in order, so past the first
        /// MAX_LISTED nearly every one is larger than all those kept and
        /// is not kept.
        pub fn push(&mut self, id: ConnId, frame: FrameId) {
            if self.n + self.tail.len() < MAX_LISTED || id < self.max {
                self.tail.push((id, frame));
                self.max = self.max.max(id);
                if self.tail.len() >= TAIL {
                    self.flush();
                }
            }
        }

        /// Moves the tail into the packed list. A tail wholly above what
        /// is packed (ids nearly in order: the usual case) is appended in
        /// order; otherwise both are merged and packed again. (Sorting
        /// every kept entry each time, a thousand for every 32 pushed, was
        /// a sixth of the folding thread on 100M.)
        fn flush(&mut self) {
            let mut tail = std::mem::take(&mut self.tail);
            tail.sort_unstable();
            if self.n == 0 || tail.first().is_some_and(|f| u64::from(f.0.0) > self.last.0) {
                let room = MAX_LISTED - self.n.min(MAX_LISTED);
                let kept = &tail[..tail.len().min(room)];
                reserve(&mut self.packed, kept.len() * 8);
                self.append(kept);
            } else {
                self.merge(&tail);
            }
        }

        /// Merges an ascending `tail` into the packed entries: those below
        /// its first stay packed as they are, the rest are written again
        /// after them (re-packing the whole list, a thousand entries for
        /// every 32 pushed out of order, was half of the merge).
        fn merge(&mut self, tail: &[(ConnId, FrameId)]) {
            let first = tail.first().map_or(ConnId(0), |f| f.0);
            // Every entry before the last mark below the tail's first is
            // below it too (ids ascend): decoding starts there.
            let m = self
                .marks
                .partition_point(|m| m.id < first.0)
                .saturating_sub(1);
            let start = self.marks.get(m).copied().unwrap_or_default();
            // The last entry below the tail's first, and how many there are.
            let (mut below, mut kept) = (start.before(), m * STRIDE);
            // Where the first entry not below it starts, and the entries
            // from there on.
            let mut cut = None;
            let mut rest = Vec::new();
            for (entry_at, (id, frame)) in self.entries_from(start) {
                if cut.is_none() && ConnId(id as u32) < first {
                    below = (id, frame);
                    kept += 1;
                    continue;
                }
                if cut.is_none() {
                    cut = Some(entry_at);
                    rest.reserve(self.n - kept);
                }
                rest.push((ConnId(id as u32), FrameId(frame)));
            }
            let all = merged(rest, tail, MAX_LISTED - kept);
            let cut = cut.unwrap_or(self.packed.len());
            self.packed.truncate(cut);
            self.marks.truncate(kept.div_ceil(STRIDE));
            (self.last, self.n) = (below, kept);
            self.append(&all);
            self.packed.shrink_to_fit();
        }

        /// Packs `entries`, ascending and above every packed one, after
        /// the last.
        fn append(&mut self, entries: &[(ConnId, FrameId)]) {
            for (k, &(id, FrameId(frame))) in (self.n..).zip(entries) {
                if k.is_multiple_of(STRIDE) {
                    self.marks.push(Mark {
                        at: self.packed.len() as u32,
                        id: self.last.0 as u32,
                        frame: self.last.1,
                    });
                }
                put_delta(&mut self.packed, self.last.0, u64::from(id.0));
                put_delta(&mut self.packed, self.last.1, frame);
                self.last = (u64::from(id.0), frame);
            }
            self.n += entries.len();
            self.max = ConnId(self.last.0 as u32);
        }

        /// The packed entries from `mark` on, ascending, each with where
        /// it starts.
        fn entries_from(&self, mark: Mark) -> impl Iterator<Item = (usize, (u64, u64))> + '_ {
            let (mut at, mut prev) = (mark.at(), mark.before());
            std::iter::from_fn(move || {
                if at >= self.packed.len() {
                    return None;
                }
                let entry_at = at;
                let id = get_delta(&self.packed, &mut at, prev.0);
                let frame = get_delta(&self.packed, &mut at, prev.1);
                prev = (id, frame);
                Some((entry_at, prev))
            })
        }

        /// The packed entries, ascending.
        fn unpacked(&self) -> Vec<(ConnId, FrameId)> {
            let mut all = Vec::with_capacity(self.n + TAIL);
            all.extend(
                self.entries_from(Mark::default())
                    .map(|(_, (id, frame))| (ConnId(id as u32), FrameId(frame))),
            );
            all
        }

        /// Every kept entry, ascending, cut to MAX_LISTED.
        pub fn into_sorted(mut self) -> Vec<(ConnId, FrameId)> {
            let mut tail = std::mem::take(&mut self.tail);
            tail.sort_unstable();
            merged(self.unpacked(), &tail, MAX_LISTED)
        }
    }

    /// Two ascending lists of distinct entries as one, cut to `most`.
    fn merged(
        packed: Vec<(ConnId, FrameId)>,
        tail: &[(ConnId, FrameId)],
        most: usize,
    ) -> Vec<(ConnId, FrameId)> {
        let mut all = Vec::with_capacity((packed.len() + tail.len()).min(most));
        let (mut a, mut b) = (
            packed.into_iter().peekable(),
            tail.iter().copied().peekable(),
        );
        while all.len() < most {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if y < x => b.next(),
                (Some(_), _) => a.next(),
                (None, _) => b.next(),
            };
            match next {
                Some(e) => all.push(e),
                None => break,
            }
        }
        all
    }
}

/// A rate for people: `12.5/s` or, below one a second, `3.0/min`.
fn per_time(rate: f64) -> String {
    if rate >= 1.0 {
        format!("{}/s", fixed(rate, 1))
    } else {
        format!("{}/min", fixed(rate * 60.0, 1))
    }
}

/// The middle value (the upper one of an even count): the value a sort
/// would put at `len / 2`, selected rather than sorted (made for every
/// pair at the end of the run).
fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    *v.select_nth_unstable_by(mid, f64::total_cmp).1
}

impl Detector for ConnectionChurn {
    fn kinds(&self) -> &'static [FindingKind] {
        &[FindingKind::ConnectionChurn]
    }

    fn on_connection_end(&mut self, c: &ConnectionRecord, _claims: &mut Claims) {
        if c.handshake.state != HandshakeState::Complete {
            return;
        }
        let p = self.pairs.entry((c.client.ip(), c.server)).or_default();
        let bytes = c.client_to_server.bytes + c.server_to_client.bytes;
        p.n += 1;
        if p.n == 1 {
            (p.first, p.last, p.end) = (c.start, c.start, c.end);
        }
        p.first = p.first.min(c.start);
        p.last = p.last.max(c.start);
        p.conns.add(Sample {
            start: c.start,
            id: c.id,
            first_frame: c.first_frame,
            duration_s: c.duration_s,
            bytes,
        });
        p.end = p.end.max(c.end);
        if matches!(c.time_wait.holder, Closer::Client | Closer::Both) {
            p.tw_client += 1;
        }
        if matches!(c.time_wait.holder, Closer::Server | Closer::Both) {
            p.tw_server += 1;
        }
        // handshake 3 + teardown 4, as far as seen
        p.overhead += (c.client_to_server.packets + c.server_to_client.packets).min(7);
    }

    /// Thousands of findings on a busy server, made on two threads, and
    /// the run's peak memory: alone when its pairs that may fire are
    /// enough for [`findings_of`] to spread them. A few are made beside
    /// the other detectors' findings (on 100 MB of generated traffic, 6
    /// findings and 0.9 ms, which waited for the others and for the
    /// freed pages to be given back, 0.7 ms more).
    fn finishes_alone(&self) -> bool {
        self.pairs.values().filter(|p| p.may_fire()).count() >= FINDINGS_ON_TWO_THREADS
    }

    fn finish(&mut self, ctx: &Context<'_>) -> Vec<Finding> {
        let pairs = sorted_if(std::mem::take(&mut self.pairs), Pair::may_fire);
        findings_of(pairs, |((client, server), p)| {
            let n = p.n;
            let ((med_dur, med_bytes, about), rows, listed) = p.conns.finish();
            if med_dur > MAX_MEDIAN_DURATION_S || med_bytes > MAX_MEDIAN_BYTES as f64 {
                return None;
            }
            let mut evidence = EvidenceSet::new();
            for s in &rows {
                evidence.add(s.id, s.start, &[s.first_frame], || {
                    // "0.084 s, 1085 bytes", as `{:.3} s, {} bytes` writes it,
                    // put together on the stack (at most 11 + 4 + 20 + 6
                    // bytes) and made a `CompactString` once.
                    let mut note = ArrayString::<48>::new();
                    let duration = fixed(s.duration_s, 3);
                    match duration.digits() {
                        Some(digits) => note.push_str(&digits),
                        // Left to the formatter: not a plain duration.
                        None => {
                            return CompactString::from(format!("{duration} s, {} bytes", s.bytes));
                        }
                    }
                    note.push_str(" s, ");
                    note.push_str(itoa::Buffer::new().format(s.bytes));
                    note.push_str(" bytes");
                    CompactString::from(note.as_str())
                });
            }
            let start = p.first;
            let mut cases = rows.len() as u64;
            for (id, frame) in &listed {
                if !rows.iter().any(|s| s.id == *id) {
                    // Its start is within [first, last], given below.
                    evidence.add_unkept(*id, start, &[*frame]);
                    cases += 1;
                }
            }
            evidence.add_unlisted(n - cases, start, p.last);
            let end = p.end;
            let span = end.secs_since(start);
            let rate = if span > 0.0 {
                n as f64 / span
            } else {
                n as f64
            };
            let (tw_client, tw_server, overhead) = (p.tw_client, p.tw_server, p.overhead);
            let where_tw = match (tw_client, tw_server) {
                (0, 0) => "no TIME_WAIT socket (these connections left none)".to_string(),
                (c, 0) => format!("{c} TIME_WAIT sockets on {client}"),
                (0, s) => format!("{s} TIME_WAIT sockets on {}", server.ip()),
                // One host talking to itself (loopback): the sides, not
                // the address, tell the two counts apart.
                (c, s) if client == server.ip() => {
                    format!("{c} TIME_WAIT sockets on {client} as client and {s} as server")
                }
                (c, s) => format!(
                    "{c} TIME_WAIT sockets on {client} and {s} on {}",
                    server.ip()
                ),
            };
            let severity = if rate >= WARN_RATE {
                Severity::Warning
            } else {
                Severity::Info
            };
            // Past EXACT_MEDIANS connections the medians are estimates.
            let about = if about { "about " } else { "" };
            let mut summary = format!(
                "{n} connections from {client} to {server} in {} ({}), median \
                 {about}{} and {about}{} bytes each; one pooled connection would \
                 save {} handshakes, about {} packets and {where_tw}",
                secs(span),
                per_time(rate),
                secs(med_dur),
                fixed(med_bytes, 0),
                n - 1,
                overhead.saturating_sub(7),
            );
            if severity == Severity::Info {
                let (lo, hi) = ctx.config.port_range;
                let range = u64::from(hi.saturating_sub(lo)) + 1;
                let tw = ctx.config.time_wait_s;
                summary.push_str(&format!(
                    "; at this rate it costs little: it starts to hurt at about {}/s \
                     ({} TIME_WAIT sockets held at once), and a client that closes first runs \
                     out of its {range} ports at {}/s",
                    fixed(WARN_RATE, 0),
                    fixed(WARN_RATE * tw, 0),
                    fixed(range as f64 / tw, 0)
                ));
            }
            let broad = match client {
                IpAddr::V4(_) => format!(
                    "ip.src == {client} && tcp.dstport == {} && tcp.flags.syn == 1 && tcp.flags.ack == 0",
                    server.port()
                ),
                IpAddr::V6(_) => format!(
                    "ipv6.src == {client} && tcp.dstport == {} && tcp.flags.syn == 1 && tcp.flags.ack == 0",
                    server.port()
                ),
            };
            Some(
                Finding::new(
                    FindingKind::ConnectionChurn,
                    severity,
                    summary,
                    Some(pair(client, server)),
                    evidence,
                )
                .with_broad_filter(broad),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::DetectConfig;

    /// A finished connection with a complete handshake from 10.0.0.1 to
    /// 10.0.0.2:80, to copy and adjust.
    fn template() -> ConnectionRecord {
        crate::track::connection_tests::client_closed_record()
    }

    /// `n` connections of one pair, retired out of order, some starting
    /// out of id order; duration i ms, i bytes.
    fn records(n: u32) -> Vec<ConnectionRecord> {
        let base = template();
        let mut v: Vec<ConnectionRecord> = (0..n)
            .map(|i| {
                let mut r = base.clone();
                r.id = ConnId(i);
                r.first_frame = FrameId(u64::from(i) * 10 + 1);
                // Every seventh starts 3 s late: time and id disagree.
                let ms = i64::from(i) * 100 + if i % 7 == 0 { 3000 } else { 0 };
                r.start = Timestamp::from_parts(1000, ms * 1_000_000);
                r.duration_s = f64::from(i % 500) / 1000.0;
                r.end = r.start.add_secs(r.duration_s);
                r.client_to_server.bytes = u64::from(i % 300);
                r.server_to_client.bytes = 0;
                r
            })
            .collect();
        // Retire in a scrambled order.
        v.sort_by_key(|r| (r.id.0.wrapping_mul(2_654_435_761)) % 1009);
        v
    }

    fn run(recs: &[ConnectionRecord]) -> Finding {
        let mut d = ConnectionChurn::default();
        let mut claims = Claims::default();
        for r in recs {
            d.on_connection_end(r, &mut claims);
        }
        let config = DetectConfig::default();
        let ctx = Context {
            config: &config,
            capture_start: None,
            capture_end: None,
        };
        let mut f = d.finish(&ctx);
        assert_eq!(f.len(), 1);
        f.remove(0)
    }

    /// The evidence as it was built before: every connection added.
    fn every_case(recs: &[ConnectionRecord]) -> EvidenceSet {
        let mut e = EvidenceSet::new();
        for r in recs {
            let bytes = r.client_to_server.bytes + r.server_to_client.bytes;
            e.add(r.id, r.start, &[r.first_frame], || {
                format!("{:.3} s, {} bytes", r.duration_s, bytes)
            });
        }
        e
    }

    fn same_evidence(got: &Finding, recs: &[ConnectionRecord]) {
        let want = Finding::new(
            FindingKind::ConnectionChurn,
            got.severity,
            got.summary.clone(),
            got.host.clone(),
            every_case(recs),
        );
        assert_eq!(got.count, want.count);
        assert_eq!(got.connections, want.connections);
        assert_eq!(got.frames, want.frames);
        assert_eq!((got.first, got.last), (want.first, want.last));
        let rows = |f: &Finding| {
            f.evidence
                .iter()
                .map(|r| format!("{} {:?} {:?} {}", r.connection, r.frames, r.at, r.note))
                .collect::<Vec<_>>()
        };
        assert_eq!(rows(got), rows(&want));
    }

    #[test]
    fn bounded_evidence_equals_keeping_every_connection() {
        // Past MAX_LISTED ids (lists cut short) and EXACT_MEDIANS.
        let recs = records(2_500);
        let f = run(&recs);
        assert_eq!(f.count, 2_500);
        assert_eq!(f.connections.len(), MAX_LISTED);
        same_evidence(&f, &recs);
    }

    /// The detector finishes alone exactly when it has as many pairs that
    /// may fire (MIN_CONNECTIONS or more) as `findings_of` spreads over
    /// two threads; pairs with fewer connections do not count.
    #[test]
    fn finishes_alone_only_with_enough_pairs_to_spread() {
        let base = template();
        let mut d = ConnectionChurn::default();
        let mut claims = Claims::default();
        let mut id = 0;
        let mut add_pair = |d: &mut ConnectionChurn, pair: u32, n: usize| {
            for _ in 0..n {
                let mut r = base.clone();
                r.id = ConnId(id);
                id += 1;
                let ip = std::net::Ipv4Addr::from_bits(0x0a63_0000 + pair);
                r.client = Endpoint::new(IpAddr::V4(ip), r.client.port());
                d.on_connection_end(&r, &mut claims);
            }
        };
        for pair in 0..FINDINGS_ON_TWO_THREADS as u32 - 1 {
            add_pair(&mut d, pair, MIN_CONNECTIONS);
        }
        // One short of a firing pair: not counted.
        add_pair(&mut d, 100_000, MIN_CONNECTIONS - 1);
        assert!(!d.finishes_alone());
        add_pair(&mut d, 100_000, 1);
        assert!(d.finishes_alone());
    }

    /// A host talking to itself holds TIME_WAIT sockets on both sides of
    /// one address: the summary names the sides, not the address twice.
    #[test]
    fn a_host_talking_to_itself_has_its_time_wait_sockets_named_by_side() {
        let mut recs = records(30);
        for (i, r) in recs.iter_mut().enumerate() {
            r.server = Endpoint::new(r.client.ip(), 80);
            r.time_wait.holder = if i < 12 {
                Closer::Client
            } else {
                Closer::Server
            };
        }
        let f = run(&recs);
        let ip = recs[0].client.ip();
        assert!(
            f.summary.contains(&format!(
                "12 TIME_WAIT sockets on {ip} as client and 18 as server"
            )),
            "{}",
            f.summary
        );
        // Two hosts: each named by its address.
        let f = run(&records(30));
        assert!(
            f.summary.contains("30 TIME_WAIT sockets on 10.0.0.1"),
            "{}",
            f.summary
        );
    }

    #[test]
    fn few_connections_give_exact_medians_and_many_say_about() {
        let recs = records(101);
        let f = run(&recs);
        same_evidence(&f, &recs);
        // Durations 0..100 ms: the upper middle of 101 is 50 ms.
        assert!(
            f.summary.contains("median 0.050 s and 50 bytes each"),
            "{}",
            f.summary
        );

        let recs = records(2_000);
        let f = run(&recs);
        same_evidence(&f, &recs);
        // The sketch's medians are within 1 % (and a rank) of the exact ones.
        let exact_ms = median(recs.iter().map(|r| r.duration_s).collect());
        let exact_bytes = median(
            recs.iter()
                .map(|r| r.client_to_server.bytes as f64)
                .collect(),
        );
        let s = &f.summary;
        let ms: f64 = s.split("median about ").nth(1).unwrap()[..5]
            .parse()
            .unwrap();
        assert!((ms - exact_ms).abs() <= 0.011 * exact_ms + 0.001, "{s}");
        let bytes: f64 = s
            .split(" and about ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (bytes - exact_bytes).abs() <= 0.011 * exact_bytes + 1.0,
            "{s} vs {exact_bytes}"
        );
    }
}

#[cfg(test)]
mod packed_tests {
    use super::*;

    /// A small deterministic generator (no dependency for tests).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 11
        }
    }

    /// Connections as a capture gives them (ids, frames and starts near
    /// one another, ending out of order) mixed with extreme values: every
    /// field must come back bit for bit.
    fn samples(seed: u64, n: usize) -> Vec<Sample> {
        let mut r = Lcg(seed);
        let mut v = Vec::new();
        for i in 0..n {
            let x = r.next();
            let odd = x.is_multiple_of(17);
            let duration_s = match x % 23 {
                0 => f64::NAN,
                1 => -0.0,
                2 => -1.5,
                3 => 1e300,
                4 => 0.1 + 0.2,
                // Rounds to 0 ns, which does not give it back.
                5 => 1e-12,
                _ => (r.next() % 5_000_000_000) as f64 / 1e9,
            };
            v.push(Sample {
                start: Timestamp(if odd {
                    r.next() as i64 * if x & 1 == 0 { -1 } else { 1 }
                } else {
                    1_700_000_000_000_000_000 + i as i64 * 2_700_000_000
                        - (x % 5_000_000_000) as i64
                }),
                id: if odd {
                    ConnId(r.next() as u32)
                } else {
                    ConnId(i as u32 * 4000 + (x % 9000) as u32)
                },
                first_frame: FrameId(if odd {
                    u64::MAX - x
                } else {
                    i as u64 * 40_000 + x % 80_000
                }),
                duration_s,
                bytes: if x.is_multiple_of(31) {
                    u64::MAX
                } else {
                    x % 20_000
                },
            });
        }
        v
    }

    #[test]
    fn packed_samples_give_back_exactly_what_was_pushed() {
        for seed in 1..40 {
            let want = samples(seed, (seed as usize * 7) % 200);
            let mut p = packed::Samples::default();
            for s in &want {
                p.push(s);
            }
            assert_eq!(p.len(), want.len());
            let got = p.to_vec();
            assert_eq!(got.len(), want.len());
            // The MAX_EVIDENCE earliest (by start, then id) must keep
            // their start; the others may drop it.
            let mut keys: Vec<(Timestamp, ConnId)> = want.iter().map(|s| (s.start, s.id)).collect();
            keys.sort_unstable();
            keys.truncate(MAX_EVIDENCE);
            for ((g, may_be_row), w) in got.iter().zip(&want) {
                assert_eq!(
                    (g.id, g.first_frame, g.duration_s.to_bits(), g.bytes),
                    (w.id, w.first_frame, w.duration_s.to_bits(), w.bytes)
                );
                if *may_be_row {
                    assert_eq!(g.start, w.start);
                } else {
                    assert!(!keys.contains(&(w.start, w.id)));
                }
            }
        }
        // Ordinary connections take a few bytes each, not 40.
        let mut p = packed::Samples::default();
        for s in samples(99, 100_000)
            .iter()
            .filter(|s| s.duration_s.is_finite())
        {
            if s.first_frame.0 < u64::MAX / 2 && s.duration_s >= 0.0 && s.duration_s < 5.0 {
                p.push(s);
            }
        }
        assert!(
            p.bytes() < 20 * p.len(),
            "{} bytes for {}",
            p.bytes(),
            p.len()
        );
        // Connections that end in the order they start, 2.7 s apart,
        // timed in microseconds (as most captures are): past the first
        // rows no start is kept, and a sample takes 10 bytes: a head of
        // three (the 88 ms duration and the flags), 2 for the id, 3 for
        // the frame, 2 for the payload. (A flags byte of its own beside
        // the duration's three made 11: durations of 16-262 ms, most of
        // a busy server's, gain a byte; shorter ones took as many.)
        let mut p = packed::Samples::default();
        for i in 0..EXACT_MEDIANS as i64 {
            p.push(&Sample {
                start: Timestamp(1_700_000_000_000_000_000 + i * 2_700_123_000),
                id: ConnId(1000 + i as u32 * 3999),
                first_frame: FrameId(5000 + i as u64 * 41_234),
                duration_s: 0.088_123,
                bytes: 1234,
            });
        }
        let got = p.to_vec();
        assert_eq!(got.iter().filter(|(_, r)| *r).count(), MAX_EVIDENCE);
        assert!(p.bytes() <= 21 * EXACT_MEDIANS / 2, "{} bytes", p.bytes());
    }

    /// What the pair kept before: every (id, frame) in a Vec, sorted and
    /// cut to the MAX_LISTED smallest.
    fn smallest_reference(v: &[(ConnId, FrameId)]) -> Vec<(ConnId, FrameId)> {
        let mut v = v.to_vec();
        v.sort_unstable();
        v.truncate(MAX_LISTED);
        v
    }

    #[test]
    fn packed_smallest_equals_sorting_every_id() {
        for seed in 1..30u64 {
            let mut r = Lcg(seed);
            let n = [0, 1, 31, 32, 999, 1000, 1001, 2500, 5000][seed as usize % 9];
            // Distinct ids, nearly ascending (ids retire out of order) or
            // shuffled outright.
            let mut ids: Vec<ConnId> = (0..n as u32)
                .map(|i| ConnId(i * 3 + (seed as u32 % 3)))
                .collect();
            if seed % 2 == 0 {
                for i in 0..ids.len() {
                    let j = (i + (r.next() % 40) as usize).min(ids.len() - 1);
                    ids.swap(i, j);
                }
            } else {
                for i in (1..ids.len()).rev() {
                    ids.swap(i, (r.next() % (i as u64 + 1)) as usize);
                }
            }
            let all: Vec<(ConnId, FrameId)> = ids
                .iter()
                .map(|&id| {
                    (
                        id,
                        FrameId(if r.next().is_multiple_of(9) {
                            r.next()
                        } else {
                            u64::from(id.0) * 7
                        }),
                    )
                })
                .collect();
            let mut p = packed::Smallest::default();
            for &(id, frame) in &all {
                p.push(id, frame);
            }
            assert_eq!(p.into_sorted(), smallest_reference(&all), "seed {seed}");
        }
        // A tail wholly above the packed ids that fills past MAX_LISTED:
        // 992 packed, 8 more in the tail, then 24 between the last packed
        // and the largest kept, appended but only 8 of them kept.
        let mut all: Vec<(ConnId, FrameId)> = (0..1000u32)
            .map(|i| (ConnId(i * 10), FrameId(u64::from(i))))
            .collect();
        all.extend((9911..9935u32).map(|id| (ConnId(id), FrameId(u64::from(id)))));
        let mut p = packed::Smallest::default();
        for &(id, frame) in &all {
            p.push(id, frame);
        }
        assert_eq!(
            p.into_sorted(),
            smallest_reference(&all),
            "appended past the cap"
        );
    }

    /// Around EXACT_MEDIANS, where the packed connections give way to
    /// sketches, heap and packed list: the same rows, lists and medians
    /// as keeping each of them apart from the start (the code before).
    #[test]
    fn conns_equal_the_separate_lists_on_both_sides_of_exact_medians() {
        for n in [1, 50, 51, EXACT_MEDIANS, EXACT_MEDIANS + 1, 1500] {
            let want = samples(n as u64, n);
            let mut c = Conns::default();
            for s in &want {
                c.add(*s);
            }
            let ((dur, bytes, about), rows, listed) = c.finish();
            let mut sorted = want.clone();
            sorted.sort_unstable();
            sorted.truncate(MAX_EVIDENCE);
            assert_eq!(rows.len(), sorted.len());
            for (g, w) in rows.iter().zip(&sorted) {
                assert_eq!(
                    (g.start, g.id, g.first_frame),
                    (w.start, w.id, w.first_frame)
                );
                assert_eq!(
                    (g.duration_s.to_bits(), g.bytes),
                    (w.duration_s.to_bits(), w.bytes)
                );
            }
            let ids: Vec<(ConnId, FrameId)> = want.iter().map(|s| (s.id, s.first_frame)).collect();
            assert_eq!(listed, smallest_reference(&ids));
            assert_eq!(about, n > EXACT_MEDIANS);
            let (wd, wb) = if n > EXACT_MEDIANS {
                let mut d = DDSketch::new(Config::defaults());
                let mut b = DDSketch::new(Config::defaults());
                for s in &want {
                    d.add(s.duration_s);
                    b.add(s.bytes as f64);
                }
                let q = |k: &DDSketch| k.quantile(0.5).ok().flatten().unwrap_or(0.0);
                (q(&d), q(&b))
            } else {
                (
                    median(want.iter().map(|s| s.duration_s).collect()),
                    median(want.iter().map(|s| s.bytes as f64).collect()),
                )
            };
            assert_eq!(
                (dur.to_bits(), bytes.to_bits()),
                (wd.to_bits(), wb.to_bits()),
                "n {n}"
            );
        }
    }
}
