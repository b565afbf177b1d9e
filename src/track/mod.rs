//! Connection tracking: segments in, connections out.
//!
//! A connection is one incarnation of a 4-tuple. Ids are handed out in
//! order of first packet, like Wireshark's `tcp.stream`; a SYN with a new
//! ISN on a known tuple retires the old incarnation and opens a new one.
//! Live connections sit in a slab, found through a hash map (FxHash; see
//! `Table`); retired ones become compact [`ConnectionRecord`]s.

mod connection;
mod finish;
mod hosts;
mod record;
mod state;
mod time_wait;
mod tomb;

#[cfg(test)]
pub(crate) use connection::tests as connection_tests;
pub use connection::{
    CloseKind, Closer, ConnId, Connection, DUPLICATE_WINDOW_S, HandshakeState, RoleSource,
    SegmentNotes,
};
pub use hosts::{HostRecord, HostSeries, HostTally, SeriesTally, host_time_wait, time_wait_series};
pub use record::{CloseRecord, ConnectionRecord, DirectionRecord, HandshakeRecord, TimeWaitRecord};
pub use state::{Event, TcpState};
pub use time_wait::{TimeWaitSocket, TimeWaitSockets};
use tomb::Tomb;
pub use tomb::{SETTLE_S, TimeWaitCut};

use crate::decode::Segment;
use crate::flow::{FlowKey, FlowKey4, Side};
use crate::time::Timestamp;
use slab::Slab;
use std::collections::VecDeque;

/// What the tracker tells its caller about one segment.
#[derive(Debug, Clone)]
pub struct Observation {
    pub conn: ConnId,
    pub sender: Side,
    pub notes: SegmentNotes,
    /// Both sides' states after the segment: [client, server].
    pub states: [TcpState; 2],
    /// The segment opened a new incarnation of a tuple seen before.
    /// Boxed: a reuse is rare, and inline it made every observation 168
    /// bytes, copied out of the tracker for every segment.
    pub reuse: Option<Box<Reuse>>,
}

/// A SYN that reopened a 4-tuple: what the previous incarnation left.
#[derive(Debug, Clone, Copy)]
pub struct Reuse {
    pub previous: ConnId,
    /// Who held TIME_WAIT on the previous incarnation.
    pub holder: Closer,
    /// When that TIME_WAIT would have ended.
    pub time_wait_until: Option<crate::time::Timestamp>,
    /// When that TIME_WAIT started.
    pub time_wait_from: Option<crate::time::Timestamp>,
    /// The TIME_WAIT sockets the previous incarnation left, as the kernel
    /// keeps them (none when it did not close with FINs): what a detector
    /// judges the SYN against, kept by it only for the 4-tuples a SYN met.
    pub sockets: TimeWaitSockets,
    /// The previous incarnation's client: names the sockets' holders
    /// (its roles may differ from the new incarnation's).
    pub previous_client: crate::flow::Endpoint,
}

/// A connection still in its handshake (no SYN-ACK seen) is retired after
/// this long without a packet: Linux gives up a connect() after 127 s
/// (`tcp_syn_retries` = 6), so nothing can follow on that incarnation. This
/// bounds a SYN flood to the connections of its last two minutes.
pub const HANDSHAKE_IDLE_S: f64 = 130.0;

/// At most this many connections still in their handshake (no SYN-ACK) stay
/// in the table: beyond it, a SYN flood at any rate evicts the longest
/// silent of them first. Bounds the table to about 350 MB in the worst
/// case; a real capture rarely has more than a few thousand at once.
pub const MAX_HANDSHAKES: usize = 250_000;

/// Any other connection that is not closed is retired after this long
/// without a packet: far beyond keepalive (2 h + 9 × 75 s), FIN_WAIT_2 and
/// retransmission timeouts.
pub const IDLE_S: f64 = 3.0 * 3600.0;

/// Above this many closed connections whose whole state is still held, the
/// tracker writes the records of those silent for [`SETTLE_S`] early and
/// keeps a [`tomb::Tomb`] for the rest of their TIME_WAIT window (as the
/// kernel keeps an `inet_timewait_sock`): about 4 MB of full connections,
/// so a proxy closing 15,000 connections a second needs a tenth of what
/// keeping each for its 60 s window did. Below it (fewer than about 70
/// connections closed a second) nothing changes: every record is written
/// when its connection can no longer change.
pub const COMPACT_ABOVE: usize = 4_096;

/// At most this many records are written early per segment: after a gap
/// in the capture every connection that closed before it has settled at
/// once (15,000 on a busy proxy), and writing them all in one step held all
/// their half-kilobyte records at once. A segment closes at most one
/// connection, so the backlog still shrinks by 63 a segment.
const COMPACT_PER_SEGMENT: usize = 64;

/// The fast, non-cryptographic hasher of the connection table: keys come
/// from a capture, not from an attacker who sees our hash seeds. The table
/// holds small [`Slot`]s; the connections themselves (about 700 bytes)
/// live in a [`Slab`], so the table moves little when it grows and a
/// connection costs no allocation and no free (glibc's free of a box per
/// connection was a tenth of the tracking thread's time). No order is
/// kept: records are sorted by id when the tracker finishes. (Sixteen
/// maps chosen by hash bits, so that growth moves a sixteenth at a time,
/// were tried: no lower peak on the benchmark captures.)
///
/// Flows between two IPv4 endpoints are kept under a 12-byte key
/// ([`FlowKey4`]); IPv6 flows under the whole key, each in a [`Split`].
#[derive(Debug, Default)]
struct Table {
    v4: Split<FlowKey4>,
    v6: Split<FlowKey>,
}

/// The flows of one key type, in two tables: those whose connection is
/// held whole and those whose record was written early (tombstones for
/// the rest of their TIME_WAIT window). A busy server's table is mostly
/// tombstones (90,000 at 1,500 connections a second, against a few
/// thousand held), which the segments of held connections, nearly all
/// segments, never need: in one table their lookups missed the cache in
/// a 4 MB slab and its index (with the connection itself, the tracking
/// thread's three misses per segment); the held ones alone nearly fit
/// the core's cache (simulated, a 2 MB cache: the lookups' misses on 1G/3
/// 1.55 -> 1.00 million). A segment looks among the held first, a SYN (or
/// a late segment) then among the tombstones; an entry moves when a
/// connection is written early or a new incarnation takes a tombstone's
/// 4-tuple back. Below [`COMPACT_ABOVE`] no entry is ever a tombstone and
/// the held table is the whole table, as before.
#[derive(Debug)]
struct Split<K> {
    held: Flows<K>,
    tombs: Flows<K, TombSlot>,
}

impl<K> Default for Split<K> {
    fn default() -> Split<K> {
        Split {
            held: Flows::default(),
            tombs: Flows::default(),
        }
    }
}

