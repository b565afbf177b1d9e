//! The TIME_WAIT socket a connection closed with FINs leaves behind, as
//! the tracker sees it: kernel socket state, kept with the connection it
//! came from and handed to detectors in [`super::Reuse`] when a SYN
//! reopens the 4-tuple, so that no detector keeps a socket for every
//! closed connection (only for the 4-tuples a new SYN actually met). A
//! connection stores 16 bytes of it ([`TimeWaitKept`]); the sockets are
//! read from its state when asked for.

use super::Connection;
use crate::decode::Segment;
use crate::flow::Side;
use crate::frame::FrameId;
use crate::seq::{SeqNum, TsVal};
use crate::time::Timestamp;

/// What the kernel's TIME_WAIT socket keeps of the connection it replaces
/// (`struct tcp_timewait_sock`, filled by `tcp_time_wait` when the side
/// that closed first has acknowledged its peer's FIN): enough to judge a
/// new SYN on its 4-tuple the way `tcp_timewait_state_process` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWaitSocket {
    /// The side that holds it: the one that closed first (either, after a
    /// simultaneous close).
    pub holder: Side,
    /// Frame and time at which the holder entered TIME_WAIT: its ACK of
    /// the peer's FIN (a connection counts as closed only once both FINs
    /// are acknowledged, so it is known). Set once: the timer runs from
    /// here.
    pub since_frame: FrameId,
    pub since: Timestamp,
    /// The last TSval the holder received, when both sides used
    /// timestamps (`tw_ts_recent`, copied from `rx_opt.ts_recent`); None
    /// means no PAWS check (`tw_ts_recent_stamp` = 0).
    pub ts_recent: Option<TsVal>,
    /// One past the peer's FIN (`tw_rcv_nxt`).
    pub rcv_nxt: SeqNum,
    /// One past the holder's FIN (`tw_snd_nxt`).
    pub snd_nxt: SeqNum,
    /// The socket was made by the segment the connection took in last:
    /// the moment of `tcp_time_wait`, when a pre-4.12 kernel also
    /// remembered the peer's timestamp per host (`tcp_remember_stamp`).
    pub opened: bool,
}

impl TimeWaitSocket {
    /// When its TIME_WAIT ends (`inet_twsk_schedule` with
    /// TCP_TIMEWAIT_LEN = `time_wait_secs`), unless a PAWS reject re-arms
    /// it.
    pub fn until(&self, time_wait_secs: f64) -> Timestamp {
        self.since.add_secs(time_wait_secs)
    }
}

/// The TIME_WAIT sockets of one connection, by holder ([`Side::index`]):
/// one for the side that closed first, two after a simultaneous close,
/// none when it did not close with FINs before any RST. What
/// [`super::Reuse`] hands over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeWaitSockets([Option<TimeWaitSocket>; 2]);

impl TimeWaitSockets {
    /// The socket `holder` keeps, if any.
    pub fn get(&self, holder: Side) -> Option<&TimeWaitSocket> {
        self.0[holder.index()].as_ref()
    }

    /// The sockets there are, client's first.
    pub fn iter(&self) -> impl Iterator<Item = &TimeWaitSocket> {
        self.0.iter().flatten()
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }

    /// The sockets, each under its holder.
    pub(super) fn from_sockets(sockets: impl IntoIterator<Item = TimeWaitSocket>) -> Self {
        let mut s = TimeWaitSockets::default();
        for t in sockets {
            s.0[t.holder.index()] = Some(t);
        }
        s
    }
}

/// What a socket keeps of its peer and of itself, and may change while
/// it sits in TIME_WAIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PeerView {
    ts_recent: Option<TsVal>,
    rcv_nxt: SeqNum,
    snd_nxt: SeqNum,
}

/// What a connection stores of its TIME_WAIT sockets between segments:
/// 16 bytes, where two sockets would take 80 in every connection. While
/// the sockets are updated (closed with FINs, no RST) what they hold is
/// read from the connection itself: the start of TIME_WAIT (the holder's
/// ACK of the peer's FIN, set once) and the latest `ts_recent`, `rcv_nxt`
/// and `snd_nxt`. Only an RST, which ends the updates, leaves something
/// to keep: what the sockets held just before it (allocated then; rare).
#[derive(Debug, Clone, Default)]
pub struct TimeWaitKept {
    /// Per holder (bit [`Side::index`]): its socket was made.
    made: u8,
    /// Per holder: its socket was made by the last segment the connection
    /// took in.
    opened: u8,
    /// The sockets' view when an RST ended the updates, by holder; stale
    /// (and ignored) once the connection outlives that RST and the
    /// updates go on.
    frozen: Option<Box<[Option<PeerView>; 2]>>,
}

