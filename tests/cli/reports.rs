//! What people and CI read: Markdown for tickets, the ladder diagram, the
//! timeline picture, explanations, exit codes, and the JSON contract.

use crate::support::*;
use timewait::analysis::{Options, analyze};
use timewait::report;

fn markdown_of(path: &std::path::Path) -> String {
    let a = analyze(
        "capture.pcap",
        std::fs::File::open(path).unwrap(),
        &Options::default(),
    )
    .unwrap();
    let mut out = Vec::new();
    report::render_markdown(&a, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// Cells of a Markdown table row: split on `|` not escaped as `\|`.
fn cells(row: &str) -> usize {
    let mut n = 0;
    let mut prev = ' ';
    for c in row.chars() {
        if c == '|' && prev != '\\' {
            n += 1;
        }
        prev = c;
    }
    n
}

#[test]
fn markdown_of_every_fixture_is_well_formed_gfm() {
    for (stem, path) in fixtures_with_truth() {
        let md = markdown_of(&path);
        assert!(md.starts_with("### timewait: "), "{stem}");
        assert!(md.contains("\n#### Capture\n"), "{stem}");
        assert_eq!(
            md.matches("```").count() % 2,
            0,
            "{stem}: unbalanced fences"
        );
        assert_eq!(
            md.matches("<details>").count(),
            md.matches("</details>").count(),
            "{stem}: unbalanced details"
        );
        // Every table row has as many cells as its header; the separator
        // line follows the header.
        let lines: Vec<&str> = md.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            if lines[i].starts_with('|') {
                let width = cells(lines[i]);
                assert!(
                    lines[i + 1].starts_with("|--") || lines[i + 1].starts_with("|---"),
                    "{stem}: {}",
                    lines[i]
                );
                let mut j = i + 1;
                while j < lines.len() && lines[j].starts_with('|') {
                    assert_eq!(cells(lines[j]), width, "{stem}: {}", lines[j]);
                    j += 1;
                }
                i = j;
            } else {
                i += 1;
            }
        }
        // Filters sit in code blocks, never in table cells.
        for l in lines.iter().filter(|l| l.starts_with('|')) {
            assert!(!l.contains("frame.number in"), "{stem}: {l}");
        }
    }
}

#[test]
fn markdown_ticket_example_in_docs_is_current() {
    let md = markdown_of(&fixture("finrst-tw-gone.pcap"));
    let kept = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/example-ticket.md"),
    )
    .expect("docs/example-ticket.md");
    assert_eq!(
        kept, md,
        "regenerate: timewait analyze fixtures/finrst-tw-gone.pcap --format markdown"
    );
    assert!(md.contains("##### WARNING `fin-retransmit-rst`"));
}

#[test]
fn ladder_of_a_fin_retransmit_rst_connection_marks_last_ack_retransmission_and_rst() {
    let o = timewait(&[
        "show",
        fixture("finrst-tw-gone.pcap").to_str().unwrap(),
        "--conn",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    let line = |frame: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(frame))
            .unwrap_or_else(|| panic!("frame {frame} in\n{text}"))
            .to_string()
    };
    // Frame 9: the server's FIN puts it in LAST_ACK, the client in TIME_WAIT.
    assert!(
        line("9").contains("TIME_WAIT") && line("9").contains("LAST_ACK"),
        "{}",
        line("9")
    );
    assert!(
        line("9").contains("<-") && line("9").contains("F."),
        "{}",
        line("9")
    );
    // Frame 10: the same FIN again.
    assert!(line("10").contains("FIN retransmitted") && line("10").contains("LAST_ACK"));
    // Frame 11: the client's RST where a TIME_WAIT socket should have ACKed.
    assert!(
        line("11").contains("-R ") && line("11").contains("TIME_WAIT socket was gone"),
        "{}",
        line("11")
    );
    let md = timewait(&[
        "show",
        fixture("finrst-tw-gone.pcap").to_str().unwrap(),
        "--conn",
        "0",
        "--format",
        "markdown",
    ]);
    let md = stdout(&md);
    assert!(md.starts_with("```text\n") && md.trim_end().ends_with("```"));
    let missing = timewait(&[
        "show",
        fixture("finrst-tw-gone.pcap").to_str().unwrap(),
        "--conn",
        "99",
    ]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("no connection 99"));
}

