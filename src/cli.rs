//! Command-line definitions (clap derive) and what each command does. The
//! only file that knows clap; the library never sees a flag.

use anyhow::{Context, Result, bail};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::ops::ControlFlow;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use timewait::analysis::{Analysis, Options, Pipeline, ProgressCounts};
use timewait::baseline;
use timewait::detect::{FindingKind, Selection, Severity};
use timewait::report::{self, LadderCollector, TextStyle};
use timewait::track::{CloseKind, Closer, ConnectionRecord, HandshakeState, SeriesTally};

const AFTER_HELP: &str = "\
Examples:
  timewait dump.pcap                     verdict, findings and tables (same as `analyze`)
  tcpdump -w - -i eth0 port 80 | timewait analyze -
  timewait analyze dump.pcap --format markdown > ticket.md
  timewait analyze dump.pcap --fail-on warning            exit 1 on a warning or error
  timewait analyze dump.pcap --baseline old.json          exit 1 only on new findings
  timewait conns dump.pcap --closer server
  timewait show dump.pcap --conn 3
  timewait timeline dump.pcap --svg time-wait.svg
  timewait check captures/ --baselines baselines/ --junit timewait.xml
  timewait explain paws-syn-drop
  timewait collect -- tcpdump -i eth0 -w dump.pcap   host counters beside the capture

Captures may be gzip- or zstd-compressed (told by their first bytes).

Exit codes: 0 ok; 1 a finding at or above --fail-on (or new against --baseline);
2 usage error or an input that could not be read (a truncated last record is
not an error: everything before it is analyzed).";

const CHECK_HELP: &str = "\
Examples:
  timewait check captures/ --baselines baselines/ --update      accept the current findings
  timewait check captures/ --baselines baselines/ --fail-on warning --junit timewait.xml

Exit codes as `analyze`: 0 no capture has a new finding at or above --fail-on;
1 one has; 2 a usage error, a broken baseline, or a capture that could not be read.";

/// Explains TCP connection lifecycles in tcpdump captures: who closed first
/// and holds TIME_WAIT, failed handshakes, resets.
#[derive(Debug, Parser)]
#[command(name = "timewait", version, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Summary of a capture: verdict, findings, connections by close, TIME_WAIT per host.
    #[command(after_help = "Example:\n  timewait analyze dump.pcap --format json")]
    Analyze(AnalyzeArgs),
    /// One row per connection: roles, handshake, close, active closer, TIME_WAIT holder.
    #[command(after_help = "Example:\n  timewait conns dump.pcap --closer server --format ndjson")]
    Conns(ConnsArgs),
    /// A ladder diagram of one connection: every segment with both sides' TCP states.
    #[command(after_help = "Example:\n  timewait show dump.pcap --conn 3 --format markdown")]
    Show(ShowArgs),
    /// TIME_WAIT sockets per host over time, as a terminal chart or an SVG picture.
    #[command(after_help = "Example:\n  timewait timeline dump.pcap --svg time-wait.svg")]
    Timeline(TimelineArgs),
    /// Runs a capture command between two host snapshots (sysctls, TCP counters,
    /// sockets) and writes them beside the capture; `analyze` reads them.
    #[command(
        after_help = "Examples:\n  timewait collect -- tcpdump -i eth0 -w dump.pcap      (writes dump.pcap.host.json)\n  \
                      timewait collect --snapshot -o before.json\n\n\
                      Ctrl-C goes to the capture command; timewait waits for it to end, then takes the\n\
                      second snapshot. The snapshots describe the network namespace timewait runs in."
    )]
    Collect(CollectArgs),
    /// Regression-test a folder of sample captures against their baseline
    /// reports, for CI: one result per capture, JUnit XML with --junit.
    #[command(after_help = CHECK_HELP)]
    Check(crate::check::CheckArgs),
    /// The long explanation of a finding kind: what, why, what to do, how to confirm.
    #[command(
        after_help = "Example:\n  timewait explain fin-retransmit-rst\n  timewait explain        (lists the kinds)"
    )]
    Explain(ExplainArgs),
    /// Shell completions for bash, zsh, fish, elvish or powershell.
    #[command(
        after_help = "Example:\n  timewait completions bash > /etc/bash_completion.d/timewait"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The manual page (roff), generated from these definitions.
    #[command(after_help = "Example:\n  timewait man > timewait.1 && man ./timewait.1")]
    Man,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// The connection id (`tcp.stream`) to draw.
    #[arg(long, value_name = "ID")]
    pub conn: u32,
    /// text, or markdown (a fenced block for a ticket, within 30,000
    /// characters: later segments are counted, not drawn).
    #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
    pub format: ShowFormat,
    /// At most this many segments.
    #[arg(long, default_value_t = 500)]
    pub limit: usize,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ShowFormat {
    Text,
    Markdown,
}

