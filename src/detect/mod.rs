//! Detectors turn connection lifecycles into findings: verdicts with the
//! frames that prove them. Each finding kind has its own file; `run` calls
//! them all.

use crate::analysis::Options;
use crate::time::Timestamp;
use crate::track::{ConnId, ConnectionRecord, HostRecord};
use serde::Serialize;

/// How much a finding matters; ordered, so `--fail-on warning` means
/// "warning or error".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// One verdict with its evidence.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub kind: &'static str,
    pub severity: Severity,
    pub summary: String,
    pub explanation: String,
    pub advice: String,
    pub host: Option<String>,
    pub connections: Vec<ConnId>,
    pub frames: Vec<u64>,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
    pub display_filter: String,
}

/// Runs every detector over the finished connections.
pub fn run(_conns: &[ConnectionRecord], _hosts: &[HostRecord], _options: &Options) -> Vec<Finding> {
    Vec::new()
}
