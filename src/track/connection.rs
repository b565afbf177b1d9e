//! One connection (one incarnation of a 4-tuple): the live state the
//! tracker updates per segment, and the compact [`ConnectionRecord`] it
//! becomes when retired.
//!
//! Heads up: RFC 9293 §3.5-3.6 (handshake, close), RFC 7323 (timestamps),
//! and DESIGN.md §3 (active closer, TIME_WAIT holder, simultaneous close).

use super::state::{Event, TcpState};
use crate::decode::Segment;
use crate::flow::{Endpoint, Side};
use crate::seq::{SeqNum, TsVal};
use crate::time::Timestamp;
use arrayvec::ArrayString;
use serde::Serialize;
use smallvec::SmallVec;

/// Connection id: 0-based in order of first packet, equal to Wireshark's
/// `tcp.stream` on our fixtures.
pub type ConnId = u32;

/// At most this many frame numbers are kept per list (SYNs, FINs), so a
/// SYN flood on one tuple cannot grow memory; counters keep counting.
pub const MAX_FRAMES_KEPT: usize = 8;

/// Frame numbers of SYNs or FINs: nearly always one or two, kept inline so
/// that a connection costs no allocation for them (the tracker's hot path
/// allocated five times per connection before).
pub type Frames = SmallVec<[u64; 2]>;

/// The Zeek-style history string, at most [`HISTORY_MAX`] letters, inline.
pub type History = ArrayString<HISTORY_MAX>;

/// Letters kept in a history.
pub const HISTORY_MAX: usize = 24;

/// The handshake legs must differ by this much (and fourfold) before one
/// side is called closer to the capture point.
const CAPTURE_SIDE_MIN_GAP_S: f64 = 0.001;

/// How the client/server roles were decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleSource {
    /// The client sent the first SYN we saw.
    Syn,
    /// No SYN, but the server's SYN-ACK.
    SynAck,
    /// Capture started mid-connection: the lower (or privileged) port is
    /// taken as the server.
    Ports,
}

/// How far the three-way handshake got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HandshakeState {
    /// SYN, SYN-ACK and the client's ACK.
    Complete,
    /// SYN and SYN-ACK, but the client's ACK was not seen.
    SynAckOnly,
    /// SYN(s) with no answer.
    SynOnly,
    /// The SYN was answered by RST: nothing listens (connection refused).
    Refused,
    /// The SYN was answered by a bare ACK: the server holds a socket for
    /// this 4-tuple (TIME_WAIT with PAWS, or a stale connection).
    Challenged,
    /// The capture started after the handshake.
    NotCaptured,
}

/// How the connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseKind {
    /// FIN from each side, one after the other.
    Fin,
    /// Both FINs in flight at once: both sides hold TIME_WAIT.
    Simultaneous,
    /// An RST before the FIN exchange finished: no TIME_WAIT.
    Rst,
    /// Still open (or half-closed) when the capture ended.
    Open,
}

/// Who closed first (sent the first FIN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Closer {
    Client,
    Server,
    Both,
    None,
}

impl From<Side> for Closer {
    fn from(s: Side) -> Closer {
        match s {
            Side::Client => Closer::Client,
            Side::Server => Closer::Server,
        }
    }
}

/// What one side sent, and its reconstructed state.
#[derive(Debug, Clone, Default)]
pub struct SideTrack {
    pub state: Option<TcpState>,
    /// Sequence number of this side's SYN.
    pub isn: Option<SeqNum>,
    /// First sequence number seen from this side (Wireshark's base_seq).
    pub base_seq: Option<SeqNum>,
    /// One past the highest sequence number this side has sent.
    pub next_seq: Option<SeqNum>,
    /// Sequence number of this side's FIN.
    pub fin_seq: Option<SeqNum>,
    pub fin_first: Option<(u64, Timestamp)>,
    pub fin_frames: Frames,
    pub fin_count: u32,
    /// When the peer acknowledged this side's FIN.
    pub fin_acked: Option<(u64, Timestamp)>,
    /// When this side first acknowledged the peer's FIN.
    pub acked_peer_fin: Option<(u64, Timestamp)>,
    pub packets: u64,
    pub bytes: u64,
    pub last_data: Option<(u64, Timestamp)>,
    pub first_tsval: Option<TsVal>,
    pub last_tsval: Option<TsVal>,
    pub rst: Option<(u64, Timestamp)>,
}

impl SideTrack {
    pub fn state(&self) -> TcpState {
        self.state.unwrap_or(TcpState::Closed)
    }
}

