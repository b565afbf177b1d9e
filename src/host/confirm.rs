//! The confirm pass: each finished finding checked against the counters of
//! the host it is about, and the host's settings turned into findings of
//! their own where they hurt. Runs after every detector, on the finished
//! `Vec<Finding>`, so detectors never know whether host information exists.
//!
//! Which counter belongs to which finding is the kernel's bookkeeping:
//! - `paws-syn-drop`: `tcp_timewait_state_process` counts
//!   `LINUX_MIB_PAWSTIMEWAITREJECTED` (TcpExtPAWSTimewait) on the server
//!   when a TIME_WAIT socket rejects a SYN; before 4.12, `tcp_tw_recycle`'s
//!   per-peer check in `tcp_conn_request` counted TcpExtPAWSPassive.
//! - `fin-retransmit-rst`: `tcp_time_wait` counts TcpExtTCPTimeWaitOverflow
//!   on the active closer when `inet_twsk_alloc` finds the buckets full
//!   (`tcp_max_tw_buckets`).
//! - `tuple-reuse`: `tcp_twsk_unique` counts TcpExtTWRecycled on the client
//!   that reuses its own TIME_WAIT port (`tcp_tw_reuse`).
//! - `handshake-failure`: `tcp_v4_syn_recv_sock` counts TcpExtListenOverflows
//!   and TcpExtListenDrops on the server when the accept queue is full.
//! - `abortive-close`: `tcp_close` and `tcp_disconnect` count
//!   TcpExtTCPAbortOnData / OnClose / OnLinger on the side that sent RST.
//! - `time-wait-pressure`: the TIME_WAIT sockets /proc/net/tcp lists for the
//!   client's address when the capture ended.

use super::{HostContext, PortRangeSource};
use crate::detect::{
    CounterReading, EvidenceSet, Finding, FindingKind, HostCheck, Severity, Verdict,
};
use crate::track::HostRecord;
use std::net::{IpAddr, SocketAddr};

/// Which host of a finding keeps its counter.
#[derive(Clone, Copy)]
enum Side {
    Client,
    Server,
    /// The finding's host is one address (the active closer).
    Named,
    /// Not known from the finding.
    Any,
}

/// The counters of a kind, the side that counts them, and whether zero
/// during the capture contradicts the finding (or only one of its causes).
fn rule(f: &Finding, ctx_kernel_old: bool) -> Option<(Vec<&'static str>, Side, bool)> {
    Some(match f.kind {
        FindingKind::PawsSynDrop => {
            let mut c = vec!["TcpExtPAWSTimewait"];
            if ctx_kernel_old {
                c.push("TcpExtPAWSPassive");
            }
            (c, Side::Server, true)
        }
        FindingKind::FinRetransmitRst => (vec!["TcpExtTCPTimeWaitOverflow"], Side::Named, true),
        FindingKind::TupleReuse => (vec!["TcpExtTWRecycled"], Side::Client, false),
        FindingKind::HandshakeFailure => (
            vec!["TcpExtListenOverflows", "TcpExtListenDrops"],
            Side::Server,
            false,
        ),
        FindingKind::AbortiveClose => {
            let side = if f.summary.contains("RST from the server") {
                Side::Server
            } else {
                Side::Any
            };
            (
                vec![
                    "TcpExtTCPAbortOnData",
                    "TcpExtTCPAbortOnClose",
                    "TcpExtTCPAbortOnLinger",
                ],
                side,
                matches!(side, Side::Server),
            )
        }
        FindingKind::ConnectionChurn => (vec!["TcpActiveOpens"], Side::Client, false),
        _ => return None,
    })
}

