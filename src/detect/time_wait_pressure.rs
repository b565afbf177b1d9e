//! `time-wait-pressure`: how much of a client's ephemeral port range sits in
//! TIME_WAIT toward one server ip:port.
//!
//! A TCP connection is named by its 4-tuple; a client IP talking to one
//! server ip:port can only vary its own port, inside
//! `net.ipv4.ip_local_port_range` (Linux default 32768-60999, 28,232
//! ports). Each connection the client closes first keeps its port in
//! TIME_WAIT for 60 s (TCP_TIMEWAIT_LEN). Steady state: sockets in
//! TIME_WAIT = connection rate × 60 s, so one pair exhausts the default
//! range at about 470 connections/s. Then connect() fails locally with
//! EADDRNOTAVAIL — before any packet is sent, so the failures are invisible
//! in a capture.
//!
//! Fires when: at the peak, or by the projection from the capture's
//! connection rate, at least half of the range is held (warning), or all
//! of it (error). Does not fire for TIME_WAIT held by the server: those
//! sockets sit on the server's listening port and take no ephemeral ports.

use super::{
    Claims, Context, DetectConfig, Detector, EvidenceSet, Finding, FindingKind, Groups, KindSpec,
    Severity, ip_filter, pair, sorted_if,
};
use crate::flow::Endpoint;
use crate::frame::FrameId;
use crate::peak::PeakSweep;
use crate::time::Timestamp;
use crate::track::{Closer, ConnId, ConnectionRecord};
use rustc_hash::FxHashMap;
use std::net::IpAddr;

pub const SPEC: KindSpec = KindSpec {
    name: "time-wait-pressure",
    explanation: "The client closes first, so each connection leaves its local port in TIME_WAIT for 60 s. \
     Toward one server ip:port only the client port can change, so at most as many connections \
     as the ephemeral range holds can be in TIME_WAIT at once (sockets = connection rate × 60 s). \
     When every port is held, connect() fails inside the client with EADDRNOTAVAIL (\"Cannot \
     assign requested address\"): those attempts never reach the wire and this capture cannot \
     show them.",
    advice: "First reuse connections (a pool or HTTP keep-alive) so the rate of new connections drops. \
     Widen net.ipv4.ip_local_port_range if the client may use more ports. net.ipv4.tcp_tw_reuse=1 \
     lets the client reuse a TIME_WAIT port for a new outgoing connection after 1 s, but only \
     when both sides use TCP timestamps. Letting the server close first moves TIME_WAIT to the \
     server, where it costs no ports. Confirm with `ss -tan state time-wait | wc -l` and \
     `ss -s` on the client.",
    doc: include_str!("../../docs/findings/time-wait-pressure.md"),
};

/// Per client IP and server ip:port: the TIME_WAIT intervals the client
/// held, swept online (32 bytes each while open or waiting for the
/// tracker's floor, [`PeakSweep`]), the count and span of their starts,
/// and whether every connection carried timestamps.
pub struct TimeWaitPressure {
    config: DetectConfig,
    pairs: Groups<(IpAddr, Endpoint), Pair>,
    /// Pairs with intervals waiting for the floor.
    waiting: Vec<(IpAddr, Endpoint)>,
    /// The FIN frames that do not fit [`Held::frame`], by connection.
    big_frames: FxHashMap<ConnId, FrameId>,
    /// The height from which a new pair keeps the intervals open at its
    /// peak ([`lowest_firing_peak`] of no span; 0 for the tests' reference,
    /// which keeps every peak).
    keep_from: u64,
}

impl TimeWaitPressure {
    pub fn new(config: &DetectConfig) -> TimeWaitPressure {
        TimeWaitPressure {
            config: *config,
            pairs: Groups::default(),
            waiting: Vec::new(),
            big_frames: FxHashMap::default(),
            keep_from: lowest_firing_peak(config, 0.0),
        }
    }

    /// The detector as it was before pairs kept only the peaks that can
    /// make a finding: the reference its findings are held to.
    #[cfg(test)]
    fn keeping_every_peak(config: &DetectConfig) -> TimeWaitPressure {
        TimeWaitPressure {
            keep_from: 0,
            ..TimeWaitPressure::new(config)
        }
    }
}