#[derive(Debug, Args)]
pub struct TimelineArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Also write the chart as an SVG picture to this file.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A finding kind, e.g. paws-syn-drop; none lists them all.
    #[arg(value_parser = parse_kind)]
    pub kind: Option<FindingKind>,
}

#[derive(Debug, Args)]
pub struct InputArgs {
    /// Capture files (pcap or pcapng, any byte order, also gzip- or
    /// zstd-compressed: told by the first bytes, not the name); `-` reads
    /// standard input. Several files are one timeline (rotated `tcpdump
    /// -C/-G` output), read in the order of their first packet.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// How long the active closer holds TIME_WAIT, in seconds (Linux: 60).
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, allow_negative_numbers = true, value_parser = parse_time_wait)]
    pub time_wait: f64,
    /// The clients' ephemeral port range, as `net.ipv4.ip_local_port_range`
    /// [default: 32768-60999; `analyze` takes the host's from host information].
    #[arg(long, value_name = "LOW-HIGH", value_parser = parse_port_range)]
    pub port_range: Option<(u16, u16)>,
    /// Colour of the `analyze` text report's verdict and severities: auto
    /// (only on a terminal, not with NO_COLOR), always, never. conns, show
    /// and timeline print plain text.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Width in columns (default: the terminal's; when not on a terminal, text
    /// wraps at 100 and tables keep their natural width).
    #[arg(long, value_name = "COLUMNS")]
    pub width: Option<u16>,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Report only these finding kinds (repeat or comma-separate).
    #[arg(long, value_name = "KIND", value_delimiter = ',', value_parser = parse_kind)]
    pub only: Vec<FindingKind>,
    /// Do not report these finding kinds (repeat or comma-separate).
    #[arg(long, value_name = "KIND", value_delimiter = ',', value_parser = parse_kind)]
    pub skip: Vec<FindingKind>,
    /// Exit 1 when a finding at or above this severity exists.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,
    /// An earlier `--format json` report of the same capture: print what is new and
    /// what went away, and fail (exit 1) only on new findings at or above
    /// --fail-on (any new finding without it).
    #[arg(long, value_name = "OLD.json")]
    pub baseline: Option<std::path::PathBuf>,
    /// Markdown: at most this many characters, to fit a ticket field (Jira
    /// 32,767, GitHub 65,536); evidence of info findings goes first, and the
    /// last line says what was left out. 0: no limit.
    #[arg(long, value_name = "N", default_value_t = report::DEFAULT_MAX_CHARS, value_parser = parse_max_chars)]
    pub max_chars: usize,
    /// Host information to check the findings against (repeatable): a
    /// `timewait collect` file or snapshot, or pasted `sysctl -a`, `nstat`,
    /// `ss -tan`, `ss -s` output. Default: CAPTURE.host.json when it exists.
    #[arg(long, value_name = "FILE", conflicts_with = "no_host_info")]
    pub host_info: Vec<std::path::PathBuf>,
    /// Ignore CAPTURE.host.json beside the capture.
    #[arg(long)]
    pub no_host_info: bool,
}

