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

    // Properties of the serial order over the whole 2^32 circle, wrap
    // included (RFC 1982 §3.2). Shared by SeqNum and TsVal (one macro).
    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn before_and_after_are_antisymmetric(a: u32, b: u32) {
                let (x, y) = (SeqNum(a), SeqNum(b));
                prop_assert_eq!(x.before(y), y.after(x));
                prop_assert_eq!(x.after(y), y.before(x));
                // Never both; neither only when equal or exactly 2^31 apart
                // (where both directions call the other "before", as Linux).
                prop_assert!(!(x.before(y) && x.after(y)));
                if a == b {
                    prop_assert!(!x.before(y) && !x.after(y));
                } else if a.wrapping_sub(b) != 1 << 31 {
                    prop_assert!(x.before(y) != y.before(x));
                }
                let (t, u) = (TsVal(a), TsVal(b));
                prop_assert_eq!(t.before(u), x.before(y));
                prop_assert_eq!(t.after(u), x.after(y));
            }

            #[test]
            fn plus_less_than_half_the_circle_is_after(a: u32, n in 1u32..(1 << 31)) {
                let x = SeqNum(a);
                prop_assert!(x.plus(n).after(x));
                prop_assert!(x.before(x.plus(n)));
                prop_assert_eq!(x.plus(n).diff(x), n as i32);
                let t = TsVal(a);
                prop_assert!(t.plus(n).after(t));
                prop_assert!(!t.plus(n).before(t));
            }

            #[test]
            fn plus_more_than_half_the_circle_is_before(a: u32, n in (1u32 << 31) + 1..=u32::MAX) {
                // Going forward by more than 2^31 lands serially behind.
                prop_assert!(SeqNum(a).plus(n).before(SeqNum(a)));
                prop_assert!(TsVal(a).plus(n).before(TsVal(a)));
            }

            #[test]
            fn wrap_across_zero_keeps_order(back in 1u32..(1 << 30), fwd in 0u32..(1 << 30)) {
                // u32::MAX - back + 1 .. and fwd straddle the wrap: the small
                // raw value is the later one.
                let old = SeqNum(0u32.wrapping_sub(back));
                let new = SeqNum(fwd);
                prop_assert!(old.before(new));
                prop_assert!(new.after(old));
                prop_assert_eq!(new.diff(old), (back + fwd) as i32);
                prop_assert_eq!(old.plus(back + fwd), new);
            }

            #[test]
            fn diff_inverts_plus(a: u32, b: u32) {
                let (x, y) = (SeqNum(a), SeqNum(b));
                prop_assert_eq!(y.plus(x.diff(y) as u32), x);
                prop_assert_eq!(x.diff(y).wrapping_neg(), y.diff(x));
            }

            #[test]
            fn order_is_transitive_within_half_a_circle(a: u32, d1 in 1u32..(1 << 30), d2 in 1u32..(1 << 30)) {
                // Within a window under 2^31 the serial order is a total order.
                let x = TsVal(a);
                let y = x.plus(d1);
                let z = y.plus(d2);
                prop_assert!(x.before(y) && y.before(z) && x.before(z));
            }
        }
    }
}
