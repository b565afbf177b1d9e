//! GitHub-flavoured Markdown for an incident ticket: the verdict first,
//! findings by severity with their evidence, then the per-host TIME_WAIT
//! table and what was read. Long evidence goes into `<details>`.
//!
//! A ticket field has a size limit (Jira: 32,767 characters, a GitHub
//! issue or comment: 65,536), so the report is fitted into a budget of
//! characters ([`DEFAULT_MAX_CHARS`] unless asked otherwise): the verdict,
//! errors and warnings are kept longest; info findings lose evidence rows
//! first, then their text; the last line says what was left out and how
//! to get it. The report is rendered again for each step of the plan
//! rather than estimated, so the limit holds exactly.

use super::{relative, verdict};
use crate::analysis::Analysis;
use crate::detect::{Finding, Severity};
use crate::report::facts_line;
use std::io::{self, Write};

/// Evidence tables longer than this fold into `<details>`.
const INLINE_ROWS: usize = 3;

/// The default budget: below Jira's 32,767-character text fields with room
/// for a sentence of one's own around the paste.
pub const DEFAULT_MAX_CHARS: usize = 30_000;

/// Budgets below this cannot hold a verdict and the line that says what
/// was left out; the command line refuses them.
pub const MIN_MAX_CHARS: usize = 1_000;

/// Evidence rows per finding, tried in turn as the budget gets tight.
const ROW_STEPS: [usize; 6] = [20, 10, 5, 3, 1, 0];

/// How much of a finding is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// The heading, explanation, advice, filter and this many evidence rows.
    Full(usize),
    /// One bullet line: severity, kind, summary.
    Brief,
    /// Only counted in the last line.
    Gone,
}

/// What one rendering includes.
#[derive(Debug, Clone)]
struct Plan {
    /// Per finding shown (in `shown_findings` order).
    findings: Vec<Shown>,
    /// The "… and N more" lines.
    more_lines: bool,
    hosts: usize,
    captures: usize,
    /// The facts line clipped to this many characters (tiny budgets only).
    facts: Option<usize>,
}

/// Escapes a table cell: `|` ends a cell (Wireshark filters contain `||`),
/// and a newline ends the row.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The report within [`DEFAULT_MAX_CHARS`] characters.
pub fn render_markdown(a: &Analysis, out: &mut dyn Write) -> io::Result<()> {
    render_markdown_limited(a, Some(DEFAULT_MAX_CHARS), out)
}

/// The report within `max_chars` characters (Unicode scalar values, what
/// Jira and GitHub count), or all of it with `None`.
pub fn render_markdown_limited(
    a: &Analysis,
    max_chars: Option<usize>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let (shown, more) = super::shown_findings(a);
    let full = Plan {
        findings: shown
            .iter()
            .map(|f| Shown::Full(f.evidence.len()))
            .collect(),
        more_lines: true,
        hosts: a.hosts.len().min(super::HOSTS_SHOWN),
        captures: a.captures.len(),
        facts: None,
    };
    let Some(budget) = max_chars else {
        return out.write_all(render(a, &shown, &more, &full, None).as_bytes());
    };
    for plan in tighter_plans(&shown, full) {
        let text = render(a, &shown, &more, &plan, Some(budget));
        if text.chars().count() <= budget {
            return out.write_all(text.as_bytes());
        }
    }
    // Not even the verdict and the last line fit: the verdict, clipped.
    let text = render(a, &shown, &more, &smallest(&shown), Some(budget));
    let clipped: String = text.chars().take(budget).collect();
    out.write_all(clipped.as_bytes())
}

fn smallest(shown: &[&Finding]) -> Plan {
    Plan {
        findings: vec![Shown::Gone; shown.len()],
        more_lines: false,
        hosts: 0,
        captures: 0,
        facts: Some(200),
    }
}

