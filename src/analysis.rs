//! The pipeline in one place: bytes → records → segments → connections →
//! the [`Analysis`] every report renders. One streaming pass per file; the
//! files of one run form one timeline (rotated `tcpdump -C/-G` output).

use crate::capture::{self, CaptureError, CaptureFacts, LinkType};
use crate::decode::{self, Segment, SkipReason};
use crate::detect::{self, Claims, Detector, Finding, Selection, Severity};
use crate::time::Timestamp;
use crate::track::{
    CloseKind, Closer, ConnId, ConnectionRecord, HandshakeState, HostRecord, HostTally,
    Observation, Tracker,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};

/// The JSON contract's name; bumped only with an incompatible change.
pub const SCHEMA: &str = "timewait/1";

/// Every threshold of the analysis; printed in the JSON so a result can be
/// reproduced.
#[derive(Debug, Clone, Serialize)]
pub struct Options {
    /// How long the active closer holds TIME_WAIT (Linux: 60 s, fixed in
    /// the kernel as TCP_TIMEWAIT_LEN).
    pub time_wait_s: f64,
    /// The client's ephemeral port range (`net.ipv4.ip_local_port_range`).
    pub port_range: (u16, u16),
    /// Which finding kinds to report (`--only`, `--skip`).
    pub findings: Selection,
}

impl Options {
    /// The thresholds the detectors use.
    pub fn detect(&self) -> detect::DetectConfig {
        detect::DetectConfig {
            time_wait_s: self.time_wait_s,
            port_range: self.port_range,
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            time_wait_s: 60.0,
            port_range: (32768, 60999),
            findings: Selection::default(),
        }
    }
}

/// Frames per link type.
#[derive(Debug, Clone, Serialize)]
pub struct LinkTypeCount {
    pub link_type: LinkType,
    pub id: u32,
    pub frames: u64,
}

/// One input file, as read.
#[derive(Debug, Clone, Serialize)]
pub struct CaptureReport {
    pub path: String,
    /// `pcap`, `pcap_nanosecond`, `pcap_modified`, `pcapng`; null when the
    /// file could not be read at all.
    pub format: Option<capture::CaptureFormat>,
    pub big_endian: bool,
    pub link_types: Vec<LinkTypeCount>,
    /// Records read (Wireshark's frame count).
    pub packets: u64,
    /// Frames that yielded a TCP segment.
    pub tcp_packets: u64,
    /// Frames without a usable TCP segment, by reason.
    pub skipped: BTreeMap<SkipReason, u64>,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
    /// The file ends in the middle of a record.
    pub truncated: bool,
    /// Why reading stopped early, if it did.
    pub damage: Option<capture::Damage>,
    /// Why the file could not be read at all.
    pub error: Option<String>,
    /// What kind of error that was, for programs (`error` is for people).
    pub error_kind: Option<capture::CaptureErrorKind>,
    /// Times a record's timestamp jumped from the one before it (see
    /// [`is_time_jump`]: more than 30 days forward, a minute back; a clock
    /// set wrong, a stitched or corrupt file): times and durations across
    /// a jump mean nothing.
    pub time_jumps: u64,
    /// The first frames (at most 8) whose time jumped from the record
    /// before.
    pub time_jump_frames: Vec<u64>,
    /// Records not analyzed because their time lies inside what an
    /// earlier input of the run already covered: the same file given
    /// twice, or overlapping captures. Fed again, they would read as
    /// retransmissions and timestamps going back.
    pub overlap_skipped: u64,
    /// Seconds of capture time without the jumps: the sum of the gaps
    /// between consecutive records that are not jumps (equal to
    /// `last - first` for an ordered file without jumps).
    pub captured_s: f64,
}

/// A step forward between consecutive records larger than this (30 days)
/// is damage, not silence: the corpus has files whose records jump by
/// decades. A capture filtered down to one conversation can hold days of
/// silence (zeek's ctu-sme-11 LDAP extract: 4 days between its two
/// connections), so the bound is a month.
pub const TIME_JUMP_S: f64 = 30.0 * 86_400.0;

