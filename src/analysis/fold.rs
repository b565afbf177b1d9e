//! The folding thread: the summary tally, the host tally and the detectors
//! that look at records only fold each retired record on a thread of their
//! own, so the tracking thread (the one that bounds a run's wall time)
//! only tracks, runs the detectors that look at segments, and hands the
//! records on.
//!
//! A detector that looks at segments keeps its record work on the tracking
//! thread: its per-segment state and its per-record state are one (the
//! attempts paws-syn-drop opens on a SYN are closed when the record comes),
//! so its calls must interleave as they happen. Every other consumer sees
//! the same calls in the same order as before (records, cuts and floor
//! advances, each in the order the tracker made them), and the claims the
//! tracking thread's detectors made on a record travel with it, so the
//! detectors here read the claims they read before.

use super::summary::Tally;
use crate::detect::{self, Claims, DetectConfig, Detector, Finding, FindingKind, Selection};
use crate::time::Timestamp;
use crate::track::{ConnId, ConnectionRecord, HostRecord, HostTally, TimeWaitCut};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// Events handed over at once: the hand-over then costs nothing per record,
/// and a batch (about 256 KB of records) stays in cache.
const BATCH: usize = 512;

/// Full batches waiting for the folding thread; bounds the records between
/// the threads when the folder is slower.
const BATCHES_IN_FLIGHT: usize = 4;

/// The claims on one record as bits, one per [`FindingKind::ALL`] entry.
type ClaimBits = u16;
const _: () = assert!(FindingKind::ALL.len() <= ClaimBits::BITS as usize);

/// What the tracking thread hands on, in the order it happened. Records
/// are nearly every event, so they go by value: a box each would be a
/// malloc and a free per connection.
#[allow(clippy::large_enum_variant)]
pub(super) enum Event {
    /// A retired record and the claims the tracking thread's detectors
    /// made on it.
    Record(ConnectionRecord, ClaimBits),
    /// A new incarnation cut the TIME_WAIT of a record written early.
    Cut(TimeWaitCut),
    /// The tracker's TIME_WAIT floor moved here.
    Advance(Timestamp),
}

/// Which records an analyzing pipeline keeps.
#[derive(Clone, Copy)]
pub(super) enum Keep {
    Nothing,
    All,
    Only(ConnId),
}

impl Keep {
    fn wants(self, id: ConnId) -> bool {
        match self {
            Keep::Nothing => false,
            Keep::All => true,
            Keep::Only(only) => only == id,
        }
    }
}

/// The claims `claims` holds on `id`, as bits.
pub(super) fn claim_bits(claims: &Claims, id: ConnId) -> ClaimBits {
    FindingKind::ALL
        .iter()
        .enumerate()
        .filter(|(_, k)| claims.is_claimed(**k, id))
        .fold(0, |bits, (i, _)| bits | 1 << i)
}

/// What the folding side made of the records, at the end.
pub(super) struct Folded {
    pub(super) tally: Tally,
    pub(super) hosts: Vec<HostRecord>,
    /// The findings of the detectors here, selected and sorted as
    /// [`detect::finish_all`] does.
    pub(super) findings: Vec<Finding>,
    pub(super) kept: Vec<ConnectionRecord>,
    /// Cuts of kept records' TIME_WAIT, applied when they are sorted.
    pub(super) kept_cuts: Vec<TimeWaitCut>,
}

/// The folding side's state, wherever it runs.
pub(super) struct Fold {
    config: DetectConfig,
    /// The detectors that do not look at segments, in the order of
    /// [`detect::all`].
    detectors: Vec<Box<dyn Detector>>,
    claims: Claims,
    tally: Tally,
    hosts: HostTally,
    keep: Keep,
    kept: Vec<ConnectionRecord>,
    kept_cuts: Vec<TimeWaitCut>,
}

impl Fold {
    fn new(config: DetectConfig, keep: Keep) -> Fold {
        let detectors = detect::all(&config)
            .into_iter()
            .filter(|d| !d.wants_segments())
            .collect();
        Fold {
            config,
            detectors,
            claims: Claims::default(),
            tally: Tally::default(),
            hosts: HostTally::default(),
            keep,
            kept: Vec::new(),
            kept_cuts: Vec::new(),
        }
    }

    fn apply(&mut self, event: Event) {
        match event {
            Event::Record(record, claimed) => {
                self.tally.add(&record);
                self.hosts.add(&record);
                for (i, kind) in FindingKind::ALL.iter().enumerate() {
                    if claimed & 1 << i != 0 {
                        self.claims.claim(*kind, record.id);
                    }
                }
                detect::connection_end_all(&mut self.detectors, &record, &mut self.claims);
                if self.keep.wants(record.id) {
                    self.kept.push(record);
                }
            }
            Event::Cut(cut) => {
                self.hosts.cut(&cut);
                for d in &mut self.detectors {
                    d.on_time_wait_cut(&cut);
                }
                if self.keep.wants(cut.id) {
                    self.kept_cuts.push(cut);
                }
            }
            Event::Advance(floor) => {
                self.hosts.advance(floor);
                for d in &mut self.detectors {
                    d.advance(floor);
                }
            }
        }
    }

