//! Detectors turn connection lifecycles into findings: verdicts with the
//! frames that prove them and a Wireshark display filter that shows them.
//!
//! Push model (as grep-searcher's `Sink`): the pipeline calls `on_segment`
//! for every TCP segment in capture order with the live connection it
//! belongs to, then `finish` once with every finished connection. State
//! stays bounded: counters and per-connection or per-host maps, never all
//! segments. One file per finding kind; `all()` lists them in report order.

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
use crate::track::{ConnId, Connection, ConnectionRecord, HostRecord, Observation};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

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
    /// Connection ids (`tcp.stream`), at most MAX_EVIDENCE.
    pub connections: Vec<ConnId>,
    /// Frame numbers of the evidence.
    pub frames: Vec<u64>,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
    /// A Wireshark display filter that shows the evidence.
    pub display_filter: String,
    pub evidence: Vec<Evidence>,
    /// Where the long explanation lives (`timewait explain KIND`).
    pub doc: String,
}

impl Finding {
    /// A finding from its evidence rows (which may be more than are kept).
    pub fn new(
        kind: FindingKind,
        severity: Severity,
        summary: String,
        host: Option<String>,
        mut evidence: Vec<Evidence>,
    ) -> Finding {
        let count = evidence.len() as u64;
        evidence.sort_by_key(|e| (e.at, e.connection));
        let first = evidence.first().map(|e| e.at);
        let last = evidence.last().map(|e| e.at);
        let mut connections: Vec<ConnId> = evidence.iter().map(|e| e.connection).collect();
        connections.sort_unstable();
        connections.dedup();
        let mut frames: Vec<u64> = evidence
            .iter()
            .flat_map(|e| e.frames.iter().copied())
            .collect();
        frames.sort_unstable();
        frames.dedup();
        // The filter covers all the evidence, the lists only the first ones.
        let display_filter = display_filter(&frames, &connections);
        evidence.truncate(MAX_EVIDENCE);
        connections.truncate(MAX_LISTED);
        frames.truncate(MAX_LISTED);
        let (explanation, advice) = texts(kind);
        Finding {
            kind,
            severity,
            summary,
            explanation: explanation.to_string(),
            advice: advice.to_string(),
            host,
            count,
            connections,
            frames,
            first,
            last,
            display_filter,
            evidence,
            doc: format!("docs/findings/{}.md", kind.as_str()),
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
    }
}

/// What `finish` sees: every connection, the hosts, the options, the
/// capture's time span, and the findings of detectors that ran earlier
/// (so a connection explained by one finding is not reported again as a
/// lesser one).
pub struct Context<'a> {
    pub conns: &'a [ConnectionRecord],
    pub hosts: &'a [HostRecord],
    pub options: &'a Options,
    pub capture_start: Option<Timestamp>,
    pub capture_end: Option<Timestamp>,
    pub earlier: &'a [Finding],
}

impl Context<'_> {
    pub fn conn(&self, id: ConnId) -> Option<&ConnectionRecord> {
        // Records are sorted by id and ids are dense from 0.
        self.conns.get(id as usize).filter(|c| c.id == id)
    }

    /// Connections already explained by a finding of `kind`.
    pub fn claimed_by(&self, kind: FindingKind) -> std::collections::HashSet<ConnId> {
        self.earlier
            .iter()
            .filter(|f| f.kind == kind)
            .flat_map(|f| f.evidence.iter().map(|e| e.connection))
            .collect()
    }

    /// Seconds since the start of the capture, for summaries.
    pub fn rel(&self, ts: Timestamp) -> f64 {
        self.capture_start.map_or(0.0, |s| ts.secs_since(s))
    }
}

/// A finding kind's detector.
pub trait Detector {
    /// The kinds this detector can emit.
    fn kinds(&self) -> &'static [FindingKind];
    /// Every TCP segment, in capture order, with the connection after it.
    fn on_segment(&mut self, _seg: &Segment, _obs: &Observation, _conn: &Connection) {}
    /// Once, after the last segment.
    fn finish(&mut self, ctx: &Context<'_>) -> Vec<Finding>;
}

/// Every detector, in the order they run: one that explains a connection
/// runs before the ones that would report it as something lesser.
pub fn all(options: &Options) -> Vec<Box<dyn Detector>> {
    vec![
        Box::new(fin_retransmit_rst::FinRetransmitRst::default()),
        Box::new(paws_syn_drop::PawsSynDrop::new(options)),
        Box::new(time_wait_pressure::TimeWaitPressure),
        Box::new(tuple_reuse::TupleReuse::default()),
        Box::new(connection_churn::ConnectionChurn),
        Box::new(server_active_close::ServerActiveClose),
        Box::new(handshake_failure::HandshakeFailure),
        Box::new(abortive_close::AbortiveClose),
        Box::new(fin_wait_2_stall::FinWait2Stall),
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
    ctx_base: &Context<'_>,
    selection: &Selection,
) -> Vec<Finding> {
    let mut findings: Vec<Finding> = Vec::new();
    for d in detectors.iter_mut() {
        let ctx = Context {
            conns: ctx_base.conns,
            hosts: ctx_base.hosts,
            options: ctx_base.options,
            capture_start: ctx_base.capture_start,
            capture_end: ctx_base.capture_end,
            earlier: &findings,
        };
        let new = d.finish(&ctx);
        findings.extend(new);
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
        for kind in FindingKind::ALL {
            let n = detectors
                .iter()
                .filter(|d| d.kinds().contains(kind))
                .count();
            assert_eq!(n, 1, "{kind}");
        }
        let emitted: usize = detectors.iter().map(|d| d.kinds().len()).sum();
        assert_eq!(emitted, FindingKind::ALL.len());
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
