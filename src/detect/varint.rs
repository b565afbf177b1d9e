//! Byte-packed lists for detectors that keep something of every case
//! until the end: LEB128 varints (integer-encoding's, as protobuf writes
//! them), signed values zigzagged, mostly of differences from the previous
//! entry. A detector's entries come close together in id, frame and time,
//! so one takes a few bytes instead of the tens a struct in a `Vec` takes.
//!
//! The buffers are the detectors' own, written and read by the same code,
//! so a short or malformed one is a bug here: reading panics.

use integer_encoding::VarInt;

/// Appends `v`.
#[inline]
pub(crate) fn put(buf: &mut Vec<u8>, v: u64) {
    let mut bytes = [0u8; 10];
    let n = v.encode_var(&mut bytes);
    append(buf, &bytes[..n]);
}

/// Appends `v`, zigzagged: small magnitudes of either sign are small.
#[inline]
pub(crate) fn put_signed(buf: &mut Vec<u8>, v: i64) {
    let mut bytes = [0u8; 10];
    let n = v.encode_var(&mut bytes);
    append(buf, &bytes[..n]);
}

/// A varint's one to ten bytes, a byte at a time: `extend_from_slice`
/// called `memcpy` for each, a fifth of the instructions of a
/// `connection-churn` sample (callgrind).
#[inline]
fn append(buf: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        buf.push(b);
    }
}

/// The value at `at`, which moves past it.
pub(crate) fn get(buf: &[u8], at: &mut usize) -> u64 {
    let (v, n) = u64::decode_var(&buf[*at..]).expect("a varint this module wrote");
    *at += n;
    v
}

/// The signed value at `at`, which moves past it.
pub(crate) fn get_signed(buf: &[u8], at: &mut usize) -> i64 {
    let (v, n) = i64::decode_var(&buf[*at..]).expect("a varint this module wrote");
    *at += n;
    v
}

/// `to - from`, whatever the sign (wrapping, so exact for any two u64).
pub(crate) fn put_delta(buf: &mut Vec<u8>, from: u64, to: u64) {
    put_signed(buf, to.wrapping_sub(from) as i64);
}

/// The value [`put_delta`] wrote against `from`.
pub(crate) fn get_delta(buf: &[u8], at: &mut usize, from: u64) -> u64 {
    from.wrapping_add(get_signed(buf, at) as u64)
}

/// Room for `more` bytes ([`crate::mem::reserve_by_eighth`]): these
/// buffers live long and there are thousands of them; by 128 bytes at
/// least (by the 40 bytes a `connection-churn` sample asks for, a pair's
/// buffer was reallocated every second connection: a twentieth of the
/// folding thread on 1G/3).
pub(crate) fn reserve(buf: &mut Vec<u8>, more: usize) {
    crate::mem::reserve_by_eighth(buf, more, 128);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_differences_come_back_as_written() {
        let values = [0u64, 1, 127, 128, 300, 1 << 35, u64::MAX - 1, u64::MAX];
        let signed = [0i64, -1, 1, -64, 64, i64::MIN, i64::MAX];
        let mut buf = Vec::new();
        for &v in &values {
            put(&mut buf, v);
        }
        for &v in &signed {
            put_signed(&mut buf, v);
        }
        for w in values.windows(2) {
            put_delta(&mut buf, w[1], w[0]);
        }
        let mut at = 0;
        for &v in &values {
            assert_eq!(get(&buf, &mut at), v);
        }
        for &v in &signed {
            assert_eq!(get_signed(&buf, &mut at), v);
        }
        for w in values.windows(2) {
            assert_eq!(get_delta(&buf, &mut at, w[1]), w[0]);
        }
        assert_eq!(at, buf.len());
        // Small values of either sign take one byte: the point of packing.
        let mut small = Vec::new();
        put_signed(&mut small, -63);
        put(&mut small, 127);
        assert_eq!(small.len(), 2);
    }
}