/// The flows of one key type: each key with its slot in a slab (40 bytes
/// an entry for IPv4, 64 for IPv6),
/// found through a hash table of slab keys (5 bytes a bucket with its
/// control byte). The table of a busy proxy holds every connection inside
/// its TIME_WAIT window, and a hash table doubles when it grows, briefly
/// holding its old and new arrays: with the entries themselves in the
/// table (40 bytes a bucket) that step was 16 MB on a 1 GB capture at
/// 1,500 connections a second; the slab grows by reallocating in place,
/// and only what it holds is touched. A lookup reads the bucket, then the
/// entry, which it needs anyway; the sweep reads the slab in order
/// ([`Flows::retain`]). (IPv6 flows were kept in a map of 64-byte
/// buckets, which doubled whole.)
#[derive(Debug)]
struct Flows<K, V = Slot> {
    index: hashbrown::HashTable<u32>,
    entries: Slab<(K, V)>,
    /// The most the index could hold since it last grew: its capacity
    /// with no removal marks in it ([`Flows::insert_new`]).
    index_capacity: usize,
}

impl<K, V> Default for Flows<K, V> {
    fn default() -> Flows<K, V> {
        Flows {
            index: hashbrown::HashTable::new(),
            entries: Slab::new(),
            index_capacity: 0,
        }
    }
}

/// The hash a map of these keys with the table's hasher would use.
fn hash_of<K: std::hash::Hash>(key: &K) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(key)
}

impl<K: std::hash::Hash + Eq, V> Flows<K, V> {
    fn find(&self, key: &K) -> Option<usize> {
        let entries = &self.entries;
        self.index
            .find(hash_of(key), |&i| entries[i as usize].0 == *key)
            .map(|&i| i as usize)
    }

    fn get(&self, key: &K) -> Option<&V> {
        self.find(key).map(|i| &self.entries[i].1)
    }

    fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.find(key).map(|i| &mut self.entries[i].1)
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    /// The entries in the index's order.
    fn iter(&self) -> impl Iterator<Item = &(K, V)> {
        self.index.iter().map(|&i| &self.entries[i as usize])
    }

    /// A removal can leave a mark in the index's bucket, which a later
    /// insert may reuse but which counts as taken; once no bucket is left
    /// free, hashbrown doubles an index more than half full, whatever it
    /// holds. On a busy server that came after some hundred thousand
    /// connections with as many entries as ever (the 1 GB benchmark's index
    /// went 0.66 -> 1.31 MB; the 1/3 capture's did not), so the index
    /// followed the capture's length. It is rebuilt in place instead
    /// (cleared and refilled from the slab, a few milliseconds) while at
    /// most 7/8 of what it can hold is taken by entries: each rebuild frees
    /// an eighth of it, at most seven re-inserts per insert.
    fn insert_new(&mut self, key: K, slot: V) -> &mut V {
        let hash = hash_of(&key);
        let i = self.entries.insert((key, slot));
        let Flows {
            index,
            entries,
            index_capacity,
        } = self;
        if index.len() == index.capacity() && index.len() < *index_capacity / 8 * 7 {
            index.clear();
            for (j, (k, _)) in entries.iter() {
                if j != i {
                    index.insert_unique(hash_of(k), slab_key(j), |&j| {
                        hash_of(&entries[j as usize].0)
                    });
                }
            }
        }
        index.insert_unique(hash, slab_key(i), |&j| hash_of(&entries[j as usize].0));
        *index_capacity = (*index_capacity).max(index.capacity());
        &mut self.entries[i].1
    }

    fn remove(&mut self, key: &K) -> Option<V> {
        let entries = &self.entries;
        let found = self
            .index
            .find_entry(hash_of(key), |&i| entries[i as usize].0 == *key)
            .ok()?;
        let (i, _) = found.remove();
        Some(self.entries.remove(i as usize).1)
    }

    /// Visits the entries in slab order, one pass over memory, not in the
    /// index's order, which jumped about the slab for every entry (the
    /// sweep reads every slot once a second); only the entries that go are
    /// looked up in the index.
    fn retain(&mut self, mut keep: impl FnMut(&mut V) -> bool) {
        let mut gone = Vec::new();
        for (i, (_, slot)) in self.entries.iter_mut() {
            if !keep(slot) {
                gone.push(i);
            }
        }
        for i in gone {
            let (key, _) = self.entries.remove(i);
            if let Ok(found) = self.index.find_entry(hash_of(&key), |&j| j as usize == i) {
                found.remove();
            }
        }
    }
}

/// [`Table::entry`]: the slot of a held connection, a tombstone, or the
/// place for one.
enum TableEntry<'a> {
    Held(&'a mut Slot),
    Tomb(FoundTomb<'a>),
    Vacant(VacantSlot<'a>),
}

enum VacantSlot<'a> {
    V4(&'a mut Flows<FlowKey4>, FlowKey4),
    V6(&'a mut Flows<FlowKey>, FlowKey),
}

impl<'a> VacantSlot<'a> {
    fn insert(self, slot: Slot) -> &'a mut Slot {
        match self {
            VacantSlot::V4(t, key) => t.insert_new(key, slot),
            VacantSlot::V6(t, key) => t.insert_new(key, slot),
        }
    }
}

/// A closed connection whose record was written early, as its table
/// keeps it: its last segment (a late one moves it on; the tombstone goes
/// a TIME_WAIT length after it) and its key in [`Tracker::tombs`]. Most
/// entries of a busy server's table are these: 24 bytes an entry with an
/// IPv4 key, where a held connection's take 40 (the time is kept as two
/// 32-bit words and the slab key plus one, a `NonZeroU32`, so that the
/// entry packs without padding and the slab's tag fits in its niche).
#[derive(Debug)]
struct TombSlot {
    last_ts: [u32; 2],
    tomb: std::num::NonZeroU32,
}

impl TombSlot {
    fn new(last_ts: Timestamp, tomb: u32) -> TombSlot {
        let mut t = TombSlot {
            last_ts: [0; 2],
            tomb: std::num::NonZeroU32::new(tomb.wrapping_add(1))
                .expect("fewer than 2^32 - 1 tombstones held at once"),
        };
        t.set_last_ts(last_ts);
        t
    }

    fn last_ts(&self) -> Timestamp {
        Timestamp(i64::from(self.last_ts[0]) << 32 | i64::from(self.last_ts[1]))
    }

    fn set_last_ts(&mut self, t: Timestamp) {
        self.last_ts = [(t.0 >> 32) as u32, t.0 as u32];
    }

    /// Its key in [`Tracker::tombs`].
    fn tomb(&self) -> usize {
        (self.tomb.get() - 1) as usize
    }
}

/// A tombstone found by [`Table::entry`], at slab key `.2` of its table.
enum FoundTomb<'a> {
    V4(&'a mut Split<FlowKey4>, FlowKey4, usize),
    V6(&'a mut Split<FlowKey>, FlowKey, usize),
}

impl<'a> FoundTomb<'a> {
    fn slot(&mut self) -> &mut TombSlot {
        match self {
            FoundTomb::V4(t, _, i) => &mut t.tombs.entries[*i].1,
            FoundTomb::V6(t, _, i) => &mut t.tombs.entries[*i].1,
        }
    }

    /// A new incarnation took the 4-tuple back: the tombstone goes, and
    /// `slot` takes its place among the held connections.
    fn revive(self, slot: Slot) -> &'a mut Slot {
        match self {
            FoundTomb::V4(t, key, _) => t.revive(key, slot),
            FoundTomb::V6(t, key, _) => t.revive(key, slot),
        }
    }
}

impl<K: std::hash::Hash + Eq> Split<K> {
    fn revive(&mut self, key: K, slot: Slot) -> &mut Slot {
        self.tombs.remove(&key);
        self.held.insert_new(key, slot)
    }

    /// The held connection of `key` becomes tombstone `tomb`.
    fn entomb(&mut self, key: K, tomb: u32) {
        if let Some(slot) = self.held.remove(&key) {
            self.tombs
                .insert_new(key, TombSlot::new(slot.last_ts, tomb));
        }
    }
}

/// A key type of the table: how its tombstones and places are named in
/// the type-free [`TableEntry`].
trait TableKey: std::hash::Hash + Eq + Sized {
    fn tomb(t: &mut Split<Self>, key: Self, i: usize) -> FoundTomb<'_>;
    fn vacant(t: &mut Flows<Self>, key: Self) -> VacantSlot<'_>;
}

impl TableKey for FlowKey4 {
    fn tomb(t: &mut Split<Self>, key: Self, i: usize) -> FoundTomb<'_> {
        FoundTomb::V4(t, key, i)
    }
    fn vacant(t: &mut Flows<Self>, key: Self) -> VacantSlot<'_> {
        VacantSlot::V4(t, key)
    }
}

