//! The `timewait/1` JSON contract (documented in docs/json.md): the
//! [`Analysis`] serialised as is, pretty-printed, with a trailing newline.

use crate::analysis::Analysis;
use crate::track::ConnectionRecord;
use std::io::{self, Write};

pub fn render_json(analysis: &Analysis, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, analysis)?;
    out.write_all(b"\n")
}

/// `conns --format json`: the connection records alone, as an array.
pub fn render_connections_json(conns: &[&ConnectionRecord], out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, conns)?;
    out.write_all(b"\n")
}

/// `conns --format ndjson`: one connection record per line.
pub fn render_connections_ndjson(
    conns: &[&ConnectionRecord],
    out: &mut dyn Write,
) -> io::Result<()> {
    for c in conns {
        serde_json::to_writer(&mut *out, c)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