/// The lowest peak a pair can make a finding with, once the intervals it
/// held start over `span_s` seconds, while every one lasted the whole
/// TIME_WAIT (none cut short by a new connection on its 4-tuple): a pair
/// keeps the intervals open at its peak only from this height, so most
/// pairs of a busy server (a client every few seconds, a peak of tens of
/// sockets; or a steady client past one TIME_WAIT, below a quarter of
/// the range) keep none. Let R be the range, T the TIME_WAIT, and the
/// pair's count intervals start over S seconds at the end (S >= span_s:
/// it only grows):
/// - by its peak: peak >= R / 2;
/// - by the projection, S < T: every interval is open at the last start,
///   so peak >= count; the projection needs [`MIN_BURST_FOR_PROJECTION`]
///   intervals over S < 1 s, or [`MIN_FOR_PROJECTION`] over S >= 1 s at
///   (R - 1) / (2 T) a second (its rounded `rate × T` at least R / 2):
///   S × (R - 1) / (2 T) of them;
/// - by the projection, S >= T: the intervals starting within one T are
///   all open at the last of those starts, and floor(S / T) + 1 such
///   stretches cover S, so peak >= count / (S / T + 1) >=
///   count × T / (2 S) = rate × T / 2 >= (R - 1) / 4.
///
/// One less than the least of these, for rounding. A pair that holds an
/// interval cut short keeps every peak's from then on
/// ([`PeakSweep::keep_every_peak`]); only a peak below the bound reached
/// before the pair's first cut, and never passed after it, would lack the
/// intervals that had ended by that cut.
fn lowest_firing_peak(config: &DetectConfig, span_s: f64) -> u64 {
    let (lo, hi) = config.port_range;
    let range = (u64::from(hi - lo) + 1) as f64;
    let t = config.time_wait_s;
    let mut lowest = (range / 2.0).ceil().min(((range - 1.0) / 4.0).floor());
    if span_s < 1.0 {
        lowest = lowest.min(MIN_BURST_FOR_PROJECTION as f64);
    }
    if span_s < t {
        let by_rate = (span_s.max(1.0) * (range - 1.0) / (2.0 * t)).floor();
        lowest = lowest.min(by_rate.max(MIN_FOR_PROJECTION as f64));
    }
    if lowest.is_finite() && lowest >= 1.0 {
        lowest as u64 - 1
    } else {
        0
    }
}

struct Pair {
    held: PeakSweep<Held>,
    /// Intervals held, and the first and last start.
    count: usize,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    timestamps: bool,
}

/// Fewer client closes than this give no rate to project from.
const MIN_FOR_PROJECTION: usize = 10;

/// A burst this large is a rate worth projecting even when it lasted less
/// than a second (300 connections in 0.4 s is 750/s, past the 470/s at
/// which the default range runs out), hedged by how long it lasted.
const MIN_BURST_FOR_PROJECTION: usize = 100;

/// The steady state the capture's rate of client closes leads to.
#[derive(Clone, Copy)]
struct Projection {
    /// Client-closed connections per second.
    rate: f64,
    /// How long the capture saw that rate (first to last close).
    seen_s: f64,
    /// Sockets in TIME_WAIT at that rate: rate × TIME_WAIT.
    projected: u64,
}

impl Projection {
    /// The rate of closes, when there are enough to call it one: ten over
    /// at least a second, or a burst of a hundred.
    fn of(p: &Pair, range: u64, time_wait_s: f64) -> Option<Projection> {
        let (first, last) = (p.first?, p.last?);
        let seen_s = last.secs_since(first);
        let enough = (p.count >= MIN_FOR_PROJECTION && seen_s >= 1.0)
            || (p.count >= MIN_BURST_FOR_PROJECTION && seen_s > 0.0);
        if !enough {
            return None;
        }
        let rate = p.count as f64 / seen_s;
        let projected = ((rate * time_wait_s).round() as u64).min(range.saturating_mul(1000));
        Some(Projection {
            rate,
            seen_s,
            projected,
        })
    }