#[derive(Debug, Args)]
pub struct CollectArgs {
    /// Write one snapshot and exit (take one before and one after a capture
    /// you run yourself; `analyze --host-info before.json --host-info after.json`).
    #[arg(long, conflicts_with = "command")]
    pub snapshot: bool,
    /// Where to write (default: the capture's `-w FILE` + `.host.json`; `-` or
    /// none with --snapshot: standard output).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// The capture command, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

fn parse_max_chars(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of characters"))?;
    if n != 0 && n < report::MIN_MAX_CHARS {
        return Err(format!(
            "{n} characters cannot hold the verdict and what was left out; use {} or more (0: no limit)",
            report::MIN_MAX_CHARS
        ));
    }
    Ok(n)
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FailOn {
    Info,
    Warning,
    Error,
}

impl FailOn {
    pub(crate) fn severity(self) -> Severity {
        match self {
            FailOn::Info => Severity::Info,
            FailOn::Warning => Severity::Warning,
            FailOn::Error => Severity::Error,
        }
    }
}

fn parse_kind(s: &str) -> Result<FindingKind, String> {
    s.parse()
}

#[derive(Debug, Args)]
pub struct ConnsArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ConnsFormat::Text)]
    pub format: ConnsFormat,
    /// Only connections closed first by this side.
    #[arg(long, value_enum)]
    pub closer: Option<CloserFilter>,
    /// Only connections that ended this way.
    #[arg(long, value_enum)]
    pub close: Option<CloseFilter>,
    /// Only connections whose handshake got this far.
    #[arg(long, value_enum)]
    pub state: Option<HandshakeFilter>,
    /// Only connections with this IP address on either side.
    #[arg(long)]
    pub host: Option<std::net::IpAddr>,
    /// Only connections with this port on either side.
    #[arg(long)]
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ConnsFormat {
    Text,
    Json,
    Ndjson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CloserFilter {
    Client,
    Server,
    Both,
    None,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CloseFilter {
    Fin,
    Simultaneous,
    Rst,
    Open,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
/// Spelled as the tables and the JSON print them (`syn_only`); the
/// dashed spelling is accepted too.
pub enum HandshakeFilter {
    Complete,
    #[value(name = "syn_ack_only", alias = "syn-ack-only")]
    SynAckOnly,
    #[value(name = "syn_only", alias = "syn-only")]
    SynOnly,
    Refused,
    Challenged,
    #[value(name = "not_captured", alias = "not-captured")]
    NotCaptured,
}

/// A TIME_WAIT interval: a number of seconds above 0. A negative value is
/// taken as a value (not a flag) so that this message, not clap's `-- -1`
/// tip, answers it.
pub(crate) fn parse_time_wait(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds (Linux: 60)"))?;
    if !v.is_finite() || v <= 0.0 {
        return Err(format!(
            "{s} s: TIME_WAIT lasts a positive number of seconds (Linux: 60, TCP_TIMEWAIT_LEN)"
        ));
    }
    Ok(v)
}

pub(crate) fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let (lo, hi) = s
        .split_once(['-', ' ', '\t'])
        .ok_or_else(|| format!("`{s}` is not LOW-HIGH (e.g. 32768-60999)"))?;
    let lo: u16 = lo
        .trim()
        .parse()
        .map_err(|_| format!("`{lo}` is not a port"))?;
    let hi: u16 = hi
        .trim()
        .parse()
        .map_err(|_| format!("`{hi}` is not a port"))?;
    if lo > hi {
        return Err(format!("the range {lo}-{hi} is empty"));
    }
    // As the kernel's ip_local_port_range, which refuses 0.
    if lo == 0 {
        return Err(format!(
            "{lo}-{hi}: port 0 is never an ephemeral port; the range starts at 1 or above (Linux: 32768-60999)"
        ));
    }
    Ok((lo, hi))
}

const SUBCOMMANDS: &[&str] = &[
    "analyze",
    "conns",
    "show",
    "timeline",
    "collect",
    "check",
    "explain",
    "completions",
    "man",
    "help",
];

/// `timewait FILE` means `timewait analyze FILE`: insert the default
/// sub-command when the first argument is not one.
pub fn args_with_default_command() -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(first) = args.get(1).and_then(|a| a.to_str()) {
        let is_flag_for_top = matches!(first, "-h" | "--help" | "-V" | "--version");
        if !SUBCOMMANDS.contains(&first) && !is_flag_for_top {
            args.insert(1, "analyze".into());
        }
    }
    args
}

impl InputArgs {
    fn options(&self) -> Result<Options> {
        if !(self.time_wait.is_finite() && self.time_wait > 0.0) {
            bail!("--time-wait must be a number of seconds above 0");
        }
        Ok(Options {
            time_wait_s: self.time_wait,
            port_range: self.port_range.unwrap_or(Options::default().port_range),
            findings: Selection::default(),
        })
    }

    fn style(&self) -> TextStyle {
        let tty = io::stdout().is_terminal();
        let color = match self.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        };
        TextStyle {
            width: self.width,
            tty,
            color,
        }
    }

    /// Reads every input. Problems with a file are reported on stderr and in
    /// the analysis; the run goes on with the others.
    fn run_pipeline(&self, selection: Selection, keep: bool) -> Result<(Analysis, bool)> {
        self.run_observed(selection, Box::new(()), keep)
    }

    fn run_observed<'o>(
        &self,
        selection: Selection,
        observer: Box<dyn timewait::analysis::SegmentObserver + 'o>,
        keep: bool,
    ) -> Result<(Analysis, bool)> {
        let mut options = self.options()?;
        options.findings = selection;
        self.run(Pipeline::with_observer(options, observer).keep_connections(keep))
    }

    /// Reads every input through `pipeline`.
    fn run(&self, mut pipeline: Pipeline<'_>) -> Result<(Analysis, bool)> {
        self.stdin_is_not_a_terminal()?;
        let mut failed = false;
        let counts = Arc::new(ProgressCounts::default());
        pipeline.report_progress(counts.clone());
        // The first Ctrl-C ends the run with a report of what was read: a
        // file stops at the record being read; standard input is read to
        // its end, which comes at once as the writer (`tcpdump -w - |`) got
        // the same Ctrl-C, and nothing it wrote is lost. A second Ctrl-C
        // exits at once.
        let interrupt = Arc::new(AtomicBool::new(false));
        let flag = interrupt.clone();
        let handled = ctrlc::set_handler(move || {
            if flag.swap(true, Ordering::Relaxed) {
                std::process::exit(130);
            }
        })
        .is_ok();
        for path in &self.in_time_order() {
            if pipeline.stopped() || interrupt.load(Ordering::Relaxed) {
                break;
            }
            let stop_on_interrupt = handled && path != "-";
            pipeline.stop_when(stop_on_interrupt.then(|| interrupt.clone()));
            let outcome = if path == "-" {
                pipeline.feed("-", stdin_input(&counts))
            } else {
                match open_input(path, &counts) {
                    Ok(f) => pipeline.feed(path, f),
                    Err(e) => {
                        pipeline.record_failure(path, &format!("{e:#}"));
                        eprintln!("timewait: {path}: {e:#}");
                        failed = true;
                        continue;
                    }
                }
            };
            if let Err(e) = outcome {
                eprintln!("timewait: {path}: {e}");
                failed = true;
            }
        }
        let analysis = pipeline.finish();
        for c in &analysis.captures {
            if let Some(d) = &c.damage {
                eprintln!("timewait: {}: {}; {}", c.path, d.message, d.coverage());
            }
        }
        let failed = failed || analysis.has_input_errors();
        Ok((analysis, failed))
    }
}

