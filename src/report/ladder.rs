//! `show --conn N`: one connection as a ladder (sequence) diagram, client
//! on the left, server on the right, one line per segment with the TCP
//! state each side is in after it.

use super::relative;
use super::text::{TextStyle, paint, term_width};
use crate::analysis::{Analysis, SegmentObserver};
use crate::decode::{Segment, TcpFlags};
use crate::flow::Side;
use crate::seq::{SeqNum, TsVal};
use crate::time::Timestamp;
use crate::track::{Closer, ConnId, ConnectionRecord, Observation, Reuse, SegmentNotes, TcpState};
use std::io::{self, Write};

/// One segment of the connection, as the ladder shows it.
#[derive(Debug, Clone)]
pub struct LadderRow {
    pub frame: crate::frame::FrameId,
    pub ts: Timestamp,
    pub sender: Side,
    pub flags: TcpFlags,
    pub seq: SeqNum,
    pub ack: SeqNum,
    pub len: u32,
    pub tsval: Option<TsVal>,
    /// [client, server] after the segment.
    pub states: [TcpState; 2],
    pub notes: SegmentNotes,
    /// On the SYN that reopened a 4-tuple: what its previous incarnation
    /// left (who holds TIME_WAIT, until when).
    pub reuse: Option<Reuse>,
}

/// Collects the segments of one connection while the pipeline runs.
pub struct LadderCollector {
    conn: ConnId,
    /// At most this many rows (a bulk transfer would be endless).
    limit: usize,
    pub rows: Vec<LadderRow>,
    pub omitted: u64,
}

impl LadderCollector {
    pub fn new(conn: ConnId, limit: usize) -> LadderCollector {
        LadderCollector {
            conn,
            limit,
            rows: Vec::new(),
            omitted: 0,
        }
    }
}

impl SegmentObserver for LadderCollector {
    fn on_segment(&mut self, _capture: u32, seg: &Segment, obs: &Observation) {
        if obs.conn != self.conn {
            return;
        }
        if self.rows.len() >= self.limit {
            self.omitted += 1;
            return;
        }
        self.rows.push(LadderRow {
            frame: seg.frame,
            ts: seg.ts,
            sender: obs.sender,
            flags: seg.flags,
            seq: seg.seq,
            ack: seg.ack,
            len: seg.payload_len,
            tsval: seg.tsopt.map(|t| t.tsval),
            states: obs.states,
            notes: obs.notes,
            reuse: obs.reuse.as_deref().copied(),
        });
    }
}

const ARROW: usize = 40;

/// The base each side's sequence numbers are shown relative to: its ISN,
/// or one before the first sequence number seen (as Wireshark does).
fn bases(rows: &[LadderRow]) -> [Option<SeqNum>; 2] {
    let mut b = [None, None];
    for r in rows {
        let i = r.sender.index();
        if b[i].is_none() {
            b[i] = Some(if r.flags.syn() {
                r.seq
            } else {
                SeqNum(r.seq.0.wrapping_sub(1))
            });
        }
    }
    b
}

fn note(r: &LadderRow, before: TcpState) -> String {
    let mut n = Vec::new();
    if r.notes.syn_retransmit {
        n.push("SYN retransmitted");
    }
    if r.notes.fin_retransmit {
        n.push("FIN retransmitted");
    }
    if r.notes.challenge_ack {
        n.push("challenge ACK: the server has a socket for this tuple");
    }
    if r.notes.refused {
        n.push("refused");
    }
    if r.flags.rst() && before == TcpState::TimeWait {
        n.push("RST instead of an ACK: the TIME_WAIT socket was gone");
    } else if r.flags.rst() && !r.notes.refused {
        n.push("RST");
    }
    n.join("; ")
}

