//! Detectors turn connection lifecycles into findings: verdicts with the
//! frames that prove them and a Wireshark display filter that shows them.
//!
//! Push model (as grep-searcher's `Sink`): the pipeline calls
//! `on_segment_facts` for the TCP segments detectors read, in capture
//! order, with what they read of the live connection copied out
//! ([`SegmentFacts`]: detectors run off the tracking thread),
//! `on_connection_end` once per connection as the tracker retires it, and
//! `finish` once at the end. State stays bounded: the
//! connections still open, aggregates per host, pair or server, and
//! [`EvidenceSet`]s that keep the first rows and count the rest; never one
//! record per connection. One file per finding kind; `all()` lists them in
//! the order they run.

mod abortive_close;
mod connection_churn;
mod fin_retransmit_rst;
mod fin_wait_2_stall;
mod handshake_failure;
mod host_setting;
pub use host_setting::{CounterReading, HostCheck, Verdict};
mod paws_syn_drop;
pub use paws_syn_drop::AttemptGate;
mod server_active_close;
mod time_wait_pressure;
mod tuple_reuse;
mod varint;

#[cfg(test)]
mod scenarios;

use crate::decode::Segment;
use crate::flow::{Endpoint, Side};
use crate::frame::FrameId;
use crate::time::Timestamp;
use crate::track::{ConnId, Connection, ConnectionRecord, Observation, Reuse, TimeWaitSocket};
use compact_str::CompactString;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BinaryHeap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// Per-key state a detector folds records into: a hash map (a tree cost
/// a dozen comparisons per record), read back in key order by [`sorted`]
/// so findings come out in the same order every run.
pub type Groups<K, V> = std::collections::HashMap<K, V, rustc_hash::FxBuildHasher>;

/// The entries of `groups`, in key order.
pub fn sorted<K: Ord, V>(groups: Groups<K, V>) -> Vec<(K, V)> {
    sorted_if(groups, |_| true)
}

/// [`sorted`], keeping only the groups `keep` says: those dropped are not
/// sorted (a detector that fires for a few of thousands of pairs).
pub fn sorted_if<K: Ord, V>(groups: Groups<K, V>, mut keep: impl FnMut(&V) -> bool) -> Vec<(K, V)> {
    let mut v: Vec<(K, V)> = groups.into_iter().filter(|(_, g)| keep(g)).collect();
    v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    v
}

/// [`findings_of`] spreads this many groups or more over two threads;
/// fewer are not worth a thread.
pub const FINDINGS_ON_TWO_THREADS: usize = 256;

/// Findings made from `groups` one each (or none), in order, on two
/// threads when there are many: a detector that fires for thousands of
/// pairs (connection-churn on a busy server: 6,000 findings of up to 50
/// formatted rows each) formats them after the capture is read, when the
/// other threads are done, so one core would sit idle (a tenth of the
/// wall time on a 1 GB capture). Each thread takes the next `CHUNK` (32)
/// groups not taken until none are left: groups differ in work (a pair of
/// 50,000 connections beside pairs of a hundred), and with the halves
/// split up front one thread ran 10 ms longer than the other on 1 GB. If
/// no thread can be made, everything is made here. Same findings, same
/// order.
pub fn findings_of<T: Send>(
    groups: Vec<T>,
    make: impl Fn(T) -> Option<Finding> + Sync,
) -> Vec<Finding> {
    /// Groups taken at a time.
    const CHUNK: usize = 32;
    if groups.len() < FINDINGS_ON_TWO_THREADS {
        return groups.into_iter().filter_map(make).collect();
    }
    let mut groups = groups.into_iter();
    let chunks: Vec<Vec<T>> = std::iter::from_fn(|| {
        let part: Vec<T> = groups.by_ref().take(CHUNK).collect();
        (!part.is_empty()).then_some(part)
    })
    .collect();
    each_on_two_threads("timewait-findings", chunks, |part| {
        part.into_iter().filter_map(&make).collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

/// `f` of every item, in the items' order, made here and at the same time
/// on a scoped thread named `name`, each taking the next item not taken
/// (only here if no thread can be made). A panic on the thread is raised
/// here.
fn each_on_two_threads<T: Send, R: Send>(
    name: &str,
    items: Vec<T>,
    f: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // An item, then what `f` made of it.
    let slots: Vec<Mutex<(Option<T>, Option<R>)>> = items
        .into_iter()
        .map(|t| Mutex::new((Some(t), None)))
        .collect();
    let next = AtomicUsize::new(0);
    let work = || {
        // A slot is taken by one thread only; a lock is poisoned only by
        // a panic, which the join raises.
        while let Some(Ok(mut slot)) = slots
            .get(next.fetch_add(1, Ordering::Relaxed))
            .map(|s| s.lock())
        {
            if let Some(item) = slot.0.take() {
                slot.1 = Some(f(item));
            }
        }
    };
    std::thread::scope(|scope| {
        let helper = std::thread::Builder::new()
            .name(name.into())
            .spawn_scoped(scope, work);
        work();
        if let Ok(helper) = helper
            && let Err(panic) = helper.join()
        {
            std::panic::resume_unwind(panic);
        }
    });
    slots
        .into_iter()
        .filter_map(|s| s.into_inner().ok().and_then(|s| s.1))
        .collect()
}

/// How much a finding matters; ordered, so `--fail-on warning` means
/// "warning or error".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// What a finding kind is, declared once in the file of the detector that
/// reports it: its name (the JSON `kind`, the `--only`/`--skip` value), the
/// short explanation and generic advice every finding carries, and the
/// long explanation (docs/findings/NAME.md, built into the binary so
/// `timewait explain` and the docs never disagree).
#[derive(Debug)]
pub struct KindSpec {
    pub name: &'static str,
    /// Why it happens, in the kernel's terms.
    pub explanation: &'static str,
    /// What to change, before a detector weighs the capture.
    pub advice: &'static str,
    /// What, why, how to fix, how to confirm on the host.
    pub doc: &'static str,
}

/// The list of finding kinds, one line each: the variant and its spec, in
/// report order (also the order `--only` lists them in).
macro_rules! finding_kinds {
    ($( $(#[$meta:meta])* $variant:ident => $spec:path ),* $(,)?) => {
        /// Every kind of finding; the JSON `kind` and the `--only`/`--skip`
        /// value are its spec's name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum FindingKind {
            $( $(#[$meta])* $variant, )*
        }

        impl FindingKind {
            pub const ALL: &'static [FindingKind] = &[$(FindingKind::$variant),*];

            /// Its name, texts and long explanation.
            pub fn spec(self) -> &'static KindSpec {
                match self {
                    $( FindingKind::$variant => &$spec, )*
                }
            }
        }
    };
}

finding_kinds! {
    FinRetransmitRst => fin_retransmit_rst::SPEC,
    PawsSynDrop => paws_syn_drop::PAWS_SPEC,
    TimestampRegression => paws_syn_drop::REGRESSION_SPEC,
    TimeWaitPressure => time_wait_pressure::SPEC,
    TupleReuse => tuple_reuse::SPEC,
    ConnectionChurn => connection_churn::SPEC,
    ServerActiveClose => server_active_close::SPEC,
    HandshakeFailure => handshake_failure::SPEC,
    AbortiveClose => abortive_close::SPEC,
    FinWait2Stall => fin_wait_2_stall::SPEC,
    /// A host setting that hurts, from `--host-info` (no detector: the
    /// host confirm pass makes it).
    HostSetting => host_setting::SPEC,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        self.spec().name
    }

    /// The long explanation: docs/findings/KIND.md.
    pub fn long_doc(self) -> &'static str {
        self.spec().doc
    }
}

impl Serialize for FindingKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FindingKind {
    type Err = String;
    fn from_str(s: &str) -> Result<FindingKind, String> {
        FindingKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = FindingKind::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown finding kind `{s}`; one of: {}", names.join(", "))
            })
    }
}

/// One piece of evidence: a connection and the frames that show the problem.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    pub connection: ConnId,
    /// Frame ids, nearly always one or two: inline, so that a row costs no
    /// allocation for them (thousands of findings keep up to MAX_EVIDENCE
    /// rows each). The JSON has Wireshark's numbers in their file (the
    /// row's `capture`, `frame_captures`).
    #[serde(serialize_with = "crate::frame::serialize_local_list")]
    pub frames: EvidenceFrames,
    /// Time of the first of those frames.
    pub at: Timestamp,
    /// What the frames show, in a few words: up to 24 bytes inline (a
    /// report of thousands of findings holds up to [`MAX_EVIDENCE`] rows
    /// each, and short notes such as `connection-churn`'s then cost no
    /// allocation).
    pub note: CompactString,
}

/// The frames of an evidence row (a sequence in the JSON, as a Vec).
pub type EvidenceFrames = smallvec::SmallVec<[FrameId; 2]>;

