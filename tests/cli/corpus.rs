//! The public capture corpus: robustness and connection-count agreement
//! with tshark on 1,400+ third-party captures.
//!
//! Runs only when `../shared/corpus/INDEX.tsv` exists beside the clone
//! (`/work/shared/corpus` here, the shared folder in CI); otherwise it
//! says so and passes. For every file INDEX.tsv lists, the built binary
//! runs `analyze --format json FILE` under a time limit, and:
//!
//! * it exits 0 or 2, never by a signal, an abort or a panic (101);
//! * on exit 2, stderr is exactly one `timewait: FILE: ...` line;
//! * it finishes within [`TIME_LIMIT`].
//!
//! Then, over the files tshark reads without damage and finds TCP streams
//! in, our `summary.connections` is compared with tshark 4.0's `tcp.stream`
//! count: every disagreement must be listed, with both counts, in
//! `tests/corpus-differences.tsv` (each with its reason, see
//! docs/corpus-agreement.md), every listed file must still disagree, and
//! the number of agreeing files must not fall below [`AGREEMENT_FLOOR`].
//! `scripts/corpus-sweep.py` produces the same comparison as a table.
//!
//! The same sweep pins the findings against `tests/corpus-findings.tsv`,
//! the precision table (docs/corpus-findings.md): every warning and error
//! the binary gives on the corpus must have a row there with the same
//! (path, kind, severity) and count, every pinned row (warning, error, and
//! the judged sample of info rows) must still occur with its count, so a
//! detector change that adds, drops or splits findings is noticed and its
//! rows are judged again against the packets (`scripts/corpus-findings.py
//! --merge`). [`corpus_findings_are_judged`] checks the verdicts themselves,
//! [`corpus_findings_precision`] the 95 % target.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A file that takes longer than this (debug build, 2 cores) is a failure.
const TIME_LIMIT: Duration = Duration::from_secs(20);

/// Files whose connection count equals tshark's `tcp.stream` count, as
/// achieved on the corpus of 2026-08 (951 comparable files) once IP
/// fragments were reassembled. Raise it when decoding improves; a drop is
/// a regression.
const AGREEMENT_FLOOR: usize = 941;

/// Worker threads: CI has 2 cores.
const THREADS: usize = 2;

struct IndexRow {
    path: String,
    tcp_streams: Option<u64>,
    damaged: String,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
}

fn read_index(dir: &Path) -> Option<Vec<IndexRow>> {
    let text = std::fs::read_to_string(dir.join("INDEX.tsv")).ok()?;
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next()?.split('\t').collect();
    let col = |name: &str| {
        head.iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("INDEX.tsv has no column {name}"))
    };
    let (path, streams, damaged) = (col("path"), col("tcp_streams"), col("damaged"));
    Some(
        lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                IndexRow {
                    path: f[path].to_string(),
                    tcp_streams: f[streams].parse().ok(),
                    damaged: f[damaged].to_string(),
                }
            })
            .collect(),
    )
}

/// INDEX.tsv's rows, or None after saying on stderr that the corpus is
/// not there (.ci/run fails when it is there but no sweep ran).
fn index_or_skip(dir: &Path) -> Option<Vec<IndexRow>> {
    let rows = read_index(dir);
    if rows.is_none() {
        eprintln!(
            "corpus: {} not found, skipped",
            dir.join("INDEX.tsv").display()
        );
    }
    rows
}

/// `tests/corpus-differences.tsv`: path -> (ours, tshark).
fn read_allow_list() -> BTreeMap<String, (u64, u64)> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus-differences.tsv");
    let text = std::fs::read_to_string(&file).expect("tests/corpus-differences.tsv");
    let mut out = BTreeMap::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        assert!(
            f.len() == 4 && !f[3].trim().is_empty(),
            "corpus-differences.tsv: want path, ours, tshark, reason: {line:?}"
        );
        let n = |s: &str| {
            s.parse::<u64>()
                .unwrap_or_else(|_| panic!("not a count: {line:?}"))
        };
        out.insert(f[0].to_string(), (n(f[1]), n(f[2])));
    }
    out
}

struct Run {
    path: String,
    /// None when killed at the time limit.
    code: Option<i32>,
    elapsed: Duration,
    stdout: Vec<u8>,
    stderr: String,
}

