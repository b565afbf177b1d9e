//! The pipeline in one place: bytes → records → segments → connections →
//! the [`Analysis`] every report renders. One streaming pass per file; the
//! files of one run form one timeline (rotated `tcpdump -C/-G` output).
//!
//! Split by job: [`model`] (the report model, the JSON contract), this
//! file (the pipeline), [`reader`] (the reading thread and the hand-over),
//! [`fold`] (the folding thread), [`summary`] (the counts of the summary).

mod fold;
mod model;
mod reader;
mod stored;
mod summary;

use fold::{Folder, Keep};
pub use model::*;
use reader::{BATCHES_IN_FLIGHT, Batch, Handover, read_and_decode};
pub use stored::SPILL_ABOVE;
use summary::{Tally, summarize};

use crate::capture::{self, CaptureError, CaptureFacts};
use crate::decode::Segment;
use crate::detect::{self, SegmentFacts};
use crate::flow::FlowKey;
use crate::time::Timestamp;
use crate::track::{ConnId, ConnectionRecord, Observation, TimeWaitCut, Tracker};
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

/// What a pipeline does with each connection record as the tracker
/// retires it: chosen once, when the pipeline is made, so no later call can
/// ask it to keep records and stream them too.
pub enum Retain<'o> {
    /// Analyze, keep no record: the detectors, the summary and the hosts
    /// fold each record as it is retired, so memory follows the
    /// connections open at once (`analyze` in text or Markdown).
    Nothing,
    /// Analyze, and keep every record for [`Analysis::connections`] (the
    /// JSON report, `conns`).
    All,
    /// Analyze, and keep every record serialized for the JSON report
    /// (`analyze --format json`): up to `spill_above` bytes in memory
    /// ([`stored::SPILL_ABOVE`] for the command), the rest in sorted runs
    /// in a temporary file, so that memory does not follow the length of
    /// the capture. [`Analysis::connections`] then holds no record and
    /// only [`Connections::write_json`] writes them.
    Serialized { spill_above: usize },
    /// Analyze, and keep the record of this connection only: `show` draws
    /// one connection, not all of them.
    Only(ConnId),
    /// No analysis: hand every record to the sink as soon as it is retired
    /// and keep none, so memory stays flat however large the input
    /// (`conns --format ndjson`, `timeline`). No detector is built: the
    /// [`Analysis`] from [`Pipeline::finish`] has no connections, findings
    /// or hosts, and its summary only counts connections.
    Stream(RecordSink<'o>),
}

/// Streams one or more capture files through decode and track.
pub struct Pipeline<'o> {
    options: Options,
    tracker: Tracker,
    /// First and last time of segments fed directly (no capture file).
    segment_span: Option<(Timestamp, Timestamp)>,
    captures: Vec<CaptureReport>,
    /// None without one (`analyze`, `conns`): no call per segment then.
    observer: Option<Box<dyn SegmentObserver + 'o>>,
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

/// Where each connection record goes as the tracker retires it.
enum Retire<'o> {
    /// To the folding side ([`fold`]): the summary counts, the host tally
    /// and the detectors; kept as [`Retain`] said.
    Analyze(Box<Analyzer>),
    /// To the sink ([`Retain::Stream`]).
    Stream {
        sink: RecordSink<'o>,
        /// The sink wants no more records.
        stopped: bool,
        /// Records streamed before a new incarnation cut their TIME_WAIT
        /// short ([`Summary::streamed_uncut`]).
        uncut: u64,
    },
}

/// The segments handed to the folding side as [`SegmentFacts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FactsOf {
    /// Those [`SegmentFacts::wanted`] names.
    Wanted,
    /// Every segment (for the test that holds the two to the same results).
    #[cfg(test)]
    Every,
}

/// The tracking thread's part of an analyzing pipeline: every detector
/// runs on the folding side, which sees the segments they read as
/// [`SegmentFacts`].
struct Analyzer {
    /// Which segments go to the folding side as [`SegmentFacts`]: none
    /// when no detector there reads them.
    facts: Option<FactsOf>,
    /// The summary, the hosts, the detectors and the records kept.
    fold: Folder,
    /// The tracker's TIME_WAIT floor last handed on.
    floor: Option<crate::time::Timestamp>,
    /// Which bare ACKs go on as facts ([`detect::AttemptGate`]).
    gate: detect::AttemptGate,
}

