//! Renderers: one per output format, each reading only the [`Analysis`].
//! Renderers format; they never compute verdicts.

mod json;
mod ladder;
mod markdown;
mod text;
mod timeline;

pub use json::{render_connections_json, render_connections_ndjson, render_json};
pub use ladder::{LadderCollector, LadderRow, render_ladder};
pub use markdown::render_markdown;
pub use text::{TextStyle, facts_line, render_connections_text, render_text, term_width};
pub use timeline::{render_timeline_svg, render_timeline_text};

use crate::analysis::Analysis;
use crate::detect::Severity;
use crate::time::Timestamp;

/// The cells of one row of the capture table, shared by every format:
/// file, format, link types, packets, TCP packets, skipped frames.
pub fn capture_cells(c: &crate::analysis::CaptureReport) -> [String; 6] {
    let links: Vec<String> = c
        .link_types
        .iter()
        .map(|l| format!("{} ({})", l.link_type, l.frames))
        .collect();
    let skipped: Vec<String> = c
        .skipped
        .iter()
        .map(|(r, n)| format!("{n} {}", r.describe()))
        .collect();
    [
        c.path.clone(),
        c.format.map_or("unreadable".to_string(), |f| f.to_string()),
        links.join(", "),
        c.packets.to_string(),
        c.tcp_packets.to_string(),
        if skipped.is_empty() {
            "-".to_string()
        } else {
            skipped.join("; ")
        },
    ]
}

/// The one-line answer: the worst finding, or that nothing is wrong.
pub fn verdict(a: &Analysis) -> String {
    let worst = a.findings.iter().max_by_key(|f| f.severity);
    match worst {
        Some(f) if f.severity > Severity::Info => {
            let errors = a
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .count();
            let warnings = a
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Warning)
                .count();
            let mut counts = Vec::new();
            if errors > 0 {
                counts.push(format!(
                    "{errors} error{}",
                    if errors == 1 { "" } else { "s" }
                ));
            }
            if warnings > 0 {
                counts.push(format!(
                    "{warnings} warning{}",
                    if warnings == 1 { "" } else { "s" }
                ));
            }
            format!(
                "{}: {} ({}) [{}]",
                f.severity.to_string().to_uppercase(),
                f.summary,
                f.kind,
                counts.join(", ")
            )
        }
        Some(_) => format!(
            "OK: no problems found ({} informational finding{})",
            a.findings.len(),
            if a.findings.len() == 1 { "" } else { "s" }
        ),
        None => "OK: no problems found".to_string(),
    }
}

/// Seconds since the start of the capture, `+1.234 s` style, for text.
pub fn relative(analysis: &Analysis, ts: Timestamp) -> String {
    match analysis.origin() {
        Some(o) => format!("{:.3}", ts.secs_since(o)),
        None => "-".to_string(),
    }
}