/// An evidence row as reported: the evidence, and with several files the
/// file of its frames (`frames` are then Wireshark's numbers in that file).
/// The files are boxed: a report of thousands of findings holds up to
/// [`MAX_EVIDENCE`] rows each, and a capture of one file (nearly all) then
/// spends 8 bytes a row on them, not 32.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceRow {
    #[serde(flatten)]
    pub evidence: Evidence,
    #[serde(flatten)]
    files: Option<Box<RowFiles>>,
}

/// [`EvidenceRow`]'s files, with several files.
#[derive(Debug, Clone, Serialize)]
struct RowFiles {
    /// The file (index into `captures[]`) of the first of `frames`.
    capture: u32,
    /// When the frames lie in more than one file: the file of each frame,
    /// in the order of `frames`.
    #[serde(skip_serializing_if = "Option::is_none")]
    frame_captures: Option<Vec<u32>>,
}

impl std::ops::Deref for EvidenceRow {
    type Target = Evidence;
    fn deref(&self) -> &Evidence {
        &self.evidence
    }
}

impl std::ops::DerefMut for EvidenceRow {
    fn deref_mut(&mut self) -> &mut Evidence {
        &mut self.evidence
    }
}

impl EvidenceRow {
    /// With several files: the file (index into `captures[]`) of the first
    /// of `frames`.
    pub fn capture(&self) -> Option<u32> {
        self.files.as_ref().map(|f| f.capture)
    }

    /// With several files, when the frames lie in more than one: the file
    /// of each frame, in the order of `frames`.
    pub fn frame_captures(&self) -> Option<&[u32]> {
        self.files.as_ref()?.frame_captures.as_deref()
    }

    /// The frames as people read them: `19` with one file, `1:19` (file
    /// index, frame) with several, as `conns` prints them.
    pub fn frame_labels(&self) -> Vec<String> {
        self.frames
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let file = self
                    .frame_captures()
                    .and_then(|c| c.get(i).copied())
                    .or(self.capture());
                match file {
                    Some(file) => format!("{file}:{}", f.local()),
                    None => f.local().to_string(),
                }
            })
            .collect()
    }
}

/// At most this many evidence rows are kept per finding; `count` still
/// counts them all.
pub const MAX_EVIDENCE: usize = 50;

/// At most this many connection ids and frame numbers are listed per finding.
pub const MAX_LISTED: usize = 1000;

/// The evidence of one finding as it accumulates, in memory that does not
/// grow with the number of cases: the first [`MAX_EVIDENCE`] rows by time
/// (then connection), the [`MAX_LISTED`] smallest connection ids and frame
/// numbers, the count and the time span. Notes are only formatted for rows
/// that are kept.
#[derive(Debug, Default)]
pub struct EvidenceSet {
    count: u64,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    rows: EarliestRows<Evidence>,
    added: u64,
    connections: Smallest<ConnId>,
    frames: Smallest<FrameId>,
}

/// The order of evidence rows: time, connection, then order of arrival.
type RowKey = (Timestamp, ConnId, u64);

/// The first [`MAX_EVIDENCE`] items by [`RowKey`] of all those offered:
/// a plain list until one more is offered, then a max-heap, whose latest
/// item is the one to give up. [`EvidenceSet`] keeps its rows in one; a
/// detector that holds its cases unformatted until the end
/// (`fin-retransmit-rst`) picks its rows with one too. Most sets never
/// fill (a finding's rows are its first cases, often offered in order,
/// which a max-heap sifts each to its top): the list is sorted once, at
/// the end. Keys are distinct (they end in the order of arrival), so the
/// order is the same either way.
#[derive(Debug)]
enum EarliestRows<T> {
    Filling(Vec<Keyed<T>>),
    Full(BinaryHeap<Keyed<T>>),
}

#[derive(Debug)]
struct Keyed<T> {
    key: RowKey,
    item: T,
}

