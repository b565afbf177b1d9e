//! The report model: what every format renders and the JSON contract
//! (docs/json.md) serialises as is.

use crate::capture::{self, LinkType};
use crate::decode::SkipReason;
use crate::detect::{self, Finding, Selection, Severity};
use crate::time::Timestamp;
use crate::track::{ConnectionRecord, HostRecord};
use serde::Serialize;
use std::collections::BTreeMap;

/// The JSON contract's name; bumped only with an incompatible change.
pub const SCHEMA: &str = "timewait/1";

/// Every threshold of the analysis; printed in the JSON so a result can be
/// reproduced.
#[derive(Debug, Clone, Serialize)]
pub struct Options {
    /// How long the active closer holds TIME_WAIT (Linux: 60 s, fixed in
    /// the kernel as TCP_TIMEWAIT_LEN).
    pub time_wait_s: f64,
    /// The client's ephemeral port range (`net.ipv4.ip_local_port_range`).
    pub port_range: (u16, u16),
    /// Which finding kinds to report (`--only`, `--skip`).
    pub findings: Selection,
}

impl Options {
    /// The thresholds the detectors use.
    pub fn detect(&self) -> detect::DetectConfig {
        detect::DetectConfig {
            time_wait_s: self.time_wait_s,
            port_range: self.port_range,
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            time_wait_s: 60.0,
            port_range: (32768, 60999),
            findings: Selection::default(),
        }
    }
}

/// Frames per link type.
#[derive(Debug, Clone, Serialize)]
pub struct LinkTypeCount {
    pub link_type: LinkType,
    pub id: u32,
    pub frames: u64,
}

/// One input file, as read.
#[derive(Debug, Clone, Serialize)]
pub struct CaptureReport {
    pub path: String,
    /// `pcap`, `pcap_nanosecond`, `pcap_modified`, `pcapng`; null when the
    /// file could not be read at all.
    pub format: Option<capture::CaptureFormat>,
    pub big_endian: bool,
    pub link_types: Vec<LinkTypeCount>,
    /// Records read (Wireshark's frame count).
    pub packets: u64,
    /// Frames that yielded a TCP segment.
    pub tcp_packets: u64,
    /// Frames without a usable TCP segment, by reason.
    pub skipped: BTreeMap<SkipReason, u64>,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
    /// The file ends in the middle of a record.
    pub truncated: bool,
    /// Why reading stopped early, if it did.
    pub damage: Option<capture::Damage>,
    /// Why the file could not be read at all.
    pub error: Option<String>,
    /// What kind of error that was, for programs (`error` is for people).
    pub error_kind: Option<capture::CaptureErrorKind>,
    /// Times a record's timestamp jumped from the one before it (see
    /// [`is_time_jump`]: more than 30 days forward, a minute back; a clock
    /// set wrong, a stitched or corrupt file): times and durations across
    /// a jump mean nothing.
    pub time_jumps: u64,
    /// The first frames (at most 8) whose time jumped from the record
    /// before.
    pub time_jump_frames: Vec<u64>,
    /// Records not analyzed because their time lies inside what an
    /// earlier input of the run already covered: the same file given
    /// twice, or overlapping captures. Fed again, they would read as
    /// retransmissions and timestamps going back.
    pub overlap_skipped: u64,
    /// Seconds of capture time without the jumps: the sum of the gaps
    /// between consecutive records that are not jumps (equal to
    /// `last - first` for an ordered file without jumps).
    pub captured_s: f64,
}

/// A step forward between consecutive records larger than this (30 days)
/// is damage, not silence: the corpus has files whose records jump by
/// decades. A capture filtered down to one conversation can hold days of
/// silence (zeek's ctu-sme-11 LDAP extract: 4 days between its two
/// connections), so the bound is a month.
pub const TIME_JUMP_S: f64 = 30.0 * 86_400.0;

/// A step back larger than this is damage too: tcpdump writes records in
/// the order the kernel timestamps them, and pcapng files of several
/// interfaces interleave them within a buffer flush (milliseconds), so a
/// minute back is a clock stepped or a record corrupt.
pub const TIME_BACK_JUMP_S: f64 = 60.0;

/// Whether a step of `step` seconds from one record to the next is a jump
/// of the clock or the file. Right after a jump, any step larger than
/// [`TIME_BACK_JUMP_S`] either way is the way back (a corrupt timestamp
/// between good ones: suricata-verify's transform-base64-7296 has records
/// 65,536 s and 2.6 years off).
#[inline]
pub fn is_time_jump(step: f64, after_jump: bool) -> bool {
    !(-TIME_BACK_JUMP_S..=TIME_JUMP_S).contains(&step)
        || (after_jump && step.abs() > TIME_BACK_JUMP_S)
}

impl CaptureReport {
    /// Nothing read yet.
    pub(super) fn new(path: &str) -> CaptureReport {
        CaptureReport {
            path: path.to_string(),
            format: None,
            big_endian: false,
            link_types: Vec::new(),
            packets: 0,
            tcp_packets: 0,
            skipped: BTreeMap::new(),
            first: None,
            last: None,
            truncated: false,
            damage: None,
            error: None,
            error_kind: None,
            time_jumps: 0,
            time_jump_frames: Vec::new(),
            overlap_skipped: 0,
            captured_s: 0.0,
        }
    }
}

