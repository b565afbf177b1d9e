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

    /// `self` moved by `secs` seconds, to the nearest nanosecond; saturates
    /// at the ends of the range (and treats NaN as 0) instead of overflowing.
    pub fn add_secs(self, secs: f64) -> Timestamp {
        // Round, not truncate: 1.001 * 1e9 is 1000999999.9999999 in f64, and
        // `as i64` alone would land one nanosecond early (the round-trip
        // property test below found it). `as` saturates and maps NaN to 0.
        Timestamp(self.0.saturating_add((secs * 1e9).round() as i64))
    }

    /// RFC 3339 in UTC with nanoseconds, as the JSON contract wants.
    /// Times humantime cannot print (before 1970 or after 9999) fall back to
    /// the raw number of seconds so a hostile file never aborts the report.
    pub fn to_rfc3339(self) -> String {
        Rfc3339(self).to_string()
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

/// A timestamp printed as [`Timestamp::to_rfc3339`] says, straight into a
/// formatter: serializing streams it into the JSON without a string per
/// timestamp.
struct Rfc3339(Timestamp);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.0;
        if (0..253_402_300_799_000_000_000i128).contains(&(nanos as i128)) {
            let t = UNIX_EPOCH + StdDuration::from_nanos(nanos as u64);
            write!(f, "{}", humantime::format_rfc3339_nanos(t))
        } else {
            write!(f, "{:.9}", nanos as f64 / 1e9)
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&Rfc3339(*self))
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

    // The interval arithmetic TIME_WAIT rests on: `until = from + 60 s`,
    // and every duration printed is a `secs_since`.
    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Capture-like times: 1970 to 2100, to the nanosecond.
        fn capture_time() -> impl Strategy<Value = Timestamp> {
            (0i64..4_102_444_800_000_000_000).prop_map(Timestamp)
        }

        proptest! {
            #[test]
            fn add_secs_then_secs_since_round_trips(t in capture_time(), ns in -(1i64 << 50)..(1i64 << 50)) {
                // Spans up to ~13 days (2^50 ns) at full nanosecond precision:
                // the two f64 roundings stay well under half a nanosecond.
                let secs = ns as f64 / 1e9;
                let later = t.add_secs(secs);
                prop_assert_eq!(later, Timestamp(t.0 + ns));
                prop_assert_eq!(later.secs_since(t), secs);
                prop_assert_eq!(t.secs_since(later), -secs);
            }

            #[test]
            fn secs_since_then_add_secs_round_trips(a in capture_time(), b in capture_time()) {
                // Any two capture times: exact to within f64's precision of
                // the span (1 ns per 2^53 ns, i.e. < 1 µs over 130 years).
                let back = a.add_secs(b.secs_since(a));
                let tolerance = ((b.0 - a.0).unsigned_abs() >> 52) + 1;
                prop_assert!(back.0.abs_diff(b.0) <= tolerance, "{back:?} vs {b:?}");
            }

            #[test]
            fn time_wait_interval_contains_exactly_its_span(t in capture_time(), tw_ms in 0u32..=3_600_000, probe_ms in 0u32..=7_200_000) {
                // [from, from + tw): a probe is inside iff its offset < tw.
                let tw = f64::from(tw_ms) / 1e3;
                let until = t.add_secs(tw);
                prop_assert_eq!(until.0 - t.0, i64::from(tw_ms) * 1_000_000);
                let probe = t.add_secs(f64::from(probe_ms) / 1e3);
                prop_assert_eq!(probe >= t && probe < until, probe_ms < tw_ms);
            }

            #[test]
            fn add_secs_is_monotonic_and_saturates(t: i64, a: f64, b: f64) {
                // Any input, even NaN and infinities: no panic, no wrap.
                let (x, y) = (Timestamp(t).add_secs(a), Timestamp(t).add_secs(b));
                if a <= b {
                    prop_assert!(x <= y);
                }
                let _ = x.secs_since(y);
                let _ = x.to_rfc3339();
            }
        }
    }
}
