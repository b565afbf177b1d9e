//! `timeline`: TIME_WAIT sockets per host over the capture, as a terminal
//! chart and as an SVG picture for the ticket.

use crate::analysis::Analysis;
use crate::time::Timestamp;
use crate::track::HostSeries;
use std::io::{self, Write};
use svg::Document;
use svg::node::element::{Circle, Line, Path, Text as SvgText};

/// The span a timeline covers: the capture, and the TIME_WAIT tail after it.
pub fn span(a: &Analysis, series: &[HostSeries]) -> Option<(Timestamp, Timestamp)> {
    let start = a.origin()?;
    let end = series
        .iter()
        .filter_map(|s| s.steps.last().map(|x| x.0))
        .chain(a.captures.iter().filter_map(|c| c.last))
        .max()?;
    Some((start, end.max(start)))
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// One row per host: the most sockets held in each time bucket.
pub fn render_timeline_text(
    a: &Analysis,
    series: &[HostSeries],
    width: usize,
    out: &mut dyn Write,
) -> io::Result<()> {
    let Some((start, end)) = span(a, series) else {
        return writeln!(out, "No TIME_WAIT sockets in this capture.");
    };
    if series.is_empty() {
        return writeln!(out, "No TIME_WAIT sockets in this capture.");
    }
    let label_w = series
        .iter()
        .map(|s| s.ip.to_string().len())
        .max()
        .unwrap_or(8)
        + 2;
    let cols = width.saturating_sub(label_w + 12).clamp(10, 200);
    let total = end.secs_since(start).max(1e-9);
    let step = total / cols as f64;
    let head = format!(
        "TIME_WAIT sockets per host, +0 to +{total:.1} s, {step:.2} s per column (each socket held {} s)",
        a.options.time_wait_s
    );
    for l in textwrap::wrap(&head, width) {
        writeln!(out, "{l}")?;
    }
    for s in series {
        let mut row = String::new();
        for i in 0..cols {
            let from = start.add_secs(step * i as f64);
            let to = start.add_secs(step * (i + 1) as f64);
            let n = s.max_in(from, to);
            row.push(if n == 0 {
                ' '
            } else {
                let level = ((n as f64 / s.peak as f64) * 7.0).round() as usize;
                BARS[level.min(7)]
            });
        }
        writeln!(out, "{:<label_w$}{row} peak {}", s.ip.to_string(), s.peak,)?;
    }
    for s in series {
        if let Some(at) = s.peak_at {
            writeln!(
                out,
                "{}: peak of {} TIME_WAIT sockets at +{:.3} s",
                s.ip,
                s.peak,
                at.secs_since(start)
            )?;
        }
    }
    if let Some(end) = a.captures.iter().filter_map(|c| c.last).max() {
        let tail = format!(
            "The capture ends at +{:.3} s; the chart goes on while its sockets are still in TIME_WAIT.",
            end.secs_since(start)
        );
        for l in textwrap::wrap(&tail, width) {
            writeln!(out, "{l}")?;
        }
    }
    Ok(())
}

const COLORS: [&str; 6] = [
    "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// A step chart: x = seconds since the capture start, y = sockets.
pub fn render_timeline_svg(
    a: &Analysis,
    series: &[HostSeries],
    out: &mut dyn Write,
) -> io::Result<()> {
    let (w, h) = (900.0f64, 420.0f64);
    let (left, right, top, bottom) = (70.0, 190.0, 40.0, 50.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let mut doc = Document::new()
        .set("viewBox", (0, 0, w, h))
        .set("width", w)
        .set("height", h)
        .set("font-family", "sans-serif")
        .set("font-size", 12);
    doc = doc.add(
        svg::node::element::Rectangle::new()
            .set("width", w)
            .set("height", h)
            .set("fill", "white"),
    );
    doc = doc.add(
        SvgText::new("TIME_WAIT sockets per host")
            .set("x", left)
            .set("y", 22)
            .set("font-size", 16),
    );
    let Some((start, end)) = span(a, series) else {
        return write!(out, "{doc}");
    };
    let total = end.secs_since(start).max(1e-9);
    let ymax = series.iter().map(|s| s.peak).max().unwrap_or(1).max(1) as f64;
    let x = |t: Timestamp| left + pw * (t.secs_since(start) / total);
    let y = |n: u64| top + ph * (1.0 - n as f64 / ymax);
    // axes and ticks
    doc = doc
        .add(
            Line::new()
                .set("x1", left)
                .set("y1", top + ph)
                .set("x2", left + pw)
                .set("y2", top + ph)
                .set("stroke", "black"),
        )
        .add(
            Line::new()
                .set("x1", left)
                .set("y1", top)
                .set("x2", left)
                .set("y2", top + ph)
                .set("stroke", "black"),
        );
    for i in 0..=5 {
        let t = total * i as f64 / 5.0;
        let px = left + pw * i as f64 / 5.0;
        doc = doc
            .add(
                Line::new()
                    .set("x1", px)
                    .set("y1", top + ph)
                    .set("x2", px)
                    .set("y2", top + ph + 5.0)
                    .set("stroke", "black"),
            )
            .add(
                SvgText::new(format!("{t:.1}"))
                    .set("x", px)
                    .set("y", top + ph + 18.0)
                    .set("text-anchor", "middle"),
            );
        let n = (ymax * i as f64 / 5.0).round() as u64;
        let py = y(n);
        doc = doc
            .add(
                Line::new()
                    .set("x1", left - 5.0)
                    .set("y1", py)
                    .set("x2", left)
                    .set("y2", py)
                    .set("stroke", "black"),
            )
            .add(
                SvgText::new(n.to_string())
                    .set("x", left - 8.0)
                    .set("y", py + 4.0)
                    .set("text-anchor", "end"),
            );
    }
    doc = doc
        .add(
            SvgText::new("seconds since the capture started")
                .set("x", left + pw / 2.0)
                .set("y", h - 12.0)
                .set("text-anchor", "middle"),
        )
        .add(
            SvgText::new("sockets")
                .set("x", 16)
                .set("y", top + ph / 2.0)
                .set("transform", format!("rotate(-90 16 {})", top + ph / 2.0))
                .set("text-anchor", "middle"),
        );
    if let Some(cap_end) = a.captures.iter().filter_map(|c| c.last).max() {
        let px = x(cap_end);
        doc = doc
            .add(
                Line::new()
                    .set("x1", px)
                    .set("y1", top)
                    .set("x2", px)
                    .set("y2", top + ph)
                    .set("stroke", "#888")
                    .set("stroke-dasharray", "4 4"),
            )
            .add(
                SvgText::new("capture ends")
                    .set("x", px + 4.0)
                    .set("y", top + 12.0)
                    .set("fill", "#555"),
            );
    }
    for (i, s) in series.iter().take(COLORS.len()).enumerate() {
        let color = COLORS[i];
        let mut d = format!("M {:.2} {:.2}", x(start), y(0));
        let mut last = 0;
        for (t, n) in &s.steps {
            d.push_str(&format!(" H {:.2} V {:.2}", x(*t), y(*n)));
            last = *n;
        }
        d.push_str(&format!(" H {:.2}", x(end)));
        let _ = last;
        doc = doc.add(
            Path::new()
                .set("d", d)
                .set("fill", "none")
                .set("stroke", color)
                .set("stroke-width", 2),
        );
        if let Some(at) = s.peak_at {
            doc = doc
                .add(
                    Circle::new()
                        .set("cx", x(at))
                        .set("cy", y(s.peak))
                        .set("r", 4)
                        .set("fill", color),
                )
                .add(
                    SvgText::new(format!("peak {} at +{:.3} s", s.peak, at.secs_since(start)))
                        .set("x", x(at) + 6.0)
                        .set("y", y(s.peak) - 6.0)
                        .set("fill", color),
                );
        }
        doc = doc
            .add(
                Line::new()
                    .set("x1", left + pw + 15.0)
                    .set("y1", top + 10.0 + 20.0 * i as f64)
                    .set("x2", left + pw + 35.0)
                    .set("y2", top + 10.0 + 20.0 * i as f64)
                    .set("stroke", color)
                    .set("stroke-width", 3),
            )
            .add(
                SvgText::new(format!("{} (peak {})", s.ip, s.peak))
                    .set("x", left + pw + 40.0)
                    .set("y", top + 14.0 + 20.0 * i as f64),
            );
    }
    writeln!(out, "{doc}")
}
