//! The folding thread: the summary tally, the host tally and every
//! detector fold each retired record on a thread of their own, so the
//! tracking thread (the one that bounds a run's wall time) only tracks and
//! hands on what it made, in the order it made it: records, the
//! [`SegmentFacts`] of the segments the detectors read (what they read of
//! the live connection is copied into them), TIME_WAIT cuts and floor
//! advances. A detector's calls then interleave here as they happened
//! there, and the claims one makes on a record are read by the next.

use super::stored::{Store, Stored};
use super::summary::Tally;
use crate::detect::{
    self, Claims, DetectConfig, Detector, FactsWanted, Finding, SegmentFacts, Selection,
};
use crate::time::Timestamp;
use crate::track::{ConnId, ConnectionRecord, HostRecord, HostTally, TimeWaitCut};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// Records handed over at once, at most (544 bytes each, 35 KB). A batch
/// cut by its facts holds about 35 of the generated traffic's; this bounds
/// the batches of a sweep, or of the end of the run, which retire tens of
/// thousands at once: at 512 a batch, those filled every batch in flight
/// with 300 KB of records.
const BATCH: usize = 64;

/// Segment facts handed over at once, at most (176 bytes each): a batch
/// then holds those of about 500 segments, in 45 KB.
const FACTS: usize = 256;

/// Events (records, facts, cuts, floor advances: 16 bytes each) in a batch,
/// at most.
const EVENTS: usize = 512;

/// Full batches waiting for the folding thread; bounds what is between the
/// threads when the folder is slower. The folder's work comes in bursts
/// (the records a sweep retires, the intervals a floor advance ends), and
/// then each thread of the pipeline waited on the next in turn: with four
/// batches in flight here (of up to 512 records and 512 facts) and four
/// from the reader, both cores sat idle 12-13 % of a 1 GB run (idle time
/// in /proc/stat); with sixteen smaller ones here and twelve from the
/// reader, 9-10 %, and the run took 3-6 % less time. The batches in flight
/// take about 1 MB more than before (the 300,000-connection capture's peak
/// is unchanged on IPv6, where it is highest).
const BATCHES_IN_FLIGHT: usize = 16;

/// What the tracking thread hands on, in the order it happened.
enum Event {
    /// The next this many records of the batch.
    Records(usize),
    /// The next this many segment facts of the batch.
    Facts(usize),
    /// A new incarnation cut the TIME_WAIT of a record written early
    /// (boxed: rare, and 96 bytes would make every event that size).
    Cut(Box<TimeWaitCut>),
    /// The tracker's TIME_WAIT floor moved here.
    Advance(Timestamp),
}

/// Which records an analyzing pipeline keeps.
#[derive(Clone, Copy)]
pub(super) enum Keep {
    Nothing,
    All,
    /// Every record, serialized into a [`Store`] that spills above this
    /// many bytes.
    Serialized(usize),
    Only(ConnId),
}

impl Keep {
    /// Whether the record of `id` is kept whole.
    fn wants(self, id: ConnId) -> bool {
        match self {
            Keep::Nothing | Keep::Serialized(_) => false,
            Keep::All => true,
            Keep::Only(only) => only == id,
        }
    }
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
    /// The records serialized ([`Keep::Serialized`]).
    pub(super) stored: Option<Stored>,
}

/// The folding side's state, wherever it runs.
pub(super) struct Fold {
    config: DetectConfig,
    /// Every detector, in the order of [`detect::all`].
    detectors: Vec<Box<dyn Detector>>,
    /// Those of `detectors` that read facts, by index, with the facts they
    /// read.
    reading_facts: Vec<(usize, FactsWanted)>,
    claims: Claims,
    tally: Tally,
    hosts: HostTally,
    keep: Keep,
    kept: Vec<ConnectionRecord>,
    kept_cuts: Vec<TimeWaitCut>,
    store: Option<Store>,
}

