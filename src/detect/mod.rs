//! Detectors turn connection lifecycles into findings: verdicts with the
//! frames that prove them and a Wireshark display filter that shows them.
//!
//! Push model (as grep-searcher's `Sink`): the pipeline calls `on_segment`
//! for every TCP segment in capture order with the live connection it
//! belongs to, `on_connection_end` once per connection as the tracker
//! retires it, and `finish` once at the end. State stays bounded: the
//! connections still open, aggregates per host, pair or server, and
//! [`EvidenceSet`]s that keep the first rows and count the rest; never one
//! record per connection. One file per finding kind; `all()` lists them in
//! the order they run.

mod abortive_close;
mod connection_churn;
mod fin_retransmit_rst;
mod fin_wait_2_stall;
mod handshake_failure;
mod paws_syn_drop;
mod server_active_close;
mod time_wait_pressure;
mod tuple_reuse;

#[cfg(test)]
mod scenarios;

use crate::analysis::Options;
use crate::decode::Segment;
use crate::flow::Endpoint;
use crate::time::Timestamp;
use crate::track::{ConnId, Connection, ConnectionRecord, Observation};
use serde::Serialize;
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
    let mut v: Vec<(K, V)> = groups.into_iter().collect();
    v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    v
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

/// Every kind of finding; the JSON `kind` and the `--only`/`--skip` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    FinRetransmitRst,
    PawsSynDrop,
    TimestampRegression,
    TimeWaitPressure,
    TupleReuse,
    ConnectionChurn,
    ServerActiveClose,
    HandshakeFailure,
    AbortiveClose,
    #[serde(rename = "fin-wait-2-stall")]
    FinWait2Stall,
    /// A host setting that hurts, from `--host-info` (no detector: the
    /// host confirm pass makes it).
    HostSetting,
}

impl FindingKind {
    pub const ALL: &'static [FindingKind] = &[
        FindingKind::FinRetransmitRst,
        FindingKind::PawsSynDrop,
        FindingKind::TimestampRegression,
        FindingKind::TimeWaitPressure,
        FindingKind::TupleReuse,
        FindingKind::ConnectionChurn,
        FindingKind::ServerActiveClose,
        FindingKind::HandshakeFailure,
        FindingKind::AbortiveClose,
        FindingKind::FinWait2Stall,
        FindingKind::HostSetting,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::FinRetransmitRst => "fin-retransmit-rst",
            FindingKind::PawsSynDrop => "paws-syn-drop",
            FindingKind::TimestampRegression => "timestamp-regression",
            FindingKind::TimeWaitPressure => "time-wait-pressure",
            FindingKind::TupleReuse => "tuple-reuse",
            FindingKind::ConnectionChurn => "connection-churn",
            FindingKind::ServerActiveClose => "server-active-close",
            FindingKind::HandshakeFailure => "handshake-failure",
            FindingKind::AbortiveClose => "abortive-close",
            FindingKind::FinWait2Stall => "fin-wait-2-stall",
            FindingKind::HostSetting => "host-setting",
        }
    }
}

impl FindingKind {
    /// The long explanation (what, why, how to fix, how to confirm on the
    /// host): docs/findings/KIND.md, built into the binary so `timewait
    /// explain` and the docs never disagree.
    pub fn long_doc(self) -> &'static str {
        match self {
            FindingKind::FinRetransmitRst => {
                include_str!("../../docs/findings/fin-retransmit-rst.md")
            }
            FindingKind::PawsSynDrop => include_str!("../../docs/findings/paws-syn-drop.md"),
            FindingKind::TimestampRegression => {
                include_str!("../../docs/findings/timestamp-regression.md")
            }
            FindingKind::TimeWaitPressure => {
                include_str!("../../docs/findings/time-wait-pressure.md")
            }
            FindingKind::TupleReuse => include_str!("../../docs/findings/tuple-reuse.md"),
            FindingKind::ConnectionChurn => include_str!("../../docs/findings/connection-churn.md"),
            FindingKind::ServerActiveClose => {
                include_str!("../../docs/findings/server-active-close.md")
            }
            FindingKind::HandshakeFailure => {
                include_str!("../../docs/findings/handshake-failure.md")
            }
            FindingKind::AbortiveClose => include_str!("../../docs/findings/abortive-close.md"),
            FindingKind::FinWait2Stall => include_str!("../../docs/findings/fin-wait-2-stall.md"),
            FindingKind::HostSetting => include_str!("../../docs/findings/host-setting.md"),
        }
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
    pub frames: Vec<u64>,
    /// Time of the first of those frames.
    pub at: Timestamp,
    /// What the frames show, in a few words.
    pub note: String,
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
    /// A max-heap: the latest kept row is the one to drop.
    rows: BinaryHeap<Row>,
    added: u64,
    connections: Smallest<ConnId>,
    frames: Smallest<u64>,
}

