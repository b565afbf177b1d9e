//! Host context: what the kernel knows that the wire does not. A capture
//! shows packets; the host's counters (`nstat`), settings (`sysctl`) and
//! sockets (`ss`) say whether the kernel really dropped that SYN for PAWS,
//! overflowed its TIME_WAIT buckets, or has the port range a finding
//! assumed. This module reads them (a snapshot from /proc by `timewait
//! collect`, or text pasted into a ticket), and [`confirm`] checks the
//! finished findings against them: a post-pass, so no detector needs to
//! know hosts exist.

pub mod confirm;
pub mod parse;
pub mod snapshot;

pub use crate::detect::{CounterReading, HostCheck, Verdict};
pub use confirm::confirm;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The host file's format name; bumped only with an incompatible change.
pub const SCHEMA: &str = "timewait-host/1";

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot read {path}: {source}")]
    Proc {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: String, message: String },
}

/// One look at a host (a network namespace): taken by `timewait collect`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    pub schema: String,
    /// RFC 3339, UTC.
    pub taken_at: String,
    /// The same instant in seconds since the epoch (orders snapshots).
    pub unix_time: f64,
    pub hostname: Option<String>,
    /// `uname -r`.
    pub kernel: Option<String>,
    /// The namespace's own addresses: which side of a capture it is.
    pub addresses: Vec<IpAddr>,
    /// Name (`net.ipv4.tcp_tw_reuse`) to value as `sysctl` prints it.
    pub sysctls: BTreeMap<String, String>,
    /// Every `Tcp` and `TcpExt` counter, as nstat names them.
    pub counters: BTreeMap<String, i64>,
    pub sockets: Sockets,
}

/// TCP sockets by state.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Sockets {
    /// Kernel state name (`TIME_WAIT`, `ESTABLISHED`, …) to count.
    pub by_state: BTreeMap<String, u64>,
    /// TIME_WAIT sockets per local address (empty from `ss -s`).
    pub time_wait_by_local: BTreeMap<IpAddr, u64>,
}

/// What `timewait collect -- CMD` writes beside the capture: a snapshot
/// before the command and one after it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Collected {
    pub schema: String,
    /// The capture command that ran between the two snapshots.
    pub command: Vec<String>,
    /// Its exit code (null when a signal ended it).
    pub exit_code: Option<i32>,
    pub before: Snapshot,
    pub after: Snapshot,
}

/// One file given to `--host-info` (or found beside a capture), as read.
#[derive(Debug, Clone)]
pub enum HostInput {
    Collected(Box<Collected>),
    Snapshot(Box<Snapshot>),
    /// `sysctl -a` text.
    Sysctl(BTreeMap<String, String>),
    /// `nstat` text: totals (`-a`) or increments since its last run;
    /// the text does not say which.
    Nstat(BTreeMap<String, i64>),
    /// `ss -tan` text.
    SsSockets(Sockets),
    /// `ss -s` text: totals only.
    SsSummary(Sockets),
}

impl HostInput {
    pub fn describe(&self) -> &'static str {
        match self {
            HostInput::Collected(_) => "timewait collect (before and after)",
            HostInput::Snapshot(_) => "timewait snapshot",
            HostInput::Sysctl(_) => "sysctl -a",
            HostInput::Nstat(_) => "nstat",
            HostInput::SsSockets(_) => "ss -tan",
            HostInput::SsSummary(_) => "ss -s",
        }
    }
}

/// What the counter values of a context mean.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CounterSpan {
    /// Increments between two snapshots around the capture.
    Capture { seconds: f64 },
    /// Increments between two snapshots taken separately.
    Between { seconds: f64 },
    /// Totals since the namespace was made (one snapshot).
    Totals,
    /// Increments between the first and the last of several pasted
    /// `nstat -a` outputs.
    BetweenPastes,
    /// Pasted nstat text: totals or increments since nstat last ran.
    Unknown,
}

impl CounterSpan {
    /// Whether a value is an increment over a known interval.
    pub fn is_delta(self) -> bool {
        matches!(
            self,
            CounterSpan::Capture { .. } | CounterSpan::Between { .. } | CounterSpan::BetweenPastes
        )
    }

    /// "+3 during the capture", "3 since boot", "3 (nstat)".
    pub fn phrase(self, v: i64) -> String {
        match self {
            CounterSpan::Capture { .. } => format!("{v:+} during the capture"),
            CounterSpan::Between { seconds } => {
                format!("{v:+} between the snapshots ({seconds:.0} s apart)")
            }
            CounterSpan::BetweenPastes => format!("{v:+} between the pasted nstat outputs"),
            CounterSpan::Totals => format!("{v} since the namespace started"),
            CounterSpan::Unknown => format!("{v} in the pasted nstat output"),
        }
    }
}

