//! The compact record a connection becomes when retired: what reports and
//! detectors read, and the `connections[]` entries of the JSON contract
//! (docs/json.md), so its fields change only with the contract.

use super::connection::*;
use super::state::TcpState;
use crate::flow::{Endpoint, Side};
use crate::seq::TsVal;
use crate::time::Timestamp;
use serde::Serialize;

/// The handshake part of a [`ConnectionRecord`].
#[derive(Debug, Clone, Serialize)]
pub struct HandshakeRecord {
    pub state: HandshakeState,
    /// Frames of the client's SYNs (first ones, at most 8).
    #[serde(serialize_with = "crate::frame::serialize_local_list")]
    pub syn_frames: Frames,
    /// SYNs after the first.
    pub syn_retransmits: u32,
    #[serde(serialize_with = "crate::frame::serialize_local_opt")]
    pub synack_frame: Option<u64>,
    /// The client's ACK completing the handshake.
    #[serde(serialize_with = "crate::frame::serialize_local_opt")]
    pub ack_frame: Option<u64>,
    /// A bare ACK that answered the SYN instead of a SYN-ACK.
    #[serde(serialize_with = "crate::frame::serialize_local_opt")]
    pub challenge_ack_frame: Option<u64>,
    /// The RST that refused the SYN.
    #[serde(serialize_with = "crate::frame::serialize_local_opt")]
    pub rst_frame: Option<u64>,
    /// An RST that ended an earlier attempt before the handshake succeeded
    /// (the client resetting after a challenge ACK).
    #[serde(serialize_with = "crate::frame::serialize_local_opt")]
    pub attempt_rst_frame: Option<u64>,
    /// First SYN to the handshake's ACK, as seen at the capture point.
    pub rtt_ms: Option<f64>,
    /// Seconds from the first SYN to the SYN-ACK: how long connect() took,
    /// retransmissions included.
    pub connect_s: Option<f64>,
    /// Which side looks closer to the capture point (its leg of the
    /// handshake is shorter); "sent first" is judged there.
    pub capture_near: Option<Side>,
    /// The client acknowledged a SYN-ACK that is not in the capture (one
    /// direction captured, or the frame lost): the handshake completed.
    pub synack_unseen: bool,

    /// The capture ended before this handshake could show its outcome: no
    /// answer to the SYNs, and the last SYN was sent less than its
    /// retransmission timeout before the capture's last packet (1 s after
    /// the first SYN; after a retry, twice the sender's gap between its
    /// last two SYNs: see [`Connection::cut_by_capture_end`]). Neither the
    /// answer nor the next retransmission could be in the file yet, so
    /// "not answered" is no failure (yet).
    pub cut_by_capture_end: bool,
}

/// The teardown part of a [`ConnectionRecord`].
#[derive(Debug, Clone, Serialize)]
pub struct CloseRecord {
    pub kind: CloseKind,
    pub active_closer: Closer,
    #[serde(serialize_with = "crate::frame::serialize_local_opt")]
    pub first_fin_frame: Option<u64>,
    pub first_fin_at: Option<Timestamp>,
    /// FIN frames of both sides (at most 8 per side).
    #[serde(serialize_with = "crate::frame::serialize_local_list")]
    pub fin_frames: Frames,
    /// FINs sent again with the same sequence number.
    pub fin_retransmits: u32,
    #[serde(serialize_with = "crate::frame::serialize_local_opt")]
    pub rst_frame: Option<u64>,
    pub rst_by: Option<Side>,
    /// State of the RST's sender just before it.
    pub rst_sender_state: Option<TcpState>,
    /// Seconds from the last data (either way) to the first FIN: how long
    /// the active closer let the connection sit idle before closing it.
    /// Without data, from the handshake; null when neither is in the
    /// capture (it began after them): the idle time is not known.
    pub idle_before_fin_s: Option<f64>,
    /// Each side's state at the end of the capture.
    pub client_state: TcpState,
    pub server_state: TcpState,
    /// The active closer acknowledged the peer's FIN before any RST of its
    /// own: its kernel entered TIME_WAIT then (tcp_time_wait), whatever
    /// came later. Not in the JSON (`time_wait.holder` is).
    #[serde(skip)]
    pub closer_acked_peer_fin: bool,
    /// The frame of the peer's data that came behind the closer's FIN
    /// before the closer's first RST ([`super::Connection::data_after_close`]).
    /// Not in the JSON.
    #[serde(skip)]
    pub data_after_close: Option<u64>,
}