#[derive(Debug)]
struct Row {
    /// Time, connection, then order of arrival.
    key: (Timestamp, ConnId, u64),
    evidence: Evidence,
}

impl PartialEq for Row {
    fn eq(&self, other: &Row) -> bool {
        self.key == other.key
    }
}
impl Eq for Row {}
impl PartialOrd for Row {
    fn partial_cmp(&self, other: &Row) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Row {
    fn cmp(&self, other: &Row) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
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
}

impl<T> Default for Smallest<T> {
    fn default() -> Self {
        Smallest {
            values: Vec::new(),
            dropped: false,
        }
    }
}

impl<T: Ord + Copy> Smallest<T> {
    fn push(&mut self, v: T) {
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
    pub fn add(
        &mut self,
        connection: ConnId,
        at: Timestamp,
        frames: &[u64],
        note: impl FnOnce() -> String,
    ) {
        self.count += 1;
        if self.first.is_none_or(|f| at < f) {
            self.first = Some(at);
        }
        if self.last.is_none_or(|l| at > l) {
            self.last = Some(at);
        }
        let key = (at, connection, self.added);
        self.added += 1;
        let keep = self.rows.len() < MAX_EVIDENCE
            || self.rows.peek().is_some_and(|latest| key < latest.key);
        if keep {
            if self.rows.len() >= MAX_EVIDENCE {
                self.rows.pop();
            }
            self.rows.push(Row {
                key,
                evidence: Evidence {
                    connection,
                    frames: frames.to_vec(),
                    at,
                    note: note(),
                },
            });
        }
        self.connections.push(connection);
        for f in frames {
            self.frames.push(*f);
        }
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
        let rows = other.rows.into_vec();
        let kept = rows.len() as u64;
        for row in rows {
            self.push(row.evidence);
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

    /// The filter that selects exactly the evidence when it can be listed:
    /// its frames when there are at most 60, else all its connections.
    /// When there are too many connections to list, the filter lists the
    /// first [`MAX_LISTED`], which is always longer than [`MAX_FILTER_LEN`],
    /// so [`Finding::with_broad_filter`] replaces it.
    fn filter(connections: &[ConnId], frames: &[u64], more_frames: bool) -> String {
        if more_frames {
            // More than MAX_LISTED frames: too many to list.
            display_filter(&[], connections)
        } else {
            display_filter(frames, connections)
        }
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

/// One verdict with its proof.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    /// One line, with numbers.
    pub summary: String,
    /// Why it happens, in the kernel's terms.
    pub explanation: String,
    /// What to change.
    pub advice: String,
    /// The host or host pair the finding is about.
    pub host: Option<String>,
    /// How many connections (or events) show it.
    pub count: u64,
    /// Connection ids (`tcp.stream`), at most MAX_LISTED.
    pub connections: Vec<ConnId>,
    /// Frame numbers of the evidence, at most MAX_LISTED.
    pub frames: Vec<u64>,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
    /// A Wireshark display filter that shows the evidence.
    pub display_filter: String,
    /// The first MAX_EVIDENCE rows, by time.
    pub evidence: Vec<Evidence>,
    /// Where the long explanation lives (`timewait explain KIND`).
    pub doc: String,
    /// What the host's counters and settings say (`--host-info`); absent
    /// from the JSON when no host information was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_check: Option<crate::host::HostCheck>,
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
        let (connections, _) = evidence.connections.into_sorted();
        let (frames, more_frames) = evidence.frames.into_sorted();
        let display_filter = EvidenceSet::filter(&connections, &frames, more_frames);
        let mut rows = evidence.rows.into_sorted_vec();
        rows.truncate(MAX_EVIDENCE);
        let (explanation, advice) = texts(kind);
        Finding {
            kind,
            severity,
            summary,
            explanation: explanation.to_string(),
            advice: advice.to_string(),
            host,
            count: evidence.count,
            connections,
            frames,
            first: evidence.first,
            last: evidence.last,
            display_filter,
            evidence: rows.into_iter().map(|r| r.evidence).collect(),
            doc: format!("docs/findings/{}.md", kind.as_str()),
            host_check: None,
        }
    }

    /// Replaces the filter when the evidence is too large to list.
    pub fn with_broad_filter(mut self, filter: String) -> Finding {
        if self.display_filter.len() > MAX_FILTER_LEN {
            self.display_filter = filter;
        }
        self
    }

    /// Replaces the generic advice with one that weighs this capture.
    pub fn with_advice(mut self, advice: String) -> Finding {
        self.advice = advice;
        self
    }
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

/// Filters longer than this are hard to paste; detectors offer a broader one.
pub const MAX_FILTER_LEN: usize = 2000;

/// Seconds for people: `2.0 s`, `0.013 s`, `0.2 ms`.
pub fn secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.1} s")
    } else if s >= 0.001 {
        format!("{s:.3} s")
    } else {
        format!("{:.1} ms", s * 1000.0)
    }
}

/// A filter that selects exactly the evidence frames when they are few
/// enough to list, else the connections (`tcp.stream`).
pub fn display_filter(frames: &[u64], connections: &[ConnId]) -> String {
    let list = |v: Vec<String>| v.join(" ");
    if !frames.is_empty() && frames.len() <= 60 {
        format!(
            "frame.number in {{{}}}",
            list(frames.iter().map(u64::to_string).collect())
        )
    } else {
        format!(
            "tcp.stream in {{{}}}",
            list(connections.iter().map(u32::to_string).collect())
        )
    }
}

/// The short explanation and generic advice of each kind; the long form is
/// docs/findings/KIND.md.
fn texts(kind: FindingKind) -> (&'static str, &'static str) {
    match kind {
        FindingKind::FinRetransmitRst => fin_retransmit_rst::TEXTS,
        FindingKind::PawsSynDrop => paws_syn_drop::PAWS_TEXTS,
        FindingKind::TimestampRegression => paws_syn_drop::REGRESSION_TEXTS,
        FindingKind::TimeWaitPressure => time_wait_pressure::TEXTS,
        FindingKind::TupleReuse => tuple_reuse::TEXTS,
        FindingKind::ConnectionChurn => connection_churn::TEXTS,
        FindingKind::ServerActiveClose => server_active_close::TEXTS,
        FindingKind::HandshakeFailure => handshake_failure::TEXTS,
        FindingKind::AbortiveClose => abortive_close::TEXTS,
        FindingKind::FinWait2Stall => fin_wait_2_stall::TEXTS,
        FindingKind::HostSetting => crate::host::confirm::TEXTS,
    }
}

/// What `finish` sees besides each detector's own state: the options and
/// the capture's time span.
pub struct Context<'a> {
    pub options: &'a Options,
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

/// A finding kind's detector. Push model: the pipeline calls `on_segment`
/// for every segment, `on_connection_end` once for every connection as the
/// tracker retires it (in retirement order, not id order), and `finish`
/// once at the end. A detector keeps only bounded state: the connections
/// it is waiting on, aggregates per host, pair or server, and
/// [`EvidenceSet`]s; never the records themselves.
pub trait Detector {
    /// The kinds this detector can emit.
    fn kinds(&self) -> &'static [FindingKind];
    /// Whether [`Detector::on_segment`] does anything: the pipeline calls
    /// it only for those that do (an empty call per segment and detector
    /// was a few percent of the whole run).
    fn wants_segments(&self) -> bool {
        false
    }
    /// Every TCP segment, in capture order, with the connection after it
    /// (only when [`Detector::wants_segments`]).
    fn on_segment(&mut self, _seg: &Segment, _obs: &Observation, _conn: &Connection) {}
    /// Once per connection, when it can no longer change. Detectors run in
    /// the order of [`all`]; `claims` holds what earlier ones claimed on
    /// this record.
    fn on_connection_end(&mut self, _record: &ConnectionRecord, _claims: &mut Claims) {}
    /// Once, after the last connection ended.
    fn finish(&mut self, ctx: &Context<'_>) -> Vec<Finding>;
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
pub fn all(options: &Options) -> Vec<Box<dyn Detector>> {
    vec![
        Box::new(fin_retransmit_rst::FinRetransmitRst::default()),
        Box::new(paws_syn_drop::PawsSynDrop::new(options)),
        Box::new(time_wait_pressure::TimeWaitPressure::new(options)),
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

/// Runs every detector's `finish` in order and keeps the selected findings.
pub fn finish_all(
    detectors: &mut [Box<dyn Detector>],
    ctx: &Context<'_>,
    selection: &Selection,
) -> Vec<Finding> {
    let mut findings: Vec<Finding> = Vec::new();
    for d in detectors.iter_mut() {
        findings.extend(d.finish(ctx));
    }
    findings.retain(|f| selection.wants(f.kind));
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.kind.cmp(&b.kind)));
    findings
}

/// `client-ip → server-ip:port`, the pair most findings are about.
pub fn pair(client: std::net::IpAddr, server: Endpoint) -> String {
    format!("{client} → {server}")
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

    #[test]
    fn every_kind_has_exactly_one_detector() {
        let detectors = all(&Options::default());
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
            set.add(id, t, &[u64::from(id) + 1], String::new);
        }
        let f = finding_of(set);
        assert_eq!(f.count, 3000);
        assert_eq!(f.connections, (0..MAX_LISTED as u32).collect::<Vec<_>>());
        assert_eq!(f.frames, (1..=MAX_LISTED as u64).collect::<Vec<_>>());
        assert_eq!(f.evidence.len(), MAX_EVIDENCE);
        // Too many frames to list: the filter names streams instead.
        assert!(
            f.display_filter.starts_with("tcp.stream in {0 1 2 "),
            "{}",
            f.display_filter
        );
    }

    #[test]
    fn evidence_lists_every_case_when_few() {
        let t = Timestamp::from_parts(1000, 0);
        let mut set = EvidenceSet::new();
        for id in [5u32, 3, 5, 9] {
            set.add(
                id,
                t,
                &[u64::from(id) * 10, u64::from(id) * 10 + 1],
                String::new,
            );
        }
        let f = finding_of(set);
        assert_eq!(f.connections, vec![3, 5, 9]);
        assert_eq!(f.frames, vec![30, 31, 50, 51, 90, 91]);
        assert_eq!(f.display_filter, "frame.number in {30 31 50 51 90 91}");
    }

    #[test]
    fn absorbing_sets_equals_adding_every_case_to_one() {
        let t = |s: f64| Timestamp::from_parts(1000, 0).add_secs(s);
        let mut one = EvidenceSet::new();
        let mut parts = [EvidenceSet::new(), EvidenceSet::new(), EvidenceSet::new()];
        for i in 0..300u32 {
            let at = t(f64::from((i * 37) % 300));
            let frames = [u64::from(i) * 2 + 1, u64::from(i) * 2 + 2];
            one.add(i, at, &frames, || format!("case {i}"));
            parts[i as usize % 3].add(i, at, &frames, || format!("case {i}"));
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

    #[test]
    fn display_filter_lists_frames_or_streams() {
        assert_eq!(display_filter(&[3, 9], &[1]), "frame.number in {3 9}");
        let many: Vec<u64> = (1..=100).collect();
        assert_eq!(display_filter(&many, &[4, 5]), "tcp.stream in {4 5}");
    }
}