/// The handshake as seen.
#[derive(Debug, Clone, Default)]
pub struct Handshake {
    pub syn_frames: Frames,
    pub syn_count: u32,
    pub first_syn: Option<Timestamp>,
    pub last_syn: Option<Timestamp>,
    pub synack: Option<(u64, Timestamp)>,
    pub synack_count: u32,
    pub ack: Option<(u64, Timestamp)>,
    pub refused: Option<u64>,
    pub challenge_ack: Option<u64>,
    /// An RST that ended an earlier attempt of this handshake (before the
    /// SYN-ACK that opened the connection), and who sent it.
    pub attempt_rst: Option<(u64, Side)>,
}

/// The live state of one connection.
#[derive(Debug, Clone)]
pub struct Connection {
    pub id: ConnId,
    pub capture: u32,
    pub client: Endpoint,
    pub server: Endpoint,
    pub roles: RoleSource,
    pub first_frame: u64,
    pub last_frame: u64,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    /// Indexed by [`Side::index`].
    pub sides: [SideTrack; 2],
    pub handshake: Handshake,
    /// Zeek-style history: upper case for the client, lower for the server.
    pub history: History,
    /// Side whose FIN was seen first.
    pub first_fin_by: Option<Side>,
    /// The second FIN did not acknowledge the first: both were in flight.
    pub simultaneous: bool,
    pub first_rst: Option<(u64, Timestamp, Side, TcpState)>,
    /// Time of the last segment with payload, either direction.
    pub last_data: Option<Timestamp>,
    /// Seconds from the last data to the first FIN (0 when the FIN carries
    /// data): how long the closer let the connection sit idle.
    pub idle_before_first_fin: Option<f64>,
}

/// What one segment was, for detectors and the ladder diagram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SegmentNotes {
    pub syn_retransmit: bool,
    pub fin_retransmit: bool,
    /// A bare ACK answering a SYN (challenge ACK).
    pub challenge_ack: bool,
    /// An RST answering a SYN (refused).
    pub refused: bool,
}

impl Connection {
    pub fn new(id: ConnId, capture: u32, seg: &Segment) -> Connection {
        let (client, server, roles) = if seg.flags.syn() && !seg.flags.ack() {
            (seg.src, seg.dst, RoleSource::Syn)
        } else if seg.flags.syn() {
            (seg.dst, seg.src, RoleSource::SynAck)
        } else if server_by_port(seg.src, seg.dst) {
            (seg.src, seg.dst, RoleSource::Ports)
        } else {
            (seg.dst, seg.src, RoleSource::Ports)
        };
        Connection {
            id,
            capture,
            client,
            server,
            roles,
            first_frame: seg.frame,
            last_frame: seg.frame,
            first_ts: seg.ts,
            last_ts: seg.ts,
            sides: [SideTrack::default(), SideTrack::default()],
            handshake: Handshake::default(),
            history: History::new(),
            first_fin_by: None,
            simultaneous: false,
            first_rst: None,
            last_data: None,
            idle_before_first_fin: None,
        }
    }

    pub fn side_of(&self, sender: Endpoint) -> Side {
        if sender == self.client {
            Side::Client
        } else {
            Side::Server
        }
    }

    pub fn side(&self, s: Side) -> &SideTrack {
        &self.sides[s.index()]
    }

    /// Whether this segment opens a new incarnation of the 4-tuple rather
    /// than belonging to this one. Wireshark 4.0's rule, so that ids agree
    /// with `tcp.stream` (checked with tshark on crafted captures): a SYN
    /// without ACK whose sequence number differs from the first one seen in
    /// its direction (SYN or not) starts a new conversation; the same ISN
    /// again is a retransmission, even after FIN or RST; a SYN-ACK never
    /// splits a conversation.
    pub fn is_new_incarnation(&self, seg: &Segment) -> bool {
        if !seg.flags.syn() || seg.flags.ack() {
            return false;
        }
        let sender = self.side(self.side_of(seg.src));
        match sender.base_seq {
            Some(base) => base != seg.seq,
            None => false,
        }
    }