fn run_one(dir: &Path, rel: &str) -> Run {
    let file = dir.join(rel);
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_timewait"))
        .args(["analyze", "--format", "json"])
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn timewait");
    // Drain both pipes on their own threads so a large report cannot
    // block the child while we wait for it.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if start.elapsed() > TIME_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    Run {
        path: rel.to_string(),
        code: status.map(|s| {
            // A signal leaves no code: report it as a negative number.
            s.code().unwrap_or_else(|| {
                #[cfg(unix)]
                {
                    use std::os::unix::process::ExitStatusExt;
                    -s.signal().unwrap_or(0)
                }
                #[cfg(not(unix))]
                {
                    -1
                }
            })
        }),
        elapsed,
        stdout: out.join().unwrap(),
        stderr: String::from_utf8_lossy(&err.join().unwrap()).into_owned(),
    }
}

fn connections(stdout: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(stdout).ok()?;
    v["summary"]["connections"].as_u64()
}

/// (path, kind, severity) of one row of the precision table.
type FindingKey = (String, String, String);

/// One row of `tests/corpus-findings.tsv`.
struct JudgedRow {
    count: u64,
    verdict: String,
    why: String,
}

/// Precision each severity must reach: true rows / judged rows.
const PRECISION_TARGET: f64 = 0.95;

/// Info findings the table must judge (a sample; warnings and errors are
/// all judged).
const INFO_SAMPLE_MIN: u64 = 60;

/// `tests/corpus-findings.tsv`: path, kind, severity, count, verdict, why,
/// summaries (the last is what `scripts/corpus-findings.py --merge`
/// compares to keep a judgement; the tests do not read it).
fn read_findings_table() -> BTreeMap<FindingKey, JudgedRow> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus-findings.tsv");
    let text = std::fs::read_to_string(&file).expect("tests/corpus-findings.tsv");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("path\tkind\tseverity\tcount\tverdict\twhy\tsummaries"),
        "corpus-findings.tsv: header"
    );
    let mut out = BTreeMap::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        assert!(
            f.len() == 7,
            "corpus-findings.tsv: want 7 tab-separated columns: {line:?}"
        );
        let count = f[3]
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("corpus-findings.tsv: not a count: {line:?}"));
        let key = (f[0].to_string(), f[1].to_string(), f[2].to_string());
        let row = JudgedRow {
            count,
            verdict: f[4].to_string(),
            why: f[5].to_string(),
        };
        assert!(
            out.insert(key, row).is_none(),
            "corpus-findings.tsv: duplicate row {line:?}"
        );
    }
    out
}

/// Counts the findings of one report by (kind, severity).
fn count_findings(path: &str, stdout: &[u8], into: &mut BTreeMap<FindingKey, u64>) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(stdout) else {
        return;
    };
    for f in v["findings"].as_array().into_iter().flatten() {
        let kind = f["kind"].as_str().unwrap_or("?").to_string();
        let severity = f["severity"].as_str().unwrap_or("?").to_string();
        *into.entry((path.to_string(), kind, severity)).or_insert(0) += 1;
    }
}

/// The sweep's findings against the pinned table; one problem per mismatch.
fn check_findings_table(found: &BTreeMap<FindingKey, u64>) -> Vec<String> {
    let table = read_findings_table();
    let mut problems = Vec::new();
    let fix = "judge it against the packets (scripts/corpus-findings.py --merge \
               tests/corpus-findings.tsv, then docs/corpus-findings.md)";
    for (key, n) in found {
        let (path, kind, severity) = key;
        match table.get(key) {
            Some(row) if row.count == *n => {}
            Some(row) => problems.push(format!(
                "{path}: {n} {severity} {kind} findings, tests/corpus-findings.tsv \
                 judged {}; {fix}",
                row.count
            )),
            None if severity != "info" => problems.push(format!(
                "{path}: {n} {severity} {kind} findings not in \
                 tests/corpus-findings.tsv; {fix}"
            )),
            None => {}
        }
    }
    for (path, kind, severity) in table.keys() {
        let key = (path.clone(), kind.clone(), severity.clone());
        if !found.contains_key(&key) {
            problems.push(format!(
                "{path}: no {severity} {kind} finding any more, but \
                 tests/corpus-findings.tsv judges one; {fix}"
            ));
        }
    }
    problems
}

