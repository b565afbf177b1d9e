//! Retiring a connection: how the live [`Connection`] the tracker updated
//! per segment becomes the [`ConnectionRecord`] reports and detectors read.
//!
//! Each part of the record has its own function, named after the part and
//! saying which kernel behaviour it encodes: how far the three-way
//! handshake got ([`Connection::handshake_record`]), how the connection
//! ended ([`Connection::close_record`]) and who holds its TIME_WAIT socket,
//! from when ([`Connection::time_wait_record`]). They only read the state
//! [`Connection::update`] built; the per-segment state machine stays in
//! `connection.rs`.

use super::connection::*;
use super::record::*;
use crate::flow::Side;
use smallvec::SmallVec;

/// The handshake legs must differ by this much (and fourfold) before one
/// side is called closer to the capture point.
const CAPTURE_SIDE_MIN_GAP_S: f64 = 0.001;

impl Connection {
    /// Freezes the connection into its record. The ignored frames move
    /// into the record (the connection is retired after this), the other
    /// frame lists are copied into inline [`Frames`] and the history into
    /// an inline [`History`], so retiring allocates as little as possible.
    pub fn finish(&mut self, time_wait_secs: f64) -> ConnectionRecord {
        let handshake = self.handshake_record();
        let close = self.close_record();
        let time_wait = self.time_wait_record(close.kind, time_wait_secs);
        let client = self.side(Side::Client);
        let server = self.side(Side::Server);
        let one_way = match (client.packets, server.packets) {
            (0, n) => n > 0,
            (n, 0) => n > 0 && client.max_ack().is_some(),
            _ => false,
        };
        ConnectionRecord {
            id: self.id,
            capture: self.capture,
            client: self.client(),
            server: self.server(),
            role_inferred: self.roles == RoleSource::Ports,
            roles_from: self.roles,
            first_frame: self.first_frame,
            last_frame: self.last_frame,
            start: self.first_ts,
            end: self.last_ts,
            duration_s: self.last_ts.secs_since(self.first_ts),
            handshake,
            close,
            time_wait,
            client_to_server: DirectionRecord::from(client),
            server_to_client: DirectionRecord::from(server),
            history: self.history.to_history(),
            one_way,
            ignored: self.ignored(),
            ignored_frames: self.take_ignored_frames(),
        }
    }

    /// How far the three-way handshake got (RFC 9293 §3.5): complete once
    /// the client acknowledged a SYN-ACK (SYN_SENT → ESTABLISHED in
    /// `tcp_rcv_synsent_state_process`; also when that SYN-ACK is not in
    /// the capture), else a SYN-ACK without the final ACK, else the SYN
    /// refused by an RST (nothing listens: `tcp_v4_send_reset` from
    /// `tcp_v4_rcv`), else challenged by a bare ACK (a socket holds the
    /// tuple: RFC 5961 §4, or PAWS on a TIME_WAIT socket), else SYNs
    /// without answer. Its timing
    /// (RTT, connect time, capture point) is measured here too.
    pub(super) fn handshake_record(&self) -> HandshakeRecord {
        let syn_frames = self.handshake.syn_frames.to_frames();
        let h = &self.handshake;
        let synack_unseen = self.synack_unseen();
        let state = if (h.synack.is_some() || synack_unseen) && h.ack.is_some() {
            HandshakeState::Complete
        } else if h.synack.is_some() {
            HandshakeState::SynAckOnly
        } else if self.refused().is_some() {
            HandshakeState::Refused
        } else if self.challenge_ack().is_some() {
            HandshakeState::Challenged
        } else if h.syn_count > 0 {
            HandshakeState::SynOnly
        } else {
            HandshakeState::NotCaptured
        };
        let rtt_ms = match (h.first_syn(), h.ack) {
            (Some(syn), Some(ack)) => Some(ack.at().secs_since(syn) * 1000.0),
            _ => None,
        };
        HandshakeRecord {
            state,
            syn_frames,
            syn_retransmits: h.syn_count.saturating_sub(1),
            synack_frame: h.synack.map(FrameAt::frame),
            ack_frame: h.ack.map(FrameAt::frame),
            challenge_ack_frame: self.challenge_ack(),
            rst_frame: self.refused(),
            attempt_rst_frame: self.attempt_rst().map(|a| a.frame),
            rtt_ms,
            connect_s: match (h.first_syn(), h.synack) {
                (Some(syn), Some(sa)) => Some(sa.at().secs_since(syn)),
                _ => None,
            },
            capture_near: self.capture_near(),
            synack_unseen,
            cut_by_capture_end: false,
        }
    }

