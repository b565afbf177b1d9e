//! `show --conn N`: one connection as a ladder (sequence) diagram, client
//! on the left, server on the right, one line per segment with the TCP
//! state each side is in after it.

use super::relative;
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
    pub frame: u64,
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
            reuse: obs.reuse,
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

/// [`render_ladder`] within `max_chars` characters (Markdown for a ticket
/// field, see `markdown.rs`): the first segments are kept, the handshake
/// and what follows it, and the rest counted in the "more segments" line.
pub fn render_ladder_limited(
    a: &Analysis,
    c: &ConnectionRecord,
    rows: &[LadderRow],
    omitted: u64,
    markdown: bool,
    max_chars: Option<usize>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let render = |n: usize| -> io::Result<String> {
        let mut buf = Vec::new();
        let dropped = (rows.len() - n) as u64;
        render_ladder(a, c, &rows[..n], omitted + dropped, markdown, &mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    let whole = render(rows.len())?;
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

pub fn render_ladder(
    a: &Analysis,
    c: &ConnectionRecord,
    rows: &[LadderRow],
    omitted: u64,
    markdown: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    if markdown {
        writeln!(out, "```text")?;
    }
    writeln!(
        out,
        "connection {}: client {} -> server {}{}",
        c.id,
        c.client,
        c.server,
        if c.role_inferred {
            " (roles inferred from ports)"
        } else {
            ""
        }
    )?;
    writeln!(
        out,
        "close: {}, closed first by {}, TIME_WAIT held by {}",
        c.close.kind.as_str(),
        c.close.active_closer.as_str(),
        c.time_wait.holder.as_str()
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
        writeln!(out, "frames are file:frame; files {}", files.join(", "))?;
    }
    let story = time_wait_story(rows);
    if let Some(u) = rows.first().and_then(|r| r.reuse)
        && story.first().is_some_and(|s| s.0[1] == TcpState::TimeWait)
    {
        writeln!(
            out,
            "the server holds this 4-tuple in TIME_WAIT since +{} s (connection {}'s close){}",
            u.time_wait_from.map_or("-".to_string(), |t| relative(a, t)),
            u.previous,
            u.time_wait_until
                .map_or(String::new(), |t| format!(", until +{} s", relative(a, t)))
        )?;
    }
    writeln!(out)?;
    let base = bases(rows);
    let labels: Vec<String> = rows.iter().map(|r| label(r, &base)).collect();
    let arrow_w = labels
        .iter()
        .map(|l| l.len() + 4)
        .max()
        .unwrap_or(ARROW)
        .max(ARROW);
    writeln!(
        out,
        "{:>6} {:>9}  {:<11} {:^w$} {:<11} note",
        "frame",
        "time (s)",
        "client",
        "",
        "server",
        w = arrow_w
    )?;
    let mut prev = [TcpState::Closed, TcpState::Closed];
    for ((r, label), (states, story_note)) in rows.iter().zip(labels).zip(story) {
        let body = arrow_w - 3;
        let arrow = match r.sender {
            Side::Client => format!("-{label:-<body$}->"),
            Side::Server => format!("<-{label:->body$}-"),
        };
        let line = format!(
            "{:>6} {:>9}  {:<11} {arrow} {:<11} {}",
            crate::frame::label(r.frame, several),
            relative(a, r.ts),
            states[0].to_string(),
            states[1].to_string(),
            story_note.unwrap_or_else(|| note(r, prev[r.sender.index()]))
        );
        writeln!(out, "{}", line.trim_end())?;
        prev = states;
    }
    if omitted > 0 {
        writeln!(out, "... {omitted} more segments not shown")?;
    }
    if let (Some(from), Some(until)) = (c.time_wait.from, c.time_wait.until) {
        writeln!(out)?;
        writeln!(
            out,
            "TIME_WAIT ({}) from +{} s until +{} s{}",
            c.time_wait.holder.as_str(),
            relative(a, from),
            relative(a, until),
            c.time_wait
                .reused_by
                .map_or(String::new(), |n| format!(", taken over by connection {n}"))
        )?;
    }
    if markdown {
        writeln!(out, "```")?;
    }
    Ok(())
}