/// `F. seq=13 ack=12 len=4 TSval=…`, sequence numbers relative to each
/// side's base.
fn label(r: &LadderRow, base: &[Option<SeqNum>; 2]) -> String {
    let me = r.sender.index();
    let peer = r.sender.peer().index();
    let rel = |s: SeqNum, b: Option<SeqNum>| s.0.wrapping_sub(b.map_or(0, |b| b.0));
    let mut label = format!("{} seq={}", r.flags, rel(r.seq, base[me]));
    if r.flags.ack() {
        label.push_str(&format!(" ack={}", rel(r.ack, base[peer])));
    }
    if r.len > 0 {
        label.push_str(&format!(" len={}", r.len));
    }
    if let Some(t) = r.tsval {
        label.push_str(&format!(" TSval={t}"));
    }
    label
}

/// How a ladder is written: for a terminal (its width and colours, as
/// `analyze`'s text report) or as a fenced block for a ticket.
#[derive(Debug, Clone, Copy)]
pub enum LadderFormat {
    Text(TextStyle),
    /// Plain and at its natural width (a ticket renders no ANSI colour and
    /// scrolls a code block), within `max_chars` characters when given.
    Markdown {
        max_chars: Option<usize>,
    },
}

/// [`render_ladder`] within `max_chars` characters (Markdown for a ticket
/// field, see `markdown.rs`): the first segments are kept, the handshake
/// and what follows it, and the rest counted in the "more segments" line.
pub fn render_ladder_limited(
    a: &Analysis,
    c: &ConnectionRecord,
    rows: &[LadderRow],
    omitted: u64,
    format: &LadderFormat,
    out: &mut dyn Write,
) -> io::Result<()> {
    let render = |n: usize| -> io::Result<String> {
        let mut buf = Vec::new();
        let dropped = (rows.len() - n) as u64;
        render_ladder(a, c, &rows[..n], omitted + dropped, format, &mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    let whole = render(rows.len())?;
    let max_chars = match format {
        LadderFormat::Markdown { max_chars } => *max_chars,
        LadderFormat::Text(_) => None,
    };
    let Some(max) = max_chars.filter(|m| whole.chars().count() > *m) else {
        return out.write_all(whole.as_bytes());
    };
    // The most rows that fit: the length grows with the rows kept.
    let (mut lo, mut hi) = (0, rows.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if render(mid)?.chars().count() <= max {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    out.write_all(render(lo)?.as_bytes())
}

/// `tcp_invalid_ratelimit`: a TIME_WAIT socket's ACKs to out-of-window
/// segments are at most one per this many seconds.
const INVALID_RATELIMIT_S: f64 = 0.5;

/// What the server's TIME_WAIT socket did to a connection whose SYN met
/// it: per row, the states to show and a note that replaces the generic
/// one. The tracker sees a new connection with a listener behind it; the
/// kernel has a TIME_WAIT socket on the 4-tuple that answers SYNs it
/// rejects with a bare ACK for the old connection
/// (`tcp_timewait_state_process`), until a SYN is accepted or the
/// client's RST frees it (ignored with `tcp_rfc1337=1`). The client, in
/// SYN_SENT, answers such an ACK with RST and stays in SYN_SENT (RFC 9293
/// §3.10.7.3), so it sends the SYN again.
fn time_wait_story(rows: &[LadderRow]) -> Vec<([TcpState; 2], Option<String>)> {
    let mut out: Vec<([TcpState; 2], Option<String>)> =
        rows.iter().map(|r| (r.states, None)).collect();
    let Some(first) = rows.first() else {
        return out;
    };
    let Some(reuse) = first.reuse.filter(|u| {
        matches!(u.holder, Closer::Server | Closer::Both)
            && u.time_wait_until.is_some_and(|until| until > first.ts)
    }) else {
        return out;
    };
    let is_synack = |r: &LadderRow| r.sender == Side::Server && r.flags.syn() && r.flags.ack();
    let end = rows.iter().position(is_synack).unwrap_or(rows.len());
    let mut alive = true;
    let mut last_ack: Option<Timestamp> = None;
    let mut client_waits = false;
    for (i, r) in rows[..end].iter().enumerate() {
        let mut states = r.states;
        let mut note = None;
        if r.sender == Side::Server && r.notes.challenge_ack && alive {
            last_ack = Some(r.ts);
            note = Some(format!(
                "bare ACK from the server's TIME_WAIT socket (connection {}): the SYN is rejected",
                reuse.previous
            ));
        } else if r.sender == Side::Client && r.flags.rst() && client_waits {
            // The next answer from the server tells what the RST did.
            let next = rows[i + 1..].iter().find(|n| n.sender == Side::Server);
            let what = match next {
                Some(n) if is_synack(n) => {
                    alive = false;
                    "; it freed the TIME_WAIT socket (tcp_rfc1337=0): the next SYN is accepted"
                }
                Some(n) if n.notes.challenge_ack => {
                    "; the TIME_WAIT socket ignores it (tcp_rfc1337=1): the next SYN gets the same ACK"
                }
                _ => "",
            };
            note = Some(format!(
                "RST to an ACK that acknowledges nothing it sent; the client stays in SYN_SENT \
                 and sends the SYN again (RFC 9293 3.10.7.3){what}"
            ));
        } else if r.sender == Side::Client
            && r.flags.syn()
            && alive
            && last_ack.is_some_and(|a| r.ts.secs_since(a) < INVALID_RATELIMIT_S)
            && rows.get(i + 1).is_none_or(|n| n.sender == Side::Client)
        {
            note = Some(
                "SYN retransmitted; no answer: the TIME_WAIT socket's ACKs are rate-limited to one \
                 per 500 ms"
                    .to_string(),
            );
        }
        if r.sender == Side::Server && r.notes.challenge_ack {
            client_waits = true;
        }
        if r.sender == Side::Client && r.flags.syn() {
            client_waits = false;
        }
        if r.sender == Side::Client && r.flags.rst() && states[0] == TcpState::Closed {
            states[0] = TcpState::SynSent;
            client_waits = true;
        } else if client_waits && states[0] == TcpState::Closed {
            states[0] = TcpState::SynSent;
        }
        states[1] = if alive {
            TcpState::TimeWait
        } else {
            TcpState::Listen
        };
        out[i] = (states, note);
    }
    out
}

/// Colours of the ladder, in the SGR codes of `analyze`'s report: each
/// side's column and arrows in its own colour, and what opens (SYN),
/// closes (FIN) or aborts (RST) a connection standing out in the arrow.
const CLIENT_CODE: &str = "36";
const SERVER_CODE: &str = "35";

fn side_code(side: Side) -> &'static str {
    match side {
        Side::Client => CLIENT_CODE,
        Side::Server => SERVER_CODE,
    }
}

fn flags_code(f: TcpFlags) -> Option<&'static str> {
    if f.rst() {
        Some("31;1")
    } else if f.fin() {
        Some("33;1")
    } else if f.syn() {
        Some("32;1")
    } else {
        None
    }
}

/// A side's state: TIME_WAIT, the state this tool is about, in bold.
fn state_code(side: Side, state: TcpState) -> &'static str {
    match (side, state) {
        (Side::Client, TcpState::TimeWait) => "36;1",
        (Side::Server, TcpState::TimeWait) => "35;1",
        (side, _) => side_code(side),
    }
}

/// A note in yellow, or red when it explains a reset.
fn note_code(r: &LadderRow) -> &'static str {
    if r.flags.rst() { "31" } else { "33" }
}