/// `10.0.0.1 → 10.0.0.2:80` → (client, server); `10.0.0.2:80`, `[::1]:80`
/// or a bare address → (None, it).
pub fn host_ips(host: &str) -> (Option<IpAddr>, Option<IpAddr>) {
    let one = |s: &str| -> Option<IpAddr> {
        let s = s.trim();
        s.parse::<IpAddr>()
            .ok()
            .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
    };
    match host.split_once(" → ") {
        Some((c, s)) => (one(c), one(s)),
        None => (None, one(host)),
    }
}

fn side_ip(f: &Finding, side: Side) -> Option<IpAddr> {
    let (client, server) = host_ips(f.host.as_deref()?);
    match side {
        Side::Client => client,
        Side::Server | Side::Named => server,
        Side::Any => None,
    }
}

fn lower(s: Severity) -> Severity {
    match s {
        Severity::Error => Severity::Warning,
        _ => Severity::Info,
    }
}

/// Checks every finding against the hosts and adds the settings findings.
/// `range` says where `--port-range` came from when a host supplied it;
/// `hosts` and `duration_s` give each host's close rate.
pub fn confirm(
    findings: &mut Vec<Finding>,
    contexts: &[HostContext],
    range: Option<&PortRangeSource>,
    hosts: &[HostRecord],
    duration_s: f64,
    time_wait_s: f64,
) {
    if contexts.is_empty() {
        return;
    }
    for f in findings.iter_mut() {
        check(f, contexts, range);
    }
    let mut extra = settings_findings(findings, contexts, hosts, duration_s, time_wait_s);
    findings.append(&mut extra);
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.kind.cmp(&b.kind)));
}

fn check(f: &mut Finding, contexts: &[HostContext], range: Option<&PortRangeSource>) {
    let mut check = HostCheck {
        verdict: Verdict::Unchecked,
        counters: Vec::new(),
        notes: Vec::new(),
        severity_before: None,
    };
    let old_kernel = contexts
        .iter()
        .any(|c| c.kernel_version().is_some_and(|v| v < (4, 12)));
    if let Some((counters, side, contradicts)) = rule(f, old_kernel) {
        let ip = side_ip(f, side);
        let mut moved_delta = false;
        let mut moved_other = false;
        let mut zero_on_the_host = false;
        for ctx in contexts {
            if ip.is_some_and(|ip| !ctx.describes(ip)) {
                continue;
            }
            let Some(span) = ctx.counter_span else {
                continue;
            };
            let mut sum = 0;
            let mut any = false;
            for name in &counters {
                let Some(v) = ctx.counter(name) else { continue };
                any = true;
                sum += v;
                // Zero readings of secondary counters add nothing.
                if v != 0 || name == &counters[0] {
                    check.counters.push(CounterReading {
                        host: ctx.label.clone(),
                        counter: name.to_string(),
                        value: v,
                        text: format!("{name} {} on {}", span.phrase(v), ctx.label),
                    });
                }
            }
            if !any {
                continue;
            }
            if sum > 0 {
                if span.is_delta() {
                    moved_delta = true;
                } else {
                    moved_other = true;
                }
            } else if span.is_delta() && ip.is_some_and(|ip| ctx.is_known_as(ip)) {
                zero_on_the_host = true;
            }
        }
        check.verdict = if moved_delta {
            Verdict::Confirmed
        } else if moved_other {
            Verdict::Consistent
        } else if zero_on_the_host && contradicts {
            Verdict::Contradicted
        } else {
            Verdict::Unchecked
        };
        if check.verdict == Verdict::Contradicted {
            let lowered = lower(f.severity);
            if lowered != f.severity {
                check.severity_before = Some(f.severity);
                f.severity = lowered;
            }
        }
    }
    notes_and_advice(f, contexts, range, &mut check);
    if check.verdict != Verdict::Unchecked || !check.counters.is_empty() || !check.notes.is_empty()
    {
        f.host_check = Some(check);
    }
}

