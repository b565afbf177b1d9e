//! A host snapshot read straight from /proc: the kernel release, the TCP
//! sysctls the findings talk about, every `TcpExt` and `Tcp` counter, and
//! the TCP sockets by state. /proc/net and /proc/sys/net show the network
//! namespace of the process reading them, which is where the kernel keeps
//! these counters and settings; so a snapshot describes the namespace
//! `timewait collect` runs in, and names that namespace's addresses so
//! `analyze` can tell which side of a capture it describes.
//!
//! No dependency on `nstat`, `ss` or `sysctl`: the same files they read
//! (`/proc/net/netstat`, `/proc/net/snmp`, `/proc/net/tcp{,6}`,
//! `/proc/sys/...`).

use super::{HostError, SCHEMA, Snapshot, Sockets};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// The sysctls findings name, as `sysctl` spells them. Missing ones (for
/// example `tcp_tw_recycle`, removed in Linux 4.12) are left out.
pub const SYSCTLS: &[&str] = &[
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_tw_reuse",
    "net.ipv4.tcp_timestamps",
    "net.ipv4.tcp_tw_recycle",
    "net.ipv4.tcp_max_tw_buckets",
    "net.ipv4.tcp_rfc1337",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_syn_retries",
    "net.ipv4.tcp_synack_retries",
    "net.core.somaxconn",
    "net.ipv4.tcp_max_syn_backlog",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

/// Takes a snapshot of the network namespace this process runs in.
pub fn take() -> Result<Snapshot, HostError> {
    take_from(Path::new("/proc"))
}

/// A snapshot from a /proc tree at `proc` (tests point it elsewhere).
pub fn take_from(proc: &Path) -> Result<Snapshot, HostError> {
    let read = |rel: &str| std::fs::read_to_string(proc.join(rel));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let ts = crate::time::Timestamp::from_parts(now.as_secs() as i64, now.subsec_nanos() as i64);
    let mut sysctls = BTreeMap::new();
    for name in SYSCTLS {
        if let Ok(v) = read(&format!("sys/{}", name.replace('.', "/"))) {
            sysctls.insert(name.to_string(), normalize_value(&v));
        }
    }
    let netstat = read("net/netstat").map_err(|e| HostError::Proc {
        path: proc.join("net/netstat").display().to_string(),
        source: e,
    })?;
    let snmp = read("net/snmp").unwrap_or_default();
    let mut counters = BTreeMap::new();
    for text in [&netstat, &snmp] {
        counters.extend(
            proc_counters(text)
                .into_iter()
                .filter(|(k, _)| k.starts_with("Tcp")),
        );
    }
    let mut sockets = Sockets::default();
    for (file, v6) in [("net/tcp", false), ("net/tcp6", true)] {
        if let Ok(text) = read(file) {
            add_proc_sockets(&text, v6, &mut sockets);
        }
    }
    let mut addresses: Vec<IpAddr> = Vec::new();
    if let Ok(t) = read("net/fib_trie") {
        addresses.extend(fib_trie_local(&t).into_iter().map(IpAddr::V4));
    }
    if let Ok(t) = read("net/if_inet6") {
        addresses.extend(if_inet6(&t).into_iter().map(IpAddr::V6));
    }
    addresses.sort();
    addresses.dedup();
    Ok(Snapshot {
        schema: SCHEMA.to_string(),
        taken_at: ts.to_rfc3339(),
        unix_time: now.as_secs_f64(),
        hostname: read("sys/kernel/hostname")
            .ok()
            .map(|s| s.trim().to_string()),
        kernel: read("sys/kernel/osrelease")
            .ok()
            .map(|s| s.trim().to_string()),
        addresses,
        sysctls,
        counters,
        sockets,
    })
}

/// `32768\t60999\n` → `32768 60999`, as `sysctl -a` prints it (tabs
/// become one space).
pub fn normalize_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// /proc/net/netstat and /proc/net/snmp: pairs of lines, names then
/// values, each starting with the group (`TcpExt:`). Returns
/// `TcpExtPAWSTimewait`-style names, as nstat prints them.
pub fn proc_counters(text: &str) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    for pair in lines.chunks(2) {
        let [names, values] = pair else { continue };
        let (Some((g1, names)), Some((g2, values))) =
            (names.split_once(": "), values.split_once(": "))
        else {
            continue;
        };
        if g1 != g2 {
            continue;
        }
        for (n, v) in names.split_whitespace().zip(values.split_whitespace()) {
            if let Ok(v) = v.parse::<i64>() {
                out.insert(format!("{g1}{n}"), v);
            }
        }
    }
    out
}

/// The kernel's TCP state numbers (`include/net/tcp_states.h`), named as
/// the kernel names them.
pub fn state_name(n: u8) -> Option<&'static str> {
    Some(match n {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSE",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        12 => "NEW_SYN_RECV",
        _ => return None,
    })
}

