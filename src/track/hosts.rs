//! TIME_WAIT sockets per host over time: each connection with a holder
//! contributes the interval [from, until) on the holder's IP address.

use super::connection::{Closer, ConnectionRecord};
use crate::flow::Side;
use crate::time::Timestamp;
use serde::Serialize;
use std::collections::HashMap;
use std::net::IpAddr;

/// One host (IP address) of the capture: its closes and its TIME_WAIT peak.
#[derive(Debug, Clone, Serialize)]
pub struct HostRecord {
    pub ip: IpAddr,
    /// Connections this host took part in.
    pub connections: u64,
    /// Connections it closed first (its FIN first).
    pub active_closes: u64,
    /// Connections whose peer closed first.
    pub passive_closes: u64,
    /// Most TIME_WAIT sockets this host held at once.
    pub time_wait_peak: u64,
    /// When that peak was first reached.
    pub peak_at: Option<Timestamp>,
}

/// Computes per-host facts from finished connections. Intervals are swept
/// in time order: +1 at `from`, -1 at `until` (an end at the same instant as
/// a start is applied first, the socket is gone by then).
pub fn host_time_wait(conns: &[ConnectionRecord]) -> Vec<HostRecord> {
    let mut hosts: HashMap<IpAddr, HostRecord> = HashMap::new();
    let mut events: HashMap<IpAddr, Vec<(Timestamp, i8)>> = HashMap::new();
    for c in conns {
        for side in [Side::Client, Side::Server] {
            let ip = c.endpoint(side).ip();
            let h = hosts.entry(ip).or_insert_with(|| HostRecord {
                ip,
                connections: 0,
                active_closes: 0,
                passive_closes: 0,
                time_wait_peak: 0,
                peak_at: None,
            });
            h.connections += 1;
            match (c.close.active_closer, side) {
                (Closer::Both, _) => h.active_closes += 1,
                (Closer::Client, Side::Client) | (Closer::Server, Side::Server) => {
                    h.active_closes += 1
                }
                (Closer::Client, Side::Server) | (Closer::Server, Side::Client) => {
                    h.passive_closes += 1
                }
                (Closer::None, _) => {}
            }
            let holds = matches!(
                (c.time_wait.holder, side),
                (Closer::Both, _) | (Closer::Client, Side::Client) | (Closer::Server, Side::Server)
            );
            if let (true, Some(from), Some(until)) = (holds, c.time_wait.from, c.time_wait.until) {
                let ev = events.entry(ip).or_default();
                ev.push((from, 1));
                ev.push((until, -1));
            }
        }
    }
    for (ip, mut ev) in events {
        ev.sort_unstable();
        let mut open: i64 = 0;
        let h = hosts
            .get_mut(&ip)
            .expect("host was inserted with its events");
        for (ts, delta) in ev {
            open += i64::from(delta);
            if open > h.time_wait_peak as i64 {
                h.time_wait_peak = open as u64;
                h.peak_at = Some(ts);
            }
        }
    }
    let mut out: Vec<HostRecord> = hosts.into_values().collect();
    out.sort_by(|a, b| {
        b.time_wait_peak
            .cmp(&a.time_wait_peak)
            .then(b.connections.cmp(&a.connections))
            .then(a.ip.cmp(&b.ip))
    });
    out
}