impl<T> PartialEq for Keyed<T> {
    fn eq(&self, other: &Keyed<T>) -> bool {
        self.key == other.key
    }
}
impl<T> Eq for Keyed<T> {}
impl<T> PartialOrd for Keyed<T> {
    fn partial_cmp(&self, other: &Keyed<T>) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Keyed<T> {
    fn cmp(&self, other: &Keyed<T>) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

impl<T> Default for EarliestRows<T> {
    fn default() -> Self {
        EarliestRows::Filling(Vec::new())
    }
}

impl<T> EarliestRows<T> {
    /// Whether an item under `key` would be kept now.
    fn keeps(&mut self, key: &RowKey) -> bool {
        self.heap_once_full()
            .is_none_or(|heap| heap.peek().is_some_and(|latest| *key < latest.key))
    }

    /// Keeps an item [`EarliestRows::keeps`] said yes to; the item it
    /// gives up for it, when full.
    fn push(&mut self, key: RowKey, item: T) -> Option<Keyed<T>> {
        let keyed = Keyed { key, item };
        if let Some(heap) = self.heap_once_full() {
            let mut latest = heap.peek_mut()?;
            return Some(std::mem::replace(&mut *latest, keyed));
        }
        if let EarliestRows::Filling(list) = self {
            list.push(keyed);
        }
        None
    }

    /// The heap, once the list holds all it keeps; a full list becomes
    /// one here, when an item past it is offered, so that a set offered
    /// no more than it keeps is only sorted, at the end.
    fn heap_once_full(&mut self) -> Option<&mut BinaryHeap<Keyed<T>>> {
        if let EarliestRows::Filling(list) = self
            && list.len() >= MAX_EVIDENCE
        {
            *self = EarliestRows::Full(BinaryHeap::from(std::mem::take(list)));
        }
        match self {
            EarliestRows::Filling(_) => None,
            EarliestRows::Full(heap) => Some(heap),
        }
    }

    /// The items kept, first first.
    fn into_sorted(self) -> Vec<Keyed<T>> {
        match self {
            EarliestRows::Filling(mut list) => {
                list.sort_unstable();
                list
            }
            EarliestRows::Full(heap) => heap.into_sorted_vec(),
        }
    }
}

/// The [`MAX_LISTED`] smallest distinct values added, and whether any
/// other was dropped. Values are appended and the list is cut back only
/// when it doubles: a finding with many cases costs a push per value, not
/// a tree insertion (which was most of the detectors' time).
#[derive(Debug)]
struct Smallest<T> {
    values: Vec<T>,
    dropped: bool,
    /// Once [`MAX_LISTED`] distinct values are kept, the largest of them:
    /// a value above it cannot be listed (as many smaller ones are kept)
    /// and one equal to it is a copy, so neither is pushed. Ids and frames
    /// come nearly in order, so past the first thousand nearly every value
    /// stops here instead of waiting for the next sort.
    limit: Option<T>,
}

impl<T> Default for Smallest<T> {
    fn default() -> Self {
        Smallest {
            values: Vec::new(),
            dropped: false,
            limit: None,
        }
    }
}

impl<T: Ord + Copy> Smallest<T> {
    fn push(&mut self, v: T) {
        if let Some(limit) = self.limit
            && v >= limit
        {
            self.dropped |= v > limit;
            return;
        }
        self.values.push(v);
        if self.values.len() >= 2 * MAX_LISTED {
            self.compact();
        }
    }

    fn compact(&mut self) {
        self.values.sort_unstable();
        self.values.dedup();
        if self.values.len() > MAX_LISTED {
            self.values.truncate(MAX_LISTED);
            self.dropped = true;
        }
        if self.values.len() == MAX_LISTED {
            self.limit = self.values.last().copied();
        }
    }

    /// The kept values, ascending.
    fn into_sorted(mut self) -> (Vec<T>, bool) {
        self.compact();
        (self.values, self.dropped)
    }
}

impl EvidenceSet {
    pub fn new() -> EvidenceSet {
        EvidenceSet::default()
    }

    /// One case: `note` is called only if the row is kept.
    pub fn add<N>(
        &mut self,
        connection: ConnId,
        at: Timestamp,
        frames: &[FrameId],
        note: impl FnOnce() -> N,
    ) where
        N: Into<CompactString>,
    {
        self.count += 1;
        if self.first.is_none_or(|f| at < f) {
            self.first = Some(at);
        }
        if self.last.is_none_or(|l| at > l) {
            self.last = Some(at);
        }
        let key = (at, connection, self.added);
        self.added += 1;
        if self.rows.keeps(&key) {
            self.rows.push(
                key,
                Evidence {
                    connection,
                    frames: EvidenceFrames::from_slice(frames),
                    at,
                    note: note().into(),
                },
            );
        }
        self.connections.push(connection);
        for f in frames {
            self.frames.push(*f);
        }
    }

    /// One case kept in the id and frame lists but never as a row: a
    /// detector that picked its rows itself (the earliest ones, which are
    /// all `add`ed) hands the rest over this way.
    pub fn add_unkept(&mut self, connection: ConnId, at: Timestamp, frames: &[FrameId]) {
        self.count += 1;
        self.added += 1;
        if self.first.is_none_or(|f| at < f) {
            self.first = Some(at);
        }
        if self.last.is_none_or(|l| at > l) {
            self.last = Some(at);
        }
        self.connections.push(connection);
        for f in frames {
            self.frames.push(*f);
        }
    }

    /// `n` more cases between `first` and `last`, none of them kept as a
    /// row or listed: the detector kept only the [`MAX_LISTED`] smallest
    /// ids and frames, which it `add`ed (so the lists are cut short).
    /// With `n` = 0, only widens the span to [`first`, `last`].
    pub fn add_unlisted(&mut self, n: u64, first: Timestamp, last: Timestamp) {
        self.first = Some(self.first.map_or(first, |f| f.min(first)));
        self.last = Some(self.last.map_or(last, |l| l.max(last)));
        if n == 0 {
            return;
        }
        self.count += n;
        self.added += n;
        self.connections.dropped = true;
        self.frames.dropped = true;
    }

    /// One case, already built.
    pub fn push(&mut self, e: Evidence) {
        let Evidence {
            connection,
            frames,
            at,
            note,
        } = e;
        self.add(connection, at, &frames, || note);
    }

    /// Takes in every case of `other`, as if they had been added here:
    /// the rows it kept (its first ones, so the merged first rows are
    /// among them), its listed ids and frames, its count and time span.
    pub fn absorb(&mut self, other: EvidenceSet) {
        // By key, so that rows of the same time and connection keep their
        // order here (it was the heap's inner order).
        let rows = other.rows.into_sorted();
        let kept = rows.len() as u64;
        for row in rows {
            self.push(row.item);
        }
        // Cases it counted but did not keep as rows.
        self.count += other.count - kept;
        self.first = match (self.first, other.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last = self.last.max(other.last);
        self.connections.dropped |= other.connections.dropped;
        self.frames.dropped |= other.frames.dropped;
        for v in other.connections.values {
            self.connections.push(v);
        }
        for v in other.frames.values {
            self.frames.push(v);
        }
    }

    /// Cases added.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl FromIterator<Evidence> for EvidenceSet {
    fn from_iter<I: IntoIterator<Item = Evidence>>(iter: I) -> EvidenceSet {
        let mut set = EvidenceSet::new();
        for e in iter {
            set.push(e);
        }
        set
    }
}

/// What a finding's display filter selects: how far a reader can trust
/// it, and what tshark must select (fixtures/NAME.filters.tsv).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterScope {
    /// Exactly the evidence frames (`frames`): `frame.number in {…}`.
    Frames,
    /// Exactly every frame of the evidence connections (`connections`):
    /// `tcp.stream in {…}`. Only with one file (tshark numbers streams per
    /// file).
    Connections,
    /// The first of the evidence frames (or connections), as many as fit
    /// in [`MAX_FILTER_LEN`]: too many to list, and no broader filter.
    First,
    /// The detector's broader filter (addresses, ports, flags): it shows a
    /// frame of every evidence row, and more.
    Broad,
}

/// With several files: the display filter for one of them (Wireshark
/// numbers frames and streams per file).
#[derive(Debug, Clone, Serialize)]
pub struct FileFilter {
    /// Index into `captures[]`.
    pub capture: u32,
    pub display_filter: String,
    pub selects: FilterScope,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One verdict with its proof.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    /// One line, with numbers.
    pub summary: String,
    /// Why it happens, in the kernel's terms. The kind's text unless a
    /// finding has its own: thousands of findings of one kind would
    /// otherwise each hold a copy (a kilobyte with the advice).
    pub explanation: Cow<'static, str>,
    /// What to change (as `explanation`).
    pub advice: Cow<'static, str>,
    /// The host or host pair the finding is about.
    pub host: Option<String>,
    /// How many connections (or events) show it.
    pub count: u64,
    /// Connection ids (`tcp.stream`), at most MAX_LISTED.
    pub connections: Vec<ConnId>,
    /// Frames of the evidence, at most MAX_LISTED: frame ids (they keep
    /// their file); the JSON has Wireshark's numbers in their file, which
    /// [`Finding::localize`] names in `frame_captures`.
    #[serde(serialize_with = "crate::frame::serialize_local_list")]
    pub frames: Vec<FrameId>,
    /// With several files: the file (index into `captures[]`) of each of
    /// `frames`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub frame_captures: Vec<u32>,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
    /// A Wireshark (4.0 or later) display filter that shows the evidence;
    /// with several files, the one of the first file in `display_filters`.
    pub display_filter: String,
    /// What `display_filter` selects.
    pub display_filter_selects: FilterScope,
    /// Said beside the filter when it is not exactly the evidence frames.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_filter_note: Option<String>,
    /// With several files: one filter per file that holds evidence.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub display_filters: Vec<FileFilter>,
    /// The first MAX_EVIDENCE rows, by time.
    pub evidence: Vec<EvidenceRow>,
    /// Where the long explanation lives (`timewait explain KIND`).
    pub doc: String,
    /// What the host's counters and settings say (`--host-info`); absent
    /// from the JSON when no host information was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_check: Option<HostCheck>,
    /// Whether `frames` and `connections` list all the evidence (else the
    /// first MAX_LISTED): an incomplete list is never an exact filter.
    #[serde(skip)]
    frames_complete: bool,
    #[serde(skip)]
    connections_complete: bool,
    /// The detector's broader filter, kept for the per-file filters.
    #[serde(skip)]
    broad: Option<String>,
}

impl Finding {
    /// A finding from its evidence (which may count more rows than it
    /// keeps).
    pub fn new(
        kind: FindingKind,
        severity: Severity,
        summary: String,
        host: Option<String>,
        evidence: EvidenceSet,
    ) -> Finding {
        // The filter covers all the evidence, the lists only the first ones.
        // A report may hold thousands of findings: each keeps no room it
        // does not use (the lists grew by doubling, and rows collected in
        // place would keep the heap's larger buffer).
        let (mut connections, more_connections) = evidence.connections.into_sorted();
        connections.shrink_to_fit();
        let (mut frames, more_frames) = evidence.frames.into_sorted();
        frames.shrink_to_fit();
        let mut rows = evidence.rows.into_sorted();
        rows.truncate(MAX_EVIDENCE);
        let mut evidence_rows = Vec::with_capacity(rows.len());
        evidence_rows.extend(rows.into_iter().map(|r| EvidenceRow {
            evidence: r.item,
            files: None,
        }));
        let (explanation, advice) = texts(kind);
        let mut f = Finding {
            kind,
            severity,
            summary,
            explanation: Cow::Borrowed(explanation),
            advice: Cow::Borrowed(advice),
            host,
            count: evidence.count,
            connections,
            frames,
            frame_captures: Vec::new(),
            first: evidence.first,
            last: evidence.last,
            display_filter: String::new(),
            display_filter_selects: FilterScope::First,
            display_filter_note: None,
            display_filters: Vec::new(),
            evidence: evidence_rows,
            doc: format!("docs/findings/{}.md", kind.as_str()),
            host_check: None,
            frames_complete: !more_frames,
            connections_complete: !more_connections,
            broad: None,
        };
        let numbers: Vec<u64> = f.frames.iter().map(|id| id.local()).collect();
        let chosen = choose_filter(
            whole_connections(kind),
            (&numbers, f.frames_complete),
            Some((&f.connections, f.connections_complete)),
        );
        f.set_filter(chosen);
        f
    }

    fn set_filter(&mut self, (filter, selects, note): (String, FilterScope, Option<String>)) {
        self.display_filter = filter;
        self.display_filter_selects = selects;
        self.display_filter_note = note;
    }

    /// Offers the detector's broader filter (addresses, ports, flags): it
    /// replaces a filter that could list only the first of the evidence.
    pub fn with_broad_filter(mut self, filter: String) -> Finding {
        if self.display_filter_selects == FilterScope::First {
            self.set_filter(broad_filter(&filter));
        }
        self.broad = Some(filter);
        self
    }

    /// Replaces the generic advice with one that weighs this capture.
    pub fn with_advice(mut self, advice: String) -> Finding {
        self.advice = Cow::Owned(advice);
        self
    }

    /// Names the file of every frame id for the reports, once all files
    /// are read: Wireshark's frame numbers are per file, so with several
    /// files every frame also names its file (`frame_captures`, the rows'
    /// `capture`) and each file that holds evidence gets its own filter
    /// (one filter over several files is wrong in each). The ids stay ids;
    /// the JSON and the reports show their per-file numbers
    /// ([`FrameId::local`], [`crate::frame::serialize_local_list`]).
    pub fn localize(&mut self, files: usize) {
        if files > 1 {
            self.per_file_filters(files);
            self.frame_captures = self.frames.iter().map(|f| f.split().0).collect();
            for row in &mut self.evidence {
                let caps: Vec<u32> = row.frames.iter().map(|f| f.split().0).collect();
                row.files = caps.first().copied().map(|capture| {
                    let several = caps.iter().any(|&c| c != capture);
                    Box::new(RowFiles {
                        capture,
                        frame_captures: several.then_some(caps),
                    })
                });
            }
        }
    }

    /// One filter per file: the evidence frames of that file (never
    /// `tcp.stream`: connection ids run over the whole timeline while
    /// tshark counts streams from 0 in every file).
    fn per_file_filters(&mut self, files: usize) {
        let mut out = Vec::new();
        if !self.frames_complete {
            // Only the first frames are known: the broad filter, which is
            // right in every file, else the first frames of the first file.
            if let Some(broad) = &self.broad {
                let (filter, selects, note) = broad_filter(broad);
                for capture in 0..files as u32 {
                    out.push(FileFilter {
                        capture,
                        display_filter: filter.clone(),
                        selects,
                        note: note.clone(),
                    });
                }
            }
        }
        if out.is_empty() {
            let mut by_file: Vec<(u32, Vec<u64>)> = Vec::new();
            for f in &self.frames {
                let (file, local) = f.split();
                match by_file.last_mut() {
                    Some((last, v)) if *last == file => v.push(local),
                    _ => by_file.push((file, vec![local])),
                }
            }
            for (capture, frames) in by_file {
                let (mut filter, mut selects, mut note) =
                    choose_filter(false, (&frames, self.frames_complete), None);
                if selects == FilterScope::First
                    && let Some(broad) = &self.broad
                {
                    (filter, selects, note) = broad_filter(broad);
                }
                out.push(FileFilter {
                    capture,
                    display_filter: filter,
                    selects,
                    note,
                });
            }
        }
        if let Some(first) = out.first() {
            self.display_filter = first.display_filter.clone();
            self.display_filter_selects = first.selects;
            self.display_filter_note = first.note.clone();
        }
        self.display_filters = out;
    }
}

/// Kinds whose evidence is whole connections rather than some of their
/// frames: their filter shows the connections (`tcp.stream`) when it can.
fn whole_connections(kind: FindingKind) -> bool {
    matches!(kind, FindingKind::ConnectionChurn)
}

/// `field in {a, b..c}`: Wireshark 4's set syntax (elements separated by
/// commas; 3.x wanted spaces), with runs of three or more consecutive
/// values as a range. `values` ascending and distinct.
pub fn set_filter(field: &str, values: &[u64]) -> String {
    bounded_set_filter(field, values, usize::MAX).filter
}

/// What [`bounded_set_filter`] made.
struct BoundedFilter {
    filter: String,
    /// Values the listed elements cover (a range covers all of its own).
    covered: usize,
    /// Whether every element fit.
    complete: bool,
}

/// A [`set_filter`] of the leading elements of `values` that fit in
/// `max_len` characters. Written into one string, stopping at the first
/// element that does not fit: a finding's list holds up to [`MAX_LISTED`]
/// values, and a filter of them all, an allocation per element, was made
/// only to learn it was too long (thousands of findings on a busy
/// capture, after its last packet, when nothing else runs beside it).
fn bounded_set_filter(field: &str, values: &[u64], max_len: usize) -> BoundedFilter {
    let mut filter = format!("{field} in {{");
    let mut covered = 0;
    let mut i = 0;
    while i < values.len() {
        let mut j = i;
        while j + 1 < values.len() && values[j + 1] == values[j] + 1 {
            j += 1;
        }
        // Runs of two stay two elements.
        let last = if j >= i + 2 { j } else { i };
        let before = filter.len();
        if covered > 0 {
            filter.push_str(", ");
        }
        // itoa: the general formatter took most of the time of a report's
        // thousands of filters.
        let mut digits = itoa::Buffer::new();
        filter.push_str(digits.format(values[i]));
        if last > i {
            filter.push_str("..");
            filter.push_str(digits.format(values[last]));
        }
        // With the closing brace.
        if filter.len() + 1 > max_len {
            filter.truncate(before);
            filter.push('}');
            return BoundedFilter {
                filter,
                covered,
                complete: false,
            };
        }
        covered += last - i + 1;
        i = last + 1;
    }
    filter.push('}');
    BoundedFilter {
        filter,
        covered,
        complete: true,
    }
}

/// How many leading elements of `values` fit in a filter of at most
/// [`MAX_FILTER_LEN`] characters, and how many values they cover.
fn fitting_prefix(field: &str, values: &[u64]) -> (String, usize) {
    let fit = bounded_set_filter(field, values, MAX_FILTER_LEN);
    (fit.filter, fit.covered)
}

/// The filter of `values` whole, if it fits in [`MAX_FILTER_LEN`].
fn whole_set_filter(field: &str, values: &[u64]) -> Option<String> {
    let fit = bounded_set_filter(field, values, MAX_FILTER_LEN);
    fit.complete.then_some(fit.filter)
}

/// The filter of some evidence: exactly its frames, or exactly its
/// connections (`connections` is `None` when streams cannot be used:
/// several files), whichever fits in [`MAX_FILTER_LEN`] first (the
/// connections first for kinds whose evidence is whole connections); else
/// the first frames that fit, with a note (a detector's broad filter then
/// replaces it). A list is only exact when complete.
fn choose_filter(
    prefer_connections: bool,
    frames: (&[u64], bool),
    connections: Option<(&[ConnId], bool)>,
) -> (String, FilterScope, Option<String>) {
    let by_frames = || {
        (frames.1 && !frames.0.is_empty())
            .then(|| whole_set_filter("frame.number", frames.0))
            .flatten()
    };
    let conn_ids: Vec<u64> = connections
        .map(|(c, _)| c.iter().map(|c| u64::from(c.0)).collect())
        .unwrap_or_default();
    let by_streams = || {
        connections
            .filter(|(c, complete)| *complete && !c.is_empty())
            .and_then(|_| whole_set_filter("tcp.stream", &conn_ids))
    };
    let order: [(FilterScope, &dyn Fn() -> Option<String>); 2] = if prefer_connections {
        [
            (FilterScope::Connections, &by_streams),
            (FilterScope::Frames, &by_frames),
        ]
    } else {
        [
            (FilterScope::Frames, &by_frames),
            (FilterScope::Connections, &by_streams),
        ]
    };
    for (scope, make) in order {
        if let Some(filter) = make() {
            let note = (scope == FilterScope::Connections && !prefer_connections).then(|| {
                "too many frames to list: the filter shows the evidence connections whole"
                    .to_string()
            });
            return (filter, scope, note);
        }
    }
    // Too many to list: the first ones.
    let (field, values, complete, what) = if prefer_connections && !conn_ids.is_empty() {
        let complete = connections.is_some_and(|(_, c)| c);
        ("tcp.stream", &conn_ids[..], complete, "connections")
    } else {
        ("frame.number", frames.0, frames.1, "evidence frames")
    };
    let (filter, covered) = fitting_prefix(field, values);
    let of = if complete {
        values.len().to_string()
    } else {
        format!("more than {}", values.len())
    };
    (
        filter,
        FilterScope::First,
        Some(format!(
            "too many to list: the filter shows the first {covered} of {of} {what}"
        )),
    )
}

/// The detector's broader filter with the note that says so.
fn broad_filter(filter: &str) -> (String, FilterScope, Option<String>) {
    (
        filter.to_string(),
        FilterScope::Broad,
        Some(
            "too many to list: a broader filter (addresses, ports, flags) that shows every case, and possibly more"
                .to_string(),
        ),
    )
}

/// `ip.src == 10.0.0.1` or `ipv6.src == ::1`; `dir` is `src`, `dst` or
/// `addr`.
pub fn ip_filter(dir: &str, ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(_) => format!("ip.{dir} == {ip}"),
        IpAddr::V6(_) => format!("ipv6.{dir} == {ip}"),
    }
}

/// The SYNs (without ACK) to `server`, from `client` when given: the broad
/// filter of the findings about connection attempts.
pub fn syn_filter(client: Option<IpAddr>, server: Endpoint) -> String {
    let mut parts = Vec::new();
    parts.extend(client.map(|c| ip_filter("src", c)));
    parts.push(ip_filter("dst", server.ip()));
    parts.push(format!("tcp.dstport == {}", server.port()));
    parts.push("tcp.flags.syn == 1 && tcp.flags.ack == 0".to_string());
    parts.join(" && ")
}

/// Filters longer than this are hard to paste: the first ones are listed,
/// or the detector's broader filter replaces them.
pub const MAX_FILTER_LEN: usize = 2000;

/// Seconds for people: `2.0 s`, `0.013 s`, `0.2 ms`.
pub fn secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{} s", fixed(s, 1))
    } else if s >= 0.001 {
        format!("{} s", fixed(s, 3))
    } else {
        format!("{} ms", fixed(s * 1000.0, 1))
    }
}

