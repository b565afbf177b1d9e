//! `timewait conns`: one row per connection, as a table, JSON, or NDJSON
//! streamed as the tracker retires each connection.

use super::{
    CloseFilter, CloserFilter, ConnsArgs, ConnsFormat, HandshakeFilter, Out, Outcome, nothing_read,
};
use anyhow::Result;
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::sync::mpsc;
use timewait::analysis::{Pipeline, Retain};
use timewait::detect::Selection;
use timewait::report;
use timewait::track::{CloseKind, Closer, ConnectionRecord, HandshakeState};

/// Records handed to the ndjson writer thread at once.
const NDJSON_BATCH: usize = 256;

pub(super) fn run(args: &ConnsArgs, out: &mut Out) -> Result<Outcome> {
    if matches!(args.format, ConnsFormat::Ndjson) {
        return stream(args, out);
    }
    let (analysis, failed) = args.input.run_pipeline(Selection::default(), Retain::All)?;
    if nothing_read(&analysis) {
        return Ok(Outcome::NothingRead);
    }
    let conns: Vec<&ConnectionRecord> = analysis
        .connections
        .iter()
        .filter(|c| args.keeps(c))
        .collect();
    match args.format {
        ConnsFormat::Text => {
            report::render_connections_text(&analysis, &conns, &args.input.style(), out)?
        }
        ConnsFormat::Json => report::render_connections_json(&conns, out)?,
        ConnsFormat::Ndjson => report::render_connections_ndjson(&conns, out)?,
    }
    Ok(Outcome::read(failed))
}

/// NDJSON, streamed: each record is written as the tracker retires it.
fn stream(args: &ConnsArgs, out: &mut Out) -> Result<Outcome> {
    // Streams: each record is written as the tracker retires it, so
    // memory stays flat however large the capture. Records go in
    // batches to a writer thread: JSON is half the work here, and
    // the tracker need not wait for it.
    let (tx, rx) = mpsc::sync_channel::<Vec<ConnectionRecord>>(4);
    let out_ref = out;
    let options = args.input.options()?;
    let (run, written) = std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("timewait-json".into())
            .spawn_scoped(scope, move || -> io::Result<()> {
                for batch in rx {
                    for record in &batch {
                        serde_json::to_writer(&mut *out_ref, record)?;
                        out_ref.write_all(b"\n")?;
                    }
                }
                Ok(())
            });
        let writer = match spawned {
            Ok(w) => w,
            Err(e) => return (Err(e.into()), Ok(())),
        };
        let mut batch = Vec::with_capacity(NDJSON_BATCH);
        // The writer is gone only when the output was closed (or
        // failed): the pipeline then stops reading.
        let sink = Box::new(|record: ConnectionRecord| {
            if args.keeps(&record) {
                batch.push(record);
            }
            if batch.len() == NDJSON_BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(NDJSON_BATCH));
                if tx.send(full).is_err() {
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        });
        let run = args.input.run(Pipeline::new(options, Retain::Stream(sink)));
        if !batch.is_empty() {
            let _ = tx.send(batch);
        }
        drop(tx);
        let written = match writer.join() {
            Ok(w) => w,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        (run, written)
    });
    let (analysis, failed) = run?;
    written?;
    if nothing_read(&analysis) {
        return Ok(Outcome::NothingRead);
    }
    let s = &analysis.summary;
    if s.streamed_uncut > 0 || s.late_segments > 0 {
        eprintln!(
            "note: {} of the records were written while their TIME_WAIT ran (more than {} closed connections at once); {} of them had their 4-tuple taken over later (their time_wait.until is the full window and reused_by null: `conns --format json` cuts them) and {} segments came after their record (in no record); see docs/json.md",
            s.early_records,
            timewait::report::group_thousands(timewait::track::COMPACT_ABOVE),
            s.streamed_uncut,
            s.late_segments,
        );
    }
    Ok(Outcome::read(failed))
}

impl ConnsArgs {
    fn keeps(&self, c: &ConnectionRecord) -> bool {
        let closer_ok = self.closer.is_none_or(|f| {
            c.close.active_closer
                == match f {
                    CloserFilter::Client => Closer::Client,
                    CloserFilter::Server => Closer::Server,
                    CloserFilter::Both => Closer::Both,
                    CloserFilter::None => Closer::None,
                }
        });
        let close_ok = self.close.is_none_or(|f| {
            c.close.kind
                == match f {
                    CloseFilter::Fin => CloseKind::Fin,
                    CloseFilter::Simultaneous => CloseKind::Simultaneous,
                    CloseFilter::Rst => CloseKind::Rst,
                    CloseFilter::Open => CloseKind::Open,
                }
        });
        let state_ok = self.state.is_none_or(|f| {
            c.handshake.state
                == match f {
                    HandshakeFilter::Complete => HandshakeState::Complete,
                    HandshakeFilter::SynAckOnly => HandshakeState::SynAckOnly,
                    HandshakeFilter::SynOnly => HandshakeState::SynOnly,
                    HandshakeFilter::Refused => HandshakeState::Refused,
                    HandshakeFilter::Challenged => HandshakeState::Challenged,
                    HandshakeFilter::NotCaptured => HandshakeState::NotCaptured,
                }
        });
        let host_ok = self
            .host
            .is_none_or(|h| c.client.ip() == h || c.server.ip() == h);
        let port_ok = self
            .port
            .is_none_or(|p| c.client.port() == p || c.server.port() == p);
        closer_ok && close_ok && state_ok && host_ok && port_ok
    }
}