impl Retire<'_> {
    fn new<'o>(options: &Options, retain: Retain<'o>) -> Retire<'o> {
        let keep = match retain {
            Retain::Stream(sink) => {
                return Retire::Stream {
                    sink,
                    stopped: false,
                    uncut: 0,
                };
            }
            Retain::Nothing => Keep::Nothing,
            Retain::All => Keep::All,
            Retain::Serialized { spill_above } => Keep::Serialized(spill_above),
            Retain::Only(id) => Keep::Only(id),
        };
        let facts = detect::all(&options.detect())
            .iter()
            .any(|d| d.facts_wanted() != detect::FactsWanted::None)
            .then_some(FactsOf::Wanted);
        Retire::Analyze(Box::new(Analyzer {
            facts,
            fold: Folder::new(options.detect(), keep),
            floor: None,
            gate: detect::AttemptGate::new(&options.detect()),
        }))
    }

    /// Whether the streaming sink asked for no more records.
    fn stopped(&self) -> bool {
        matches!(self, Retire::Stream { stopped: true, .. })
    }

    /// Records the tracker retired, in retirement order.
    fn take(&mut self, retired: impl Iterator<Item = ConnectionRecord>) {
        match self {
            Retire::Stream { sink, stopped, .. } => {
                for record in retired {
                    if *stopped {
                        break;
                    }
                    *stopped = sink(record).is_break();
                }
            }
            Retire::Analyze(a) => {
                let Analyzer { fold, gate, .. } = &mut **a;
                fold.records(retired, |r| gate.ended(r.id));
            }
        }
    }

    /// A new incarnation took over the 4-tuple of a record written early:
    /// its TIME_WAIT ended then. A streamed record was written as it was.
    fn cut(&mut self, cut: TimeWaitCut) {
        let a = match self {
            Retire::Analyze(a) => a,
            Retire::Stream { uncut, .. } => {
                *uncut += 1;
                return;
            }
        };
        a.fold.cut(cut);
    }

    /// Hands the tracker's TIME_WAIT floor on when it moved, after the
    /// records retired before it (the sweeps of TIME_WAIT peaks fold what
    /// starts before it).
    fn advance(&mut self, floor: Option<crate::time::Timestamp>) {
        let Retire::Analyze(a) = self else {
            return;
        };
        if floor == a.floor {
            return;
        }
        a.floor = floor;
        if let Some(f) = floor {
            a.fold.advance(f);
        }
    }
}

impl<'o> Pipeline<'o> {
    /// A pipeline that does with each connection record what `retain` says.
    pub fn new(options: Options, retain: Retain<'o>) -> Pipeline<'o> {
        Pipeline::build(options, retain, None)
    }

    /// [`Pipeline::new`] with an observer of every segment (`show`'s ladder).
    pub fn with_observer(
        options: Options,
        retain: Retain<'o>,
        observer: Box<dyn SegmentObserver + 'o>,
    ) -> Pipeline<'o> {
        Pipeline::build(options, retain, Some(observer))
    }

    fn build(
        options: Options,
        retain: Retain<'o>,
        observer: Option<Box<dyn SegmentObserver + 'o>>,
    ) -> Pipeline<'o> {
        Pipeline {
            tracker: Tracker::new(options.time_wait_s),
            retire: Retire::new(&options, retain),
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

    /// Writes records early above `n` closed connections held whole, after
    /// `settle_s` of silence, instead of [`crate::track::COMPACT_ABOVE`] and
    /// [`crate::track::SETTLE_S`] (tests use 0 and 0 to take that path on
    /// every capture).
    pub fn compact_above(mut self, n: usize, settle_s: f64) -> Pipeline<'o> {
        self.tracker.set_compact_above(n, settle_s);
        self
    }

    /// Whether the streaming sink asked for no more records: reading more
    /// files would be wasted.
    pub fn stopped(&self) -> bool {
        self.retire.stopped()
    }

    /// Connections opened so far (for progress).
    pub fn connections_seen(&self) -> u64 {
        u64::from(self.tracker.connections_seen())
    }

