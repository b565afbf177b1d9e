//! Renderers: one per output format, each reading only the [`Analysis`].
//! Renderers format; they never compute verdicts.

mod host;
mod json;
mod ladder;
mod markdown;
mod text;
mod timeline;

pub use json::{render_connections_json, render_connections_ndjson, render_json};
pub use ladder::{
    COMPACT_COLUMNS, LadderCollector, LadderFormat, LadderRow, render_ladder, render_ladder_limited,
};
pub use markdown::{
    DEFAULT_MAX_CHARS, MIN_MAX_CHARS, group_thousands, render_markdown, render_markdown_limited,
};
pub use text::{TextStyle, facts_line, render_connections_text, render_text, term_width};
pub use timeline::{render_timeline_svg, render_timeline_text};

use crate::analysis::{Analysis, Retain};
use crate::detect::Severity;
use crate::time::Timestamp;
use std::io::{self, Write};

/// Findings of one kind shown in full in text and Markdown; the rest of
/// that kind are summed up in one line (JSON always has them all). A busy
/// capture can hold hundreds of findings of one kind, one per host.
pub const FINDINGS_SHOWN_PER_KIND: usize = 3;

/// Hosts shown in the text and Markdown TIME_WAIT table (JSON has all).
pub const HOSTS_SHOWN: usize = 20;

/// Findings beyond [`FINDINGS_SHOWN_PER_KIND`] of one kind.
pub struct MoreFindings {
    pub kind: crate::detect::FindingKind,
    pub findings: usize,
    /// Connections (or events) they cover.
    pub count: u64,
    /// Their hosts, the first few.
    pub hosts: Vec<String>,
}

/// The findings to show in full, in report order (most severe first, the
/// largest first within a kind), and what is left of each kind.
pub fn shown_findings(a: &Analysis) -> (Vec<&crate::detect::Finding>, Vec<MoreFindings>) {
    let mut shown = Vec::new();
    let mut more: Vec<MoreFindings> = Vec::new();
    let mut kinds: Vec<crate::detect::FindingKind> = Vec::new();
    for f in &a.findings {
        if !kinds.contains(&f.kind) {
            kinds.push(f.kind);
        }
    }
    for kind in kinds {
        let mut of_kind: Vec<&crate::detect::Finding> =
            a.findings.iter().filter(|f| f.kind == kind).collect();
        of_kind.sort_by(|x, y| y.severity.cmp(&x.severity).then(y.count.cmp(&x.count)));
        let rest = of_kind.split_off(of_kind.len().min(FINDINGS_SHOWN_PER_KIND));
        shown.extend(of_kind);
        if !rest.is_empty() {
            more.push(MoreFindings {
                kind,
                findings: rest.len(),
                count: rest.iter().map(|f| f.count).sum(),
                hosts: rest.iter().filter_map(|f| f.host.clone()).take(5).collect(),
            });
        }
    }
    shown.sort_by(|x, y| {
        y.severity
            .cmp(&x.severity)
            .then(x.kind.cmp(&y.kind))
            .then(y.count.cmp(&x.count))
    });
    (shown, more)
}

impl MoreFindings {
    /// "… and 780 more fin-retransmit-rst findings (1,203 connections; 10.1.0.3, …)".
    pub fn line(&self) -> String {
        format!(
            "... and {} more {} finding{} ({} in all; {}{}): --only {} --format json lists them",
            self.findings,
            self.kind,
            if self.findings == 1 { "" } else { "s" },
            self.count,
            self.hosts.join(", "),
            if self.findings > self.hosts.len() {
                ", ..."
            } else {
                ""
            },
            self.kind
        )
    }
}

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

/// The one-line answer: the worst finding, or that nothing is wrong; and
/// when some input could not be read, that the answer covers only the rest;
/// but when not one record could be read (every input unreadable or
/// damaged at its first record), that nothing was analyzed: "no problems
/// found" would claim what the run cannot know.
pub fn verdict(a: &Analysis) -> String {
    if let Some(why) = nothing_analyzed(a) {
        return why;
    }
    let unread = a.captures.iter().filter(|c| c.error.is_some()).count();
    let answer = findings_verdict(a);
    if unread == 0 {
        return answer;
    }
    // Exit code 2 and "OK" would contradict each other.
    let answer = match answer.strip_prefix("OK: ") {
        Some(rest) => format!("INCOMPLETE: {rest}"),
        None => answer,
    };
    format!(
        "{answer}; but {unread} of {} input{} could not be read",
        a.captures.len(),
        if a.captures.len() == 1 { "" } else { "s" }
    )
}