impl InputArgs {
    /// `-` with a terminal on standard input would wait for bytes nobody
    /// types: say so at once instead.
    fn stdin_is_not_a_terminal(&self) -> Result<()> {
        if self.files.iter().any(|f| f == "-") && io::stdin().is_terminal() {
            bail!(
                "`-` reads a capture from standard input, which is a terminal here: pipe one in (`tcpdump -w - | timewait analyze -`, `timewait analyze - < dump.pcap`) or name a file"
            );
        }
        Ok(())
    }

    /// Several files are one timeline: rotated `tcpdump -C/-G` files are read
    /// in the order of their first packet, whatever their names sort to
    /// (`dump.pcap10` sorts before `dump.pcap2`). Standard input, and files
    /// that cannot be read or hold no packet, keep their place at the end.
    fn in_time_order(&self) -> Vec<String> {
        if self.files.len() < 2 || self.files.iter().any(|f| f == "-") {
            return self.files.clone();
        }
        let mut keyed: Vec<(Option<timewait::time::Timestamp>, usize, &String)> = self
            .files
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let first = File::open(p)
                    .ok()
                    .and_then(|f| timewait::capture::first_timestamp(f).ok().flatten());
                (first, i, p)
            })
            .collect();
        keyed.sort_by_key(|(ts, i, _)| (ts.is_none(), *ts, *i));
        let ordered: Vec<String> = keyed.into_iter().map(|(_, _, p)| p.clone()).collect();
        if ordered != self.files {
            eprintln!(
                "timewait: reading the files in the order of their first packet: {}",
                ordered.join(", ")
            );
        }
        ordered
    }
}

fn open_input(path: &str, counts: &Arc<ProgressCounts>) -> Result<Box<dyn Read + Send>> {
    let meta = std::fs::metadata(path).with_context(|| "cannot open".to_string())?;
    if meta.is_dir() {
        bail!("is a directory, not a capture file");
    }
    let f = File::open(path).context("cannot open")?;
    // A progress bar only where someone watches, and only when it is worth it.
    if io::stderr().is_terminal() && meta.len() > PROGRESS_MIN_BYTES {
        let bar = indicatif::ProgressBar::new(meta.len());
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} {bar:20} {bytes}/{total_bytes} {binary_bytes_per_sec}, {msg}, eta {eta}",
            )
            .expect("a valid template"),
        );
        bar.set_prefix(path.to_string());
        return Ok(Box::new(Progress {
            inner: f,
            bar,
            counts: counts.clone(),
            show_after: 0,
        }));
    }
    Ok(Box::new(f))
}