/// The short explanation and generic advice of each kind; the long form is
/// docs/findings/KIND.md.
fn texts(kind: FindingKind) -> (&'static str, &'static str) {
    let spec = kind.spec();
    (spec.explanation, spec.advice)
}

/// The thresholds detectors use: their own type, so that detect never
/// names the pipeline above it (`analysis::Options` holds one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectConfig {
    /// How long the active closer holds TIME_WAIT (Linux: 60 s,
    /// TCP_TIMEWAIT_LEN).
    pub time_wait_s: f64,
    /// The client's ephemeral port range (`net.ipv4.ip_local_port_range`).
    pub port_range: (u16, u16),
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            time_wait_s: 60.0,
            port_range: (32768, 60999),
        }
    }
}

/// What `finish` sees besides each detector's own state: the options and
/// the capture's time span.
pub struct Context<'a> {
    pub config: &'a DetectConfig,
    pub capture_start: Option<Timestamp>,
    pub capture_end: Option<Timestamp>,
}

impl Context<'_> {
    /// Seconds since the start of the capture, for summaries.
    pub fn rel(&self, ts: Timestamp) -> f64 {
        self.capture_start.map_or(0.0, |s| ts.secs_since(s))
    }
}

/// Connections explained by a finding of a detector that ran earlier on the
/// same record (so they are not reported again as something lesser). The
/// set only holds claims on the record being retired: the pipeline clears
/// it after every record, so it never grows.
#[derive(Debug, Default)]
pub struct Claims {
    claims: Vec<(FindingKind, ConnId)>,
}

