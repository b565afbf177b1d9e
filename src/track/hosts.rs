//! TIME_WAIT sockets per host over time: each connection with a holder
//! contributes the interval [from, until) on the holder's IP address.

use super::connection::Closer;
use super::record::ConnectionRecord;
use crate::flow::Side;
use crate::peak::PeakSweep;
use crate::time::Timestamp;
use rustc_hash::FxBuildHasher;
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

/// Per-host facts folded one connection record at a time: counters, and
/// the TIME_WAIT intervals each host held, swept online
/// ([`PeakSweep`], 16 bytes per interval while it is open or waits for the
/// tracker's floor), so memory follows the sockets held at once, not the
/// length of the capture.
#[derive(Debug, Default)]
pub struct HostTally {
    hosts: HashMap<IpAddr, (HostRecord, PeakSweep<()>), FxBuildHasher>,
    /// Hosts with intervals waiting for the floor (so that moving it costs
    /// nothing for the others).
    waiting: Vec<IpAddr>,
}

impl HostTally {
    pub fn add(&mut self, c: &ConnectionRecord) {
        for side in [Side::Client, Side::Server] {
            let ip = c.endpoint(side).ip();
            let (h, held) = self.hosts.entry(ip).or_insert_with(|| {
                (
                    HostRecord {
                        ip,
                        connections: 0,
                        active_closes: 0,
                        passive_closes: 0,
                        time_wait_peak: 0,
                        peak_at: None,
                    },
                    PeakSweep::counting(),
                )
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
                if !held.waiting() {
                    self.waiting.push(ip);
                }
                held.add(from, until, ());
            }
        }
    }

    /// A record added before ended its TIME_WAIT at `cut.at`: its 4-tuple
    /// was taken over after the record was written (see
    /// [`super::TimeWaitCut`]).
    pub fn cut(&mut self, cut: &super::TimeWaitCut) {
        for side in [Side::Client, Side::Server] {
            let holds = matches!(
                (cut.holder, side),
                (Closer::Both, _) | (Closer::Client, Side::Client) | (Closer::Server, Side::Server)
            );
            let ip = match side {
                Side::Client => cut.client.ip(),
                Side::Server => cut.server.ip(),
            };
            if holds && let Some((_, held)) = self.hosts.get_mut(&ip) {
                held.cut(cut.from, cut.until, cut.at, ());
            }
        }
    }

    /// No record still to come starts its TIME_WAIT before `floor`.
    pub fn advance(&mut self, floor: Timestamp) {
        let hosts = &mut self.hosts;
        self.waiting.retain(|ip| {
            let held = &mut hosts.get_mut(ip).expect("a waiting host is known").1;
            held.advance(floor);
            held.waiting()
        });
    }

    /// Every host, largest TIME_WAIT peak first. Intervals are swept in
    /// time order: +1 at `from`, -1 at `until` (an end at the same instant
    /// as a start is applied first, the socket is gone by then).
    pub fn finish(self) -> Vec<HostRecord> {
        let mut out: Vec<HostRecord> = self
            .hosts
            .into_values()
            .map(|(mut h, held)| {
                let (peak, at, _) = held.finish();
                h.time_wait_peak = peak;
                h.peak_at = at;
                h
            })
            .collect();
        out.sort_by(|a, b| {
            b.time_wait_peak
                .cmp(&a.time_wait_peak)
                .then(b.connections.cmp(&a.connections))
                .then(a.ip.cmp(&b.ip))
        });
        out
    }
}

/// Computes per-host facts from finished connections (see [`HostTally`]).
pub fn host_time_wait(conns: &[ConnectionRecord]) -> Vec<HostRecord> {
    let mut tally = HostTally::default();
    for c in conns {
        tally.add(c);
    }
    tally.finish()
}

/// TIME_WAIT sockets of one host over time, as a step function: the count
/// after each change.
#[derive(Debug, Clone)]
pub struct HostSeries {
    pub ip: IpAddr,
    pub steps: Vec<(Timestamp, u64)>,
    pub peak: u64,
    pub peak_at: Option<Timestamp>,
    /// The most sockets it held at once as the client of their connection,
    /// i.e. on ports of its ephemeral range: the count that range bounds.
    pub client_peak: u64,
}

impl HostSeries {
    /// The count in force at `t`.
    pub fn at(&self, t: Timestamp) -> u64 {
        match self.steps.partition_point(|(ts, _)| *ts <= t) {
            0 => 0,
            i => self.steps[i - 1].1,
        }
    }