/// Standard input, with a progress line (no total, no eta) on a terminal's
/// stderr once more than [`PROGRESS_MIN_BYTES`] have come through a pipe.
fn stdin_input(counts: &Arc<ProgressCounts>) -> Box<dyn Read + Send> {
    if !io::stderr().is_terminal() {
        return Box::new(io::stdin());
    }
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::hidden());
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} {spinner} {bytes} {binary_bytes_per_sec}, {msg}",
        )
        .expect("a valid template"),
    );
    bar.set_prefix("standard input");
    Box::new(Progress {
        inner: io::stdin(),
        bar,
        counts: counts.clone(),
        show_after: PROGRESS_MIN_BYTES,
    })
}

/// Inputs smaller than this are read without a progress bar.
const PROGRESS_MIN_BYTES: u64 = 50 << 20;

/// Counts the bytes read from a file into a progress bar on stderr, with
/// the packets and connections the pipeline has seen so far; the bar is
/// cleared when the file has been read.
struct Progress<R> {
    inner: R,
    bar: indicatif::ProgressBar,
    counts: Arc<ProgressCounts>,
    /// The bar is hidden until this many bytes were read (0: shown).
    show_after: u64,
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.bar.finish_and_clear();
        } else {
            self.bar.inc(n as u64);
            if self.show_after > 0 && self.bar.position() > self.show_after {
                self.show_after = 0;
                self.bar
                    .set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
            self.bar.set_message(progress_message(&self.counts));
        }
        Ok(n)
    }
}