/// The plans to try, from all of it to the least: each step takes away the
/// least important part that is left.
fn tighter_plans(shown: &[&Finding], full: Plan) -> Vec<Plan> {
    let mut plans = vec![full.clone()];
    let mut p = full;
    let is_info = |i: usize| shown[i].severity == Severity::Info;
    let push = |p: &Plan, plans: &mut Vec<Plan>| {
        if plans.last().is_none_or(|l| {
            l.findings != p.findings
                || l.hosts != p.hosts
                || l.captures != p.captures
                || l.more_lines != p.more_lines
                || l.facts != p.facts
        }) {
            plans.push(p.clone());
        }
    };
    let cap_rows = |p: &mut Plan, info: bool, cap: usize| {
        for (i, s) in p.findings.iter_mut().enumerate() {
            if is_info(i) == info
                && let Shown::Full(n) = s
            {
                *n = (*n).min(cap);
            }
        }
    };
    // Info: fewer evidence rows, then one line each (the smallest first),
    // then gone.
    for cap in ROW_STEPS {
        cap_rows(&mut p, true, cap);
        push(&p, &mut plans);
    }
    for i in (0..shown.len()).rev().filter(|&i| is_info(i)) {
        p.findings[i] = Shown::Brief;
        push(&p, &mut plans);
    }
    // Warnings and errors: fewer evidence rows.
    for cap in ROW_STEPS {
        cap_rows(&mut p, false, cap);
        push(&p, &mut plans);
    }
    for hosts in [10, 5, 0] {
        p.hosts = p.hosts.min(hosts);
        push(&p, &mut plans);
    }
    for captures in [20, 5, 1] {
        p.captures = p.captures.min(captures);
        push(&p, &mut plans);
    }
    p.more_lines = false;
    push(&p, &mut plans);
    for i in (0..shown.len()).rev().filter(|&i| is_info(i)) {
        p.findings[i] = Shown::Gone;
        push(&p, &mut plans);
    }
    // Warnings, then errors, to one line each, the last first.
    for sev in [Severity::Warning, Severity::Error] {
        for i in (0..shown.len()).rev().filter(|&i| shown[i].severity == sev) {
            p.findings[i] = Shown::Brief;
            push(&p, &mut plans);
        }
    }
    for sev in [Severity::Warning, Severity::Error] {
        for i in (0..shown.len()).rev().filter(|&i| shown[i].severity == sev) {
            p.findings[i] = Shown::Gone;
            push(&p, &mut plans);
        }
    }
    p.captures = 0;
    push(&p, &mut plans);
    p.facts = Some(200);
    push(&p, &mut plans);
    plans
}

/// Renders `plan`; with a budget, the last line says what the plan left out.
fn render(
    a: &Analysis,
    shown: &[&Finding],
    more: &[super::MoreFindings],
    plan: &Plan,
    budget: Option<usize>,
) -> String {
    let mut out = Vec::new();
    render_plan(a, shown, more, plan, &mut out).expect("writing to memory");
    let mut text = String::from_utf8(out).expect("UTF-8");
    if let Some(budget) = budget
        && let Some(line) = left_out(a, shown, more, plan, budget)
    {
        text.push('\n');
        text.push_str(&line);
        text.push('\n');
    }
    text
}

/// "Left out to stay within 30,000 characters: …", or nothing when the
/// plan is the whole report.
fn left_out(
    a: &Analysis,
    shown: &[&Finding],
    more: &[super::MoreFindings],
    plan: &Plan,
    budget: usize,
) -> Option<String> {
    let mut parts = Vec::new();
    let mut fewer_rows = 0;
    let mut rows = 0;
    let mut brief = Vec::new();
    let mut gone = Vec::new();
    for (f, s) in shown.iter().zip(&plan.findings) {
        match s {
            Shown::Full(n) if *n < f.evidence.len() => {
                fewer_rows += 1;
                rows += f.evidence.len() - n;
            }
            Shown::Full(_) => {}
            Shown::Brief => brief.push(f),
            Shown::Gone => gone.push(f),
        }
    }
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    if fewer_rows > 0 {
        parts.push(format!(
            "{} of {}",
            plural(rows, "evidence row"),
            plural(fewer_rows, "finding")
        ));
    }
    if !brief.is_empty() {
        parts.push(format!(
            "the explanation and evidence of {}",
            plural(brief.len(), "finding")
        ));
    }
    if !gone.is_empty() {
        let mut kinds: Vec<&str> = gone.iter().map(|f| f.kind.as_str()).collect();
        kinds.dedup();
        parts.push(format!(
            "{} ({})",
            plural(gone.len(), "finding"),
            kinds.join(", ")
        ));
    }
    if !plan.more_lines && !more.is_empty() {
        let n: usize = more.iter().map(|m| m.findings).sum();
        parts.push(format!("the count of {} more", plural(n, "finding")));
    }
    let hosts = a.hosts.len().min(super::HOSTS_SHOWN);
    if plan.hosts < hosts {
        parts.push(plural(hosts - plan.hosts, "host row"));
    }
    if plan.captures < a.captures.len() {
        parts.push(plural(a.captures.len() - plan.captures, "capture row"));
    }
    if plan.facts.is_some() {
        parts.push("part of the summary line".to_string());
    }
    if parts.is_empty() {
        return None;
    }
    let kind_hint = shown
        .iter()
        .zip(&plan.findings)
        .find(|(_, s)| !matches!(s, Shown::Full(n) if *n >= 1))
        .map_or("KIND".to_string(), |(f, _)| f.kind.to_string());
    Some(format!(
        "**Left out to stay within {} characters:** {}. `--format json` has all of it; `--only {kind_hint}` shows one kind; `--max-chars 0` lifts the limit.",
        group_thousands(budget),
        parts.join("; ")
    ))
}