impl TableKey for FlowKey {
    fn tomb(t: &mut Split<Self>, key: Self, i: usize) -> FoundTomb<'_> {
        FoundTomb::V6(t, key, i)
    }
    fn vacant(t: &mut Flows<Self>, key: Self) -> VacantSlot<'_> {
        VacantSlot::V6(t, key)
    }
}

impl<K: TableKey> Split<K> {
    /// Among the held connections first (nearly every segment's), then
    /// among the tombstones.
    fn entry(&mut self, key: K) -> TableEntry<'_> {
        if let Some(i) = self.held.find(&key) {
            TableEntry::Held(&mut self.held.entries[i].1)
        } else if let Some(i) = self.tombs.find(&key) {
            TableEntry::Tomb(K::tomb(self, key, i))
        } else {
            TableEntry::Vacant(K::vacant(&mut self.held, key))
        }
    }
}

impl Table {
    fn entry(&mut self, key: FlowKey) -> TableEntry<'_> {
        match key.v4() {
            Some(k) => self.v4.entry(k),
            None => self.v6.entry(key),
        }
    }

    /// The slot of `key` if its connection is held.
    fn get_held(&self, key: &FlowKey) -> Option<&Slot> {
        match key.v4() {
            Some(k) => self.v4.held.get(&k),
            None => self.v6.held.get(key),
        }
    }

    /// The slot of `key` if its connection is held.
    fn get_held_mut(&mut self, key: &FlowKey) -> Option<&mut Slot> {
        match key.v4() {
            Some(k) => self.v4.held.get_mut(&k),
            None => self.v6.held.get_mut(key),
        }
    }

    /// The held connection of `key` becomes tombstone `tomb`.
    fn entomb(&mut self, key: &FlowKey, tomb: u32) {
        match key.v4() {
            Some(k) => self.v4.entomb(k, tomb),
            None => self.v6.entomb(*key, tomb),
        }
    }

    /// Removes the slot of `key` if its connection is held.
    fn remove_held(&mut self, key: &FlowKey) -> Option<Slot> {
        match key.v4() {
            Some(k) => self.v4.held.remove(&k),
            None => self.v6.held.remove(key),
        }
    }

    /// Held connections and tombstones.
    fn len(&self) -> usize {
        self.v4.held.len() + self.v4.tombs.len() + self.v6.held.len() + self.v6.tombs.len()
    }

    /// The slots of held connections.
    fn iter_held(&self) -> impl Iterator<Item = (FlowKey, &Slot)> {
        let v4 = self.v4.held.iter().map(|(k, s)| (FlowKey::from(*k), s));
        v4.chain(self.v6.held.iter().map(|(k, s)| (*k, s)))
    }

    /// Keeps the held connections `keep_held` says yes to, and the
    /// tombstones `keep_tomb` does.
    fn retain(
        &mut self,
        mut keep_held: impl FnMut(&mut Slot) -> bool,
        mut keep_tomb: impl FnMut(&mut TombSlot) -> bool,
    ) {
        self.v4.held.retain(&mut keep_held);
        self.v4.tombs.retain(&mut keep_tomb);
        self.v6.held.retain(&mut keep_held);
        self.v6.tombs.retain(&mut keep_tomb);
    }
}

/// A live connection's place in the slab and what the sweep needs to know
/// of it, kept in the table itself: the sweep reads every live connection,
/// and reading this beside the key instead of in the connection made the
/// sweep a tenth of the cost (one cache miss per connection per sweep).
#[derive(Debug)]
struct Slot {
    last_ts: Timestamp,
    /// Which silence retires the connection ([`Idle::limit`]).
    idle: Idle,
    closed: bool,
    /// No TIME_WAIT this connection can still start begins before this
    /// (see [`Connection::time_wait_lower_bound`]); before both FINs,
    /// `Timestamp(i64::MAX)` (no bound of its own: 8 bytes, not 16, per
    /// live connection).
    tw_floor: Timestamp,
    /// Key of the connection in [`Tracker::conns`]: 32 bits, so that a
    /// slot is 24 bytes and a table entry with its key 40 (IPv4) or 64.
    conn: u32,
}

/// A connection that closed while held whole: when, for
/// [`Tracker::compact`].
#[derive(Debug, Clone, Copy)]
struct Closing {
    /// Its key in [`Tracker::conns`] (16 bytes an entry, not the 56 a
    /// [`FlowKey`] made: a busy proxy queues tens of thousands).
    conn: u32,
    id: ConnId,
    /// Its last packet when it closed (later ones only move it on).
    at: Timestamp,
}

impl Closing {
    /// The table key of the connection it names, while the slab still
    /// holds that connection (not retired, reused or compacted since).
    fn key(&self, conns: &Slab<Connection>) -> Option<FlowKey> {
        conns
            .get(self.conn as usize)
            .filter(|c| c.id == self.id)
            .map(|c| FlowKey::new(c.client(), c.server()))
    }

    /// Whether `slot`, found under [`Closing::key`], is still this closed
    /// connection held whole (not reopened or compacted).
    fn names(&self, slot: &Slot) -> bool {
        slot.closed && slot.conn == self.conn
    }
}

/// How long a connection may stay silent before it is retired.
#[derive(Debug, Clone, Copy)]
enum Idle {
    /// Closed: the TIME_WAIT interval ends at most `tw` after the last
    /// packet; after it a SYN on the tuple is no reuse.
    TimeWait,
    /// Still in its handshake ([`HANDSHAKE_IDLE_S`]).
    Handshake,
    /// Anything else ([`IDLE_S`]).
    Open,
}

