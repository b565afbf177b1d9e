//! `timewait check`: regression-test a folder of sample captures in CI.
//! Every capture is compared with its baseline report
//! (`BASELINES/<file name>.json`, an earlier `analyze --format json`), and
//! the run fails only on findings the baseline does not have. With
//! `--junit` each capture is one JUnit test case, so CI systems (GitHub
//! Actions, GitLab, Jenkins) show a result per capture rather than one
//! opaque step.
//!
//! Everything that can spoil the run is checked before the first capture
//! is read: the folders, every baseline (readable, a timewait report), and
//! that the JUnit file can be written.

use crate::cli::Outcome as Exit;
use crate::cli::{FailOn, parse_port_range, parse_time_wait};
use anyhow::{Context, Result, bail};
use clap::Args;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use timewait::analysis::{Analysis, Options, Pipeline, Retain};
use timewait::baseline;
use timewait::detect::{Selection, Severity};
use timewait::report;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The folder of sample captures: every `*.pcap`, `*.pcapng` and `*.cap`
    /// in it, gzip- or zstd-compressed too (`*.pcap.gz`, `*.pcap.zst`).
    #[arg(value_name = "CAPTURE_DIR")]
    pub captures: PathBuf,
    /// The folder of baseline reports, one `<capture file name>.json` each.
    #[arg(long, value_name = "DIR")]
    pub baselines: PathBuf,
    /// Accept the current findings: write every capture's report as its
    /// baseline (the folder is made if needed) instead of comparing.
    #[arg(long)]
    pub update: bool,
    /// Fail (exit 1) on a new finding at or above this severity (default:
    /// any new finding).
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,
    /// Also write a JUnit XML report to FILE: one test case per capture,
    /// failed with its new findings as the message.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// How long the active closer holds TIME_WAIT, in seconds (Linux: 60).
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, allow_negative_numbers = true, value_parser = parse_time_wait)]
    pub time_wait: f64,
    /// The clients' ephemeral port range, as `net.ipv4.ip_local_port_range`.
    #[arg(long, value_name = "LOW-HIGH", default_value = "32768-60999", value_parser = parse_port_range)]
    pub port_range: (u16, u16),
}

/// File names `check` reads as captures; what is in them is still judged
/// by its magic number, never by the name.
const CAPTURE_SUFFIXES: &[&str] = &[".pcap", ".pcapng", ".cap"];
const COMPRESSED_SUFFIXES: &[&str] = &["", ".gz", ".zst"];

fn is_capture_name(name: &str) -> bool {
    !name.starts_with('.')
        && CAPTURE_SUFFIXES.iter().any(|c| {
            COMPRESSED_SUFFIXES
                .iter()
                .any(|z| name.ends_with(&format!("{c}{z}")))
        })
}

/// What happened to one capture.
enum Outcome {
    /// Compared with its baseline (or written as one).
    Checked {
        findings: usize,
        /// New findings at or above the threshold, as lines.
        failing: Vec<String>,
        /// New findings below it.
        new_below: usize,
        gone: Vec<String>,
        /// No baseline yet (not an error: the first run of a new sample).
        no_baseline: bool,
    },
    /// The capture could not be read.
    Unreadable(String),
}

