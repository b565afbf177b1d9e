//! The reading thread: reads and decodes one capture file and hands its
//! segments to the tracking thread in batches, in capture order.

use super::*;
use crate::capture::{self, CaptureError, CaptureFacts, LinkType};
use crate::decode::{self, Segment};
use crate::flow::{Endpoint, FlowKey};
use crate::seq::SeqNum;
use crate::time::Timestamp;
use std::collections::BTreeMap;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

/// Segments handed from the reading thread to the tracking thread at once:
/// large enough that the hand-over costs nothing per segment, small enough
/// to stay in cache (about 150 KB: segments of 112 bytes, keys of 40).
pub(super) const BATCH: usize = 1024;

/// Full batches waiting for the tracker; bounds the memory between the
/// threads when the reader is faster (2.2 MB). Twelve, not four, so that
/// the reader keeps ahead while the tracker and the folder take both cores
/// (see `fold::BATCHES_IN_FLIGHT`: deeper queues on one side only left the
/// cores as idle as before).
pub(super) const BATCHES_IN_FLIGHT: usize = 12;

/// Segments in capture order, each with its [`FlowKey`]: made here, on the
/// reading thread, which has time to spare, rather than on the tracking
/// thread, which bounds the run's wall time.
///
/// Fixed slots, [`BATCH`] of each, reused from batch to batch: the decoder
/// writes each segment and key straight into its slot. (Pushing a decoded
/// segment copied its 136 bytes once more, with a `memcpy` call.)
pub(super) struct Batch {
    /// `BATCH` slots; the first `len` hold this batch's segments.
    segments: Vec<Segment>,
    /// `FlowKey::new(seg.src, seg.dst)` of each segment, by index.
    keys: Vec<FlowKey>,
    len: usize,
}

impl Batch {
    fn with_capacity() -> Batch {
        let unspecified = Endpoint::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        let empty = Segment {
            frame: crate::frame::FrameId(0),
            ts: Timestamp(0),
            fragmentation: decode::Fragmentation::Whole,
            src: unspecified,
            dst: unspecified,
            seq: SeqNum(0),
            ack: SeqNum(0),
            flags: decode::TcpFlags(0),
            window: 0,
            payload_len: 0,
            tsopt: None,
            ip_id: None,
            wscale: None,
        };
        Batch {
            segments: vec![empty; BATCH],
            keys: vec![FlowKey::new(unspecified, unspecified); BATCH],
            len: 0,
        }
    }