impl Claims {
    /// `kind` explains connection `id`.
    pub fn claim(&mut self, kind: FindingKind, id: ConnId) {
        self.claims.push((kind, id));
    }

    /// Whether a finding of `kind` explains connection `id`.
    pub fn is_claimed(&self, kind: FindingKind, id: ConnId) -> bool {
        self.claims.contains(&(kind, id))
    }

    pub fn clear(&mut self) {
        self.claims.clear();
    }
}

/// A finding kind's detector (`Send`: detectors finish on two threads,
/// [`finish_all`]). Push model: the pipeline calls
/// `on_segment_facts` for the segments detectors read, `on_connection_end`
/// once for every connection as the
/// tracker retires it (in retirement order, not id order), and `finish`
/// once at the end. A detector keeps only bounded state: the connections
/// it is waiting on, aggregates per host, pair or server, and
/// [`EvidenceSet`]s; never the records themselves.
pub trait Detector: Send {
    /// The kinds this detector can emit.
    fn kinds(&self) -> &'static [FindingKind];
    /// Which segments the detector reads ([`Detector::on_segment_facts`]):
    /// the pipeline makes [`SegmentFacts`] only when some detector reads
    /// any, and calls each only with those it names.
    fn facts_wanted(&self) -> FactsWanted {
        FactsWanted::None
    }
    /// The segments [`SegmentFacts::wanted`] names (of them, those
    /// [`Detector::facts_wanted`] names), in capture order and in order
    /// with the records, cuts and floor advances.
    /// A detector may take what only it reads out of `facts` (a
    /// fin-retransmit-rst case: kept as it was made, not copied).
    fn on_segment_facts(&mut self, _facts: &mut SegmentFacts) {}
    /// Once per connection, when it can no longer change. Detectors run in
    /// the order of [`all`]; `claims` holds what earlier ones claimed on
    /// this record.
    fn on_connection_end(&mut self, _record: &ConnectionRecord, _claims: &mut Claims) {}
    /// No record still to come starts its TIME_WAIT before `floor`
    /// (`Tracker::time_wait_floor`): what waits for it can be folded.
    fn advance(&mut self, _floor: crate::time::Timestamp) {}
    /// A record whose TIME_WAIT interval this detector may have folded was
    /// written early, and a new incarnation of its 4-tuple ended that
    /// TIME_WAIT sooner (see `track::TimeWaitCut`).
    fn on_time_wait_cut(&mut self, _cut: &crate::track::TimeWaitCut) {}
    /// Once, after the last connection ended.
    fn finish(&mut self, ctx: &Context<'_>) -> Vec<Finding>;
    /// Whether [`Detector::finish`] spreads its own work over two threads
    /// (thousands of findings, [`findings_of`]) and holds the most memory
    /// while it does: it then runs after the other detectors have
    /// finished and gone ([`finish_all`]).
    fn finishes_alone(&self) -> bool {
        false
    }
}

/// The [`SegmentFacts`] a detector reads; the test is made before the
/// (dynamic) call: a call per fact and detector for nothing was a tenth of
/// the folding thread's own work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactsWanted {
    None,
    /// Every segment [`SegmentFacts::wanted`] names.
    All,
    /// Those that reopened a 4-tuple ([`SegmentFacts::reuse`]).
    Reuse,
    /// Those with a fin-retransmit-rst case.
    FinCase,
}

impl FactsWanted {
    pub fn wants(self, facts: &SegmentFacts) -> bool {
        match self {
            FactsWanted::None => false,
            FactsWanted::All => true,
            FactsWanted::Reuse => facts.reuse.is_some(),
            FactsWanted::FinCase => facts.fin_case.is_some(),
        }
    }
}

/// A segment as the detectors see it: the segment, what the tracker made
/// of it and the facts of its connection they read (`paws-syn-drop`,
/// `tuple-reuse`, `fin-retransmit-rst`), copied when it was tracked. The
/// detectors run on the pipeline's folding thread; their work
/// per segment, with its lookups in maps of their own, was a tenth of the
/// tracking thread's, the thread that bounds the run's wall time. Facts go
/// with the records, cuts and floor advances in one stream, so a detector
/// sees every call in the order it saw it on the tracking thread.
#[derive(Debug, Clone)]
pub struct SegmentFacts {
    pub seg: Segment,
    /// The connection's id ([`Observation::conn`]).
    pub conn: ConnId,
    /// A SYN sent again ([`crate::track::SegmentNotes::syn_retransmit`]).
    pub syn_retransmit: bool,
    pub reuse: Option<Box<Reuse>>,
    /// The segment's sender is the connection's client (its endpoints are
    /// the segment's: 1 byte, not the 64 two copies took).
    pub from_client: bool,
    /// For a SYN without ACK: the connection holds a TIME_WAIT socket of
    /// its own on the side the SYN goes to.
    pub own_socket_at_dst: bool,
    /// The server's TIME_WAIT socket, on the segment that made it
    /// ([`Connection::time_wait_opened`]).
    pub server_socket_opened: Option<TimeWaitSocket>,
    /// An RST from the active closer after the peer's FIN came again
    /// (`fin-retransmit-rst`), as read from the live connection.
    pub(crate) fin_case: Option<Box<fin_retransmit_rst::Case>>,
    /// A segment [`SegmentFacts::wanted`] leaves out, handed on all the
    /// same (the test that shows the detectors every segment).
    #[cfg(test)]
    pub(crate) left_out: bool,
}

impl SegmentFacts {
    /// Whether a detector that reads facts could do anything with this
    /// segment, whatever its own state: a segment that reopened a 4-tuple,
    /// a SYN or SYN-ACK, an RST (it may tell a SYN's attempt on a TIME_WAIT
    /// socket how it went, and is what fin-retransmit-rst reads), and the
    /// segment that made the server's TIME_WAIT socket. A bare ACK also
    /// tells an attempt how it went: `gate` says whether its connection
    /// may have made one. About a fifth of the segments of the generated
    /// server traffic; the data segments, FINs and most bare ACKs stay
    /// behind.
    #[inline]
    pub fn wanted(seg: &Segment, obs: &Observation, conn: &Connection, gate: &AttemptGate) -> bool {
        let f = seg.flags;
        obs.reuse.is_some()
            || f.syn()
            || f.rst()
            || conn.time_wait_opened(Side::Server)
            || (paws_syn_drop::is_bare_ack(seg) && gate.marks(obs.conn))
    }

    /// The facts of `seg`, read from its connection just after the
    /// tracker took the segment in.
    #[inline]
    pub fn of(seg: &Segment, obs: &Observation, conn: &Connection) -> SegmentFacts {
        let f = seg.flags;
        let own_socket_at_dst = f.syn()
            && !f.ack()
            && !f.rst()
            && conn.time_wait_socket(conn.side_of(seg.dst)).is_some();
        SegmentFacts {
            seg: *seg,
            conn: obs.conn,
            syn_retransmit: obs.notes.syn_retransmit,
            reuse: obs.reuse.clone(),
            from_client: obs.sender == Side::Client,
            own_socket_at_dst,
            server_socket_opened: if conn.time_wait_opened(Side::Server) {
                conn.time_wait_socket(Side::Server)
            } else {
                None
            },
            fin_case: if f.rst() {
                fin_retransmit_rst::case_of(seg, obs, conn).map(Box::new)
            } else {
                None
            },
            #[cfg(test)]
            left_out: false,
        }
    }