impl Fold {
    fn new(config: DetectConfig, keep: Keep) -> Fold {
        let detectors = detect::all(&config);
        Fold {
            config,
            reading_facts: (0..detectors.len())
                .map(|i| (i, detectors[i].facts_wanted()))
                .filter(|(_, w)| *w != FactsWanted::None)
                .collect(),
            detectors,
            claims: Claims::default(),
            tally: Tally::default(),
            hosts: HostTally::default(),
            keep,
            kept: Vec::new(),
            kept_cuts: Vec::new(),
            store: match keep {
                Keep::Serialized(spill_above) => Some(Store::new(spill_above)),
                _ => None,
            },
        }
    }

    /// Folds a record; true when it is to be kept.
    fn record(&mut self, record: &ConnectionRecord) -> bool {
        self.tally.add(record);
        self.hosts.add(record);
        detect::connection_end_all(&mut self.detectors, record, &mut self.claims);
        if let Some(store) = &mut self.store {
            store.push(record);
        }
        self.keep.wants(record.id)
    }

    fn cut(&mut self, cut: TimeWaitCut) {
        self.hosts.cut(&cut);
        for d in &mut self.detectors {
            d.on_time_wait_cut(&cut);
        }
        if self.keep.wants(cut.id) {
            self.kept_cuts.push(cut);
        }
        if let Some(store) = &mut self.store {
            store.cut(cut);
        }
    }

    fn facts(&mut self, facts: &mut SegmentFacts) {
        for &(i, wanted) in &self.reading_facts {
            if wanted.wants(facts) {
                self.detectors[i].on_segment_facts(facts);
            }
        }
    }

    fn advance(&mut self, floor: Timestamp) {
        self.hosts.advance(floor);
        for d in &mut self.detectors {
            d.advance(floor);
        }
    }

    /// Everything in `batch`, in order; leaves it empty. Records are read
    /// where they lie and moved only when kept.
    fn apply(&mut self, batch: &mut Batch) {
        let (mut next, mut next_facts) = (0, 0);
        let mut kept = Vec::new();
        for event in batch.events.drain(..) {
            match event {
                Event::Records(n) => {
                    for i in next..next + n {
                        if self.record(&batch.records[i]) {
                            kept.push(i);
                        }
                    }
                    next += n;
                }
                Event::Facts(n) => {
                    for facts in &mut batch.facts[next_facts..next_facts + n] {
                        self.facts(facts);
                    }
                    next_facts += n;
                }
                Event::Cut(cut) => self.cut(*cut),
                Event::Advance(floor) => self.advance(floor),
            }
        }
        if kept.is_empty() {
            batch.records.clear();
        } else {
            let mut kept = kept.into_iter().peekable();
            for (i, record) in batch.records.drain(..).enumerate() {
                if kept.next_if_eq(&i).is_some() {
                    self.kept.push(record);
                }
            }
        }
        batch.facts.clear();
    }

    fn finish(self, end: End) -> Folded {
        let ctx = detect::Context {
            config: &self.config,
            capture_start: end.capture_start,
            capture_end: end.capture_end,
        };
        // The hosts first: their sweeps are freed before the findings are
        // made (see `detect::finish_all`).
        let hosts = self.hosts.finish();
        let findings = detect::finish_all(self.detectors, &ctx, &end.selection);
        Folded {
            tally: self.tally,
            hosts,
            findings,
            kept: self.kept,
            kept_cuts: self.kept_cuts,
            stored: self.store.map(Store::finish),
        }
    }
}

/// What the folding side needs to finish.
pub(super) struct End {
    pub(super) capture_start: Option<Timestamp>,
    pub(super) capture_end: Option<Timestamp>,
    pub(super) selection: Selection,
}

/// Records, segment facts, cuts and floor advances in the order the
/// tracker made them: the records and the facts in vectors of their own,
/// which take them in one move each, and events that say where they go.
#[derive(Default)]
pub(super) struct Batch {
    records: Vec<ConnectionRecord>,
    facts: Vec<SegmentFacts>,
    events: Vec<Event>,
}

impl Batch {
    fn with_capacity() -> Batch {
        Batch {
            records: Vec::with_capacity(BATCH),
            facts: Vec::with_capacity(FACTS),
            events: Vec::new(),
        }
    }