impl Idle {
    fn limit(self, time_wait_secs: f64) -> f64 {
        match self {
            Idle::TimeWait => time_wait_secs,
            Idle::Handshake => HANDSHAKE_IDLE_S.max(time_wait_secs),
            Idle::Open => IDLE_S.max(time_wait_secs),
        }
    }
}

impl Slot {
    /// Copies the sweep's facts from the connection after each update.
    fn refresh(&mut self, c: &Connection) {
        self.last_ts = c.last_ts;
        self.closed = c.is_closed();
        self.tw_floor = c.time_wait_lower_bound().unwrap_or(Timestamp(i64::MAX));
        self.idle = if self.closed {
            Idle::TimeWait
        } else if c.handshake.synack.is_none() {
            Idle::Handshake
        } else {
            Idle::Open
        };
    }

    /// The connection's (or tombstone's) key in its slab.
    fn key(&self) -> usize {
        self.conn as usize
    }
}

/// A slab key as a slot keeps it.
fn slab_key(key: usize) -> u32 {
    u32::try_from(key).expect("fewer than 2^32 connections held at once")
}

/// The connection table.
///
/// Connections that can no longer change are retired into
/// [`ConnectionRecord`]s as the capture goes on, so memory follows the
/// connections open at once, not the file size: a closed connection once
/// its TIME_WAIT interval has passed (a new SYN on its tuple can then no
/// longer be a TIME_WAIT reuse), a connection stuck in its handshake after
/// [`HANDSHAKE_IDLE_S`], any other after [`IDLE_S`] without a packet.
#[derive(Debug)]
pub struct Tracker {
    live: Table,
    /// The live connections, by [`Slot::conn`].
    conns: Slab<Connection>,
    /// Closed connections whose record was written early, by [`Slot::conn`].
    tombs: Slab<Tomb>,
    /// Closed connections still held whole, in the order they closed (some
    /// entries stale: retired, reused or compacted since), and how many of
    /// them are current.
    closing: VecDeque<Closing>,
    closed_full: usize,
    compact_above: usize,
    settle_s: f64,
    /// Records written early (tombstones made).
    compacted: u64,
    /// Segments of an incarnation whose record was already written.
    late_segments: u64,
    /// TIME_WAIT intervals of written records that a new incarnation cut.
    cuts: Vec<TimeWaitCut>,
    next_id: ConnId,
    time_wait_secs: f64,
    capture: u32,
    retired: Vec<ConnectionRecord>,
    /// Connections a sweep retired, by slab key, still in [`Tracker::conns`]:
    /// their records are made one at a time as the caller drains them, so a
    /// sweep that retires tens of thousands at once never holds all their
    /// half-kilobyte records (4 bytes each instead). They come after the
    /// first `swept_at` of [`Tracker::retired`] in retirement order.
    swept: Vec<u32>,
    swept_at: usize,
    /// Segments since the last sweep for retirable connections.
    since_sweep: usize,
    /// Live connections right after the last sweep.
    live_after_sweep: usize,
    last_sweep: Option<Timestamp>,
    /// Connections retired while not closed, before the end of the capture.
    idle_retired: u64,
    /// No record retired from now on starts its TIME_WAIT before this.
    time_wait_floor: Option<Timestamp>,
    /// Frames that were a copy of one just captured (see
    /// [`connection::DUPLICATE_WINDOW_S`]).
    duplicates: u64,
}

impl Tracker {
    pub fn new(time_wait_secs: f64) -> Tracker {
        Tracker {
            live: Table::default(),
            conns: Slab::new(),
            tombs: Slab::new(),
            closing: VecDeque::new(),
            closed_full: 0,
            compact_above: COMPACT_ABOVE,
            settle_s: SETTLE_S,
            compacted: 0,
            late_segments: 0,
            cuts: Vec::new(),
            next_id: ConnId(0),
            time_wait_secs,
            capture: 0,
            retired: Vec::new(),
            swept: Vec::new(),
            swept_at: 0,
            since_sweep: 0,
            live_after_sweep: 0,
            last_sweep: None,
            idle_retired: 0,
            time_wait_floor: None,
            duplicates: 0,
        }
    }

    /// Writes records early above `n` closed connections held whole instead
    /// of [`COMPACT_ABOVE`],
    /// and after `settle_s` of silence instead of [`SETTLE_S`] (tests use
    /// 0 and 0 to take the early path always).
    pub fn set_compact_above(&mut self, n: usize, settle_s: f64) {
        self.compact_above = n;
        self.settle_s = settle_s;
    }

    /// Segments that follow belong to capture file number `index`.
    pub fn set_capture(&mut self, index: u32) {
        self.capture = index;
    }

    /// Feeds one segment, in capture order.
    pub fn on_segment(&mut self, seg: &Segment) -> Observation {
        self.on_segment_conn(seg).0
    }

    /// Feeds one segment, in capture order; returns what it was and its
    /// connection after it. No connection when the segment belongs to an
    /// incarnation whose record was already written (see [`tomb`]): it is
    /// counted in [`Tracker::late_segments`] and changes nothing.
    pub fn on_segment_conn(&mut self, seg: &Segment) -> (Observation, Option<&Connection>) {
        self.on_segment_keyed(seg, FlowKey::new(seg.src, seg.dst))
    }

