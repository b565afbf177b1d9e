//! IPv4 and IPv6 fragment reassembly with the Linux kernel's rules.
//!
//! A capture taken on the underlay of a GRE, VXLAN, Geneve or IPsec tunnel
//! sees the outer packets fragmented whenever a full-size inner packet plus
//! the tunnel header exceeds the path MTU; the TCP segment inside exists
//! only once the fragments are put together again. tshark, Zeek and
//! Suricata reassemble, and so does this module, the way the receiving
//! Linux host does, so a datagram counts here exactly when the kernel would
//! have delivered it:
//!
//! - **Key** (`ip_find`/`ip4_frag_init` in net/ipv4/ip_fragment.c,
//!   `fq_find` in net/ipv6/reassembly.c): IPv4 by source, destination,
//!   protocol and identification; IPv6 by source, destination and the
//!   Fragment header's identification (no protocol: the next header may
//!   differ per fragment). The kernel adds its defrag "user" and the L3
//!   master device; here the encapsulation depth plays that part, so an
//!   outer and an inner datagram never share a queue.
//! - **Placing a fragment** (`ip_frag_queue`, `ip6_frag_queue`): `end` is
//!   offset plus payload length; a non-last fragment's end is rounded down
//!   to 8 bytes (IPv4) or the fragment is dropped (IPv6, RFC 8200 §4.5);
//!   a last fragment whose end differs from a known end, or lies below data
//!   already held, and a non-last fragment reaching past a known end,
//!   discard the whole queue, as does an empty fragment. An IPv6 fragment
//!   ending past 65535 is dropped alone.
//! - **Overlaps** (`inet_frag_queue_insert` in net/ipv4/inet_fragment.c,
//!   RFC 5722 with erratum 3089 for IPv6, and IPv4 since the 2018
//!   FragmentSmack fixes): a fragment that lies wholly inside a run of
//!   fragments already held is a duplicate and is dropped alone; any other
//!   overlap discards the whole datagram. Overlaps are counted: they are an
//!   IDS evasion pattern (Ptacek–Newsham), not something hosts send.
//! - **Completion** (`ip_frag_reasm`, `ip6_frag_reasm`): first and last
//!   fragment present and every byte in between; the header of the
//!   fragment at offset 0 becomes the datagram's header. A datagram longer
//!   than 65535 bytes is discarded.
//! - **Time-out** (`ip_expire`, `ipfrag_time` = 30 s): counted from the
//!   queue's creation, never refreshed by later fragments, in capture time.
//! - **Memory** (`inet_frag_find`, `ipfrag_high_thresh` = 4 MB): while the
//!   memory held by all queues is above the threshold, every fragment is
//!   dropped, new queue or not, until completions and time-outs free
//!   memory. Memory here is the heap the queues really hold (buffer
//!   capacities plus a fixed cost per queue), so it stays bounded whatever
//!   a capture sends.
//!
//! Every frame that reaches the reassembler is counted exactly once, when
//! its datagram's fate is known: reassembled (into a later frame),
//! timed out, still incomplete at the end of the capture, discarded for an
//! overlap, for an invalid length, dropped as a duplicate, or over the
//! memory cap. The frame that completes a datagram counts as what its
//! datagram decodes to (usually a TCP segment).
//!
//! Not taken over from the kernel: `ipfrag_max_dist` (a per-peer counter of
//! datagrams between fragments, off for IPv6 and rarely hit), ECN
//! consistency checks across fragments, and RFC 7112's rule that the first
//! IPv6 fragment must hold the whole header chain.
//!
//! Why not a crate: etherparse's `defrag::IpDefragPool` merges overlapping
//! ranges (last writer wins) and has neither a memory cap nor time-outs;
//! smoltcp's reassembly is tied to its own stack and buffers; the others
//! found (flowscope, crafter) are young and IPv4-only or not built for a
//! bounded offline reader.

use super::SkipReason;
use std::collections::HashMap;

