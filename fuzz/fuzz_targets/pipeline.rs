//! Bytes -> `analysis::analyze`: reader, decoder, tracker, every detector,
//! then the JSON serialisation of the `Analysis` (what `--format json`
//! prints), which must succeed and parse back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use timewait::analysis::{Options, analyze};

fuzz_target!(|data: &[u8]| {
    let Ok(analysis) = analyze("fuzz.pcap", data, &Options::default()) else {
        return;
    };
    let json = serde_json::to_vec(&analysis).expect("an Analysis always serialises");
    let _: serde_json::Value = serde_json::from_slice(&json).expect("valid JSON");
    assert_eq!(
        analysis.summary.connections,
        analysis.connections.len() as u64
    );
});