impl<R> Drop for Progress<R> {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// "1,234,567 packets, 89,012 connections".
fn progress_message(counts: &ProgressCounts) -> String {
    let packets = counts.packets.load(Ordering::Relaxed);
    let conns = counts.connections.load(Ordering::Relaxed);
    format!(
        "{} packets, {} connections",
        indicatif::HumanCount(packets),
        indicatif::HumanCount(conns)
    )
}

/// Records handed to the ndjson writer thread at once.
const NDJSON_BATCH: usize = 256;

/// Runs the parsed command; returns the exit code.
pub fn run(cli: Cli) -> Result<ExitCode> {
    // Not locked for the whole run: `conns --format ndjson` writes from a
    // thread of its own. BufWriter locks stdout once per 64 KiB.
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout());
    let code = match cli.command {
        Command::Analyze(args) => {
            let selection = Selection {
                only: args.only.clone(),
                skip: args.skip.clone(),
            };
            // Read the baseline first: a bad path is a usage error, before
            // minutes of reading a capture.
            let baseline_text = match &args.baseline {
                Some(p) => {
                    let text = std::fs::read_to_string(p)
                        .with_context(|| format!("--baseline {}: cannot read", p.display()))?;
                    baseline::compare(&[], &text)
                        .with_context(|| format!("--baseline {}", p.display()))?;
                    Some(text)
                }
                None => None,
            };
            let keep = matches!(args.format, ReportFormat::Json);
            let host = args.host_report()?;
            let (analysis, failed) = args.input.run_with_host(selection, keep, host)?;
            if analysis.captures.iter().all(|c| c.format.is_none()) {
                return Ok(ExitCode::from(2));
            }
            match args.format {
                ReportFormat::Text => {
                    report::render_text(&analysis, &args.input.style(), &mut out)?
                }
                ReportFormat::Json => report::render_json(&analysis, &mut out)?,
                ReportFormat::Markdown => report::render_markdown_limited(
                    &analysis,
                    (args.max_chars > 0).then_some(args.max_chars),
                    &mut out,
                )?,
            }
            out.flush()?;
            let threshold = args.fail_on.map(FailOn::severity);
            let findings_fail = match &baseline_text {
                Some(text) => {
                    let path = args.baseline.as_ref().map(|p| p.display().to_string());
                    let diff = baseline::compare(&analysis.findings, text)
                        .with_context(|| format!("--baseline {}", path.unwrap_or_default()))?;
                    for f in &diff.new {
                        eprintln!(
                            "timewait: new since baseline: {} {}",
                            f.severity,
                            baseline::FindingKey::of(f)
                        );
                    }
                    for (k, sev) in &diff.gone {
                        eprintln!("timewait: gone since baseline: {sev} {k}");
                    }
                    eprintln!(
                        "timewait: baseline: {} new, {} gone",
                        diff.new.len(),
                        diff.gone.len()
                    );
                    baseline::fails(
                        diff.new.iter().copied(),
                        threshold.unwrap_or(Severity::Info),
                    )
                }
                None => threshold.is_some_and(|t| baseline::fails(&analysis.findings, t)),
            };
            if failed {
                ExitCode::from(2)
            } else if findings_fail {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Command::Conns(args) if matches!(args.format, ConnsFormat::Ndjson) => {
            // Streams: each record is written as the tracker retires it, so
            // memory stays flat however large the capture. Records go in
            // batches to a writer thread: JSON is half the work here, and
            // the tracker need not wait for it.
            let (tx, rx) = mpsc::sync_channel::<Vec<ConnectionRecord>>(4);
            let out_ref = &mut out;
            let options = args.input.options()?;
            let (run, written) = std::thread::scope(|scope| {
                let spawned = std::thread::Builder::new()
                    .name("timewait-json".into())
                    .spawn_scoped(scope, move || -> io::Result<()> {
                        for batch in rx {
                            for record in &batch {
                                serde_json::to_writer(&mut *out_ref, record)?;
                                out_ref.write_all(b"\n")?;
                            }
                        }
                        Ok(())
                    });
                let writer = match spawned {
                    Ok(w) => w,
                    Err(e) => return (Err(e.into()), Ok(())),
                };
                let mut batch = Vec::with_capacity(NDJSON_BATCH);
                // The writer is gone only when the output was closed (or
                // failed): the pipeline then stops reading.
                let sink = Box::new(|record: ConnectionRecord| {
                    if args.keeps(&record) {
                        batch.push(record);
                    }
                    if batch.len() == NDJSON_BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(NDJSON_BATCH));
                        if tx.send(full).is_err() {
                            return ControlFlow::Break(());
                        }
                    }
                    ControlFlow::Continue(())
                });
                let run = args.input.run(Pipeline::streaming(options, sink));
                if !batch.is_empty() {
                    let _ = tx.send(batch);
                }
                drop(tx);
                let written = match writer.join() {
                    Ok(w) => w,
                    Err(panic) => std::panic::resume_unwind(panic),
                };
                (run, written)
            });
            let (analysis, failed) = run?;
            written?;
            if analysis.captures.iter().all(|c| c.format.is_none()) {
                return Ok(ExitCode::from(2));
            }
            exit_for(failed)
        }
        Command::Conns(args) => {
            let (analysis, failed) = args.input.run_pipeline(Selection::default(), true)?;
            if analysis.captures.iter().all(|c| c.format.is_none()) {
                return Ok(ExitCode::from(2));
            }
            let conns: Vec<&ConnectionRecord> = analysis
                .connections
                .iter()
                .filter(|c| args.keeps(c))
                .collect();
            match args.format {
                ConnsFormat::Text => report::render_connections_text(
                    &analysis,
                    &conns,
                    &args.input.style(),
                    &mut out,
                )?,
                ConnsFormat::Json => report::render_connections_json(&conns, &mut out)?,
                ConnsFormat::Ndjson => report::render_connections_ndjson(&conns, &mut out)?,
            }
            exit_for(failed)
        }
        Command::Show(args) => {
            let mut collector = LadderCollector::new(args.conn, args.limit);
            let pipeline = Pipeline::with_observer(args.input.options()?, Box::new(&mut collector))
                .keep_only(args.conn);
            let (analysis, failed) = args.input.run(pipeline)?;
            if analysis.captures.iter().all(|c| c.format.is_none()) {
                return Ok(ExitCode::from(2));
            }
            let Some(conn) = analysis.connections.iter().find(|c| c.id == args.conn) else {
                let n = analysis.summary.connections;
                bail!(
                    "no connection {} (the capture has {n}: ids 0-{})",
                    args.conn,
                    n.saturating_sub(1)
                );
            };
            let markdown = matches!(args.format, ShowFormat::Markdown);
            report::render_ladder_limited(
                &analysis,
                conn,
                &collector.rows,
                collector.omitted,
                markdown,
                markdown.then_some(report::DEFAULT_MAX_CHARS),
                &mut out,
            )?;
            exit_for(failed)
        }
        Command::Timeline(args) => {
            // Only the TIME_WAIT intervals are needed: fold them as records
            // retire instead of keeping the records.
            // The picture's file is made first: an unwritable path fails
            // before the capture is read, not after.
            let mut svg_file = match &args.svg {
                Some(path) => Some(BufWriter::new(
                    File::create(path).with_context(|| format!("--svg {}", path.display()))?,
                )),
                None => None,
            };
            let mut tally = SeriesTally::default();
            let sink = Box::new(|record: ConnectionRecord| {
                tally.add(&record);
                ControlFlow::Continue(())
            });
            let (analysis, failed) = args
                .input
                .run(Pipeline::streaming(args.input.options()?, sink))?;
            if analysis.captures.iter().all(|c| c.format.is_none()) {
                // Nothing to draw: leave no empty picture behind.
                if let Some(path) = &args.svg {
                    drop(svg_file);
                    let _ = std::fs::remove_file(path);
                }
                return Ok(ExitCode::from(2));
            }
            let series = tally.finish();
            let width = report::term_width(&args.input.style());
            report::render_timeline_text(&analysis, &series, width, &mut out)?;
            if let Some(f) = svg_file.as_mut() {
                report::render_timeline_svg(&analysis, &series, f)?;
                f.flush()?;
            }
            exit_for(failed)
        }
        Command::Collect(args) => collect(&args)?,
        Command::Check(args) => crate::check::run(&args, &mut out)?,
        Command::Explain(args) => {
            match args.kind {
                Some(kind) => out.write_all(kind.long_doc().as_bytes())?,
                None => {
                    writeln!(
                        out,
                        "Finding kinds (timewait explain KIND for the details):"
                    )?;
                    for kind in FindingKind::ALL {
                        let title = kind
                            .long_doc()
                            .lines()
                            .next()
                            .and_then(|l| l.split_once(" — ").map(|(_, t)| t.to_string()))
                            .unwrap_or_default();
                        writeln!(out, "  {:<22} {title}", kind.as_str())?;
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "timewait", &mut out);
            ExitCode::SUCCESS
        }
        Command::Man => {
            crate::man::render(&mut out)?;
            ExitCode::SUCCESS
        }
    };
    out.flush()?;
    Ok(code)
}

fn exit_for(failed: bool) -> ExitCode {
    if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

impl ConnsArgs {
    fn keeps(&self, c: &ConnectionRecord) -> bool {
        let closer_ok = self.closer.is_none_or(|f| {
            c.close.active_closer
                == match f {
                    CloserFilter::Client => Closer::Client,
                    CloserFilter::Server => Closer::Server,
                    CloserFilter::Both => Closer::Both,
                    CloserFilter::None => Closer::None,
                }
        });
        let close_ok = self.close.is_none_or(|f| {
            c.close.kind
                == match f {
                    CloseFilter::Fin => CloseKind::Fin,
                    CloseFilter::Simultaneous => CloseKind::Simultaneous,
                    CloseFilter::Rst => CloseKind::Rst,
                    CloseFilter::Open => CloseKind::Open,
                }
        });
        let state_ok = self.state.is_none_or(|f| {
            c.handshake.state
                == match f {
                    HandshakeFilter::Complete => HandshakeState::Complete,
                    HandshakeFilter::SynAckOnly => HandshakeState::SynAckOnly,
                    HandshakeFilter::SynOnly => HandshakeState::SynOnly,
                    HandshakeFilter::Refused => HandshakeState::Refused,
                    HandshakeFilter::Challenged => HandshakeState::Challenged,
                    HandshakeFilter::NotCaptured => HandshakeState::NotCaptured,
                }
        });
        let host_ok = self
            .host
            .is_none_or(|h| c.client.ip() == h || c.server.ip() == h);
        let port_ok = self
            .port
            .is_none_or(|p| c.client.port() == p || c.server.port() == p);
        closer_ok && close_ok && state_ok && host_ok && port_ok
    }
}

impl InputArgs {
    /// `analyze` with host information: the port range defaults to the
    /// host's, and the findings are checked against its counters.
    fn run_with_host(
        &self,
        selection: Selection,
        keep: bool,
        host: Option<timewait::host::HostReport>,
    ) -> Result<(Analysis, bool)> {
        let mut options = self.options()?;
        options.findings = selection;
        let mut pipeline_host = None;
        if let Some(mut host) = host {
            if self.port_range.is_none()
                && let Some((ctx, (lo, hi))) = host
                    .hosts
                    .iter()
                    .find_map(|c| c.port_range().map(|r| (c, r)))
            {
                options.port_range = (lo, hi);
                host.port_range = Some(timewait::host::PortRangeSource {
                    low: lo,
                    high: hi,
                    from: format!(
                        "net.ipv4.ip_local_port_range of {}, from {}",
                        ctx.label,
                        ctx.sources
                            .iter()
                            .map(|s| s.split(" (").next().unwrap_or(s))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            pipeline_host = Some(host);
        }
        let mut pipeline = Pipeline::new(options).keep_connections(keep);
        if let Some(h) = pipeline_host {
            pipeline = pipeline.host_info(h);
        }
        self.run(pipeline)
    }
}

impl AnalyzeArgs {
    /// The host information for this run: the files named by --host-info
    /// (a bad one is a usage error), else CAPTURE.host.json beside each
    /// capture (a bad one is reported and left out: the capture is still
    /// analysed).
    fn host_report(&self) -> Result<Option<timewait::host::HostReport>> {
        use timewait::host::{HostReport, combine, parse::read_file};
        if self.no_host_info {
            return Ok(None);
        }
        let mut inputs = Vec::new();
        let mut warnings = Vec::new();
        if self.host_info.is_empty() {
            for f in self.input.files.iter().filter(|f| *f != "-") {
                let p = std::path::PathBuf::from(format!("{f}.host.json"));
                if !p.is_file() {
                    continue;
                }
                match read_file(&p) {
                    Ok(input) => inputs.push((p.display().to_string(), input)),
                    Err(e) => {
                        eprintln!("timewait: {e}; analysing the capture without it");
                        warnings.push(e.to_string());
                    }
                }
            }
        } else {
            for p in &self.host_info {
                let input = read_file(p).context("--host-info")?;
                inputs.push((p.display().to_string(), input));
            }
        }
        if inputs.is_empty() && warnings.is_empty() {
            return Ok(None);
        }
        Ok(Some(HostReport {
            hosts: combine(inputs),
            port_range: None,
            warnings,
        }))
    }
}

/// The file a capture command writes: tcpdump's, dumpcap's and tshark's
/// `-w FILE` (or `-wFILE`); none for `-w -`.
fn capture_output(command: &[String]) -> Option<String> {
    let mut it = command.iter().skip(1);
    while let Some(a) = it.next() {
        let file = if a == "-w" {
            it.next().cloned()
        } else {
            a.strip_prefix("-w").map(str::to_string)
        };
        if let Some(f) = file
            && f != "-"
        {
            return Some(f);
        }
    }
    None
}

/// `timewait collect`: one snapshot, or two around a capture command.
fn collect(args: &CollectArgs) -> Result<ExitCode> {
    use timewait::host::{Collected, SCHEMA, snapshot};
    let write = |value: &dyn erased::Json, out: Option<&std::path::Path>| -> Result<()> {
        match out {
            Some(p) if p != std::path::Path::new("-") => {
                let mut f = BufWriter::new(
                    File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
                );
                value.write(&mut f)?;
                f.flush()?;
            }
            _ => {
                let mut o = io::stdout().lock();
                value.write(&mut o)?;
                o.flush()?;
            }
        }
        Ok(())
    };
    if args.snapshot || args.command.is_empty() {
        if !args.snapshot {
            bail!(
                "collect needs a capture command after `--` (timewait collect -- tcpdump -i eth0 \
                 -w dump.pcap), or --snapshot"
            );
        }
        let snap = snapshot::take()?;
        write(&snap, args.output.as_deref())?;
        return Ok(ExitCode::SUCCESS);
    }
    let output = match (&args.output, capture_output(&args.command)) {
        (Some(o), _) => o.clone(),
        (None, Some(capture)) => std::path::PathBuf::from(format!("{capture}.host.json")),
        (None, None) => bail!(
            "cannot tell where the capture goes (no `-w FILE` in the command): name the host \
             file with -o"
        ),
    };
    // Fail before the capture rather than after it.
    File::create(&output).with_context(|| format!("cannot create {}", output.display()))?;
    let before = snapshot::take()?;
    // Ctrl-C reaches the capture command too (same process group): it ends
    // the capture; timewait stays to take the second snapshot. The command
    // gets the default disposition back when it is executed.
    let _ = ctrlc::set_handler(|| {});
    let status = match std::process::Command::new(&args.command[0])
        .args(&args.command[1..])
        .status()
    {
        Ok(s) => s,
        Err(e) => {
            // Leave no empty host file behind.
            if std::fs::metadata(&output).is_ok_and(|m| m.is_file() && m.len() == 0) {
                let _ = std::fs::remove_file(&output);
            }
            return Err(e).with_context(|| format!("cannot run {}", args.command[0]));
        }
    };
    let after = snapshot::take()?;
    let collected = Collected {
        schema: SCHEMA.to_string(),
        command: args.command.clone(),
        exit_code: status.code(),
        before,
        after,
    };
    write(&collected, Some(&output))?;
    eprintln!(
        "timewait: host snapshots before and after the capture in {}",
        output.display()
    );
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(0), _) => ExitCode::SUCCESS,
        (Some(c), _) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        (None, Some(sig)) => ExitCode::from(128u8.saturating_add(sig as u8)),
        (None, None) => ExitCode::from(1),
    })
}

/// Writes either kind of host file as pretty JSON.
mod erased {
    pub trait Json {
        fn write(&self, out: &mut dyn std::io::Write) -> std::io::Result<()>;
    }
    impl<T: serde::Serialize> Json for T {
        fn write(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
            serde_json::to_writer_pretty(&mut *out, self)?;
            out.write_all(b"\n")
        }
    }
}