#[test]
fn corpus_runs_cleanly_and_agrees_with_tshark() {
    let dir = corpus_dir();
    let Some(rows) = index_or_skip(&dir) else {
        return;
    };
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let runs = Mutex::new(Vec::with_capacity(rows.len()));
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(row) = rows.get(i) else { break };
                    let run = run_one(&dir, &row.path);
                    runs.lock().unwrap().push((i, run));
                }
            });
        }
    });
    let mut runs = runs.into_inner().unwrap();
    runs.sort_by_key(|(i, _)| *i);

    let mut problems = Vec::new();
    for (_, run) in &runs {
        match run.code {
            None => problems.push(format!(
                "{}: still running after {:?}, killed",
                run.path, TIME_LIMIT
            )),
            Some(0) => {}
            Some(2) => {
                let lines: Vec<&str> = run.stderr.lines().filter(|l| !l.is_empty()).collect();
                let one_named = lines.len() == 1
                    && lines[0].starts_with("timewait: ")
                    && lines[0].contains(&run.path);
                if !one_named {
                    problems.push(format!(
                        "{}: exit 2 wants one `timewait: FILE: ...` line, stderr was {:?}",
                        run.path, run.stderr
                    ));
                }
            }
            Some(code) => problems.push(format!(
                "{}: exit {code} (negative: signal), stderr {:?}",
                run.path, run.stderr
            )),
        }
    }

    let mut found = BTreeMap::new();
    for (_, run) in &runs {
        count_findings(&run.path, &run.stdout, &mut found);
    }
    problems.extend(check_findings_table(&found));

    let allowed = read_allow_list();
    let (mut comparable, mut agree) = (0usize, 0usize);
    let mut seen_disagreeing = Vec::new();
    for ((_, run), row) in runs.iter().zip(&rows) {
        let Some(streams) = row.tcp_streams.filter(|n| *n > 0) else {
            continue;
        };
        if row.damaged != "no" {
            continue;
        }
        comparable += 1;
        let ours = connections(&run.stdout);
        if ours == Some(streams) {
            agree += 1;
            if allowed.contains_key(&row.path) {
                problems.push(format!(
                    "{}: now agrees with tshark ({streams}); remove it from \
                     tests/corpus-differences.tsv and docs/corpus-agreement.md",
                    row.path
                ));
            }
            continue;
        }
        let ours = ours.map_or("no report".to_string(), |n| n.to_string());
        seen_disagreeing.push(row.path.clone());
        match allowed.get(&row.path) {
            Some((o, t)) if o.to_string() == ours && *t == streams => {}
            Some((o, t)) => problems.push(format!(
                "{}: {ours} connections vs tshark {streams}, but \
                 tests/corpus-differences.tsv says {o} vs {t}",
                row.path
            )),
            None => problems.push(format!(
                "{}: {ours} connections, tshark {streams} tcp.stream; not in \
                 tests/corpus-differences.tsv",
                row.path
            )),
        }
    }
    for path in allowed.keys() {
        if !rows.iter().any(|r| &r.path == path) {
            problems.push(format!(
                "{path}: listed in tests/corpus-differences.tsv but not in INDEX.tsv"
            ));
        }
    }

    let slowest = runs
        .iter()
        .max_by_key(|(_, r)| r.elapsed)
        .map(|(_, r)| format!("{} {:.1?}", r.path, r.elapsed))
        .unwrap_or_default();
    eprintln!(
        "corpus: {} files in {:.1?} ({THREADS} threads, slowest {slowest}); \
         connections == tshark tcp.stream count for {agree} of {comparable} \
         comparable files ({:.1} %), {} known differences",
        runs.len(),
        started.elapsed(),
        100.0 * agree as f64 / comparable.max(1) as f64,
        seen_disagreeing.len(),
    );
    assert!(problems.is_empty(), "corpus:\n{}", problems.join("\n"));
    assert!(
        agree >= AGREEMENT_FLOOR,
        "corpus: agreement fell to {agree} files, the floor is {AGREEMENT_FLOOR}"
    );
}

/// The verdicts of `tests/corpus-findings.tsv` (docs/corpus-findings.md):
/// every row judged true, false or unclear with a reason, at least
/// [`INFO_SAMPLE_MIN`] info findings judged, and at each severity at least
/// [`PRECISION_TARGET`] of the rows true. Needs no corpus: the table is
/// the record of the judging, the sweep above keeps it current.
#[test]
fn corpus_findings_are_judged() {
    let table = read_findings_table();
    let mut info_findings = 0;
    for ((path, kind, severity), row) in &table {
        assert!(
            ["true", "false", "unclear"].contains(&row.verdict.as_str()),
            "corpus-findings.tsv: {path} {kind} {severity}: verdict {:?} \
             (judge it: true, false or unclear)",
            row.verdict
        );
        assert!(
            !row.why.trim().is_empty(),
            "corpus-findings.tsv: {path} {kind} {severity}: no reason given"
        );
        assert!(
            ["error", "warning", "info"].contains(&severity.as_str()),
            "corpus-findings.tsv: {path} {kind}: severity {severity:?}"
        );
        if severity == "info" {
            info_findings += row.count;
        }
    }
    assert!(
        info_findings >= INFO_SAMPLE_MIN,
        "corpus-findings.tsv judges {info_findings} info findings, want at least \
         {INFO_SAMPLE_MIN}"
    );
}

