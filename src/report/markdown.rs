//! GitHub-flavoured Markdown for an incident ticket: the verdict first,
//! findings by severity with their evidence, then the per-host TIME_WAIT
//! table and what was read. Long evidence goes into `<details>`.

use super::{relative, verdict};
use crate::analysis::Analysis;
use crate::report::facts_line;
use std::io::{self, Write};

/// Evidence tables longer than this fold into `<details>`.
const INLINE_ROWS: usize = 3;

/// Escapes a table cell: `|` ends a cell (Wireshark filters contain `||`),
/// and a newline ends the row.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn render_markdown(a: &Analysis, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "### timewait: {}", cell(&verdict(a)))?;
    writeln!(out)?;
    writeln!(out, "{}", facts_line(a))?;
    if !a.findings.is_empty() {
        writeln!(out)?;
        writeln!(out, "#### Findings")?;
        let (shown, more) = super::shown_findings(a);
        for f in shown {
            writeln!(out)?;
            writeln!(
                out,
                "##### {} `{}`: {}",
                f.severity.to_string().to_uppercase(),
                f.kind,
                f.summary
            )?;
            writeln!(out)?;
            writeln!(out, "{}", f.explanation)?;
            writeln!(out)?;
            writeln!(out, "**What to do:** {}", f.advice)?;
            writeln!(out)?;
            for (label, filter, note) in super::filters(a, f) {
                writeln!(out, "Wireshark display filter{label}:")?;
                writeln!(out)?;
                writeln!(out, "```")?;
                writeln!(out, "{filter}")?;
                writeln!(out, "```")?;
                writeln!(out)?;
                if let Some(note) = note {
                    writeln!(out, "_{}_", cell(note))?;
                    writeln!(out)?;
                }
            }
            let fold = f.evidence.len() > INLINE_ROWS;
            if fold {
                writeln!(
                    out,
                    "<details><summary>Evidence: {} (showing {})</summary>",
                    f.count,
                    f.evidence.len()
                )?;
                writeln!(out)?;
            }
            writeln!(
                out,
                "| connection | frames | time (s) | what the frames show |"
            )?;
            writeln!(out, "|---:|---|---:|---|")?;
            for e in &f.evidence {
                let frames = e.frame_labels();
                writeln!(
                    out,
                    "| {} | {} | +{} | {} |",
                    e.connection,
                    frames.join(" "),
                    relative(a, e.at),
                    cell(&e.note)
                )?;
            }
            if fold {
                writeln!(out)?;
                writeln!(out, "</details>")?;
            }
            writeln!(out)?;
            writeln!(out, "More: `timewait explain {}`", f.kind)?;
        }
        if !more.is_empty() {
            writeln!(out)?;
            for m in more {
                writeln!(out, "- {}", cell(&m.line()))?;
            }
        }
    }
    if !a.hosts.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "#### TIME_WAIT by host (each socket held {} s)",
            a.options.time_wait_s
        )?;
        writeln!(out)?;
        writeln!(
            out,
            "| host | TIME_WAIT peak | at (s) | closed first | peer closed first | connections |"
        )?;
        writeln!(out, "|---|---:|---:|---:|---:|---:|")?;
        for h in a.hosts.iter().take(super::HOSTS_SHOWN) {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                h.ip,
                h.time_wait_peak,
                h.peak_at
                    .map_or("-".to_string(), |t| format!("+{}", relative(a, t))),
                h.active_closes,
                h.passive_closes,
                h.connections
            )?;
        }
        if a.hosts.len() > super::HOSTS_SHOWN {
            writeln!(out)?;
            writeln!(
                out,
                "… and {} more hosts (`--format json` lists them all).",
                a.hosts.len() - super::HOSTS_SHOWN
            )?;
        }
    }
    writeln!(out)?;
    writeln!(out, "#### Capture")?;
    writeln!(out)?;
    writeln!(
        out,
        "| file | format | link types | packets | TCP | skipped |"
    )?;
    writeln!(out, "|---|---|---|---:|---:|---|")?;
    for c in &a.captures {
        let cells: Vec<String> = super::capture_cells(c).iter().map(|x| cell(x)).collect();
        writeln!(out, "| {} |", cells.join(" | "))?;
    }
    for c in &a.captures {
        if let Some(d) = &c.damage {
            writeln!(out)?;
            writeln!(
                out,
                "> **Note:** `{}`: {}; {}.",
                c.path,
                d.message,
                d.coverage()
            )?;
        }
        if let Some(e) = &c.error {
            writeln!(out)?;
            writeln!(out, "> **Error:** `{}`: {}", c.path, e)?;
        }
    }
    writeln!(out)?;
    if a.captures.len() > 1 {
        // Wireshark numbers frames and streams per file.
        writeln!(
            out,
            "<sub>timewait {} · frames are `file:frame`: the file's row in the Capture table (from 0) and Wireshark's `frame.number` in it</sub>",
            a.version
        )?;
    } else {
        writeln!(
            out,
            "<sub>timewait {} · frame numbers are Wireshark's `frame.number`, connection ids its `tcp.stream`</sub>",
            a.version
        )?;
    }
    Ok(())
}