/// Who holds the TIME_WAIT socket, and for how long.
#[derive(Debug, Clone, Serialize)]
pub struct TimeWaitRecord {
    pub holder: Closer,
    pub from: Option<Timestamp>,
    /// End of the interval: `from` + `--time-wait`, or earlier when a new
    /// connection took the 4-tuple over (`reused_by`).
    pub until: Option<Timestamp>,
    /// The connection that reused this 4-tuple while it was in TIME_WAIT.
    pub reused_by: Option<ConnId>,
}

impl TimeWaitRecord {
    pub(super) fn none() -> TimeWaitRecord {
        TimeWaitRecord {
            holder: Closer::None,
            from: None,
            until: None,
            reused_by: None,
        }
    }
}

/// Traffic one way.
#[derive(Debug, Clone, Serialize)]
pub struct DirectionRecord {
    pub packets: u64,
    /// Payload bytes (as declared by the IP header).
    pub bytes: u64,
    /// This side sent the TCP timestamp option (RFC 7323).
    pub timestamps: bool,
    /// TSval of this side's first and last segment with timestamps.
    pub first_tsval: Option<TsVal>,
    pub last_tsval: Option<TsVal>,
    /// Frames that were a copy of one just before (captured twice), left
    /// out of `packets`, `bytes` and every retransmission count.
    pub duplicates: u32,
}

impl From<&SideTrack> for DirectionRecord {
    fn from(s: &SideTrack) -> DirectionRecord {
        DirectionRecord {
            packets: s.packets,
            bytes: s.bytes,
            timestamps: s.first_tsval().is_some(),
            first_tsval: s.first_tsval(),
            last_tsval: s.last_tsval,
            duplicates: s.duplicates,
        }
    }
}

/// A connection once retired: what the reports and detectors read. Its
/// fields are the `connections[]` entries of the JSON contract.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionRecord {
    pub id: ConnId,
    /// Index into `captures[]` of the file where the connection started.
    pub capture: u32,
    pub client: Endpoint,
    pub server: Endpoint,
    /// Roles guessed from ports (no SYN or SYN-ACK seen).
    pub role_inferred: bool,
    pub roles_from: RoleSource,
    #[serde(serialize_with = "crate::frame::serialize_local")]
    pub first_frame: u64,
    #[serde(serialize_with = "crate::frame::serialize_local")]
    pub last_frame: u64,
    pub start: Timestamp,
    pub end: Timestamp,
    pub duration_s: f64,
    pub handshake: HandshakeRecord,
    pub close: CloseRecord,
    pub time_wait: TimeWaitRecord,
    pub client_to_server: DirectionRecord,
    pub server_to_client: DirectionRecord,
    /// Zeek-style: S syn, H syn-ack, A ack, D data, F fin, R rst,
    /// T retransmitted SYN/FIN, C challenge ACK; upper case = client.
    pub history: History,
    /// Only one direction is in the capture although the other one sent
    /// (the client acknowledged something, or the server sent at all): a
    /// capture of one direction, as on an asymmetric route or a tap on one
    /// fibre.
    pub one_way: bool,
    /// Segments the receiver's kernel would drop with no effect (an RST
    /// outside the receive window, a SYN+FIN probe, a segment without
    /// ACK): how many, and the first frames (at most 8).
    pub ignored: u32,
    #[serde(serialize_with = "crate::frame::serialize_local_list")]
    pub ignored_frames: Frames,
}

impl ConnectionRecord {
    /// Whether `side` really entered TIME_WAIT on this connection: it is
    /// the holder (or one of both after a simultaneous close). Not for a
    /// connection that ended by RST, nor for a closer that reset after its
    /// FIN (its socket was gone), nor one still open at the capture's end.
    pub fn time_wait_on(&self, side: Side) -> bool {
        match self.time_wait.holder {
            Closer::Both => true,
            Closer::None => false,
            holder => holder == Closer::from(side),
        }
    }

    pub fn endpoint(&self, side: Side) -> Endpoint {
        match side {
            Side::Client => self.client,
            Side::Server => self.server,
        }
    }
}