/// A step back larger than this is damage too: tcpdump writes records in
/// the order the kernel timestamps them, and pcapng files of several
/// interfaces interleave them within a buffer flush (milliseconds), so a
/// minute back is a clock stepped or a record corrupt.
pub const TIME_BACK_JUMP_S: f64 = 60.0;

/// Whether a step of `step` seconds from one record to the next is a jump
/// of the clock or the file. Right after a jump, any step larger than
/// [`TIME_BACK_JUMP_S`] either way is the way back (a corrupt timestamp
/// between good ones: suricata-verify's transform-base64-7296 has records
/// 65,536 s and 2.6 years off).
pub fn is_time_jump(step: f64, after_jump: bool) -> bool {
    !(-TIME_BACK_JUMP_S..=TIME_JUMP_S).contains(&step)
        || (after_jump && step.abs() > TIME_BACK_JUMP_S)
}

impl CaptureReport {
    /// Nothing read yet.
    fn new(path: &str) -> CaptureReport {
        CaptureReport {
            path: path.to_string(),
            format: None,
            big_endian: false,
            link_types: Vec::new(),
            packets: 0,
            tcp_packets: 0,
            skipped: BTreeMap::new(),
            first: None,
            last: None,
            truncated: false,
            damage: None,
            error: None,
            error_kind: None,
            time_jumps: 0,
            time_jump_frames: Vec::new(),
            overlap_skipped: 0,
            captured_s: 0.0,
        }
    }
}

/// Counts over all connections.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    pub packets: u64,
    pub tcp_packets: u64,
    pub connections: u64,
    pub by_close_kind: BTreeMap<&'static str, u64>,
    pub by_active_closer: BTreeMap<&'static str, u64>,
    pub by_handshake: BTreeMap<&'static str, u64>,
    /// The host with the most TIME_WAIT sockets at once.
    pub time_wait_peak: Option<TimeWaitPeak>,
    pub findings: BTreeMap<Severity, u64>,
    /// Capture duration, first to last frame, in seconds.
    pub duration_s: f64,
    /// Connections retired before the end of the capture while not closed,
    /// after a long silence (130 s in the handshake, 3 h after it; see
    /// `track::HANDSHAKE_IDLE_S`, `track::IDLE_S`). A later packet on such a
    /// 4-tuple starts a new connection.
    pub idle_retired: u64,
    /// Connections whose handshake says the capture point sits near the
    /// `client` or the `server` (one leg clearly shorter), or `unknown`.
    pub capture_near: BTreeMap<&'static str, u64>,
    /// TCP frames that were a copy of the frame just before in the same
    /// direction (same seq, ack, flags, window, length, IP id, within
    /// `track::DUPLICATE_WINDOW_S`, or `DUPLICATE_WINDOW_SAME_ID_S` with the
    /// same non-zero IPv4 id): one packet captured twice. They keep
    /// their frame numbers but are in no other count.
    pub duplicate_frames: u64,
    /// Connections of which the capture holds one direction only, though
    /// the other sent (see `ConnectionRecord::one_way`).
    pub one_way_connections: u64,
    /// Connections already open when the capture began (no SYN or SYN-ACK
    /// in it): what happened before their first frame is not in the file.
    pub started_before_capture: u64,
    /// Timestamp jumps between consecutive records, over all inputs (see [`CaptureReport::time_jumps`]).
    pub time_jumps: u64,
    /// Capture time without those jumps, over all inputs.
    pub captured_s: f64,
    /// Records of later inputs skipped because an earlier input already
    /// covered their time (see [`CaptureReport::overlap_skipped`]).
    pub overlap_skipped: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimeWaitPeak {
    pub ip: std::net::IpAddr,
    pub sockets: u64,
    pub at: Option<Timestamp>,
}