/// Linux's `ipfrag_time` default (`IP_FRAG_TIME`, 30 s), in nanoseconds.
pub const IPFRAG_TIME_NS: i64 = 30_000_000_000;

/// Linux's `ipfrag_high_thresh` default (4 MB).
pub const IPFRAG_HIGH_THRESH: usize = 4 * 1024 * 1024;

/// The cost charged per queue besides its buffers (the kernel charges
/// `sizeof(struct ipq)`, about 200 bytes): the queue itself, its key and
/// the hash table slot.
const QUEUE_COST: usize = std::mem::size_of::<Queue>() + std::mem::size_of::<Key>() + 16;

/// How often, at most, queues are swept for time-outs when none of their
/// fragments arrives (capture time). A queue whose own fragment arrives is
/// always checked exactly.
const SWEEP_EVERY_NS: i64 = 100_000_000;

/// Emptied queues kept for reuse, so a stream of fragmented datagrams does
/// not allocate for each one.
const SPARE_QUEUES: usize = 16;

/// A spare queue keeps at most this much buffer capacity.
const SPARE_CAPACITY: usize = 4096;

/// The limits, Linux's defaults unless a test or benchmark says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a datagram may take to complete, from its first fragment
    /// seen (nanoseconds of capture time).
    pub timeout_ns: i64,
    /// Above this many bytes held, fragments are dropped.
    pub high_thresh: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout_ns: IPFRAG_TIME_NS,
            high_thresh: IPFRAG_HIGH_THRESH,
        }
    }
}

/// Which datagram a fragment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    V4 {
        src: [u8; 4],
        dst: [u8; 4],
        id: u16,
        proto: u8,
        layer: u8,
    },
    V6 {
        src: [u8; 16],
        dst: [u8; 16],
        id: u32,
        layer: u8,
    },
}

/// One fragment, as the decoder found it.
pub(crate) struct Fragment<'a> {
    pub key: Key,
    /// Byte offset of the data in the datagram's fragmentable part.
    pub offset: u32,
    /// The More Fragments flag.
    pub more: bool,
    /// The fragment's data, all of it (a fragment cut by the snap length is
    /// never handed over).
    pub data: &'a [u8],
    /// What goes in front of the reassembled data: the IPv4 header, or the
    /// IPv6 header and the extension headers before the Fragment header.
    pub head: &'a [u8],
    /// IPv6: where in `head` the byte naming the Fragment header is, and
    /// the next header it must name instead.
    pub next_header: Option<(usize, u8)>,
}

/// What became of a fragment.
pub(crate) enum Outcome {
    /// Kept; the datagram is not complete yet. The frame is counted later.
    Held,
    /// The datagram is complete: `datagram` is the whole IP packet. Return
    /// the buffer with [`Reassembler::recycle`].
    Complete {
        datagram: Vec<u8>,
        first_frame: u64,
        fragments: u32,
    },
    /// Dropped, for this reason (the frame is counted by the caller).
    Dropped(SkipReason),
}

/// A stretch of held fragments without gaps, as the kernel's "frag run".
#[derive(Debug, Clone, Copy)]
struct Run {
    start: u32,
    end: u32,
}

/// Where a held fragment's data sits in the queue's buffer.
#[derive(Debug, Clone, Copy)]
struct Part {
    offset: u32,
    len: u32,
    at: u32,
}

#[derive(Debug, Default)]
struct Queue {
    deadline: i64,
    first_frame: u64,
    /// Frames held, counted when the datagram's fate is known.
    frames: u32,
    /// Length of the fragmentable part: known once the last fragment came.
    len: u32,
    first_in: bool,
    last_in: bool,
    /// Bytes held (the kernel's `meat`).
    meat: u32,
    /// End of the fragment with the highest offset (`fragments_tail`).
    tail_end: u32,
    runs: Vec<Run>,
    parts: Vec<Part>,
    data: Vec<u8>,
    head: Vec<u8>,
    next_header: Option<(usize, u8)>,
    /// Bytes charged to the memory count for this queue.
    charged: usize,
}

