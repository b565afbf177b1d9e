//! `timeline`: TIME_WAIT sockets per host over the capture, as a terminal
//! chart and as an SVG picture for the ticket.

use super::text::{TextStyle, paint, term_width};
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

/// One row per host (the [`HOSTS_DRAWN`] largest holders): the most
/// sockets held in each time bucket.
/// In colour (`style.color`): each host's label and bars in a colour of its
/// own, the heading and each host's peak in bold.
pub fn render_timeline_text(
    a: &Analysis,
    series: &[HostSeries],
    style: &TextStyle,
    out: &mut dyn Write,
) -> io::Result<()> {
    let width = term_width(style);
    let Some((start, end)) = span(a, series) else {
        return writeln!(out, "No TIME_WAIT sockets in this capture.");
    };
    if series.is_empty() {
        return writeln!(out, "No TIME_WAIT sockets in this capture.");
    }
    let (series, rest) = series.split_at(series.len().min(HOSTS_DRAWN));
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
        writeln!(out, "{}", paint(style, "1", &l))?;
    }
    for (k, s) in series.iter().enumerate() {
        let code = HOST_CODES[k % HOST_CODES.len()];
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
        let ip = s.ip.to_string();
        writeln!(
            out,
            "{}{}{} {}",
            paint(style, code, &ip),
            " ".repeat(label_w.saturating_sub(ip.len())),
            paint(style, code, &row),
            paint(style, "1", &format!("peak {}", s.peak))
        )?;
    }
    for (k, s) in series.iter().enumerate() {
        if let Some(at) = s.peak_at {
            writeln!(
                out,
                "{}: {} at +{:.3} s",
                paint(style, HOST_CODES[k % HOST_CODES.len()], &s.ip.to_string()),
                paint(style, "1", &format!("peak of {} TIME_WAIT sockets", s.peak)),
                at.secs_since(start)
            )?;
        }
    }
    if let Some(most) = rest.first() {
        let more = format!(
            "... and {} more hosts, none with more than {} TIME_WAIT sockets (`timewait analyze --format json` lists every host)",
            rest.len(),
            most.peak
        );
        for l in textwrap::wrap(&more, width) {
            writeln!(out, "{l}")?;
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

/// The terminal's colours of the hosts (SGR codes), in the order of the
/// picture's [`COLORS`]: red, blue, green, yellow, magenta, cyan.
const HOST_CODES: [&str; 6] = ["31", "34", "32", "33", "35", "36"];

const COLORS: [&str; 6] = [
    "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// Hosts drawn in the text chart and the picture; the rest are counted.
/// A busy server talks to thousands of clients, most holding a handful of
/// sockets: the few largest holders are the story.
pub const HOSTS_DRAWN: usize = 10;

/// The client's ephemeral port range is drawn once a host holds at least
/// this share of it in TIME_WAIT as a client: half of what
/// `time-wait-pressure` warns at, near enough to matter, while a chart of a
/// few sockets is not flattened against a line at 28,232.
const PORT_RANGE_NEAR: f64 = 0.25;

/// Axis ticks at round values: steps of 1, 2 or 5 times a power of ten,
/// from 0 to the first tick at or above `max`, at most `max_intervals`
/// intervals. With `integer`, the step is at least 1 (socket counts).
pub fn nice_ticks(max: f64, max_intervals: usize, integer: bool) -> (f64, Vec<f64>) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let intervals = max_intervals.max(1) as f64;
    let mut power = 10f64.powf((max / intervals).log10().floor());
    let step = loop {
        if let Some(m) = [1.0, 2.0, 5.0]
            .iter()
            .map(|m| m * power)
            .find(|step| (max / step).ceil() <= intervals && (!integer || *step >= 1.0))
        {
            break m;
        }
        power *= 10.0;
    };
    let n = (max / step - 1e-9).ceil().max(1.0) as usize;
    (step, (0..=n).map(|i| i as f64 * step).collect())
}

/// A tick value with as many decimals as its step needs: 0, 20, 40 or
/// 0.5, 1.0, 1.5.
fn tick_label(v: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

/// An axis-aligned box in picture coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    fn overlaps(&self, o: &Rect) -> bool {
        self.x < o.x + o.w && o.x < self.x + self.w && self.y < o.y + o.h && o.y < self.y + self.h
    }
    fn inside(&self, o: &Rect) -> bool {
        self.x >= o.x
            && self.y >= o.y
            && self.x + self.w <= o.x + o.w
            && self.y + self.h <= o.y + o.h
    }
}

/// Text size for layout: SVG has no text metrics, so a generous average
/// advance for the 12 px sans-serif used (digits and lower case are ~6.7).
const CHAR_W: f64 = 7.0;
const LINE_H: f64 = 14.0;

fn text_box(x: f64, baseline: f64, text: &str, anchor_end: bool) -> Rect {
    let w = text.chars().count() as f64 * CHAR_W;
    Rect {
        x: if anchor_end { x - w } else { x },
        y: baseline - LINE_H + 3.0,
        w,
        h: LINE_H,
    }
}

/// Places one label per point, near it, where it overlaps no label placed
/// before it and nothing in `taken`, inside `area`: right or left of the
/// point, above or below, then further up or down in steps of a line.
/// Points are placed in the order given (the largest peak first), so the
/// most important label gets the best place; a label with no room is left
/// out (`None`): the legend still names every drawn host and its peak.
pub fn place_labels(
    points: &[(f64, f64, String)],
    area: Rect,
    taken: &[Rect],
) -> Vec<Option<Rect>> {
    let mut placed: Vec<Rect> = taken.to_vec();
    let mut out = Vec::with_capacity(points.len());
    for (px, py, text) in points {
        let mut found = None;
        'search: for step in 0..40 {
            let dy = step as f64 * LINE_H;
            for (dx_end, baseline) in [
                (false, py - 6.0 - dy),
                (true, py - 6.0 - dy),
                (false, py + 16.0 + dy),
                (true, py + 16.0 + dy),
            ] {
                let x = if dx_end { px - 6.0 } else { px + 6.0 };
                let r = text_box(x, baseline, text, dx_end);
                if r.inside(&area) && placed.iter().all(|p| !p.overlaps(&r)) {
                    found = Some(r);
                    break 'search;
                }
            }
        }
        if let Some(r) = found {
            placed.push(r);
        }
        out.push(found);
    }
    out
}

