//! Bytes + link type -> `decode::decode`. The first byte picks the link
//! type (one of those `decode` knows, or any raw value), the rest is the
//! frame; half the time the original length claims more than was captured,
//! as snap-length-cut frames do.
#![no_main]

use libfuzzer_sys::fuzz_target;
use timewait::capture::{LinkType, Record};
use timewait::decode::decode;
use timewait::time::Timestamp;

const LINKS: &[LinkType] = &[
    LinkType::NULL,
    LinkType::ETHERNET,
    LinkType::RAW,
    LinkType::LOOP,
    LinkType::LINUX_SLL,
    LinkType::IPV4,
    LinkType::IPV6,
    LinkType::LINUX_SLL2,
    LinkType::RAW_BSD12,
    LinkType::RAW_BSD14,
    LinkType::ARCNET_BSD,
    LinkType::PPP,
    LinkType::FDDI,
    LinkType::PPP_HDLC,
    LinkType::C_HDLC,
    LinkType::IEEE802_11,
    LinkType::IEEE802_11_RADIOTAP,
    LinkType::ARCNET_LINUX,
    LinkType::PPI,
    LinkType::NFLOG,
    LinkType::IPOIB,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, frame)) = data.split_first() else {
        return;
    };
    let link = match LINKS.get(usize::from(selector & 0x7f)) {
        Some(l) => *l,
        None => LinkType(u32::from(selector)),
    };
    let orig_len = if selector & 0x80 != 0 {
        frame.len() as u32 + 1000
    } else {
        frame.len() as u32
    };
    let record = Record {
        frame: 1,
        ts: Timestamp::from_parts(1_700_000_000, 0),
        link,
        data: frame,
        orig_len,
    };
    if let Ok(seg) = decode(&record) {
        assert_eq!(seg.frame.0, 1);
        let _ = seg.seq_len();
        let _ = seg.fin_seq();
    }
});
