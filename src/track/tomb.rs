//! What a closed connection leaves in the table once its record is written
//! early: a tombstone for the rest of its TIME_WAIT window.
//!
//! The kernel does the same: when a socket enters TIME_WAIT, `tcp_time_wait`
//! replaces the full `tcp_sock` by a small `inet_timewait_sock` that keeps
//! only what `tcp_timewait_state_process` needs to answer a late segment or
//! a new SYN on the 4-tuple. A busy proxy closes tens of thousands of
//! connections a second, all of them inside one 60 s window: keeping the
//! whole [`Connection`] (about a kilobyte) for each made memory follow the
//! window at a kilobyte a connection. A [`Tomb`] keeps what the table needs
//! to go on as before: the id and ISNs (is a SYN a new incarnation or a
//! retransmission, `Connection::is_new_incarnation`), the states for the
//! observation, and the [`Reuse`] a new SYN on the tuple reports.
//!
//! The tracker writes a record early only when many closed connections wait
//! at once (see `Tracker::compact_above`) and only after the connection was
//! silent for [`SETTLE_S`], so a retransmitted FIN and the RST that answers
//! it (what `fin-retransmit-rst` looks for) still reach the full connection.
//! What comes later is the one thing that differs from keeping everything:
//! a segment of the old incarnation after its record was written is
//! counted (`Tracker::late_segments`) but changes no record, and a SYN
//! that takes the 4-tuple over amends the written record's TIME_WAIT end
//! through a [`TimeWaitCut`].

use super::Reuse;
use super::connection::{Closer, ConnId, Connection};
use super::state::TcpState;
use super::time_wait::{TimeWaitSocket, TimeWaitSockets};
use crate::decode::Segment;
use crate::flow::{Endpoint, FlowKey, Side};
use crate::seq::SeqNum;
use crate::time::Timestamp;

/// Seconds a closed connection must have been silent before its record may
/// be written early. Linux retransmits a FIN after its RTO (at least
/// `TCP_RTO_MIN`, 200 ms, and about that on a LAN once the handshake gave an
/// RTT sample), doubling it each time (`tcp_retransmit_timer`): gaps of
/// 0.2, 0.4, 0.8 and 1.6 s, so two seconds of silence cover the first four
/// retransmissions of a FIN whose ACK was lost, and the RST of a peer whose
/// TIME_WAIT socket is gone answers each at once. (One second missed the
/// fourth, and SYNs retransmitted after the kernel's 1 s initial RTO; on a
/// capture of 15,000 connections a second, 1 s left 3,727 segments after
/// their record, 2 s 1,450, 3 s 701, for 101, 113 and 124 MB.)
pub const SETTLE_S: f64 = 2.0;

/// The tombstone of a closed connection whose record was written early:
/// 72 bytes, where the connection took about 400 (a busy proxy holds a
/// quarter of a million of them). Presence is kept in bits of `flags`
/// rather than in `Option`s, each of which took a word.
#[derive(Debug)]
pub struct Tomb {
    pub id: ConnId,
    /// Both sides' final states, [client, server].
    pub states: [TcpState; 2],
    /// Who held TIME_WAIT, as its record says.
    holder: Closer,
    /// [`CLIENT_IS_LOWER`], [`BASE_SEQ`] of each side, [`TIME_WAIT`].
    flags: u8,
    /// The first sequence number seen from each side, by [`Side::index`]
    /// (`SideTrack::base_seq`), where its [`BASE_SEQ`] bit is set: a SYN
    /// with another one is a new incarnation.
    base_seq: [SeqNum; 2],
    /// Where [`TIME_WAIT`] is set, the start of the record's TIME_WAIT; it
    /// ends the tracker's TIME_WAIT length later, as every record's does
    /// (`Connection::time_wait_record`).
    time_wait_from: Timestamp,
    /// The TIME_WAIT socket of the side that closed first, and the other
    /// side's after a simultaneous close (rare: boxed).
    socket: Option<TimeWaitSocket>,
    second: Option<Box<TimeWaitSocket>>,
}

