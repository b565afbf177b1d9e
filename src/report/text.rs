//! The terminal report: a verdict line first, then findings, then tables.

use super::relative;
use crate::analysis::{Analysis, close_kind_name, closer_name, handshake_name};
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

fn paint(style: &TextStyle, code: &str, s: &str) -> String {
    if style.color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// The one-line answer at the top of every report.
pub fn verdict_line(a: &Analysis) -> String {
    let files: Vec<&str> = a.captures.iter().map(|c| c.path.as_str()).collect();
    let s = &a.summary;
    let closers: Vec<String> = s
        .by_active_closer
        .iter()
        .filter(|(k, v)| **v > 0 && **k != "none")
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let mut line = format!(
        "{} connection{} in {} ({} packets, {:.3} s)",
        s.connections,
        if s.connections == 1 { "" } else { "s" },
        files.join(", "),
        s.packets,
        s.duration_s
    );
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
    if s.idle_retired > 0 {
        line.push_str(&format!(
            "; {} idle connection{} retired early (silent 130 s in the handshake or 3 h after; a later packet on the 4-tuple starts a new connection)",
            s.idle_retired,
            if s.idle_retired == 1 { "" } else { "s" }
        ));
    }
    line
}

pub fn render_text(a: &Analysis, style: &TextStyle, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{}", paint(style, "1", &verdict_line(a)))?;
    let s = &a.summary;
    if a.findings.is_empty() {
        writeln!(out, "No findings.")?;
    } else {
        writeln!(out)?;
        writeln!(out, "Findings")?;
        let mut findings: Vec<_> = a.findings.iter().collect();
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        for f in findings {
            let sev = format!("{:?}", f.severity).to_uppercase();
            let code = match f.severity {
                crate::detect::Severity::Error => "31;1",
                crate::detect::Severity::Warning => "33;1",
                crate::detect::Severity::Info => "36",
            };
            writeln!(
                out,
                "  {} {}: {}",
                paint(style, code, &sev),
                f.kind,
                f.summary
            )?;
            writeln!(out, "      filter: {}", f.display_filter)?;
        }
    }

    writeln!(out)?;
    writeln!(out, "Captures")?;
    let mut t = table(
        style,
        &["file", "format", "link types", "packets", "TCP", "skipped"],
    );
    for c in &a.captures {
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
        t.add_row(vec![
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
        ]);
    }
    writeln!(out, "{t}")?;
    for c in &a.captures {
        if let Some(d) = &c.damage {
            writeln!(
                out,
                "  {} {}: {}; results cover frames 1-{}.",
                paint(style, "33", "note"),
                c.path,
                d.message,
                d.after_frame
            )?;
        }
        if let Some(e) = &c.error {
            writeln!(out, "  {} {}: {e}", paint(style, "31", "error"), c.path)?;
        }
    }

    writeln!(out)?;
    writeln!(out, "Connections ({})", s.connections)?;
    let join = |m: &std::collections::BTreeMap<&'static str, u64>, order: &[&str]| {
        order
            .iter()
            .map(|k| format!("{k} {}", m.get(k).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(" · ")
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

    if !a.hosts.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "TIME_WAIT by host (each socket held {} s)",
            a.options.time_wait_s
        )?;
        let mut t = table(
            style,
            &[
                "host",
                "TIME_WAIT peak",
                "at (s)",
                "closed first",
                "peer closed first",
                "connections",
            ],
        );
        for h in &a.hosts {
            t.add_row(vec![
                h.ip.to_string(),
                h.time_wait_peak.to_string(),
                h.peak_at
                    .map_or("-".to_string(), |ts| format!("+{}", relative(a, ts))),
                h.active_closes.to_string(),
                h.passive_closes.to_string(),
                h.connections.to_string(),
            ]);
        }
        writeln!(out, "{t}")?;
    }
    Ok(())
}

fn holder_text(c: &ConnectionRecord) -> String {
    match c.time_wait.holder {
        Closer::None => "-".to_string(),
        h => closer_name(h).to_string(),
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
    let mut t = table(
        style,
        &[
            "id",
            "client",
            "server",
            "start (s)",
            "dur (s)",
            "handshake",
            "close",
            "closer",
            "TIME_WAIT",
            "frames",
            "history",
        ],
    );
    for c in conns {
        let frames = if multi {
            format!("{}:{}-{}", c.capture, c.first_frame, c.last_frame)
        } else {
            format!("{}-{}", c.first_frame, c.last_frame)
        };
        t.add_row(vec![
            c.id.to_string(),
            format!("{}{}", c.client, if c.role_inferred { " ?" } else { "" }),
            c.server.to_string(),
            relative(a, c.start),
            format!("{:.3}", c.duration_s),
            handshake_name(c.handshake.state).to_string(),
            close_kind_name(c.close.kind).to_string(),
            closer_name(c.close.active_closer).to_string(),
            holder_text(c),
            frames,
            c.history.clone(),
        ]);
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