/// Everything timewait knows about a run: the input of every report.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub schema: &'static str,
    pub version: &'static str,
    pub options: Options,
    pub captures: Vec<CaptureReport>,
    pub summary: Summary,
    pub connections: Vec<ConnectionRecord>,
    pub findings: Vec<Finding>,
    pub hosts: Vec<HostRecord>,
    /// Host information (`--host-info`, CAPTURE.host.json); absent from the
    /// JSON when none was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<crate::host::HostReport>,
}

impl Analysis {
    /// Time of the first frame of the run, the origin of relative times.
    pub fn origin(&self) -> Option<Timestamp> {
        self.captures.iter().filter_map(|c| c.first).min()
    }

    /// Whether any input could not be read or stopped early on damage
    /// other than a truncated tail.
    pub fn has_input_errors(&self) -> bool {
        self.captures.iter().any(|c| {
            c.error.is_some()
                || c.damage.as_ref().is_some_and(|d| {
                    !matches!(
                        d.kind,
                        capture::DamageKind::Truncated | capture::DamageKind::Interrupted
                    )
                })
        })
    }
}

/// Called for every TCP segment with what the tracker made of it; used by
/// `show` to draw one connection's ladder.
pub trait SegmentObserver {
    fn on_segment(&mut self, capture: u32, seg: &Segment, obs: &Observation);
}

impl SegmentObserver for () {
    fn on_segment(&mut self, _: u32, _: &Segment, _: &Observation) {}
}

/// A borrowed observer, so the caller keeps what it collected.
impl<T: SegmentObserver + ?Sized> SegmentObserver for &mut T {
    fn on_segment(&mut self, capture: u32, seg: &Segment, obs: &Observation) {
        (**self).on_segment(capture, seg, obs);
    }
}

/// Receives each connection record as the tracker retires it, in
/// retirement order (not id order), when the pipeline streams. `Break`
/// says nobody wants more (the output was closed: `| head`): the pipeline
/// then stops reading.
pub type RecordSink<'o> = Box<dyn FnMut(ConnectionRecord) -> ControlFlow<()> + 'o>;

/// Counts a progress display reads while the pipeline runs (from another
/// thread: relaxed atomics, updated once per batch of segments).
#[derive(Debug, Default)]
pub struct ProgressCounts {
    /// Frames read so far, over all files.
    pub packets: AtomicU64,
    /// Connections opened so far.
    pub connections: AtomicU64,
}

/// Streams one or more capture files through decode and track.
pub struct Pipeline<'o> {
    options: Options,
    tracker: Tracker,
    /// First and last time of segments fed directly (no capture file).
    segment_span: Option<(Timestamp, Timestamp)>,
    captures: Vec<CaptureReport>,
    observer: Box<dyn SegmentObserver + 'o>,
    retire: Retire<'o>,
    progress: Option<Arc<ProgressCounts>>,
    /// Set from outside (Ctrl-C) to stop reading and report what was read.
    interrupt: Option<Arc<AtomicBool>>,
    /// The latest record time of the inputs read so far: a later input's
    /// records up to it are skipped ([`CaptureReport::overlap_skipped`]).
    timeline_end: Option<Timestamp>,
    /// Host information the findings are checked against at the end.
    host: Option<crate::host::HostReport>,
}

/// Where each connection record goes as the tracker retires it: to the
/// sink when streaming; else into the summary counts, the host tally and
/// every detector, in the order of [`detect::all`], and kept only when the
/// caller asked for the records.
struct Retire<'o> {
    detectors: Vec<Box<dyn Detector>>,
    /// Indexes of the detectors that look at segments.
    segment_detectors: Vec<usize>,
    claims: Claims,
    tally: Tally,
    hosts: HostTally,
    keep: bool,
    /// Keep only this connection's record (`show`).
    keep_only: Option<ConnId>,
    kept: Vec<ConnectionRecord>,
    sink: Option<RecordSink<'o>>,
    /// The sink wants no more records.
    stopped: bool,
    /// The tracker's TIME_WAIT floor last handed on.
    floor: Option<crate::time::Timestamp>,
}