fn findings_verdict(a: &Analysis) -> String {
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

/// "NOTHING ANALYZED: ..." when no input gave a single record and at
/// least one was unreadable or damaged at its start.
fn nothing_analyzed(a: &Analysis) -> Option<String> {
    if a.captures.iter().any(|c| c.packets > 0) {
        return None;
    }
    let broken = a.captures.iter().find_map(|c| {
        c.error
            .clone()
            .or_else(|| c.damage.as_ref().map(|d| d.message.clone()))
            .map(|why| (c.path.as_str(), why))
    })?;
    Some(format!(
        "NOTHING ANALYZED: {}: {}; not one record could be read, so there is no verdict",
        broken.0, broken.1
    ))
}

/// Seconds since the start of the capture, `+1.234 s` style, for text.
pub fn relative(analysis: &Analysis, ts: Timestamp) -> String {
    match analysis.origin() {
        Some(o) => format!("{:.3}", ts.secs_since(o)),
        None => "-".to_string(),
    }
}

/// A finding's display filters as the text and Markdown reports print
/// them: `(label, filter, note)`, the label empty with one file and
/// ` for file 1 (dump.pcap1)` with several, one filter per file.
pub fn filters<'a>(
    a: &'a Analysis,
    f: &'a crate::detect::Finding,
) -> Vec<(String, &'a str, Option<&'a str>)> {
    if f.display_filters.is_empty() {
        return vec![(
            String::new(),
            f.display_filter.as_str(),
            f.display_filter_note.as_deref(),
        )];
    }
    f.display_filters
        .iter()
        .map(|ff| {
            let path = a
                .captures
                .get(ff.capture as usize)
                .map_or("?", |c| c.path.as_str());
            (
                format!(" for file {} ({path})", ff.capture),
                ff.display_filter.as_str(),
                ff.note.as_deref(),
            )
        })
        .collect()
}

/// The columns of the TIME_WAIT-by-host table, text and Markdown alike.
pub(crate) const HOST_COLUMNS: [&str; 6] = [
    "host",
    "TIME_WAIT peak",
    "at (s)",
    "closed first",
    "peer closed first",
    "connections",
];

/// The heading of the TIME_WAIT-by-host table.
pub(crate) fn hosts_heading(a: &Analysis) -> String {
    format!(
        "TIME_WAIT by host (each socket held {} s)",
        a.options.time_wait_s
    )
}

/// One row of the TIME_WAIT-by-host table, in [`HOST_COLUMNS`] order.
pub(crate) fn host_cells(a: &Analysis, h: &crate::track::HostRecord) -> [String; 6] {
    [
        h.ip.to_string(),
        h.time_wait_peak.to_string(),
        h.peak_at
            .map_or("-".to_string(), |ts| format!("+{}", relative(a, ts))),
        h.active_closes.to_string(),
        h.passive_closes.to_string(),
        h.connections.to_string(),
    ]
}

/// One output format of the analysis report (hyperfine's `Exporter` is
/// the model): a command picks one and never matches on formats again.
pub trait Render {
    /// What of the connection records the pipeline keeps for this format:
    /// none, unless it lists every connection (`connections[]`).
    fn retain(&self) -> Retain<'static> {
        Retain::Nothing
    }
    fn render(&self, a: &Analysis, out: &mut dyn Write) -> io::Result<()>;
}

/// The terminal report.
pub struct Text(pub TextStyle);

impl Render for Text {
    fn render(&self, a: &Analysis, out: &mut dyn Write) -> io::Result<()> {
        render_text(a, &self.0, out)
    }
}

/// The `timewait/1` JSON contract (docs/json.md).
pub struct Json;

impl Render for Json {
    /// Kept serialized, spilling to a temporary file, so that memory does
    /// not follow the length of the capture.
    fn retain(&self) -> Retain<'static> {
        Retain::Serialized {
            spill_above: crate::analysis::SPILL_ABOVE,
        }
    }
    fn render(&self, a: &Analysis, out: &mut dyn Write) -> io::Result<()> {
        render_json(a, out)
    }
}

/// Markdown for a ticket, within `max_chars` characters (None: no limit).
pub struct Markdown {
    pub max_chars: Option<usize>,
}

impl Render for Markdown {
    fn render(&self, a: &Analysis, out: &mut dyn Write) -> io::Result<()> {
        render_markdown_limited(a, self.max_chars, out)
    }
}