    /// The largest count in force at any time in [from, to).
    pub fn max_in(&self, from: Timestamp, to: Timestamp) -> u64 {
        let start = self.at(from);
        self.steps
            .iter()
            .filter(|(ts, _)| *ts >= from && *ts < to)
            .map(|(_, n)| *n)
            .fold(start, u64::max)
    }
}

/// The step series of every host that held TIME_WAIT, largest peak first.
pub fn time_wait_series(conns: &[ConnectionRecord]) -> Vec<HostSeries> {
    let mut tally = SeriesTally::default();
    for c in conns {
        tally.add(c);
    }
    tally.finish()
}

/// The TIME_WAIT intervals of every host, folded one record at a time as
/// +1/-1 events (32 bytes per interval), so `timeline` need not keep the
/// records themselves. A socket held as the client counts ±2, so the
/// client-side count rides in the same events.
#[derive(Debug, Default)]
pub struct SeriesTally {
    events: HashMap<IpAddr, Vec<(Timestamp, i8)>, FxBuildHasher>,
}

impl SeriesTally {
    pub fn add(&mut self, c: &ConnectionRecord) {
        let (Some(from), Some(until)) = (c.time_wait.from, c.time_wait.until) else {
            return;
        };
        for side in [Side::Client, Side::Server] {
            let holds = matches!(
                (c.time_wait.holder, side),
                (Closer::Both, _) | (Closer::Client, Side::Client) | (Closer::Server, Side::Server)
            );
            if holds {
                let ev = self.events.entry(c.endpoint(side).ip()).or_default();
                let d = if side == Side::Client { 2 } else { 1 };
                ev.push((from, d));
                ev.push((until, -d));
            }
        }
    }

