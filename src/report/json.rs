//! The `timewait/1` JSON contract (documented in docs/json.md): the
//! [`Analysis`] serialised as is, pretty-printed, with a trailing newline.

use crate::analysis::{Analysis, CaptureReport, Options, Summary};
use crate::detect::Finding;
use crate::host::HostReport;
use crate::track::{ConnectionRecord, HostRecord};
use serde::Serialize;
use std::io::{self, Write};

/// The members of [`Analysis`] before `connections`, and after it: the
/// report is written in three parts, so that the records come from
/// [`crate::analysis::Connections::write_json`] (stored serialized, for a
/// capture of any length) while the document stays what
/// `serde_json::to_writer_pretty` makes of the whole `Analysis`. A member
/// added to `Analysis` and not here fails the test that holds the two to
/// each other on every fixture
/// (`records_stored_serialized_give_the_json_report_of_records_held`).
#[derive(Serialize)]
struct Head<'a> {
    schema: &'a str,
    version: &'a str,
    options: &'a Options,
    captures: &'a [CaptureReport],
    summary: &'a Summary,
}

#[derive(Serialize)]
struct Tail<'a> {
    findings: &'a [Finding],
    hosts: &'a [HostRecord],
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a HostReport>,
}

pub fn render_json(analysis: &Analysis, out: &mut dyn Write) -> io::Result<()> {
    // No half-written report when the records could not be kept.
    analysis.connections.check()?;
    // "{ ... }" without its closing "\n}".
    let mut head = HoldBack {
        out: &mut *out,
        held: Vec::new(),
        back: 2,
    };
    serde_json::to_writer_pretty(
        &mut head,
        &Head {
            schema: analysis.schema,
            version: analysis.version,
            options: &analysis.options,
            captures: &analysis.captures,
            summary: &analysis.summary,
        },
    )?;
    out.write_all(b",\n  \"connections\": ")?;
    analysis.connections.write_json(out)?;
    // "{ ... }" without its opening "{".
    out.write_all(b",")?;
    let mut tail = SkipFirst {
        out: &mut *out,
        skipped: false,
    };
    serde_json::to_writer_pretty(
        &mut tail,
        &Tail {
            findings: &analysis.findings,
            hosts: &analysis.hosts,
            host: analysis.host.as_ref(),
        },
    )?;
    out.write_all(b"\n")
}

/// Writes all but the last `back` bytes written to it.
struct HoldBack<'a> {
    out: &'a mut dyn Write,
    held: Vec<u8>,
    back: usize,
}

impl Write for HoldBack<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.held.extend_from_slice(buf);
        if self.held.len() > self.back {
            let n = self.held.len() - self.back;
            self.out.write_all(&self.held[..n])?;
            self.held.drain(..n);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Writes all but the first byte written to it.
struct SkipFirst<'a> {
    out: &'a mut dyn Write,
    skipped: bool,
}

impl Write for SkipFirst<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let rest = match (self.skipped, buf.split_first()) {
            (false, Some((_, rest))) => {
                self.skipped = true;
                rest
            }
            _ => buf,
        };
        self.out.write_all(rest)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
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