    /// [`Tracker::on_segment_conn`] with the segment's key made already,
    /// `FlowKey::new(seg.src, seg.dst)`: the pipeline makes it on its
    /// reading thread, off the tracking thread that bounds its wall time.
    pub fn on_segment_keyed(
        &mut self,
        seg: &Segment,
        key: FlowKey,
    ) -> (Observation, Option<&Connection>) {
        debug_assert!(key == FlowKey::new(seg.src, seg.dst));
        self.maybe_sweep(seg.ts);
        if self.closed_full > self.compact_above {
            self.compact(seg.ts);
        }
        let mut reuse = None;
        let conns = &mut self.conns;
        let slot = match self.live.entry(key) {
            TableEntry::Tomb(mut found) => {
                let slot = found.slot();
                let tomb = &self.tombs[slot.tomb()];
                if !tomb.is_new_incarnation(seg) {
                    self.late_segments += 1;
                    slot.set_last_ts(seg.ts);
                    let obs = Observation {
                        conn: tomb.id,
                        sender: tomb.side_of(seg),
                        notes: SegmentNotes::default(),
                        states: tomb.states,
                        reuse: None,
                    };
                    return (obs, None);
                }
                let tomb = self.tombs.remove(slot.tomb());
                let id = self.next_id;
                self.next_id = id.next();
                let r = tomb.reuse(&key, self.time_wait_secs);
                if let (Some(from), Some(until)) = (r.time_wait_from, r.time_wait_until)
                    && until > seg.ts
                {
                    let (client, server) = tomb.endpoints(&key);
                    self.cuts.push(TimeWaitCut {
                        id: tomb.id,
                        client,
                        server,
                        holder: r.holder,
                        from,
                        until,
                        at: seg.ts,
                        reused_by: id,
                    });
                }
                reuse = Some(Box::new(r));
                // The sweep's facts are filled in after the update below.
                found.revive(Slot {
                    last_ts: seg.ts,
                    idle: Idle::Open,
                    closed: false,
                    tw_floor: Timestamp(i64::MAX),
                    conn: slab_key(conns.insert(Connection::new(id, self.capture, seg))),
                })
            }
            TableEntry::Held(slot) => {
                if conns[slot.key()].is_new_incarnation(seg) {
                    if slot.closed {
                        self.closed_full -= 1;
                        slot.closed = false;
                    }
                    let id = self.next_id;
                    self.next_id = id.next();
                    let mut old = std::mem::replace(
                        &mut conns[slot.key()],
                        Connection::new(id, self.capture, seg),
                    );
                    let mut record = old.finish(self.time_wait_secs);
                    let tw = &mut record.time_wait;
                    reuse = Some(Box::new(Reuse {
                        previous: record.id,
                        holder: tw.holder,
                        time_wait_until: tw.until,
                        time_wait_from: tw.from,
                        sockets: old.time_wait_sockets(),
                        previous_client: old.client(),
                    }));
                    // The new incarnation takes the 4-tuple over: the
                    // TIME_WAIT socket is gone from this moment (tcp_tw_reuse,
                    // or a TIME_WAIT socket accepting the SYN).
                    if tw.until.is_some_and(|u| u > seg.ts) {
                        tw.until = Some(seg.ts);
                        tw.reused_by = Some(id);
                    }
                    self.retired.push(record);
                }
                slot
            }
            TableEntry::Vacant(e) => {
                let id = self.next_id;
                self.next_id = id.next();
                // The sweep's facts are filled in after the update below.
                e.insert(Slot {
                    last_ts: seg.ts,
                    idle: Idle::Open,
                    closed: false,
                    tw_floor: Timestamp(i64::MAX),
                    conn: slab_key(conns.insert(Connection::new(id, self.capture, seg))),
                })
            }
        };
        let conn = &mut conns[slot.key()];
        let notes = conn.update(seg);
        self.duplicates += u64::from(notes.duplicate);
        let was_closed = slot.closed;
        slot.refresh(conn);
        if slot.closed != was_closed {
            if slot.closed {
                self.closed_full += 1;
                self.closing.push_back(Closing {
                    conn: slot.conn,
                    id: conn.id,
                    at: conn.last_ts,
                });
            } else {
                self.closed_full -= 1;
            }
        }
        let conn = &*conn;
        let obs = Observation {
            conn: conn.id,
            sender: conn.side_of(seg.src),
            notes,
            states: [
                conn.side(Side::Client).state(),
                conn.side(Side::Server).state(),
            ],
            reuse,
        };
        (obs, Some(conn))
    }

    /// Drops the stale entries of [`Tracker::closing`] (retired, reused,
    /// reopened or compacted since) when they outnumber the current ones
    /// and 1,024: each time it doubled, so O(1) a close.
    fn prune_closing(&mut self) {
        if self.closing.len() > 2 * self.closed_full + 1024 {
            let (live, conns) = (&self.live, &self.conns);
            self.closing.retain(|c| {
                c.key(conns)
                    .and_then(|k| live.get_held(&k))
                    .is_some_and(|s| c.names(s))
            });
        }
    }

    /// Writes the records of the longest-closed connections silent for
    /// [`SETTLE_S`] and keeps a tombstone of each (see [`tomb`]) until at
    /// most `compact_above` closed connections are held whole, at most
    /// [`COMPACT_PER_SEGMENT`] at a time.
    fn compact(&mut self, now: Timestamp) {
        for _ in 0..COMPACT_PER_SEGMENT {
            if self.closed_full <= self.compact_above {
                break;
            }
            let Some(&front) = self.closing.front() else {
                break;
            };
            // Not settled yet, whatever came since (a cheap test: the
            // table's slot is a cache miss).
            if now.secs_since(front.at) < self.settle_s {
                break;
            }
            let key = front.key(&self.conns);
            let (key, slot) = match key.and_then(|k| Some((k, self.live.get_held_mut(&k)?))) {
                Some((k, s)) if front.names(s) => (k, s),
                _ => {
                    // Retired, reused, reopened or compacted since.
                    self.closing.pop_front();
                    continue;
                }
            };
            if now.secs_since(slot.last_ts) < self.settle_s {
                // Closed, but a segment came since: it waits at the back
                // until it settles, without holding up the ones behind it
                // (a closed connection that keeps getting a segment now and
                // then held back every later one: 60,000 of them whole on a
                // busy proxy's capture).
                self.closing.pop_front();
                self.closing.push_back(Closing {
                    at: slot.last_ts,
                    ..front
                });
                continue;
            }
            self.closing.pop_front();
            let mut c = self.conns.remove(slot.key());
            let record = c.finish(self.time_wait_secs);
            let tw = &record.time_wait;
            debug_assert_eq!(tw.until, tw.from.map(|f| f.add_secs(self.time_wait_secs)));
            let tomb = slab_key(self.tombs.insert(Tomb::of(&c, tw.holder, tw.from)));
            self.live.entomb(&key, tomb);
            self.retired.push(record);
            self.closed_full -= 1;
            self.compacted += 1;
        }
        // Stale entries are dropped from the front above; when they pile up
        // behind current ones, drop them all (each doubling: O(1) a close).
        self.prune_closing();
    }

    /// Retires the connections that can no longer change, at most once per
    /// second of capture time and once per as many segments as there were
    /// live connections after the last sweep, so the sweep costs O(1) per
    /// segment. (Not the live connections now: in a SYN flood every segment
    /// opens one, and the sweep would never come; and at most twice the
    /// connections that can no longer be retired are live.)
    fn maybe_sweep(&mut self, now: Timestamp) {
        self.since_sweep += 1;
        if self.live.len() > self.live_after_sweep + MAX_HANDSHAKES / 4 {
            self.evict_handshakes();
        }
        if self.since_sweep < self.live_after_sweep.max(16384) {
            return;
        }
        let last = *self.last_sweep.get_or_insert(now);
        if now.secs_since(last) < 1.0 {
            return;
        }
        self.since_sweep = 0;
        self.last_sweep = Some(now);
        self.start_sweeping();
        let tw = self.time_wait_secs;
        let swept = &mut self.swept;
        let idle_retired = &mut self.idle_retired;
        let tombs = &mut self.tombs;
        let closed_full = &mut self.closed_full;
        // Connections without both FINs start any TIME_WAIT at a later
        // packet (at or after `now`, in a capture whose time runs forward).
        let mut floor = now;
        self.live.retain(
            |slot| {
                if now.secs_since(slot.last_ts) <= slot.idle.limit(tw) {
                    floor = floor.min(slot.tw_floor);
                    return true;
                }
                if slot.closed {
                    *closed_full -= 1;
                } else {
                    *idle_retired += 1;
                }
                swept.push(slot.conn);
                false
            },
            |t| {
                // Closed: gone a TIME_WAIT length after its last segment;
                // its record was written when it was compacted.
                if now.secs_since(t.last_ts()) <= Idle::TimeWait.limit(tw) {
                    return true;
                }
                tombs.remove(t.tomb());
                false
            },
        );
        self.prune_closing();
        self.live_after_sweep = self.live.len();
        self.time_wait_floor = Some(floor);
    }