    /// The step series of every host, largest peak first.
    pub fn finish(self) -> Vec<HostSeries> {
        let mut out: Vec<HostSeries> = self
            .events
            .into_iter()
            .map(|(ip, mut ev)| {
                ev.sort_unstable();
                let mut open: i64 = 0;
                let mut steps: Vec<(Timestamp, u64)> = Vec::new();
                let (mut peak, mut peak_at) = (0u64, None);
                let (mut client_open, mut client_peak): (i64, i64) = (0, 0);
                for (ts, d) in ev {
                    open += i64::from(d.signum());
                    if d.abs() == 2 {
                        client_open += i64::from(d.signum());
                        client_peak = client_peak.max(client_open);
                    }
                    let n = open.max(0) as u64;
                    match steps.last_mut() {
                        Some(last) if last.0 == ts => last.1 = n,
                        _ => steps.push((ts, n)),
                    }
                    if n > peak {
                        peak = n;
                        peak_at = Some(ts);
                    }
                }
                HostSeries {
                    ip,
                    steps,
                    peak,
                    peak_at,
                    client_peak: client_peak.max(0) as u64,
                }
            })
            .collect();
        out.sort_by(|a, b| b.peak.cmp(&a.peak).then(a.ip.cmp(&b.ip)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Endpoint;
    use proptest::prelude::*;

    /// A finished client-closed connection to use as a template.
    fn template() -> ConnectionRecord {
        crate::track::connection::tests::client_closed_record()
    }

    /// One TIME_WAIT interval: holding host (0..3), holder side, start and
    /// length in ms (0 = a zero-length interval, which holds nothing).
    type Interval = (u8, Closer, i64, i64);

    fn interval() -> impl Strategy<Value = Interval> {
        (
            0u8..3,
            prop_oneof![
                Just(Closer::Client),
                Just(Closer::Server),
                Just(Closer::Both),
                Just(Closer::None),
            ],
            0i64..2_000,
            0i64..500,
        )
    }

    fn records(intervals: &[Interval]) -> Vec<ConnectionRecord> {
        let base = template();
        intervals
            .iter()
            .enumerate()
            .map(|(i, &(host, holder, from_ms, len_ms))| {
                let mut r = base.clone();
                // Clients are 10.0.0.{1,2,3}; every server is 10.0.1.1, so
                // server-side holds pile onto one host.
                r.client = format!("10.0.0.{}:{}", host + 1, 1024 + i)
                    .parse::<Endpoint>()
                    .unwrap();
                r.server = "10.0.1.1:80".parse::<Endpoint>().unwrap();
                let from = Timestamp::from_parts(1_000, from_ms * 1_000_000);
                r.time_wait.holder = holder;
                r.time_wait.from = Some(from);
                r.time_wait.until = Some(from.add_secs(len_ms as f64 / 1e3));
                r
            })
            .collect()
    }

    /// The peak by brute force: at every interval start, count the
    /// intervals [from, until) of that host that contain it.
    fn brute_force(conns: &[ConnectionRecord], ip: IpAddr) -> (u64, Option<Timestamp>) {
        brute_force_sides(conns, ip, true)
    }

    /// The same, counting only the sockets `ip` held as the client unless
    /// `server_side`.
    fn brute_force_sides(
        conns: &[ConnectionRecord],
        ip: IpAddr,
        server_side: bool,
    ) -> (u64, Option<Timestamp>) {
        let held: Vec<(Timestamp, Timestamp)> = conns
            .iter()
            .filter(|c| {
                let tw = &c.time_wait;
                let as_client = matches!(tw.holder, Closer::Both | Closer::Client);
                let as_server = matches!(tw.holder, Closer::Both | Closer::Server);
                (as_client && c.client.ip() == ip)
                    || (server_side && as_server && c.server.ip() == ip)
            })
            .map(|c| (c.time_wait.from.unwrap(), c.time_wait.until.unwrap()))
            .collect();
        let mut best = (0, None);
        let mut starts: Vec<Timestamp> = held.iter().map(|h| h.0).collect();
        starts.sort();
        for t in starts {
            let n = held.iter().filter(|(a, b)| *a <= t && t < *b).count() as u64;
            if n > best.0 {
                best = (n, Some(t));
            }
        }
        best
    }

    proptest! {
        #[test]
        fn host_time_wait_peak_equals_brute_force_count(intervals in prop::collection::vec(interval(), 0..40)) {
            let conns = records(&intervals);
            let hosts = host_time_wait(&conns);
            for h in &hosts {
                let (peak, at) = brute_force(&conns, h.ip);
                prop_assert_eq!(h.time_wait_peak, peak, "{}", h.ip);
                prop_assert_eq!(h.peak_at, at, "{}", h.ip);
            }
            // time_wait_series agrees on the peak of every host that held any.
            for s in time_wait_series(&conns) {
                let (peak, at) = brute_force(&conns, s.ip);
                prop_assert_eq!(s.peak, peak);
                prop_assert_eq!(s.peak_at, at);
                prop_assert_eq!(s.max_in(Timestamp(i64::MIN), Timestamp(i64::MAX)), peak);
                // And on the sockets held as the client (ephemeral ports).
                prop_assert_eq!(s.client_peak, brute_force_sides(&conns, s.ip, false).0, "{}", s.ip);
            }
            let total: u64 = hosts.iter().map(|h| h.connections).sum();
            prop_assert_eq!(total, 2 * conns.len() as u64);
        }
    }
}
