//! The terminal report: a verdict line first, then findings, then tables.

use super::relative;
use crate::analysis::Analysis;
use crate::detect::Severity;
use crate::track::{Closer, ConnectionRecord};
use comfy_table::{ContentArrangement, Table, presets};
use std::io::{self, Write};

/// How the terminal looks: a fixed width (tests, `--width`), whether the
/// output is a terminal (then tables fit its width), and whether to colour.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextStyle {
    pub width: Option<u16>,
    pub tty: bool,
    pub color: bool,
}

fn table(style: &TextStyle, header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    t.set_header(header.to_vec());
    match style.width {
        Some(w) => {
            t.set_content_arrangement(ContentArrangement::Dynamic);
            t.set_width(w);
        }
        None if style.tty => {
            t.set_content_arrangement(ContentArrangement::Dynamic);
        }
        None => {
            t.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    if !style.color {
        t.force_no_tty();
    }
    t
}

/// `s` in the SGR colour `code` when the style colours, else as it is.
pub(crate) fn paint(style: &TextStyle, code: &str, s: &str) -> String {
    if style.color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// Columns available for prose: `--width`, the terminal's, or 100.
pub fn term_width(style: &TextStyle) -> usize {
    let probe = Table::new();
    let tty_width = if style.tty { probe.width() } else { None };
    usize::from(style.width.or(tty_width).unwrap_or(100)).max(40)
}

/// The facts under the verdict: what was read and who closed.
pub fn facts_line(a: &Analysis) -> String {
    // Files that could not be read are named apart: the counts come from
    // the others only.
    let files: Vec<&str> = a
        .captures
        .iter()
        .filter(|c| c.error.is_none())
        .map(|c| c.path.as_str())
        .collect();
    let unread: Vec<&str> = a
        .captures
        .iter()
        .filter(|c| c.error.is_some())
        .map(|c| c.path.as_str())
        .collect();
    let s = &a.summary;
    let closers: Vec<String> = s
        .by_active_closer
        .iter()
        .filter(|(k, v)| **v > 0 && **k != "none")
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let span = if s.time_jumps > 0 {
        let frames: Vec<String> = a
            .captures
            .iter()
            .flat_map(|c| c.time_jump_frames.iter().map(u64::to_string))
            .take(5)
            .collect();
        format!(
            "{:.3} s of capture; its timestamps jump {} time{} (frame {}{}): the clock or the file is broken, times across a jump mean nothing",
            s.captured_s,
            s.time_jumps,
            if s.time_jumps == 1 { "" } else { "s" },
            frames.join(", "),
            if s.time_jumps > 5 { ", ..." } else { "" }
        )
    } else {
        format!("{:.3} s", s.duration_s)
    };
    let mut line = format!(
        "{} connection{} in {} ({} packets, {span})",
        s.connections,
        if s.connections == 1 { "" } else { "s" },
        if files.is_empty() {
            "no readable file".to_string()
        } else {
            files.join(", ")
        },
        s.packets,
    );
    if !unread.is_empty() {
        line.push_str(&format!("; not read: {}", unread.join(", ")));
    }
    if !closers.is_empty() {
        line.push_str(&format!("; closed first by {}", closers.join(", ")));
    }
    match &s.time_wait_peak {
        Some(p) => line.push_str(&format!(
            "; TIME_WAIT peak {} on {} at +{} s",
            p.sockets,
            p.ip,
            p.at.map_or("-".to_string(), |t| relative(a, t))
        )),
        None => line.push_str("; no TIME_WAIT sockets"),
    }
    if s.duplicate_frames > 0 {
        line.push_str(&format!(
            "; {} duplicate frame{} ignored (the same packet captured twice)",
            s.duplicate_frames,
            if s.duplicate_frames == 1 { "" } else { "s" }
        ));
    }
    for c in a.captures.iter().filter(|c| c.overlap_skipped > 0) {
        line.push_str(&format!(
            "; {} record{} of {} skipped: {} inside the time an earlier input already covered (the same file twice, or overlapping captures)",
            c.overlap_skipped,
            if c.overlap_skipped == 1 { "" } else { "s" },
            c.path,
            if c.overlap_skipped == 1 { "it lies" } else { "they lie" }
        ));
    }
    if s.started_before_capture > 0 {
        line.push_str(&format!(
            "; {} connection{} already open when the capture began (what came before {} first frame is not in the file)",
            s.started_before_capture,
            if s.started_before_capture == 1 { " was" } else { "s were" },
            if s.started_before_capture == 1 { "its" } else { "their" }
        ));
    }
    if s.one_way_connections > 0 {
        line.push_str(&format!(
            "; {} connection{} captured in one direction only (the other side's packets are not in the file; its answers are inferred from what it acknowledged)",
            s.one_way_connections,
            if s.one_way_connections == 1 { "" } else { "s" }
        ));
    }
    if s.late_segments > 0 {
        line.push_str(&format!(
            "; {} segment{} came for connections whose record was already written (above {} closed connections at once, a record is written {:.0} s after its connection went silent; these segments are in no record)",
            s.late_segments,
            if s.late_segments == 1 { "" } else { "s" },
            super::group_thousands(crate::track::COMPACT_ABOVE),
            crate::track::SETTLE_S,
        ));
    }
    if s.idle_retired > 0 {
        // The tracker's own limits, said as people say them.
        line.push_str(&format!(
            "; {} idle connection{} retired early (silent {:.0} s in the handshake or {:.0} h after, or past {} open handshakes; a later packet on the 4-tuple starts a new connection)",
            s.idle_retired,
            if s.idle_retired == 1 { "" } else { "s" },
            crate::track::HANDSHAKE_IDLE_S,
            crate::track::IDLE_S / 3600.0,
            super::group_thousands(crate::track::MAX_HANDSHAKES),
        ));
    }
    line
}

pub fn render_text(a: &Analysis, style: &TextStyle, out: &mut dyn Write) -> io::Result<()> {
    let width = term_width(style);
    let verdict = super::verdict(a);
    let code = match a.findings.iter().map(|f| f.severity).max() {
        Some(Severity::Error) => "31;1",
        Some(Severity::Warning) => "33;1",
        _ => "32;1",
    };
    for (i, line) in textwrap::wrap(&verdict, width).iter().enumerate() {
        if i == 0 {
            writeln!(out, "{}", paint(style, code, line))?;
        } else {
            writeln!(out, "{line}")?;
        }
    }
    for line in textwrap::wrap(&facts_line(a), width) {
        writeln!(out, "{line}")?;
    }
    let s = &a.summary;
    if !a.findings.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", paint(style, "1", "Findings"))?;
        let indent = textwrap::Options::new(width)
            .initial_indent("    ")
            .subsequent_indent("    ");
        let (shown, more) = super::shown_findings(a);
        for f in shown {
            let code = match f.severity {
                Severity::Error => "31;1",
                Severity::Warning => "33;1",
                Severity::Info => "36",
            };
            let label = format!("{:<7}", f.severity.to_string().to_uppercase());
            writeln!(
                out,
                "  {} {}",
                paint(style, code, &label),
                paint(style, "1", f.kind.as_str())
            )?;
            for line in textwrap::wrap(&f.summary, &indent) {
                writeln!(out, "{line}")?;
            }
            for e in f.evidence.iter().take(3) {
                let frames = e.frame_labels();
                let line = format!(
                    "- conn {} frames {} (+{} s): {}",
                    e.connection,
                    frames.join(" "),
                    relative(a, e.at),
                    e.note
                );
                let opts = textwrap::Options::new(width)
                    .initial_indent("    ")
                    .subsequent_indent("      ");
                for l in textwrap::wrap(&line, &opts) {
                    writeln!(out, "{l}")?;
                }
            }
            if f.evidence.len() > 3 || f.count > f.evidence.len() as u64 {
                writeln!(out, "    - and {} more", f.count.saturating_sub(3))?;
            }
            for (label, filter, note) in super::filters(a, f) {
                let head = format!("    filter{label}: ");
                let opts = textwrap::Options::new(width)
                    .initial_indent(&head)
                    .subsequent_indent("      ");
                for l in textwrap::wrap(filter, &opts) {
                    writeln!(out, "{l}")?;
                }
                if let Some(note) = note {
                    let opts = textwrap::Options::new(width)
                        .initial_indent("      (")
                        .subsequent_indent("       ");
                    for l in textwrap::wrap(&format!("{note})"), &opts) {
                        writeln!(out, "{l}")?;
                    }
                }
            }
            for line in super::host::finding_text(f) {
                for l in textwrap::wrap(&line, &indent) {
                    writeln!(out, "{l}")?;
                }
            }
            writeln!(out, "    why and what to do: timewait explain {}", f.kind)?;
        }
        let opts = textwrap::Options::new(width)
            .initial_indent("  ")
            .subsequent_indent("    ");
        for m in more {
            for l in textwrap::wrap(&m.line(), &opts) {
                writeln!(out, "{l}")?;
            }
        }
    }

    let host = super::host::section(a);
    if !host.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", paint(style, "1", "Host"))?;
        let opts = textwrap::Options::new(width)
            .initial_indent("  ")
            .subsequent_indent("      ");
        for line in host {
            for l in textwrap::wrap(&line, &opts) {
                writeln!(out, "{l}")?;
            }
        }
    }
    writeln!(out)?;
    writeln!(out, "Captures")?;
    let mut t = table(
        style,
        &["file", "format", "link types", "packets", "TCP", "skipped"],
    );
    for c in &a.captures {
        t.add_row(super::capture_cells(c).to_vec());
    }
    writeln!(out, "{t}")?;
    for c in &a.captures {
        let opts = textwrap::Options::new(width)
            .initial_indent("  ")
            .subsequent_indent("    ");
        if let Some(d) = &c.damage {
            let text = format!("note {}: {}; {}.", c.path, d.message, d.coverage());
            for (i, l) in textwrap::wrap(&text, &opts).iter().enumerate() {
                let l = if i == 0 {
                    l.replacen("note", &paint(style, "33", "note"), 1)
                } else {
                    l.to_string()
                };
                writeln!(out, "{l}")?;
            }
        }
        if let Some(e) = &c.error {
            for l in textwrap::wrap(&format!("error {}: {e}", c.path), &opts) {
                writeln!(out, "{l}")?;
            }
        }
    }

    writeln!(out)?;
    writeln!(out, "Connections ({})", s.connections)?;
    // Only the outcomes that occurred: the JSON has every key.
    let join = |m: &std::collections::BTreeMap<&'static str, u64>, order: &[&str]| {
        let parts: Vec<String> = order
            .iter()
            .filter_map(|k| {
                let n = m.get(k).copied().unwrap_or(0);
                (n > 0).then(|| format!("{k} {n}"))
            })
            .collect();
        if parts.is_empty() {
            "-".to_string()
        } else {
            parts.join(" · ")
        }
    };
    writeln!(
        out,
        "  handshake      {}",
        join(
            &s.by_handshake,
            &[
                "complete",
                "syn_ack_only",
                "syn_only",
                "refused",
                "challenged",
                "not_captured"
            ]
        )
    )?;
    writeln!(
        out,
        "  close          {}",
        join(&s.by_close_kind, &["fin", "simultaneous", "rst", "open"])
    )?;
    writeln!(
        out,
        "  active closer  {}",
        join(&s.by_active_closer, &["client", "server", "both", "none"])
    )?;
    // "Sent first" is judged where the capture was taken: say where that is
    // when the handshakes tell.
    let near = |k: &str| s.capture_near.get(k).copied().unwrap_or(0);
    if near("client") + near("server") > 0 {
        writeln!(
            out,
            "  capture point  near the client on {} · near the server on {} · unclear on {}",
            near("client"),
            near("server"),
            near("unknown")
        )?;
    }

    if !a.hosts.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", super::hosts_heading(a))?;
        let mut t = table(style, &super::HOST_COLUMNS);
        for h in a.hosts.iter().take(super::HOSTS_SHOWN) {
            t.add_row(super::host_cells(a, h).to_vec());
        }
        writeln!(out, "{t}")?;
        if a.hosts.len() > super::HOSTS_SHOWN {
            writeln!(
                out,
                "  ... and {} more hosts (--format json lists them all)",
                a.hosts.len() - super::HOSTS_SHOWN
            )?;
        }
    }
    Ok(())
}