    /// Which side the capture point is closer to: the one whose handshake
    /// leg is clearly shorter. The server's leg is the last SYN to the
    /// SYN-ACK, the client's the SYN-ACK to its ACK; each includes the
    /// other kernel's time to answer.
    fn capture_near(&self) -> Option<Side> {
        let h = &self.handshake;
        match (h.last_syn(), h.synack, h.ack) {
            // Only a clear difference says something: on a LAN both legs
            // are tens of microseconds and the kernels' own processing time
            // decides which is shorter.
            (Some(syn), Some(sa), Some(ack)) => {
                let server_leg = sa.at().secs_since(syn);
                let client_leg = ack.at().secs_since(sa.at());
                let (near, short, long) = if server_leg <= client_leg {
                    (Side::Server, server_leg, client_leg)
                } else {
                    (Side::Client, client_leg, server_leg)
                };
                (long - short >= CAPTURE_SIDE_MIN_GAP_S && long >= 4.0 * short).then_some(near)
            }
            _ => None,
        }
    }

    /// How the connection ended. An RST resets a synchronized connection
    /// (`tcp_reset`, RFC 9293 §3.10.7.4), but counts as the end only if it
    /// came before the second FIN: after both FINs the FINs decided the
    /// close, and the RST says only whether a TIME_WAIT socket was left
    /// ([`Connection::time_wait_record`]; the FIN-retransmitted-into-RST
    /// case keeps `kind = fin`). A FIN each way is an orderly close
    /// (`tcp_fin`), simultaneous when the second FIN did not acknowledge
    /// the first (both sides pass through CLOSING); a FIN one way only, or
    /// none, leaves it open. The active closer is the side of the first
    /// FIN, both in a simultaneous close.
    pub(super) fn close_record(&self) -> CloseRecord {
        let client = self.side(Side::Client);
        let server = self.side(Side::Server);
        // Before any FIN, as an empty close (that allocates nothing).
        let not_closing = Closing::default();
        let closing = self.closing().unwrap_or(&not_closing);
        let client_fin = closing.side(Side::Client);
        let server_fin = closing.side(Side::Server);
        let both_fins = client_fin.fin_seq.is_some() && server_fin.fin_seq.is_some();
        let rst = self.first_rst();
        // An RST counts as the end only if it came before the second FIN.
        let rst_before_fins = match rst {
            Some(FirstRst { frame, .. }) => {
                !both_fins
                    || [client_fin, server_fin]
                        .iter()
                        .any(|s| s.fin_first.is_some_and(|f| f.frame() > frame))
            }
            None => false,
        };
        let kind = if rst_before_fins {
            CloseKind::Rst
        } else if both_fins && closing.simultaneous {
            CloseKind::Simultaneous
        } else if both_fins {
            CloseKind::Fin
        } else {
            CloseKind::Open
        };
        let active_closer = match (kind, closing.first_fin_by) {
            (CloseKind::Simultaneous, _) => Closer::Both,
            (_, Some(side)) => side.into(),
            (_, None) => Closer::None,
        };
        let mut fin_frames = client_fin.fin_frames.to_frames();
        server_fin.fin_frames.append_to(&mut fin_frames);
        fin_frames.sort_unstable();
        let first_fin = closing.first_fin_by.and_then(|s| closing.side(s).fin_first);
        CloseRecord {
            kind,
            active_closer,
            first_fin_frame: first_fin.map(FrameAt::frame),
            first_fin_at: first_fin.map(FrameAt::at),
            fin_frames,
            fin_retransmits: client_fin.fin_count.saturating_sub(1)
                + server_fin.fin_count.saturating_sub(1),
            rst_frame: rst.map(|r| r.frame),
            rst_by: rst.map(|r| r.by),
            rst_sender_state: rst.map(|r| r.sender_state),
            idle_before_fin_s: closing.idle_before_first_fin,
            client_state: client.state(),
            server_state: server.state(),
            data_after_close: self.data_after_close(),
            closer_acked_peer_fin: closing.first_fin_by.is_some_and(|s| {
                let rst = self.rst_of(s);
                closing
                    .side(s)
                    .acked_peer_fin
                    .is_some_and(|a| rst.is_none_or(|r| a.frame() < r.frame()))
            }),
        }
    }