impl Queue {
    fn cost(&self) -> usize {
        QUEUE_COST
            + self.data.capacity()
            + self.head.capacity()
            + self.runs.capacity() * std::mem::size_of::<Run>()
            + self.parts.capacity() * std::mem::size_of::<Part>()
    }

    fn reset(&mut self) {
        self.frames = 0;
        self.len = 0;
        self.first_in = false;
        self.last_in = false;
        self.meat = 0;
        self.tail_end = 0;
        self.runs.clear();
        self.parts.clear();
        self.data.clear();
        self.head.clear();
        self.next_header = None;
        self.charged = 0;
        self.data.shrink_to(SPARE_CAPACITY);
        self.runs.shrink_to(64);
        self.parts.shrink_to(64);
        self.head.shrink_to(128);
    }
}

/// Fates of the frames the reassembler held, by reason. A fragment
/// dropped on arrival is not in here: its own frame is counted by the
/// caller, from [`Outcome::Dropped`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FragmentCounts {
    pub reassembled: u64,
    pub timed_out: u64,
    pub incomplete: u64,
    pub overlap: u64,
    pub invalid: u64,
}

/// The fragment queues of one capture.
#[derive(Debug, Default)]
pub struct Reassembler {
    limits: Limits,
    queues: HashMap<Key, Queue>,
    spare: Vec<Queue>,
    /// Emptied datagram buffers, for reuse.
    buffers: Vec<Vec<u8>>,
    /// Bytes held by all queues (the kernel's `frag_mem_limit`).
    mem: usize,
    /// The latest capture time seen (capture clocks may step back).
    now: i64,
    next_sweep: i64,
    counts: FragmentCounts,
    /// The largest `mem` ever reached.
    peak: usize,
}

impl Reassembler {
    pub fn new(limits: Limits) -> Reassembler {
        Reassembler {
            limits,
            ..Reassembler::default()
        }
    }

    /// Bytes held now.
    pub fn memory(&self) -> usize {
        self.mem
    }

    /// The most bytes held at once.
    pub fn peak_memory(&self) -> usize {
        self.peak
    }

    /// Datagrams waiting for fragments.
    pub fn pending(&self) -> usize {
        self.queues.len()
    }

    pub fn counts(&self) -> FragmentCounts {
        self.counts
    }

    /// A scratch buffer, from the pool when one is there.
    pub(crate) fn buffer(&mut self) -> Vec<u8> {
        self.buffers.pop().unwrap_or_default()
    }

