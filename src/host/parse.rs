//! Reading what people give as host information: a `timewait collect`
//! file (JSON), or the text of `sysctl -a`, `nstat` (`-az` or deltas),
//! `ss -tan` or `ss -s` as pasted into a ticket. The kind is recognised by
//! content, never by the file name. Anything else gets a message that says
//! what was expected, so a wrong file is never silently ignored.

use super::{Collected, HostError, HostInput, SCHEMA, Snapshot, Sockets};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

/// Reads and recognises one host-information file.
pub fn read_file(path: &Path) -> Result<HostInput, HostError> {
    let bytes = std::fs::read(path).map_err(|e| HostError::Read {
        path: path.display().to_string(),
        source: e,
    })?;
    parse_bytes(&bytes).map_err(|message| HostError::Format {
        path: path.display().to_string(),
        message,
    })
}

/// Recognises and parses host information; the error says why not.
pub fn parse_bytes(bytes: &[u8]) -> Result<HostInput, String> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(
            "not text: expected a timewait host snapshot (JSON) or the output of \
                    sysctl -a, nstat, ss -tan or ss -s"
                .to_string(),
        );
    };
    parse_text(text)
}

pub fn parse_text(text: &str) -> Result<HostInput, String> {
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(
            "empty: expected a timewait host snapshot or the output of sysctl -a, \
                    nstat, ss -tan or ss -s"
                .to_string(),
        );
    }
    if trimmed.starts_with('{') {
        return parse_json(trimmed);
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let first = lines.first().copied().unwrap_or("").trim();
    if first == "#kernel" || counter_lines(&lines) * 2 > lines.len() {
        return parse_nstat(&lines);
    }
    if first.starts_with("Total:")
        || lines
            .iter()
            .any(|l| l.starts_with("TCP:") && l.contains("timewait"))
    {
        return parse_ss_summary(&lines);
    }
    if (first.starts_with("State") && first.contains("Local Address"))
        || lines
            .iter()
            .filter(|l| ss_state(first_word(l)).is_some())
            .count()
            * 2
            > lines.len()
    {
        return parse_ss_tan(&lines);
    }
    if first.starts_with("Proto") || first.starts_with("Active Internet connections") {
        return Err("this looks like netstat output; give `ss -tan` (or `ss -s`) instead".into());
    }
    if lines
        .iter()
        .any(|l| l.starts_with("net.inet.") || l.starts_with("kern.ostype"))
    {
        return Err(
            "this looks like sysctl output of a BSD or macOS host (net.inet.*): \
                    timewait knows Linux's TCP settings only"
                .into(),
        );
    }
    if lines.iter().filter(|l| sysctl_line(l).is_some()).count() * 2 > lines.len() {
        return parse_sysctl(&lines);
    }
    let shown: String = first.chars().take(60).collect();
    Err(format!(
        "not recognised (first line: `{shown}`): expected a timewait host snapshot (JSON) or \
         the output of sysctl -a, nstat -az, ss -tan or ss -s"
    ))
}

fn first_word(l: &str) -> &str {
    l.split_whitespace().next().unwrap_or("")
}

fn parse_json(text: &str) -> Result<HostInput, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        format!("not a valid timewait host snapshot (broken or truncated JSON: {e})")
    })?;
    let schema = v.get("schema").and_then(|s| s.as_str()).unwrap_or("");
    if !schema.starts_with("timewait-host/") {
        return Err(if schema.starts_with("timewait/") {
            "this is a timewait report (--format json), not a host snapshot: \
             make one with `timewait collect`"
                .to_string()
        } else {
            format!("JSON without `\"schema\": \"{SCHEMA}\"`: not a timewait host snapshot")
        });
    }
    if schema != SCHEMA {
        return Err(format!(
            "host snapshot format {schema}; this timewait reads {SCHEMA}"
        ));
    }
    if v.get("before").is_some() {
        serde_json::from_value::<Collected>(v)
            .map(|c| HostInput::Collected(Box::new(c)))
            .map_err(|e| format!("a broken timewait collect file: {e}"))
    } else {
        serde_json::from_value::<Snapshot>(v)
            .map(|s| HostInput::Snapshot(Box::new(s)))
            .map_err(|e| format!("a broken timewait host snapshot: {e}"))
    }
}

