//! The pipeline in one place: bytes → records → segments → connections →
//! the [`Analysis`] every report renders. One streaming pass per file; the
//! files of one run form one timeline (rotated `tcpdump -C/-G` output).
//!
//! Split by job: [`model`] (the report model, the JSON contract), this
//! file (the pipeline), [`reader`] (the reading thread and the hand-over),
//! [`summary`] (the counts of the summary).

mod model;
mod reader;
mod summary;

pub use model::*;
use reader::{BATCHES_IN_FLIGHT, Handover, read_and_decode};
use summary::{Tally, summarize};

use crate::capture::{self, CaptureError, CaptureFacts};
use crate::decode::Segment;
use crate::detect::{self, Claims, Detector};
use crate::time::Timestamp;
use crate::track::{ConnId, ConnectionRecord, HostTally, Observation, TimeWaitCut, Tracker};
use std::io::Read;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};

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
    /// Cuts of kept records' TIME_WAIT, applied when they are sorted.
    kept_cuts: Vec<TimeWaitCut>,
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

    /// A new incarnation took over the 4-tuple of a record written early:
    /// its TIME_WAIT ended then. A streamed record was written as it was.
    fn cut(&mut self, cut: TimeWaitCut) {
        if self.sink.is_some() {
            return;
        }
        self.hosts.cut(&cut);
        for d in &mut self.detectors {
            d.on_time_wait_cut(&cut);
        }
        if self.keep && self.keep_only.is_none_or(|id| id == cut.id) {
            self.kept_cuts.push(cut);
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
                kept_cuts: Vec::new(),
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
        let early_records = self.tracker.compacted();
        let late_segments = self.tracker.late_segments();
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
        summary.early_records = early_records;
        summary.late_segments = late_segments;
        let mut connections = retire.kept;
        connections.sort_unstable_by_key(|r| r.id);
        for cut in &retire.kept_cuts {
            if let Ok(i) = connections.binary_search_by_key(&cut.id, |r| r.id) {
                let tw = &mut connections[i].time_wait;
                tw.until = Some(cut.at);
                tw.reused_by = Some(cut.reused_by);
            }
        }
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
    // Nor is a segment of a connection whose record was written already.
    if let Some(conn) = conn
        && !obs.notes.duplicate
        && !obs.notes.ignored
    {
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
    if tracker.has_cuts() {
        for cut in tracker.drain_cuts() {
            retire.cut(cut);
        }
    }
    retire.advance(tracker.time_wait_floor());
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
