//! The TCP connection states of RFC 9293 §3.3.2, as an observer at one point
//! of the path can reconstruct them for each side.
//!
//! Heads up: read RFC 9293 §3.5-3.6 (establishing and closing a connection)
//! and RFC 1337 before changing the transitions. The capture sees a segment
//! once, at the capture point; "sent" and "received" are both judged there.

use serde::Serialize;
use std::fmt;

/// The state one side of a connection is in, as far as the capture shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TcpState {
    /// Nothing seen from or for this side yet.
    Closed,
    /// A server waiting for a SYN (implied for the side that answers one).
    Listen,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    /// Both sides sent FIN before seeing the other's (simultaneous close).
    Closing,
    LastAck,
    TimeWait,
}

impl fmt::Display for TcpState {
    /// The spelling of `ss` and the Linux kernel (`TIME_WAIT`, `FIN_WAIT_2`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TcpState::Closed => "CLOSED",
            TcpState::Listen => "LISTEN",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynReceived => "SYN_RECV",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait1 => "FIN_WAIT_1",
            TcpState::FinWait2 => "FIN_WAIT_2",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::Closing => "CLOSING",
            TcpState::LastAck => "LAST_ACK",
            TcpState::TimeWait => "TIME_WAIT",
        })
    }
}

/// What a segment means for one side, from that side's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// This side sent a SYN without ACK.
    SendSyn,
    /// This side sent a SYN-ACK.
    SendSynAck,
    /// This side received a SYN-ACK.
    RecvSynAck,
    /// This side sent an ACK that completes the handshake.
    SendHandshakeAck,
    /// This side received the ACK of its SYN-ACK.
    RecvHandshakeAck,
    /// This side sent its FIN.
    SendFin,
    /// This side received the peer's FIN; `acks_ours` when it also
    /// acknowledges this side's own FIN.
    RecvFin { acks_ours: bool },
    /// This side received the ACK of its FIN.
    RecvFinAck,
    /// An RST was sent or received: the connection is gone for this side.
    Reset,
}

impl TcpState {
    /// The state after `event`. Pairs that make no sense for the state
    /// leave it unchanged: a retransmission or a segment out of order does
    /// not move a side backwards.
    pub fn on(self, event: Event) -> TcpState {
        use Event::*;
        use TcpState::*;
        match (self, event) {
            // RST ends the connection in every state (RFC 9293 §3.10.7.4).
            (_, Reset) => Closed,
            // Active open: SYN sent (§3.5, figure 6).
            (Closed | Listen | SynSent, SendSyn) => SynSent,
            // Passive open: a SYN-ACK sent from LISTEN; also the simultaneous
            // open, where a SYN_SENT side answers the peer's SYN.
            (Closed | Listen | SynSent | SynReceived, SendSynAck) => SynReceived,
            // The client's ACK of the SYN-ACK establishes its side.
            (SynSent | Closed, RecvSynAck) => SynSent,
            (SynSent | SynReceived | Closed, SendHandshakeAck) => Established,
            (SynReceived, RecvHandshakeAck) => Established,
            // Active close (§3.6): ESTABLISHED -> FIN_WAIT_1.
            (Established | SynReceived | SynSent | Closed, SendFin) => FinWait1,
            // Passive close: CLOSE_WAIT -> LAST_ACK when this side's FIN goes.
            (CloseWait, SendFin) => LastAck,
            // Our FIN acknowledged.
            (FinWait1, RecvFinAck) => FinWait2,
            (Closing, RecvFinAck) => TimeWait,
            (LastAck, RecvFinAck) => Closed,
            // The peer's FIN.
            (FinWait1, RecvFin { acks_ours: true }) => TimeWait,
            (FinWait1, RecvFin { acks_ours: false }) => Closing,
            (FinWait2, RecvFin { .. }) => TimeWait,
            (Established | SynReceived | SynSent | Closed, RecvFin { .. }) => CloseWait,
            // Anything else: a retransmission or reordering; stay.
            (state, _) => state,
        }
    }

    /// The states in which this side has sent its FIN.
    pub fn has_sent_fin(self) -> bool {
        matches!(
            self,
            TcpState::FinWait1
                | TcpState::FinWait2
                | TcpState::Closing
                | TcpState::LastAck
                | TcpState::TimeWait
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Event::*;
    use super::TcpState::*;
    use super::*;

    fn run(start: TcpState, events: &[Event]) -> TcpState {
        events.iter().fold(start, |s, e| s.on(*e))
    }

    #[test]
    fn client_handshake_establishes() {
        assert_eq!(
            run(Closed, &[SendSyn, RecvSynAck, SendHandshakeAck]),
            Established
        );
    }

    #[test]
    fn server_handshake_establishes() {
        assert_eq!(run(Listen, &[SendSynAck, RecvHandshakeAck]), Established);
    }

    #[test]
    fn active_closer_ends_in_time_wait() {
        let s = run(
            Established,
            &[SendFin, RecvFinAck, RecvFin { acks_ours: true }],
        );
        assert_eq!(s, TimeWait);
    }

    #[test]
    fn fin_wait_1_fin_that_acks_ours_enters_time_wait() {
        assert_eq!(run(FinWait1, &[RecvFin { acks_ours: true }]), TimeWait);
    }

    #[test]
    fn passive_closer_goes_close_wait_last_ack_closed() {
        assert_eq!(run(Established, &[RecvFin { acks_ours: false }]), CloseWait);
        assert_eq!(run(CloseWait, &[SendFin]), LastAck);
        assert_eq!(run(LastAck, &[RecvFinAck]), Closed);
    }

    #[test]
    fn simultaneous_close_goes_through_closing() {
        let s = run(Established, &[SendFin, RecvFin { acks_ours: false }]);
        assert_eq!(s, Closing);
        assert_eq!(s.on(RecvFinAck), TimeWait);
    }

    #[test]
    fn retransmitted_fin_in_last_ack_stays() {
        assert_eq!(LastAck.on(SendFin), LastAck);
        assert_eq!(FinWait2.on(SendFin), FinWait2);
    }

    #[test]
    fn reset_closes_every_state() {
        for s in [SynSent, Established, FinWait2, LastAck, TimeWait] {
            assert_eq!(s.on(Reset), Closed);
        }
    }

    #[test]
    fn states_print_like_ss() {
        assert_eq!(TimeWait.to_string(), "TIME_WAIT");
        assert_eq!(FinWait2.to_string(), "FIN_WAIT_2");
        assert_eq!(LastAck.to_string(), "LAST_ACK");
    }
}