    /// "; at 750/s the 28232 ports run out after 38 s; then connect() fails
    /// ...", or the steady state when the range holds, hedged by how long
    /// the capture saw the rate.
    fn describe(&self, range: u64, time_wait_s: f64) -> String {
        let rate = self.rate;
        let hedge = if self.seen_s < time_wait_s {
            format!(
                " (if this rate lasts: the capture saw it for {})",
                super::secs(self.seen_s)
            )
        } else {
            String::new()
        };
        if self.projected >= range {
            let after = range as f64 / rate;
            format!(
                "; at {rate:.0} client-closed connections/s the {range} ports run out after \
                 {}, since each stays in TIME_WAIT for {time_wait_s:.0} s; then connect() fails \
                 with EADDRNOTAVAIL, which never reaches the wire{hedge}",
                super::secs(after)
            )
        } else {
            format!(
                "; at {rate:.1} client-closed connections/s the steady state is {} sockets \
                 ({:.0} % of the range){hedge}",
                self.projected,
                100.0 * self.projected as f64 / range as f64
            )
        }
    }
}

/// What the evidence needs of one TIME_WAIT interval held by a client
/// toward a server, in 8 bytes so that an interval takes 24 (a u64 frame
/// made it 32): every interval open at once, waiting for the floor, or
/// open at a pair's peak is held, tens of thousands of them.
#[derive(Clone, Copy)]
struct Held {
    conn: ConnId,
    /// The frame of the client's FIN; [`BIG_FRAME`] when it does not fit
    /// (a capture past 2^32 - 1 frames), and then in
    /// [`TimeWaitPressure::big_frames`].
    frame: u32,
}

const BIG_FRAME: u32 = u32::MAX;

/// One interval per connection: the id names it (a cut knows no frame).
impl PartialEq for Held {
    fn eq(&self, other: &Held) -> bool {
        self.conn == other.conn
    }
}

/// Whether a TIME_WAIT socket held by `holder` on a connection from client
/// port `port` takes a port of the client's ephemeral range `(lo, hi)`:
/// ports outside the range are not ephemeral (or the range given is not
/// this client's) and cannot exhaust it.
fn holds_ephemeral((lo, hi): (u16, u16), port: u16, holder: Closer) -> bool {
    (lo..=hi).contains(&port) && matches!(holder, Closer::Client | Closer::Both)
}

