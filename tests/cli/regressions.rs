//! Inputs that once crashed or misled timewait (`tests/regressions/`,
//! provenance in its README), replayed in-process: no panic, and the
//! outcome each should have.

use std::path::Path;
use timewait::analysis::{Options, analyze};
use timewait::capture::DamageKind;

fn regression(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/regressions")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn process_information_block_shorter_than_a_block_header_is_corrupt() {
    // pipeline fuzzer, crash-27baf7c15dabc3ea0e98ee467a6914f2b613d7f8: an SHB,
    // then a PIB whose total length is 4 (pcap-parser: `4 - 12` overflow).
    let bytes = regression("pib-block-length-4.pcapng");
    let a = analyze("pib.pcapng", &bytes[..], &Options::default()).unwrap();
    let cap = &a.captures[0];
    assert_eq!(cap.packets, 0);
    let d = cap.damage.as_ref().expect("damage reported");
    assert_eq!(d.kind, DamageKind::Corrupt);
    assert_eq!(d.after_frame, 0);
    assert_eq!(d.offset, 52, "the PIB starts after the 52-byte SHB");
    assert!(d.message.contains("length of 4 bytes"), "{}", d.message);
    assert!(serde_json::to_string(&a).is_ok());
}

#[test]
fn every_short_block_length_after_good_frames_keeps_the_frames() {
    // The same for every block type the parser knows and lengths 0..12,
    // after the frames of a fixture: those frames are still analyzed.
    let good = std::fs::read(crate::support::fixture("pcapng-multi.pcapng")).unwrap();
    let frames = crate::support::tshark_truth("pcapng-multi").len() as u64;
    let base = analyze("good", &good[..], &Options::default()).unwrap();
    for kind in [
        0x0a0d_0d0au32, // Section Header
        0x8000_0001,    // Process Information
        1,              // Interface Description
        2,              // obsolete Packet
        3,              // Simple Packet
        4,              // Name Resolution
        5,              // Interface Statistics
        6,              // Enhanced Packet
        9,              // systemd Journal Export
        10,             // Decryption Secrets
        0x0000_0bad,    // Custom
        0x4000_0bad,    // Custom, do not copy
        0x1234_5678,    // unknown
    ] {
        for len in 0u32..12 {
            let mut bytes = good.clone();
            bytes.extend_from_slice(&kind.to_le_bytes());
            bytes.extend_from_slice(&len.to_le_bytes());
            bytes.extend_from_slice(&[0u8; 64]);
            let a = analyze("short", &bytes[..], &Options::default())
                .unwrap_or_else(|e| panic!("{kind:#x} {len}: {e}"));
            let cap = &a.captures[0];
            assert_eq!(cap.packets, frames, "{kind:#x} {len}");
            let d = cap.damage.as_ref().expect("damage reported");
            assert_eq!(d.kind, DamageKind::Corrupt, "{kind:#x} {len}");
            assert_eq!(d.after_frame, frames, "{kind:#x} {len}");
            assert_eq!(a.summary.connections, base.summary.connections);
        }
    }
}