    /// Retires the longest-silent connections still in their handshake
    /// until at most [`MAX_HANDSHAKES`] (less a tenth, so this runs seldom)
    /// remain. A later retransmission of such a SYN starts a new connection;
    /// `idle_retired` counts them so the report says so.
    fn evict_handshakes(&mut self) {
        let mut pending: Vec<(Timestamp, FlowKey)> = self
            .live
            .iter_held()
            .filter(|(_, s)| !s.closed && self.conns[s.key()].handshake.synack.is_none())
            .map(|(k, s)| (s.last_ts, k))
            .collect();
        let keep = MAX_HANDSHAKES - MAX_HANDSHAKES / 10;
        if pending.len() > keep {
            let excess = pending.len() - keep;
            pending.select_nth_unstable_by_key(excess - 1, |(ts, _)| *ts);
            self.start_sweeping();
            for (_, key) in &pending[..excess] {
                if let Some(s) = self.live.remove_held(key) {
                    self.swept.push(s.conn);
                    self.idle_retired += 1;
                }
            }
        }
        self.live_after_sweep = self.live.len();
    }

    /// The live connection a segment belongs to (after `on_segment`).
    pub fn connection_of(&self, seg: &Segment) -> Option<&Connection> {
        self.live
            .get_held(&FlowKey::new(seg.src, seg.dst))
            .map(|s| &self.conns[s.key()])
    }

    /// Number of connections opened so far.
    pub fn connections_seen(&self) -> u32 {
        self.next_id.0
    }

    /// Connections currently open (not retired).
    pub fn live(&self) -> usize {
        self.live.len()
    }

    /// A time before which no record retired from now on starts its
    /// TIME_WAIT (as of the last sweep; none before the first), so that
    /// peaks of TIME_WAIT sockets can be swept online up to it
    /// ([`crate::peak::PeakSweep`]). It holds when capture time runs
    /// forward; a capture whose clock steps back can make a later record
    /// start earlier, which the sweep then counts from the moment it
    /// arrives.
    pub fn time_wait_floor(&self) -> Option<Timestamp> {
        self.time_wait_floor
    }

    /// Connections retired for being idle while not closed.
    pub fn idle_retired(&self) -> u64 {
        self.idle_retired
    }

    /// Records written early, while their TIME_WAIT window still ran (see
    /// [`tomb`]).
    pub fn compacted(&self) -> u64 {
        self.compacted
    }

    /// Segments that came for an incarnation whose record was already
    /// written: counted, in no record.
    pub fn late_segments(&self) -> u64 {
        self.late_segments
    }

    /// TIME_WAIT intervals of written records that a new incarnation cut
    /// short since the last call.
    pub fn drain_cuts(&mut self) -> std::vec::Drain<'_, TimeWaitCut> {
        self.cuts.drain(..)
    }

    /// Whether cuts wait in [`Tracker::drain_cuts`].
    pub fn has_cuts(&self) -> bool {
        !self.cuts.is_empty()
    }

    /// Frames that were the same packet captured again.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Before a sweep adds to [`Tracker::swept`]: swept connections must
    /// stay one run in retirement order, so when records were retired after
    /// the earlier swept ones (a caller that does not drain after every
    /// segment), those are made into records now.
    fn start_sweeping(&mut self) {
        if self.swept.is_empty() {
            self.swept_at = self.retired.len();
        } else if self.swept_at != self.retired.len() {
            let tw = self.time_wait_secs;
            let conns = &mut self.conns;
            let made: Vec<ConnectionRecord> = self
                .swept
                .drain(..)
                .map(|k| conns.remove(k as usize).finish(tw))
                .collect();
            let at = self.swept_at;
            self.retired.splice(at..at, made);
            self.swept_at = self.retired.len();
        }
    }

    /// Records retired since the last call, in retirement order. Those a
    /// sweep retired are made as the iterator reaches them; the ones it
    /// does not reach are dropped, as [`Vec::drain`] drops them.
    pub fn drain_retired(&mut self) -> DrainRetired<'_> {
        let before_swept = std::mem::take(&mut self.swept_at);
        DrainRetired {
            before_swept,
            records: self.retired.drain(..),
            swept: self.swept.drain(..),
            conns: &mut self.conns,
            time_wait_secs: self.time_wait_secs,
        }
    }

    /// Whether records wait in [`Tracker::drain_retired`].
    pub fn has_retired(&self) -> bool {
        !self.retired.is_empty() || !self.swept.is_empty()
    }

    /// Retires everything still open: the records not drained yet first,
    /// in retirement order (gathered now: a caller that drains after every
    /// segment leaves none), then every connection still held, one at a
    /// time so that no vector of half-kilobyte records is built when the
    /// caller folds them (the caller sorts by id if it keeps them).
    ///
    /// `capture_end` is the time of the capture's last packet: a handshake
    /// still waiting for its answer then is marked
    /// [`HandshakeRecord::cut_by_capture_end`] when the answer or the next
    /// retransmission was not due yet.
    pub fn finish(
        mut self,
        capture_end: Option<Timestamp>,
    ) -> impl Iterator<Item = ConnectionRecord> {
        let tw = self.time_wait_secs;
        let retired: Vec<ConnectionRecord> = self.drain_retired().collect();
        retired
            .into_iter()
            .chain(self.conns.into_iter().map(move |(_, mut c)| {
                let cut = capture_end.is_some_and(|end| c.cut_by_capture_end(end));
                let mut r = c.finish(tw);
                r.handshake.cut_by_capture_end = cut;
                r
            }))
    }
}

/// [`Tracker::drain_retired`]: the records before the swept connections,
/// the swept ones made one at a time, then the records after them.
pub struct DrainRetired<'a> {
    before_swept: usize,
    records: std::vec::Drain<'a, ConnectionRecord>,
    swept: std::vec::Drain<'a, u32>,
    conns: &'a mut Slab<Connection>,
    time_wait_secs: f64,
}

impl Iterator for DrainRetired<'_> {
    type Item = ConnectionRecord;

    fn next(&mut self) -> Option<ConnectionRecord> {
        if self.before_swept > 0 {
            self.before_swept -= 1;
            return self.records.next();
        }
        match self.swept.next() {
            Some(k) => Some(self.conns.remove(k as usize).finish(self.time_wait_secs)),
            None => self.records.next(),
        }
    }
}

