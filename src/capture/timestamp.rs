//! Converting the timestamp encodings of pcap and pcapng into [`Timestamp`].

use crate::time::Timestamp;

/// The resolution of a pcapng interface (`if_tsresol`) plus its offset
/// (`if_tsoffset`, whole seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcapngClock {
    /// Ticks per second; `None` when `if_tsresol` is out of range.
    pub ticks_per_sec: Option<u64>,
    pub offset_secs: i64,
}

impl Default for PcapngClock {
    /// The pcapng default: microseconds, no offset.
    fn default() -> Self {
        PcapngClock {
            ticks_per_sec: Some(1_000_000),
            offset_secs: 0,
        }
    }
}

impl PcapngClock {
    /// Decodes `if_tsresol`: the high bit selects a power of two, otherwise a
    /// power of ten (pcapng spec §4.2).
    pub fn from_tsresol(tsresol: u8, offset_secs: i64) -> PcapngClock {
        let exp = u32::from(tsresol & 0x7f);
        let ticks_per_sec = if tsresol & 0x80 == 0 {
            10u64.checked_pow(exp)
        } else {
            1u64.checked_shl(exp)
        };
        PcapngClock {
            ticks_per_sec,
            offset_secs,
        }
    }

    /// The time of an EPB/OPB whose 64-bit tick count is `high:low`.
    pub fn to_timestamp(self, high: u32, low: u32) -> Timestamp {
        let ticks = (u128::from(high) << 32) | u128::from(low);
        let per_sec = u128::from(self.ticks_per_sec.unwrap_or(1_000_000).max(1));
        let secs = ticks / per_sec;
        let frac_ns = (ticks % per_sec) * 1_000_000_000 / per_sec;
        let secs = i64::try_from(secs).unwrap_or(i64::MAX);
        // frac_ns < 1e9 by construction
        Timestamp::from_parts(secs.saturating_add(self.offset_secs), frac_ns as i64)
    }
}

/// A classic pcap record time: seconds plus micro- or nanoseconds. Fractions
/// past one second (seen in damaged files) are carried, not rejected, as
/// Wireshark does.
pub fn pcap_timestamp(secs: u32, frac: u32, nanosecond: bool) -> Timestamp {
    let nanos = if nanosecond {
        i64::from(frac)
    } else {
        i64::from(frac) * 1000
    };
    Timestamp::from_parts(i64::from(secs), nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcapng_default_is_microseconds() {
        let t = PcapngClock::default().to_timestamp(0, 1_500_000);
        assert_eq!(t, Timestamp::from_parts(1, 500_000_000));
    }

    #[test]
    fn pcapng_nanosecond_resolution() {
        let c = PcapngClock::from_tsresol(9, 0);
        let ticks: u64 = 1_700_000_000_123_456_789;
        let t = c.to_timestamp((ticks >> 32) as u32, ticks as u32);
        assert_eq!(t, Timestamp::from_parts(1_700_000_000, 123_456_789));
    }

    #[test]
    fn pcapng_power_of_two_resolution_and_offset() {
        // 2^10 ticks per second: 1536 ticks = 1.5 s; offset adds 100 s.
        let c = PcapngClock::from_tsresol(0x80 | 10, 100);
        assert_eq!(
            c.to_timestamp(0, 1536),
            Timestamp::from_parts(101, 500_000_000)
        );
    }

    #[test]
    fn pcapng_absurd_resolution_does_not_panic() {
        let c = PcapngClock::from_tsresol(0x7f, 0);
        assert_eq!(c.ticks_per_sec, None);
        let _ = c.to_timestamp(u32::MAX, u32::MAX);
        let c = PcapngClock::from_tsresol(0xff, i64::MAX);
        let _ = c.to_timestamp(u32::MAX, u32::MAX);
    }

    #[test]
    fn pcap_micro_and_nano() {
        assert_eq!(pcap_timestamp(2, 5, false), Timestamp(2_000_005_000));
        assert_eq!(pcap_timestamp(2, 5, true), Timestamp(2_000_000_005));
    }
}