#[test]
fn timeline_svg_shows_the_peak_at_the_right_time() {
    let dir = std::env::temp_dir().join(format!("timewait-svg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg_path = dir.join("tw.svg");
    let path = fixture("phenomena-keepalive-idle.pcap");
    let o = timewait(&[
        "timeline",
        path.to_str().unwrap(),
        "--svg",
        svg_path.to_str().unwrap(),
        "--width",
        "80",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let a = analyze_file(&path);
    let host = &a.hosts[0];
    let at = host.peak_at.unwrap().secs_since(a.origin().unwrap());
    let label = format!("peak {} at +{at:.3} s", host.time_wait_peak);
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.contains(&label), "{label} not in the SVG");
    // It parses as SVG, with one step path per host.
    let mut paths = 0;
    for event in svg::read(&svg).expect("well-formed SVG") {
        if let svg::parser::Event::Tag("path", _, _) = event {
            paths += 1;
        }
    }
    assert_eq!(
        paths,
        a.hosts.iter().filter(|h| h.time_wait_peak > 0).count()
    );
    let text = stdout(&o);
    assert!(
        text.contains(&format!(
            "{}: peak of {} TIME_WAIT sockets at +{at:.3} s",
            host.ip, host.time_wait_peak
        )),
        "{text}"
    );
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
}

#[test]
fn fail_on_sets_the_exit_code_by_severity() {
    let f = fixture("finrst-tw-gone.pcap");
    let f = f.to_str().unwrap();
    assert_eq!(timewait(&["analyze", f]).status.code(), Some(0));
    assert_eq!(
        timewait(&["analyze", f, "--fail-on", "warning"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        timewait(&["analyze", f, "--fail-on", "error"])
            .status
            .code(),
        Some(0)
    );
    let ports = fixture("ports-exhausted.pcap");
    let o = timewait(&[
        "analyze",
        ports.to_str().unwrap(),
        "--port-range",
        "40000-40007",
        "--fail-on",
        "error",
    ]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn baseline_passes_on_an_unchanged_capture_and_fails_on_a_new_finding() {
    let dir = std::env::temp_dir().join(format!("timewait-baseline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let finrst = fixture("finrst-tw-gone.pcap");
    let clean = fixture("client-close.pcap");
    let old = dir.join("old.json");
    let json = timewait(&["analyze", "--format", "json", finrst.to_str().unwrap()]);
    std::fs::write(&old, &json.stdout).unwrap();
    // Unchanged capture: nothing new, exit 0 even with --fail-on info.
    let same = timewait(&[
        "analyze",
        finrst.to_str().unwrap(),
        "--baseline",
        old.to_str().unwrap(),
        "--fail-on",
        "info",
    ]);
    assert_eq!(same.status.code(), Some(0), "{}", stderr(&same));
    assert!(stderr(&same).contains("baseline: 0 new, 0 gone"));
    // A clean baseline, then the capture with the problem: the finding is new.
    let clean_json = dir.join("clean.json");
    let json = timewait(&["analyze", "--format", "json", clean.to_str().unwrap()]);
    std::fs::write(&clean_json, &json.stdout).unwrap();
    let worse = timewait(&[
        "analyze",
        finrst.to_str().unwrap(),
        "--baseline",
        clean_json.to_str().unwrap(),
        "--fail-on",
        "warning",
    ]);
    assert_eq!(worse.status.code(), Some(1));
    assert!(
        stderr(&worse).contains(
            "new since baseline: warning fin-retransmit-rst 10.4.1.1 (connections 0 2 4)"
        ),
        "{}",
        stderr(&worse)
    );
    // And the other way round the findings went away: exit 0, listed as gone.
    let better = timewait(&[
        "analyze",
        clean.to_str().unwrap(),
        "--baseline",
        old.to_str().unwrap(),
        "--fail-on",
        "warning",
    ]);
    assert_eq!(better.status.code(), Some(0));
    assert!(stderr(&better).contains("gone since baseline: warning fin-retransmit-rst"));
    // A baseline that is not a report is a usage error.
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{}").unwrap();
    let o = timewait(&[
        "analyze",
        finrst.to_str().unwrap(),
        "--baseline",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn explain_prints_the_docs_text_and_every_finding_names_it() {
    let o = timewait(&["explain", "paws-syn-drop"]);
    assert_eq!(o.status.code(), Some(0));
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/findings/paws-syn-drop.md"),
    )
    .unwrap();
    assert_eq!(stdout(&o), doc);
    let list = stdout(&timewait(&["explain"]));
    assert_eq!(
        list.lines().count(),
        1 + timewait::detect::FindingKind::ALL.len()
    );
    let a = analyze_file(&fixture("finrst-tw-gone.pcap"));
    for f in &a.findings {
        assert_eq!(f.doc, format!("docs/findings/{}.md", f.kind));
        assert!(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(&f.doc)
                .exists()
        );
    }
}

#[test]
fn help_completions_and_man_page_come_from_the_definitions() {
    for cmd in ["analyze", "conns", "show", "timeline", "explain"] {
        let o = timewait(&[cmd, "--help"]);
        assert_eq!(o.status.code(), Some(0));
        assert!(stdout(&o).contains("Example"), "{cmd}");
    }
    let bash = stdout(&timewait(&["completions", "bash"]));
    assert!(bash.contains("_timewait()") && bash.contains("--fail-on"));
    let man = stdout(&timewait(&["man"]));
    assert!(
        man.contains(".TH timewait"),
        "{}",
        &man[..200.min(man.len())]
    );
    // One page: every command has its section with its own options, and
    // no reference to a timewait-COMMAND(1) page that nothing makes.
    assert!(!man.contains("timewait\\-analyze(1)"), "{man}");
    for (cmd, option) in [
        ("ANALYZE", "max\\-chars"),
        ("CONNS", "\\-\\-closer"),
        ("SHOW", "\\-\\-conn"),
        ("TIMELINE", "\\-\\-svg"),
        ("CHECK", "\\-\\-junit"),
        ("EXPLAIN", "KIND"),
    ] {
        let at = man
            .find(&format!(".SH \"TIMEWAIT {cmd}\""))
            .unwrap_or_else(|| panic!("no section for {cmd}"));
        let section = &man[at..];
        let end = section[4..].find(".SH ").map_or(section.len(), |e| e + 4);
        assert!(section[..end].contains(option), "{cmd}: {option}");
        assert!(section[..end].contains(".SS Options"), "{cmd}");
    }
}

#[test]
fn json_contract_snapshots() {
    for stem in ["client-close", "finrst-tw-gone", "nat-paws-rejected"] {
        let path = fixture(&format!("{stem}.pcap"));
        let a = analyze(
            &format!("fixtures/{stem}.pcap"),
            std::fs::File::open(path).unwrap(),
            &Options::default(),
        )
        .unwrap();
        let mut out = Vec::new();
        report::render_json(&a, &mut out).unwrap();
        let json = String::from_utf8(out).unwrap();
        insta::assert_snapshot!(format!("json_{stem}"), json);
    }
}

#[test]
fn nothing_is_wider_than_80_columns_when_asked() {
    for (stem, path) in fixtures_with_truth() {
        for cmd in ["analyze", "conns"] {
            let o = timewait(&[cmd, path.to_str().unwrap(), "--width", "80"]);
            for line in stdout(&o).lines() {
                assert!(line.chars().count() <= 80, "{stem} {cmd}: {line}");
            }
        }
    }
    // The answer columns survive the narrowing.
    let o = timewait(&[
        "conns",
        fixture("finrst-tw-gone.pcap").to_str().unwrap(),
        "--width",
        "80",
    ]);
    let head = stdout(&o).lines().nth(1).unwrap().to_string();
    for col in ["id", "client", "server", "closer", "TIME_WAIT"] {
        assert!(head.contains(col), "{head}");
    }
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let f = fixture("finrst-tw-gone.pcap");
    let plain = timewait(&["analyze", f.to_str().unwrap()]);
    assert!(!stdout(&plain).contains('\x1b'));
    let forced = timewait(&["analyze", f.to_str().unwrap(), "--color", "always"]);
    assert!(stdout(&forced).contains("\x1b[33;1m"));
}

#[test]
fn markdown_renders_as_gfm_tables_details_and_code() {
    // A real GitHub-flavoured Markdown renderer, not our own reading of it.
    let mut options = comrak::Options::default();
    options.extension.table = true;
    options.render.r#unsafe = true; // keep <details>
    for stem in [
        "finrst-tw-gone",
        "churn-redis",
        "nat-paws-fail",
        "truncated",
    ] {
        let path = fixtures_with_truth()
            .into_iter()
            .find(|(s, _)| s == stem)
            .unwrap()
            .1;
        let md = markdown_of(&path);
        let html = comrak::markdown_to_html(&md, &options);
        let tables_written = md
            .lines()
            .filter(|l| l.starts_with("|---") || l.starts_with("|--"))
            .count();
        assert_eq!(
            html.matches("<table>").count(),
            tables_written,
            "{stem}: every table renders as a table"
        );
        assert_eq!(
            html.matches("<details>").count(),
            md.matches("<details>").count(),
            "{stem}"
        );
        assert!(html.contains("<h3>timewait: "), "{stem}");
        // No table row leaked into a paragraph.
        assert!(!html.contains("<p>|"), "{stem}");
        let filters = md.matches("```\nframe.number in").count()
            + md.matches("```\ntcp.stream in").count()
            + md.matches("```\nip").count();
        assert_eq!(
            html.matches("<pre><code>").count(),
            filters,
            "{stem}: filters in code blocks"
        );
    }
}

/// An analysis as busy as a server's day: real findings of every severity
/// from the fixtures, each repeated for 40 hosts with 50 evidence rows, and
/// 100 hosts in the TIME_WAIT table.
fn busy_analysis() -> timewait::analysis::Analysis {
    let mut a = analyze_file(&fixture("finrst-tw-gone.pcap"));
    let paws = analyze_file(&fixture("nat-paws-fail.pcap"));
    let templates: Vec<timewait::detect::Finding> =
        a.findings.iter().chain(&paws.findings).cloned().collect();
    assert!(
        templates
            .iter()
            .any(|f| f.severity == timewait::detect::Severity::Error)
            && templates
                .iter()
                .any(|f| f.severity == timewait::detect::Severity::Info)
    );
    a.findings.clear();
    for i in 0..40 {
        for t in &templates {
            let mut f = t.clone();
            f.host = Some(format!("10.9.{i}.1"));
            f.count = 5000 + i;
            let row = f.evidence[0].clone();
            f.evidence = (0..50)
                .map(|n| {
                    let mut e = row.clone();
                    e.connection = timewait::track::ConnId(n);
                    e.note = format!("{} (case {n} of host {i})", row.note).into();
                    e
                })
                .collect();
            a.findings.push(f);
        }
    }
    a.findings
        .sort_by(|x, y| y.severity.cmp(&x.severity).then(x.kind.cmp(&y.kind)));
    let host = a.hosts[0].clone();
    a.hosts = (0..100)
        .map(|i| {
            let mut h = host.clone();
            h.ip = std::net::IpAddr::from([10, 9, i, 1]);
            h
        })
        .collect();
    a
}

fn markdown_within(a: &timewait::analysis::Analysis, max: Option<usize>) -> String {
    let mut out = Vec::new();
    report::render_markdown_limited(a, max, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn markdown_of_a_busy_analysis_fits_the_budget_and_stays_gfm() {
    let a = busy_analysis();
    let unlimited = markdown_within(&a, None);
    assert!(
        unlimited.chars().count() > 60_000,
        "the test needs a report larger than the budget: {}",
        unlimited.chars().count()
    );
    assert!(!unlimited.contains("Left out"));
    // The default of render_markdown is the 30,000 of --max-chars.
    let mut default = Vec::new();
    report::render_markdown(&a, &mut default).unwrap();
    assert_eq!(
        String::from_utf8(default).unwrap(),
        markdown_within(&a, Some(30_000))
    );
    for budget in [60_000, 30_000, 10_000, 4_000, 1_000] {
        let md = markdown_within(&a, Some(budget));
        let what = format!("budget {budget}");
        assert!(
            md.chars().count() <= budget,
            "{what}: {}",
            md.chars().count()
        );
        assert_valid_gfm(&md, &what);
        // The verdict is always there, and the last line says what went.
        assert!(md.starts_with(&format!("### timewait: {}", report::verdict(&a))));
        let last = md.lines().last().unwrap();
        assert!(
            last.starts_with(&format!(
                "**Left out to stay within {} characters:**",
                budget
                    .to_string()
                    .as_bytes()
                    .rchunks(3)
                    .rev()
                    .map(|c| std::str::from_utf8(c).unwrap())
                    .collect::<Vec<_>>()
                    .join(",")
            )) && last.contains("`--format json`")
                && last.contains("`--only "),
            "{what}: {last}"
        );
    }
    // The budget goes to errors and warnings first: at 30,000 every error
    // and warning shown still has its heading and evidence, while info
    // findings were cut to one line.
    let md = markdown_within(&a, Some(30_000));
    assert!(md.contains("##### ERROR `paws-syn-drop`"), "{md}");
    assert!(md.contains("##### WARNING `fin-retransmit-rst`"), "{md}");
    assert!(!md.contains("##### INFO"), "{md}");
    assert!(md.contains("- **INFO** `"), "{md}");
    let (shown, _) = report::shown_findings(&a);
    let severe = shown
        .iter()
        .filter(|f| f.severity > timewait::detect::Severity::Info)
        .count();
    assert_eq!(
        md.matches("| connection | frames | time (s) |").count(),
        severe,
        "an evidence table for every error and warning"
    );
    // Fewer rows as it gets tight: at 10,000 the tables are shorter.
    let rows = |md: &str| {
        md.lines()
            .filter(|l| {
                l.starts_with("| ") && !l.starts_with("| connection") && !l.starts_with("| host")
            })
            .count()
    };
    assert!(rows(&markdown_within(&a, Some(10_000))) < rows(&md));
}

#[test]
fn markdown_of_every_fixture_fits_a_small_budget() {
    for (stem, path) in fixtures_with_truth() {
        let a = analyze_file(&path);
        let whole = markdown_within(&a, None);
        let mut default = Vec::new();
        report::render_markdown(&a, &mut default).unwrap();
        assert_eq!(
            String::from_utf8(default).unwrap(),
            whole,
            "{stem}: fits 30,000 untouched"
        );
        for budget in [2_000, 1_000] {
            let md = markdown_within(&a, Some(budget));
            assert!(md.chars().count() <= budget, "{stem} {budget}");
            assert_valid_gfm(&md, &format!("{stem} {budget}"));
            assert_eq!(
                whole.chars().count() <= budget,
                !md.contains("**Left out"),
                "{stem} {budget}"
            );
        }
    }
}

#[test]
fn max_chars_flag_limits_markdown_and_refuses_a_budget_too_small() {
    let f = fixture("finrst-tw-gone.pcap");
    let f = f.to_str().unwrap();
    let o = timewait(&["analyze", f, "--format", "markdown", "--max-chars", "1500"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).chars().count() <= 1500);
    assert!(stdout(&o).contains("**Left out to stay within 1,500 characters:**"));
    let whole = timewait(&["analyze", f, "--format", "markdown", "--max-chars", "0"]);
    assert!(stdout(&whole).chars().count() > 1500);
    assert!(!stdout(&whole).contains("Left out"));
    let o = timewait(&["analyze", f, "--format", "markdown", "--max-chars", "10"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("1000 or more"), "{}", stderr(&o));
}

/// The `<text>` contents of an SVG.
fn svg_texts(svg: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_text = false;
    for event in svg::read(svg).expect("well-formed SVG") {
        match event {
            svg::parser::Event::Tag("text", svg::node::element::tag::Type::Start, _) => {
                in_text = true
            }
            svg::parser::Event::Tag("text", _, _) => in_text = false,
            svg::parser::Event::Text(t) if in_text => out.push(t.to_string()),
            _ => {}
        }
    }
    out
}

#[test]
fn timeline_svg_has_round_ticks_and_the_port_range_where_a_client_nears_it() {
    let dir = std::env::temp_dir().join(format!("timewait-svg-range-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = fixture("ports-exhausted.pcap");
    let draw = |extra: &[&str]| {
        let svg_path = dir.join("tw.svg");
        let mut args = vec![
            "timeline",
            path.to_str().unwrap(),
            "--svg",
            svg_path.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = timewait(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        std::fs::read_to_string(&svg_path).unwrap()
    };
    // The client holds all 8 ports of a 40000-40007 range: the line is drawn.
    let svg = draw(&["--port-range", "40000-40007"]);
    let texts = svg_texts(&svg);
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("ephemeral port range: 8 ports (40000-40007)")),
        "{texts:?}"
    );
    // Round ticks: the capture's 60.4 s (TIME_WAIT tail included) on an
    // axis of 0, 10, ... 70 s, the 8 sockets on 0, 2, ... 8.
    for tick in [
        "0", "10", "20", "30", "40", "50", "60", "70", "2", "4", "6", "8",
    ] {
        assert!(texts.iter().any(|t| t == tick), "{tick}: {texts:?}");
    }
    let numbers: Vec<f64> = texts.iter().filter_map(|t| t.parse().ok()).collect();
    assert!(
        numbers.iter().all(|n| n % 2.0 == 0.0),
        "only round ticks: {numbers:?}"
    );
    // With Linux's range the 8 sockets are nowhere near 28,232: no line.
    let svg = draw(&[]);
    assert!(!svg.contains("ephemeral port range"), "{svg}");
}

#[test]
fn timeline_text_draws_the_largest_holders_and_counts_the_rest() {
    let a = analyze_file(&fixture("phenomena-keepalive-idle.pcap"));
    let one = timewait::track::time_wait_series(&a.connections)
        .into_iter()
        .next()
        .expect("a host in TIME_WAIT");
    // 25 hosts, the peaks 1..=25.
    let series: Vec<timewait::track::HostSeries> = (0..25u8)
        .rev()
        .map(|i| {
            let mut s = one.clone();
            s.ip = std::net::IpAddr::from([10, 9, 0, i]);
            s.peak = u64::from(i) + 1;
            s
        })
        .collect();
    let mut out = Vec::new();
    let style = report::TextStyle {
        width: Some(100),
        ..Default::default()
    };
    report::render_timeline_text(&a, &series, &style, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("10.9.0.24: peak of 25"), "{text}");
    assert!(text.contains("10.9.0.15: peak of 16"), "{text}");
    assert!(!text.contains("10.9.0.14"), "only the 10 largest: {text}");
    assert!(
        text.contains("... and 15 more hosts, none with more than 15 TIME_WAIT sockets"),
        "{text}"
    );
}

#[test]
fn ladder_in_markdown_keeps_the_first_segments_within_the_budget() {
    let path = fixture("finrst-tw-gone.pcap");
    let mut collector = report::LadderCollector::new(timewait::track::ConnId(0), 500);
    let mut pipeline = timewait::analysis::Pipeline::with_observer(
        Options::default(),
        timewait::analysis::Retain::Only(timewait::track::ConnId(0)),
        Box::new(&mut collector),
    );
    pipeline
        .feed("finrst-tw-gone.pcap", std::fs::File::open(&path).unwrap())
        .unwrap();
    let a = pipeline.finish();
    let conn = a.connections.iter().find(|c| c.id.0 == 0).unwrap();
    let render = |max: Option<usize>| {
        let mut out = Vec::new();
        report::render_ladder_limited(
            &a,
            conn,
            &collector.rows,
            collector.omitted,
            &report::LadderFormat::Markdown { max_chars: max },
            &mut out,
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    };
    let whole = render(None);
    assert!(!whole.contains("more segments not shown"));
    let n = whole.chars().count();
    let cut = render(Some(n - 1));
    assert!(cut.chars().count() < n);
    assert!(cut.contains("... 1 more segments not shown"), "{cut}");
    let small = render(Some(n / 2));
    assert!(small.chars().count() <= n / 2, "{small}");
    assert!(
        small.starts_with("```text\n") && small.ends_with("```\n"),
        "{small}"
    );
    // The handshake stays: the first frame is still drawn.
    assert!(
        small.lines().any(|l| l.trim_start().starts_with("1 ")),
        "{small}"
    );
}
