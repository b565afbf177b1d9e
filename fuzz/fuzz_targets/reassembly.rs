//! Bytes -> a stream of IPv4/IPv6 fragments -> `decode::Decoder`. Each
//! fragment takes a few control bytes (version, datagram id out of four, so
//! queues collide and overlap, offset, More Fragments, length, time step)
//! and then that many data bytes; every fragment carries the same
//! addresses, so offsets, lengths and overlaps are what varies. Checks:
//! memory never passes the (small) cap by more than one fragment's worth,
//! (its data twice over, for a buffer that doubles, plus its header chain),
//! and every frame fed in is a segment or counted exactly once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use timewait::capture::{LinkType, Record};
use timewait::decode::{Decoder, frag::Limits};
use timewait::time::Timestamp;

const CAP: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut d = Decoder::with_limits(Limits {
        timeout_ns: 1_000_000_000,
        high_thresh: CAP,
    });
    let mut rest = data;
    let (mut frames, mut segments, mut ts) = (0u64, 0u64, 0i64);
    let mut frame = Vec::new();
    while let [ctl, off_hi, off_lo, len, step, tail @ ..] = rest {
        let len = usize::from(*len) * 4;
        let (body, next) = tail.split_at(len.min(tail.len()));
        rest = next;
        let v6 = ctl & 0x80 != 0;
        let id = ctl & 0x03;
        let more = ctl & 0x04 != 0;
        let offset = u16::from_be_bytes([*off_hi, *off_lo]) & 0x1fff;
        frame.clear();
        if v6 {
            let plen = (8 + body.len()) as u16;
            frame.extend_from_slice(&[0x60, 0, 0, 0]);
            frame.extend_from_slice(&plen.to_be_bytes());
            frame.extend_from_slice(&[44, 64]);
            frame.extend_from_slice(&[0xfd; 16]);
            frame.extend_from_slice(&[0xfe; 16]);
            let fo = (offset << 3) | u16::from(more);
            frame.extend_from_slice(&[6, 0]);
            frame.extend_from_slice(&fo.to_be_bytes());
            frame.extend_from_slice(&u32::from(id).to_be_bytes());
        } else {
            let total = (20 + body.len()) as u16;
            let fo = offset | if more { 0x2000 } else { 0 };
            frame.extend_from_slice(&[0x45, 0]);
            frame.extend_from_slice(&total.to_be_bytes());
            frame.extend_from_slice(&u16::from(id).to_be_bytes());
            frame.extend_from_slice(&fo.to_be_bytes());
            frame.extend_from_slice(&[64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        }
        frame.extend_from_slice(body);
        ts += i64::from(*step) * 20_000_000;
        frames += 1;
        let record = Record {
            frame: frames,
            ts: Timestamp(ts),
            link: LinkType::RAW,
            data: &frame,
            orig_len: frame.len() as u32,
        };
        if let Some(seg) = d.decode(&record) {
            assert_eq!(seg.frame.0, frames);
            segments += 1;
        }
        let bound = CAP + 3 * 65_536;
        assert!(d.fragment_memory() <= bound, "{}", d.fragment_memory());
    }
    let skipped: u64 = d.finish().values().sum();
    assert_eq!(frames, segments + skipped);
    assert_eq!(d.fragment_memory(), 0);
});
