//! `timewait timeline`: TIME_WAIT sockets per host over time, in the
//! terminal and as an SVG picture.

use super::{Out, Outcome, TimelineArgs, nothing_read};
use anyhow::{Context, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use timewait::analysis::{Pipeline, Retain};
use timewait::report;
use timewait::track::{ConnectionRecord, SeriesTally};

pub(super) fn run(args: &TimelineArgs, out: &mut Out) -> Result<Outcome> {
    // Only the TIME_WAIT intervals are needed: fold them as records
    // retire instead of keeping the records.
    // The picture's file is made first: an unwritable path fails
    // before the capture is read, not after.
    let mut svg_file = match &args.svg {
        Some(path) => Some(BufWriter::new(
            File::create(path).with_context(|| format!("--svg {}", path.display()))?,
        )),
        None => None,
    };
    let mut tally = SeriesTally::default();
    let sink = Box::new(|record: ConnectionRecord| {
        tally.add(&record);
        ControlFlow::Continue(())
    });
    let (analysis, failed) = args
        .input
        .run(Pipeline::new(args.input.options()?, Retain::Stream(sink)))?;
    if nothing_read(&analysis) {
        // Nothing to draw: leave no empty picture behind.
        if let Some(path) = &args.svg {
            drop(svg_file);
            let _ = std::fs::remove_file(path);
        }
        return Ok(Outcome::NothingRead);
    }
    let series = tally.finish();
    report::render_timeline_text(&analysis, &series, &args.input.style(), out)?;
    if let Some(f) = svg_file.as_mut() {
        report::render_timeline_svg(&analysis, &series, f)?;
        f.flush()?;
    }
    Ok(Outcome::read(failed))
}