    /// Reads one capture to its end. An unreadable file is recorded in the
    /// report and returned as the error; damage after the header is not an
    /// error (see [`CaptureReport::damage`]).
    ///
    /// Three threads: this one tracks connections while a second reads
    /// and decodes the file, handing segments over in batches in capture
    /// order, and a third runs the detectors on the retired records and
    /// the segment facts ([`fold`]). Tracking bounds the wall time; taking
    /// decoding and detecting off its thread pays even on two cores.
    pub fn feed<R: Read + Send>(&mut self, path: &str, input: R) -> Result<(), CaptureError> {
        let index = self.captures.len() as u32;
        self.tracker.set_capture(index);
        let tracker = &mut self.tracker;
        let observer = &mut self.observer;
        let retire = &mut self.retire;
        let (full_tx, full_rx) = mpsc::sync_channel::<Batch>(BATCHES_IN_FLIGHT);
        let (empty_tx, empty_rx) = mpsc::channel::<Batch>();
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
                if retire.stopped() {
                    // Dropping the receiver stops the reader.
                    break;
                }
                if index > 0 {
                    // Frames name their file from here on (crate::frame).
                    for seg in batch.segments_mut() {
                        seg.frame = crate::frame::FrameId::new(index, seg.frame.0);
                    }
                }
                for (seg, key) in batch.keyed() {
                    feed_segment(tracker, retire, seg, *key, observer.as_deref_mut(), index);
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
            FlowKey::new(seg.src, seg.dst),
            self.observer.as_deref_mut(),
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
        self.retire.take(self.tracker.finish(capture_end));
        let config = self.options.detect();
        let ctx = detect::Context {
            config: &config,
            capture_start,
            capture_end,
        };
        let streamed_uncut = match &self.retire {
            Retire::Stream { uncut, .. } => *uncut,
            Retire::Analyze(_) => 0,
        };
        let (tally, hosts, mut findings, mut connections, cuts, stored) = match self.retire {
            Retire::Analyze(a) => {
                let a = *a;
                let end = fold::End {
                    capture_start,
                    capture_end,
                    selection: self.options.findings.clone(),
                };
                let folded = a.fold.finish(end);
                (
                    folded.tally,
                    folded.hosts,
                    folded.findings,
                    folded.kept,
                    folded.kept_cuts,
                    folded.stored,
                )
            }
            // A streaming pipeline has counted connections only.
            Retire::Stream { .. } => (
                Tally::default(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
                None,
            ),
        };
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
        let mut summary = summarize(&self.captures, &tally, &hosts, &findings);
        summary.connections = seen;
        summary.idle_retired = idle_retired;
        summary.duplicate_frames = duplicate_frames;
        summary.early_records = early_records;
        summary.late_segments = late_segments;
        summary.streamed_uncut = streamed_uncut;
        connections.sort_unstable_by_key(|r| r.id);
        for cut in &cuts {
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
            connections: match stored {
                Some(stored) => Connections::stored(stored),
                None => connections.into(),
            },
            findings,
            hosts,
            host: self.host,
        }
    }
}

/// One segment through the tracker and the observer, its facts to the
/// detectors, then the records it retired.
fn feed_segment(
    tracker: &mut Tracker,
    retire: &mut Retire<'_>,
    seg: &Segment,
    key: FlowKey,
    observer: Option<&mut (dyn SegmentObserver + '_)>,
    capture: u32,
) {
    // Read where it lies: moving the observation out was a memcpy call
    // per segment (when it was 168 bytes, its Reuse not yet boxed).
    let fed = tracker.on_segment_keyed(seg, key);
    let (obs, conn) = (&fed.0, fed.1);
    // A capture copy, or a segment the receiver's kernel drops unseen, is
    // no event for any detector; the observer (the ladder) still shows it.
    // Nor is a segment of a connection whose record was written already.
    if let Some(conn) = conn
        && !obs.notes.duplicate
        && !obs.notes.ignored
        && let Retire::Analyze(a) = retire
    {
        let wanted = a.facts.is_some() && SegmentFacts::wanted(seg, obs, conn, &a.gate);
        if wanted {
            let facts = SegmentFacts::of(seg, obs, conn);
            a.gate.hand_on(&facts);
            a.fold.facts(facts);
        }
        // The test that shows the detectors every segment marks those left out.
        #[cfg(test)]
        if !wanted && a.facts == Some(FactsOf::Every) {
            let mut facts = SegmentFacts::of(seg, obs, conn);
            facts.left_out = true;
            a.fold.facts(facts);
        }
    }
    if let Some(observer) = observer {
        observer.on_segment(capture, seg, obs);
    }
    if tracker.has_retired() {
        retire.take(tracker.drain_retired());
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
    let mut p = Pipeline::new(options.clone(), Retain::All);
    p.feed(path, input)?;
    Ok(p.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/finrst-tw-gone.pcap");

    /// finrst-tw-gone (six connections, a fin-retransmit-rst warning)
    /// through `p`.
    fn run(mut p: Pipeline<'_>) -> Analysis {
        p.feed("finrst-tw-gone.pcap", std::fs::File::open(FIXTURE).unwrap())
            .unwrap();
        p.finish()
    }

    fn json<T: serde::Serialize + ?Sized>(v: &T) -> String {
        serde_json::to_string(v).unwrap()
    }

    #[test]
    fn each_retain_mode_keeps_what_it_says_and_analyzes_alike() {
        let all = run(Pipeline::new(Options::default(), Retain::All));
        assert_eq!(all.connections.len(), 6);
        assert!(!all.findings.is_empty() && !all.hosts.is_empty());
        let nothing = run(Pipeline::new(Options::default(), Retain::Nothing));
        assert!(nothing.connections.is_empty());
        assert_eq!(json(&nothing.findings), json(&all.findings));
        assert_eq!(json(&nothing.hosts), json(&all.hosts));
        assert_eq!(json(&nothing.summary), json(&all.summary));
        let one = run(Pipeline::new(Options::default(), Retain::Only(ConnId(2))));
        assert_eq!(one.connections.len(), 1);
        assert_eq!(json(&one.connections[0]), json(&all.connections[2]));
        assert_eq!(json(&one.findings), json(&all.findings));
    }

    /// `p` with its folding side in line, on the calling thread.
    fn folding_inline(mut p: Pipeline<'_>, keep: Keep) -> Pipeline<'_> {
        let Retire::Analyze(a) = &mut p.retire else {
            panic!("an analyzing pipeline");
        };
        assert!(matches!(a.fold, Folder::Thread { .. }), "folds on a thread");
        a.fold = Folder::inline(p.options.detect(), keep);
        p
    }

    #[test]
    fn folding_on_a_thread_of_its_own_gives_what_folding_in_line_gives() {
        // Captures with many records (more than a batch of events), cuts
        // of records written early (compacting at once), paws and
        // fin-retransmit-rst claims read by later detectors.
        for name in [
            "refused-many.pcap",
            "tw-seq-reject.pcap",
            "churn-redis.pcap",
            "ports-tw-reuse.pcap",
            "finrst-tw-gone.pcap",
            "nat-paws-fail.pcap",
        ] {
            let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
            for compact in [false, true] {
                let analyze = |inline: bool| {
                    let mut p = Pipeline::new(Options::default(), Retain::All);
                    if compact {
                        p = p.compact_above(0, 0.0);
                    }
                    if inline {
                        p = folding_inline(p, Keep::All);
                    }
                    p.feed(name, std::fs::File::open(&path).unwrap()).unwrap();
                    p.finish()
                };
                let (threaded, inline) = (analyze(false), analyze(true));
                assert!(!threaded.connections.is_empty(), "{name}");
                assert_eq!(json(&threaded), json(&inline), "{name} compact {compact}");
            }
        }
    }

    /// Every fixture capture; on those named here the detectors find
    /// something. Shown every segment, `paws-syn-drop` also checks that no
    /// bare ACK the gate leaves out belongs to an attempt
    /// ([`detect::AttemptGate`]).
    #[test]
    fn detectors_shown_only_the_segments_they_want_find_what_they_find_shown_every_segment() {
        let finding = [
            "finrst-tw-gone.pcap",
            "nat-paws-fail.pcap",
            "tw-seq-reject.pcap",
            "ports-tw-reuse.pcap",
        ];
        let dir = format!("{}/fixtures", env!("CARGO_MANIFEST_DIR"));
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".pcap") || n.ends_with(".pcapng"))
            .collect();
        names.sort();
        assert!(names.len() >= 40, "{names:?}");
        for name in &names {
            let name = name.as_str();
            let path = format!("{dir}/{name}");
            let analyze = |every: bool| {
                let mut p = Pipeline::new(Options::default(), Retain::All);
                let Retire::Analyze(a) = &mut p.retire else {
                    panic!("an analyzing pipeline");
                };
                assert_eq!(a.facts, Some(FactsOf::Wanted));
                if every {
                    a.facts = Some(FactsOf::Every);
                }
                p.feed(name, std::fs::File::open(&path).unwrap()).unwrap();
                p.finish()
            };
            let (filtered, every) = (analyze(false), analyze(true));
            assert!(
                !finding.contains(&name) || !every.findings.is_empty(),
                "{name}"
            );
            assert_eq!(json(&filtered), json(&every), "{name}");
        }
    }

    #[test]
    fn a_streaming_pipeline_hands_on_every_record_and_analyzes_nothing() {
        let all = run(Pipeline::new(Options::default(), Retain::All));
        let mut streamed = Vec::new();
        let sink = Box::new(|r: ConnectionRecord| {
            streamed.push(r);
            ControlFlow::Continue(())
        });
        let p = Pipeline::new(Options::default(), Retain::Stream(sink));
        assert!(
            matches!(&p.retire, Retire::Stream { .. }),
            "no analyzer: no detector is built"
        );
        let a = run(p);
        assert!(a.connections.is_empty() && a.findings.is_empty() && a.hosts.is_empty());
        assert_eq!(a.summary.connections, 6);
        streamed.sort_by_key(|r| r.id);
        assert_eq!(json(&streamed), json(&all.connections));
    }
}