impl Retire<'_> {
    fn take(&mut self, record: ConnectionRecord) {
        if let Some(sink) = &mut self.sink {
            if !self.stopped {
                self.stopped = sink(record).is_break();
            }
            return;
        }
        self.tally.add(&record);
        self.hosts.add(&record);
        detect::connection_end_all(&mut self.detectors, &record, &mut self.claims);
        if self.keep && self.keep_only.is_none_or(|id| id == record.id) {
            self.kept.push(record);
        }
    }

    /// Hands the tracker's TIME_WAIT floor on when it moved, after the
    /// records retired before it (the sweeps of TIME_WAIT peaks fold what
    /// starts before it).
    fn advance(&mut self, floor: Option<crate::time::Timestamp>) {
        if floor == self.floor || self.sink.is_some() {
            return;
        }
        self.floor = floor;
        if let Some(f) = floor {
            self.hosts.advance(f);
            for d in &mut self.detectors {
                d.advance(f);
            }
        }
    }
}

/// Connections by close kind, active closer and handshake state.
#[derive(Default)]
struct Tally {
    close_kind: [u64; CloseKind::ALL.len()],
    closer: [u64; Closer::ALL.len()],
    handshake: [u64; HandshakeState::ALL.len()],
    /// client, server, unknown
    capture_near: [u64; 3],
    one_way: u64,
    started_before: u64,
}

impl Tally {
    fn add(&mut self, c: &ConnectionRecord) {
        self.close_kind[c.close.kind.index()] += 1;
        self.closer[c.close.active_closer.index()] += 1;
        self.handshake[c.handshake.state.index()] += 1;
        let near = match c.handshake.capture_near {
            Some(crate::flow::Side::Client) => 0,
            Some(crate::flow::Side::Server) => 1,
            None => 2,
        };
        self.capture_near[near] += 1;
        self.one_way += u64::from(c.one_way);
        let packets = c.client_to_server.packets + c.server_to_client.packets;
        self.started_before += u64::from(c.role_inferred && packets > u64::from(c.ignored));
    }
}