/// The context known to be the host with this address, or the only
/// context without addresses.
fn context_for(contexts: &[HostContext], ip: Option<IpAddr>) -> Option<&HostContext> {
    let ip = ip?;
    contexts
        .iter()
        .find(|c| c.is_known_as(ip))
        .or_else(|| contexts.iter().find(|c| c.addresses.is_empty()))
}

fn notes_and_advice(
    f: &mut Finding,
    contexts: &[HostContext],
    range: Option<&PortRangeSource>,
    check: &mut HostCheck,
) {
    let (client, server) = f.host.as_deref().map(host_ips).unwrap_or((None, None));
    match f.kind {
        FindingKind::PawsSynDrop => {
            if let Some(ctx) = context_for(contexts, server) {
                if let Some(v) = ctx.kernel_version() {
                    let k = ctx.kernel.clone().unwrap_or_default();
                    check.notes.push(if v < (4, 12) {
                        format!(
                            "kernel {k} is older than 4.12: besides the TIME_WAIT socket's \
                             per-4-tuple check (TcpExtPAWSTimewait), tcp_tw_recycle=1 would drop \
                             SYNs per source IP (TcpExtPAWSPassive)"
                        )
                    } else {
                        format!(
                            "kernel {k} (4.12 or later) has no tcp_tw_recycle: the rejects can only \
                             come from a TIME_WAIT socket on the same 4-tuple \
                             (tcp_timewait_state_process)"
                        )
                    });
                }
                if ctx.sysctl_num("net.ipv4.tcp_tw_recycle") == Some(1) {
                    f.advice = format!(
                        "Set net.ipv4.tcp_tw_recycle=0 on {}: it is 1 there, and with it clients \
                         behind NAT lose SYNs. {}",
                        ctx.label, f.advice
                    )
                    .into();
                }
            }
        }
        FindingKind::TimestampRegression => {
            // The sender's kernel picks the offsets.
            let (client, _) = f.host.as_deref().map(host_ips).unwrap_or((None, None));
            if let Some(ctx) = client.and_then(|ip| contexts.iter().find(|c| c.is_known_as(ip)))
                && let Some(v) = ctx.kernel_version()
            {
                let k = ctx.kernel.clone().unwrap_or_default();
                check.notes.push(if v < (4, 10) {
                    format!("kernel {k} (before 4.10) adds no timestamp offset: one clock per host")
                } else if v < (4, 11) {
                    format!("kernel {k} (4.10) offsets each connection's timestamps (per 4-tuple)")
                } else {
                    format!(
                        "kernel {k} offsets timestamps per address pair (4.11 to 6.x), or per \
                         4-tuple if it carries commit 165573e41f2f"
                    )
                });
            }
        }
        FindingKind::FinRetransmitRst => {
            if let Some(ctx) = context_for(contexts, server) {
                if let Some(b) = ctx.sysctl("net.ipv4.tcp_max_tw_buckets") {
                    let tw = ctx
                        .sockets
                        .as_ref()
                        .and_then(|s| s.by_state.get("TIME_WAIT"))
                        .copied();
                    check.notes.push(format!(
                        "net.ipv4.tcp_max_tw_buckets = {b}{}",
                        tw.map_or(String::new(), |n| format!(
                            " with {n} TIME_WAIT sockets when the capture ended"
                        ))
                    ));
                    if check.verdict == Verdict::Confirmed {
                        f.advice = format!(
                            "Raise net.ipv4.tcp_max_tw_buckets on {} (now {b}): the kernel \
                             freed TIME_WAIT sockets because the buckets were full. {}",
                            ctx.label, f.advice
                        )
                        .into();
                    }
                }
                if check.verdict == Verdict::Contradicted {
                    check.notes.push(
                        "no TIME_WAIT overflow: the socket was gone for another reason \
                         (SO_LINGER 0, tcp_tw_recycle, or the closer is not this host)"
                            .to_string(),
                    );
                }
            }
        }
        FindingKind::TimeWaitPressure => {
            if let Some(r) = range {
                check.notes.push(format!(
                    "the ephemeral range {}-{} is {}",
                    r.low, r.high, r.from
                ));
            }
            if let Some(ctx) = context_for(contexts, client)
                && let Some((lo, hi)) = ctx.port_range()
            {
                let reuse = ctx.sysctl_num("net.ipv4.tcp_tw_reuse");
                let ts = ctx.sysctl_num("net.ipv4.tcp_timestamps");
                let mut what = vec![format!(
                    "widen net.ipv4.ip_local_port_range (now {lo} {hi}, {} ports)",
                    u32::from(hi - lo) + 1
                )];
                if reuse.is_some_and(|r| r != 1) && ts != Some(0) {
                    what.push(format!(
                        "set net.ipv4.tcp_tw_reuse=1 (now {}; it needs timestamps on both ends)",
                        reuse.unwrap_or(0)
                    ));
                }
                f.advice = format!("On {}: {}. {}", ctx.label, what.join(", or "), f.advice).into();
            }
            if let Some(ip) = client
                && let Some(ctx) = contexts.iter().find(|c| c.is_known_as(ip))
                && let Some(s) = &ctx.sockets
            {
                let n = s.time_wait_by_local.get(&ip).copied().unwrap_or(0);
                check.counters.push(CounterReading {
                    host: ctx.label.clone(),
                    counter: format!("TIME_WAIT sockets on {ip}"),
                    value: n as i64,
                    text: format!("{n} TIME_WAIT sockets on {ip} when the capture ended"),
                });
                if n > 0 && check.verdict == Verdict::Unchecked {
                    check.verdict = Verdict::Confirmed;
                }
            }
        }
        FindingKind::HandshakeFailure => {
            if check.verdict == Verdict::Confirmed
                && let Some(ctx) = context_for(contexts, server)
            {
                let somaxconn = ctx.sysctl("net.core.somaxconn").unwrap_or("?");
                let backlog = ctx.sysctl("net.ipv4.tcp_max_syn_backlog").unwrap_or("?");
                f.advice = format!(
                    "The listen queue overflowed on {}: raise the application's listen() \
                     backlog, capped by net.core.somaxconn (now {somaxconn}; \
                     net.ipv4.tcp_max_syn_backlog {backlog}), or accept faster. {}",
                    ctx.label, f.advice
                )
                .into();
            } else if !check.counters.is_empty() && check.verdict == Verdict::Unchecked {
                check
                    .notes
                    .push("the listen queue did not overflow".to_string());
            }
        }
        _ => {}
    }
}

