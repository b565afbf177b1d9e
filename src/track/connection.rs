//! One connection (one incarnation of a 4-tuple): the live state the
//! tracker updates per segment. The compact
//! [`ConnectionRecord`](super::ConnectionRecord) it becomes when retired is
//! built in `finish.rs`.
//!
//! Heads up: RFC 9293 §3.5-3.6 (handshake, close), RFC 7323 (timestamps),
//! and DESIGN.md §3 (active closer, TIME_WAIT holder, simultaneous close).

use super::state::{Event, TcpState};
use super::time_wait::TimeWaitKept;
use crate::decode::Segment;
use crate::flow::{Endpoint, Side};
use crate::frame::FrameId;
use crate::seq::{SeqNum, TsVal};
use crate::time::Timestamp;
use arrayvec::{ArrayString, ArrayVec};
use serde::Serialize;
use smallvec::SmallVec;
use std::net::IpAddr;
use std::num::NonZeroU64;

/// Connection id: 0-based in order of first packet, equal to Wireshark's
/// `tcp.stream` on our fixtures. A type of its own so that an id and a
/// frame number (or a count) cannot be passed for each other; serialized
/// as the bare number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ConnId(pub u32);

impl ConnId {
    /// The id after this one.
    pub fn next(self) -> ConnId {
        ConnId(self.0 + 1)
    }
}

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for ConnId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<ConnId, Self::Err> {
        s.parse().map(ConnId)
    }
}

/// At most this many frame numbers are kept per list (SYNs, FINs), so a
/// SYN flood on one tuple cannot grow memory; counters keep counting.
pub const MAX_FRAMES_KEPT: usize = 8;

/// Frame numbers of SYNs or FINs: nearly always one or two, kept inline so
/// that a connection costs no allocation for them (the tracker's hot path
/// allocated five times per connection before).
pub type Frames = SmallVec<[FrameId; 2]>;

/// Frame numbers of SYNs or of one side's FINs: nearly always one, kept
/// inline in 16 bytes (a [`Frames`] takes 24); those sent again, up to
/// [`MAX_FRAMES_KEPT`] in all, in a box.
#[derive(Debug, Clone, Default)]
pub struct FrameList {
    first: Option<FrameNo>,
    more: Option<Box<ArrayVec<FrameId, { MAX_FRAMES_KEPT - 1 }>>>,
}

impl FrameList {
    pub fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.as_ref().map_or(0, |m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// Adds `frame` unless [`MAX_FRAMES_KEPT`] are kept already.
    pub fn push_kept(&mut self, frame: FrameId) {
        if self.first.is_none() {
            self.first = Some(FrameNo::new(frame));
        } else {
            // A full list drops it (try_push), as the counters keep counting.
            let _ = self.more.get_or_insert_default().try_push(frame);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = FrameId> + '_ {
        self.first
            .map(FrameNo::frame)
            .into_iter()
            .chain(self.more.iter().flat_map(|m| m.iter().copied()))
    }

    /// The frames, in the order pushed, as a record keeps them.
    pub fn to_frames(&self) -> Frames {
        let mut frames = Frames::new();
        self.append_to(&mut frames);
        frames
    }

    /// Appends the frames, in the order pushed, to `frames`: a push and a
    /// slice copy, where collecting [`FrameList::iter`] into a `SmallVec`
    /// took about a hundred instructions for each list of each record.
    pub fn append_to(&self, frames: &mut Frames) {
        if let Some(first) = self.first {
            frames.push(first.frame());
        }
        if let Some(more) = &self.more {
            frames.extend_from_slice(more);
        }
    }
}

/// A connection's [`History`] while it grows: its letters (ASCII, never 0)
/// zero-padded in [`HISTORY_MAX`] bytes, 4 bytes less than an
/// `ArrayString` with its `u32` length.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryBuf([u8; HISTORY_MAX]);

impl HistoryBuf {
    pub fn len(&self) -> usize {
        // Eight letters at a time (this runs for every segment): the
        // lowest byte that is 0 is the first padding byte, found with the
        // zero-byte test on a little-endian word.
        for (i, chunk) in self.0.chunks_exact(8).enumerate() {
            let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            let zero = w.wrapping_sub(0x0101_0101_0101_0101) & !w & 0x8080_8080_8080_8080;
            if zero != 0 {
                return i * 8 + zero.trailing_zeros() as usize / 8;
            }
        }
        HISTORY_MAX
    }

    pub fn is_empty(&self) -> bool {
        self.0[0] == 0
    }

    pub fn is_full(&self) -> bool {
        self.0[HISTORY_MAX - 1] != 0
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII letters are pushed: always UTF-8.
        std::str::from_utf8(&self.0[..self.len()]).unwrap_or_default()
    }

    /// Appends `c` (an ASCII letter) unless full, or it is the last
    /// letter, or `once` and it is any letter already. On the bytes, not
    /// through [`HistoryBuf::as_str`]: this runs for every segment, and
    /// checking the letters as UTF-8 each time was about 1 % of the
    /// tracking thread.
    fn push_new(&mut self, c: u8, once: bool) {
        debug_assert!(c.is_ascii_alphabetic());
        let len = self.len();
        let letters = &self.0[..len];
        let repeat = letters.last() == Some(&c) || (once && letters.contains(&c));
        if !repeat && len < HISTORY_MAX {
            self.0[len] = c;
        }
    }

    /// The finished history, for the record.
    pub fn to_history(&self) -> History {
        History::from(self.as_str()).unwrap_or_default()
    }
}

/// The Zeek-style history string, at most [`HISTORY_MAX`] letters, inline.
pub type History = ArrayString<HISTORY_MAX>;

/// Letters kept in a history (a multiple of 8: [`HistoryBuf::len`]).
pub const HISTORY_MAX: usize = 24;
const _: () = assert!(HISTORY_MAX.is_multiple_of(8));

/// Two frames this close together (or closer) that are identical in
/// direction, seq, ack, flags, window, length, IP id and TCP timestamps are
/// one packet captured twice (`tcpdump -i any` on a bridge and its port, a
/// SPAN port mirroring both directions, two taps), not a retransmission.
/// The copies of `fixtures/dup-capture.pcap` (a bridge on a busy 2-core
/// host) are up to 30 µs apart, those of zeek's ctu-64702-888 1 µs. A real
/// resend of the last segment a side sent needs a timer: Linux's tail loss
/// probe waits at least TCP_TIMEOUT_MIN (2 ms), the RTO at least
/// TCP_RTO_MIN (200 ms), a SYN TCP_TIMEOUT_INIT (1 s). So 100 µs is three
/// times the widest copies seen on the fixture and twenty times below the
/// quickest resend, for frames that carry no IP id to tell (IPv6, or 0).
pub const DUPLICATE_WINDOW_S: f64 = 100e-6;

/// The same for frames that also carry the same non-zero IPv4 id: a
/// resend from a connected Linux socket takes a new id
/// (`ip_select_ident_segs`; Windows and the BSDs too), so a repeated id is
/// a copy even when the capture path delayed it more. Copies in the corpus
/// come up to 262 µs apart (tcpdump's pptp.pcap, suricata-verify's
/// bug-5437-02 through a tunnel); 1 ms is still half the quickest resend.
pub const DUPLICATE_WINDOW_SAME_ID_S: f64 = 1e-3;

/// Frames remembered per direction to recognise a copy: two, so that a
/// burst captured at two points (A B A' B') still pairs each copy.
const RECENT_KEPT: usize = 2;

/// A frame's identity for [`DUPLICATE_WINDOW_S`]: a hash of every header
/// field a copy repeats, and its time. 16 bytes, and its `Option` too (the
/// hash is kept as a `NonZeroU64`), so remembering the last two frames each
/// way costs a connection 64 bytes. Whether the frame carried an IPv4 id is
/// not kept: the id is in the hash, so a copy has the same one as the frame
/// that is being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Recent {
    print: NonZeroU64,
    ts: Timestamp,
}

impl Recent {
    fn of(seg: &Segment) -> Recent {
        use std::hash::{Hash, Hasher};
        let mut h = rustc_hash::FxHasher::default();
        (
            seg.seq.0,
            seg.ack.0,
            seg.flags.0,
            seg.window,
            seg.payload_len,
            seg.ip_id,
            seg.tsopt.map(|t| (t.tsval.0, t.tsecr.0)),
        )
            .hash(&mut h);
        Recent {
            // A hash of 0 shares 1's print: as rare as any other collision.
            print: NonZeroU64::new(h.finish()).unwrap_or(NonZeroU64::MIN),
            ts: seg.ts,
        }
    }

    /// `self`, made of `seg`, is a later copy of `earlier`.
    fn copies(&self, seg: &Segment, earlier: &Recent) -> bool {
        let dt = self.ts.secs_since(earlier.ts);
        let window = if seg.ip_id.is_some_and(|id| id != 0) {
            DUPLICATE_WINDOW_SAME_ID_S
        } else {
            DUPLICATE_WINDOW_S
        };
        self.print == earlier.print && (0.0..=window).contains(&dt)
    }
}

/// Linux's initial retransmission timeout (TCP_TIMEOUT_INIT, 1 s): a SYN
/// is sent again this long after the first, then after twice as long each
/// time (`tcp_retransmit_timer`), up to TCP_RTO_MAX (120 s).
pub const SYN_RTO_INIT_S: f64 = 1.0;
const RTO_MAX_S: f64 = 120.0;

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

/// The names the reports, the JSON summary and `conns` filters use (the
/// same as serde's), and each variant's place in [`Self::ALL`] for tallies:
/// one list per enum, so a new variant cannot be counted as another.
macro_rules! named_enum {
    ($ty:ident { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)*
                }
            }

            /// Its place in [`Self::ALL`].
            pub fn index(self) -> usize {
                self as usize
            }
        }
    };
}

named_enum!(HandshakeState {
    Complete => "complete",
    SynAckOnly => "syn_ack_only",
    SynOnly => "syn_only",
    Refused => "refused",
    Challenged => "challenged",
    NotCaptured => "not_captured",
});