/// `TcpExtPAWSTimewait   3   0.0`: nstat's counter line.
fn counter_line(l: &str) -> Option<(&str, i64)> {
    let mut it = l.split_whitespace();
    let name = it.next()?;
    let value = it.next()?.parse::<i64>().ok()?;
    let rest: Vec<&str> = it.collect();
    let ok_name = name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let ok_rest = rest.len() <= 1 && rest.iter().all(|r| r.parse::<f64>().is_ok());
    (ok_name && ok_rest).then_some((name, value))
}

fn counter_lines(lines: &[&str]) -> usize {
    lines.iter().filter(|l| counter_line(l).is_some()).count()
}

fn parse_nstat(lines: &[&str]) -> Result<HostInput, String> {
    let mut out = BTreeMap::new();
    for l in lines {
        if l.starts_with('#') {
            continue;
        }
        if let Some((name, v)) = counter_line(l) {
            out.insert(name.to_string(), v);
        }
    }
    if !out.keys().any(|k| k.starts_with("Tcp")) {
        return Err("nstat output without any Tcp or TcpExt counter".into());
    }
    Ok(HostInput::Nstat(out))
}

/// `net.ipv4.tcp_tw_reuse = 2`.
fn sysctl_line(l: &str) -> Option<(&str, &str)> {
    let (k, v) = l.split_once(" = ").or_else(|| {
        // `sysctl -a` prints `key = ` for an empty value.
        l.strip_suffix(" =").map(|k| (k, ""))
    })?;
    let k = k.trim();
    let ok = !k.is_empty()
        && k.contains('.')
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:*".contains(c));
    ok.then_some((k, v))
}

fn parse_sysctl(lines: &[&str]) -> Result<HostInput, String> {
    let mut out = BTreeMap::new();
    for l in lines {
        if let Some((k, v)) = sysctl_line(l) {
            out.insert(k.to_string(), super::snapshot::normalize_value(v));
        }
    }
    if !out.keys().any(|k| k.starts_with("net.")) {
        return Err("sysctl output without any net.* setting".into());
    }
    Ok(HostInput::Sysctl(out))
}

/// ss's state names, as the kernel names them.
fn ss_state(s: &str) -> Option<&'static str> {
    Some(match s {
        "ESTAB" => "ESTABLISHED",
        "SYN-SENT" => "SYN_SENT",
        "SYN-RECV" => "SYN_RECV",
        "FIN-WAIT-1" => "FIN_WAIT1",
        "FIN-WAIT-2" => "FIN_WAIT2",
        "TIME-WAIT" => "TIME_WAIT",
        "UNCONN" | "CLOSE" => "CLOSE",
        "CLOSE-WAIT" => "CLOSE_WAIT",
        "LAST-ACK" => "LAST_ACK",
        "LISTEN" => "LISTEN",
        "CLOSING" => "CLOSING",
        _ => return None,
    })
}

/// `127.0.0.1:40686`, `[::1]:80`, `[::ffff:10.0.0.1]:80`, `[fe80::1%eth0]:22`.
fn ss_ip(endpoint: &str) -> Option<IpAddr> {
    let (host, _port) = endpoint.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.split('%').next()?;
    let ip: IpAddr = host.parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    })
}

fn parse_ss_tan(lines: &[&str]) -> Result<HostInput, String> {
    let mut s = Sockets::default();
    let mut rows = 0;
    for l in lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        // With -p or -e more columns follow; the first five are fixed.
        // `ss -an` adds a Netid column first.
        let f = if f.first().is_some_and(|n| *n == "tcp") {
            &f[1..]
        } else {
            &f[..]
        };
        let Some(state) = f.first().and_then(|w| ss_state(w)) else {
            continue;
        };
        rows += 1;
        *s.by_state.entry(state.to_string()).or_default() += 1;
        if state == "TIME_WAIT"
            && let Some(ip) = f.get(3).and_then(|e| ss_ip(e))
        {
            *s.time_wait_by_local.entry(ip).or_default() += 1;
        }
    }
    if rows == 0 {
        return Err("ss output without any socket line".into());
    }
    Ok(HostInput::SsSockets(s))
}

