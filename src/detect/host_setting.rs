//! `host-setting`: a TCP setting of a host whose information was given
//! (`--host-info` or CAPTURE.host.json) that hurts what the capture shows.
//! No detector reports it: `host::confirm` does, after the detectors,
//! from the host's settings and counters. Its spec lives here, with the
//! other kinds', and so do the types a finding carries for the host's word
//! on it, so that detect names nothing above it.

use super::{KindSpec, Severity};
use serde::Serialize;

pub const SPEC: KindSpec = KindSpec {
    name: "host-setting",
    explanation: "A TCP setting of a host whose information was given (`--host-info` or \
     CAPTURE.host.json) hurts what this capture shows.",
    advice: "Change the setting named in the summary.",
    doc: include_str!("../../docs/findings/host-setting.md"),
};

/// What the host's counters say about a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The counter moved during the capture, on the finding's host.
    Confirmed,
    /// The counter stayed at 0 during the capture on the finding's host:
    /// the finding drops a level.
    Contradicted,
    /// The counter is not zero, but over a span that is not the capture's
    /// (a single snapshot, pasted nstat).
    Consistent,
    /// Nothing to compare: the counter is 0 where it may not belong, or
    /// there is no counter for this kind; the notes say what is known.
    Unchecked,
}

/// One counter read for one finding.
#[derive(Debug, Clone, Serialize)]
pub struct CounterReading {
    /// The host context's label.
    pub host: String,
    pub counter: String,
    pub value: i64,
    /// `TcpExtPAWSTimewait +3 during the capture on HOST`, …
    pub text: String,
}

/// The host's word on one finding (JSON `findings[].host_check`).
#[derive(Debug, Clone, Serialize)]
pub struct HostCheck {
    pub verdict: Verdict,
    pub counters: Vec<CounterReading>,
    /// Settings and kernel facts that bear on the finding.
    pub notes: Vec<String>,
    /// The severity the wire alone gave, when the counters lowered it.
    pub severity_before: Option<Severity>,
}

impl HostCheck {
    /// One line for the reports: "confirmed: TcpExtPAWSTimewait +3 during
    /// the capture (server)".
    pub fn line(&self) -> String {
        let counters: Vec<String> = self.counters.iter().map(|c| c.text.clone()).collect();
        let mut s = match self.verdict {
            Verdict::Confirmed => "confirmed by the host".to_string(),
            Verdict::Contradicted => "contradicted by the host".to_string(),
            Verdict::Consistent => "consistent with the host".to_string(),
            Verdict::Unchecked => "host".to_string(),
        };
        if !counters.is_empty() {
            s.push_str(": ");
            s.push_str(&counters.join(", "));
        }
        if let Some(before) = self.severity_before {
            s.push_str(&format!(" (lowered from {before})"));
        }
        for n in &self.notes {
            s.push_str("; ");
            s.push_str(n);
        }
        s
    }
}