/// Runs the check; returns the exit code: 0 all pass, 1 a capture has a new
/// finding at or above --fail-on, 2 a capture could not be read.
pub fn run(args: &CheckArgs, out: &mut dyn Write) -> Result<Exit> {
    if !(args.time_wait.is_finite() && args.time_wait > 0.0) {
        bail!("--time-wait must be a number of seconds above 0");
    }
    let captures = capture_files(&args.captures)?;
    if args.update {
        std::fs::create_dir_all(&args.baselines)
            .with_context(|| format!("--baselines {}: cannot create", args.baselines.display()))?;
    } else if !args.baselines.is_dir() {
        bail!(
            "--baselines {}: no such folder (run once with --update to write the baselines)",
            args.baselines.display()
        );
    }
    // Every baseline is read and parsed up front: a broken one is a usage
    // error, said once, before minutes of reading captures.
    let mut baselines = Vec::with_capacity(captures.len());
    for cap in &captures {
        let path = baseline_path(&args.baselines, cap);
        if args.update || !path.exists() {
            baselines.push(None);
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("baseline {}: cannot read", path.display()))?;
        baseline::compare(&[], &text).with_context(|| format!("baseline {}", path.display()))?;
        baselines.push(Some(text));
    }
    // The JUnit file is made now, so an unwritable path fails first too.
    let mut junit_file = match &args.junit {
        Some(p) => {
            Some(BufWriter::new(File::create(p).with_context(|| {
                format!("--junit {}: cannot write", p.display())
            })?))
        }
        None => None,
    };
    let threshold = args.fail_on.map(FailOn::severity).unwrap_or(Severity::Info);
    let options = Options {
        time_wait_s: args.time_wait,
        port_range: args.port_range,
        findings: Selection::default(),
    };
    let mut suite = TestSuite::new("timewait check");
    let started = Instant::now();
    let (mut failed, mut unreadable) = (0, 0);
    for (cap, baseline_text) in captures.iter().zip(&baselines) {
        let name = file_name(cap);
        let t0 = Instant::now();
        let outcome = check_one(args, &options, cap, baseline_text.as_deref(), threshold)?;
        let elapsed = t0.elapsed();
        let mut case = match &outcome {
            Outcome::Unreadable(msg) => {
                unreadable += 1;
                writeln!(out, "ERROR {name}: {msg}")?;
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
                status.set_message(msg.as_str());
                TestCase::new(name.as_str(), status)
            }
            Outcome::Checked {
                findings,
                failing,
                new_below,
                gone,
                no_baseline,
            } => {
                let mut notes = Vec::new();
                if args.update {
                    notes.push(format!("baseline written ({findings} findings)"));
                } else if *no_baseline {
                    notes.push(format!(
                        "no baseline ({}); run with --update to accept its {findings} findings",
                        baseline_path(&args.baselines, cap).display()
                    ));
                } else {
                    notes.push(format!(
                        "{findings} findings, {} new, {} gone",
                        failing.len() + new_below,
                        gone.len()
                    ));
                }
                if *new_below > 0 {
                    notes.push(format!("{new_below} new below --fail-on"));
                }
                let verdict = if failing.is_empty() { "ok" } else { "FAIL" };
                writeln!(out, "{verdict} {name}: {}", notes.join("; "))?;
                for line in failing {
                    writeln!(out, "  new: {line}")?;
                }
                for line in gone {
                    writeln!(out, "  gone: {line}")?;
                }
                let mut case = if failing.is_empty() {
                    TestCase::new(name.as_str(), TestCaseStatus::success())
                } else {
                    failed += 1;
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message(format!(
                        "{} new finding{} since the baseline: {}",
                        failing.len(),
                        if failing.len() == 1 { "" } else { "s" },
                        failing.join("; ")
                    ));
                    status.set_type("new finding");
                    status.set_description(failing.join("\n"));
                    TestCase::new(name.as_str(), status)
                };
                case.set_system_out(notes.join("\n"));
                case
            }
        };
        case.set_classname("timewait.check");
        case.set_time(elapsed);
        suite.add_test_case(case);
    }
    writeln!(
        out,
        "timewait check: {} capture{}, {failed} with new findings, {unreadable} unreadable",
        captures.len(),
        if captures.len() == 1 { "" } else { "s" }
    )?;
    if let (Some(f), Some(path)) = (junit_file.as_mut(), &args.junit) {
        suite.set_time(started.elapsed());
        let mut report = Report::new("timewait");
        report.add_test_suite(suite);
        report
            .serialize(&mut *f)
            .with_context(|| format!("--junit {}", path.display()))?;
        f.write_all(b"\n")
            .and_then(|()| f.flush())
            .with_context(|| format!("--junit {}", path.display()))?;
    }
    Ok(if unreadable > 0 {
        Exit::InputFailed
    } else if failed > 0 {
        Exit::FindingsFail
    } else {
        Exit::Clean
    })
}

