//! Bytes -> `capture::read_capture`, counting records. Checks the reader's
//! own contract: it never panics, frame numbers are 1..=n in order, and
//! the count it reports equals the records it delivered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use timewait::capture::read_capture;

fuzz_target!(|data: &[u8]| {
    let mut delivered = 0u64;
    let mut bytes = 0usize;
    let result = read_capture(data, |record| {
        delivered += 1;
        assert_eq!(record.frame, delivered, "frames are numbered 1..=n");
        bytes += record.data.len();
    });
    if let Ok(facts) = result {
        assert_eq!(facts.records, delivered);
        assert!(facts.bytes <= data.len() as u64);
        assert!(
            bytes <= data.len(),
            "records cannot carry more than the file"
        );
        if let Some(d) = &facts.damage {
            assert_eq!(d.after_frame, delivered);
        }
    }
});