impl Connection {
    /// Whether the sockets are updated now (paws-syn-drop's former
    /// `bury` condition): closed with FINs, and no RST (that the
    /// connection did not outlive).
    fn time_wait_updated(&self) -> bool {
        self.first_rst().is_none() && self.first_fin_by().is_some() && self.is_closed()
    }

    /// The sides that closed first: both after a simultaneous close.
    fn time_wait_holders(&self) -> &'static [Side] {
        match (self.simultaneous(), self.first_fin_by()) {
            (true, _) => &[Side::Client, Side::Server],
            (false, Some(Side::Client)) => &[Side::Client],
            (false, Some(Side::Server)) => &[Side::Server],
            (false, None) => &[],
        }
    }

    /// What `holder`'s socket would hold after this segment; None when it
    /// has none: a holder that sent RST, or a side with no sequence number
    /// seen.
    fn peer_view(&self, holder: Side) -> Option<PeerView> {
        let h = self.side(holder);
        let p = self.side(holder.peer());
        // A holder that sent RST has no TIME_WAIT socket.
        if self.rst_of(holder).is_some() {
            return None;
        }
        Some(PeerView {
            // tcp_time_wait copies ts_recent only when both sides use
            // timestamps (tw_ts_recent_stamp, rx_opt.ts_recent_stamp).
            ts_recent: match (h.first_tsval(), p.last_tsval) {
                (Some(_), Some(v)) => Some(v),
                _ => None,
            },
            rcv_nxt: p.next_seq()?,
            snd_nxt: h.next_seq()?,
        })
    }

    /// Before a segment the connection takes in (not a copy, not one the
    /// kernel discards): what the sockets hold, if it is an RST that may
    /// end their updates.
    pub(super) fn time_wait_before(&self, seg: &Segment) -> Option<[Option<PeerView>; 2]> {
        if !seg.flags.rst() || !self.time_wait_updated() {
            return None;
        }
        let mut views = [None, None];
        for &holder in self.time_wait_holders() {
            views[holder.index()] = self.peer_view(holder);
        }
        Some(views)
    }

    /// After each segment the connection took in: while it is closed with
    /// FINs and no RST, the side that closed first (both, after a
    /// simultaneous close) is in TIME_WAIT. The first such segment makes
    /// the socket (`tcp_time_wait`: holder, start of the timer); later ones
    /// update what it keeps of the peer (`ts_recent`, `rcv_nxt`,
    /// `snd_nxt`), as the kernel's socket takes the peer's last ACK and FIN
    /// retransmissions in (`tcp_timewait_state_process`). An RST ends the
    /// updates, not the socket: what it held before the RST is kept.
    /// `before` is [`Connection::time_wait_before`] of the same segment.
    pub(super) fn keep_time_wait(&mut self, before: Option<[Option<PeerView>; 2]>) {
        // Before the first FIN nothing is kept (`before` is None then too):
        // the kept state lives in the connection's `Closing`.
        if self.closing().is_none() {
            return;
        }
        self.closing_mut().time_wait_kept.opened = 0;
        if let Some(views) = before
            && self.first_rst().is_some()
        {
            self.closing_mut().time_wait_kept.frozen = Some(Box::new(views));
            return;
        }
        if !self.time_wait_updated() {
            return;
        }
        for &holder in self.time_wait_holders() {
            let bit = 1 << holder.index();
            if self.closing_mut().time_wait_kept.made & bit == 0 && self.peer_view(holder).is_some()
            {
                // Closed with both FINs acknowledged: the holder
                // acknowledged the peer's FIN, so the start of its
                // TIME_WAIT is known and set for good.
                debug_assert!(self.fin_of(holder).and_then(|f| f.acked_peer_fin).is_some());
                let kept = &mut self.closing_mut().time_wait_kept;
                kept.made |= bit;
                kept.opened |= bit;
            }
        }
    }

    /// Whether the last segment the connection took in made `holder`'s
    /// TIME_WAIT socket ([`TimeWaitSocket::opened`]), without building the
    /// socket: a test per segment, once per connection true.
    pub fn time_wait_opened(&self, holder: Side) -> bool {
        self.closing()
            .is_some_and(|c| c.time_wait_kept.opened & (1 << holder.index()) != 0)
    }

    /// The TIME_WAIT socket `holder` keeps after the last segment, if any.
    pub fn time_wait_socket(&self, holder: Side) -> Option<TimeWaitSocket> {
        let bit = 1 << holder.index();
        let kept = &self.closing()?.time_wait_kept;
        if kept.made & bit == 0 {
            return None;
        }
        let view = if self.time_wait_updated() {
            self.peer_view(holder)?
        } else {
            kept.frozen.as_ref()?[holder.index()]?
        };
        // The holder entered TIME_WAIT with its ACK of the peer's FIN (else
        // at that FIN, else, never the case, at the last segment).
        let (since_frame, since) = self
            .fin_of(holder)
            .and_then(|f| f.acked_peer_fin)
            .or(self.fin_of(holder.peer()).and_then(|f| f.fin_first))
            .map_or((self.last_frame, self.last_ts), |f| (f.frame(), f.at()));
        Some(TimeWaitSocket {
            holder,
            since_frame,
            since,
            ts_recent: view.ts_recent,
            rcv_nxt: view.rcv_nxt,
            snd_nxt: view.snd_nxt,
            opened: kept.opened & bit != 0,
        })
    }

    /// Both sides' TIME_WAIT sockets after the last segment.
    pub fn time_wait_sockets(&self) -> TimeWaitSockets {
        TimeWaitSockets([
            self.time_wait_socket(Side::Client),
            self.time_wait_socket(Side::Server),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::super::connection::tests::{C, S, seg};
    use super::*;
    use crate::decode::{TcpFlags as F, TcpTimestamps};
    use crate::flow::Endpoint;
    use crate::track::{ConnId, Tracker};

    /// `seg` with TSval `tsval` (TSecr 0).
    fn ts(mut s: Segment, tsval: u32) -> Segment {
        s.tsopt = Some(TcpTimestamps {
            tsval: TsVal(tsval),
            tsecr: TsVal(0),
        });
        s
    }

    /// A connection with timestamps both ways that the server closes
    /// first; the client's TSvals count from 1000, the server's from 5000.
    fn server_closes() -> Vec<Segment> {
        vec![
            ts(seg(1, C, S, F::SYN, 100, 0, 0), 1000),
            ts(seg(2, S, C, F::SYN | F::ACK, 500, 101, 0), 5000),
            ts(seg(3, C, S, F::ACK, 101, 501, 0), 1001),
            ts(seg(4, S, C, F::FIN | F::ACK, 501, 101, 0), 5001),
            ts(seg(5, C, S, F::ACK, 101, 502, 0), 1002),
            ts(seg(6, C, S, F::FIN | F::ACK, 101, 502, 0), 1003),
            ts(seg(7, S, C, F::ACK, 502, 102, 0), 5002),
        ]
    }

    fn run(segs: &[Segment]) -> Connection {
        let mut c = Connection::new(ConnId(0), 0, &segs[0]);
        for s in segs {
            c.update(s);
        }
        c
    }

    #[test]
    fn the_side_that_closed_first_keeps_a_socket_from_its_ack_of_the_peers_fin() {
        let segs = server_closes();
        let mut c = run(&segs[..6]);
        assert!(
            c.time_wait_sockets().is_empty(),
            "not closed before the last ACK"
        );
        c.update(&segs[6]);
        assert!(c.time_wait_socket(Side::Client).is_none());
        let s = c.time_wait_socket(Side::Server).unwrap();
        assert_eq!(
            s,
            TimeWaitSocket {
                holder: Side::Server,
                since_frame: FrameId(7),
                since: segs[6].ts,
                ts_recent: Some(TsVal(1003)),
                rcv_nxt: SeqNum(102),
                snd_nxt: SeqNum(502),
                opened: true,
            }
        );
        assert_eq!(s.until(60.0), segs[6].ts.add_secs(60.0));
    }

    #[test]
    fn later_segments_update_what_the_socket_knows_of_the_peer_but_not_its_start() {
        let mut segs = server_closes();
        // The client's FIN again, with a newer TSval: the TIME_WAIT socket
        // takes it in (tcp_timewait_state_process).
        segs.push(ts(seg(8, C, S, F::FIN | F::ACK, 101, 502, 0), 1010));
        let c = run(&segs);
        let s = c.time_wait_socket(Side::Server).unwrap();
        assert_eq!(s.ts_recent, Some(TsVal(1010)));
        assert_eq!((s.since_frame, s.since), (FrameId(7), segs[6].ts));
        assert!(!s.opened, "made by an earlier segment");
    }

    #[test]
    fn an_rst_after_the_close_freezes_the_socket_without_removing_it() {
        let mut segs = server_closes();
        segs.push(ts(seg(8, C, S, F::RST, 102, 0, 0), 1020));
        let c = run(&segs);
        assert!(c.first_rst().is_some());
        let s = c.time_wait_socket(Side::Server).unwrap();
        assert_eq!(
            s.ts_recent,
            Some(TsVal(1003)),
            "the RST's TSval is not kept"
        );
        assert_eq!(s.since_frame, FrameId(7));
    }

    #[test]
    fn an_rst_from_the_holder_after_the_close_leaves_its_socket_as_it_was() {
        let mut segs = server_closes();
        segs.push(ts(seg(8, S, C, F::RST, 502, 0, 0), 5010));
        segs.push(ts(seg(9, C, S, F::ACK, 102, 502, 0), 1030));
        let c = run(&segs);
        assert!(c.rst_of(Side::Server).is_some());
        let s = c.time_wait_socket(Side::Server).unwrap();
        assert_eq!(
            (s.since_frame, s.ts_recent, s.rcv_nxt, s.snd_nxt, s.opened),
            (
                FrameId(7),
                Some(TsVal(1003)),
                SeqNum(102),
                SeqNum(502),
                false
            )
        );
    }

    #[test]
    fn a_connection_that_outlives_the_rst_updates_its_socket_again_without_making_a_new_one() {
        let mut segs = server_closes();
        segs.push(ts(seg(8, C, S, F::RST, 102, 0, 0), 1020));
        // More from the RST's sender: its socket was not gone.
        segs.push(ts(seg(9, C, S, F::ACK | F::PSH, 102, 502, 10), 1030));
        let mut c = run(&segs[..8]);
        assert!(c.first_rst().is_some());
        c.update(&segs[8]);
        assert!(c.first_rst().is_none(), "the RST was outlived");
        let s = c.time_wait_socket(Side::Server).unwrap();
        assert_eq!(
            (s.since_frame, s.ts_recent, s.rcv_nxt, s.opened),
            (FrameId(7), Some(TsVal(1030)), SeqNum(112), false)
        );
    }

    #[test]
    fn without_timestamps_on_both_sides_there_is_no_ts_recent() {
        let mut segs = server_closes();
        // The server never sent the option: no PAWS on its socket.
        for s in segs
            .iter_mut()
            .filter(|s| s.src == S.parse::<Endpoint>().unwrap())
        {
            s.tsopt = None;
        }
        let c = run(&segs);
        assert_eq!(c.time_wait_socket(Side::Server).unwrap().ts_recent, None);
    }

    #[test]
    fn a_simultaneous_close_leaves_a_socket_on_each_side() {
        let segs = [
            seg(1, C, S, F::SYN, 100, 0, 0),
            seg(2, S, C, F::SYN | F::ACK, 500, 101, 0),
            seg(3, C, S, F::ACK, 101, 501, 0),
            seg(4, C, S, F::FIN | F::ACK, 101, 501, 0),
            seg(5, S, C, F::FIN | F::ACK, 501, 101, 0), // crosses the client's FIN
            seg(6, C, S, F::ACK, 102, 502, 0),
            seg(7, S, C, F::ACK, 502, 102, 0),
        ];
        let c = run(&segs);
        assert!(c.simultaneous());
        let client = c.time_wait_socket(Side::Client).unwrap();
        let server = c.time_wait_socket(Side::Server).unwrap();
        assert_eq!(
            (client.since_frame, client.rcv_nxt, client.snd_nxt),
            (FrameId(6), SeqNum(502), SeqNum(102))
        );
        assert_eq!(
            (server.since_frame, server.rcv_nxt, server.snd_nxt),
            (FrameId(7), SeqNum(102), SeqNum(502))
        );
        assert_eq!(c.time_wait_sockets().iter().count(), 2);
    }

    #[test]
    fn a_syn_that_reopens_the_tuple_hands_over_the_previous_sockets() {
        let mut t = Tracker::new(60.0);
        for s in server_closes() {
            assert!(t.on_segment(&s).reuse.is_none());
        }
        let syn = ts(seg(20, C, S, F::SYN, 9000, 0, 0), 900);
        let r = t
            .on_segment(&syn)
            .reuse
            .expect("a new ISN reopens the tuple");
        assert_eq!(r.previous, ConnId(0));
        assert_eq!(r.previous_client, C.parse::<Endpoint>().unwrap());
        let s = r.sockets.get(Side::Server).unwrap();
        assert_eq!(
            (s.since_frame, s.ts_recent),
            (FrameId(7), Some(TsVal(1003)))
        );
        assert!(r.sockets.get(Side::Client).is_none());
    }
}