/// Share of true rows per severity, from the verdicts.
fn precision_by_severity() -> BTreeMap<String, (usize, usize)> {
    let mut out: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for ((_, _, severity), row) in read_findings_table() {
        let e = out.entry(severity).or_default();
        e.0 += usize::from(row.verdict == "true");
        e.1 += 1;
    }
    out
}

/// The target: at each severity at least 95 % of the judged rows true.
#[test]
fn corpus_findings_precision() {
    let by = precision_by_severity();
    let mut short = Vec::new();
    for (severity, (good, all)) in &by {
        let share = *good as f64 / (*all).max(1) as f64;
        eprintln!(
            "corpus findings: {severity}: {good} of {all} rows true ({:.1} %)",
            100.0 * share
        );
        if share < PRECISION_TARGET {
            short.push(format!("{severity} {:.1} %", 100.0 * share));
        }
    }
    assert!(
        short.is_empty(),
        "corpus findings precision below {:.0} %: {}",
        100.0 * PRECISION_TARGET,
        short.join(", ")
    );
}

/// The Markdown of every readable corpus file fits a ticket: within the
/// default 30,000 characters, and, squeezed to 2,000, still within that and
/// still GitHub-flavoured Markdown that renders as meant. Rendered in
/// process from the library (the binary's path is tested on the fixtures).
#[test]
fn corpus_markdown_fits_the_budget_and_stays_gfm() {
    let dir = corpus_dir();
    let Some(rows) = index_or_skip(&dir) else {
        return;
    };
    let next = AtomicUsize::new(0);
    let checked = AtomicUsize::new(0);
    let cut = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(row) = rows.get(i) else { break };
                    let Ok(file) = std::fs::File::open(dir.join(&row.path)) else {
                        continue;
                    };
                    let options = timewait::analysis::Options::default();
                    let Ok(a) = timewait::analysis::analyze(&row.path, file, &options) else {
                        continue;
                    };
                    for budget in [timewait::report::DEFAULT_MAX_CHARS, 2_000] {
                        let mut out = Vec::new();
                        timewait::report::render_markdown_limited(&a, Some(budget), &mut out)
                            .unwrap();
                        let md = String::from_utf8(out).unwrap();
                        let n = md.chars().count();
                        assert!(n <= budget, "{}: {n} characters over {budget}", row.path);
                        crate::support::assert_valid_gfm(&md, &format!("{} {budget}", row.path));
                        if md.contains("**Left out") {
                            cut.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    checked.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let checked = checked.into_inner();
    eprintln!(
        "corpus markdown: {checked} files within budget, {} renderings cut to fit",
        cut.into_inner()
    );
    assert!(checked > 1000, "only {checked} corpus files were readable");
}

/// The same check on captures named in `TIMEWAIT_MARKDOWN_CAPTURES`
/// (colon-separated), for the large generated ones that are not kept:
///
/// ```text
/// cargo run --release --example gen_capture -- /tmp/bench-1G.pcap --size 1G
/// TIMEWAIT_MARKDOWN_CAPTURES=/tmp/bench-1G.pcap cargo test --release --test cli markdown_of_named
/// ```
#[test]
fn markdown_of_named_captures_fits_the_budget_and_stays_gfm() {
    let Some(list) = std::env::var_os("TIMEWAIT_MARKDOWN_CAPTURES") else {
        eprintln!("TIMEWAIT_MARKDOWN_CAPTURES not set, skipped");
        return;
    };
    for path in std::env::split_paths(&list) {
        let file = std::fs::File::open(&path).expect("a named capture");
        let a = timewait::analysis::analyze(
            &path.display().to_string(),
            file,
            &timewait::analysis::Options::default(),
        )
        .expect("readable");
        let mut whole = Vec::new();
        timewait::report::render_markdown_limited(&a, None, &mut whole).unwrap();
        let mut out = Vec::new();
        timewait::report::render_markdown(&a, &mut out).unwrap();
        let md = String::from_utf8(out).unwrap();
        let n = md.chars().count();
        eprintln!(
            "{}: {} characters without a limit, {n} within {}",
            path.display(),
            String::from_utf8(whole).unwrap().chars().count(),
            timewait::report::DEFAULT_MAX_CHARS
        );
        assert!(n <= timewait::report::DEFAULT_MAX_CHARS);
        crate::support::assert_valid_gfm(&md, &path.display().to_string());
    }
}