/// The client is the lower endpoint of the 4-tuple (in `FlowKey` order).
const CLIENT_IS_LOWER: u8 = 1;
/// `base_seq[i]` holds side `i`'s first sequence number (bit `BASE_SEQ << i`).
const BASE_SEQ: u8 = 2;
/// The record has a TIME_WAIT interval.
const TIME_WAIT: u8 = 8;

impl Tomb {
    /// The tombstone of `c`, whose record says `holder` and `from` of its
    /// TIME_WAIT (which ends `time_wait_secs` later).
    pub fn of(c: &Connection, holder: Closer, from: Option<Timestamp>) -> Tomb {
        let all = c.time_wait_sockets();
        let mut sockets = all.iter().copied();
        let mut flags = 0;
        if c.client() <= c.server() {
            flags |= CLIENT_IS_LOWER;
        }
        let mut base_seq = [SeqNum(0); 2];
        for side in [Side::Client, Side::Server] {
            if let Some(seq) = c.side(side).base_seq() {
                base_seq[side.index()] = seq;
                flags |= BASE_SEQ << side.index();
            }
        }
        if from.is_some() {
            flags |= TIME_WAIT;
        }
        Tomb {
            id: c.id,
            states: [c.side(Side::Client).state(), c.side(Side::Server).state()],
            holder,
            flags,
            base_seq,
            time_wait_from: from.unwrap_or(Timestamp(0)),
            socket: sockets.next(),
            second: sockets.next().map(Box::new),
        }
    }

    fn client_is_lower(&self) -> bool {
        self.flags & CLIENT_IS_LOWER != 0
    }

    /// The record's TIME_WAIT interval (from, until).
    fn time_wait(&self, time_wait_secs: f64) -> Option<(Timestamp, Timestamp)> {
        (self.flags & TIME_WAIT != 0).then(|| {
            let from = self.time_wait_from;
            (from, from.add_secs(time_wait_secs))
        })
    }

    /// What a SYN that reopens the tuple (`key`) learns of this
    /// incarnation: what the tracker reports for a connection held whole.
    pub fn reuse(&self, key: &FlowKey, time_wait_secs: f64) -> Reuse {
        let sockets = self.socket.iter().chain(self.second.as_deref()).copied();
        let time_wait = self.time_wait(time_wait_secs);
        Reuse {
            previous: self.id,
            holder: self.holder,
            time_wait_until: time_wait.map(|t| t.1),
            time_wait_from: time_wait.map(|t| t.0),
            sockets: TimeWaitSockets::from_sockets(sockets),
            previous_client: self.endpoints(key).0,
        }
    }

    /// The client and the server, from the table's key of the tuple.
    pub fn endpoints(&self, key: &FlowKey) -> (Endpoint, Endpoint) {
        let (lo, hi) = key.endpoints();
        if self.client_is_lower() {
            (lo, hi)
        } else {
            (hi, lo)
        }
    }

    /// The side that sent `seg`.
    pub fn side_of(&self, seg: &Segment) -> Side {
        let src_is_lower = seg.src <= seg.dst;
        if src_is_lower == self.client_is_lower() {
            Side::Client
        } else {
            Side::Server
        }
    }

    /// [`Connection::is_new_incarnation`] from what the tombstone kept.
    pub fn is_new_incarnation(&self, seg: &Segment) -> bool {
        if !seg.flags.syn() || seg.flags.ack() {
            return false;
        }
        let side = self.side_of(seg).index();
        self.flags & (BASE_SEQ << side) != 0 && self.base_seq[side] != seg.seq
    }
}

/// A new incarnation took over a 4-tuple whose old record was already
/// written: that record's TIME_WAIT ended at `at`, not at `until`, and
/// `reused_by` took it. Consumers that folded the old interval (TIME_WAIT
/// peaks, kept records) apply it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeWaitCut {
    pub id: ConnId,
    pub client: Endpoint,
    pub server: Endpoint,
    pub holder: Closer,
    pub from: Timestamp,
    /// The end the record was written with.
    pub until: Timestamp,
    /// The new end: the SYN of the new incarnation.
    pub at: Timestamp,
    pub reused_by: ConnId,
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_tombstone_is_a_tenth_of_a_connection() {
        assert!(std::mem::size_of::<super::Tomb>() <= 72);
    }
}