/// A label with a white halo under it, readable where it crosses a curve
/// (a copy underneath rather than `paint-order`, which not every renderer
/// has).
fn with_halo(doc: Document, text: &str, x: f64, y: f64, color: &str, anchor_end: bool) -> Document {
    let anchor = if anchor_end { "end" } else { "start" };
    doc.add(
        SvgText::new(text)
            .set("x", x)
            .set("y", y)
            .set("fill", "white")
            .set("stroke", "white")
            .set("stroke-width", 4)
            .set("stroke-linejoin", "round")
            .set("text-anchor", anchor),
    )
    .add(
        SvgText::new(text)
            .set("x", x)
            .set("y", y)
            .set("fill", color)
            .set("text-anchor", anchor),
    )
}

/// A step chart: x = seconds since the capture start, y = sockets, with
/// round ticks, peak labels that never overlap, and the client's ephemeral
/// port range as a line when a host comes near it.
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
    let drawn = &series[..series.len().min(COLORS.len())];
    let (lo, hi) = a.options.port_range;
    let range = f64::from(hi) - f64::from(lo) + 1.0;
    let peak = drawn.iter().map(|s| s.peak).max().unwrap_or(0) as f64;
    // Only sockets on the client side sit on ephemeral ports: a server's
    // TIME_WAIT sockets share its listening port and are not bounded by it.
    let client_peak = drawn.iter().map(|s| s.client_peak).max().unwrap_or(0) as f64;
    let show_range = client_peak >= range * PORT_RANGE_NEAR;
    let (xstep, xticks) = nice_ticks(end.secs_since(start), 8, false);
    let (ystep, yticks) = nice_ticks(if show_range { peak.max(range) } else { peak }, 6, true);
    let total = *xticks.last().expect("one tick at least");
    let ymax = *yticks.last().expect("one tick at least");
    let x = |t: Timestamp| left + pw * (t.secs_since(start) / total);
    let xs = |secs: f64| left + pw * (secs / total);
    let yv = |n: f64| top + ph * (1.0 - n / ymax);
    let y = |n: u64| yv(n as f64);
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
    for t in &xticks {
        let px = xs(*t);
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
                SvgText::new(tick_label(*t, xstep))
                    .set("x", px)
                    .set("y", top + ph + 18.0)
                    .set("text-anchor", "middle"),
            );
    }
    for n in &yticks {
        let py = yv(*n);
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
                SvgText::new(tick_label(*n, ystep))
                    .set("x", left - 8.0)
                    .set("y", py + 4.0)
                    .set("text-anchor", "end"),
            );
        if *n > 0.0 {
            doc = doc.add(
                Line::new()
                    .set("x1", left)
                    .set("y1", py)
                    .set("x2", left + pw)
                    .set("y2", py)
                    .set("stroke", "#eee"),
            );
        }
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
    // Texts placed before the peak labels, which then keep clear of them.
    let mut taken = Vec::new();
    // Their text is drawn after the curves, so no curve crosses it.
    let mut late: Vec<(String, f64, f64, &str, bool)> = Vec::new();
    if show_range {
        let py = yv(range);
        let label = format!(
            "ephemeral port range: {} ports ({lo}-{hi}) per server IP:port",
            super::markdown::group_thousands(range as usize)
        );
        let r = text_box(left + pw - 4.0, py - 6.0, &label, true);
        taken.push(r);
        doc = doc.add(
            Line::new()
                .set("x1", left)
                .set("y1", py)
                .set("x2", left + pw)
                .set("y2", py)
                .set("stroke", "#000")
                .set("stroke-width", 1.5)
                .set("stroke-dasharray", "8 4"),
        );
        late.push((label, left + pw - 4.0, py - 6.0, "#000", true));
    }
    if let Some(cap_end) = a.captures.iter().filter_map(|c| c.last).max() {
        let px = x(cap_end);
        let label = "capture ends";
        // Beside the line, on the side with room.
        let anchor_end = px + 4.0 + label.len() as f64 * CHAR_W > left + pw;
        let tx = if anchor_end { px - 4.0 } else { px + 4.0 };
        let baseline = top + ph - 6.0;
        taken.push(text_box(tx, baseline, label, anchor_end));
        doc = doc.add(
            Line::new()
                .set("x1", px)
                .set("y1", top)
                .set("x2", px)
                .set("y2", top + ph)
                .set("stroke", "#888")
                .set("stroke-dasharray", "4 4"),
        );
        late.push((label.to_string(), tx, baseline, "#555", anchor_end));
    }
    let mut points = Vec::new();
    for (i, s) in drawn.iter().enumerate() {
        let color = COLORS[i];
        let mut d = format!("M {:.2} {:.2}", x(start), y(0));
        for (t, n) in &s.steps {
            d.push_str(&format!(" H {:.2} V {:.2}", x(*t), y(*n)));
        }
        d.push_str(&format!(" H {:.2}", x(end)));
        doc = doc.add(
            Path::new()
                .set("d", d)
                .set("fill", "none")
                .set("stroke", color)
                .set("stroke-width", 2),
        );
        // A peak too small to leave the axis gets no label: the legend
        // names it, and its label would only crowd the bigger ones.
        if let Some(at) = s.peak_at.filter(|_| s.peak as f64 >= ymax * 0.03) {
            points.push((
                i,
                x(at),
                y(s.peak),
                format!("peak {} at +{:.3} s", s.peak, at.secs_since(start)),
            ));
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
    if series.len() > drawn.len() {
        doc = doc.add(
            SvgText::new(format!("… and {} more hosts", series.len() - drawn.len()))
                .set("x", left + pw + 15.0)
                .set("y", top + 14.0 + 20.0 * drawn.len() as f64)
                .set("fill", "#555"),
        );
    }
    for (text, tx, ty, color, anchor_end) in &late {
        doc = with_halo(doc, text, *tx, *ty, color, *anchor_end);
    }
    let area = Rect {
        x: left,
        y: top,
        w: pw,
        h: ph,
    };
    let labels: Vec<(f64, f64, String)> = points
        .iter()
        .map(|(_, px, py, t)| (*px, *py, t.clone()))
        .collect();
    for ((i, px, py, text), place) in points.iter().zip(place_labels(&labels, area, &taken)) {
        let color = COLORS[*i];
        doc = doc.add(
            Circle::new()
                .set("cx", *px)
                .set("cy", *py)
                .set("r", 4)
                .set("fill", color),
        );
        let Some(r) = place else { continue };
        // A label moved away from its point gets a thin leader line.
        let (lx, ly) = (
            if r.x >= *px { r.x } else { r.x + r.w },
            if r.y + r.h / 2.0 < *py {
                r.y + r.h
            } else {
                r.y
            },
        );
        if (ly - py).abs() > LINE_H + 8.0 {
            doc = doc.add(
                Line::new()
                    .set("x1", *px)
                    .set("y1", *py)
                    .set("x2", lx)
                    .set("y2", ly)
                    .set("stroke", color)
                    .set("stroke-width", 0.75),
            );
        }
        doc = with_halo(doc, text, r.x, r.y + LINE_H - 3.0, color, false);
    }
    writeln!(out, "{doc}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mantissa(step: f64) -> f64 {
        step / 10f64.powf(step.log10().floor())
    }

    #[test]
    fn ticks_are_round_and_cover_the_data() {
        for (max, intervals, integer) in [
            (146.2, 8, false),
            (1495.0, 6, true),
            (7552.0, 6, true),
            (0.958, 8, false),
            (3.0, 6, true),
            (1.0, 6, true),
            (28232.0, 6, true),
            (86.4, 8, false),
            (0.0004, 8, false),
        ] {
            let (step, ticks) = nice_ticks(max, intervals, integer);
            let m = (mantissa(step) * 1000.0).round() / 1000.0;
            assert!([1.0, 2.0, 5.0].contains(&m), "{max}: step {step}");
            assert_eq!(ticks[0], 0.0);
            assert!(*ticks.last().unwrap() >= max - 1e-12, "{max}: {ticks:?}");
            assert!(ticks.len() - 1 <= intervals, "{max}: {ticks:?}");
            assert!(ticks.len() >= 2, "{max}: {ticks:?}");
            // Not more room than one step above the data.
            assert!(ticks[ticks.len() - 2] < max, "{max}: {ticks:?}");
            if integer {
                assert!(step >= 1.0 && step.fract() == 0.0, "{max}: {step}");
            }
            for t in &ticks {
                let k = t / step;
                assert!((k - k.round()).abs() < 1e-9, "{max}: {t}");
            }
        }
        // The issue's axis: 498, 997, 1495 become 0, 500, 1000, 1500.
        assert_eq!(nice_ticks(1495.0, 6, true).1, [0.0, 500.0, 1000.0, 1500.0]);
        assert_eq!(tick_label(0.5, 0.5), "0.5");
        assert_eq!(tick_label(40.0, 20.0), "40");
    }

    #[test]
    fn labels_of_similar_peaks_never_overlap_and_stay_in_the_plot() {
        let area = Rect {
            x: 70.0,
            y: 40.0,
            w: 640.0,
            h: 330.0,
        };
        // Six hosts peaking at nearly the same time and count, and a label
        // already there (the port range's).
        let taken = [Rect {
            x: 400.0,
            y: 60.0,
            w: 300.0,
            h: 14.0,
        }];
        let points: Vec<(f64, f64, String)> = (0..6)
            .map(|i| {
                (
                    420.0 + i as f64,
                    80.0 + i as f64 * 2.0,
                    format!("peak {} at +{:.3} s", 17 - i, 61.0 + i as f64 * 0.1),
                )
            })
            .collect();
        let placed = place_labels(&points, area, &taken);
        let boxes: Vec<Rect> = placed.iter().map(|p| p.expect("room for six")).collect();
        for (i, a) in boxes.iter().enumerate() {
            assert!(a.inside(&area), "{a:?}");
            assert!(!a.overlaps(&taken[0]), "{a:?}");
            for b in &boxes[i + 1..] {
                assert!(!a.overlaps(b), "{a:?} {b:?}");
            }
        }
        // The first (largest) peak keeps the place next to its point.
        assert!((boxes[0].x - 426.0).abs() < 1e-9, "{:?}", boxes[0]);
        // With no room at all a label is left out rather than overlapped.
        let tiny = Rect {
            x: 0.0,
            y: 0.0,
            w: 100.0,
            h: 20.0,
        };
        let two = vec![
            (10.0, 15.0, "peak 1 at +1.000 s".to_string()),
            (10.0, 15.0, "peak 1 at +1.000 s".to_string()),
        ];
        assert_eq!(place_labels(&two, tiny, &[]).iter().flatten().count(), 0);
    }
}