named_enum!(CloseKind {
    Fin => "fin",
    Simultaneous => "simultaneous",
    Rst => "rst",
    Open => "open",
});

named_enum!(Closer {
    Client => "client",
    Server => "server",
    Both => "both",
    None => "none",
});

impl From<Side> for Closer {
    fn from(s: Side) -> Closer {
        match s {
            Side::Client => Closer::Client,
            Side::Server => Closer::Server,
        }
    }
}

/// A frame id in 8 bytes whose `Option` is 8 bytes too (an `Option<u64>`
/// is 16): the frame is kept plus one in a `NonZeroU64`, so `None` has a
/// bit pattern of its own. For the events of which only the frame is read
/// back (a side's last data, its RST, the ACK of its FIN). The one frame
/// id it cannot hold, `u64::MAX` (it would read back one less), no capture
/// reaches: it is frame 2^40 − 1 of the 16,777,216th file
/// ([`crate::frame`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FrameNo(NonZeroU64);

impl FrameNo {
    pub fn new(frame: FrameId) -> FrameNo {
        FrameNo(NonZeroU64::new(frame.0.wrapping_add(1)).unwrap_or(NonZeroU64::MAX))
    }

    /// The frame id.
    pub fn frame(self) -> FrameId {
        FrameId(self.0.get() - 1)
    }
}

impl std::fmt::Debug for FrameNo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FrameNo({})", self.frame().0)
    }
}

/// A frame and the time it was captured: when one event of the connection
/// happened (a side's first FIN, the ACK of it, the SYN-ACK ...).
///
/// 16 bytes, and `Option<FrameAt>` 16 too (a `(u64, Timestamp)` pair is
/// 16, its `Option` 24): the frame is a [`FrameNo`], whose niche gives
/// `None` a bit pattern of its own.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FrameAt {
    frame: FrameNo,
    at: Timestamp,
}

impl FrameAt {
    pub fn new(frame: FrameId, at: Timestamp) -> FrameAt {
        FrameAt {
            frame: FrameNo::new(frame),
            at,
        }
    }

    /// The segment's frame id.
    pub fn frame(self) -> FrameId {
        self.frame.frame()
    }

    /// When the segment was captured.
    pub fn at(self) -> Timestamp {
        self.at
    }
}

impl std::fmt::Debug for FrameAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameAt")
            .field("frame", &self.frame().0)
            .field("at", &self.at)
            .finish()
    }
}

/// The connection's first RST (that it did not outlive): where the close
/// record's `rst_*` fields come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstRst {
    pub frame: FrameId,
    pub at: Timestamp,
    /// The side that sent it.
    pub by: Side,
    /// The sender's state just before it, as the capture shows it
    /// (TIME_WAIT for an RST from a socket its kernel no longer had, say).
    pub sender_state: TcpState,
}

/// An RST that ended an earlier attempt of the handshake, and its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptRst {
    pub frame: FrameId,
    pub by: Side,
}

/// What one side sent, and its reconstructed state. What its FIN adds is
/// in [`Closing`], allocated only once a FIN is seen; its first RST in
/// `Rare` ([`Connection::rst_of`]).
#[derive(Debug, Clone, Default)]
pub struct SideTrack {
    pub state: Option<TcpState>,
    /// The sequence numbers read through the methods of the same name
    /// (`known_seqs!`), valid when their bit in `seqs_set` is.
    isn: SeqNum,
    base_seq: SeqNum,
    next_seq: SeqNum,
    max_ack: SeqNum,
    seqs_set: u8,
    pub packets: u64,
    pub bytes: u64,
    /// This side's last segment with payload (its time, when this side
    /// sent the connection's last data, is [`Connection::last_data`]).
    pub last_data: Option<FrameNo>,
    /// TSval of this side's first segment with timestamps: set with
    /// `last_tsval` (a plain value, 4 bytes less than an `Option`; read it
    /// through [`SideTrack::first_tsval`]).
    first_tsval: TsVal,
    /// TSval of this side's last segment with timestamps.
    pub last_tsval: Option<TsVal>,
    /// The last frames this side sent (not copies), newest first.
    recent: [Option<Recent>; RECENT_KEPT],
    /// Frames from this side that were copies of one just before.
    pub duplicates: u32,
    /// The largest window this side advertised (unscaled).
    pub window_max: u16,
    /// This side's SYN or SYN-ACK was seen, with this window scale.
    pub syn_seen: bool,
    pub wscale: Option<u8>,
}

