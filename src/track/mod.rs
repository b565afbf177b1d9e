//! Connection tracking: segments in, connections out.
//!
//! A connection is one incarnation of a 4-tuple. Ids are handed out in
//! order of first packet, like Wireshark's `tcp.stream`; a SYN with a new
//! ISN on a known tuple retires the old incarnation and opens a new one.
//! Live connections sit in an [`IndexMap`]; retired ones become compact
//! [`ConnectionRecord`]s.

mod connection;
mod hosts;
mod state;

pub use connection::{
    CloseKind, CloseRecord, Closer, ConnId, Connection, ConnectionRecord, DirectionRecord,
    HandshakeRecord, HandshakeState, RoleSource, SegmentNotes, TimeWaitRecord,
};
pub use hosts::{HostRecord, host_time_wait};
pub use state::{Event, TcpState};

use crate::decode::Segment;
use crate::flow::{FlowKey, Side};
use indexmap::IndexMap;

/// What the tracker tells its caller about one segment.
#[derive(Debug, Clone, Copy)]
pub struct Observation {
    pub conn: ConnId,
    pub sender: Side,
    pub notes: SegmentNotes,
    /// Both sides' states after the segment: [client, server].
    pub states: [TcpState; 2],
    /// The segment opened a new incarnation of a tuple seen before.
    pub reused_tuple: bool,
}

/// The connection table.
#[derive(Debug)]
pub struct Tracker {
    live: IndexMap<FlowKey, Connection>,
    next_id: ConnId,
    time_wait_secs: f64,
    capture: u32,
    retired: Vec<ConnectionRecord>,
}

impl Tracker {
    pub fn new(time_wait_secs: f64) -> Tracker {
        Tracker {
            live: IndexMap::new(),
            next_id: 0,
            time_wait_secs,
            capture: 0,
            retired: Vec::new(),
        }
    }

    /// Segments that follow belong to capture file number `index`.
    pub fn set_capture(&mut self, index: u32) {
        self.capture = index;
    }

    /// Feeds one segment, in capture order.
    pub fn on_segment(&mut self, seg: &Segment) -> Observation {
        let key = FlowKey::new(seg.src, seg.dst);
        let mut reused_tuple = false;
        if let Some(conn) = self.live.get(&key)
            && conn.is_new_incarnation(seg)
        {
            reused_tuple = true;
            if let Some(old) = self.live.swap_remove(&key) {
                self.retired.push(old.finish(self.time_wait_secs));
            }
        }
        let conn = match self.live.entry(key) {
            indexmap::map::Entry::Occupied(e) => e.into_mut(),
            indexmap::map::Entry::Vacant(e) => {
                let id = self.next_id;
                self.next_id += 1;
                e.insert(Connection::new(id, self.capture, seg))
            }
        };
        let notes = conn.update(seg);
        Observation {
            conn: conn.id,
            sender: conn.side_of(seg.src),
            notes,
            states: [
                conn.side(Side::Client).state(),
                conn.side(Side::Server).state(),
            ],
            reused_tuple,
        }
    }

    /// Number of connections opened so far.
    pub fn connections_seen(&self) -> u32 {
        self.next_id
    }

    /// Retires everything still open and returns all records by id.
    pub fn finish(mut self) -> Vec<ConnectionRecord> {
        let tw = self.time_wait_secs;
        self.retired
            .extend(self.live.drain(..).map(|(_, c)| c.finish(tw)));
        self.retired.sort_unstable_by_key(|r| r.id);
        self.retired
    }
}
