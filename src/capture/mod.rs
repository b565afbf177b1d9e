//! Reading capture files: pcap and pcapng framing, byte order, timestamp
//! units and per-interface link types, turned into numbered [`Record`]s.
//!
//! Only `reader.rs` touches pcap-parser; no pcap-parser type leaves this
//! module. The format is detected from the magic number, never from the file
//! name (many `.pcap` files are pcapng).

mod compressed;
mod reader;
#[cfg(test)]
mod tests;
mod timestamp;

pub use compressed::Input;

pub use reader::{first_timestamp, in_time_order, read_capture, read_capture_until};

use crate::time::Timestamp;
use serde::Serialize;
use std::fmt;

/// A LINKTYPE_ value from the file (<https://www.tcpdump.org/linktypes.html>).
/// An open registry, so a newtype with constants rather than an enum:
/// unknown values stay representable and countable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkType(pub u32);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    pub const RAW: LinkType = LinkType(101);
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const LINUX_SLL2: LinkType = LinkType(276);
    /// DLT_RAW as some BSDs number it in pcap headers.
    pub const RAW_BSD12: LinkType = LinkType(12);
    pub const RAW_BSD14: LinkType = LinkType(14);
    /// ARCnet with the BSD header (source, destination, protocol).
    pub const ARCNET_BSD: LinkType = LinkType(7);
    /// PPP (RFC 1661), with or without the RFC 1662 `ff 03` framing.
    pub const PPP: LinkType = LinkType(9);
    /// FDDI (its MAC header, then 802.2 LLC).
    pub const FDDI: LinkType = LinkType(10);
    /// PPP in HDLC-like framing (RFC 1662), or Cisco HDLC.
    pub const PPP_HDLC: LinkType = LinkType(50);
    /// Cisco HDLC: address, control, EtherType.
    pub const C_HDLC: LinkType = LinkType(104);
    /// IEEE 802.11 wireless LAN, no radio header.
    pub const IEEE802_11: LinkType = LinkType(105);
    /// Radiotap header, then IEEE 802.11.
    pub const IEEE802_11_RADIOTAP: LinkType = LinkType(127);
    /// ARCnet with the Linux header (adds a 2-byte offset field).
    pub const ARCNET_LINUX: LinkType = LinkType(129);
    /// Per-Packet Information header, then a frame of the link type it names.
    pub const PPI: LinkType = LinkType(192);
    /// Linux netfilter NFLOG: TLVs, one of which is the IP packet.
    pub const NFLOG: LinkType = LinkType(239);
    /// IP over InfiniBand (RFC 4391 4-byte header).
    pub const IPOIB: LinkType = LinkType(242);
    /// Juniper's capture cookie header, then Ethernet (tcpdump's
    /// print-juniper.c).
    pub const JUNIPER_ETHER: LinkType = LinkType(178);

    /// The name Wireshark's capinfos uses, or `linktype-N`.
    pub fn name(self) -> String {
        let known = match self {
            LinkType::NULL => "null",
            LinkType::ETHERNET => "ether",
            LinkType::RAW | LinkType::RAW_BSD12 | LinkType::RAW_BSD14 => "rawip",
            LinkType::LOOP => "loop",
            LinkType::LINUX_SLL => "linux-sll",
            LinkType::IPV4 => "rawip4",
            LinkType::IPV6 => "rawip6",
            LinkType::LINUX_SLL2 => "linux-sll2",
            LinkType::ARCNET_BSD => "arcnet",
            LinkType::PPP | LinkType::PPP_HDLC => "ppp",
            LinkType::FDDI => "fddi-swapped",
            LinkType::C_HDLC => "chdlc",
            LinkType::IEEE802_11 => "ieee-802-11",
            LinkType::IEEE802_11_RADIOTAP => "ieee-802-11-radiotap",
            LinkType::ARCNET_LINUX => "arcnet_linux",
            LinkType::PPI => "ppi",
            LinkType::NFLOG => "nflog",
            LinkType::IPOIB => "ip-ib",
            LinkType::JUNIPER_ETHER => "juniper-ether",
            _ => return format!("linktype-{}", self.0),
        };
        known.to_string()
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for LinkType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

/// One captured frame. `frame` is Wireshark's `frame.number`: 1-based over
/// every packet record of the file, whatever it carries.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub frame: u64,
    pub ts: Timestamp,
    pub link: LinkType,
    pub data: &'a [u8],
    /// Length on the wire; larger than `data.len()` when the snap length cut it.
    pub orig_len: u32,
}