/// The sequence numbers a side is known by, each set once seen: kept as
/// plain numbers and one byte of bits saying which are set, 17 bytes where
/// four `Option<SeqNum>` take 32. Each has a getter returning the
/// `Option` and a setter.
macro_rules! known_seqs {
    ($($(#[$doc:meta])* $field:ident, $set:ident, $bit:literal;)*) => {
        impl SideTrack {
            $(
                $(#[$doc])*
                pub fn $field(&self) -> Option<SeqNum> {
                    (self.seqs_set & (1 << $bit) != 0).then_some(self.$field)
                }

                fn $set(&mut self, seq: SeqNum) {
                    self.$field = seq;
                    self.seqs_set |= 1 << $bit;
                }
            )*
        }
    };
}

known_seqs! {
    /// Sequence number of this side's SYN.
    isn, set_isn, 0;
    /// First sequence number seen from this side (Wireshark's base_seq).
    base_seq, set_base_seq, 1;
    /// One past the highest sequence number this side has sent.
    next_seq, set_next_seq, 2;
    /// The highest acknowledgment number this side sent: its RCV.NXT.
    max_ack, set_max_ack, 3;
}

impl SideTrack {
    pub fn state(&self) -> TcpState {
        self.state.unwrap_or(TcpState::Closed)
    }

    /// Sets the ISN unless a SYN set it before.
    fn set_isn_once(&mut self, seq: SeqNum) {
        if self.isn().is_none() {
            self.set_isn(seq);
        }
    }

    /// TSval of this side's first segment with timestamps.
    pub fn first_tsval(&self) -> Option<TsVal> {
        self.last_tsval.map(|_| self.first_tsval)
    }
}

/// The handshake as seen.
///
/// The SYN times are plain [`Timestamp`]s, not `Option`s (8 bytes each
/// instead of 16): `syn_count` says which are set, see
/// [`Handshake::first_syn`].
#[derive(Debug, Clone, Default)]
pub struct Handshake {
    pub syn_frames: FrameList,
    pub syn_count: u32,
    first_syn: Timestamp,
    last_syn: Timestamp,
    pub synack: Option<FrameAt>,
    pub synack_count: u32,
    pub ack: Option<FrameAt>,
}

impl Handshake {
    /// The first SYN's time (set by the first SYN, as `syn_count`).
    pub fn first_syn(&self) -> Option<Timestamp> {
        (self.syn_count > 0).then_some(self.first_syn)
    }

    /// The last SYN's time.
    pub fn last_syn(&self) -> Option<Timestamp> {
        (self.syn_count > 0).then_some(self.last_syn)
    }

    /// Counts a SYN; returns the time of the SYN before it, if any.
    fn add_syn(&mut self, frame: FrameId, at: Timestamp) -> Option<Timestamp> {
        let previous = self.last_syn();
        self.syn_count += 1;
        self.syn_frames.push_kept(frame);
        if self.syn_count == 1 {
            self.first_syn = at;
        }
        self.last_syn = at;
        previous
    }
}

/// What one side's FIN adds to its [`SideTrack`], and its ACKs of the
/// peer's FIN.
#[derive(Debug, Clone, Default)]
pub struct FinTrack {
    /// Sequence number of this side's FIN.
    pub fin_seq: Option<SeqNum>,
    pub fin_first: Option<FrameAt>,
    pub fin_frames: FrameList,
    pub fin_count: u32,
    /// The peer's ACK of this side's FIN.
    pub fin_acked: Option<FrameNo>,
    /// When this side first acknowledged the peer's FIN.
    pub acked_peer_fin: Option<FrameAt>,
}

/// The close as seen: made at the connection's first FIN. Boxed in the
/// [`Connection`] because most of the connections the tracker holds at
/// once are still open (a connection spends most of its life before its
/// FINs, and a closed one leaves the table), so the open ones do not
/// carry its 184 bytes.
#[derive(Debug, Clone, Default)]
pub struct Closing {
    /// Indexed by [`Side::index`].
    pub sides: [FinTrack; 2],
    /// Side whose FIN was seen first.
    pub first_fin_by: Option<Side>,
    /// The second FIN did not acknowledge the first: both were in flight.
    pub simultaneous: bool,
    /// Seconds from the last data to the first FIN (0 when the FIN carries
    /// data): how long the closer let the connection sit idle.
    pub idle_before_first_fin: Option<f64>,
    /// What it keeps of the TIME_WAIT sockets it leaves (see
    /// [`Connection::time_wait_socket`]): only a connection closed with
    /// FINs has any.
    pub(super) time_wait_kept: TimeWaitKept,
}

impl Closing {
    pub fn side(&self, s: Side) -> &FinTrack {
        &self.sides[s.index()]
    }
}

/// What only some connections have: answers to a SYN other than a
/// SYN-ACK, RSTs, segments the receiver ignores. Boxed in the
/// [`Connection`], made the first time one is set, so that the common
/// connection does not carry its 128 bytes.
#[derive(Debug, Clone, Default)]
struct Rare {
    /// The RST that refused the SYN.
    refused: Option<FrameNo>,
    /// A bare ACK that answered the SYN (challenge ACK).
    challenge_ack: Option<FrameNo>,
    /// An RST that ended an earlier attempt of this handshake (before the
    /// SYN-ACK that opened the connection), and who sent it.
    attempt_rst: Option<AttemptRst>,
    /// The client acknowledged a SYN-ACK the capture does not hold (a
    /// capture of one direction only, or a lost frame).
    synack_unseen: bool,
    /// The SYN before the last one (from a client that sent it again):
    /// their gap is the sender's own retransmission interval.
    previous_syn: Option<Timestamp>,
    first_rst: Option<FirstRst>,
    /// Each side's first RST ([`Connection::rst_of`]), indexed by
    /// [`Side::index`]: any RST makes `first_rst` too.
    rst: [Option<FrameNo>; 2],
    /// Both sides' states just before `first_rst`, to undo it when the
    /// connection outlives it.
    before_rst: [Option<TcpState>; 2],
    /// See [`Connection::data_after_close`].
    data_after_close: Option<FrameNo>,
    /// Segments the receiver's kernel discards (see
    /// [`Connection::kernel_discards`]): counted, but no event.
    ignored: u32,
    ignored_frames: Frames,
}

/// The live state of one connection.
///
/// The tracker holds one per connection open (or in its TIME_WAIT window),
/// tens of thousands at once on a busy capture, so it is kept small
/// (`a_connection_stays_small`): what only a closing or an unusual
/// connection needs is boxed ([`Closing`], `Rare`), frames read back
/// without their time are [`FrameNo`]s, and times whose presence another
/// field tells are plain [`Timestamp`]s.
#[derive(Debug, Clone)]
pub struct Connection {
    pub id: ConnId,
    pub capture: u32,
    /// The client's and the server's address and port, read through
    /// [`Connection::client`] and [`Connection::server`]: kept apart they
    /// take 38 bytes, where two [`Endpoint`]s take 40 (64 when they were
    /// socket addresses).
    client_ip: IpAddr,
    server_ip: IpAddr,
    client_port: u16,
    server_port: u16,
    pub roles: RoleSource,
    pub first_frame: FrameId,
    pub last_frame: FrameId,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    /// Indexed by [`Side::index`].
    pub sides: [SideTrack; 2],
    pub handshake: Handshake,
    /// Zeek-style history: upper case for the client, lower for the server.
    pub history: HistoryBuf,
    /// Time of the last segment with payload, either direction; set once
    /// a side has `last_data` ([`Connection::last_data`]).
    last_data_at: Timestamp,
    /// Made at the first FIN.
    closing: Option<Box<Closing>>,
    rare: Option<Box<Rare>>,
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
    /// The same packet captured a second time ([`DUPLICATE_WINDOW_S`]): it
    /// changed nothing and is in no count but the duplicates'.
    pub duplicate: bool,
    /// A segment the receiver's kernel drops without effect (an RST out of
    /// window, a SYN+FIN probe, a segment without ACK): no attempt, no
    /// close, no refusal.
    pub ignored: bool,
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
        debug_assert!(
            [client, server]
                .iter()
                .all(|e| Endpoint::new(e.ip(), e.port()) == *e),
            "an endpoint with an IPv6 flow label or scope id"
        );
        Connection {
            id,
            capture,
            client_ip: client.ip(),
            server_ip: server.ip(),
            client_port: client.port(),
            server_port: server.port(),
            roles,
            first_frame: seg.frame,
            last_frame: seg.frame,
            first_ts: seg.ts,
            last_ts: seg.ts,
            sides: [SideTrack::default(), SideTrack::default()],
            handshake: Handshake::default(),
            history: HistoryBuf::default(),
            last_data_at: Timestamp::default(),
            closing: None,
            rare: None,
        }
    }

    /// The close so far: `None` before the first FIN.
    pub fn closing(&self) -> Option<&Closing> {
        self.closing.as_deref()
    }

    pub(super) fn closing_mut(&mut self) -> &mut Closing {
        self.closing.get_or_insert_with(Box::default)
    }

    /// What `s`'s FIN added, if the close began.
    pub fn fin_of(&self, s: Side) -> Option<&FinTrack> {
        self.closing().map(|c| c.side(s))
    }

    /// Side whose FIN was seen first.
    pub fn first_fin_by(&self) -> Option<Side> {
        self.closing().and_then(|c| c.first_fin_by)
    }

    /// The second FIN did not acknowledge the first: both were in flight.
    pub fn simultaneous(&self) -> bool {
        self.closing().is_some_and(|c| c.simultaneous)
    }

    /// Seconds from the last data to the first FIN ([`Closing`]).
    pub fn idle_before_first_fin(&self) -> Option<f64> {
        self.closing().and_then(|c| c.idle_before_first_fin)
    }

    fn rare(&self) -> Option<&Rare> {
        self.rare.as_deref()
    }

    fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// The connection's first RST, unless it outlived it.
    pub fn first_rst(&self) -> Option<FirstRst> {
        self.rare().and_then(|r| r.first_rst)
    }

    /// `s`'s first RST (unless the connection outlived it).
    pub fn rst_of(&self, s: Side) -> Option<FrameNo> {
        self.rare().and_then(|r| r.rst[s.index()])
    }

    /// The RST that refused the SYN.
    pub fn refused(&self) -> Option<FrameId> {
        self.rare().and_then(|r| r.refused).map(FrameNo::frame)
    }

    /// A bare ACK that answered the SYN instead of a SYN-ACK.
    pub fn challenge_ack(&self) -> Option<FrameId> {
        self.rare()
            .and_then(|r| r.challenge_ack)
            .map(FrameNo::frame)
    }

    /// An RST that ended an earlier attempt of the handshake.
    pub fn attempt_rst(&self) -> Option<AttemptRst> {
        self.rare().and_then(|r| r.attempt_rst)
    }

    /// The client acknowledged a SYN-ACK the capture does not hold.
    pub fn synack_unseen(&self) -> bool {
        self.rare().is_some_and(|r| r.synack_unseen)
    }

    /// The active closer's first RST came after data the peer sent behind
    /// the closer's FIN: the frame of that data. Linux resets a socket the
    /// application closed when data arrives after its FIN
    /// (tcp_rcv_state_process, FIN_WAIT1/FIN_WAIT2 with RCV_SHUTDOWN,
    /// TcpExtTCPAbortOnData): an abort, not a missing TIME_WAIT socket.
    pub fn data_after_close(&self) -> Option<FrameId> {
        self.rare()
            .and_then(|r| r.data_after_close)
            .map(FrameNo::frame)
    }

    /// Segments the receiver's kernel discards (see
    /// [`Connection::kernel_discards`]): counted, but no event.
    pub fn ignored(&self) -> u32 {
        self.rare().map_or(0, |r| r.ignored)
    }

    /// The first [`MAX_FRAMES_KEPT`] of the [`Connection::ignored`] ones.
    pub fn ignored_frames(&self) -> &[FrameId] {
        self.rare().map_or(&[], |r| &r.ignored_frames)
    }

    /// Moves the ignored frames out, for the record.
    pub(super) fn take_ignored_frames(&mut self) -> Frames {
        self.rare
            .as_deref_mut()
            .map(|r| std::mem::take(&mut r.ignored_frames))
            .unwrap_or_default()
    }

    /// Time of the last segment with payload, either direction.
    pub fn last_data(&self) -> Option<Timestamp> {
        self.sides
            .iter()
            .any(|s| s.last_data.is_some())
            .then_some(self.last_data_at)
    }

    pub fn client(&self) -> Endpoint {
        Endpoint::new(self.client_ip, self.client_port)
    }

    pub fn server(&self) -> Endpoint {
        Endpoint::new(self.server_ip, self.server_port)
    }

    pub fn side_of(&self, sender: Endpoint) -> Side {
        if sender.port() == self.client_port && sender.ip() == self.client_ip {
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
        match sender.base_seq() {
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

        // A copy of a frame just captured: its frame number stays the
        // connection's last, nothing else changes.
        {
            let recent = Recent::of(seg);
            let s = &mut self.sides[from.index()];
            if s.recent.iter().flatten().any(|r| recent.copies(seg, r)) {
                s.duplicates += 1;
                notes.duplicate = true;
                return notes;
            }
            s.recent.rotate_right(1);
            s.recent[0] = Some(recent);
        }

        if self.kernel_discards(seg, from) {
            self.sides[from.index()].packets += 1;
            let rare = self.rare_mut();
            rare.ignored += 1;
            if rare.ignored_frames.len() < MAX_FRAMES_KEPT {
                rare.ignored_frames.push(seg.frame);
            }
            notes.ignored = true;
            return notes;
        }
        let time_wait_before = self.time_wait_before(seg);

        // New data or a FIN from the side that sent the RST: its socket
        // was not gone, so the RST ended nothing (the receiver took it for
        // a challenge, RFC 5961 §3.2, or dropped it).
        if let Some(FirstRst { frame, by, .. }) = self.first_rst()
            && by == from
            && !f.rst()
            && !f.syn()
            && seg.seq_len() > 0
            && self
                .side(from)
                .next_seq()
                .is_some_and(|n| seg.seq.plus(seg.seq_len()).after(n))
        {
            self.outlive_rst(frame);
        }

        // The segment starts beyond what this side was seen to send: data
        // before it is not in the capture (reordered after it, or lost).
        let unseen_before = self.sides[from.index()]
            .next_seq()
            .is_some_and(|n| seg.seq.after(n));

        // Per-side bookkeeping of what was sent.
        {
            let s = &mut self.sides[from.index()];
            s.packets += 1;
            s.bytes += u64::from(seg.payload_len);
            s.window_max = s.window_max.max(seg.window);
            // A SYN or SYN-ACK starts this side's sequence space (and the
            // SYN-ACK its acknowledgments): what came before it (a
            // challenge ACK, an RST) belonged to another incarnation. An
            // RST occupies no sequence space and its numbers may echo
            // another one's (RFC 9293 §3.10.7.1), so it moves neither.
            if f.ack() && !f.rst() && (f.syn() || s.max_ack().is_none_or(|a| seg.ack.after(a))) {
                s.set_max_ack(seg.ack);
            }
            if f.syn() {
                s.syn_seen = true;
                s.wscale = seg.wscale;
            }
            if s.base_seq().is_none() {
                s.set_base_seq(if f.syn() {
                    seg.seq
                } else {
                    seg.seq.plus(u32::MAX)
                });
            }
            let end = seg.seq.plus(seg.seq_len());
            if f.syn() || (!f.rst() && s.next_seq().is_none_or(|n| end.after(n))) {
                s.set_next_seq(end);
            }
            if seg.payload_len > 0 {
                s.last_data = Some(FrameNo::new(seg.frame));
            }
            if let Some(t) = seg.tsopt {
                if s.last_tsval.is_none() {
                    s.first_tsval = t.tsval;
                }
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
            // A first FIN after data the capture has not shown: how long
            // the closer sat idle is not known.
            if unseen_before
                && self.first_fin_by() == Some(from)
                && self
                    .fin_of(from)
                    .and_then(|f| f.fin_first)
                    .is_some_and(|fin| fin.frame() == seg.frame)
            {
                self.closing_mut().idle_before_first_fin = None;
            }
        }
        self.record_history(seg, from, &notes);
        if seg.payload_len > 0 {
            // With the side's `last_data` set above: `last_data()` is this.
            self.last_data_at = seg.ts;
        }
        self.keep_time_wait(time_wait_before);
        notes
    }

    /// Whether the receiver's Linux kernel drops this segment without any
    /// effect on its socket, so that it opens, refuses and closes nothing:
    ///
    /// * a SYN with FIN (nmap's SYN+FIN+PSH+URG probe): a listener drops it
    ///   (`tcp_rcv_state_process`, LISTEN: `if (th->fin) goto discard`);
    /// * a segment without ACK that is neither SYN nor RST (FIN, NULL and
    ///   Xmas scans) from a side that never acknowledged anything:
    ///   `tcp_rcv_state_process` drops it in every state ("!th->ack &&
    ///   !th->rst && !th->syn"). A side that sent ACKs before and then a
    ///   FIN without one is a stack (or a test generator) whose peer takes
    ///   it, and acknowledges it in the captures that have them
    ///   (suricata-verify's multi_mac.pcap): that FIN closes;
    /// * an RST that is not acceptable ([`Connection::rst_acceptable`]);
    /// * any other segment whose sequence numbers lie wholly outside the
    ///   receive window (`tcp_sequence` in `tcp_validate_incoming`: a
    ///   crafted or corrupt seq): it would move no state, and must not move
    ///   our idea of the sender's next sequence number either.
    pub fn kernel_discards(&self, seg: &Segment, from: Side) -> bool {
        let f = seg.flags;
        if f.syn() && f.fin() {
            return true;
        }
        if !f.ack() && !f.rst() && !f.syn() && self.side(from).max_ack().is_none() {
            return true;
        }
        if f.rst() {
            return !self.rst_acceptable(seg, from);
        }
        if f.syn() {
            return false;
        }
        match self.window_of(from.peer()) {
            Some((lo, hi, wnd)) => {
                let end = seg.seq.plus(seg.seq_len());
                i64::from(seg.seq.diff(hi)) > wnd || i64::from(end.diff(lo)) < -wnd
            }
            None => false,
        }
    }

    /// Whether an RST from `from` can reset the receiver's socket, as Linux
    /// decides it:
    ///
    /// * receiver in SYN_SENT (`tcp_rcv_synsent_state_process`): only an
    ///   RST with ACK, acknowledging something the receiver sent
    ///   (SND.UNA < SEG.ACK ≤ SND.NXT, RFC 9293 §3.10.7.3); an RST without
    ///   ACK is dropped;
    /// * receiver synchronized (`tcp_validate_incoming`, RFC 9293 §3.10.7.4
    ///   and RFC 5961 §3.2): the RST's sequence number must fall in the
    ///   receive window; Linux resets on SEG.SEQ = RCV.NXT (or RCV.NXT − 1
    ///   after a FIN, `tcp_reset_check`), answers a challenge ACK to the
    ///   rest of the window and drops what lies outside. Seen from a capture
    ///   point RCV.NXT lies between what the receiver acknowledged and what
    ///   the RST's sender sent, and segments the capture missed may lie
    ///   beyond, so the whole window counts as acceptable, from one below
    ///   RCV.NXT on ([`Connection::window_of`]); outside it the RST is
    ///   dropped.
    ///
    /// A receiver of which nothing synchronized is known (no SYN-ACK either
    /// way, nothing sent, a previous RST) cannot be judged: accepted.
    pub fn rst_acceptable(&self, seg: &Segment, from: Side) -> bool {
        let rx = self.side(from.peer());
        if rx.state() == TcpState::SynSent {
            return seg.flags.ack()
                && match (rx.isn(), rx.next_seq()) {
                    (Some(isn), Some(nxt)) => seg.ack.after(isn) && !seg.ack.after(nxt),
                    _ => true,
                };
        }
        match self.window_of(from.peer()) {
            Some((lo, hi, wnd)) => {
                i64::from(seg.seq.diff(lo)) >= -1 && i64::from(seg.seq.diff(hi)) <= wnd
            }
            None => true,
        }
    }

    /// What the capture shows of `receiver`'s RCV.NXT: the range between
    /// the highest acknowledgment it sent and what its peer sent so far
    /// (either may run ahead: data in flight, data the capture missed),
    /// and its receive window ([`Connection::receive_window`]). `None` when
    /// it cannot be judged: the receiver is not synchronized (LISTEN,
    /// SYN_SENT), has sent nothing, or its connection was reset already.
    fn window_of(&self, receiver: Side) -> Option<(SeqNum, SeqNum, i64)> {
        let rx = self.side(receiver);
        let tx = self.side(receiver.peer());
        if rx.packets == 0
            || self.first_rst().is_some()
            || matches!(rx.state(), TcpState::Listen | TcpState::SynSent)
        {
            return None;
        }
        let sent = tx.next_seq()?;
        let (lo, hi) = match rx.max_ack() {
            Some(a) if a.after(sent) => (sent, a),
            Some(a) => (a, sent),
            None => (sent, sent),
        };
        Some((lo, hi, self.receive_window(receiver)))
    }

    /// The largest receive window `side` may have offered, in bytes: its
    /// largest advertised window, scaled by its window scale when both
    /// SYNs were seen (RFC 7323 §2.2: scaling only when both sent the
    /// option), else by the largest scale allowed (14) since it is unknown;
    /// at least 65,535.
    fn receive_window(&self, side: Side) -> i64 {
        let s = self.side(side);
        let p = self.side(side.peer());
        let shift = if s.syn_seen && p.syn_seen {
            match (s.wscale, p.wscale) {
                (Some(w), Some(_)) => w.min(14),
                _ => 0,
            }
        } else {
            14
        };
        (i64::from(s.window_max) << shift).max(65_535)
    }

    fn set_state(&mut self, side: Side, event: Event) {
        let s = &mut self.sides[side.index()];
        s.state = Some(s.state().on(event));
    }

    fn on_syn(&mut self, seg: &Segment, from: Side, notes: &mut SegmentNotes) {
        if !seg.flags.ack() {
            if let Some(previous) = self.handshake.add_syn(seg.frame, seg.ts) {
                self.rare_mut().previous_syn = Some(previous);
            }
            notes.syn_retransmit = self.handshake.syn_count > 1;
            self.sides[from.index()].set_isn_once(seg.seq);
            self.set_state(from, Event::SendSyn);
            if self.sides[from.peer().index()].state.is_none() {
                self.sides[from.peer().index()].state = Some(TcpState::Listen);
            }
        } else {
            // An RST before the first SYN-ACK ended only an attempt (the
            // client's answer to a challenge ACK, say): the connection goes
            // on, so that RST is not how it ends.
            if self.handshake.synack.is_none()
                && let Some(rare) = self.rare.as_deref_mut()
                && let Some(FirstRst { frame, by, .. }) = rare.first_rst.take()
            {
                rare.attempt_rst.get_or_insert(AttemptRst { frame, by });
                rare.rst = [None, None];
            }
            let h = &mut self.handshake;
            h.synack_count += 1;
            h.synack.get_or_insert(FrameAt::new(seg.frame, seg.ts));
            self.sides[from.index()].set_isn_once(seg.seq);
            self.set_state(from, Event::SendSynAck);
            self.set_state(from.peer(), Event::RecvSynAck);
        }
    }

    fn on_ack(&mut self, seg: &Segment, from: Side, notes: &mut SegmentNotes) {
        let peer = from.peer();
        let peer_isn = self.side(peer).isn();
        let h = &self.handshake;
        // The client's ACK of the SYN-ACK completes the handshake.
        if from == Side::Client
            && h.ack.is_none()
            && h.synack.is_some()
            && let Some(isn) = peer_isn
            && seg.ack.after(isn)
        {
            self.handshake.ack = Some(FrameAt::new(seg.frame, seg.ts));
            self.set_state(from, Event::SendHandshakeAck);
            self.set_state(peer, Event::RecvHandshakeAck);
        }
        // The client in SYN_SENT sends an ACK only after a SYN-ACK
        // (tcp_rcv_synsent_state_process): one the capture does not hold.
        if from == Side::Client
            && self.handshake.synack.is_none()
            && self.handshake.ack.is_none()
            && self.handshake.syn_count > 0
            && self.side(from).state() == TcpState::SynSent
        {
            self.rare_mut().synack_unseen = true;
            self.handshake.ack = Some(FrameAt::new(seg.frame, seg.ts));
            self.sides[from.index()].state = Some(TcpState::Established);
            self.sides[peer.index()].state = Some(TcpState::Established);
        }
        // A split handshake (the server answered the SYN with a SYN of its
        // own, the client sent the SYN-ACK): the server's ACK of it
        // establishes both sides.
        if from == Side::Server
            && self.handshake.ack.is_none()
            && self.handshake.synack.is_some()
            && self.side(from).state() == TcpState::SynSent
            && self.side(Side::Client).state() == TcpState::SynReceived
            && let Some(isn) = peer_isn
            && seg.ack.after(isn)
        {
            self.handshake.ack = Some(FrameAt::new(seg.frame, seg.ts));
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
            self.rare_mut()
                .challenge_ack
                .get_or_insert(FrameNo::new(seg.frame));
        }
        // ACK of the peer's FIN: exactly one past it. Nothing follows a
        // FIN, and Linux drops an ACK of data never sent (tcp_ack: "ACK of
        // unsent data", after(ack, snd_nxt)), so a larger ack (fuzzed,
        // corrupt) acknowledges nothing.
        if let Some(closing) = self.closing.as_deref_mut()
            && let Some(peer_fin) = closing.sides[peer.index()].fin_seq
            && seg.ack == peer_fin.plus(1)
        {
            let s = &mut closing.sides[from.index()];
            if s.acked_peer_fin.is_none() {
                s.acked_peer_fin = Some(FrameAt::new(seg.frame, seg.ts));
            }
            let p = &mut closing.sides[peer.index()];
            if p.fin_acked.is_none() {
                p.fin_acked = Some(FrameNo::new(seg.frame));
                self.set_state(peer, Event::RecvFinAck);
            }
        }
    }

    fn on_fin(&mut self, seg: &Segment, from: Side, to: Side, notes: &mut SegmentNotes) {
        let fin_seq = seg.fin_seq();
        let s = &mut self.closing_mut().sides[from.index()];
        s.fin_count += 1;
        s.fin_frames.push_kept(seg.frame);
        match s.fin_seq {
            Some(prev) if prev == fin_seq => notes.fin_retransmit = true,
            Some(_) => {}
            None => {
                s.fin_seq = Some(fin_seq);
                s.fin_first = Some(FrameAt::new(seg.frame, seg.ts));
            }
        }
        if notes.fin_retransmit {
            return;
        }
        // Does this FIN acknowledge the peer's FIN?
        let peer_fin = self.fin_of(to).and_then(|f| f.fin_seq);
        let acks_peer = match peer_fin {
            Some(pf) => seg.flags.ack() && !seg.ack.before(pf.plus(1)),
            None => false,
        };
        match self.first_fin_by() {
            None => {
                // Idle since the last data; with none seen, since the
                // handshake; with neither (the capture began after them,
                // perhaps at this FIN) it is not known: the capture cannot
                // say what came before its first frame.
                let h = &self.handshake;
                let opened = h.ack.or(h.synack).map(FrameAt::at).or(h.first_syn());
                let idle = if seg.payload_len > 0 {
                    Some(0.0)
                } else {
                    self.last_data().or(opened).map(|d| seg.ts.secs_since(d))
                };
                let closing = self.closing_mut();
                closing.first_fin_by = Some(from);
                closing.idle_before_first_fin = idle;
            }
            Some(first) if first != from && !acks_peer => {
                // This side sent its FIN before the peer's had reached it:
                // both FINs are in flight, each side goes through CLOSING.
                self.closing_mut().simultaneous = true;
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
        if self.first_fin_by() == Some(from)
            && self.rst_of(from).is_none()
            && let Some(fin) = self.fin_of(from).and_then(|f| f.fin_first)
            && let Some(data) = self.side(from.peer()).last_data
            && data.frame() > fin.frame()
        {
            self.rare_mut().data_after_close = Some(data);
        }
        self.rare_mut().rst[from.index()].get_or_insert(FrameNo::new(seg.frame));
        if self.first_rst().is_none() {
            let before_rst = [self.sides[0].state, self.sides[1].state];
            let rare = self.rare_mut();
            rare.first_rst = Some(FirstRst {
                frame: seg.frame,
                at: seg.ts,
                by: from,
                sender_state,
            });
            rare.before_rst = before_rst;
        }
        // An RST answering a SYN before any SYN-ACK: refused.
        if from == Side::Server
            && self.handshake.synack.is_none()
            && self.handshake.syn_count > 0
            && self.side(Side::Client).state() == TcpState::SynSent
        {
            notes.refused = true;
            self.rare_mut()
                .refused
                .get_or_insert(FrameNo::new(seg.frame));
        }
        self.set_state(from, Event::Reset);
        self.set_state(from.peer(), Event::Reset);
    }

    /// The connection went on after the RST in `frame`: it is counted with
    /// the ignored segments, and the states before it come back.
    fn outlive_rst(&mut self, frame: FrameId) {
        let rare = self.rare_mut();
        rare.first_rst = None;
        rare.data_after_close = None;
        if rare.refused.is_some_and(|r| r.frame() == frame) {
            rare.refused = None;
        }
        rare.ignored += 1;
        if rare.ignored_frames.len() < MAX_FRAMES_KEPT {
            rare.ignored_frames.push(frame);
            rare.ignored_frames.sort_unstable();
        }
        rare.rst = [None, None];
        let before_rst = rare.before_rst;
        for (side, state) in self.sides.iter_mut().zip(before_rst) {
            side.state = state;
        }
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
        self.history
            .push_new(c as u8, matches!(c, 'a' | 'A' | 'd' | 'D'));
    }

    /// Whether the capture, ending at `end`, cut this handshake short: SYNs
    /// without any answer (SYN-ACK, RST, challenge ACK), the last of them
    /// less than its retransmission timeout before `end`. After the first
    /// SYN that is [`SYN_RTO_INIT_S`] (Linux's TCP_TIMEOUT_INIT); after a
    /// retransmission, twice the gap the sender itself left between its
    /// last two SYNs (`tcp_retransmit_timer` doubles the timeout: 1 s, 2 s,
    /// 4 s ...), capped at TCP_RTO_MAX. Measuring the sender's own gap
    /// keeps a scanner that repeats its SYN every 175 ms (nmap) from
    /// looking cut a second later.
    pub fn cut_by_capture_end(&self, end: Timestamp) -> bool {
        let h = &self.handshake;
        let Some(last_syn) = h.last_syn() else {
            return false;
        };
        if h.synack.is_some()
            || self.synack_unseen()
            || self.refused().is_some()
            || self.challenge_ack().is_some()
        {
            return false;
        }
        let rto = match self.rare().and_then(|r| r.previous_syn) {
            Some(prev) => (2.0 * last_syn.secs_since(prev)).min(RTO_MAX_S),
            None => SYN_RTO_INIT_S,
        };
        end.secs_since(last_syn) < rto
    }

    /// Whether the connection can no longer change: both FINs acknowledged,
    /// or reset.
    pub fn is_closed(&self) -> bool {
        self.first_rst().is_some()
            || self.closing().is_some_and(|c| {
                c.sides
                    .iter()
                    .all(|s| s.fin_seq.is_some() && s.fin_acked.is_some())
            })
    }

    /// The earliest its TIME_WAIT (`finish`'s `from`) can start, once both
    /// sides have sent a FIN: `from` is the holder's ACK of its peer's FIN
    /// or that FIN, both at or after either side's first FIN in a capture
    /// whose time runs forward. None before both FINs: then any TIME_WAIT
    /// starts at a packet still to come.
    pub fn time_wait_lower_bound(&self) -> Option<Timestamp> {
        let [a, b] = &self.closing()?.sides;
        match (a.fin_first, b.fin_first) {
            (Some(x), Some(y)) => Some(x.at().min(y.at())),
            _ => None,
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::decode::{TcpFlags, TcpFlags as F};
    use crate::frame::frames;

    pub const C: &str = "10.0.0.1:40000";
    pub const S: &str = "10.0.0.2:80";

    /// Each enum's list holds every variant at its own index, under the
    /// name serde writes into the JSON.
    #[test]
    fn named_enums_list_every_variant_under_its_json_name() {
        fn check<T: Copy + Serialize>(
            all: &[T],
            index: fn(T) -> usize,
            name: fn(T) -> &'static str,
        ) {
            for (i, v) in all.iter().enumerate() {
                assert_eq!(index(*v), i);
                assert_eq!(
                    serde_json::to_value(v).unwrap(),
                    serde_json::json!(name(*v))
                );
            }
        }
        check(
            HandshakeState::ALL,
            HandshakeState::index,
            HandshakeState::as_str,
        );
        check(CloseKind::ALL, CloseKind::index, CloseKind::as_str);
        check(Closer::ALL, Closer::index, Closer::as_str);
        assert_eq!(HandshakeState::ALL.len(), 6);
        assert_eq!(CloseKind::ALL.len(), 4);
    }

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
            frame: FrameId(frame),
            ts: Timestamp::from_parts(1000, frame as i64 * 1_000_000),
            fragmentation: Default::default(),
            src: from.parse::<Endpoint>().unwrap(),
            dst: to.parse::<Endpoint>().unwrap(),
            seq: SeqNum(seq),
            ack: SeqNum(ack),
            flags: TcpFlags(flags),
            window: 1000,
            payload_len: len,
            tsopt: None,
            ip_id: None,
            wscale: None,
        }
    }

    /// The cut of `r`'s client-held TIME_WAIT when `by` took its 4-tuple
    /// over at `at`.
    pub fn taken_over(
        r: &crate::track::ConnectionRecord,
        at: crate::time::Timestamp,
        by: ConnId,
    ) -> crate::track::TimeWaitCut {
        crate::track::TimeWaitCut {
            id: r.id,
            client: r.client,
            server: r.server,
            holder: crate::track::Closer::Client,
            from: r.time_wait.from.unwrap(),
            until: r.time_wait.until.unwrap(),
            at,
            reused_by: by,
        }
    }

    /// The record of a connection from [`C`] to [`S`] that the client
    /// closes first (handshake, FIN, FIN, last ACK, 1 ms apart): a template
    /// for detectors' tests to copy and adjust.
    pub fn client_closed_record() -> crate::track::ConnectionRecord {
        use TcpFlags as F;
        let segs = [
            seg(1, C, S, F::SYN, 100, 0, 0),
            seg(2, S, C, F::SYN | F::ACK, 500, 101, 0),
            seg(3, C, S, F::ACK, 101, 501, 0),
            seg(4, C, S, F::FIN | F::ACK, 101, 501, 0),
            seg(5, S, C, F::FIN | F::ACK, 501, 102, 0),
            seg(6, C, S, F::ACK, 102, 502, 0),
        ];
        run(&segs).finish(60.0)
    }

    fn run(segs: &[Segment]) -> Connection {
        let mut c = Connection::new(ConnId(0), 0, &segs[0]);
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
        assert_eq!(r.close.fin_frames.as_slice(), frames(&[6, 7]));
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

    /// suricata-verify output-eve-ftp-data: FINs cross and the client
    /// resets before either FIN is acknowledged: the server, in CLOSING, is
    /// reset too (tcp_reset) and never enters TIME_WAIT; nor does the
    /// client, whose socket the RST shows gone.
    #[test]
    fn an_rst_in_closing_leaves_no_time_wait() {
        let mut segs = handshake();
        segs.extend([
            seg(6, C, S, F::FIN | F::ACK, 111, 521, 0),
            seg(7, S, C, F::FIN | F::ACK, 521, 111, 0), // does not ack the client's FIN
            seg(8, C, S, F::RST, 112, 0, 0),            // the client resets
        ]);
        let mut c = run(&segs);
        let r = c.finish(60.0);
        assert_eq!(r.close.kind, CloseKind::Simultaneous);
        assert_eq!(r.time_wait.holder, Closer::None);
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
        let mut c = Connection::new(ConnId(0), 0, &segs[0]);
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
        assert_eq!(r.handshake.rst_frame, Some(FrameId(2)));
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
        assert_eq!(r.handshake.syn_frames.as_slice(), frames(&[1, 2, 3]));
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
        assert_eq!(r.handshake.challenge_ack_frame, Some(FrameId(2)));
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
        assert_eq!(r.handshake.attempt_rst_frame, Some(FrameId(3)));
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

    /// The tracker holds one `Connection` per live connection (and per
    /// tuple in TIME_WAIT), so its size is its memory: 984 bytes when the
    /// event times were `(u64, Timestamp)` pairs (24 bytes in an `Option`),
    /// 888 with [`FrameAt`]'s niche, 904 with the TIME_WAIT sockets'
    /// [`TimeWaitKept`] (16 bytes; was a 144-byte map entry in
    /// paws-syn-drop per closed connection), 392 with the close (and
    /// `TimeWaitKept` in it) and the rare fields boxed and the rest
    /// narrowed (issue 12). It must not grow unnoticed.
    #[test]
    fn a_connection_stays_small() {
        use std::mem::size_of;
        assert_eq!(size_of::<FrameAt>(), 16);
        assert_eq!(size_of::<Option<FrameAt>>(), 16);
        assert_eq!(size_of::<Option<FirstRst>>(), 24);
        assert_eq!(size_of::<Option<AttemptRst>>(), 16);
        assert_eq!(size_of::<Option<FrameNo>>(), 8);
        assert_eq!(size_of::<Option<Recent>>(), 16);
        assert_eq!(size_of::<FrameList>(), 16);
        // Connections open at once are held whole (issue 12): 888 bytes
        // before the close and the rare fields were boxed.
        assert!(
            size_of::<Connection>() <= 392,
            "Connection is {} bytes",
            size_of::<Connection>()
        );
        // The boxed parts, on the heap of the connections that have them.
        assert!(size_of::<Closing>() <= 184 && size_of::<Rare>() <= 128);
    }

    #[test]
    fn a_frame_at_gives_back_its_frame_and_time() {
        let t = Timestamp::from_parts(1000, 5);
        for frame in [0, 1, 19, FrameId::new(3, 19).0, u64::MAX - 1].map(FrameId) {
            let x = FrameAt::new(frame, t);
            assert_eq!((x.frame(), x.at()), (frame, t));
            assert!(Some(x).is_some());
        }
        assert_ne!(FrameAt::new(FrameId(1), t), FrameAt::new(FrameId(2), t));
        for frame in [0, 1, FrameId::new(3, 19).0, u64::MAX - 1].map(FrameId) {
            assert_eq!(FrameNo::new(frame).frame(), frame);
        }
    }

    #[test]
    fn syn_times_are_set_by_the_syns_that_count() {
        let h = run(&handshake()[1..]).handshake;
        assert_eq!((h.first_syn(), h.last_syn()), (None, None));
        assert!(h.syn_frames.is_empty());
        let at = |frame: u64| Timestamp::from_parts(1000, frame as i64 * 1_000_000);
        let one = run(&[seg(1, C, S, F::SYN, 100, 0, 0)]);
        let h = &one.handshake;
        assert_eq!((h.first_syn(), h.last_syn()), (Some(at(1)), Some(at(1))));
        assert_eq!(h.syn_frames.to_frames().as_slice(), frames(&[1]));
        assert!(one.rare.is_none(), "no previous SYN");
        let three = run(&[
            seg(1, C, S, F::SYN, 100, 0, 0),
            seg(4, C, S, F::SYN, 100, 0, 0),
            seg(9, C, S, F::SYN, 100, 0, 0),
        ]);
        let h = &three.handshake;
        assert_eq!(h.first_syn(), Some(at(1)));
        assert_eq!(h.last_syn(), Some(at(9)));
        assert_eq!(three.rare.as_ref().unwrap().previous_syn, Some(at(4)));
        assert_eq!(h.syn_frames.iter().collect::<Vec<_>>(), frames(&[1, 4, 9]));
    }

    #[test]
    fn a_history_buffer_keeps_its_letters_up_to_the_maximum() {
        let mut h = HistoryBuf::default();
        assert!(h.is_empty() && h.as_str().is_empty());
        h.push_new(b'S', false);
        h.push_new(b'h', false);
        h.push_new(b'h', false);
        assert_eq!((h.as_str(), h.len()), ("Sh", 2), "the last letter again");
        h.push_new(b'S', true);
        assert_eq!(h.as_str(), "Sh", "once: a letter anywhere already");
        h.push_new(b'S', false);
        assert_eq!(h.as_str(), "ShS", "not once: only the last letter counts");
        for i in 0..HISTORY_MAX {
            h.push_new(if i % 2 == 0 { b't' } else { b'T' }, false);
        }
        assert!(h.is_full());
        assert_eq!(h.len(), HISTORY_MAX);
        assert_eq!(h.to_history().as_str(), format!("ShS{}t", "tT".repeat(10)));
        // Every length, across the words len() reads.
        for n in 0..=HISTORY_MAX {
            let mut h = HistoryBuf::default();
            for i in 0..n {
                h.push_new(if i % 2 == 0 { b'a' } else { b'Z' }, false);
            }
            assert_eq!(h.len(), n);
            assert_eq!(h.as_str().len(), n);
        }
    }

    #[test]
    fn a_connection_gives_back_its_endpoints() {
        for (c, s) in [(C, S), ("[2001:db8::1]:40000", "[2001:db8::2]:443")] {
            let conn = Connection::new(ConnId(0), 0, &seg(1, c, s, F::SYN, 100, 0, 0));
            assert_eq!(conn.client(), c.parse::<Endpoint>().unwrap());
            assert_eq!(conn.server(), s.parse::<Endpoint>().unwrap());
            assert_eq!(conn.side_of(conn.client()), Side::Client);
            assert_eq!(conn.side_of(conn.server()), Side::Server);
        }
    }

    #[test]
    fn a_frame_list_keeps_the_first_frames_in_order() {
        let mut l = FrameList::default();
        assert_eq!((l.len(), l.is_empty()), (0, true));
        for f in 10..30 {
            l.push_kept(FrameId(f));
        }
        assert_eq!(l.len(), MAX_FRAMES_KEPT);
        assert_eq!(
            l.to_frames().as_slice(),
            frames(&[10, 11, 12, 13, 14, 15, 16, 17])
        );
    }

    /// The boxed parts are made only when needed: an open connection holds
    /// neither, an orderly close only [`Closing`].
    #[test]
    fn an_ordinary_connection_allocates_only_its_close() {
        let mut segs = handshake();
        let open = run(&segs);
        assert!(open.closing.is_none() && open.rare.is_none());
        assert_eq!(open.last_data(), Some(segs[4].ts));
        segs.extend([
            seg(6, C, S, F::FIN | F::ACK, 111, 521, 0),
            seg(7, S, C, F::FIN | F::ACK, 521, 112, 0),
            seg(8, C, S, F::ACK, 112, 522, 0),
        ]);
        let closed = run(&segs);
        assert!(closed.closing.is_some() && closed.rare.is_none());
        assert!(closed.is_closed());
        let no_data = run(&handshake()[..3]);
        assert_eq!(no_data.last_data(), None);
        let reset = run(&[
            seg(1, C, S, F::SYN, 100, 0, 0),
            seg(2, S, C, F::RST | F::ACK, 0, 101, 0),
        ]);
        assert!(reset.rare.is_some() && reset.closing.is_none());
        assert_eq!(reset.refused(), Some(FrameId(2)));
    }

    /// `segment` again, `us` microseconds later (a capture copy if close).
    fn again(segment: &Segment, frame: u64, us: i64) -> Segment {
        Segment {
            frame: FrameId(frame),
            ts: Timestamp(segment.ts.0 + us * 1000),
            ..*segment
        }
    }

    #[test]
    fn a_frame_captured_twice_is_a_duplicate_not_a_retransmission() {
        let mut segs = handshake();
        let syn = Segment {
            ip_id: Some(7),
            ..segs[0]
        };
        segs[0] = syn;
        segs.insert(1, again(&syn, 1, 1));
        let fin = seg(6, C, S, F::FIN | F::ACK, 111, 521, 0);
        segs.extend([
            fin,
            again(&fin, 7, 100), // the widest copy without an IP id
            seg(8, S, C, F::FIN | F::ACK, 521, 112, 0),
            seg(9, C, S, F::ACK, 112, 522, 0),
        ]);
        let mut c = Connection::new(ConnId(0), 0, &segs[0]);
        let notes: Vec<SegmentNotes> = segs.iter().map(|s| c.update(s)).collect();
        assert!(notes[1].duplicate && !notes[1].syn_retransmit);
        assert!(notes[7].duplicate && !notes[7].fin_retransmit);
        assert_eq!(notes.iter().filter(|n| n.duplicate).count(), 2);
        let r = c.finish(60.0);
        assert_eq!(r.handshake.syn_retransmits, 0);
        assert_eq!(r.handshake.syn_frames.as_slice(), frames(&[1]));
        assert_eq!(r.close.fin_retransmits, 0);
        assert_eq!(r.close.fin_frames.as_slice(), frames(&[6, 8]));
        assert_eq!(r.client_to_server.duplicates, 2);
        assert_eq!(r.client_to_server.packets, 5, "copies are not packets");
        assert_eq!(r.history.as_str(), "ShADdFf", "no T for a copy");
        assert_eq!(r.time_wait.holder, Closer::Client);
    }

    #[test]
    fn a_copy_is_recognised_behind_another_frame_of_its_direction() {
        // A burst captured at two points: data, FIN, data again, FIN again.
        let mut segs = handshake();
        let data = seg(6, C, S, F::ACK | F::PSH, 111, 521, 5);
        let fin = seg(7, C, S, F::FIN | F::ACK, 116, 521, 0);
        segs.extend([data, fin, again(&data, 8, 3), again(&fin, 9, 3)]);
        let mut c = Connection::new(ConnId(0), 0, &segs[0]);
        let notes: Vec<SegmentNotes> = segs.iter().map(|s| c.update(s)).collect();
        assert!(notes[7].duplicate && notes[8].duplicate);
        assert_eq!(c.finish(60.0).close.fin_retransmits, 0);
    }

    #[test]
    fn a_resend_is_not_a_copy_late_or_with_a_new_ip_id_and_a_same_id_copy_may_be_later() {
        let fin = Segment {
            ip_id: Some(9),
            ..seg(6, C, S, F::FIN | F::ACK, 111, 521, 0)
        };
        // With the same non-zero IP id, 1 ms still is a copy, 1.001 ms not.
        for (us, copy) in [(1000, true), (1001, false)] {
            let mut segs = handshake();
            segs.extend([fin, again(&fin, 7, us)]);
            let mut c = Connection::new(ConnId(0), 0, &segs[0]);
            let notes: Vec<SegmentNotes> = segs.iter().map(|s| c.update(s)).collect();
            assert_eq!(notes[6].duplicate, copy, "{us} µs");
        }
        // Without an IP id (IPv6), 101 µs is a resend.
        let v6 = Segment { ip_id: None, ..fin };
        let mut segs = handshake();
        segs.extend([v6, again(&v6, 7, 101)]);
        let mut c = Connection::new(ConnId(0), 0, &segs[0]);
        let notes: Vec<SegmentNotes> = segs.iter().map(|s| c.update(s)).collect();
        assert!(!notes[6].duplicate && notes[6].fin_retransmit);
        // 1 µs later, but with the next IP id: the kernel sent it again.
        let mut segs = handshake();
        let resent = Segment {
            ip_id: Some(10),
            ..again(&fin, 7, 1)
        };
        segs.extend([fin, resent]);
        let mut c = Connection::new(ConnId(0), 0, &segs[0]);
        let notes: Vec<SegmentNotes> = segs.iter().map(|s| c.update(s)).collect();
        assert!(!notes[6].duplicate && notes[6].fin_retransmit);
        // The same frame from the other direction is no copy either.
        let mut c = run(&handshake());
        let mirrored = Segment {
            src: fin.dst,
            dst: fin.src,
            ..fin
        };
        c.update(&fin);
        assert!(!c.update(&again(&mirrored, 7, 1)).duplicate);
    }

    #[test]
    fn a_syn_is_cut_by_the_capture_end_only_before_its_retransmission_is_due() {
        let at = |ms: i64| Timestamp::from_parts(1000, ms * 1_000_000);
        let syn = |frame: u64, ms: i64| Segment {
            ts: at(ms),
            ..seg(frame, C, S, F::SYN, 100, 0, 0)
        };
        let one = run(&[syn(1, 0)]);
        assert!(one.cut_by_capture_end(at(0)), "the SYN is the last packet");
        assert!(one.cut_by_capture_end(at(999)));
        assert!(
            !one.cut_by_capture_end(at(1000)),
            "its retransmission was due"
        );
        // After the second SYN (at 1 s) the next is due 2 s later.
        let two = run(&[syn(1, 0), syn(2, 1000)]);
        assert!(two.cut_by_capture_end(at(2999)));
        assert!(!two.cut_by_capture_end(at(3000)));
        // A scanner repeating its SYN every 175 ms: its next was due long
        // before a capture end 0.85 s later.
        let fast = run(&[syn(1, 0), syn(2, 175), syn(3, 350), syn(4, 525)]);
        assert!(fast.cut_by_capture_end(at(700)));
        assert!(!fast.cut_by_capture_end(at(1375)));
        // An answer of any kind: the outcome is in the capture.
        let refused = run(&[syn(1, 0), seg(2, S, C, F::RST | F::ACK, 0, 101, 0)]);
        assert!(!refused.cut_by_capture_end(at(2)));
        let answered = run(&[syn(1, 0), seg(2, S, C, F::SYN | F::ACK, 500, 101, 0)]);
        assert!(!answered.cut_by_capture_end(at(2)));
        let challenged = run(&[syn(1, 0), seg(2, S, C, F::ACK, 900, 50, 0)]);
        assert!(!challenged.cut_by_capture_end(at(2)));
        // Answered in a one-sided capture: the client's ACK.
        let one_way = run(&[syn(1, 0), seg(2, C, S, F::ACK, 101, 501, 0)]);
        assert!(!one_way.cut_by_capture_end(at(2)));
        // No SYN at all (mid-stream): nothing to cut.
        assert!(!run(&handshake()[2..]).cut_by_capture_end(at(5)));
    }

    #[test]
    fn an_rst_outside_the_receive_window_closes_nothing() {
        // Established; the server's next sequence number is 521, the
        // client's window 1000 (no scaling: no window scale option).
        let mut segs = handshake();
        segs.extend([
            seg(6, S, C, F::RST | F::ACK, 521 + 70_000, 111, 0), // beyond the window
            seg(7, S, C, F::RST, 521u32.wrapping_sub(5000), 0, 0), // behind RCV.NXT
            seg(8, C, S, F::FIN | F::ACK, 111, 521, 0),
            seg(9, S, C, F::FIN | F::ACK, 521, 112, 0),
            seg(10, C, S, F::ACK, 112, 522, 0),
        ]);
        let mut c = Connection::new(ConnId(0), 0, &segs[0]);
        let notes: Vec<SegmentNotes> = segs.iter().map(|s| c.update(s)).collect();
        assert!(notes[5].ignored && notes[6].ignored);
        let r = c.finish(60.0);
        assert_eq!(r.close.kind, CloseKind::Fin);
        assert_eq!(r.close.rst_frame, None);
        assert_eq!(r.time_wait.holder, Closer::Client);
        assert_eq!(r.ignored, 2);
        assert_eq!(r.ignored_frames.as_slice(), frames(&[6, 7]));
        assert_eq!(r.server_to_client.packets, 5, "sent, so counted");
    }

    #[test]
    fn an_rst_at_or_inside_the_window_resets() {
        for (seq, ok) in [
            (521, true),           // RCV.NXT: tcp_validate_incoming resets
            (520, true),           // RCV.NXT - 1 (tcp_reset_check)
            (521 + 65_535, true),  // the window (at least 64 KiB)
            (521 + 65_536, false), // beyond it
            (519, false),
        ] {
            // The client acknowledged everything: RCV.NXT is 521.
            let mut segs = handshake();
            segs.push(seg(6, C, S, F::ACK, 111, 521, 0));
            let mut c = run(&segs);
            let n = c.update(&seg(7, S, C, F::RST | F::ACK, seq, 111, 0));
            assert_eq!(!n.ignored, ok, "seq {seq}");
            assert_eq!(c.finish(60.0).close.kind == CloseKind::Rst, ok, "seq {seq}");
        }
    }

    #[test]
    fn a_segment_far_outside_the_window_moves_nothing() {
        // A corrupt seq (a jump of 98 MB) and a FIN far behind: dropped by
        // tcp_sequence; the real RST after them is in the window again.
        let mut segs = handshake();
        segs.extend([
            seg(6, C, S, F::ACK | F::PSH, 111 + 98_000_000, 521, 0),
            seg(
                7,
                C,
                S,
                F::FIN | F::ACK,
                111u32.wrapping_sub(200_000),
                521,
                0,
            ),
            seg(8, C, S, F::RST | F::ACK, 111, 521, 0),
        ]);
        let mut c = Connection::new(ConnId(0), 0, &segs[0]);
        let notes: Vec<SegmentNotes> = segs.iter().map(|s| c.update(s)).collect();
        assert!(notes[5].ignored && notes[6].ignored && !notes[7].ignored);
        let r = c.finish(60.0);
        assert_eq!(r.close.kind, CloseKind::Rst);
        assert_eq!(
            r.close.active_closer,
            Closer::None,
            "the far FIN was no close"
        );
        assert_eq!(r.close.rst_frame, Some(FrameId(8)));
    }

    #[test]
    fn data_the_capture_missed_moves_the_window_with_the_receivers_acks() {
        // The capture lost 200 KB of the server's data; the client's ACK
        // shows it arrived, so the next segment is in the window.
        let mut segs = handshake();
        segs.extend([
            seg(6, C, S, F::ACK, 111, 200_521, 0),
            seg(7, S, C, F::ACK | F::PSH, 200_521, 111, 100),
        ]);
        let mut c = Connection::new(ConnId(0), 0, &segs[0]);
        let notes: Vec<SegmentNotes> = segs.iter().map(|s| c.update(s)).collect();
        assert!(!notes[6].ignored);
    }

    #[test]
    fn a_split_handshake_establishes_and_its_rst_resets() {
        // SYN, SYN from the server, SYN-ACK from the client, ACK from the
        // server (suricata-verify's split-handshake-4whs), data, then an RST
        // without ACK at RCV.NXT.
        let r = run(&[
            seg(1, C, S, F::SYN, 1000, 0, 0),
            seg(2, S, C, F::SYN, 3000, 0, 0),
            seg(3, C, S, F::SYN | F::ACK, 1000, 3001, 0),
            seg(4, S, C, F::ACK, 3001, 1001, 0),
            seg(5, C, S, F::ACK, 1001, 3001, 4),
            seg(6, S, C, F::ACK, 3001, 1005, 0),
            seg(7, C, S, F::RST, 1005, 0, 0),
        ])
        .finish(60.0);
        assert_eq!(r.ignored, 0);
        assert_eq!(r.handshake.state, HandshakeState::Complete);
        assert_eq!(r.close.kind, CloseKind::Rst);
        assert_eq!(r.close.rst_sender_state, Some(TcpState::Established));
    }

    #[test]
    fn a_client_ack_without_a_captured_syn_ack_completes_the_handshake() {
        // Only the client's direction is in the capture.
        let r = run(&[
            seg(1, C, S, F::SYN, 100, 0, 0),
            seg(2, C, S, F::ACK, 101, 501, 0),
            seg(3, C, S, F::ACK | F::PSH, 101, 501, 10),
            seg(4, C, S, F::FIN | F::ACK, 111, 530, 0),
        ])
        .finish(60.0);
        assert_eq!(r.handshake.state, HandshakeState::Complete);
        assert!(r.handshake.synack_unseen);
        assert_eq!(r.handshake.ack_frame, Some(FrameId(2)));
        assert!(r.one_way);
        assert_eq!(r.close.active_closer, Closer::Client);
        // An unanswered SYN alone is no one-way capture.
        let lone = run(&[seg(1, C, S, F::SYN, 100, 0, 0)]).finish(60.0);
        assert!(!lone.one_way);
        assert_eq!(lone.handshake.state, HandshakeState::SynOnly);
    }

    #[test]
    fn an_rst_its_sender_outlives_ended_nothing() {
        // An in-window RST from the server (not at RCV.NXT), then the
        // server goes on sending data and closes: the RST ended nothing.
        let mut segs = handshake();
        segs.extend([
            seg(6, S, C, F::RST | F::ACK, 600, 111, 0),
            seg(7, S, C, F::ACK | F::PSH, 521, 111, 30),
            seg(8, S, C, F::FIN | F::ACK, 551, 111, 0),
            seg(9, C, S, F::ACK, 111, 552, 0),
            seg(10, C, S, F::FIN | F::ACK, 111, 552, 0),
            seg(11, S, C, F::ACK, 552, 112, 0),
        ]);
        let r = run(&segs).finish(60.0);
        assert_eq!(r.close.kind, CloseKind::Fin);
        assert_eq!(r.close.rst_frame, None);
        assert_eq!(r.ignored_frames.as_slice(), frames(&[6]));
        assert_eq!(r.time_wait.holder, Closer::Server);
        // Data the receiver had in flight after a real RST does not undo it.
        let mut segs = handshake();
        segs.extend([
            seg(6, S, C, F::RST | F::ACK, 521, 111, 0),
            seg(7, C, S, F::ACK | F::PSH, 111, 521, 30),
        ]);
        let r = run(&segs).finish(60.0);
        assert_eq!(r.close.kind, CloseKind::Rst);
        assert_eq!(r.close.rst_frame, Some(FrameId(6)));
    }

    #[test]
    fn a_capture_that_starts_at_the_fin_knows_no_idle_time() {
        // chrissanders' tcp_teardown: the server's FIN is the first frame.
        let r = run(&[
            seg(1, S, C, F::FIN | F::ACK, 900, 200, 0),
            seg(2, C, S, F::ACK, 200, 901, 0),
            seg(3, C, S, F::FIN | F::ACK, 200, 901, 0),
            seg(4, S, C, F::ACK, 901, 201, 0),
        ])
        .finish(60.0);
        assert!(r.role_inferred);
        assert_eq!(r.close.active_closer, Closer::Server);
        assert_eq!(r.close.idle_before_fin_s, None);
        // With a handshake but no data, idle since the handshake.
        let mut segs = handshake();
        segs.truncate(3);
        segs.push(seg(10, C, S, F::FIN | F::ACK, 101, 501, 0));
        let r = run(&segs).finish(60.0);
        assert_eq!(r.close.idle_before_fin_s, Some(0.007));
        // A FIN whose data comes after it on the wire (zeek's
        // ctu-64702-888: the server's 13 bytes arrive behind its FIN): the
        // idle time is not known.
        let mut segs = handshake();
        segs.truncate(3);
        segs.extend([
            seg(6, S, C, F::FIN | F::ACK, 514, 101, 0),
            seg(7, S, C, F::ACK | F::PSH, 501, 101, 13),
        ]);
        let r = run(&segs).finish(60.0);
        assert_eq!(r.close.first_fin_frame, Some(FrameId(6)));
        assert_eq!(r.close.idle_before_fin_s, None);
    }

    #[test]
    fn time_wait_lands_only_where_the_closer_entered_it() {
        // The server closes first, then resets the client's FIN (zeek's
        // ctu-64702-888): it never held TIME_WAIT.
        let mut segs = handshake();
        segs.extend([
            seg(6, S, C, F::FIN | F::ACK, 521, 111, 0),
            seg(7, C, S, F::ACK, 111, 522, 0),
            seg(8, C, S, F::FIN | F::ACK, 111, 522, 0),
            seg(9, S, C, F::RST, 522, 0, 0),
        ]);
        let r = run(&segs).finish(60.0);
        assert_eq!(r.close.active_closer, Closer::Server);
        assert!(!r.time_wait_on(Side::Server) && !r.time_wait_on(Side::Client));
        // The same close with the last ACK: the server holds it.
        segs[8] = seg(9, S, C, F::ACK, 522, 112, 0);
        let r = run(&segs).finish(60.0);
        assert!(r.time_wait_on(Side::Server) && !r.time_wait_on(Side::Client));
        // Reset before any FIN: nobody.
        let mut segs = handshake();
        segs.push(seg(6, S, C, F::RST | F::ACK, 521, 111, 0));
        let r = run(&segs).finish(60.0);
        assert!(!r.time_wait_on(Side::Server) && !r.time_wait_on(Side::Client));
    }

    #[test]
    fn the_window_scale_of_the_handshake_widens_the_window() {
        let scaled = |s: Segment, shift: u8| Segment {
            wscale: Some(shift),
            ..s
        };
        let mut segs = handshake();
        segs[0] = scaled(segs[0], 7);
        segs[1] = scaled(segs[1], 7);
        let mut c = run(&segs);
        // The client's window 1000 << 7 = 128,000 bytes.
        assert!(!c.update(&seg(6, S, C, F::RST, 521 + 127_000, 0, 0)).ignored);
        let mut c = run(&segs);
        assert!(c.update(&seg(6, S, C, F::RST, 521 + 129_000, 0, 0)).ignored);
    }

    #[test]
    fn an_rst_to_a_syn_refuses_only_with_an_acceptable_ack() {
        // tcp_rcv_synsent_state_process: RST+ACK acknowledging the SYN.
        let refused = |rst: Segment| {
            let mut c = run(&[seg(1, C, S, F::SYN, 100, 0, 0)]);
            let n = c.update(&rst);
            (n.ignored, c.finish(60.0).handshake.state)
        };
        assert_eq!(
            refused(seg(2, S, C, F::RST | F::ACK, 0, 101, 0)),
            (false, HandshakeState::Refused)
        );
        assert_eq!(
            refused(seg(2, S, C, F::RST, 0, 0, 0)),
            (true, HandshakeState::SynOnly),
            "no ACK: dropped"
        );
        assert_eq!(
            refused(seg(2, S, C, F::RST | F::ACK, 0, 5000, 0)),
            (true, HandshakeState::SynOnly),
            "acknowledges nothing the client sent"
        );
    }

    #[test]
    fn a_fin_without_ack_closes_when_its_sender_acknowledged_before() {
        // A generated capture's FINs without ACK, each acknowledged.
        let mut segs = handshake();
        segs.extend([
            seg(6, S, C, F::FIN, 521, 0, 0),
            seg(7, C, S, F::ACK, 111, 522, 0),
            seg(8, C, S, F::FIN, 111, 0, 0),
            seg(9, S, C, F::ACK, 522, 112, 0),
        ]);
        let r = run(&segs).finish(60.0);
        assert_eq!(r.ignored, 0);
        // Both FINs count; the second, without ACK, cannot acknowledge the
        // first, so the close looks simultaneous.
        assert_eq!(r.close.first_fin_frame, Some(FrameId(6)));
        assert_eq!(r.close.fin_frames.as_slice(), frames(&[6, 8]));
        assert_ne!(r.close.kind, CloseKind::Open);
    }

    #[test]
    fn probes_without_a_handshake_meaning_are_ignored() {
        // nmap's SYN+FIN+PSH+URG, then a FIN/PSH/URG (Xmas) and a NULL scan.
        let probe = F::SYN | F::FIN | F::PSH | F::URG;
        let mut c = run(&[seg(1, C, S, probe, 100, 0, 0)]);
        for s in [
            seg(2, C, S, F::FIN | F::PSH | F::URG, 100, 0, 0),
            seg(3, C, S, 0, 100, 0, 0),
        ] {
            assert!(c.update(&s).ignored);
        }
        let r = c.finish(60.0);
        assert_eq!(r.ignored, 3);
        assert_eq!(r.handshake.syn_frames.as_slice(), [] as [FrameId; 0]);
        assert_eq!(r.handshake.state, HandshakeState::NotCaptured);
        assert_eq!(r.close.kind, CloseKind::Open);
        assert_eq!(r.close.active_closer, Closer::None);
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