    fn finish(mut self, end: End) -> Folded {
        let ctx = detect::Context {
            config: &self.config,
            capture_start: end.capture_start,
            capture_end: end.capture_end,
        };
        let findings = detect::finish_all(&mut self.detectors, &ctx, &end.selection);
        Folded {
            tally: self.tally,
            hosts: self.hosts.finish(),
            findings,
            kept: self.kept,
            kept_cuts: self.kept_cuts,
        }
    }
}

/// What the folding side needs to finish.
pub(super) struct End {
    pub(super) capture_start: Option<Timestamp>,
    pub(super) capture_end: Option<Timestamp>,
    pub(super) selection: Selection,
}

/// To the folding thread.
pub(super) enum Message {
    Events(Vec<Event>),
    Finish(End),
}

/// The tracking thread's end of the folding side.
pub(super) enum Folder {
    /// On a thread of its own (see the module's comment).
    Thread {
        batch: Vec<Event>,
        full: mpsc::SyncSender<Message>,
        /// Emptied batches, back for reuse.
        empty: mpsc::Receiver<Vec<Event>>,
        thread: Option<JoinHandle<Option<Folded>>>,
    },
    /// In line, on the caller's thread (when no thread could be made, and
    /// for the test that holds the two to the same results).
    Inline(Box<Fold>),
}

impl Folder {
    /// A folding side on a thread of its own, or in line if no thread can
    /// be made.
    pub(super) fn new(config: DetectConfig, keep: Keep) -> Folder {
        let (full_tx, full_rx) = mpsc::sync_channel::<Message>(BATCHES_IN_FLIGHT);
        let (empty_tx, empty_rx) = mpsc::channel::<Vec<Event>>();
        let spawned = std::thread::Builder::new()
            .name("timewait-fold".into())
            .spawn(move || {
                let mut fold = Fold::new(config, keep);
                for message in full_rx {
                    match message {
                        Message::Events(mut events) => {
                            for event in events.drain(..) {
                                fold.apply(event);
                            }
                            // The pipeline may be gone; then the batch goes.
                            let _ = empty_tx.send(events);
                        }
                        Message::Finish(end) => return Some(fold.finish(end)),
                    }
                }
                // The pipeline was dropped without finishing.
                None
            });
        match spawned {
            Ok(thread) => Folder::Thread {
                batch: Vec::with_capacity(BATCH),
                full: full_tx,
                empty: empty_rx,
                thread: Some(thread),
            },
            Err(_) => Folder::inline(config, keep),
        }
    }

    /// A folding side on the caller's thread.
    pub(super) fn inline(config: DetectConfig, keep: Keep) -> Folder {
        Folder::Inline(Box::new(Fold::new(config, keep)))
    }

    pub(super) fn push(&mut self, event: Event) {
        match self {
            Folder::Inline(fold) => fold.apply(event),
            Folder::Thread {
                batch,
                full,
                empty,
                thread,
            } => {
                batch.push(event);
                if batch.len() == BATCH {
                    send_batch(batch, full, empty, thread);
                }
            }
        }
    }

    /// Folds what is left and returns what was folded.
    pub(super) fn finish(self, end: End) -> Folded {
        match self {
            Folder::Inline(fold) => fold.finish(end),
            Folder::Thread {
                mut batch,
                full,
                empty,
                mut thread,
            } => {
                if !batch.is_empty() {
                    send_batch(&mut batch, &full, &empty, &mut thread);
                }
                // A failed send means the thread panicked: join says why.
                let _ = full.send(Message::Finish(end));
                drop(full);
                match thread.take().map(JoinHandle::join) {
                    Some(Ok(Some(folded))) => folded,
                    Some(Err(panic)) => std::panic::resume_unwind(panic),
                    _ => panic!("the folding thread ended before the pipeline finished"),
                }
            }
        }
    }
}

/// Hands `batch` on; if the folding thread is gone (it panicked), raises
/// its panic here.
fn send_batch(
    batch: &mut Vec<Event>,
    full: &mpsc::SyncSender<Message>,
    empty: &mpsc::Receiver<Vec<Event>>,
    thread: &mut Option<JoinHandle<Option<Folded>>>,
) {
    let next = empty
        .try_recv()
        .unwrap_or_else(|_| Vec::with_capacity(BATCH));
    let events = std::mem::replace(batch, next);
    if full.send(Message::Events(events)).is_err() {
        match thread.take().map(JoinHandle::join) {
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            _ => panic!("the folding thread ended early"),
        }
    }
}