    #[inline]
    fn push_facts(&mut self, facts: SegmentFacts) {
        self.facts.push(facts);
        match self.events.last_mut() {
            Some(Event::Facts(m)) => *m += 1,
            _ => self.events.push(Event::Facts(1)),
        }
    }

    /// Takes every record of `retired`; returns how many it took.
    fn take(&mut self, retired: impl Iterator<Item = ConnectionRecord>) -> usize {
        let start = self.records.len();
        self.records.extend(retired);
        let n = self.records.len() - start;
        match self.events.last_mut() {
            _ if n == 0 => {}
            Some(Event::Records(m)) => *m += n,
            _ => self.events.push(Event::Records(n)),
        }
        n
    }

    fn full(&self) -> bool {
        self.records.len() >= BATCH || self.events.len() >= EVENTS || self.facts.len() >= FACTS
    }

    fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// To the folding thread.
pub(super) enum Message {
    Batch(Batch),
    Finish(End),
}

/// The tracking thread's end of the folding side.
pub(super) enum Folder {
    /// On a thread of its own (see the module's comment).
    Thread {
        batch: Batch,
        /// Emptied batches, back for reuse.
        empty: mpsc::Receiver<Batch>,
        thread: FoldThread,
    },
    /// In line, on the caller's thread (when no thread could be made, and
    /// for the test that holds the two to the same results).
    Inline { batch: Batch, fold: Box<Fold> },
}

/// The folding thread and the channel that feeds it. Dropped unfinished
/// (the pipeline of a capture that cannot be read is dropped without
/// `finish`), it closes the channel and joins the thread, which then ends:
/// a detached thread outlived the pipeline (LeakSanitizer saw its thread
/// locals in the fuzzer).
pub(super) struct FoldThread {
    full: Option<mpsc::SyncSender<Message>>,
    handle: Option<JoinHandle<Option<Folded>>>,
}

impl FoldThread {
    fn send(&self, message: Message) -> Result<(), mpsc::SendError<Message>> {
        match &self.full {
            Some(full) => full.send(message),
            None => Err(mpsc::SendError(message)),
        }
    }

    /// Closes the channel and waits for the thread.
    fn join(&mut self) -> Option<std::thread::Result<Option<Folded>>> {
        drop(self.full.take());
        self.handle.take().map(JoinHandle::join)
    }
}

impl Drop for FoldThread {
    fn drop(&mut self) {
        // Its panic, if any, was raised where it was found.
        let _ = self.join();
    }
}

impl Folder {
    /// A folding side on a thread of its own, or in line if no thread can
    /// be made.
    pub(super) fn new(config: DetectConfig, keep: Keep) -> Folder {
        let (full_tx, full_rx) = mpsc::sync_channel::<Message>(BATCHES_IN_FLIGHT);
        let (empty_tx, empty_rx) = mpsc::channel::<Batch>();
        let spawned = std::thread::Builder::new()
            .name("timewait-fold".into())
            .spawn(move || {
                let mut fold = Fold::new(config, keep);
                for message in full_rx {
                    match message {
                        Message::Batch(mut batch) => {
                            fold.apply(&mut batch);
                            // The pipeline may be gone; then the batch goes.
                            let _ = empty_tx.send(batch);
                        }
                        Message::Finish(end) => return Some(fold.finish(end)),
                    }
                }
                // The pipeline was dropped without finishing.
                None
            });
        match spawned {
            Ok(handle) => Folder::Thread {
                batch: Batch::with_capacity(),
                empty: empty_rx,
                thread: FoldThread {
                    full: Some(full_tx),
                    handle: Some(handle),
                },
            },
            Err(_) => Folder::inline(config, keep),
        }
    }

    /// A folding side on the caller's thread.
    pub(super) fn inline(config: DetectConfig, keep: Keep) -> Folder {
        Folder::Inline {
            batch: Batch::default(),
            fold: Box::new(Fold::new(config, keep)),
        }
    }