    /// Applies one segment; returns what it was.
    pub fn update(&mut self, seg: &Segment) -> SegmentNotes {
        let from = self.side_of(seg.src);
        let to = from.peer();
        let f = seg.flags;
        let mut notes = SegmentNotes::default();
        self.last_frame = seg.frame;
        self.last_ts = seg.ts;

        // Per-side bookkeeping of what was sent.
        {
            let s = &mut self.sides[from.index()];
            s.packets += 1;
            s.bytes += u64::from(seg.payload_len);
            if s.base_seq.is_none() {
                s.base_seq = Some(if f.syn() {
                    seg.seq
                } else {
                    seg.seq.plus(u32::MAX)
                });
            }
            let end = seg.seq.plus(seg.seq_len());
            if s.next_seq.is_none_or(|n| end.after(n)) {
                s.next_seq = Some(end);
            }
            if seg.payload_len > 0 {
                s.last_data = Some((seg.frame, seg.ts));
            }
            if let Some(t) = seg.tsopt {
                s.first_tsval.get_or_insert(t.tsval);
                s.last_tsval = Some(t.tsval);
            }
        }

        if f.rst() {
            self.on_rst(seg, from, &mut notes);
        } else if f.syn() {
            self.on_syn(seg, from, &mut notes);
        } else if f.ack() {
            self.on_ack(seg, from, &mut notes);
        }
        if f.fin() && !f.rst() {
            self.on_fin(seg, from, to, &mut notes);
        }
        self.record_history(seg, from, &notes);
        if seg.payload_len > 0 {
            self.last_data = Some(seg.ts);
        }
        notes
    }

    fn set_state(&mut self, side: Side, event: Event) {
        let s = &mut self.sides[side.index()];
        s.state = Some(s.state().on(event));
    }

    fn on_syn(&mut self, seg: &Segment, from: Side, notes: &mut SegmentNotes) {
        if !seg.flags.ack() {
            let h = &mut self.handshake;
            h.syn_count += 1;
            if h.syn_frames.len() < MAX_FRAMES_KEPT {
                h.syn_frames.push(seg.frame);
            }
            h.first_syn.get_or_insert(seg.ts);
            h.last_syn = Some(seg.ts);
            notes.syn_retransmit = h.syn_count > 1;
            self.sides[from.index()].isn.get_or_insert(seg.seq);
            self.set_state(from, Event::SendSyn);
            if self.sides[from.peer().index()].state.is_none() {
                self.sides[from.peer().index()].state = Some(TcpState::Listen);
            }
        } else {
            // An RST before the first SYN-ACK ended only an attempt (the
            // client's answer to a challenge ACK, say): the connection goes
            // on, so that RST is not how it ends.
            if self.handshake.synack.is_none()
                && let Some((frame, _, by, _)) = self.first_rst.take()
            {
                self.handshake.attempt_rst.get_or_insert((frame, by));
                for side in &mut self.sides {
                    side.rst = None;
                }
            }
            let h = &mut self.handshake;
            h.synack_count += 1;
            h.synack.get_or_insert((seg.frame, seg.ts));
            self.sides[from.index()].isn.get_or_insert(seg.seq);
            self.set_state(from, Event::SendSynAck);
            self.set_state(from.peer(), Event::RecvSynAck);
        }
    }

    fn on_ack(&mut self, seg: &Segment, from: Side, notes: &mut SegmentNotes) {
        let peer = from.peer();
        let peer_isn = self.side(peer).isn;
        let h = &self.handshake;
        // The client's ACK of the SYN-ACK completes the handshake.
        if from == Side::Client
            && h.ack.is_none()
            && h.synack.is_some()
            && let Some(isn) = peer_isn
            && seg.ack.after(isn)
        {
            self.handshake.ack = Some((seg.frame, seg.ts));
            self.set_state(from, Event::SendHandshakeAck);
            self.set_state(peer, Event::RecvHandshakeAck);
        }
        // A bare ACK from the server while the client waits in SYN_SENT:
        // the server has a socket for this tuple and challenges the SYN
        // (RFC 5961 §4, or PAWS on a TIME_WAIT socket).
        if from == Side::Server
            && self.handshake.synack.is_none()
            && self.handshake.syn_count > 0
            && self.side(Side::Client).state() == TcpState::SynSent
            && seg.payload_len == 0
            && !seg.flags.fin()
        {
            notes.challenge_ack = true;
            self.handshake.challenge_ack.get_or_insert(seg.frame);
        }
        // ACK of the peer's FIN.
        if let Some(peer_fin) = self.side(peer).fin_seq
            && !seg.ack.before(peer_fin.plus(1))
        {
            let s = &mut self.sides[from.index()];
            if s.acked_peer_fin.is_none() {
                s.acked_peer_fin = Some((seg.frame, seg.ts));
            }
            let p = &mut self.sides[peer.index()];
            if p.fin_acked.is_none() {
                p.fin_acked = Some((seg.frame, seg.ts));
                self.set_state(peer, Event::RecvFinAck);
            }
        }
    }