    /// The connection's client.
    pub fn client(&self) -> Endpoint {
        if self.from_client {
            self.seg.src
        } else {
            self.seg.dst
        }
    }

    /// The connection's server.
    pub fn server(&self) -> Endpoint {
        if self.from_client {
            self.seg.dst
        } else {
            self.seg.src
        }
    }
}

/// Hands one retired record to every detector, in order.
pub fn connection_end_all(
    detectors: &mut [Box<dyn Detector>],
    record: &ConnectionRecord,
    claims: &mut Claims,
) {
    for d in detectors.iter_mut() {
        d.on_connection_end(record, claims);
    }
    claims.clear();
}

/// Every detector, in the order they run: one that explains a connection
/// runs before the ones that would report it as something lesser.
pub fn all(config: &DetectConfig) -> Vec<Box<dyn Detector>> {
    vec![
        Box::new(fin_retransmit_rst::FinRetransmitRst::default()),
        Box::new(paws_syn_drop::PawsSynDrop::new(config)),
        Box::new(time_wait_pressure::TimeWaitPressure::new(config)),
        Box::new(tuple_reuse::TupleReuse::default()),
        Box::new(connection_churn::ConnectionChurn::default()),
        Box::new(server_active_close::ServerActiveClose::default()),
        Box::new(handshake_failure::HandshakeFailure::default()),
        Box::new(abortive_close::AbortiveClose::default()),
        Box::new(fin_wait_2_stall::FinWait2Stall::default()),
    ]
}

/// Which kinds to report (`--only`, `--skip`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Selection {
    pub only: Vec<FindingKind>,
    pub skip: Vec<FindingKind>,
}

impl Selection {
    pub fn wants(&self, kind: FindingKind) -> bool {
        (self.only.is_empty() || self.only.contains(&kind)) && !self.skip.contains(&kind)
    }
}

/// Runs every detector's `finish` and keeps the selected findings, in
/// detector order. After the capture's last packet nothing else runs, and
/// one after another the detectors left a core idle (about 6 ms of the
/// last 12 of a 100 MB run): those that do not spread their own work
/// ([`Detector::finishes_alone`]) finish first, on two threads, each
/// taking the next one not taken; then the others, one at a time. A
/// detector goes once it has finished, with what its finish left
/// (paws-syn-drop's maps, say), before its thread takes the next: the
/// run's peak memory on 1 GB is in `connection-churn`'s findings, made
/// last, when the others' state is gone (finished beside another
/// detector, they raised the 1 GB peak by 7 MB) and the pages freed so far
/// are back with the kernel ([`crate::mem::release_freed_pages`]). If no
/// thread can be made, all of them finish here.
pub fn finish_all(
    detectors: Vec<Box<dyn Detector>>,
    ctx: &Context<'_>,
    selection: &Selection,
) -> Vec<Finding> {
    let (alone, shared): (Vec<_>, Vec<_>) = detectors
        .into_iter()
        .enumerate()
        .partition(|(_, d)| d.finishes_alone());
    let finish = |(i, mut d): (usize, Box<dyn Detector>)| {
        let findings = d.finish(ctx);
        drop(d);
        (i, findings)
    };
    let mut made = each_on_two_threads("timewait-finish", shared, finish);
    if !alone.is_empty() {
        // What the tracker and the other detectors freed goes back to the
        // kernel before the largest burst of allocations at the end.
        crate::mem::release_freed_pages();
    }
    made.extend(alone.into_iter().map(finish));
    made.sort_by_key(|(i, _)| *i);
    let mut findings: Vec<Finding> = made.into_iter().flat_map(|(_, f)| f).collect();
    findings.retain(|f| selection.wants(f.kind));
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.kind.cmp(&b.kind)));
    findings
}

/// `client-ip → server-ip:port`, the pair most findings are about.
pub fn pair(client: std::net::IpAddr, server: Endpoint) -> String {
    format!("{client} → {server}")
}

/// `value` with `decimals` (at most 3) digits after the point, as
/// `format!("{value:.decimals$}")` writes it: `{}` of [`fixed`]. The
/// findings of a busy capture (thousands of `connection-churn` findings,
/// made after its last packet, when nothing else runs beside them, with
/// up to 50 durations each) spent most of their making in the general
/// float formatter. A plain value (not negative, below a million) is rounded
/// here, exactly: `value * 10^decimals` is then within 1.2e-7 of the exact
/// product, so away from a tie (farther than 1e-4) it rounds to the
/// integer the exact value rounds to, which is what the formatter prints.
/// Near a tie, and for any other value, the formatter writes it.
#[derive(Debug, Clone, Copy)]
pub struct Fixed {
    value: f64,
    decimals: usize,
}

/// See [`Fixed`].
pub fn fixed(value: f64, decimals: usize) -> Fixed {
    debug_assert!(decimals <= 3);
    Fixed { value, decimals }
}

impl Fixed {
    /// The digits, when the plain rounding gives them exactly (else the
    /// formatter's are `{}` of this).
    pub fn digits(self) -> Option<arrayvec::ArrayString<16>> {
        const SCALE: [u64; 4] = [1, 10, 100, 1000];
        let Fixed { value, decimals } = self;
        let scale = *SCALE.get(decimals)?;
        if !(0.0..1e6).contains(&value) || !value.is_sign_positive() {
            return None;
        }
        let scaled = value * scale as f64;
        let rounded = scaled.round();
        if (scaled - rounded).abs() >= 0.4999 {
            return None;
        }
        let units = rounded as u64;
        // At most "1000000.000": 11 bytes.
        let mut text = arrayvec::ArrayString::new();
        text.push_str(itoa::Buffer::new().format(units / scale));
        if decimals > 0 {
            text.push('.');
            let fraction = units % scale;
            for place in SCALE[..decimals].iter().rev() {
                text.push(char::from(b'0' + (fraction / place % 10) as u8));
            }
        }
        Some(text)
    }
}

impl std::fmt::Display for Fixed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.digits() {
            Some(text) => f.pad(&text),
            None => f.pad(&format!("{:.*}", self.decimals, self.value)),
        }
    }
}