    /// Decodes `record` into the next slot; false when it completes no
    /// segment. The batch must not be full.
    fn decode(&mut self, decoder: &mut decode::Decoder, record: &capture::Record<'_>) -> bool {
        match decoder.decode_into(record, &mut self.segments[self.len]) {
            Some(key) => {
                self.keys[self.len] = key;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// The segments, for the tracking thread to number by file.
    pub(super) fn segments_mut(&mut self) -> &mut [Segment] {
        &mut self.segments[..self.len]
    }

    /// Each segment with its key, in capture order.
    pub(super) fn keyed(&self) -> impl Iterator<Item = (&Segment, &FlowKey)> {
        self.segments[..self.len].iter().zip(&self.keys[..self.len])
    }

    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(super) fn clear(&mut self) {
        self.len = 0;
    }
}

/// What the reading thread shares with the rest of the pipeline.
pub(super) struct Handover<'a> {
    /// Full batches, to the tracker.
    pub(super) full: &'a mpsc::SyncSender<Batch>,
    /// Emptied batches, back for reuse.
    pub(super) empty: &'a mpsc::Receiver<Batch>,
    pub(super) progress: Option<Arc<ProgressCounts>>,
    pub(super) interrupt: Option<Arc<AtomicBool>>,
    /// Records at or before this time belong to time an earlier input
    /// covered: skipped.
    pub(super) covered_until: Option<Timestamp>,
}

/// The reading thread: records → segments, in batches, plus everything the
/// capture report says about the file itself.
pub(super) fn read_and_decode<R: Read>(
    path: &str,
    input: R,
    handover: Handover<'_>,
) -> (CaptureReport, Result<CaptureFacts, CaptureError>) {
    let mut reading = Reading {
        handover,
        report: CaptureReport::new(path),
        unreported: 0,
        links: BTreeMap::new(),
        link_run: None,
        batch: Batch::with_capacity(),
        decoder: decode::Decoder::new(),
        tracker_gone: false,
        previous: None,
        jumped: false,
        last_step: 0.0,
    };
    let result = capture::read_capture_until(input, |record| reading.record(record));
    reading.finish(result)
}

/// The reading thread's state within one file. One struct, so that the
/// per-record closure holds one reference to it, not one per variable.
struct Reading<'a> {
    handover: Handover<'a>,
    report: CaptureReport,
    /// Frames not yet added to the progress counts.
    unreported: u64,
    links: BTreeMap<LinkType, u64>,
    /// Frames of the link type of the latest frame not yet in `links`: a
    /// file rarely changes link type (pcapng interfaces may), and a tree
    /// entry per frame was a twentieth of the reading thread.
    link_run: Option<(LinkType, u64)>,
    batch: Batch,
    /// Per file: IP fragment queues do not span files.
    decoder: decode::Decoder,
    /// The tracker stops taking batches when the streaming sink wants no
    /// more records (or when it panicked: then its panic is what the
    /// caller sees). Either way, reading on is wasted.
    tracker_gone: bool,
    previous: Option<Timestamp>,
    /// The step before was a jump: the next large step is its way back.
    jumped: bool,
    /// The last step that was not a jump.
    last_step: f64,
}

impl Reading<'_> {
    #[inline]
    fn interrupted(&self) -> bool {
        self.handover
            .interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// One record: counted, timed, decoded into the batch.
    #[inline(always)]
    fn record(&mut self, record: &capture::Record<'_>) -> ControlFlow<()> {
        let report = &mut self.report;
        match &mut self.link_run {
            Some((link, frames)) if *link == record.link => *frames += 1,
            run => {
                if let Some((link, frames)) = run.replace((record.link, 1)) {
                    *self.links.entry(link).or_default() += frames;
                }
            }
        }
        self.unreported += 1;
        if let Some(p) = self.previous {
            let step = record.ts.secs_since(p);
            if is_time_jump(step, self.jumped) {
                // A step back right after a large step forward: that step
                // was the jump out, this is the way back.
                if !self.jumped && step < 0.0 && self.last_step > TIME_BACK_JUMP_S {
                    report.captured_s -= self.last_step;
                    report.time_jumps += 1;
                    if report.time_jump_frames.len() < 8 {
                        report.time_jump_frames.push(record.frame - 1);
                    }
                }
                self.jumped = true;
                report.time_jumps += 1;
                if report.time_jump_frames.len() < 8 {
                    report.time_jump_frames.push(record.frame);
                }
            } else {
                self.jumped = false;
                self.last_step = step;
                report.captured_s += step.abs();
            }
        }
        self.previous = Some(record.ts);
        if report.first.is_none_or(|f| record.ts < f) {
            report.first = Some(record.ts);
        }
        if report.last.is_none_or(|l| record.ts > l) {
            report.last = Some(record.ts);
        }
        if self
            .handover
            .covered_until
            .is_some_and(|end| record.ts <= end)
        {
            report.overlap_skipped += 1;
        } else if self.batch.decode(&mut self.decoder, record) {
            report.tcp_packets += 1;
            if self.batch.len() == BATCH {
                self.hand_over();
            }
        }
        if self.tracker_gone || self.interrupted() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    /// The full batch to the tracker, an emptied one (or a new one) in its
    /// place.
    fn hand_over(&mut self) {
        let Handover {
            full,
            empty,
            progress,
            ..
        } = &self.handover;
        if let Some(p) = progress {
            p.packets.fetch_add(self.unreported, Ordering::Relaxed);
            self.unreported = 0;
        }
        let next = empty.try_recv().unwrap_or_else(|_| Batch::with_capacity());
        self.tracker_gone = full.send(std::mem::replace(&mut self.batch, next)).is_err();
    }

    /// The last batch handed over, and the capture report.
    fn finish(
        mut self,
        result: Result<CaptureFacts, CaptureError>,
    ) -> (CaptureReport, Result<CaptureFacts, CaptureError>) {
        let result = result.map(|mut facts| {
            if self.interrupted() && facts.damage.is_none() {
                facts.damage = Some(capture::Damage {
                    kind: capture::DamageKind::Interrupted,
                    after_frame: facts.records,
                    offset: facts.bytes,
                    message: "reading was interrupted (Ctrl-C)".to_string(),
                });
            }
            facts
        });
        let mut report = self.report;
        report.skipped = self.decoder.finish();
        if !self.batch.is_empty() && !self.tracker_gone {
            let _ = self.handover.full.send(self.batch);
        }
        if let Some(p) = &self.handover.progress {
            p.packets.fetch_add(self.unreported, Ordering::Relaxed);
        }
        let mut links = self.links;
        if let Some((link, frames)) = self.link_run {
            *links.entry(link).or_default() += frames;
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
}
