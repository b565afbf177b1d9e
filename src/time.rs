//! Points in time and spans between them, in nanoseconds.
//!
//! Capture formats store time in many units (pcap µs or ns, pcapng
//! `if_tsresol` powers of ten or two); `capture` converts every one of them
//! into a [`Timestamp`] so nothing downstream ever sees `(sec, usec)` pairs.

use serde::{Serialize, Serializer};
use std::fmt;
use std::time::{Duration as StdDuration, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Builds a timestamp from whole seconds and nanoseconds, saturating far
    /// outside the range any capture can hold instead of overflowing.
    pub fn from_parts(secs: i64, nanos: i64) -> Timestamp {
        Timestamp(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
    }

    pub fn nanos(self) -> i64 {
        self.0
    }

    /// Seconds from `earlier` to `self` (negative when `self` is earlier).
    pub fn secs_since(self, earlier: Timestamp) -> f64 {
        (self.0.saturating_sub(earlier.0)) as f64 / 1e9
    }

    pub fn add_secs(self, secs: f64) -> Timestamp {
        Timestamp(self.0.saturating_add((secs * 1e9) as i64))
    }

    /// RFC 3339 in UTC with nanoseconds, as the JSON contract wants.
    /// Times humantime cannot print (before 1970 or after 9999) fall back to
    /// the raw number of seconds so a hostile file never aborts the report.
    pub fn to_rfc3339(self) -> String {
        if (0..253_402_300_799_000_000_000i128).contains(&(self.0 as i128)) {
            let t = UNIX_EPOCH + StdDuration::from_nanos(self.0 as u64);
            humantime::format_rfc3339_nanos(t).to_string()
        } else {
            format!("{:.9}", self.0 as f64 / 1e9)
        }
    }

    pub fn to_system_time(self) -> Option<SystemTime> {
        u64::try_from(self.0)
            .ok()
            .map(|n| UNIX_EPOCH + StdDuration::from_nanos(n))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_keeps_nanoseconds() {
        let t = Timestamp::from_parts(1_700_000_000, 123_456_789);
        assert_eq!(t.to_rfc3339(), "2023-11-14T22:13:20.123456789Z");
    }

    #[test]
    fn out_of_range_time_prints_seconds_instead_of_panicking() {
        assert_eq!(Timestamp(-1_500_000_000).to_rfc3339(), "-1.500000000");
        assert!(!Timestamp(i64::MAX).to_rfc3339().is_empty());
    }

    #[test]
    fn secs_since_is_signed() {
        let a = Timestamp::from_parts(10, 0);
        let b = Timestamp::from_parts(12, 500_000_000);
        assert_eq!(b.secs_since(a), 2.5);
        assert_eq!(a.secs_since(b), -2.5);
    }
}