/// Counts the sockets of /proc/net/tcp or tcp6 by state, TIME_WAIT also
/// per local address. Addresses are printed as the kernel holds them in
/// memory (`%08X` of each 32-bit word), so the bytes come back with the
/// machine's own byte order.
pub fn add_proc_sockets(text: &str, v6: bool, sockets: &mut Sockets) {
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(st)) = (fields.get(1), fields.get(3)) else {
            continue;
        };
        let Some(state) = u8::from_str_radix(st, 16).ok().and_then(state_name) else {
            continue;
        };
        *sockets.by_state.entry(state.to_string()).or_default() += 1;
        if state == "TIME_WAIT"
            && let Some(ip) = local.split(':').next().and_then(|h| proc_addr(h, v6))
        {
            *sockets.time_wait_by_local.entry(ip).or_default() += 1;
        }
    }
}

fn proc_addr(hex: &str, v6: bool) -> Option<IpAddr> {
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_ne_bytes())
    };
    if v6 {
        if hex.len() != 32 {
            return None;
        }
        let mut b = [0u8; 16];
        for i in 0..4 {
            b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
        }
        let a = Ipv6Addr::from(b);
        Some(match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(a),
        })
    } else {
        if hex.len() != 8 {
            return None;
        }
        Some(IpAddr::V4(Ipv4Addr::from(word(0)?)))
    }
}

/// The namespace's own IPv4 addresses: /proc/net/fib_trie lists each under
/// its prefix, followed by a `/32 host LOCAL` line.
pub fn fib_trie_local(text: &str) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(ip) = t.strip_prefix("|-- ") {
            last = ip.trim().parse().ok();
        } else if t.contains("/32 host LOCAL")
            && let Some(ip) = last
            && !out.contains(&ip)
        {
            out.push(ip);
        }
    }
    out
}

/// The namespace's IPv6 addresses (/proc/net/if_inet6: 32 hex digits
/// first on each line).
pub fn if_inet6(text: &str) -> Vec<Ipv6Addr> {
    text.lines()
        .filter_map(|l| {
            let hex = l.split_whitespace().next()?;
            let n = u128::from_str_radix(hex, 16).ok()?;
            (hex.len() == 32).then(|| Ipv6Addr::from(n))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_pair_names_with_values() {
        let text = "TcpExt: SyncookiesSent PAWSTimewait\nTcpExt: 0 3\n\
                    IpExt: InNoRoutes\nIpExt: 1\n";
        let c = proc_counters(text);
        assert_eq!(c.get("TcpExtPAWSTimewait"), Some(&3));
        assert_eq!(c.get("IpExtInNoRoutes"), Some(&1));
        // A lone names line (truncated file) gives nothing.
        assert!(proc_counters("TcpExt: A B\n").is_empty());
    }

    #[test]
    fn proc_tcp_lines_count_time_wait_per_local_address() {
        // 10.4.5.1:40000 -> 10.4.5.2:8080 in TIME_WAIT (06), one listener.
        let ip = u32::from_ne_bytes([10, 4, 5, 1]);
        let text = format!(
            "  sl  local_address rem_address   st tx_queue\n\
               0: {ip:08X}:9C40 0205040A:1F90 06 00000000:00000000\n\
               1: 00000000:1F90 00000000:0000 0A 00000000:00000000\n"
        );
        let mut s = Sockets::default();
        add_proc_sockets(&text, false, &mut s);
        assert_eq!(s.by_state.get("TIME_WAIT"), Some(&1));
        assert_eq!(s.by_state.get("LISTEN"), Some(&1));
        let tw: Vec<_> = s.time_wait_by_local.iter().collect();
        assert_eq!(tw, vec![(&"10.4.5.1".parse::<IpAddr>().unwrap(), &1)]);
    }

    #[test]
    fn fib_trie_names_local_addresses_only() {
        let text = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 10.4.1.0\n        /24 link UNICAST\n     \
                    |-- 10.4.1.1\n        /32 host LOCAL\nLocal:\n     |-- 10.4.1.1\n        /32 host LOCAL\n";
        assert_eq!(fib_trie_local(text), vec![Ipv4Addr::new(10, 4, 1, 1)]);
    }

    #[test]
    fn snapshot_of_this_namespace_has_counters_and_the_port_range() {
        let s = take().expect("/proc is readable on Linux");
        assert!(s.counters.contains_key("TcpActiveOpens"));
        assert!(s.counters.keys().any(|k| k.starts_with("TcpExt")));
        let range = s.sysctls.get("net.ipv4.ip_local_port_range").unwrap();
        assert_eq!(range.split(' ').count(), 2, "{range}");
        assert!(s.kernel.is_some());
    }
}