/// `text` painted, then padded to `w` columns outside the colour codes.
fn padded(style: &TextStyle, code: &str, text: &str, w: usize) -> String {
    format!(
        "{}{}",
        paint(style, code, text),
        " ".repeat(w.saturating_sub(text.chars().count()))
    )
}

/// `-S seq=0 …--->` or `<----S. seq=0 …-`, `arrow_w` columns (more when
/// the label is longer), the flags in their colour.
fn arrow(style: &TextStyle, r: &LadderRow, label: &str, arrow_w: usize) -> String {
    let side = side_code(r.sender);
    let fill = "-".repeat((arrow_w - 3).saturating_sub(label.len()));
    let flags_len = label.find(' ').unwrap_or(label.len());
    let (flags, rest) = label.split_at(flags_len);
    let label = format!(
        "{}{}",
        paint(style, flags_code(r.flags).unwrap_or(side), flags),
        paint(style, side, rest)
    );
    match r.sender {
        Side::Client => format!(
            "{}{label}{}",
            paint(style, side, "-"),
            paint(style, side, &format!("{fill}->"))
        ),
        Side::Server => format!(
            "{}{label}{}",
            paint(style, side, &format!("<-{fill}")),
            paint(style, side, "-")
        ),
    }
}

/// `text` on lines of its own, `indent` columns in (under the client's
/// column), wrapped within `width` but at least [`NOTE_MIN`] wide.
fn below(
    out: &mut dyn Write,
    style: &TextStyle,
    text: &str,
    code: &str,
    indent: usize,
    width: usize,
) -> io::Result<()> {
    for l in textwrap::wrap(text, width.max(indent + NOTE_MIN).saturating_sub(indent)) {
        writeln!(out, "{}{}", " ".repeat(indent), paint(style, code, &l))?;
    }
    Ok(())
}