impl<'o> Pipeline<'o> {
    pub fn new(options: Options) -> Pipeline<'o> {
        Pipeline::with_observer(options, Box::new(()))
    }

    pub fn with_observer(
        options: Options,
        observer: Box<dyn SegmentObserver + 'o>,
    ) -> Pipeline<'o> {
        let detectors = detect::all(&options.detect());
        let segment_detectors = (0..detectors.len())
            .filter(|i| detectors[*i].wants_segments())
            .collect();
        Pipeline {
            tracker: Tracker::new(options.time_wait_s),
            retire: Retire {
                detectors,
                segment_detectors,
                claims: Claims::default(),
                tally: Tally::default(),
                hosts: HostTally::default(),
                keep: false,
                keep_only: None,
                kept: Vec::new(),
                sink: None,
                stopped: false,
                floor: None,
            },
            segment_span: None,
            options,
            captures: Vec::new(),
            observer,
            progress: None,
            interrupt: None,
            timeline_end: None,
            host: None,
        }
    }

    /// Checks the findings against this host information when the run
    /// finishes ([`crate::host::confirm`]) and puts it in the report.
    pub fn host_info(mut self, host: crate::host::HostReport) -> Pipeline<'o> {
        self.host = Some(host);
        self
    }

    /// Whether [`Analysis::connections`] holds every connection record (the
    /// JSON report, `conns`, `show`, `timeline` need them). Off by default:
    /// the detectors, the summary and the hosts fold each record as it is
    /// retired, so memory follows the connections open at once.
    pub fn keep_connections(mut self, keep: bool) -> Pipeline<'o> {
        self.retire.keep = keep;
        self
    }

    /// Keeps the record of connection `id` only (and runs everything
    /// else as usual): `show` needs one connection, not all of them.
    pub fn keep_only(mut self, id: ConnId) -> Pipeline<'o> {
        self.retire.keep = true;
        self.retire.keep_only = Some(id);
        self
    }

    /// A pipeline that hands every connection record to `sink` as soon as
    /// it is retired and keeps none, so memory stays flat however large the
    /// input (`conns --format ndjson`). It runs no detectors: the
    /// [`Analysis`] from [`Pipeline::finish`] has no connections, findings
    /// or hosts, and its summary only counts connections.
    pub fn streaming(options: Options, sink: RecordSink<'o>) -> Pipeline<'o> {
        let mut p = Pipeline::new(options);
        p.retire.detectors.clear();
        p.retire.segment_detectors.clear();
        p.retire.sink = Some(sink);
        p
    }

    /// Publishes packets read and connections opened to `counts` as the
    /// pipeline runs, for a progress bar.
    pub fn report_progress(&mut self, counts: Arc<ProgressCounts>) {
        self.progress = Some(counts);
    }

    /// Stops reading the inputs fed from now on when `flag` is set (the CLI
    /// sets it on Ctrl-C): the record being read is the last, the capture
    /// report says `interrupted`, and the analysis covers everything before
    /// it. `None`: read to the end whatever happens (a pipe, whose writer
    /// gets the same Ctrl-C and ends it).
    pub fn stop_when(&mut self, flag: Option<Arc<AtomicBool>>) {
        self.interrupt = flag;
    }

    /// Whether the streaming sink asked for no more records: reading more
    /// files would be wasted.
    pub fn stopped(&self) -> bool {
        self.retire.stopped
    }

    /// Connections opened so far (for progress).
    pub fn connections_seen(&self) -> u64 {
        u64::from(self.tracker.connections_seen())
    }

    /// Reads one capture to its end. An unreadable file is recorded in the
    /// report and returned as the error; damage after the header is not an
    /// error (see [`CaptureReport::damage`]).
    ///
    /// Two threads: this one tracks connections and runs the detectors
    /// while a second reads and decodes the file, handing segments over in
    /// batches in capture order. Decoding is about a third of the work, and
    /// the benchmark (benches/run.sh) shows the split pays on two cores.
    pub fn feed<R: Read + Send>(&mut self, path: &str, input: R) -> Result<(), CaptureError> {
        let index = self.captures.len() as u32;
        self.tracker.set_capture(index);
        let tracker = &mut self.tracker;
        let observer = &mut self.observer;
        let retire = &mut self.retire;
        let (full_tx, full_rx) = mpsc::sync_channel::<Vec<Segment>>(BATCHES_IN_FLIGHT);
        let (empty_tx, empty_rx) = mpsc::channel::<Vec<Segment>>();
        let progress = self.progress.clone();
        let reader_progress = progress.clone();
        let interrupt = self.interrupt.clone();
        let covered_until = self.timeline_end;
        let threaded = std::thread::scope(|scope| {
            let reader = std::thread::Builder::new()
                .name("timewait-read".into())
                .spawn_scoped(scope, move || {
                    let handover = Handover {
                        full: &full_tx,
                        empty: &empty_rx,
                        progress: reader_progress,
                        interrupt,
                        covered_until,
                    };
                    read_and_decode(path, input, handover)
                })?;
            for mut batch in full_rx {
                if retire.stopped {
                    // Dropping the receiver stops the reader.
                    break;
                }
                if index > 0 {
                    // Frames name their file from here on (crate::frame).
                    for seg in &mut batch {
                        seg.frame = crate::frame::frame_id(index, seg.frame);
                    }
                }
                for seg in &batch {
                    feed_segment(tracker, retire, seg, &mut **observer, index);
                }
                if let Some(p) = &progress {
                    let seen = u64::from(tracker.connections_seen());
                    p.connections.store(seen, Ordering::Relaxed);
                }
                batch.clear();
                // The reader may be done already; then the batch just goes.
                let _ = empty_tx.send(batch);
            }
            match reader.join() {
                Ok(done) => Ok(done),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        });
        let (mut report, result) = match threaded {
            Ok(done) => done,
            Err(e) => (CaptureReport::new(path), Err(CaptureError::Thread(e))),
        };
        if let Some(last) = report.last {
            self.timeline_end = Some(self.timeline_end.map_or(last, |e| e.max(last)));
        }
        let outcome = match result {
            Ok(facts) => {
                self.apply_facts(&mut report, facts);
                Ok(())
            }
            Err(e) => {
                report.error = Some(e.to_string());
                report.error_kind = Some(e.kind());
                Err(e)
            }
        };
        self.captures.push(report);
        outcome
    }

    /// Records an input that could not even be opened.
    pub fn record_failure(&mut self, path: &str, error: &str) {
        self.captures.push(CaptureReport {
            error: Some(error.to_string()),
            error_kind: Some(capture::CaptureErrorKind::Open),
            ..CaptureReport::new(path)
        });
    }

    fn apply_facts(&self, report: &mut CaptureReport, facts: CaptureFacts) {
        report.format = Some(facts.format);
        report.big_endian = facts.big_endian;
        report.packets = facts.records;
        report.truncated = facts
            .damage
            .as_ref()
            .is_some_and(|d| d.kind == capture::DamageKind::Truncated);
        report.damage = facts.damage;
    }

    /// Feeds one already decoded segment (tests and generators build them).
    pub fn feed_segment(&mut self, seg: &Segment) {
        self.segment_span = Some(match self.segment_span {
            Some((a, b)) => (a.min(seg.ts), b.max(seg.ts)),
            None => (seg.ts, seg.ts),
        });
        feed_segment(
            &mut self.tracker,
            &mut self.retire,
            seg,
            &mut *self.observer,
            0,
        );
    }

    /// Retires every connection, runs the detectors and builds the report.
    pub fn finish(mut self) -> Analysis {
        let idle_retired = self.tracker.idle_retired();
        let duplicate_frames = self.tracker.duplicates();
        let seen = u64::from(self.tracker.connections_seen());
        let capture_start = self
            .captures
            .iter()
            .filter_map(|c| c.first)
            .chain(self.segment_span.map(|s| s.0))
            .min();
        let capture_end = self
            .captures
            .iter()
            .filter_map(|c| c.last)
            .chain(self.segment_span.map(|s| s.1))
            .max();
        for record in self.tracker.finish(capture_end) {
            if self.retire.stopped {
                break;
            }
            self.retire.take(record);
        }
        let mut retire = self.retire;
        let hosts = retire.hosts.finish();
        let config = self.options.detect();
        let ctx = detect::Context {
            config: &config,
            capture_start,
            capture_end,
        };
        let mut findings = detect::finish_all(&mut retire.detectors, &ctx, &self.options.findings);
        if let Some(h) = &self.host {
            let duration = match (ctx.capture_start, ctx.capture_end) {
                (Some(a), Some(b)) => b.secs_since(a),
                _ => 0.0,
            };
            crate::host::confirm(
                &mut findings,
                &h.hosts,
                h.port_range.as_ref(),
                &hosts,
                duration,
                self.options.time_wait_s,
            );
            findings.retain(|f| self.options.findings.wants(f.kind));
        }
        for f in &mut findings {
            f.localize(self.captures.len());
        }
        let mut summary = summarize(&self.captures, &retire.tally, &hosts, &findings);
        summary.connections = seen;
        summary.idle_retired = idle_retired;
        summary.duplicate_frames = duplicate_frames;
        let mut connections = retire.kept;
        connections.sort_unstable_by_key(|r| r.id);
        Analysis {
            schema: SCHEMA,
            version: env!("CARGO_PKG_VERSION"),
            options: self.options,
            captures: self.captures,
            summary,
            connections,
            findings,
            hosts,
            host: self.host,
        }
    }
}

/// Segments handed from the reading thread to the tracking thread at once:
/// large enough that the hand-over costs nothing per segment, small enough
/// to stay in cache (about 112 KB).
const BATCH: usize = 1024;

/// Full batches waiting for the tracker; bounds the memory between the
/// threads when the reader is faster.
const BATCHES_IN_FLIGHT: usize = 4;

/// What the reading thread shares with the rest of the pipeline.
struct Handover<'a> {
    /// Full batches, to the tracker.
    full: &'a mpsc::SyncSender<Vec<Segment>>,
    /// Emptied batches, back for reuse.
    empty: &'a mpsc::Receiver<Vec<Segment>>,
    progress: Option<Arc<ProgressCounts>>,
    interrupt: Option<Arc<AtomicBool>>,
    /// Records at or before this time belong to time an earlier input
    /// covered: skipped.
    covered_until: Option<Timestamp>,
}