fn holder_text(c: &ConnectionRecord) -> String {
    match c.time_wait.holder {
        Closer::None => "-".to_string(),
        h => h.as_str().to_string(),
    }
}

/// `conns`: one row per connection.
pub fn render_connections_text(
    a: &Analysis,
    conns: &[&ConnectionRecord],
    style: &TextStyle,
    out: &mut dyn Write,
) -> io::Result<()> {
    let multi = a.captures.len() > 1;
    // (header, priority): on a narrow terminal the lowest priorities go
    // first, so the answer (who closed, who holds TIME_WAIT) always fits.
    let columns: [(&str, u8); 11] = [
        ("id", 0),
        ("client", 0),
        ("server", 0),
        ("start (s)", 3),
        ("dur (s)", 4),
        ("handshake", 2),
        ("close", 1),
        ("closer", 0),
        ("TIME_WAIT", 0),
        ("frames", 2),
        ("history", 3),
    ];
    let rows: Vec<[String; 11]> = conns
        .iter()
        .map(|c| {
            let frames = if multi {
                // A connection may run on into a later file.
                let (first_file, first) = c.first_frame.split();
                let (last_file, last) = c.last_frame.split();
                if first_file == last_file {
                    format!("{first_file}:{first}-{last}")
                } else {
                    format!("{first_file}:{first}-{last_file}:{last}")
                }
            } else {
                format!("{}-{}", c.first_frame.local(), c.last_frame.local())
            };
            [
                c.id.to_string(),
                format!("{}{}", c.client, if c.role_inferred { " ?" } else { "" }),
                c.server.to_string(),
                relative(a, c.start),
                format!("{:.3}", c.duration_s),
                c.handshake.state.as_str().to_string(),
                c.close.kind.as_str().to_string(),
                c.close.active_closer.as_str().to_string(),
                holder_text(c),
                frames,
                c.history.to_string(),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([columns[i].0.len()])
                .max()
                .unwrap_or(0)
                + 3
        })
        .collect();
    let limit = style
        .width
        .map(usize::from)
        .or_else(|| style.tty.then(|| term_width(style)));
    let mut keep: Vec<bool> = vec![true; columns.len()];
    if let Some(limit) = limit {
        for prio in (1..=4).rev() {
            let total: usize = 1
                + (0..columns.len())
                    .filter(|i| keep[*i])
                    .map(|i| widths[i])
                    .sum::<usize>();
            if total <= limit {
                break;
            }
            for (i, (_, p)) in columns.iter().enumerate() {
                if *p == prio {
                    keep[i] = false;
                }
            }
        }
    }
    let header: Vec<&str> = columns
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(c, _)| c.0)
        .collect();
    let mut t = table(style, &header);
    for r in rows {
        t.add_row(
            r.into_iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(v, _)| v)
                .collect::<Vec<_>>(),
        );
    }
    writeln!(out, "{t}")?;
    if conns.iter().any(|c| c.role_inferred) {
        writeln!(
            out,
            "? roles inferred from ports: the capture started after the handshake"
        )?;
    }
    Ok(())
}