/// `TCP:   22 (estab 0, closed 22, orphaned 0, timewait 5)`.
fn parse_ss_summary(lines: &[&str]) -> Result<HostInput, String> {
    let Some(tcp) = lines.iter().find(|l| l.starts_with("TCP:")) else {
        return Err("ss -s output without its `TCP:` line (truncated?)".into());
    };
    let inner = tcp
        .split_once('(')
        .and_then(|(_, r)| r.split_once(')'))
        .map(|(i, _)| i)
        .ok_or_else(|| format!("ss -s: cannot read `{}`", tcp.trim()))?;
    let mut s = Sockets::default();
    for part in inner.split(',') {
        let mut it = part.split_whitespace();
        let (Some(name), Some(n)) = (it.next(), it.next().and_then(|n| n.parse::<u64>().ok()))
        else {
            continue;
        };
        let state = match name {
            "estab" => "ESTABLISHED",
            "timewait" => "TIME_WAIT",
            _ => continue,
        };
        s.by_state.insert(state.to_string(), n);
    }
    if !s.by_state.contains_key("TIME_WAIT") {
        return Err(format!("ss -s: no timewait count in `{}`", tcp.trim()));
    }
    Ok(HostInput::SsSummary(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_recognised_by_content() {
        let n = parse_text("#kernel\nTcpExtPAWSTimewait  3  0.0\nTcpActiveOpens 5 0.0\n").unwrap();
        assert!(matches!(&n, HostInput::Nstat(m) if m["TcpExtPAWSTimewait"] == 3));
        // nstat deltas without the header line.
        let n = parse_text("TcpExtTCPTimeWaitOverflow       5                  0.0\n").unwrap();
        assert!(matches!(&n, HostInput::Nstat(m) if m["TcpExtTCPTimeWaitOverflow"] == 5));
        let s =
            parse_text("net.ipv4.ip_local_port_range = 40000\t40007\nnet.ipv4.tcp_tw_reuse = 0\n")
                .unwrap();
        assert!(
            matches!(&s, HostInput::Sysctl(m) if m["net.ipv4.ip_local_port_range"] == "40000 40007")
        );
        let t = parse_text("TIME-WAIT 0 0 [::ffff:10.0.0.1]:40000 [::ffff:10.0.0.2]:80\n").unwrap();
        let HostInput::SsSockets(t) = t else {
            panic!("ss")
        };
        assert_eq!(
            t.time_wait_by_local[&"10.0.0.1".parse::<IpAddr>().unwrap()],
            1
        );
    }

    #[test]
    fn foreign_and_broken_inputs_say_what_was_expected() {
        let bsd = parse_text("kern.ostype: Darwin\nnet.inet.tcp.msl: 15000\n").unwrap_err();
        assert!(bsd.contains("BSD or macOS"), "{bsd}");
        let netstat =
            parse_text("Proto Recv-Q Send-Q Local Address Foreign Address State\n").unwrap_err();
        assert!(netstat.contains("netstat"), "{netstat}");
        let json = parse_text("{\"schema\": \"timewait-host/1\", \"taken_at\": ").unwrap_err();
        assert!(json.contains("truncated"), "{json}");
        let report = parse_text("{\"schema\": \"timewait/1\"}").unwrap_err();
        assert!(report.contains("timewait report"), "{report}");
        assert!(parse_text("  \n").unwrap_err().contains("empty"));
        assert!(
            parse_bytes(&[0xd4, 0xc3, 0xb2, 0xa1, 0, 0])
                .unwrap_err()
                .contains("not text")
        );
        let summary = parse_text("Total: 1\n").unwrap_err();
        assert!(summary.contains("TCP:"), "{summary}");
    }
}