    /// Records the tracker retired; `each` sees every one as it goes (read
    /// in the batch: an adapter that looked at them on the way, `inspect`,
    /// copied each once more).
    pub(super) fn records(
        &mut self,
        retired: impl Iterator<Item = ConnectionRecord>,
        mut each: impl FnMut(&ConnectionRecord),
    ) {
        // A sweep can retire tens of thousands at once: hand them on a
        // batch at a time, so that no batch holds them all. (Not through a
        // `Peekable`: each record moved in and out of its slot, two copies
        // of half a kilobyte for every record.)
        let mut retired = retired;
        loop {
            let room = BATCH.saturating_sub(self.batch().records.len()).max(1);
            let batch = self.batch();
            let start = batch.records.len();
            let taken = batch.take(retired.by_ref().take(room));
            batch.records[start..].iter().for_each(&mut each);
            if taken == 0 {
                break;
            }
            self.hand_on();
            if taken < room {
                break;
            }
        }
    }

    /// A segment, for the detectors here that read [`SegmentFacts`].
    #[inline]
    pub(super) fn facts(&mut self, facts: SegmentFacts) {
        self.batch().push_facts(facts);
        self.hand_on();
    }

    /// A new incarnation cut the TIME_WAIT of a record written early.
    pub(super) fn cut(&mut self, cut: TimeWaitCut) {
        self.batch().events.push(Event::Cut(Box::new(cut)));
        self.hand_on();
    }

    /// The tracker's TIME_WAIT floor moved to `floor`.
    pub(super) fn advance(&mut self, floor: Timestamp) {
        self.batch().events.push(Event::Advance(floor));
        self.hand_on();
    }

    fn batch(&mut self) -> &mut Batch {
        match self {
            Folder::Thread { batch, .. } | Folder::Inline { batch, .. } => batch,
        }
    }

    /// Folds the batch in line, or hands it to the thread when full.
    fn hand_on(&mut self) {
        match self {
            Folder::Inline { batch, fold } => fold.apply(batch),
            Folder::Thread {
                batch,
                empty,
                thread,
            } => {
                if batch.full() {
                    send_batch(batch, empty, thread);
                }
            }
        }
    }

    /// Folds what is left and returns what was folded.
    pub(super) fn finish(self, end: End) -> Folded {
        match self {
            Folder::Inline { fold, .. } => fold.finish(end),
            Folder::Thread {
                mut batch,
                empty,
                mut thread,
            } => {
                if !batch.is_empty() {
                    send_batch(&mut batch, &empty, &mut thread);
                }
                // A failed send means the thread panicked: join says why.
                let _ = thread.send(Message::Finish(end));
                match thread.join() {
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
fn send_batch(batch: &mut Batch, empty: &mpsc::Receiver<Batch>, thread: &mut FoldThread) {
    let next = empty.try_recv().unwrap_or_else(|_| Batch::with_capacity());
    let batch = std::mem::replace(batch, next);
    if thread.send(Message::Batch(batch)).is_err() {
        match thread.join() {
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            _ => panic!("the folding thread ended early"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dropping the folding thread unfinished (a pipeline whose capture
    /// could not be read) closes its channel and waits for it to end.
    #[test]
    fn a_folding_thread_dropped_unfinished_is_joined() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let (full, rx) = mpsc::sync_channel::<Message>(1);
        let ended = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ended);
        let handle = std::thread::spawn(move || {
            for _ in rx {}
            std::thread::sleep(std::time::Duration::from_millis(50));
            flag.store(true, Ordering::SeqCst);
            None
        });
        drop(FoldThread {
            full: Some(full),
            handle: Some(handle),
        });
        assert!(
            ended.load(Ordering::SeqCst),
            "the drop waited for the thread"
        );
    }

    /// Each batch in flight holds up to [`FACTS`] of them: a copy of the
    /// segment (112 bytes with its two 20-byte endpoints; 136 when they
    /// were socket addresses), the server's
    /// TIME_WAIT socket when it was made, a fin-retransmit-rst case (boxed:
    /// rare), a few flags. Naming the connection's endpoints again took 64
    /// bytes more.
    #[test]
    fn segment_facts_take_176_bytes() {
        assert_eq!(std::mem::size_of::<SegmentFacts>(), 176);
        assert_eq!(std::mem::size_of::<crate::flow::Endpoint>(), 20);
        assert_eq!(std::mem::size_of::<crate::decode::Segment>(), 112);
    }
}