/// Everything known about one host, merged from its inputs.
#[derive(Debug, Clone, Serialize)]
pub struct HostContext {
    /// Hostname and addresses, or the file names of pasted text.
    pub label: String,
    /// The files it came from, with what each was.
    pub sources: Vec<String>,
    pub kernel: Option<String>,
    /// Empty when the inputs do not say (pasted text): then the context is
    /// taken to be the host of every finding, and never contradicts one.
    pub addresses: Vec<IpAddr>,
    pub sysctls: BTreeMap<String, String>,
    pub counter_span: Option<CounterSpan>,
    /// Counter values (increments or totals, see `counter_span`), only
    /// those that are not zero.
    pub counters: BTreeMap<String, i64>,
    /// Counters known to the inputs (to tell "0" from "not reported").
    #[serde(skip)]
    pub known_counters: std::collections::BTreeSet<String>,
    /// Sockets when the capture ended (or as pasted).
    pub sockets: Option<Sockets>,
}

impl HostContext {
    fn new(label: String) -> HostContext {
        HostContext {
            label,
            sources: Vec::new(),
            kernel: None,
            addresses: Vec::new(),
            sysctls: BTreeMap::new(),
            counter_span: None,
            counters: BTreeMap::new(),
            known_counters: Default::default(),
            sockets: None,
        }
    }

    fn set_counters(&mut self, values: BTreeMap<String, i64>, span: CounterSpan) {
        self.known_counters = values.keys().cloned().collect();
        self.counters = values.into_iter().filter(|(_, v)| *v != 0).collect();
        self.counter_span = Some(span);
    }

    /// A counter's value, `None` when the inputs have no counters or not
    /// this one.
    pub fn counter(&self, name: &str) -> Option<i64> {
        if !self.known_counters.contains(name) {
            return None;
        }
        Some(self.counters.get(name).copied().unwrap_or(0))
    }

    pub fn sysctl(&self, name: &str) -> Option<&str> {
        self.sysctls.get(name).map(String::as_str)
    }

    /// The sysctl as a number.
    pub fn sysctl_num(&self, name: &str) -> Option<i64> {
        self.sysctl(name)?.trim().parse().ok()
    }

    /// `net.ipv4.ip_local_port_range`, when it is two ports in order.
    pub fn port_range(&self) -> Option<(u16, u16)> {
        let v = self.sysctl("net.ipv4.ip_local_port_range")?;
        let mut it = v.split_whitespace().map(|p| p.parse::<u16>());
        match (it.next(), it.next(), it.next()) {
            (Some(Ok(lo)), Some(Ok(hi)), None) if lo <= hi => Some((lo, hi)),
            _ => None,
        }
    }

    /// Whether this context describes the host with address `ip`: yes
    /// when it has that address, or names no address at all.
    pub fn describes(&self, ip: IpAddr) -> bool {
        self.addresses.is_empty() || self.addresses.contains(&ip)
    }

    /// Whether it is known to be the host with address `ip` (its own
    /// addresses include it).
    pub fn is_known_as(&self, ip: IpAddr) -> bool {
        self.addresses.contains(&ip)
    }

    /// The kernel release as (major, minor).
    pub fn kernel_version(&self) -> Option<(u32, u32)> {
        let k = self.kernel.as_deref()?;
        let mut it = k.split(|c: char| !c.is_ascii_digit());
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        Some((major, minor))
    }
}

/// Where `--port-range` came from, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct PortRangeSource {
    pub low: u16,
    pub high: u16,
    /// `net.ipv4.ip_local_port_range of HOST (FILE)`.
    pub from: String,
}

/// The JSON `host` object: every host context read, and where the port
/// range came from when a host supplied it.
#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub hosts: Vec<HostContext>,
    pub port_range: Option<PortRangeSource>,
    /// Inputs that could not be used, and why.
    pub warnings: Vec<String>,
}