/// The reading thread: records → segments, in batches, plus everything the
/// capture report says about the file itself.
fn read_and_decode<R: Read>(
    path: &str,
    input: R,
    handover: Handover<'_>,
) -> (CaptureReport, Result<CaptureFacts, CaptureError>) {
    let Handover {
        full,
        empty,
        progress,
        interrupt,
        covered_until,
    } = handover;
    let interrupted = || {
        interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    };
    let mut report = CaptureReport::new(path);
    // Frames not yet added to the progress counts.
    let mut unreported: u64 = 0;
    let mut links: BTreeMap<LinkType, u64> = BTreeMap::new();
    let mut batch = Vec::with_capacity(BATCH);
    // Per file: IP fragment queues do not span files.
    let mut decoder = decode::Decoder::new();
    // The tracker stops taking batches when the streaming sink wants no
    // more records (or when it panicked: then its panic is what the caller
    // sees). Either way, reading on is wasted.
    let mut tracker_gone = false;
    let mut previous: Option<Timestamp> = None;
    // The step before was a jump: the next large step is its way back.
    let mut jumped = false;
    // The last step that was not a jump.
    let mut last_step = 0.0;
    let result = capture::read_capture_until(input, |record| {
        *links.entry(record.link).or_default() += 1;
        unreported += 1;
        if let Some(p) = previous {
            let step = record.ts.secs_since(p);
            if is_time_jump(step, jumped) {
                // A step back right after a large step forward: that step
                // was the jump out, this is the way back.
                if !jumped && step < 0.0 && last_step > TIME_BACK_JUMP_S {
                    report.captured_s -= last_step;
                    report.time_jumps += 1;
                    if report.time_jump_frames.len() < 8 {
                        report.time_jump_frames.push(record.frame - 1);
                    }
                }
                jumped = true;
                report.time_jumps += 1;
                if report.time_jump_frames.len() < 8 {
                    report.time_jump_frames.push(record.frame);
                }
            } else {
                jumped = false;
                last_step = step;
                report.captured_s += step.abs();
            }
        }
        previous = Some(record.ts);
        if report.first.is_none_or(|f| record.ts < f) {
            report.first = Some(record.ts);
        }
        if report.last.is_none_or(|l| record.ts > l) {
            report.last = Some(record.ts);
        }
        if covered_until.is_some_and(|end| record.ts <= end) {
            report.overlap_skipped += 1;
        } else if let Some(seg) = decoder.decode(record) {
            report.tcp_packets += 1;
            batch.push(seg);
            if batch.len() == BATCH {
                if let Some(p) = &progress {
                    p.packets.fetch_add(unreported, Ordering::Relaxed);
                    unreported = 0;
                }
                let next = empty
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(BATCH));
                tracker_gone = full.send(std::mem::replace(&mut batch, next)).is_err();
            }
        }
        if tracker_gone || interrupted() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    let result = result.map(|mut facts| {
        if interrupted() && facts.damage.is_none() {
            facts.damage = Some(capture::Damage {
                kind: capture::DamageKind::Interrupted,
                after_frame: facts.records,
                offset: facts.bytes,
                message: "reading was interrupted (Ctrl-C)".to_string(),
            });
        }
        facts
    });
    report.skipped = decoder.finish();
    if !batch.is_empty() && !tracker_gone {
        let _ = full.send(batch);
    }
    if let Some(p) = &progress {
        p.packets.fetch_add(unreported, Ordering::Relaxed);
    }
    report.link_types = links
        .into_iter()
        .map(|(link_type, frames)| LinkTypeCount {
            link_type,
            id: link_type.0,
            frames,
        })
        .collect();
    (report, result)
}

/// One segment through the tracker, the detectors and the observer, then
/// the records it retired.
fn feed_segment(
    tracker: &mut Tracker,
    retire: &mut Retire<'_>,
    seg: &Segment,
    observer: &mut dyn SegmentObserver,
    capture: u32,
) {
    let (obs, conn) = tracker.on_segment_conn(seg);
    // A capture copy, or a segment the receiver's kernel drops unseen, is
    // no event for any detector; the observer (the ladder) still shows it.
    if !obs.notes.duplicate && !obs.notes.ignored {
        for &i in &retire.segment_detectors {
            retire.detectors[i].on_segment(seg, &obs, conn);
        }
    }
    observer.on_segment(capture, seg, &obs);
    if tracker.has_retired() {
        for record in tracker.drain_retired() {
            retire.take(record);
        }
    }
    retire.advance(tracker.time_wait_floor());
}

fn summarize(
    captures: &[CaptureReport],
    tally: &Tally,
    hosts: &[HostRecord],
    findings: &[Finding],
) -> Summary {
    let mut s = Summary {
        packets: captures.iter().map(|c| c.packets).sum(),
        tcp_packets: captures.iter().map(|c| c.tcp_packets).sum(),
        ..Summary::default()
    };
    for (k, n) in CloseKind::ALL.iter().zip(tally.close_kind) {
        s.by_close_kind.insert(k.as_str(), n);
    }
    for (k, n) in Closer::ALL.iter().zip(tally.closer) {
        s.by_active_closer.insert(k.as_str(), n);
    }
    for (k, n) in HandshakeState::ALL.iter().zip(tally.handshake) {
        s.by_handshake.insert(k.as_str(), n);
    }
    s.one_way_connections = tally.one_way;
    s.started_before_capture = tally.started_before;
    for (k, n) in ["client", "server", "unknown"]
        .iter()
        .zip(tally.capture_near)
    {
        s.capture_near.insert(k, n);
    }
    s.time_wait_peak = hosts
        .iter()
        .filter(|h| h.time_wait_peak > 0)
        .max_by_key(|h| h.time_wait_peak)
        .map(|h| TimeWaitPeak {
            ip: h.ip,
            sockets: h.time_wait_peak,
            at: h.peak_at,
        });
    for sev in [Severity::Info, Severity::Warning, Severity::Error] {
        s.findings.insert(sev, 0);
    }
    for f in findings {
        *s.findings.entry(f.severity).or_default() += 1;
    }
    let first = captures.iter().filter_map(|c| c.first).min();
    let last = captures.iter().filter_map(|c| c.last).max();
    if let (Some(a), Some(b)) = (first, last) {
        s.duration_s = b.secs_since(a);
    }
    s.time_jumps = captures.iter().map(|c| c.time_jumps).sum();
    s.captured_s = captures.iter().map(|c| c.captured_s).sum();
    s.overlap_skipped = captures.iter().map(|c| c.overlap_skipped).sum();
    s
}

/// Analyzes one capture from a reader: the whole pipeline in one call, as
/// tests, benches and fuzz targets use it.
pub fn analyze<R: Read + Send>(
    path: &str,
    input: R,
    options: &Options,
) -> Result<Analysis, CaptureError> {
    let mut p = Pipeline::new(options.clone()).keep_connections(true);
    p.feed(path, input)?;
    Ok(p.finish())
}