impl Detector for TimeWaitPressure {
    fn kinds(&self) -> &'static [FindingKind] {
        &[FindingKind::TimeWaitPressure]
    }

    fn on_connection_end(&mut self, c: &ConnectionRecord, _claims: &mut Claims) {
        let ephemeral =
            holds_ephemeral(self.config.port_range, c.client.port(), c.time_wait.holder);
        // Made only for a pair's first record (`or_insert` built and
        // dropped a sweep for every record).
        let p = self
            .pairs
            .entry((c.client.ip(), c.server))
            .or_insert_with(|| Pair {
                held: PeakSweep::keeping_from(self.keep_from),
                count: 0,
                first: None,
                last: None,
                timestamps: true,
            });
        p.timestamps &= c.client_to_server.timestamps && c.server_to_client.timestamps;
        if ephemeral && let (Some(from), Some(until)) = (c.time_wait.from, c.time_wait.until) {
            if !p.held.waiting() {
                self.waiting.push((c.client.ip(), c.server));
            }
            let frame = c.close.first_fin_frame.unwrap_or(c.last_frame);
            let small = u32::try_from(frame.0).ok().filter(|&f| f != BIG_FRAME);
            if small.is_none() {
                self.big_frames.insert(c.id, frame);
            }
            // Cut short: lowest_firing_peak holds only for whole ones.
            if until < from.add_secs(self.config.time_wait_s) {
                p.held.keep_every_peak();
            }
            p.held.add(
                from,
                until,
                Held {
                    conn: c.id,
                    frame: small.unwrap_or(BIG_FRAME),
                },
            );
            p.count += 1;
            let (first, last) = (
                p.first.map_or(from, |f| f.min(from)),
                p.last.map_or(from, |l| l.max(from)),
            );
            if (Some(first), Some(last)) != (p.first, p.last) {
                p.held
                    .raise_keep_from(lowest_firing_peak(&self.config, last.secs_since(first)));
            }
            (p.first, p.last) = (Some(first), Some(last));
        }
    }

    fn on_time_wait_cut(&mut self, cut: &crate::track::TimeWaitCut) {
        // Only intervals this detector added can be cut.
        if !holds_ephemeral(self.config.port_range, cut.client.port(), cut.holder) {
            return;
        }
        if let Some(p) = self.pairs.get_mut(&(cut.client.ip(), cut.server)) {
            let held = Held {
                conn: cut.id,
                frame: 0,
            };
            p.held.keep_every_peak();
            p.held.cut(cut.from, cut.until, cut.at, held);
        }
    }

    fn advance(&mut self, floor: Timestamp) {
        let pairs = &mut self.pairs;
        self.waiting.retain(|k| {
            let held = &mut pairs.get_mut(k).expect("a waiting pair is known").held;
            held.advance(floor);
            held.waiting()
        });
    }

    fn finish(&mut self, ctx: &Context<'_>) -> Vec<Finding> {
        let (lo, hi) = self.config.port_range;
        let range = u64::from(hi - lo) + 1;
        let mut out = Vec::new();
        self.waiting.clear();
        let time_wait_s = self.config.time_wait_s;
        // Below half the range, by its peak or by the projection, a pair
        // makes no finding: it is dropped before the pairs are sorted and
        // its sweep is not finished (most pairs of a busy server: half of
        // this detector's share of the run's tail on 100 MB).
        let could_fire = |p: &Pair| {
            p.count > 0
                && (p.held.peak_at_most() * 2 >= range
                    || Projection::of(p, range, time_wait_s)
                        .is_some_and(|p| p.projected * 2 >= range))
        };
        for ((client, server), p) in sorted_if(std::mem::take(&mut self.pairs), could_fire) {
            let projection = Projection::of(&p, range, time_wait_s);
            let timestamps = p.timestamps;
            let (peak, peak_at, open_at_peak) = p.held.finish();
            // Every interval empty: times at the end of what a timestamp
            // holds (a damaged capture's year 246358), where the TIME_WAIT
            // end saturates onto its start. No socket was held.
            let Some(peak_at) = peak_at else {
                continue;
            };
            let severity = if peak >= range {
                Severity::Error
            } else if peak * 2 >= range || projection.is_some_and(|p| p.projected * 2 >= range) {
                Severity::Warning
            } else {
                continue;
            };
            let host = pair(client, server);
            let share = 100.0 * peak as f64 / range as f64;
            let mut summary = format!(
                "{client} held {peak} of its {range} ephemeral ports ({share:.0} %) in TIME_WAIT \
                 toward {server} at +{:.3} s",
                ctx.rel(peak_at)
            );
            if peak >= range {
                summary.push_str(
                    "; every port was taken, so further connect() calls failed with \
                     EADDRNOTAVAIL before reaching the wire (invisible in this capture)",
                );
            } else if let Some(p) = projection {
                summary.push_str(&p.describe(range, self.config.time_wait_s));
            }
            let mut evidence = EvidenceSet::new();
            for h in open_at_peak {
                let frame = match h.item.frame {
                    BIG_FRAME => self.big_frames[&h.item.conn],
                    f => FrameId(u64::from(f)),
                };
                evidence.add(h.item.conn, h.from, &[frame], || {
                    format!(
                        "port held in TIME_WAIT from +{:.3} s to +{:.3} s",
                        ctx.rel(h.from),
                        ctx.rel(h.until)
                    )
                });
            }
            let advice = format!(
                "{} {}",
                SPEC.advice,
                if timestamps {
                    "This client sends TCP timestamps, so tcp_tw_reuse would work here."
                } else {
                    "This client does not send TCP timestamps on every connection, so \
                     tcp_tw_reuse would not help it."
                }
            );
            out.push(
                Finding::new(
                    FindingKind::TimeWaitPressure,
                    severity,
                    summary,
                    Some(host),
                    evidence,
                )
                .with_advice(advice)
                .with_broad_filter(format!(
                    "{} && {} && tcp.dstport == {} && tcp.flags.fin == 1",
                    ip_filter("src", client),
                    ip_filter("dst", server.ip()),
                    server.port()
                )),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peak::Interval;
    use crate::track::connection_tests::taken_over;

    /// A finished client-closed connection from 10.0.0.1:40000 to
    /// 10.0.0.2:80, to copy and adjust.
    fn template() -> ConnectionRecord {
        crate::track::connection_tests::client_closed_record()
    }

    #[test]
    fn an_interval_takes_24_bytes() {
        assert_eq!(std::mem::size_of::<Interval<Held>>(), 24);
    }

    /// FIN frames past u32::MAX (a capture of more than 2^32 frames) come
    /// back exact in the evidence, beside ordinary ones.
    #[test]
    fn frames_too_large_for_the_compact_interval_are_exact() {
        let config = DetectConfig {
            time_wait_s: 60.0,
            port_range: (40000, 40009),
        };
        let mut d = TimeWaitPressure::new(&config);
        let base = template();
        assert_eq!(base.time_wait.holder, Closer::Client);
        let from = base.time_wait.from.unwrap();
        let frames: Vec<u64> = vec![
            7,
            u64::from(u32::MAX) - 1,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            1 << 40,
            u64::MAX,
        ];
        let mut claims = Claims::default();
        for (i, &frame) in frames.iter().enumerate() {
            let mut r = base.clone();
            r.id = ConnId(i as u32);
            r.client = format!("10.0.0.1:{}", 40000 + i)
                .parse::<Endpoint>()
                .unwrap();
            r.time_wait.from = Some(from.add_secs(i as f64));
            r.time_wait.until = Some(from.add_secs(60.0 + i as f64));
            r.close.first_fin_frame = Some(FrameId(frame));
            d.on_connection_end(&r, &mut claims);
        }
        let ctx = Context {
            config: &config,
            capture_start: None,
            capture_end: None,
        };
        let f = d.finish(&ctx);
        assert_eq!(f.len(), 1);
        // All six open at once: 6 of 10 ports.
        assert_eq!(f[0].count, 6);
        let mut want: Vec<FrameId> = frames.iter().copied().map(FrameId).collect();
        want.sort_unstable();
        assert_eq!(f[0].frames, want);
        let rows: Vec<(ConnId, Vec<u64>)> = f[0]
            .evidence
            .iter()
            .map(|e| (e.connection, e.frames.iter().map(|f| f.0).collect()))
            .collect();
        let want_rows: Vec<(ConnId, Vec<u64>)> = frames
            .iter()
            .enumerate()
            .map(|(i, &fr)| (ConnId(i as u32), vec![fr]))
            .collect();
        assert_eq!(rows, want_rows);
    }

    /// The findings `d` makes at the end of a capture whose times are not
    /// known.
    fn finished(mut d: TimeWaitPressure, config: &DetectConfig) -> Vec<Finding> {
        d.finish(&Context {
            config,
            capture_start: None,
            capture_end: None,
        })
    }

    /// TIME_WAIT intervals that end where they start (times at the end of
    /// the timestamp's range, where adding 60 s saturates) hold no socket:
    /// no finding, and no panic (a pcapng with timestamps in the year
    /// 246358 made the folding thread panic).
    #[test]
    fn empty_intervals_at_the_end_of_time_make_no_finding() {
        let config = DetectConfig {
            time_wait_s: 60.0,
            port_range: (40000, 40001),
        };
        let mut d = TimeWaitPressure::new(&config);
        let mut claims = Claims::default();
        let end = Timestamp(i64::MAX);
        for i in 0..4u32 {
            let mut r = template();
            r.id = ConnId(i);
            r.client = format!("10.0.0.1:{}", 40000 + i % 2)
                .parse::<Endpoint>()
                .unwrap();
            r.time_wait.from = Some(end);
            r.time_wait.until = Some(end.add_secs(60.0));
            d.on_connection_end(&r, &mut claims);
        }
        d.advance(end);
        assert!(finished(d, &config).is_empty());
    }

    /// Intervals each taken over the instant it began were never open: a
    /// pair whose rate alone would project past the range, but that held
    /// no socket, has no peak and makes no finding (the sweep's finish
    /// gives no peak time; this once panicked).
    #[test]
    fn intervals_taken_over_as_they_began_make_no_finding() {
        let config = DetectConfig {
            time_wait_s: 60.0,
            port_range: (40000, 40001),
        };
        let base = template();
        let from = base.time_wait.from.unwrap();
        let mut d = TimeWaitPressure::new(&config);
        let mut claims = Claims::default();
        for i in 0..200u32 {
            let mut r = base.clone();
            r.id = ConnId(i);
            r.client = format!("10.0.0.1:{}", 40000 + i % 2)
                .parse::<Endpoint>()
                .unwrap();
            let start = from.add_secs(f64::from(i) / 1000.0);
            r.time_wait.from = Some(start);
            r.time_wait.until = Some(start.add_secs(60.0));
            d.on_connection_end(&r, &mut claims);
            d.on_time_wait_cut(&taken_over(&r, start, ConnId(1000 + i)));
        }
        assert!(finished(d, &config).is_empty());
    }

    /// A takeover cuts only what the detector holds: a port outside the
    /// ephemeral range was never added, and its cut must not count as one
    /// of the intervals open (it did once, leaving the count one short).
    #[test]
    fn a_cut_of_a_port_outside_the_range_changes_nothing() {
        let config = DetectConfig {
            time_wait_s: 60.0,
            port_range: (40000, 40009),
        };
        let base = template();
        let from = base.time_wait.from.unwrap();
        let run = |cut: bool| {
            let mut d = TimeWaitPressure::new(&config);
            let mut claims = Claims::default();
            let record = |i: u32, port: u32| {
                let mut r = base.clone();
                r.id = ConnId(i);
                r.client = format!("10.0.0.1:{port}").parse::<Endpoint>().unwrap();
                r.time_wait.from = Some(from.add_secs(f64::from(i)));
                r.time_wait.until = Some(from.add_secs(60.0 + f64::from(i)));
                r
            };
            let outside = record(0, 50000);
            d.on_connection_end(&outside, &mut claims);
            d.on_connection_end(&record(1, 40001), &mut claims);
            // The pair's sweep has applied everything before 0.5 s.
            d.advance(from.add_secs(0.5));
            if cut {
                d.on_time_wait_cut(&taken_over(&outside, from.add_secs(5.0), ConnId(99)));
            }
            for i in 2..8 {
                d.on_connection_end(&record(i, 40000 + i), &mut claims);
            }
            finished(d, &config)
        };
        let (whole, cut) = (run(false), run(true));
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].count, 7);
        assert_eq!(cut[0].count, whole[0].count);
        assert_eq!(cut[0].summary, whole[0].summary);
    }

    /// Pairs of every shape that can fire with a range of 200 ports
    /// (bursts under a second, steady rates under and past one
    /// TIME_WAIT, a burst after a slow start, a slow trickle after a
    /// burst, intervals cut short) and quiet ones, retired out of order
    /// with the floor trailing: keeping the intervals open at a peak
    /// only from [`lowest_firing_peak`] gives the findings that keeping
    /// every peak's gives, and holds fewer intervals.
    #[test]
    fn keeping_only_the_peaks_that_can_fire_changes_no_finding() {
        let config = DetectConfig {
            time_wait_s: 60.0,
            port_range: (40000, 40199),
        };
        let base = template();
        let t0 = base.time_wait.from.unwrap();
        let mut seed = 3u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        // (pair, start and length in ms)
        let mut starts: Vec<(u32, i64, i64)> = Vec::new();
        for pair in 0..240u32 {
            let (x, y) = (next() as i64, next() as i64);
            let burst = |at: i64, n: i64, over_ms: i64, starts: &mut Vec<(u32, i64, i64)>| {
                for k in 0..n {
                    starts.push((pair, at + k * over_ms / n.max(1), 60_000));
                }
            };
            match pair % 6 {
                0 => burst(x % 5_000, 5 + y % 150, y % 1_500, &mut starts),
                1 => burst(x % 5_000, 10 + y % 300, 1_000 + x % 400_000, &mut starts),
                2 => {
                    burst(0, 5 + x % 30, 300_000, &mut starts);
                    burst(300_000 + x % 5_000, 50 + y % 150, y % 700, &mut starts);
                }
                3 => {
                    burst(0, 50 + y % 150, x % 900, &mut starts);
                    burst(1_000, 5 + x % 40, 100_000 + y % 300_000, &mut starts);
                }
                // Each 4-tuple taken over 50 ms into its TIME_WAIT: a
                // peak of a few, far below the bound, and yet the rate
                // projects past half the range.
                4 => {
                    let n = 100 + y % 50;
                    for k in 0..n {
                        starts.push((pair, k * (900 + x % 100) / n, 50));
                    }
                }
                // A client every 3 s: a peak of 20, never a finding.
                _ => burst(x % 3_000, 100, 300_000, &mut starts),
            }
        }
        let mut records: Vec<(i64, ConnectionRecord)> = Vec::new();
        for (i, &(pair, at, len)) in starts.iter().enumerate() {
            let mut r = base.clone();
            r.id = ConnId(i as u32);
            r.client = format!("10.1.{}.{}:{}", pair / 200, pair % 200, 40000 + i % 200)
                .parse()
                .unwrap();
            let from = t0.add_secs(at as f64 / 1000.0);
            r.time_wait.from = Some(from);
            r.time_wait.until = Some(from.add_secs(len as f64 / 1000.0));
            r.close.first_fin_frame = Some(FrameId(3 * i as u64 + 1));
            // Retired up to 10 s after its TIME_WAIT began.
            records.push((at + (next() as i64) % 10_000, r));
        }
        records.sort_by_key(|(retired, r)| (*retired, r.id));
        let run = |mut d: TimeWaitPressure| {
            let mut claims = Claims::default();
            for (retired, r) in &records {
                d.on_connection_end(r, &mut claims);
                d.advance(t0.add_secs((retired - 10_001) as f64 / 1000.0));
            }
            // Every interval has ended: what is held is the evidence.
            d.advance(t0.add_secs(1_000.0));
            let held: usize = d.pairs.values().map(|p| p.held.held()).sum();
            (held, finished(d, &config))
        };
        let (held, got) = run(TimeWaitPressure::new(&config));
        let (held_every, want) = run(TimeWaitPressure::keeping_every_peak(&config));
        let show = |f: &[Finding]| {
            f.iter()
                .map(|f| {
                    let rows: Vec<String> = f
                        .evidence
                        .iter()
                        .map(|r| format!("{} {:?} {}", r.connection, r.frames, r.note))
                        .collect();
                    format!(
                        "{} {} {:?} {:?} {rows:?}",
                        f.summary, f.count, f.connections, f.frames
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(show(&got), show(&want));
        // Findings by the projection alone, from peaks below half the
        // range, down to near the bound (10 at a span of a second).
        let mut low: Vec<u64> = want
            .iter()
            .filter(|f| (9..100).contains(&f.count))
            .map(|f| f.count)
            .collect();
        low.sort_unstable();
        assert!(low.len() >= 5 && low[0] < 20, "{low:?}");
        assert!(want.len() < 200, "{} of 240 pairs fire", want.len());
        let cut_short = want.iter().filter(|f| f.count < 9).count();
        assert!(cut_short >= 20, "{cut_short} findings of pairs cut short");
        // The quiet pairs' 20 intervals at their peak each, and more.
        assert!(
            held + 40 * 20 < held_every,
            "held {held}, every peak {held_every}"
        );
    }
}
