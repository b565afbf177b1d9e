//! The short "Host" section of the text and Markdown reports: per host, the
//! sysctls that matter for the findings and the counters that moved. Only
//! present when host information was read.

use crate::analysis::Analysis;
use crate::detect::{Finding, FindingKind};
use crate::host::{CounterSpan, HostContext};

/// Counters worth a line in the report when they moved (the JSON has all).
const REPORTED_COUNTERS: &[&str] = &[
    "TcpActiveOpens",
    "TcpPassiveOpens",
    "TcpAttemptFails",
    "TcpEstabResets",
    "TcpOutRsts",
    "TcpRetransSegs",
    "TcpExtTW",
    "TcpExtTWKilled",
    "TcpExtTWRecycled",
    "TcpExtPAWSTimewait",
    "TcpExtPAWSPassive",
    "TcpExtPAWSActive",
    "TcpExtPAWSEstab",
    "TcpExtTCPTimeWaitOverflow",
    "TcpExtListenOverflows",
    "TcpExtListenDrops",
    "TcpExtTCPAbortOnData",
    "TcpExtTCPAbortOnClose",
    "TcpExtTCPAbortOnLinger",
    "TcpExtTCPAbortOnTimeout",
    "TcpExtTCPSynRetrans",
    "TcpExtTCPChallengeACK",
    "TcpExtSyncookiesSent",
];

/// The sysctls a finding kind talks about.
fn sysctls_for(kind: FindingKind) -> &'static [&'static str] {
    match kind {
        FindingKind::PawsSynDrop | FindingKind::TimestampRegression => &[
            "net.ipv4.tcp_timestamps",
            "net.ipv4.tcp_tw_recycle",
            "net.ipv4.tcp_rfc1337",
        ],
        FindingKind::FinRetransmitRst => {
            &["net.ipv4.tcp_max_tw_buckets", "net.ipv4.tcp_tw_recycle"]
        }
        FindingKind::TimeWaitPressure
        | FindingKind::ConnectionChurn
        | FindingKind::TupleReuse
        | FindingKind::HostSetting => &[
            "net.ipv4.ip_local_port_range",
            "net.ipv4.tcp_tw_reuse",
            "net.ipv4.tcp_timestamps",
            "net.ipv4.tcp_max_tw_buckets",
        ],
        FindingKind::HandshakeFailure => &[
            "net.core.somaxconn",
            "net.ipv4.tcp_max_syn_backlog",
            "net.ipv4.tcp_syncookies",
            "net.ipv4.tcp_syn_retries",
            "net.ipv4.tcp_synack_retries",
        ],
        FindingKind::ServerActiveClose => &[
            "net.ipv4.tcp_keepalive_time",
            "net.ipv4.tcp_keepalive_intvl",
            "net.ipv4.tcp_keepalive_probes",
        ],
        FindingKind::FinWait2Stall => &["net.ipv4.tcp_fin_timeout"],
        FindingKind::AbortiveClose => &[],
    }
}

/// The line under a finding: what the host says about it.
pub fn finding_line(f: &Finding) -> Option<String> {
    f.host_check.as_ref().map(|c| c.line())
}

/// The lines under a finding in the text report: the host's verdict and,
/// when host information shaped it, the advice (which then names the
/// setting to change).
pub fn finding_text(f: &Finding) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(line) = finding_line(f) {
        out.push(format!("host: {line}"));
    }
    if f.host_check.is_some() || f.kind == FindingKind::HostSetting {
        out.push(format!("what to do: {}", f.advice));
    }
    out
}

/// The section's lines (without a heading); empty without host information.
pub fn section(a: &Analysis) -> Vec<String> {
    let Some(h) = &a.host else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    let mut wanted: Vec<&str> = vec!["net.ipv4.ip_local_port_range", "net.ipv4.tcp_tw_reuse"];
    for f in &a.findings {
        for s in sysctls_for(f.kind) {
            if !wanted.contains(s) {
                wanted.push(s);
            }
        }
    }
    for ctx in &h.hosts {
        lines.push(heading(ctx));
        let set: Vec<String> = wanted
            .iter()
            .filter_map(|k| ctx.sysctl(k).map(|v| format!("{k} = {v}")))
            .collect();
        if !set.is_empty() {
            lines.push(format!("  sysctl: {}", set.join(", ")));
        }
        if let Some(span) = ctx.counter_span {
            let moved: Vec<String> = REPORTED_COUNTERS
                .iter()
                .filter_map(|c| ctx.counters.get(*c).map(|v| (c, *v)))
                .map(|(c, v)| {
                    if span.is_delta() {
                        format!("{c} {v:+}")
                    } else {
                        format!("{c} {v}")
                    }
                })
                .collect();
            let what = match span {
                CounterSpan::Capture { seconds } => {
                    format!("counters that moved during the capture ({seconds:.1} s)")
                }
                CounterSpan::Between { seconds } => {
                    format!("counters that moved between the snapshots ({seconds:.0} s)")
                }
                CounterSpan::BetweenPastes => {
                    "counters that moved between the nstat outputs".to_string()
                }
                CounterSpan::Totals => "counters (totals, one snapshot)".to_string(),
                CounterSpan::Unknown => "counters (nstat, over its own interval)".to_string(),
            };
            lines.push(format!(
                "  {what}: {}",
                if moved.is_empty() {
                    "none of the TCP counters findings use".to_string()
                } else {
                    moved.join(", ")
                }
            ));
        }
        if let Some(s) = &ctx.sockets {
            let tw = s.by_state.get("TIME_WAIT").copied().unwrap_or(0);
            let mut per: Vec<(&std::net::IpAddr, &u64)> = s.time_wait_by_local.iter().collect();
            per.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let per: Vec<String> = per
                .iter()
                .take(5)
                .map(|(ip, n)| format!("{ip} {n}"))
                .collect();
            lines.push(format!(
                "  TIME_WAIT sockets: {tw}{}",
                if per.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", per.join(", "))
                }
            ));
        }
    }
    if let Some(r) = &h.port_range {
        lines.push(format!(
            "ephemeral port range {}-{}: {}",
            r.low, r.high, r.from
        ));
    }
    for w in &h.warnings {
        lines.push(format!("not used: {w}"));
    }
    lines
}

fn heading(ctx: &HostContext) -> String {
    let sources: Vec<&str> = ctx
        .sources
        .iter()
        .map(|s| s.split(" (").next().unwrap_or(s))
        .collect();
    format!(
        "{}{} (from {})",
        ctx.label,
        ctx.kernel
            .as_deref()
            .map_or(String::new(), |k| format!(", kernel {k}")),
        sources.join(", ")
    )
}