    fn on_fin(&mut self, seg: &Segment, from: Side, to: Side, notes: &mut SegmentNotes) {
        let fin_seq = seg.fin_seq();
        let s = &mut self.sides[from.index()];
        s.fin_count += 1;
        if s.fin_frames.len() < MAX_FRAMES_KEPT {
            s.fin_frames.push(seg.frame);
        }
        match s.fin_seq {
            Some(prev) if prev == fin_seq => notes.fin_retransmit = true,
            Some(_) => {}
            None => {
                s.fin_seq = Some(fin_seq);
                s.fin_first = Some((seg.frame, seg.ts));
            }
        }
        if notes.fin_retransmit {
            return;
        }
        // Does this FIN acknowledge the peer's FIN?
        let peer_fin = self.side(to).fin_seq;
        let acks_peer = match peer_fin {
            Some(pf) => seg.flags.ack() && !seg.ack.before(pf.plus(1)),
            None => false,
        };
        match self.first_fin_by {
            None => {
                self.first_fin_by = Some(from);
                self.idle_before_first_fin = Some(if seg.payload_len > 0 {
                    0.0
                } else {
                    self.last_data.map_or(0.0, |d| seg.ts.secs_since(d))
                });
            }
            Some(first) if first != from && !acks_peer => {
                // This side sent its FIN before the peer's had reached it:
                // both FINs are in flight, each side goes through CLOSING.
                self.simultaneous = true;
                self.sides[from.index()].state = Some(TcpState::Closing);
                self.set_state(to, Event::RecvFin { acks_ours: false });
                return;
            }
            Some(_) => {}
        }
        self.set_state(from, Event::SendFin);
        self.set_state(
            to,
            Event::RecvFin {
                acks_ours: acks_peer,
            },
        );
    }

    fn on_rst(&mut self, seg: &Segment, from: Side, notes: &mut SegmentNotes) {
        let sender_state = self.side(from).state();
        self.sides[from.index()]
            .rst
            .get_or_insert((seg.frame, seg.ts));
        if self.first_rst.is_none() {
            self.first_rst = Some((seg.frame, seg.ts, from, sender_state));
        }
        // An RST answering a SYN before any SYN-ACK: refused.
        if from == Side::Server && self.handshake.synack.is_none() && self.handshake.syn_count > 0 {
            notes.refused = true;
            self.handshake.refused.get_or_insert(seg.frame);
        }
        self.set_state(from, Event::Reset);
        self.set_state(from.peer(), Event::Reset);
    }

    fn record_history(&mut self, seg: &Segment, from: Side, notes: &SegmentNotes) {
        let f = seg.flags;
        let c = if f.rst() {
            'r'
        } else if notes.syn_retransmit || notes.fin_retransmit {
            't'
        } else if f.syn() && f.ack() {
            'h'
        } else if f.syn() {
            's'
        } else if f.fin() {
            'f'
        } else if seg.payload_len > 0 {
            'd'
        } else if notes.challenge_ack {
            'c'
        } else if f.ack() {
            'a'
        } else {
            return;
        };
        let c = if from == Side::Client {
            c.to_ascii_uppercase()
        } else {
            c
        };
        // Each letter once per direction, as Zeek does, so the string stays
        // short; retransmissions and data repeat only after something else.
        let repeat = self.history.ends_with(c)
            || (matches!(c, 'a' | 'A' | 'd' | 'D') && self.history.contains(c));
        if !repeat && !self.history.is_full() {
            self.history.push(c);
        }
    }

    /// Whether the connection can no longer change: both FINs acknowledged,
    /// or reset.
    pub fn is_closed(&self) -> bool {
        self.first_rst.is_some()
            || self
                .sides
                .iter()
                .all(|s| s.fin_seq.is_some() && s.fin_acked.is_some())
    }

    /// The earliest its TIME_WAIT (`finish`'s `from`) can start, once both
    /// sides have sent a FIN: `from` is the holder's ACK of its peer's FIN
    /// or that FIN, both at or after either side's first FIN in a capture
    /// whose time runs forward. None before both FINs: then any TIME_WAIT
    /// starts at a packet still to come.
    pub fn time_wait_lower_bound(&self) -> Option<Timestamp> {
        let [a, b] = &self.sides;
        match (a.fin_first, b.fin_first) {
            (Some((_, x)), Some((_, y))) => Some(x.min(y)),
            _ => None,
        }
    }

