//! `timewait show`: the ladder diagram of one connection.

use super::{Out, Outcome, ShowArgs, ShowFormat, nothing_read};
use anyhow::{Result, bail};
use timewait::analysis::{Pipeline, Retain};
use timewait::report::{self, LadderCollector, LadderFormat};

pub(super) fn run(args: &ShowArgs, out: &mut Out) -> Result<Outcome> {
    let mut collector = LadderCollector::new(args.conn, args.limit);
    let pipeline = Pipeline::with_observer(
        args.input.options()?,
        Retain::Only(args.conn),
        Box::new(&mut collector),
    );
    let (analysis, failed) = args.input.run(pipeline)?;
    if nothing_read(&analysis) {
        return Ok(Outcome::NothingRead);
    }
    let Some(conn) = analysis.connections.iter().find(|c| c.id == args.conn) else {
        let n = analysis.summary.connections;
        bail!(
            "no connection {} (the capture has {n}: ids 0-{})",
            args.conn,
            n.saturating_sub(1)
        );
    };
    // --color and --width are the terminal's: a ticket's code block gets
    // neither.
    let format = match args.format {
        ShowFormat::Text => LadderFormat::Text(args.input.style()),
        ShowFormat::Markdown => LadderFormat::Markdown {
            max_chars: Some(report::DEFAULT_MAX_CHARS),
        },
    };
    report::render_ladder_limited(
        &analysis,
        conn,
        &collector.rows,
        collector.omitted,
        &format,
        out,
    )?;
    Ok(Outcome::read(failed))
}
