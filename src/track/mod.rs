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
pub use hosts::{HostRecord, HostSeries, host_time_wait, time_wait_series};
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
    pub reuse: Option<Reuse>,
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
        let mut reuse = None;
        if let Some(conn) = self.live.get(&key)
            && conn.is_new_incarnation(seg)
            && let Some(old) = self.live.swap_remove(&key)
        {
            let mut record = old.finish(self.time_wait_secs);
            let tw = &mut record.time_wait;
            reuse = Some(Reuse {
                previous: record.id,
                holder: tw.holder,
                time_wait_until: tw.until,
                time_wait_from: tw.from,
            });
            // The new incarnation takes the 4-tuple over: the TIME_WAIT
            // socket is gone from this moment (tcp_tw_reuse, or a TIME_WAIT
            // socket accepting the SYN).
            if tw.until.is_some_and(|u| u > seg.ts) {
                tw.until = Some(seg.ts);
                tw.reused_by = Some(self.next_id);
            }
            self.retired.push(record);
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
            reuse,
        }
    }

    /// The live connection a segment belongs to (after `on_segment`).
    pub fn connection_of(&self, seg: &Segment) -> Option<&Connection> {
        self.live.get(&FlowKey::new(seg.src, seg.dst))
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