fn check_one(
    args: &CheckArgs,
    options: &Options,
    cap: &Path,
    baseline_text: Option<&str>,
    threshold: Severity,
) -> Result<Outcome> {
    let path = cap.display().to_string();
    let file = match File::open(cap) {
        Ok(f) => f,
        Err(e) => return Ok(Outcome::Unreadable(format!("cannot open: {e}"))),
    };
    let mut pipeline = Pipeline::new(
        options.clone(),
        if args.update {
            Retain::All
        } else {
            Retain::Nothing
        },
    );
    if let Err(e) = pipeline.feed(&path, file) {
        return Ok(Outcome::Unreadable(e.to_string()));
    }
    let analysis: Analysis = pipeline.finish();
    if analysis.has_input_errors() {
        let why = analysis
            .captures
            .iter()
            .find_map(|c| {
                c.error.clone().or_else(|| {
                    c.damage
                        .as_ref()
                        .map(|d| format!("{}; {}", d.message, d.coverage()))
                })
            })
            .unwrap_or_else(|| "damaged".to_string());
        return Ok(Outcome::Unreadable(why));
    }
    let findings = analysis.findings.len();
    if args.update {
        let target = baseline_path(&args.baselines, cap);
        let mut f = BufWriter::new(
            File::create(&target).with_context(|| format!("{}: cannot write", target.display()))?,
        );
        report::render_json(&analysis, &mut f)?;
        f.flush()?;
        return Ok(Outcome::Checked {
            findings,
            failing: Vec::new(),
            new_below: 0,
            gone: Vec::new(),
            no_baseline: false,
        });
    }
    let line = |f: &timewait::detect::Finding| {
        format!(
            "{} {}: {}",
            f.severity,
            baseline::FindingKey::of(f),
            f.summary
        )
    };
    let Some(text) = baseline_text else {
        // No baseline yet: only --fail-on judges, as `analyze` would.
        let failing = match args.fail_on {
            Some(t) => analysis
                .findings
                .iter()
                .filter(|f| f.severity >= t.severity())
                .map(line)
                .collect(),
            None => Vec::new(),
        };
        return Ok(Outcome::Checked {
            findings,
            failing,
            new_below: 0,
            gone: Vec::new(),
            no_baseline: true,
        });
    };
    let diff = baseline::compare(&analysis.findings, text)?;
    let (failing, below): (Vec<_>, Vec<_>) = diff.new.iter().partition(|f| f.severity >= threshold);
    Ok(Outcome::Checked {
        findings,
        failing: failing.into_iter().map(line).collect(),
        new_below: below.len(),
        gone: diff
            .gone
            .iter()
            .map(|(k, sev)| format!("{sev} {k}"))
            .collect(),
        no_baseline: false,
    })
}

/// The capture files of `dir`, sorted by name.
fn capture_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot read the capture folder", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("{}", dir.display()))?;
        let path = entry.path();
        if path.is_file() && is_capture_name(&file_name(&path)) {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        bail!(
            "{}: no capture files (*.pcap, *.pcapng, *.cap, also .gz or .zst)",
            dir.display()
        );
    }
    Ok(files)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn baseline_path(dir: &Path, capture: &Path) -> PathBuf {
    dir.join(format!("{}.json", file_name(capture)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_names_include_compressed_ones_and_nothing_else() {
        for yes in [
            "a.pcap",
            "b.pcapng",
            "c.cap",
            "d.pcap.gz",
            "e.pcapng.zst",
            "f.cap.gz",
        ] {
            assert!(is_capture_name(yes), "{yes}");
        }
        for no in ["a.pcap.json", "notes.txt", ".hidden.pcap", "a.gz", "pcap"] {
            assert!(!is_capture_name(no), "{no}");
        }
    }
}