/// The explanation and advice of `host-setting` findings (each finding
/// replaces both with its own).
fn setting_finding(
    severity: Severity,
    summary: String,
    host: Option<String>,
    explanation: String,
    advice: String,
) -> Finding {
    // No frames show a setting: the filter shows the host's TCP traffic.
    let filter = host
        .as_deref()
        .and_then(|h| h.parse::<IpAddr>().ok())
        .map_or("tcp".to_string(), |ip| {
            format!("tcp && {}", crate::detect::ip_filter("addr", ip))
        });
    let mut f = Finding::new(
        FindingKind::HostSetting,
        severity,
        summary,
        host,
        EvidenceSet::new(),
    );
    f.explanation = explanation.into();
    f.advice = advice.into();
    f.display_filter = filter;
    f
}

/// Settings that hurt, as the findings' chapters say: `tcp_tw_recycle=1`,
/// churn without `tcp_tw_reuse`, `tcp_tw_reuse` without timestamps, a port
/// range narrower than the close rate needs.
fn settings_findings(
    findings: &[Finding],
    contexts: &[HostContext],
    hosts: &[HostRecord],
    duration_s: f64,
    time_wait_s: f64,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for ctx in contexts {
        let host_ip = |ip: &IpAddr| ctx.describes(*ip);
        let label = &ctx.label;
        if ctx.sysctl_num("net.ipv4.tcp_tw_recycle") == Some(1) {
            out.push(setting_finding(
                Severity::Error,
                format!("{label}: net.ipv4.tcp_tw_recycle = 1: clients behind NAT lose SYNs"),
                Some(label.clone()),
                "With tcp_tw_recycle (kernels before 4.12) the kernel remembers the last TSval of \
                 each peer IP for 60 s after closing a connection actively, and silently drops \
                 SYNs from that IP with an older TSval. Several hosts behind one NAT address have \
                 unrelated timestamp clocks, so all but one of them lose SYNs."
                    .to_string(),
                format!(
                    "Set net.ipv4.tcp_tw_recycle=0 on {label} (the option was removed in Linux 4.12)."
                ),
            ));
        }
        let reuse = ctx.sysctl_num("net.ipv4.tcp_tw_reuse");
        let timestamps = ctx.sysctl_num("net.ipv4.tcp_timestamps");
        if reuse == Some(1) && timestamps == Some(0) {
            out.push(setting_finding(
                Severity::Warning,
                format!(
                    "{label}: net.ipv4.tcp_tw_reuse = 1 does nothing with net.ipv4.tcp_timestamps = 0"
                ),
                Some(label.clone()),
                "tcp_tw_reuse lets connect() take over a TIME_WAIT port only when the old \
                 connection carried TCP timestamps (tcp_twsk_unique checks ts_recent): with \
                 timestamps off it never applies."
                    .to_string(),
                format!(
                    "Set net.ipv4.tcp_timestamps=1 on {label} (the peers must send timestamps too), \
                     or stop counting on tcp_tw_reuse."
                ),
            ));
        }
        // Churn from a client of this context without tcp_tw_reuse.
        let churn: Vec<&Finding> = findings
            .iter()
            .filter(|f| {
                matches!(
                    f.kind,
                    FindingKind::ConnectionChurn | FindingKind::TimeWaitPressure
                ) && f
                    .host
                    .as_deref()
                    .and_then(|h| host_ips(h).0)
                    .is_some_and(|ip| ctx.is_known_as(ip) || ctx.addresses.is_empty())
            })
            .collect();
        if let Some(worst) = churn.iter().max_by_key(|f| f.severity)
            && reuse.is_some_and(|r| r != 1)
            && timestamps != Some(0)
        {
            let client = worst.host.as_deref().and_then(|h| host_ips(h).0);
            let severity = if churn
                .iter()
                .any(|f| f.kind == FindingKind::TimeWaitPressure)
            {
                Severity::Warning
            } else {
                Severity::Info
            };
            let r = reuse.unwrap_or(0);
            out.push(setting_finding(
                severity,
                format!(
                    "{label}: closes short connections first{} with net.ipv4.tcp_tw_reuse = {r}{}",
                    client.map_or(String::new(), |ip| format!(" (as {ip})")),
                    if r == 2 { " (loopback only)" } else { "" }
                ),
                client.map(|ip| ip.to_string()).or(Some(label.clone())),
                format!(
                    "Each connection this host closes first holds its port in TIME_WAIT for \
                     {time_wait_s} s; with tcp_tw_reuse off, connect() cannot take such a port \
                     back for the same destination, and runs out (EADDRNOTAVAIL)."
                ),
                format!(
                    "Pool or keep connections alive first. Else set net.ipv4.tcp_tw_reuse=1 on \
                     {label}: it lets connect() reuse a TIME_WAIT port after 1 s, and needs TCP \
                     timestamps on both ends (here net.ipv4.tcp_timestamps = {}; the peer must send \
                     them too).",
                    timestamps.map_or("?".to_string(), |t| t.to_string())
                ),
            ));
        }
        // A port range narrower than the close rate needs.
        if let Some((lo, hi)) = ctx.port_range() {
            let size = u64::from(hi - lo) + 1;
            let closer = hosts
                .iter()
                .filter(|h| host_ip(&h.ip) && h.active_closes > 0)
                .filter(|h| ctx.is_known_as(h.ip) || ctx.addresses.is_empty())
                .max_by_key(|h| h.active_closes);
            if let Some(h) = closer {
                // A rate over less than a second is a burst: count it as one second.
                let rate = h.active_closes as f64 / duration_s.max(1.0);
                let needed = rate * time_wait_s;
                if needed > size as f64 {
                    out.push(setting_finding(
                        Severity::Warning,
                        format!(
                            "{label}: net.ipv4.ip_local_port_range = {lo} {hi} ({size} ports) is \
                             narrower than {:.0} ports: {} closes first {:.1} connections/s, each \
                             holding its port {time_wait_s} s",
                            needed.ceil(),
                            h.ip,
                            rate
                        ),
                        Some(h.ip.to_string()),
                        "The ports a client holds in TIME_WAIT toward one destination are the \
                         close rate times the TIME_WAIT interval (60 s on Linux); when that passes \
                         the ephemeral range, connect() fails with EADDRNOTAVAIL, which never \
                         reaches the wire."
                            .to_string(),
                        format!(
                            "Widen net.ipv4.ip_local_port_range on {label} (for example \
                             \"1024 65535\" keeps {:.0} connections/s per destination), pool \
                             connections, or set net.ipv4.tcp_tw_reuse=1.",
                            64512.0 / time_wait_s
                        ),
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::CounterSpan;

    fn finding(kind: FindingKind, severity: Severity, host: &str) -> Finding {
        Finding::new(
            kind,
            severity,
            "summary".into(),
            Some(host.into()),
            EvidenceSet::new(),
        )
    }

    fn context(
        ip: &str,
        kernel: &str,
        sysctls: &[(&str, &str)],
        counters: &[(&str, i64)],
    ) -> HostContext {
        let mut c = HostContext::new(format!("h ({ip})"));
        c.addresses = vec![ip.parse().unwrap()];
        c.kernel = Some(kernel.into());
        c.sysctls = sysctls
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        c.set_counters(
            counters.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            CounterSpan::Capture { seconds: 5.0 },
        );
        c
    }

    #[test]
    fn old_kernels_with_tw_recycle_explain_per_ip_paws_and_get_a_setting_finding() {
        let server = context(
            "10.0.0.2",
            "3.10.0-1160.el7.x86_64",
            &[("net.ipv4.tcp_tw_recycle", "1")],
            &[("TcpExtPAWSTimewait", 0), ("TcpExtPAWSPassive", 4)],
        );
        let mut f = vec![finding(
            FindingKind::PawsSynDrop,
            Severity::Error,
            "10.0.0.1 → 10.0.0.2:80",
        )];
        confirm(&mut f, &[server], None, &[], 1.0, 60.0);
        let paws = f
            .iter()
            .find(|f| f.kind == FindingKind::PawsSynDrop)
            .unwrap();
        let check = paws.host_check.as_ref().unwrap();
        // Per-IP PAWS counts TcpExtPAWSPassive, which only old kernels read.
        assert_eq!(check.verdict, Verdict::Confirmed);
        assert!(
            check.notes[0].contains("older than 4.12"),
            "{:?}",
            check.notes
        );
        assert!(paws.advice.starts_with("Set net.ipv4.tcp_tw_recycle=0"));
        let setting = f
            .iter()
            .find(|f| f.kind == FindingKind::HostSetting)
            .unwrap();
        assert_eq!(setting.severity, Severity::Error);
        assert!(setting.summary.contains("tcp_tw_recycle = 1"));
        // Most severe first, as the detectors' findings are.
        assert!(f.windows(2).all(|w| w[0].severity >= w[1].severity));
    }

    #[test]
    fn zero_on_the_findings_own_host_contradicts_zero_elsewhere_does_not() {
        let closer = context(
            "10.0.0.1",
            "6.1.0",
            &[],
            &[("TcpExtTCPTimeWaitOverflow", 0)],
        );
        let mut f = vec![finding(
            FindingKind::FinRetransmitRst,
            Severity::Warning,
            "10.0.0.1",
        )];
        confirm(&mut f, std::slice::from_ref(&closer), None, &[], 1.0, 60.0);
        let check = f[0].host_check.as_ref().unwrap();
        assert_eq!(check.verdict, Verdict::Contradicted);
        assert_eq!(f[0].severity, Severity::Info);
        assert_eq!(check.severity_before, Some(Severity::Warning));
        // The same counter on the peer says nothing about the closer.
        let peer = context(
            "10.0.0.2",
            "6.1.0",
            &[],
            &[("TcpExtTCPTimeWaitOverflow", 0)],
        );
        let mut f = vec![finding(
            FindingKind::FinRetransmitRst,
            Severity::Warning,
            "10.0.0.1",
        )];
        confirm(&mut f, &[peer], None, &[], 1.0, 60.0);
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(f[0].host_check.is_none());
    }

    #[test]
    fn timestamp_offsets_follow_the_senders_kernel() {
        for (kernel, expect) in [
            ("4.9.0", "no timestamp offset"),
            ("4.10.17", "per 4-tuple"),
            ("5.15.0", "per address pair"),
        ] {
            let client = context("10.0.0.1", kernel, &[], &[]);
            let mut f = vec![finding(
                FindingKind::TimestampRegression,
                Severity::Info,
                "10.0.0.1 → 10.0.0.2:80",
            )];
            confirm(&mut f, &[client], None, &[], 1.0, 60.0);
            let notes = &f[0].host_check.as_ref().unwrap().notes;
            assert!(notes[0].contains(expect), "{kernel}: {notes:?}");
        }
    }

    #[test]
    fn reuse_without_timestamps_and_a_narrow_range_are_findings() {
        let client = context(
            "10.0.0.1",
            "6.1.0",
            &[
                ("net.ipv4.tcp_tw_reuse", "1"),
                ("net.ipv4.tcp_timestamps", "0"),
                ("net.ipv4.ip_local_port_range", "40000 40099"),
            ],
            &[],
        );
        let hosts = vec![HostRecord {
            ip: "10.0.0.1".parse().unwrap(),
            connections: 20,
            active_closes: 20,
            passive_closes: 0,
            time_wait_peak: 20,
            peak_at: None,
        }];
        // 20 closes in 10 s = 2/s: 120 ports held, the range has 100.
        let mut f = Vec::new();
        confirm(
            &mut f,
            std::slice::from_ref(&client),
            None,
            &hosts,
            10.0,
            60.0,
        );
        let summaries: Vec<&str> = f.iter().map(|f| f.summary.as_str()).collect();
        assert!(
            summaries
                .iter()
                .any(|s| s.contains("does nothing with net.ipv4.tcp_timestamps = 0")),
            "{summaries:?}"
        );
        assert!(
            summaries
                .iter()
                .any(|s| s.contains("(100 ports) is narrower than 120 ports")),
            "{summaries:?}"
        );
        // At 1/s (60 ports) the range suffices.
        let mut f = Vec::new();
        confirm(&mut f, &[client], None, &hosts, 20.0, 60.0);
        assert!(f.iter().all(|f| !f.summary.contains("narrower")));
    }

    #[test]
    fn host_strings_name_client_and_server() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(
            host_ips("10.0.0.1 → 10.0.0.2:80"),
            (ip("10.0.0.1"), ip("10.0.0.2"))
        );
        assert_eq!(host_ips("[fd00::2]:80"), (None, ip("fd00::2")));
        assert_eq!(host_ips("10.4.1.1"), (None, ip("10.4.1.1")));
        assert_eq!(host_ips("nonsense"), (None, None));
    }
}