/// Merges the inputs into one context per host: a collect file is one
/// host with its counter increments; separate snapshots of the same host
/// (same hostname and addresses) pair into increments, first to last;
/// pasted text is one host (with increments when two nstat outputs were
/// given, in the order given).
pub fn combine(inputs: Vec<(String, HostInput)>) -> Vec<HostContext> {
    let mut out: Vec<HostContext> = Vec::new();
    let mut snapshots: Vec<(String, Snapshot)> = Vec::new();
    let mut pasted: Option<HostContext> = None;
    let mut nstats: Vec<BTreeMap<String, i64>> = Vec::new();
    for (path, input) in inputs {
        let source = format!("{path} ({})", input.describe());
        match input {
            HostInput::Collected(c) => {
                let seconds = (c.after.unix_time - c.before.unix_time).max(0.0);
                let mut ctx = from_snapshot(&c.after, vec![source]);
                ctx.set_counters(
                    delta(&c.before.counters, &c.after.counters),
                    CounterSpan::Capture { seconds },
                );
                out.push(ctx);
            }
            HostInput::Snapshot(s) => snapshots.push((source, *s)),
            other => {
                let ctx = pasted.get_or_insert_with(|| HostContext::new(String::new()));
                ctx.sources.push(source);
                match other {
                    HostInput::Sysctl(m) => ctx.sysctls.extend(m),
                    HostInput::Nstat(m) => nstats.push(m),
                    HostInput::SsSockets(s) | HostInput::SsSummary(s) => {
                        let merged = ctx.sockets.get_or_insert_with(Sockets::default);
                        for (k, v) in s.by_state {
                            merged.by_state.insert(k, v);
                        }
                        merged.time_wait_by_local.extend(s.time_wait_by_local);
                    }
                    HostInput::Collected(_) | HostInput::Snapshot(_) => {}
                }
            }
        }
    }
    // Snapshots of one host: hostname and addresses alike.
    snapshots.sort_by(|a, b| a.1.unix_time.total_cmp(&b.1.unix_time));
    let mut groups: Vec<Vec<(String, Snapshot)>> = Vec::new();
    for s in snapshots {
        match groups
            .iter_mut()
            .find(|g| g[0].1.hostname == s.1.hostname && g[0].1.addresses == s.1.addresses)
        {
            Some(g) => g.push(s),
            None => groups.push(vec![s]),
        }
    }
    for g in groups {
        let sources: Vec<String> = g.iter().map(|(p, _)| p.clone()).collect();
        let first = &g[0].1;
        let last = &g[g.len() - 1].1;
        let mut ctx = from_snapshot(last, sources);
        if g.len() > 1 {
            let seconds = (last.unix_time - first.unix_time).max(0.0);
            ctx.set_counters(
                delta(&first.counters, &last.counters),
                CounterSpan::Between { seconds },
            );
        } else {
            ctx.set_counters(last.counters.clone(), CounterSpan::Totals);
        }
        out.push(ctx);
    }
    if let Some(mut ctx) = pasted {
        match nstats.len() {
            0 => {}
            1 => ctx.set_counters(nstats.remove(0), CounterSpan::Unknown),
            _ => {
                let last = nstats.pop().unwrap_or_default();
                ctx.set_counters(delta(&nstats[0], &last), CounterSpan::BetweenPastes);
            }
        }
        let names: Vec<&str> = ctx
            .sources
            .iter()
            .map(|s| s.split(" (").next().unwrap_or(s))
            .collect();
        ctx.label = format!("pasted {}", names.join(", "));
        out.push(ctx);
    }
    out
}

fn from_snapshot(s: &Snapshot, sources: Vec<String>) -> HostContext {
    let shown: Vec<String> = s
        .addresses
        .iter()
        .filter(|a| !a.is_loopback() && !is_link_local(a))
        .map(IpAddr::to_string)
        .collect();
    let label = match (&s.hostname, shown.is_empty()) {
        (Some(h), false) => format!("{h} ({})", shown.join(", ")),
        (Some(h), true) => h.clone(),
        (None, false) => shown.join(", "),
        (None, true) => "host".to_string(),
    };
    let mut ctx = HostContext::new(label);
    ctx.sources = sources;
    ctx.kernel = s.kernel.clone();
    ctx.addresses = s.addresses.clone();
    ctx.sysctls = s.sysctls.clone();
    ctx.sockets = Some(s.sockets.clone());
    ctx
}

fn is_link_local(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// `after - before` per counter in `after` (a counter that appears only
/// after counts from 0).
fn delta(before: &BTreeMap<String, i64>, after: &BTreeMap<String, i64>) -> BTreeMap<String, i64> {
    after
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.wrapping_sub(before.get(k).copied().unwrap_or(0)),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(t: f64, host: &str, paws: i64) -> Snapshot {
        Snapshot {
            schema: SCHEMA.into(),
            taken_at: String::new(),
            unix_time: t,
            hostname: Some(host.into()),
            kernel: Some("6.1.0-13-amd64".into()),
            addresses: vec!["10.0.0.1".parse().unwrap()],
            sysctls: BTreeMap::new(),
            counters: [("TcpExtPAWSTimewait".to_string(), paws)].into(),
            sockets: Sockets::default(),
        }
    }

    #[test]
    fn two_snapshots_of_one_host_give_increments_in_time_order() {
        // Given after-first: the order of the files does not matter.
        let ctx = combine(vec![
            (
                "after.json".into(),
                HostInput::Snapshot(Box::new(snap(20.0, "a", 7))),
            ),
            (
                "before.json".into(),
                HostInput::Snapshot(Box::new(snap(10.0, "a", 4))),
            ),
        ]);
        assert_eq!(ctx.len(), 1);
        assert_eq!(ctx[0].counter("TcpExtPAWSTimewait"), Some(3));
        assert_eq!(
            ctx[0].counter_span,
            Some(CounterSpan::Between { seconds: 10.0 })
        );
        assert_eq!(ctx[0].counter("TcpExtNothing"), None);
        assert_eq!(ctx[0].kernel_version(), Some((6, 1)));
    }

    #[test]
    fn snapshots_of_different_hosts_stay_apart() {
        let ctx = combine(vec![
            (
                "a.json".into(),
                HostInput::Snapshot(Box::new(snap(20.0, "a", 7))),
            ),
            (
                "b.json".into(),
                HostInput::Snapshot(Box::new(snap(10.0, "b", 4))),
            ),
        ]);
        assert_eq!(ctx.len(), 2);
        assert!(
            ctx.iter()
                .all(|c| c.counter_span == Some(CounterSpan::Totals))
        );
    }
}