/// 30000 → "30,000".
pub fn group_thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn render_plan(
    a: &Analysis,
    shown: &[&Finding],
    more: &[super::MoreFindings],
    plan: &Plan,
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(out, "### timewait: {}", cell(&verdict(a)))?;
    writeln!(out)?;
    let facts = facts_line(a);
    match plan.facts {
        Some(n) if facts.chars().count() > n => {
            let clipped: String = facts.chars().take(n).collect();
            writeln!(out, "{clipped}…")?;
        }
        _ => writeln!(out, "{facts}")?,
    }
    if !a.findings.is_empty() {
        writeln!(out)?;
        writeln!(out, "#### Findings")?;
        for (f, how) in shown.iter().zip(&plan.findings) {
            let rows = match how {
                Shown::Full(rows) => *rows,
                Shown::Brief | Shown::Gone => continue,
            };
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
            if let Some(line) = super::host::finding_line(f) {
                writeln!(out, "**Host:** {}", cell(&line))?;
                writeln!(out)?;
            }
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
            if rows > 0 {
                let fold = rows > INLINE_ROWS;
                if fold {
                    writeln!(
                        out,
                        "<details><summary>Evidence: {} (showing {})</summary>",
                        f.count, rows
                    )?;
                    writeln!(out)?;
                }
                writeln!(
                    out,
                    "| connection | frames | time (s) | what the frames show |"
                )?;
                writeln!(out, "|---:|---|---:|---|")?;
                for e in f.evidence.iter().take(rows) {
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
            }
            writeln!(out, "More: `timewait explain {}`", f.kind)?;
        }
        let brief: Vec<&&Finding> = shown
            .iter()
            .zip(&plan.findings)
            .filter(|(_, s)| **s == Shown::Brief)
            .map(|(f, _)| f)
            .collect();
        if !brief.is_empty() || (plan.more_lines && !more.is_empty()) {
            writeln!(out)?;
            for f in brief {
                writeln!(
                    out,
                    "- **{}** `{}`: {}",
                    f.severity.to_string().to_uppercase(),
                    f.kind,
                    cell(&f.summary)
                )?;
            }
            if plan.more_lines {
                for m in more {
                    writeln!(out, "- {}", cell(&m.line()))?;
                }
            }
        }
    }
    if !a.hosts.is_empty() && plan.hosts > 0 {
        writeln!(out)?;
        writeln!(out, "#### {}", super::hosts_heading(a))?;
        writeln!(out)?;
        writeln!(out, "| {} |", super::HOST_COLUMNS.join(" | "))?;
        writeln!(out, "|---|---:|---:|---:|---:|---:|")?;
        for h in a.hosts.iter().take(plan.hosts) {
            writeln!(out, "| {} |", super::host_cells(a, h).join(" | "))?;
        }
        if a.hosts.len() > plan.hosts {
            writeln!(out)?;
            writeln!(
                out,
                "… and {} more hosts (`--format json` lists them all).",
                a.hosts.len() - plan.hosts
            )?;
        }
    }
    let host = super::host::section(a);
    if !host.is_empty() {
        writeln!(out)?;
        writeln!(out, "#### Host")?;
        writeln!(out)?;
        for line in host {
            match line.strip_prefix("  ") {
                Some(detail) => writeln!(out, "  - {}", cell(detail))?,
                None => writeln!(out, "- {}", cell(&line))?,
            }
        }
    }
    if plan.captures > 0 {
        writeln!(out)?;
        writeln!(out, "#### Capture")?;
        writeln!(out)?;
        writeln!(
            out,
            "| file | format | link types | packets | TCP | skipped |"
        )?;
        writeln!(out, "|---|---|---|---:|---:|---|")?;
        for c in a.captures.iter().take(plan.captures) {
            let cells: Vec<String> = super::capture_cells(c).iter().map(|x| cell(x)).collect();
            writeln!(out, "| {} |", cells.join(" | "))?;
        }
        for c in a.captures.iter().take(plan.captures) {
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
