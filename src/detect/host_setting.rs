//! `host-setting`: a TCP setting of a host whose information was given
//! (`--host-info` or CAPTURE.host.json) that hurts what the capture shows.
//! No detector reports it: `host::confirm` does, after the detectors,
//! from the host's settings and counters. Only its spec lives here, with
//! the other kinds'.

use super::KindSpec;

pub const SPEC: KindSpec = KindSpec {
    name: "host-setting",
    explanation: "A TCP setting of a host whose information was given (`--host-info` or \
     CAPTURE.host.json) hurts what this capture shows.",
    advice: "Change the setting named in the summary.",
    doc: include_str!("../../docs/findings/host-setting.md"),
};