    /// Who holds the TIME_WAIT socket, from when to when. The active closer
    /// enters TIME_WAIT when it acknowledges the peer's FIN after its own
    /// (`tcp_fin` in FIN_WAIT2, `tcp_time_wait`); in a simultaneous close
    /// each side does once its own FIN is acknowledged (CLOSING →
    /// TIME_WAIT in `tcp_rcv_state_process`). A holder that sent an RST
    /// after its own FIN had no such socket (it was gone, or never made),
    /// and a side in CLOSING reset by its peer never got there. The socket
    /// lives `time_wait_secs` (TCP_TIMEWAIT_LEN, 60 s on Linux).
    pub(super) fn time_wait_record(&self, kind: CloseKind, time_wait_secs: f64) -> TimeWaitRecord {
        // Without a FIN no close of either kind.
        let Some(closing) = self.closing() else {
            return TimeWaitRecord::none();
        };
        // TIME_WAIT: the active closer (both, in a simultaneous close), unless
        // that side later sent an RST: its socket was gone (or never made).
        let holders: SmallVec<[Side; 2]> = match kind {
            CloseKind::Fin => closing.first_fin_by.into_iter().collect(),
            CloseKind::Simultaneous => SmallVec::from_buf([Side::Client, Side::Server]),
            _ => SmallVec::new(),
        }
        .into_iter()
        .filter(|s| {
            let t = closing.side(*s);
            let no_rst_after_own_fin = match (self.rst_of(*s), t.fin_first) {
                (Some(rst), Some(fin)) => rst.frame() < fin.frame(),
                _ => true,
            };
            // In a simultaneous close a side enters TIME_WAIT only when its
            // own FIN is acknowledged (CLOSING → TIME_WAIT); an RST from the
            // peer before that resets it in CLOSING (tcp_validate_incoming
            // → tcp_reset): no TIME_WAIT.
            let reset_in_closing = kind == CloseKind::Simultaneous
                && self
                    .rst_of(s.peer())
                    .is_some_and(|pr| t.fin_acked.is_none_or(|acked| pr.frame() < acked.frame()));
            no_rst_after_own_fin && !reset_in_closing
        })
        .collect();
        match holders.as_slice() {
            [] => TimeWaitRecord::none(),
            sides => {
                // It starts when the holder acknowledges the peer's FIN (it
                // then enters TIME_WAIT); if that ACK was not captured, at
                // the peer's FIN.
                let from = sides
                    .iter()
                    .filter_map(|s| {
                        closing
                            .side(*s)
                            .acked_peer_fin
                            .or(closing.side(s.peer()).fin_first)
                            .map(FrameAt::at)
                    })
                    .max()
                    .unwrap_or(self.last_ts);
                TimeWaitRecord {
                    holder: if sides.len() == 2 {
                        Closer::Both
                    } else {
                        sides[0].into()
                    },
                    from: Some(from),
                    until: Some(from.add_secs(time_wait_secs)),
                    reused_by: None,
                }
            }
        }
    }
}