    /// Freezes the connection into its record. The frame lists and history
    /// move into the record (the connection is retired after this), so
    /// retiring allocates as little as possible.
    pub fn finish(&mut self, time_wait_secs: f64) -> ConnectionRecord {
        let syn_frames = std::mem::take(&mut self.handshake.syn_frames);
        let h = &self.handshake;
        let handshake_state = if h.synack.is_some() && h.ack.is_some() {
            HandshakeState::Complete
        } else if h.synack.is_some() {
            HandshakeState::SynAckOnly
        } else if h.refused.is_some() {
            HandshakeState::Refused
        } else if h.challenge_ack.is_some() {
            HandshakeState::Challenged
        } else if h.syn_count > 0 {
            HandshakeState::SynOnly
        } else {
            HandshakeState::NotCaptured
        };
        let client = self.side(Side::Client);
        let server = self.side(Side::Server);
        let both_fins = client.fin_seq.is_some() && server.fin_seq.is_some();
        let rst = self.first_rst;
        // An RST counts as the end only if it came before the second FIN.
        let rst_before_fins = match rst {
            Some((frame, ..)) => {
                !both_fins
                    || [client, server]
                        .iter()
                        .any(|s| s.fin_first.is_some_and(|(f, _)| f > frame))
            }
            None => false,
        };
        let kind = if rst_before_fins {
            CloseKind::Rst
        } else if both_fins && self.simultaneous {
            CloseKind::Simultaneous
        } else if both_fins {
            CloseKind::Fin
        } else {
            CloseKind::Open
        };
        let active_closer = match (kind, self.first_fin_by) {
            (CloseKind::Simultaneous, _) => Closer::Both,
            (_, Some(side)) => side.into(),
            (_, None) => Closer::None,
        };
        // TIME_WAIT: the active closer (both, in a simultaneous close), unless
        // that side later sent an RST: its socket was gone (or never made).
        let holders: SmallVec<[Side; 2]> = match kind {
            CloseKind::Fin => self.first_fin_by.into_iter().collect(),
            CloseKind::Simultaneous => SmallVec::from_buf([Side::Client, Side::Server]),
            _ => SmallVec::new(),
        }
        .into_iter()
        .filter(|s| {
            let t = self.side(*s);
            match (t.rst, t.fin_first) {
                (Some((rf, _)), Some((ff, _))) => rf < ff,
                _ => true,
            }
        })
        .collect();
        let time_wait = match holders.as_slice() {
            [] => TimeWaitRecord::none(),
            sides => {
                // It starts when the holder acknowledges the peer's FIN (it
                // then enters TIME_WAIT); if that ACK was not captured, at
                // the peer's FIN.
                let from = sides
                    .iter()
                    .filter_map(|s| {
                        let t = self.side(*s);
                        t.acked_peer_fin
                            .map(|(_, ts)| ts)
                            .or(self.side(s.peer()).fin_first.map(|(_, ts)| ts))
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
        };
        let mut fin_frames: Frames = client
            .fin_frames
            .iter()
            .chain(server.fin_frames.iter())
            .copied()
            .collect();
        fin_frames.sort_unstable();
        let rtt_ms = match (h.first_syn, h.ack) {
            (Some(syn), Some((_, ack))) => Some(ack.secs_since(syn) * 1000.0),
            _ => None,
        };
        let capture_near = match (h.last_syn, h.synack, h.ack) {
            // Only a clear difference says something: on a LAN both legs
            // are tens of microseconds and the kernels' own processing time
            // decides which is shorter.
            (Some(syn), Some((_, sa)), Some((_, ack))) => {
                let server_leg = sa.secs_since(syn);
                let client_leg = ack.secs_since(sa);
                let (near, short, long) = if server_leg <= client_leg {
                    (Side::Server, server_leg, client_leg)
                } else {
                    (Side::Client, client_leg, server_leg)
                };
                (long - short >= CAPTURE_SIDE_MIN_GAP_S && long >= 4.0 * short).then_some(near)
            }
            _ => None,
        };
        ConnectionRecord {
            id: self.id,
            capture: self.capture,
            client: self.client,
            server: self.server,
            role_inferred: self.roles == RoleSource::Ports,
            roles_from: self.roles,
            first_frame: self.first_frame,
            last_frame: self.last_frame,
            start: self.first_ts,
            end: self.last_ts,
            duration_s: self.last_ts.secs_since(self.first_ts),
            handshake: HandshakeRecord {
                state: handshake_state,
                syn_frames,
                syn_retransmits: h.syn_count.saturating_sub(1),
                synack_frame: h.synack.map(|(f, _)| f),
                ack_frame: h.ack.map(|(f, _)| f),
                challenge_ack_frame: h.challenge_ack,
                rst_frame: h.refused,
                attempt_rst_frame: h.attempt_rst.map(|(f, _)| f),
                rtt_ms,
                connect_s: match (h.first_syn, h.synack) {
                    (Some(syn), Some((_, sa))) => Some(sa.secs_since(syn)),
                    _ => None,
                },
                capture_near,
            },
            close: CloseRecord {
                kind,
                active_closer,
                first_fin_frame: self
                    .first_fin_by
                    .and_then(|s| self.side(s).fin_first.map(|(f, _)| f)),
                first_fin_at: self
                    .first_fin_by
                    .and_then(|s| self.side(s).fin_first.map(|(_, t)| t)),
                fin_frames,
                fin_retransmits: client.fin_count.saturating_sub(1)
                    + server.fin_count.saturating_sub(1),
                rst_frame: rst.map(|r| r.0),
                rst_by: rst.map(|r| r.2),
                rst_sender_state: rst.map(|r| r.3),
                idle_before_fin_s: self.idle_before_first_fin,
                client_state: client.state(),
                server_state: server.state(),
            },
            time_wait,
            client_to_server: DirectionRecord::from(client),
            server_to_client: DirectionRecord::from(server),
            history: std::mem::take(&mut self.history),
        }
    }
}

/// Ports decide the server when no SYN was seen: a privileged port, else the
/// lower one. True when `dst` looks like the server.
fn server_by_port(src: Endpoint, dst: Endpoint) -> bool {
    match (src.port() < 1024, dst.port() < 1024) {
        (false, true) => true,
        (true, false) => false,
        _ => dst.port() <= src.port(),
    }
}

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
    pub idle_before_fin_s: Option<f64>,
    /// Each side's state at the end of the capture.
    pub client_state: TcpState,
    pub server_state: TcpState,
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
    fn none() -> TimeWaitRecord {
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
}

impl From<&SideTrack> for DirectionRecord {
    fn from(s: &SideTrack) -> DirectionRecord {
        DirectionRecord {
            packets: s.packets,
            bytes: s.bytes,
            timestamps: s.first_tsval.is_some(),
            first_tsval: s.first_tsval,
            last_tsval: s.last_tsval,
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
}

impl ConnectionRecord {
    pub fn endpoint(&self, side: Side) -> Endpoint {
        match side {
            Side::Client => self.client,
            Side::Server => self.server,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::decode::{TcpFlags, TcpFlags as F};

    pub const C: &str = "10.0.0.1:40000";
    pub const S: &str = "10.0.0.2:80";

    /// A segment from `from` to `to` at `frame` (time = frame ms).
    pub fn seg(
        frame: u64,
        from: &str,
        to: &str,
        flags: u8,
        seq: u32,
        ack: u32,
        len: u32,
    ) -> Segment {
        Segment {
            frame,
            ts: Timestamp::from_parts(1000, frame as i64 * 1_000_000),
            fragmentation: Default::default(),
            src: Endpoint(from.parse().unwrap()),
            dst: Endpoint(to.parse().unwrap()),
            seq: SeqNum(seq),
            ack: SeqNum(ack),
            flags: TcpFlags(flags),
            window: 1000,
            payload_len: len,
            tsopt: None,
        }
    }

    fn run(segs: &[Segment]) -> Connection {
        let mut c = Connection::new(0, 0, &segs[0]);
        for s in segs {
            c.update(s);
        }
        c
    }

    fn handshake() -> Vec<Segment> {
        vec![
            seg(1, C, S, F::SYN, 100, 0, 0),
            seg(2, S, C, F::SYN | F::ACK, 500, 101, 0),
            seg(3, C, S, F::ACK, 101, 501, 0),
            seg(4, C, S, F::ACK | F::PSH, 101, 501, 10),
            seg(5, S, C, F::ACK | F::PSH, 501, 111, 20),
        ]
    }

    #[test]
    fn client_closes_first_and_holds_time_wait() {
        let mut segs = handshake();
        segs.extend([
            seg(6, C, S, F::FIN | F::ACK, 111, 521, 0),
            seg(7, S, C, F::FIN | F::ACK, 521, 112, 0),
            seg(8, C, S, F::ACK, 112, 522, 0),
        ]);
        let mut c = run(&segs);
        assert_eq!(c.side(Side::Client).state(), TcpState::TimeWait);
        assert_eq!(c.side(Side::Server).state(), TcpState::Closed);
        let r = c.finish(60.0);
        assert_eq!(r.handshake.state, HandshakeState::Complete);
        assert_eq!(r.close.kind, CloseKind::Fin);
        assert_eq!(r.close.active_closer, Closer::Client);
        assert_eq!(r.time_wait.holder, Closer::Client);
        assert_eq!(r.time_wait.from, Some(segs[7].ts));
        assert_eq!(r.close.fin_frames.as_slice(), [6, 7]);
        assert_eq!(r.history.as_str(), "ShADdFf");
    }

    #[test]
    fn server_closes_first_and_holds_time_wait() {
        let mut segs = handshake();
        segs.extend([
            seg(6, S, C, F::FIN | F::ACK, 521, 111, 0),
            seg(7, C, S, F::ACK, 111, 522, 0),
            seg(8, C, S, F::FIN | F::ACK, 111, 522, 0),
            seg(9, S, C, F::ACK, 522, 112, 0),
        ]);
        let mut c = run(&segs);
        assert_eq!(c.side(Side::Server).state(), TcpState::TimeWait);
        let r = c.finish(60.0);
        assert_eq!(r.close.active_closer, Closer::Server);
        assert_eq!(r.time_wait.holder, Closer::Server);
        assert_eq!(r.close.client_state, TcpState::Closed);
    }

    #[test]
    fn crossing_fins_are_a_simultaneous_close_with_two_holders() {
        let mut segs = handshake();
        segs.extend([
            seg(6, C, S, F::FIN | F::ACK, 111, 521, 0),
            seg(7, S, C, F::FIN | F::ACK, 521, 111, 0), // does not ack the client's FIN
            seg(8, C, S, F::ACK, 112, 522, 0),
            seg(9, S, C, F::ACK, 522, 112, 0),
        ]);
        let mut c = run(&segs);
        assert_eq!(c.side(Side::Client).state(), TcpState::TimeWait);
        assert_eq!(c.side(Side::Server).state(), TcpState::TimeWait);
        let r = c.finish(60.0);
        assert_eq!(r.close.kind, CloseKind::Simultaneous);
        assert_eq!(r.close.active_closer, Closer::Both);
        assert_eq!(r.time_wait.holder, Closer::Both);
    }

    #[test]
    fn fin_retransmitted_into_rst_leaves_no_time_wait() {
        let mut segs = handshake();
        segs.extend([
            seg(6, C, S, F::FIN | F::ACK, 111, 521, 0),
            seg(7, S, C, F::FIN | F::ACK, 521, 112, 0),
            // the client's last ACK is lost; the server retransmits its FIN
            seg(8, S, C, F::FIN | F::ACK, 521, 112, 0),
            seg(9, C, S, F::RST, 112, 0, 0),
        ]);
        let mut c = Connection::new(0, 0, &segs[0]);
        let notes: Vec<SegmentNotes> = segs.iter().map(|s| c.update(s)).collect();
        assert!(notes[7].fin_retransmit);
        let r = c.finish(60.0);
        assert_eq!(r.close.kind, CloseKind::Fin);
        assert_eq!(r.close.active_closer, Closer::Client);
        assert_eq!(r.close.fin_retransmits, 1);
        assert_eq!(r.close.rst_by, Some(Side::Client));
        assert_eq!(r.close.rst_sender_state, Some(TcpState::TimeWait));
        assert_eq!(r.time_wait.holder, Closer::None);
    }

    #[test]
    fn rst_on_established_connection_is_an_rst_close() {
        let mut segs = handshake();
        segs.push(seg(6, S, C, F::RST | F::ACK, 521, 111, 0));
        let r = run(&segs).finish(60.0);
        assert_eq!(r.close.kind, CloseKind::Rst);
        assert_eq!(r.close.active_closer, Closer::None);
        assert_eq!(r.close.rst_by, Some(Side::Server));
        assert_eq!(r.close.rst_sender_state, Some(TcpState::Established));
        assert_eq!(r.time_wait.holder, Closer::None);
    }

    #[test]
    fn syn_answered_by_rst_is_refused() {
        let r = run(&[
            seg(1, C, S, F::SYN, 100, 0, 0),
            seg(2, S, C, F::RST | F::ACK, 0, 101, 0),
        ])
        .finish(60.0);
        assert_eq!(r.handshake.state, HandshakeState::Refused);
        assert_eq!(r.handshake.rst_frame, Some(2));
        assert_eq!(r.close.kind, CloseKind::Rst);
    }

    #[test]
    fn unanswered_syns_count_retransmissions() {
        let r = run(&[
            seg(1, C, S, F::SYN, 100, 0, 0),
            seg(2, C, S, F::SYN, 100, 0, 0),
            seg(3, C, S, F::SYN, 100, 0, 0),
        ])
        .finish(60.0);
        assert_eq!(r.handshake.state, HandshakeState::SynOnly);
        assert_eq!(r.handshake.syn_retransmits, 2);
        assert_eq!(r.handshake.syn_frames.as_slice(), [1, 2, 3]);
        assert_eq!(r.close.kind, CloseKind::Open);
    }

    #[test]
    fn syn_answered_by_bare_ack_is_challenged() {
        let r = run(&[
            seg(1, C, S, F::SYN, 100, 0, 0),
            seg(2, S, C, F::ACK, 900, 50, 0),
        ])
        .finish(60.0);
        assert_eq!(r.handshake.state, HandshakeState::Challenged);
        assert_eq!(r.handshake.challenge_ack_frame, Some(2));
    }

    #[test]
    fn rst_that_ended_a_challenged_attempt_is_not_how_the_connection_ends() {
        // PAWS: SYN, challenge ACK, the client's RST, SYN again, then a whole
        // connection the server closes first.
        let r = run(&[
            seg(1, C, S, F::SYN, 100, 0, 0),
            seg(2, S, C, F::ACK, 900, 50, 0),
            seg(3, C, S, F::RST, 50, 0, 0),
            seg(4, C, S, F::SYN, 100, 0, 0),
            seg(5, S, C, F::SYN | F::ACK, 500, 101, 0),
            seg(6, C, S, F::ACK, 101, 501, 0),
            seg(7, S, C, F::FIN | F::ACK, 501, 101, 0),
            seg(8, C, S, F::FIN | F::ACK, 101, 502, 0),
            seg(9, S, C, F::ACK, 502, 102, 0),
        ])
        .finish(60.0);
        assert_eq!(r.handshake.state, HandshakeState::Complete);
        assert_eq!(r.handshake.attempt_rst_frame, Some(3));
        assert_eq!(r.close.kind, CloseKind::Fin);
        assert_eq!(r.close.rst_frame, None);
        assert_eq!(r.time_wait.holder, Closer::Server);
    }

    #[test]
    fn midstream_connection_infers_server_from_port() {
        let r = run(&[seg(1, S, C, F::ACK | F::PSH, 600, 200, 5)]).finish(60.0);
        assert!(r.role_inferred);
        assert_eq!(r.server.port(), 80);
        assert_eq!(r.handshake.state, HandshakeState::NotCaptured);
    }

    #[test]
    fn same_isn_is_retransmission_new_isn_is_new_incarnation() {
        let c = run(&handshake());
        assert!(!c.is_new_incarnation(&seg(9, C, S, F::SYN, 100, 0, 0)));
        assert!(c.is_new_incarnation(&seg(9, C, S, F::SYN, 7777, 0, 0)));
        assert!(!c.is_new_incarnation(&seg(9, C, S, F::ACK, 7777, 0, 0)));
        // A SYN-ACK with another ISN stays in the conversation (tshark 4.0).
        assert!(!c.is_new_incarnation(&seg(9, S, C, F::SYN | F::ACK, 7777, 101, 0)));
        // The server opening the tuple in reverse is a new conversation.
        assert!(c.is_new_incarnation(&seg(9, S, C, F::SYN, 12345, 0, 0)));
    }

    #[test]
    fn syn_after_midstream_data_is_a_new_incarnation() {
        let c = run(&[seg(1, C, S, F::ACK | F::PSH, 5000, 9000, 10)]);
        assert!(c.is_new_incarnation(&seg(2, C, S, F::SYN, 777, 0, 0)));
    }

    #[test]
    fn capture_point_is_named_only_when_the_legs_clearly_differ() {
        let at =
            |frame: u64, ms: i64, from: &str, to: &str, flags: u8, seq: u32, ack: u32| Segment {
                ts: Timestamp::from_parts(1000, ms * 1_000_000),
                ..seg(frame, from, to, flags, seq, ack, 0)
            };
        // Capture beside the client: the server is 40 ms away.
        let mut far = run(&[
            at(1, 0, C, S, F::SYN, 100, 0),
            at(2, 40, S, C, F::SYN | F::ACK, 500, 101),
            at(3, 40, C, S, F::ACK, 101, 501),
        ]);
        assert_eq!(far.finish(60.0).handshake.capture_near, Some(Side::Client));
        // A LAN: both legs within a millisecond, no verdict.
        let mut lan = run(&[
            at(1, 0, C, S, F::SYN, 100, 0),
            at(2, 0, S, C, F::SYN | F::ACK, 500, 101),
            at(3, 0, C, S, F::ACK, 101, 501),
        ]);
        assert_eq!(lan.finish(60.0).handshake.capture_near, None);
    }

    #[test]
    fn half_close_is_open_with_the_fin_sender_as_closer() {
        let mut segs = handshake();
        segs.extend([
            seg(6, C, S, F::FIN | F::ACK, 111, 521, 0),
            seg(7, S, C, F::ACK, 521, 112, 0),
        ]);
        let mut c = run(&segs);
        assert_eq!(c.side(Side::Client).state(), TcpState::FinWait2);
        assert_eq!(c.side(Side::Server).state(), TcpState::CloseWait);
        let r = c.finish(60.0);
        assert_eq!(r.close.kind, CloseKind::Open);
        assert_eq!(r.close.active_closer, Closer::Client);
        assert_eq!(r.time_wait.holder, Closer::None);
    }
}
