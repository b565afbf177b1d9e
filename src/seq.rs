//! 32-bit serial-number arithmetic for TCP sequence numbers and timestamps.
//!
//! RFC 1982 and RFC 9293 §3.4: sequence numbers live in a circle of 2^32,
//! so "a is before b" means the forward distance from a to b is less than
//! 2^31, `(b - a) as i32 > 0`. RFC 7323 §5.2 applies the same rule to the
//! timestamp option (PAWS). Never compare raw `u32`s with `<`.

use serde::{Serialize, Serializer};
use std::fmt;

/// A TCP sequence or acknowledgment number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNum(pub u32);

/// A TCP timestamp value (TSval or TSecr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TsVal(pub u32);

macro_rules! serial {
    ($t:ident) => {
        impl $t {
            /// Signed distance from `other` to `self` on the 2^32 circle.
            pub fn diff(self, other: $t) -> i32 {
                self.0.wrapping_sub(other.0) as i32
            }
            /// `self` comes strictly before `other` (serially).
            pub fn before(self, other: $t) -> bool {
                self.diff(other) < 0
            }
            /// `self` comes strictly after `other` (serially).
            pub fn after(self, other: $t) -> bool {
                self.diff(other) > 0
            }
            pub fn plus(self, n: u32) -> $t {
                $t(self.0.wrapping_add(n))
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_u32(self.0)
            }
        }
    };
}

serial!(SeqNum);
serial!(TsVal);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_wraps_past_2_pow_32() {
        let near_end = SeqNum(u32::MAX - 10);
        let wrapped = near_end.plus(20);
        assert_eq!(wrapped, SeqNum(9));
        assert!(near_end.before(wrapped));
        assert!(wrapped.after(near_end));
        assert_eq!(wrapped.diff(near_end), 20);
    }

    #[test]
    fn tsval_wrap_is_newer_not_older() {
        // A TSval that wrapped past 2^32 is serially newer: never a PAWS reject.
        let old = TsVal(4_294_967_000);
        let new = TsVal(500);
        assert!(new.after(old));
        assert!(!new.before(old));
    }

    #[test]
    fn equal_is_neither_before_nor_after() {
        assert!(!SeqNum(7).before(SeqNum(7)));
        assert!(!SeqNum(7).after(SeqNum(7)));
    }

    #[test]
    fn half_circle_apart_is_before() {
        // 2^31 apart: i32::MIN, so "before" — matches Linux's before()/after().
        assert!(SeqNum(0).diff(SeqNum(1 << 31)) < 0);
    }
}