/// "1 connection" / "3 connections".
pub fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::frame::frames;

    /// [`fixed`] writes what `{:.N}` writes for N of 0 to 3, and its
    /// digits, when it gives them, are those: durations of whole
    /// nanoseconds as the tracker makes them, values at and around ties,
    /// random bit patterns, and what it leaves to the formatter; padded as
    /// the formatter pads.
    #[test]
    fn fixed_writes_what_the_formatter_writes() {
        let check_in = |v: f64, decimals: std::ops::RangeInclusive<usize>| {
            for d in decimals {
                let want = format!("{v:.d$}");
                assert_eq!(
                    fixed(v, d).to_string(),
                    want,
                    "{v:e} ({:#x}) .{d}",
                    v.to_bits()
                );
                assert_eq!(format!("{:>14}", fixed(v, d)), format!("{want:>14}"));
                if let Some(digits) = fixed(v, d).digits() {
                    assert_eq!(digits.as_str(), want);
                }
            }
        };
        let check = |v: f64| check_in(v, 0..=3);
        // Durations: nanoseconds over 1e9, as Timestamp::secs_since; every
        // one below a millisecond with 3 decimals (evidence notes).
        for ns in 0..1_000_000i64 {
            check_in(ns as f64 / 1e9, 3..=3);
        }
        for ns in (0..100_000i64).map(|i| i * 4_999_999 + 7) {
            check(ns as f64 / 1e9);
        }
        // Ties and near ties in binary and decimal, and the bounds.
        for k in 0..20_000u64 {
            for scale in [1.0, 10.0, 100.0, 1000.0] {
                let tie = (k as f64 + 0.5) / scale;
                check(tie);
                check(f64::from_bits(tie.to_bits() + 1));
                check(f64::from_bits(tie.to_bits() - 1));
            }
            check(k as f64 * 0.125);
        }
        for v in [
            0.0,
            -0.0,
            1e-300,
            5e-324,
            0.0005,
            0.0015,
            999_999.999_5,
            999_999.999_4,
            1e6,
            1e6 - 1e-9,
            1e300,
            -1.5,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            check(v);
        }
        // Random bit patterns of values below a million.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..300_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = f64::from_bits(x >> 2) % 1e6;
            let decimals = if i % 6 == 0 { 0..=3 } else { 3..=3 };
            check_in(v, decimals.clone());
            check_in(v / 1e6, decimals);
        }
    }

    /// Split over two threads or not, the findings come as one pass in
    /// order would make them: none lost, none twice, none moved.
    #[test]
    fn findings_made_on_two_threads_come_in_order() {
        for n in [0, 1, 255, 256, 257, 288, 319, 1001] {
            let made = findings_of((0..n).collect::<Vec<u32>>(), |i| {
                (i % 3 != 0).then(|| {
                    Finding::new(
                        FindingKind::ConnectionChurn,
                        Severity::Info,
                        i.to_string(),
                        None,
                        EvidenceSet::new(),
                    )
                })
            });
            let want: Vec<String> = (0..n)
                .filter(|i| i % 3 != 0)
                .map(|i| i.to_string())
                .collect();
            let got: Vec<String> = made.into_iter().map(|f| f.summary).collect();
            assert_eq!(got, want, "{n} groups");
        }
    }

    #[test]
    fn every_kind_has_exactly_one_detector() {
        let detectors = all(&DetectConfig::default());
        // host-setting comes from the host confirm pass, not a detector.
        let detected = || {
            FindingKind::ALL
                .iter()
                .filter(|k| **k != FindingKind::HostSetting)
        };
        for kind in detected() {
            let n = detectors
                .iter()
                .filter(|d| d.kinds().contains(kind))
                .count();
            assert_eq!(n, 1, "{kind}");
        }
        let emitted: usize = detectors.iter().map(|d| d.kinds().len()).sum();
        assert_eq!(emitted, detected().count());
    }

    /// A finding made of nothing but this evidence.
    fn finding_of(set: EvidenceSet) -> Finding {
        Finding::new(
            FindingKind::AbortiveClose,
            Severity::Info,
            String::new(),
            None,
            set,
        )
    }

    #[test]
    fn evidence_keeps_the_smallest_ids_and_frames_whatever_the_order() {
        let t = Timestamp::from_parts(1000, 0);
        let mut set = EvidenceSet::new();
        // 3,000 cases in a scrambled order, each id twice: 1,500 distinct.
        for i in 0..3000u32 {
            let id = (i * 7919) % 1500;
            set.add(ConnId(id), t, &[FrameId(u64::from(id) + 1)], String::new);
        }
        let f = finding_of(set);
        assert_eq!(f.count, 3000);
        assert_eq!(
            f.connections,
            (0..MAX_LISTED as u32).map(ConnId).collect::<Vec<_>>()
        );
        assert_eq!(
            f.frames,
            (1..=MAX_LISTED as u64).map(FrameId).collect::<Vec<_>>()
        );
        assert_eq!(f.evidence.len(), MAX_EVIDENCE);
        // More than MAX_LISTED frames and ids: neither list is complete,
        // so the filter lists the first frames and says so.
        assert_eq!(f.display_filter, "frame.number in {1..1000}");
        assert_eq!(f.display_filter_selects, FilterScope::First);
        assert_eq!(
            f.display_filter_note.as_deref(),
            Some(
                "too many to list: the filter shows the first 1000 of more than 1000 evidence frames"
            )
        );
        // A detector's broader filter replaces it.
        let f = f.with_broad_filter("ip.dst == 10.0.0.1".to_string());
        assert_eq!(f.display_filter, "ip.dst == 10.0.0.1");
        assert_eq!(f.display_filter_selects, FilterScope::Broad);
    }

    #[test]
    fn smallest_keeps_what_sorting_everything_keeps() {
        let n = MAX_LISTED as u32;
        let scrambled = |len: u32, m: u32| (0..len).map(move |i| (i * 7919) % m);
        let cases: Vec<(&str, Vec<u32>)> = vec![
            ("ascending", (0..3 * n).collect()),
            ("descending", (0..3 * n).rev().collect()),
            ("scrambled", scrambled(5 * n, 3 * n).collect()),
            // Exactly MAX_LISTED distinct values, each three times: once the
            // list is full, the copies stop at the limit and none is lost.
            ("full, copies", (0..3 * n).map(|i| i % n).collect()),
            (
                "full, copies, one more",
                (0..3 * n).map(|i| i % n).chain([n]).collect(),
            ),
            ("full, then smaller", (n..2 * n).chain(0..n).collect()),
            // One short of full: no limit yet, a larger value is kept.
            (
                "one short, copies, one more",
                (0..3 * n).map(|i| i % (n - 1)).chain([n + 5]).collect(),
            ),
        ];
        for (name, values) in cases {
            let mut s = Smallest::default();
            for &v in &values {
                s.push(v);
            }
            let mut all = values.clone();
            all.sort_unstable();
            all.dedup();
            let dropped = all.len() > MAX_LISTED;
            all.truncate(MAX_LISTED);
            assert_eq!(s.into_sorted(), (all, dropped), "{name}");
        }
    }

    #[test]
    fn evidence_lists_every_case_when_few() {
        let t = Timestamp::from_parts(1000, 0);
        let mut set = EvidenceSet::new();
        for id in [5u32, 3, 5, 9] {
            set.add(
                ConnId(id),
                t,
                &frames(&[u64::from(id) * 10, u64::from(id) * 10 + 1]),
                String::new,
            );
        }
        let f = finding_of(set);
        assert_eq!(f.connections, vec![ConnId(3), ConnId(5), ConnId(9)]);
        assert_eq!(f.frames, frames(&[30, 31, 50, 51, 90, 91]));
        assert_eq!(f.display_filter, "frame.number in {30, 31, 50, 51, 90, 91}");
        assert_eq!(f.display_filter_selects, FilterScope::Frames);
        assert_eq!(f.display_filter_note, None);
        // An exact filter stays when a broader one is offered.
        let f = f.with_broad_filter("tcp".to_string());
        assert_eq!(f.display_filter, "frame.number in {30, 31, 50, 51, 90, 91}");
    }

    #[test]
    fn absorbing_sets_equals_adding_every_case_to_one() {
        let t = |s: f64| Timestamp::from_parts(1000, 0).add_secs(s);
        let mut one = EvidenceSet::new();
        let mut parts = [EvidenceSet::new(), EvidenceSet::new(), EvidenceSet::new()];
        for i in 0..300u32 {
            let at = t(f64::from((i * 37) % 300));
            let frames = [u64::from(i) * 2 + 1, u64::from(i) * 2 + 2].map(FrameId);
            one.add(ConnId(i), at, &frames, || format!("case {i}"));
            parts[i as usize % 3].add(ConnId(i), at, &frames, || format!("case {i}"));
        }
        let mut merged = EvidenceSet::new();
        for p in parts {
            merged.absorb(p);
        }
        let (a, b) = (finding_of(one), finding_of(merged));
        assert_eq!(a.count, b.count);
        assert_eq!((a.first, a.last), (b.first, b.last));
        assert_eq!(a.connections, b.connections);
        assert_eq!(a.frames, b.frames);
        assert_eq!(a.display_filter, b.display_filter);
        let notes = |f: &Finding| {
            f.evidence
                .iter()
                .map(|e| e.note.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(notes(&a), notes(&b));
    }

    #[test]
    fn every_kind_has_a_distinct_kebab_case_name() {
        let mut names: Vec<&str> = FindingKind::ALL.iter().map(|k| k.as_str()).collect();
        for n in &names {
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{n}"
            );
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FindingKind::ALL.len());
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in FindingKind::ALL {
            assert_eq!(kind.as_str().parse::<FindingKind>(), Ok(*kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
        assert!("nope".parse::<FindingKind>().is_err());
    }

    #[test]
    fn every_kind_has_its_long_explanation() {
        for kind in FindingKind::ALL {
            let doc = kind.long_doc();
            assert!(doc.starts_with(&format!("# {} ", kind.as_str())), "{kind}");
            assert!(
                doc.contains("## What to do") && doc.contains("## Confirm on the host"),
                "{kind}"
            );
        }
    }

    /// Offered fewer than, exactly and more than MAX_EVIDENCE items in
    /// order, in reverse and scrambled, the rows keep the smallest keys,
    /// sorted, and give up each of the others exactly once (asked first,
    /// as callers do).
    #[test]
    fn earliest_rows_keep_the_smallest_keys_in_order() {
        let orders: [fn(u64) -> u64; 3] = [
            |i| i,
            |i| 1_000_000 - i,
            |i| (i * 7_919) % 1_009 + (i % 3) * 2_000,
        ];
        for time_of in orders {
            for n in [
                0u64,
                1,
                7,
                MAX_EVIDENCE as u64 - 1,
                MAX_EVIDENCE as u64,
                51,
                400,
            ] {
                let key = |i: u64| (Timestamp(time_of(i) as i64), ConnId((i % 5) as u32), i);
                let mut rows = EarliestRows::default();
                let mut given_up = Vec::new();
                for i in 0..n {
                    if rows.keeps(&key(i)) {
                        given_up.extend(rows.push(key(i), i).map(|k| k.item));
                    } else {
                        given_up.push(i);
                    }
                }
                let mut all: Vec<RowKey> = (0..n).map(key).collect();
                all.sort_unstable();
                let kept: Vec<RowKey> = rows.into_sorted().iter().map(|k| k.key).collect();
                let want = &all[..all.len().min(MAX_EVIDENCE)];
                assert_eq!(kept, want, "n = {n}");
                given_up.sort_unstable();
                let mut rest: Vec<u64> = all[want.len()..].iter().map(|k| k.2).collect();
                rest.sort_unstable();
                assert_eq!(given_up, rest, "n = {n}");
            }
        }
    }

    #[test]
    fn sets_use_commas_and_ranges_for_runs() {
        // Wireshark 4 wants commas; runs of three or more become ranges.
        assert_eq!(set_filter("frame.number", &[7]), "frame.number in {7}");
        assert_eq!(
            set_filter("frame.number", &[3, 9]),
            "frame.number in {3, 9}"
        );
        assert_eq!(
            set_filter("frame.number", &[8, 9]),
            "frame.number in {8, 9}"
        );
        assert_eq!(
            set_filter("frame.number", &[8, 9, 10, 11, 29, 30, 31, 32, 40]),
            "frame.number in {8..11, 29..32, 40}"
        );
        assert_eq!(
            set_filter("tcp.stream", &[0, 1, 2, 4, 5, 7, 8, 9]),
            "tcp.stream in {0..2, 4, 5, 7..9}"
        );
    }

    #[test]
    fn a_filter_lists_frames_then_connections_then_the_first_ones() {
        let many: Vec<u64> = (1..=400).map(|i| i * 3).collect();
        let conns: Vec<ConnId> = (0..400).map(ConnId).collect();
        // Few frames: exactly them.
        let (f, scope, note) = choose_filter(false, (&many[..5], true), Some((&conns, true)));
        assert_eq!(f, "frame.number in {3, 6, 9, 12, 15}");
        assert_eq!((scope, note), (FilterScope::Frames, None));
        // 400 scattered frames do not fit; the 400 connections do.
        let (f, scope, note) = choose_filter(false, (&many, true), Some((&conns, true)));
        assert_eq!(f, "tcp.stream in {0..399}");
        assert_eq!(scope, FilterScope::Connections);
        assert!(note.unwrap().contains("connections whole"));
        // Whole-connection kinds show the connections even when frames fit.
        let (f, scope, _) = choose_filter(true, (&many[..2], true), Some((&conns[..2], true)));
        assert_eq!(
            (f.as_str(), scope),
            ("tcp.stream in {0, 1}", FilterScope::Connections)
        );
        // Streams unusable (several files) or incomplete: the first frames
        // that fit, never longer than MAX_FILTER_LEN, with a note.
        for conns in [None, Some((&conns[..], false))] {
            let (f, scope, note) = choose_filter(false, (&many, true), conns);
            assert_eq!(scope, FilterScope::First);
            assert!(f.len() <= MAX_FILTER_LEN, "{}", f.len());
            assert!(f.starts_with("frame.number in {3, 6, 9, "), "{f}");
            let listed = f.matches(", ").count() + 1;
            assert_eq!(
                note.unwrap(),
                format!(
                    "too many to list: the filter shows the first {listed} of 400 evidence frames"
                )
            );
        }
        // An incomplete frame list is never called exact.
        let (_, scope, _) = choose_filter(false, (&many[..5], false), None);
        assert_eq!(scope, FilterScope::First);
    }

    /// A filter too long is the whole filter cut after the last element
    /// that fits (the next one would not), closed; one that fits is whole.
    #[test]
    fn a_filter_cut_to_its_length_ends_at_the_last_element_that_fits() {
        for n in [0u64, 1, 2, 3, 90, 300, 1000] {
            for stride in [1u64, 2, 3, 7] {
                // Runs of `stride` consecutive values, then a gap.
                let values: Vec<u64> = (0..n).map(|i| i + i / stride * 3 + 1_000_000).collect();
                let whole = set_filter("frame.number", &values);
                let (cut, covered) = fitting_prefix("frame.number", &values);
                assert!(cut.len() <= MAX_FILTER_LEN);
                if whole.len() <= MAX_FILTER_LEN {
                    assert_eq!((&cut, covered), (&whole, values.len()));
                    assert_eq!(whole_set_filter("frame.number", &values), Some(whole));
                    continue;
                }
                assert_eq!(whole_set_filter("frame.number", &values), None);
                let open = &cut[..cut.len() - 1];
                assert!(cut.ends_with('}') && whole.starts_with(open), "{cut}");
                let rest = whole[open.len()..].trim_start_matches(", ");
                let next = rest.split([',', '}']).next().unwrap();
                assert!(!next.is_empty());
                assert!(cut.len() + 2 + next.len() > MAX_FILTER_LEN, "{next} fits");
                assert!(covered > 0 && covered < values.len());
            }
        }
    }

    #[test]
    fn folding_counts_the_frames_a_range_covers() {
        // 3,000 runs of 2 frames with gaps: "a, a+1" elements.
        let frames: Vec<u64> = (0..3000u64).flat_map(|i| [i * 10, i * 10 + 1]).collect();
        let (f, covered) = fitting_prefix("frame.number", &frames);
        assert!(f.len() <= MAX_FILTER_LEN);
        assert_eq!(covered, f.matches(", ").count() + 1);
        // Runs of 5: each element covers 5 frames.
        let frames: Vec<u64> = (0..3000u64).flat_map(|i| (i * 10)..(i * 10 + 5)).collect();
        let (f, covered) = fitting_prefix("frame.number", &frames);
        assert_eq!(covered, 5 * (f.matches(", ").count() + 1));
        assert!(f.starts_with("frame.number in {0..4, 10..14, "), "{f}");
    }

    #[test]
    fn several_files_get_one_filter_each_and_frames_name_their_file() {
        let frame_id = FrameId::new;
        let t = Timestamp::from_parts(1000, 0);
        let mut set = EvidenceSet::new();
        set.add(
            ConnId(4),
            t,
            &[frame_id(0, 19), frame_id(0, 20), frame_id(0, 21)],
            String::new,
        );
        // A connection that runs on into the second file.
        set.add(
            ConnId(5),
            t.add_secs(1.0),
            &[frame_id(0, 30), frame_id(1, 2)],
            String::new,
        );
        set.add(ConnId(6), t.add_secs(2.0), &[frame_id(1, 7)], String::new);
        let mut f = finding_of(set);
        f.localize(2);
        // The ids keep their file; the JSON has the numbers in each file.
        assert_eq!(f.frames[4], frame_id(1, 2));
        let local: Vec<u64> = f.frames.iter().map(|f| f.local()).collect();
        assert_eq!(local, [19, 20, 21, 30, 2, 7]);
        assert_eq!(f.frame_captures, vec![0, 0, 0, 0, 1, 1]);
        let per_file: Vec<(u32, &str, FilterScope)> = f
            .display_filters
            .iter()
            .map(|ff| (ff.capture, ff.display_filter.as_str(), ff.selects))
            .collect();
        assert_eq!(
            per_file,
            vec![
                (0, "frame.number in {19..21, 30}", FilterScope::Frames),
                (1, "frame.number in {2, 7}", FilterScope::Frames),
            ]
        );
        assert_eq!(f.display_filter, "frame.number in {19..21, 30}");
        assert_eq!(f.evidence[0].capture(), Some(0));
        assert_eq!(f.evidence[0].frame_captures(), None);
        assert_eq!(f.evidence[1].frame_labels(), vec!["0:30", "1:2"]);
        assert_eq!(f.evidence[1].frame_captures(), Some(&[0, 1][..]));
        assert_eq!(f.evidence[2].frame_labels(), vec!["1:7"]);
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["evidence"][2]["capture"], 1);
        assert_eq!(json["evidence"][2]["frames"], serde_json::json!([7]));
        assert_eq!(json["frames"], serde_json::json!([19, 20, 21, 30, 2, 7]));
        assert_eq!(json["display_filters"][1]["capture"], 1);
    }

    #[test]
    fn one_file_keeps_the_json_as_it_was() {
        let t = Timestamp::from_parts(1000, 0);
        let mut set = EvidenceSet::new();
        set.add(ConnId(1), t, &frames(&[5, 6]), String::new);
        let mut f = finding_of(set);
        f.localize(1);
        let json = serde_json::to_value(&f).unwrap();
        assert!(json.get("display_filters").is_none());
        assert!(json.get("frame_captures").is_none());
        assert!(json["evidence"][0].get("capture").is_none());
        assert_eq!(json["evidence"][0]["frames"], serde_json::json!([5, 6]));
        assert_eq!(json["display_filter_selects"], "frames");
    }
}