    /// Gives a datagram buffer back for reuse.
    pub(crate) fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.buffers.len() < SPARE_QUEUES {
            buf.clear();
            buf.shrink_to(1 << 16);
            self.buffers.push(buf);
        }
    }

    /// Settles every datagram still waiting: timed out if its time is up
    /// at the last capture time seen, otherwise incomplete.
    pub fn finish(&mut self) -> FragmentCounts {
        for (_, q) in self.queues.drain() {
            if self.now >= q.deadline {
                self.counts.timed_out += u64::from(q.frames);
            } else {
                self.counts.incomplete += u64::from(q.frames);
            }
        }
        self.mem = 0;
        self.counts
    }

    /// Takes one fragment seen in frame `frame` at capture time `ts`.
    pub(crate) fn insert(&mut self, frag: &Fragment<'_>, frame: u64, ts: i64) -> Outcome {
        self.now = self.now.max(ts);
        if self.now >= self.next_sweep {
            self.sweep();
        }
        // `inet_frag_find`: above the high threshold nothing is queued.
        if self.mem > self.limits.high_thresh {
            return Outcome::Dropped(SkipReason::FragmentOverCap);
        }
        // A queue whose time is up is gone before this fragment arrives
        // (the kernel's timer would have fired).
        if let Some(q) = self.queues.get(&frag.key)
            && self.now >= q.deadline
        {
            let q = self.queues.remove(&frag.key).expect("just seen");
            self.counts.timed_out += u64::from(q.frames);
            self.retire(q);
        }
        let data_len = frag.data.len() as u64;
        let offset = frag.offset;
        let mut end64 = u64::from(offset) + data_len;
        let is_v6 = matches!(frag.key, Key::V6 { .. });
        if is_v6 {
            // `ip6_frag_queue`: a fragment ending past the largest payload,
            // or a non-last one not a multiple of 8 long, is dropped alone
            // (with an ICMP parameter problem).
            if end64 > 65535 || (frag.more && end64 & 7 != 0) {
                return Outcome::Dropped(SkipReason::FragmentInvalid);
            }
        }
        if frag.more {
            end64 &= !7;
        }
        // IPv4 offsets are 13 bits of 8 bytes plus at most 65515 bytes:
        // always below u32::MAX.
        let end = end64 as u32;
        let new_queue = !self.queues.contains_key(&frag.key);
        let deadline = self.now.saturating_add(self.limits.timeout_ns);
        if new_queue {
            let mut q = self.spare.pop().unwrap_or_default();
            q.deadline = deadline;
            q.first_frame = frame;
            q.charged = q.cost();
            self.mem += q.charged;
            self.next_sweep = self.next_sweep.min(deadline);
            self.queues.insert(frag.key, q);
        }
        let q = self.queues.get_mut(&frag.key).expect("present");
        match place(q, offset, end, frag.more) {
            Placed::Corrupt => {
                let q = self.queues.remove(&frag.key).expect("present");
                self.counts.invalid += u64::from(q.frames);
                self.retire(q);
                return Outcome::Dropped(SkipReason::FragmentInvalid);
            }
            Placed::Overlap => {
                let q = self.queues.remove(&frag.key).expect("present");
                self.counts.overlap += u64::from(q.frames);
                self.retire(q);
                return Outcome::Dropped(SkipReason::FragmentOverlap);
            }
            Placed::Duplicate => {
                if q.frames == 0 {
                    let q = self.queues.remove(&frag.key).expect("present");
                    self.retire(q);
                }
                return Outcome::Dropped(SkipReason::FragmentDuplicate);
            }
            Placed::Fits => {}
        }
        let kept = (end - offset) as usize;
        q.parts.push(Part {
            offset,
            len: kept as u32,
            at: q.data.len() as u32,
        });
        q.data.extend_from_slice(&frag.data[..kept]);
        q.meat += end - offset;
        q.frames += 1;
        if offset == 0 {
            q.first_in = true;
            q.head.clear();
            q.head.extend_from_slice(frag.head);
            q.next_header = frag.next_header;
        }
        let cost = q.cost();
        self.mem = self.mem - q.charged + cost;
        q.charged = cost;
        self.peak = self.peak.max(self.mem);
        if !(q.first_in && q.last_in && q.meat == q.len) {
            return Outcome::Held;
        }
        let q = self.queues.remove(&frag.key).expect("present");
        let outcome = match self.glue(&q) {
            Some(datagram) => {
                // The completing frame is counted by what it decodes to.
                self.counts.reassembled += u64::from(q.frames - 1);
                Outcome::Complete {
                    datagram,
                    first_frame: q.first_frame,
                    fragments: q.frames,
                }
            }
            None => {
                self.counts.invalid += u64::from(q.frames);
                Outcome::Dropped(SkipReason::FragmentInvalid)
            }
        };
        self.retire(q);
        outcome
    }

    /// `ip_frag_reasm`: the first fragment's header with the lengths set,
    /// then the data in offset order; None when longer than 65535 bytes.
    fn glue(&mut self, q: &Queue) -> Option<Vec<u8>> {
        let total = q.head.len() + q.len as usize;
        let v6 = q.next_header.is_some();
        let declared = if v6 { total.checked_sub(40)? } else { total };
        if declared > 65535 {
            return None;
        }
        let mut out = self.buffer();
        out.reserve(total);
        out.extend_from_slice(&q.head);
        if let Some((at, next)) = q.next_header {
            out[at] = next;
            out[4..6].copy_from_slice(&(declared as u16).to_be_bytes());
        } else {
            out[2..4].copy_from_slice(&(declared as u16).to_be_bytes());
            // Neither More Fragments nor an offset any more; DF as sent.
            out[6] &= 0x40;
            out[7] = 0;
        }
        let mut parts = q.parts.clone();
        parts.sort_unstable_by_key(|p| p.offset);
        for p in parts {
            let at = p.at as usize;
            out.extend_from_slice(&q.data[at..at + p.len as usize]);
        }
        Some(out)
    }

    /// A queue leaves: its memory is given back, its buffers kept for
    /// reuse.
    fn retire(&mut self, mut q: Queue) {
        self.mem -= q.charged;
        if self.spare.len() < SPARE_QUEUES {
            q.reset();
            self.spare.push(q);
        }
    }

    /// Drops every queue whose time is up (the kernel's `ip_expire` timer).
    fn sweep(&mut self) {
        let now = self.now;
        let mut next = i64::MAX;
        let mut expired = Vec::new();
        for (k, q) in &self.queues {
            if now >= q.deadline {
                expired.push(*k);
            } else {
                next = next.min(q.deadline);
            }
        }
        for k in expired {
            let q = self.queues.remove(&k).expect("present");
            self.counts.timed_out += u64::from(q.frames);
            self.retire(q);
        }
        // Sweeping at most every SWEEP_EVERY_NS keeps a flood of queues
        // from being scanned at every fragment.
        self.next_sweep = next.max(now.saturating_add(SWEEP_EVERY_NS));
    }
}