/// Counts over all connections.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    pub packets: u64,
    pub tcp_packets: u64,
    pub connections: u64,
    pub by_close_kind: BTreeMap<&'static str, u64>,
    pub by_active_closer: BTreeMap<&'static str, u64>,
    pub by_handshake: BTreeMap<&'static str, u64>,
    /// The host with the most TIME_WAIT sockets at once.
    pub time_wait_peak: Option<TimeWaitPeak>,
    pub findings: BTreeMap<Severity, u64>,
    /// Capture duration, first to last frame, in seconds.
    pub duration_s: f64,
    /// Connections retired before the end of the capture while not closed,
    /// after a long silence (130 s in the handshake, 3 h after it; see
    /// `track::HANDSHAKE_IDLE_S`, `track::IDLE_S`). A later packet on such a
    /// 4-tuple starts a new connection.
    pub idle_retired: u64,
    /// Connections whose handshake says the capture point sits near the
    /// `client` or the `server` (one leg clearly shorter), or `unknown`.
    pub capture_near: BTreeMap<&'static str, u64>,
    /// TCP frames that were a copy of the frame just before in the same
    /// direction (same seq, ack, flags, window, length, IP id, within
    /// `track::DUPLICATE_WINDOW_S`, or `DUPLICATE_WINDOW_SAME_ID_S` with the
    /// same non-zero IPv4 id): one packet captured twice. They keep
    /// their frame numbers but are in no other count.
    pub duplicate_frames: u64,
    /// Records written while their TIME_WAIT window still ran, because more
    /// than `track::COMPACT_ABOVE` closed connections waited at once (see
    /// `track::tomb`). Absent when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub early_records: u64,
    /// Segments of a connection that came after its record was written
    /// early: counted here, in no record and seen by no detector. Absent
    /// when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub late_segments: u64,
    /// Records streamed (`conns --format ndjson`) before a new incarnation
    /// took their 4-tuple over: their `time_wait.until` is the full window
    /// and `reused_by` null, where a kept record is cut. Absent when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub streamed_uncut: u64,
    /// Connections of which the capture holds one direction only, though
    /// the other sent (see `ConnectionRecord::one_way`).
    pub one_way_connections: u64,
    /// Connections already open when the capture began (no SYN or SYN-ACK
    /// in it): what happened before their first frame is not in the file.
    pub started_before_capture: u64,
    /// Timestamp jumps between consecutive records, over all inputs (see [`CaptureReport::time_jumps`]).
    pub time_jumps: u64,
    /// Capture time without those jumps, over all inputs.
    pub captured_s: f64,
    /// Records of later inputs skipped because an earlier input already
    /// covered their time (see [`CaptureReport::overlap_skipped`]).
    pub overlap_skipped: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimeWaitPeak {
    pub ip: std::net::IpAddr,
    pub sockets: u64,
    pub at: Option<Timestamp>,
}

/// The connection records of a run, by id: held (`conns`, `show`), or
/// for the JSON report stored serialized ([`super::Retain::Serialized`]),
/// when only [`Connections::write_json`] writes them and the vector is
/// empty.
#[derive(Debug, Clone, Default)]
pub struct Connections {
    records: Vec<ConnectionRecord>,
    stored: Option<std::sync::Arc<super::stored::Stored>>,
}

impl Connections {
    pub(super) fn stored(stored: super::stored::Stored) -> Connections {
        Connections {
            records: Vec::new(),
            stored: Some(std::sync::Arc::new(stored)),
        }
    }

    /// The array as `serde_json::to_writer_pretty` writes it in the report
    /// (at depth 1), whether held or stored.
    pub fn write_json(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        match &self.stored {
            Some(s) => s.write_array(out),
            None => {
                let mut indented = super::stored::Indented { out, by: b"  " };
                Ok(serde_json::to_writer_pretty(&mut indented, &self.records)?)
            }
        }
    }

    /// Fails when the records could not be stored (their temporary file
    /// could not be written): checked before a report is begun.
    pub fn check(&self) -> std::io::Result<()> {
        self.stored.as_ref().map_or(Ok(()), |s| s.check())
    }

    /// Whether the records are stored serialized (none held).
    pub fn is_stored(&self) -> bool {
        self.stored.is_some()
    }
}

impl From<Vec<ConnectionRecord>> for Connections {
    fn from(records: Vec<ConnectionRecord>) -> Connections {
        Connections {
            records,
            stored: None,
        }
    }
}

impl std::ops::Deref for Connections {
    type Target = Vec<ConnectionRecord>;
    fn deref(&self) -> &Vec<ConnectionRecord> {
        &self.records
    }
}

impl std::ops::DerefMut for Connections {
    fn deref_mut(&mut self) -> &mut Vec<ConnectionRecord> {
        &mut self.records
    }
}

/// The held records (a stored run's are written by
/// [`Connections::write_json`] only).
impl Serialize for Connections {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.records.serialize(s)
    }
}

/// Everything timewait knows about a run: the input of every report.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub schema: &'static str,
    pub version: &'static str,
    pub options: Options,
    pub captures: Vec<CaptureReport>,
    pub summary: Summary,
    pub connections: Connections,
    pub findings: Vec<Finding>,
    pub hosts: Vec<HostRecord>,
    /// Host information (`--host-info`, CAPTURE.host.json); absent from the
    /// JSON when none was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<crate::host::HostReport>,
}

impl Analysis {
    /// Time of the first frame of the run, the origin of relative times.
    pub fn origin(&self) -> Option<Timestamp> {
        self.captures.iter().filter_map(|c| c.first).min()
    }

    /// Whether any input could not be read or stopped early on damage
    /// other than a truncated tail.
    pub fn has_input_errors(&self) -> bool {
        self.captures.iter().any(|c| {
            c.error.is_some()
                || c.damage.as_ref().is_some_and(|d| {
                    !matches!(
                        d.kind,
                        capture::DamageKind::Truncated | capture::DamageKind::Interrupted
                    )
                })
        })
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