/// The container format, as detected from the magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureFormat {
    Pcap,
    PcapNanosecond,
    PcapModified,
    Pcapng,
}

impl fmt::Display for CaptureFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CaptureFormat::Pcap => "pcap",
            CaptureFormat::PcapNanosecond => "pcap (nanosecond)",
            CaptureFormat::PcapModified => "pcap (modified)",
            CaptureFormat::Pcapng => "pcapng",
        })
    }
}

/// Why reading stopped before the end of the data. Everything before
/// `after_frame` was delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Damage {
    /// What went wrong.
    pub kind: DamageKind,
    /// The last complete frame delivered (0 when none).
    pub after_frame: u64,
    /// Byte offset in the file where the unreadable part starts.
    pub offset: u64,
    /// A sentence for people.
    pub message: String,
}

impl Damage {
    /// What the results cover, for people: "results cover frames 1-29", or
    /// that nothing complete came before the damage.
    pub fn coverage(&self) -> String {
        match self.after_frame {
            0 => "no complete record came before it".to_string(),
            n => format!("results cover frames 1-{n}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DamageKind {
    /// The file ends in the middle of a record (tcpdump killed, disk full).
    Truncated,
    /// A record or block cannot be parsed (absurd length, bad block).
    Corrupt,
    /// The operating system failed to read further.
    Io,
    /// Reading was stopped on request (Ctrl-C): not damage to the file,
    /// but the results likewise cover only what came before.
    Interrupted,
}

/// What the reader learned about the file itself.
#[derive(Debug, Clone, Serialize)]
pub struct CaptureFacts {
    pub format: CaptureFormat,
    /// Big-endian file (or, for pcapng, at least one big-endian section).
    pub big_endian: bool,
    /// pcapng sections (1 for pcap).
    pub sections: u32,
    /// pcapng interfaces over all sections (1 for pcap).
    pub interfaces: u32,
    /// Packet records delivered.
    pub records: u64,
    /// Bytes consumed from the input.
    pub bytes: u64,
    /// Set when reading stopped early; results cover the records before it.
    pub damage: Option<Damage>,
    /// pcapng blocks that carry no packet and that we do not use, by type.
    pub skipped_blocks: u64,
}

/// Errors that prevent reading a capture at all.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("the file is empty")]
    Empty,
    #[error(
        "not a pcap or pcapng file (starts with {}); write captures with `tcpdump -w FILE`",
        hex(head)
    )]
    NotACapture { head: [u8; 4] },
    #[error("the file is too short to hold a capture header ({len} bytes)")]
    ShortHeader { len: usize },
    #[error("unsupported capture header: {reason}")]
    BadHeader { reason: String },
    #[error("cannot read input")]
    Io(#[source] std::io::Error),
    /// The reading thread could not be started (the system's limit on
    /// threads or memory): nothing is wrong with the input.
    #[error("cannot start the thread that reads the input")]
    Thread(#[source] std::io::Error),
}

/// What kind of error kept a capture from being read: the JSON
/// `captures[].error_kind`, for programs that must not parse the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureErrorKind {
    /// The file could not be opened (missing, a directory, no permission).
    Open,
    Empty,
    NotACapture,
    ShortHeader,
    BadHeader,
    Io,
    Thread,
}

impl CaptureError {
    pub fn kind(&self) -> CaptureErrorKind {
        match self {
            CaptureError::Empty => CaptureErrorKind::Empty,
            CaptureError::NotACapture { .. } => CaptureErrorKind::NotACapture,
            CaptureError::ShortHeader { .. } => CaptureErrorKind::ShortHeader,
            CaptureError::BadHeader { .. } => CaptureErrorKind::BadHeader,
            CaptureError::Io(_) => CaptureErrorKind::Io,
            CaptureError::Thread(_) => CaptureErrorKind::Thread,
        }
    }
}

/// `7f 45 4c 46`: the first bytes of a file that is no capture.
fn hex(head: &[u8]) -> String {
    head.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
