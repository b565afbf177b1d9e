//! Bytes -> `analysis::analyze`: reader, decoder, tracker, every detector,
//! then the JSON serialisation of the `Analysis` (what `--format json`
//! prints), which must succeed and parse back. Then the same bytes with
//! every closed connection's record written early and the records kept
//! serialized in runs of a few (`Retain::Serialized`, as `analyze --format
//! json` keeps them): its report must be the one of the records held.
#![no_main]

use libfuzzer_sys::fuzz_target;
use timewait::analysis::{Options, Pipeline, Retain, analyze};

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
    let report = |retain: Retain| {
        let mut p = Pipeline::new(Options::default(), retain).compact_above(0, 0.0);
        p.feed("fuzz.pcap", data).ok()?;
        let mut out = Vec::new();
        timewait::report::render_json(&p.finish(), &mut out).expect("a report is written");
        Some(out)
    };
    let held = report(Retain::All);
    let stored = report(Retain::Serialized { spill_above: 3_000 });
    assert!(held == stored, "the stored records' report differs");
});