enum Placed {
    Fits,
    Duplicate,
    Overlap,
    Corrupt,
}

/// The length checks of `ip_frag_queue`/`ip6_frag_queue` and the overlap
/// rule of `inet_frag_queue_insert`; on `Fits` the runs are updated.
fn place(q: &mut Queue, offset: u32, end: u32, more: bool) -> Placed {
    if !more {
        if end < q.len || (q.last_in && end != q.len) {
            return Placed::Corrupt;
        }
        q.last_in = true;
        q.len = end;
    } else if end > q.len {
        if q.last_in {
            return Placed::Corrupt;
        }
        q.len = end;
    }
    if end <= offset {
        return Placed::Corrupt;
    }
    if q.runs.is_empty() {
        q.runs.push(Run { start: offset, end });
        q.tail_end = end;
        return Placed::Fits;
    }
    if q.tail_end < end {
        // The common case: the fragment goes after everything held.
        if offset < q.tail_end {
            return Placed::Overlap;
        }
        let last = q.runs.last_mut().expect("not empty");
        if offset == q.tail_end && last.end == q.tail_end {
            last.end = end;
        } else {
            q.runs.push(Run { start: offset, end });
        }
        q.tail_end = end;
        return Placed::Fits;
    }
    // Somewhere before the tail: find the first run ending after `offset`.
    let i = q.runs.partition_point(|r| r.end <= offset);
    if let Some(r) = q.runs.get(i)
        && end > r.start
    {
        return if offset >= r.start && end <= r.end {
            Placed::Duplicate
        } else {
            Placed::Overlap
        };
    }
    q.runs.insert(i, Run { start: offset, end });
    Placed::Fits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u16) -> Key {
        Key::V4 {
            src: [10, 0, 0, 1],
            dst: [10, 0, 0, 2],
            id,
            proto: 6,
            layer: 0,
        }
    }

    /// A 20-byte IPv4 header with MF and offset as given.
    fn head() -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 0, 0, 1, 0x20, 0, 64, 6, 0, 0];
        h.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        h
    }

    fn frag<'a>(k: Key, offset: u32, more: bool, data: &'a [u8], head: &'a [u8]) -> Fragment<'a> {
        Fragment {
            key: k,
            offset,
            more,
            data,
            head,
            next_header: None,
        }
    }

    fn held(o: &Outcome) -> bool {
        matches!(o, Outcome::Held)
    }

    #[test]
    fn fragments_in_any_order_complete_at_the_last_one_to_arrive() {
        let h = head();
        let data: Vec<u8> = (0..40).collect();
        let mut r = Reassembler::new(Limits::default());
        assert!(held(&r.insert(
            &frag(key(1), 16, true, &data[16..32], &h),
            5,
            0
        )));
        assert!(held(&r.insert(
            &frag(key(1), 32, false, &data[32..], &h),
            6,
            1
        )));
        let Outcome::Complete {
            datagram,
            first_frame,
            fragments,
        } = r.insert(&frag(key(1), 0, true, &data[..16], &h), 7, 2)
        else {
            panic!("not complete");
        };
        assert_eq!((first_frame, fragments), (5, 3));
        assert_eq!(&datagram[20..], &data[..]);
        assert_eq!(u16::from_be_bytes([datagram[2], datagram[3]]), 60);
        assert_eq!(datagram[6] & 0x3f, 0, "MF and offset cleared");
        assert_eq!(r.counts().reassembled, 2);
        assert_eq!(r.memory(), 0);
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn an_overlap_discards_the_whole_datagram_but_a_duplicate_only_itself() {
        let h = head();
        let data = [7u8; 48];
        let mut r = Reassembler::new(Limits::default());
        assert!(held(&r.insert(
            &frag(key(1), 0, true, &data[..16], &h),
            1,
            0
        )));
        // Wholly inside what is held: a duplicate, dropped alone.
        assert!(matches!(
            r.insert(&frag(key(1), 8, true, &data[..8], &h), 2, 0),
            Outcome::Dropped(SkipReason::FragmentDuplicate)
        ));
        assert_eq!(r.pending(), 1);
        // Reaching into held data from the front: the datagram goes.
        assert!(held(&r.insert(
            &frag(key(1), 24, true, &data[..8], &h),
            3,
            0
        )));
        assert!(matches!(
            r.insert(&frag(key(1), 16, true, &data[..16], &h), 4, 0),
            Outcome::Dropped(SkipReason::FragmentOverlap)
        ));
        assert_eq!(r.pending(), 0);
        assert_eq!(r.counts().overlap, 2, "the two held frames");
        // The tail path: starting inside the last fragment.
        assert!(held(&r.insert(
            &frag(key(2), 0, true, &data[..16], &h),
            5,
            0
        )));
        assert!(matches!(
            r.insert(&frag(key(2), 8, false, &data[..16], &h), 6, 0),
            Outcome::Dropped(SkipReason::FragmentOverlap)
        ));
        assert_eq!(r.memory(), 0);
    }

    #[test]
    fn a_second_last_fragment_with_another_end_is_corrupt() {
        let h = head();
        let data = [1u8; 32];
        let mut r = Reassembler::new(Limits::default());
        assert!(held(&r.insert(
            &frag(key(1), 8, false, &data[..16], &h),
            1,
            0
        )));
        assert!(matches!(
            r.insert(&frag(key(1), 8, false, &data[..8], &h), 2, 0),
            Outcome::Dropped(SkipReason::FragmentInvalid)
        ));
        assert_eq!(r.counts().invalid, 1, "the held frame");
        // Data past a known end.
        assert!(held(&r.insert(
            &frag(key(2), 8, false, &data[..8], &h),
            3,
            0
        )));
        assert!(matches!(
            r.insert(&frag(key(2), 16, true, &data[..8], &h), 4, 0),
            Outcome::Dropped(SkipReason::FragmentInvalid)
        ));
        // An empty fragment (after rounding down to 8 bytes).
        assert!(matches!(
            r.insert(&frag(key(3), 0, true, &data[..7], &h), 5, 0),
            Outcome::Dropped(SkipReason::FragmentInvalid)
        ));
    }

    #[test]
    fn a_queue_times_out_thirty_seconds_after_its_first_fragment() {
        let h = head();
        let data = [1u8; 16];
        let mut r = Reassembler::new(Limits::default());
        let s = 1_000_000_000;
        assert!(held(&r.insert(&frag(key(1), 0, true, &data, &h), 1, 0)));
        // 29.9 s later the queue is alive and completes.
        let late = r.insert(&frag(key(1), 16, false, &data, &h), 2, 30 * s - 1);
        assert!(matches!(late, Outcome::Complete { fragments: 2, .. }));
        assert!(held(&r.insert(
            &frag(key(2), 0, true, &data, &h),
            3,
            30 * s
        )));
        // At 30 s the first fragment is gone: the last one starts afresh.
        assert!(held(&r.insert(
            &frag(key(2), 16, false, &data, &h),
            4,
            60 * s
        )));
        assert_eq!(r.counts().timed_out, 1);
        // The sweep retires queues nobody completes.
        assert!(held(&r.insert(
            &frag(key(3), 0, true, &data, &h),
            5,
            60 * s
        )));
        assert!(held(&r.insert(
            &frag(key(4), 0, true, &data, &h),
            6,
            95 * s
        )));
        assert_eq!(r.counts().timed_out, 3);
        assert_eq!(r.pending(), 1);
        let end = r.finish();
        assert_eq!(end.incomplete, 1);
        assert_eq!(r.memory(), 0);
    }

    #[test]
    fn memory_stays_under_the_cap_and_drops_are_counted() {
        let h = head();
        let data = [9u8; 1480];
        let limits = Limits {
            timeout_ns: IPFRAG_TIME_NS,
            high_thresh: 256 * 1024,
        };
        let mut r = Reassembler::new(limits);
        let mut dropped = 0;
        for i in 0..2000u16 {
            match r.insert(&frag(key(i), 0, true, &data, &h), u64::from(i), 0) {
                Outcome::Held => {}
                Outcome::Dropped(SkipReason::FragmentOverCap) => dropped += 1,
                _ => panic!("unexpected"),
            }
            assert!(r.memory() <= limits.high_thresh + 4096 + QUEUE_COST);
        }
        assert!(dropped > 1500, "{dropped}");
        // Thirty seconds on, the memory is free again.
        assert!(held(&r.insert(
            &frag(key(1), 0, true, &data, &h),
            1,
            IPFRAG_TIME_NS
        )));
        assert!(r.memory() < 8192);
    }

    #[test]
    fn an_ipv6_non_last_fragment_not_a_multiple_of_eight_is_dropped_alone() {
        let k = Key::V6 {
            src: [1; 16],
            dst: [2; 16],
            id: 7,
            layer: 0,
        };
        let mut h6 = vec![0x60, 0, 0, 0, 0, 0, 44, 64];
        h6.extend_from_slice(&[1; 16]);
        h6.extend_from_slice(&[2; 16]);
        let data = [3u8; 24];
        let mut r = Reassembler::new(Limits::default());
        let f = |offset, more, data| Fragment {
            key: k,
            offset,
            more,
            data,
            head: &h6,
            next_header: Some((6, 6)),
        };
        assert!(held(&r.insert(&f(0, true, &data[..16]), 1, 0)));
        assert!(matches!(
            r.insert(&f(16, true, &data[..7]), 2, 0),
            Outcome::Dropped(SkipReason::FragmentInvalid)
        ));
        assert_eq!(r.pending(), 1);
        let Outcome::Complete { datagram, .. } = r.insert(&f(16, false, &data[..5]), 3, 0) else {
            panic!("not complete");
        };
        assert_eq!(datagram.len(), 40 + 21);
        assert_eq!(datagram[6], 6, "next header is the fragment's");
        assert_eq!(u16::from_be_bytes([datagram[4], datagram[5]]), 21);
    }
}