/// The columns a state takes.
const STATE_W: usize = 11;

/// Fewest columns left for the notes beside a one-line row before the
/// ladder switches to its compact layout.
const NOTE_MIN: usize = 20;

/// How the rows of the ladder are laid out.
#[derive(Clone, Copy)]
enum Layout {
    /// One line per segment, the label inside an arrow `arrow` wide.
    Line { arrow: usize, notes: Notes },
    /// Too narrow for that: a short arrow between the states, the label
    /// and the note on lines of their own under it, within `width`.
    Compact { width: usize },
}

/// Where a one-line row's note goes.
#[derive(Clone, Copy)]
enum Notes {
    /// Beside the server's state: wrapped within this many columns when
    /// a width is set, else as long as it is.
    Beside(Option<usize>),
    /// Too little room beside it: on lines of its own under the row,
    /// under the client's column, within this width.
    Below(usize),
}

/// The columns of the compact layout's state line: prefix (frame and
/// time), two spaces, client state, ` ---> `, server state.
pub const COMPACT_COLUMNS: usize = 16 + 2 + STATE_W + 6 + STATE_W;

pub fn render_ladder(
    a: &Analysis,
    c: &ConnectionRecord,
    rows: &[LadderRow],
    omitted: u64,
    format: &LadderFormat,
    out: &mut dyn Write,
) -> io::Result<()> {
    let markdown = matches!(format, LadderFormat::Markdown { .. });
    let style = match format {
        LadderFormat::Text(s) => *s,
        LadderFormat::Markdown { .. } => TextStyle::default(),
    };
    // `--width`, or the terminal's; none when piped (natural width, as
    // the tables of `analyze`).
    let width = style
        .width
        .map(usize::from)
        .or_else(|| style.tty.then(|| term_width(&style)));
    let prose = |out: &mut dyn Write, text: &str, code: Option<&str>| -> io::Result<()> {
        let lines = match width {
            Some(w) => textwrap::wrap(text, w),
            None => vec![text.into()],
        };
        for l in lines {
            match code {
                Some(code) => writeln!(out, "{}", paint(&style, code, &l))?,
                None => writeln!(out, "{l}")?,
            }
        }
        Ok(())
    };
    if markdown {
        writeln!(out, "```text")?;
    }
    prose(
        out,
        &format!(
            "connection {}: client {} -> server {}{}",
            c.id,
            c.client,
            c.server,
            if c.role_inferred {
                " (roles inferred from ports)"
            } else {
                ""
            }
        ),
        Some("1"),
    )?;
    prose(
        out,
        &format!(
            "close: {}, closed first by {}, TIME_WAIT held by {}",
            c.close.kind.as_str(),
            c.close.active_closer.as_str(),
            c.time_wait.holder.as_str()
        ),
        None,
    )?;
    let several = a.captures.len() > 1;
    if several {
        // Wireshark numbers frames per file: name the file of each.
        let files: Vec<String> = a
            .captures
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{i} = {}", c.path))
            .collect();
        prose(
            out,
            &format!("frames are file:frame; files {}", files.join(", ")),
            None,
        )?;
    }
    let story = time_wait_story(rows);
    if let Some(u) = rows.first().and_then(|r| r.reuse)
        && story.first().is_some_and(|s| s.0[1] == TcpState::TimeWait)
    {
        prose(
            out,
            &format!(
                "the server holds this 4-tuple in TIME_WAIT since +{} s (connection {}'s close){}",
                u.time_wait_from.map_or("-".to_string(), |t| relative(a, t)),
                u.previous,
                u.time_wait_until
                    .map_or(String::new(), |t| format!(", until +{} s", relative(a, t)))
            ),
            None,
        )?;
    }
    writeln!(out)?;
    let base = bases(rows);
    let labels: Vec<String> = rows.iter().map(|r| label(r, &base)).collect();
    let longest = labels.iter().map(|l| l.len()).max();
    let full_arrow = longest.map_or(ARROW, |l| l + 4).max(ARROW);
    let prefixes: Vec<String> = rows
        .iter()
        .map(|r| format!("{:>6} {:>9}", r.frame.label(several), relative(a, r.ts)))
        .collect();
    let mut prev = [TcpState::Closed, TcpState::Closed];
    let mut notes = Vec::with_capacity(rows.len());
    let mut states = Vec::with_capacity(rows.len());
    for (r, (s, story_note)) in rows.iter().zip(story) {
        notes.push(story_note.unwrap_or_else(|| note(r, prev[r.sender.index()])));
        states.push(s);
        prev = s;
    }
    let prefix_w = prefixes
        .iter()
        .map(|p| p.chars().count())
        .max()
        .unwrap_or(16)
        .max(16);
    let layout = match width {
        None => Layout::Line {
            arrow: full_arrow,
            notes: Notes::Beside(None),
        },
        Some(w) => {
            // frame and time, two spaces, client, space, arrow, space, server
            let fixed = prefix_w + 2 + STATE_W + 1 + 1 + STATE_W;
            let min_arrow = longest.map_or(0, |l| l + 4);
            // Beside: room for the notes, or for the heading's ` note`.
            let beside = if notes.iter().any(|n| !n.is_empty()) {
                1 + NOTE_MIN
            } else {
                " note".len()
            };
            let arrow_beside = full_arrow.min(w.saturating_sub(fixed + beside));
            let arrow_below = full_arrow.min(w.saturating_sub(fixed));
            if arrow_beside >= min_arrow {
                Layout::Line {
                    arrow: arrow_beside,
                    notes: Notes::Beside(Some(w.saturating_sub(fixed + arrow_beside + 1))),
                }
            } else if arrow_below >= min_arrow {
                Layout::Line {
                    arrow: arrow_below,
                    notes: Notes::Below(w),
                }
            } else {
                Layout::Compact { width: w }
            }
        }
    };
    let head = format!("{:>6} {:>9}  ", "frame", "time (s)");
    match layout {
        Layout::Line {
            arrow: arrow_w,
            notes: Notes::Beside(_),
        } => writeln!(
            out,
            "{head}{} {} {} note",
            padded(&style, CLIENT_CODE, "client", STATE_W),
            " ".repeat(arrow_w),
            padded(&style, SERVER_CODE, "server", STATE_W),
        )?,
        Layout::Line {
            arrow: arrow_w,
            notes: Notes::Below(_),
        } => writeln!(
            out,
            "{head}{} {} {}",
            padded(&style, CLIENT_CODE, "client", STATE_W),
            " ".repeat(arrow_w),
            paint(&style, SERVER_CODE, "server"),
        )?,
        Layout::Compact { .. } => writeln!(
            out,
            "{head}{}      {}",
            padded(&style, CLIENT_CODE, "client", STATE_W),
            paint(&style, SERVER_CODE, "server"),
        )?,
    }
    for (i, r) in rows.iter().enumerate() {
        let [client, server] = states[i];
        let mut line = format!(
            "{}  {} ",
            prefixes[i],
            padded(
                &style,
                state_code(Side::Client, client),
                &client.to_string(),
                STATE_W
            )
        );
        let server_text = server.to_string();
        let server_code = state_code(Side::Server, server);
        let note = &notes[i];
        match layout {
            Layout::Line {
                arrow: arrow_w,
                notes: placed,
            } => {
                line.push_str(&arrow(&style, r, &labels[i], arrow_w));
                line.push(' ');
                if note.is_empty() {
                    line.push_str(&paint(&style, server_code, &server_text));
                    writeln!(out, "{line}")?;
                    continue;
                }
                let note_w = match placed {
                    Notes::Beside(w) => w,
                    Notes::Below(width) => {
                        line.push_str(&paint(&style, server_code, &server_text));
                        writeln!(out, "{line}")?;
                        below(out, &style, note, note_code(r), prefix_w + 2, width)?;
                        continue;
                    }
                };
                line.push_str(&padded(&style, server_code, &server_text, STATE_W));
                line.push(' ');
                let note_col = prefix_w + 2 + STATE_W + 1 + arrow_w + 1 + STATE_W + 1;
                let wrapped = match note_w {
                    Some(nw) => textwrap::wrap(note, nw),
                    None => vec![note.as_str().into()],
                };
                for (j, l) in wrapped.iter().enumerate() {
                    if j == 0 {
                        writeln!(out, "{line}{}", paint(&style, note_code(r), l))?;
                    } else {
                        writeln!(
                            out,
                            "{}{}",
                            " ".repeat(note_col),
                            paint(&style, note_code(r), l)
                        )?;
                    }
                }
            }
            Layout::Compact { width } => {
                let side = side_code(r.sender);
                let short = match r.sender {
                    Side::Client => "--->",
                    Side::Server => "<---",
                };
                line.push_str(&paint(&style, side, short));
                line.push(' ');
                line.push_str(&paint(&style, server_code, &server_text));
                writeln!(out, "{line}")?;
                // Under the client's column, at least NOTE_MIN wide.
                let indent = " ".repeat(prefix_w + 2);
                let opts = textwrap::Options::new(width.max(prefix_w + 2 + NOTE_MIN))
                    .initial_indent(&indent)
                    .subsequent_indent(&indent);
                let label = &labels[i];
                let flags_len = label.find(' ').unwrap_or(label.len());
                for (j, l) in textwrap::wrap(label, &opts).iter().enumerate() {
                    let text = &l[indent.len()..];
                    if j == 0 && text.len() >= flags_len {
                        let (flags, rest) = text.split_at(flags_len);
                        writeln!(
                            out,
                            "{indent}{}{}",
                            paint(&style, flags_code(r.flags).unwrap_or(side), flags),
                            paint(&style, side, rest)
                        )?;
                    } else {
                        writeln!(out, "{indent}{}", paint(&style, side, text))?;
                    }
                }
                if !note.is_empty() {
                    below(out, &style, note, note_code(r), prefix_w + 2, width)?;
                }
            }
        }
    }
    if omitted > 0 {
        prose(out, &format!("... {omitted} more segments not shown"), None)?;
    }
    if let (Some(from), Some(until)) = (c.time_wait.from, c.time_wait.until) {
        writeln!(out)?;
        prose(
            out,
            &format!(
                "TIME_WAIT ({}) from +{} s until +{} s{}",
                c.time_wait.holder.as_str(),
                relative(a, from),
                relative(a, until),
                c.time_wait
                    .reused_by
                    .map_or(String::new(), |n| format!(", taken over by connection {n}"))
            ),
            Some("1"),
        )?;
    }
    if markdown {
        writeln!(out, "```")?;
    }
    Ok(())
}