impl Drop for DrainRetired<'_> {
    /// Swept connections not reached leave the slab (their records are
    /// dropped, as a drained vector drops what was not taken).
    fn drop(&mut self) {
        for k in self.swept.by_ref() {
            self.conns.remove(k as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TcpFlags;
    use crate::flow::Endpoint;
    use crate::frame::FrameId;
    use crate::seq::SeqNum;
    use std::net::{IpAddr, Ipv4Addr};

    /// Entries that come and go at a steady count (6,000 held, 300,000
    /// inserted, each removed 6,000 inserts later) leave the index its size:
    /// removal marks are cleared by rebuilding it in place, where hashbrown
    /// doubled it (to 14,336 entries) once no bucket was free. Every key is
    /// still found, and the removed ones are not. For IPv4 and IPv6 keys.
    fn steady_count_keeps_the_index_size<K: std::hash::Hash + Eq + std::fmt::Debug>(
        key: impl Fn(u32) -> K,
    ) {
        let slot = || Slot {
            last_ts: Timestamp(0),
            idle: Idle::Open,
            closed: false,
            tw_floor: Timestamp(i64::MAX),
            conn: 0,
        };
        let mut t = Flows::<K>::default();
        let held = 6_000u32;
        for n in 0..300_000u32 {
            t.insert_new(key(n), slot());
            if n >= held {
                assert!(t.remove(&key(n - held)).is_some());
            }
        }
        assert_eq!(t.index.len(), held as usize);
        assert_eq!(t.index.capacity().max(t.index_capacity), 7_168);
        for n in 300_000 - held..300_000 {
            assert!(t.find(&key(n)).is_some(), "{:?}", key(n));
        }
        assert!(t.find(&key(300_000 - held - 1)).is_none());
    }

    #[test]
    fn an_index_holding_a_steady_count_of_entries_keeps_its_size() {
        steady_count_keeps_the_index_size(|n| {
            FlowKey::of_v4((0x0a00_0000 | n >> 16, n as u16), (0x0a01_0001, 80))
                .v4()
                .expect("IPv4")
        });
        steady_count_keeps_the_index_size(|n| {
            let client: IpAddr = format!("2001:db8::{:x}", n >> 16).parse().unwrap();
            let server: IpAddr = "2001:db8::1:1".parse().unwrap();
            FlowKey::new(Endpoint::new(client, n as u16), Endpoint::new(server, 80))
        });
    }

    #[test]
    fn a_syn_flood_faster_than_any_timer_stays_bounded() {
        // 600,000 SYNs from random-looking ports within one second: no
        // timer expires, the handshake cap must hold the table.
        let mut t = Tracker::new(60.0);
        let server = Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80);
        let mut peak = 0;
        for i in 0..600_000u32 {
            let src = Endpoint::new(
                IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + (i >> 14))),
                (i & 0x3fff) as u16 + 1024,
            );
            let seg = Segment {
                frame: FrameId(u64::from(i) + 1),
                ts: Timestamp::from_parts(1000, i64::from(i) * 1000),
                fragmentation: Default::default(),
                src,
                dst: server,
                seq: SeqNum(i.wrapping_mul(2_654_435_761)),
                ack: SeqNum(0),
                flags: TcpFlags(TcpFlags::SYN),
                window: 1000,
                payload_len: 0,
                tsopt: None,
                ip_id: None,
                wscale: None,
            };
            t.on_segment(&seg);
            peak = peak.max(t.live());
        }
        assert!(
            peak <= MAX_HANDSHAKES + MAX_HANDSHAKES / 4 + 1,
            "peak {peak}"
        );
        assert!(
            t.idle_retired() >= 600_000 - peak as u64,
            "{}",
            t.idle_retired()
        );
        assert_eq!(
            t.finish(None).count(),
            600_000,
            "every SYN is still one connection"
        );
    }

    /// One connection's segments: handshake, a request, the client's FIN
    /// and the server's, the last ACK; `t0` in ms, 1 ms apart.
    fn short_connection(port: u16, isn: u32, t0: i64, frame: &mut u64) -> Vec<Segment> {
        let client = Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2)), port);
        let server = Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80);
        let (c, s) = (isn, 7_000_000u32.wrapping_add(isn));
        let steps: [(bool, u8, u32, u32, u32); 7] = [
            (true, TcpFlags::SYN, c, 0, 0),
            (false, TcpFlags::SYN | TcpFlags::ACK, s, c + 1, 0),
            (true, TcpFlags::ACK, c + 1, s + 1, 0),
            (true, TcpFlags::ACK | TcpFlags::PSH, c + 1, s + 1, 3),
            (true, TcpFlags::FIN | TcpFlags::ACK, c + 4, s + 1, 0),
            (false, TcpFlags::FIN | TcpFlags::ACK, s + 1, c + 5, 0),
            (true, TcpFlags::ACK, c + 5, s + 2, 0),
        ];
        steps
            .iter()
            .enumerate()
            .map(|(i, &(from_client, flags, seq, ack, len))| {
                *frame += 1;
                let (src, dst) = if from_client {
                    (client, server)
                } else {
                    (server, client)
                };
                at(*frame, t0 + i as i64, src, dst, flags, seq, ack, len)
            })
            .collect()
    }

    /// `connection::tests::seg` at `ms` milliseconds past 1000 s.
    #[allow(clippy::too_many_arguments)]
    fn at(
        frame: u64,
        ms: i64,
        src: Endpoint,
        dst: Endpoint,
        flags: u8,
        seq: u32,
        ack: u32,
        len: u32,
    ) -> Segment {
        let (src, dst) = (src.to_string(), dst.to_string());
        let mut s = connection::tests::seg(frame, &src, &dst, flags, seq, ack, len);
        s.ts = Timestamp::from_parts(1000, ms * 1_000_000);
        s
    }

    fn records(t: Tracker) -> Vec<String> {
        let mut r: Vec<ConnectionRecord> = t.finish(None).collect();
        r.sort_by_key(|r| r.id);
        r.iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect()
    }

    #[test]
    fn records_written_early_equal_the_late_ones_and_a_takeover_cuts_their_time_wait() {
        // 40 connections closed within 400 ms, then a reuse SYN on the
        // tuple of connection 3 after 5 s, a late FIN from connection 7's
        // server after 8 s, and a segment far later to end the capture.
        let mut segs = Vec::new();
        let mut frame = 0;
        for i in 0..40u16 {
            segs.extend(short_connection(
                40000 + i,
                u32::from(i) * 1000,
                i64::from(i) * 10,
                &mut frame,
            ));
        }
        let mut reuse = short_connection(40003, 99_000_000, 5_000, &mut frame);
        let late_fin = {
            let mut f = segs[7 * 7 + 5];
            frame += 1;
            f.frame = FrameId(frame);
            f.ts = Timestamp::from_parts(1000, 8_000 * 1_000_000);
            f
        };
        segs.append(&mut reuse);
        segs.push(late_fin);

        let mut whole = Tracker::new(60.0);
        let mut early = Tracker::new(60.0);
        early.set_compact_above(0, SETTLE_S);
        let mut cuts = Vec::new();
        let mut early_records: Vec<ConnectionRecord> = Vec::new();
        let mut reused = None;
        for s in &segs {
            whole.on_segment(s);
            let (obs, conn) = early.on_segment_conn(s);
            if s.frame == late_fin.frame {
                assert!(conn.is_none(), "the late FIN has no connection left");
                assert_eq!(obs.conn, ConnId(7), "but it is named by its connection");
            }
            if let Some(r) = obs.reuse {
                reused = Some(*r);
            }
            early_records.extend(early.drain_retired());
            cuts.extend(early.drain_cuts());
        }
        assert_eq!(
            early.compacted(),
            41,
            "every closed connection was written early, the reuse too"
        );
        assert_eq!(early.late_segments(), 1);
        let r = reused.expect("the SYN on connection 3's tuple is a reuse");
        assert_eq!(r.previous, ConnId(3));
        assert_eq!(r.holder, Closer::Client);
        assert_eq!(cuts.len(), 1);
        let cut = cuts[0];
        assert_eq!((cut.id, cut.reused_by), (ConnId(3), ConnId(40)));
        assert_eq!(cut.at, Timestamp::from_parts(1000, 5_000 * 1_000_000));
        assert_eq!(cut.client.port(), 40003);
        assert_eq!(Some(cut.until), r.time_wait_until);

        // Applying the cut, the early records are the ones the tracker
        // that keeps everything writes, except connection 7, which the late
        // FIN would have changed.
        early_records.extend(early.finish(None));
        early_records.sort_by_key(|r| r.id);
        for rec in &mut early_records {
            if rec.id == cut.id {
                rec.time_wait.until = Some(cut.at);
                rec.time_wait.reused_by = Some(cut.reused_by);
            }
        }
        let early: Vec<String> = early_records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect();
        let whole = records(whole);
        assert_eq!(early.len(), whole.len());
        for (i, (e, w)) in early.iter().zip(&whole).enumerate() {
            if i == 7 {
                assert_ne!(e, w, "the late FIN is in the whole record only");
            } else {
                assert_eq!(e, w, "connection {i}");
            }
        }
    }

    #[test]
    fn a_table_entry_is_40_bytes_for_ipv4_and_64_for_ipv6() {
        use std::mem::size_of;
        assert_eq!(size_of::<(FlowKey4, Slot)>(), 40);
        assert_eq!(size_of::<(FlowKey, Slot)>(), 64);
        // A tombstone's: 24 and 56, a tag in the key's niche.
        assert_eq!(size_of::<(FlowKey4, TombSlot)>(), 24);
        assert_eq!(size_of::<Option<(FlowKey4, TombSlot)>>(), 24);
        assert_eq!(size_of::<(FlowKey, TombSlot)>(), 56);
        assert_eq!(size_of::<Option<(FlowKey, TombSlot)>>(), 56);
    }

    /// A tombstone gives back the time and key it was made with, whatever
    /// the time's sign and size.
    #[test]
    fn a_tomb_slot_keeps_its_time_and_key() {
        for t in [0, 1, -1, 1_700_000_000_123_456_789, i64::MIN, i64::MAX] {
            for key in [0, 1, 77, u32::MAX - 1] {
                let mut s = TombSlot::new(Timestamp(t), key);
                assert_eq!((s.last_ts(), s.tomb()), (Timestamp(t), key as usize));
                s.set_last_ts(Timestamp(t.wrapping_add(5)));
                assert_eq!(s.last_ts(), Timestamp(t.wrapping_add(5)));
            }
        }
    }

    /// A closed connection that keeps getting a segment (here its peer's
    /// FIN, retransmitted every second) waits for its own silence but does
    /// not hold back the connections that closed after it: once they are
    /// silent long enough their records are written. (It held them all
    /// back: 60,000 closed connections held whole on a busy capture.)
    #[test]
    fn a_closed_connection_still_talking_holds_back_no_other() {
        let mut t = Tracker::new(60.0);
        t.set_compact_above(4, SETTLE_S);
        let mut frame = 0;
        let mut segs = short_connection(41000, 0, 0, &mut frame);
        let fin = segs[5];
        for i in 0..20u16 {
            segs.extend(short_connection(
                42000 + i,
                1000 * (u32::from(i) + 1),
                100 + i64::from(i) * 100,
                &mut frame,
            ));
        }
        // The first connection's server FIN again, every second for 20 s.
        for k in 1..=20i64 {
            let mut again = fin;
            again.ts = fin.ts.add_secs(k as f64);
            segs.push(again);
        }
        segs.sort_by_key(|s| s.ts);
        for (n, s) in segs.iter_mut().enumerate() {
            s.frame = FrameId::new(0, n as u64 + 1);
        }
        for s in &segs {
            t.on_segment(s);
        }
        // 21 closed; all but the talking one silent for 16 s and more.
        assert_eq!(
            t.compacted(),
            21 - 4,
            "the talking connection held the others back"
        );
        assert_eq!(t.late_segments(), 0);
        let records: Vec<ConnectionRecord> = t.finish(None).collect();
        let first = records.iter().find(|r| r.client.port() == 41000).unwrap();
        assert_eq!(
            first.close.fin_retransmits, 20,
            "its FINs all reached it whole"
        );
    }

    /// Records come in the same order whether the caller drains them after
    /// every segment or seldom: a sweep's connections wait in the slab to be
    /// made into records, after the records retired before the sweep and
    /// before those retired after it (here by writing records early),
    /// however many sweeps pass between drains. (What is still open at the
    /// end comes in slab order, which does depend on when the swept
    /// connections left the slab: the same connections.)
    #[test]
    fn swept_records_keep_their_place_however_seldom_the_caller_drains() {
        let mut segs = Vec::new();
        let mut frame = 0;
        for i in 0..6000u32 {
            segs.extend(short_connection(
                (20000 + i % 40000) as u16,
                i * 1000,
                i64::from(i) * 33,
                &mut frame,
            ));
        }
        segs.sort_by_key(|s| s.ts);
        let run = |every: usize| {
            let mut t = Tracker::new(60.0);
            t.set_compact_above(2000, 0.5);
            let mut retired = Vec::new();
            for (n, s) in segs.iter().enumerate() {
                t.on_segment(s);
                if n % every == every - 1 {
                    retired.extend(t.drain_retired().map(|r| r.id));
                }
            }
            retired.extend(t.drain_retired().map(|r| r.id));
            assert!(
                t.compacted > 0 && t.last_sweep.is_some(),
                "both paths taken"
            );
            let mut open: Vec<ConnId> = t.finish(None).map(|r| r.id).collect();
            open.sort_unstable();
            (retired, open)
        };
        let (each, each_open) = run(1);
        let (seldom, seldom_open) = run(segs.len() + 1);
        assert_eq!(each.len() + each_open.len(), 6000);
        assert!(
            each.len() > 3000,
            "sweeps and early records retired most: {}",
            each.len()
        );
        assert!(each == seldom, "the same records in the same order");
        assert_eq!(each_open, seldom_open);
    }

    #[test]
    fn below_the_bound_nothing_is_written_early() {
        let mut t = Tracker::new(60.0);
        t.set_compact_above(40, SETTLE_S);
        let mut frame = 0;
        for i in 0..40u16 {
            for s in short_connection(
                40000 + i,
                u32::from(i) * 1000,
                i64::from(i) * 100,
                &mut frame,
            ) {
                t.on_segment(&s);
            }
        }
        assert_eq!(t.compacted(), 0);
        assert_eq!(t.finish(None).count(), 40);
    }
}
