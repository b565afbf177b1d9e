//! Command-line definitions (clap derive) and the dispatch to one function
//! per command (in the files beside this one). The only module that knows
//! clap; the library never sees a flag.

mod analyze;
mod collect;
mod conns;
mod input;
mod progress;
mod show;
mod timeline;

use anyhow::Result;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use timewait::analysis::Analysis;
use timewait::detect::{FindingKind, Severity};
use timewait::report;

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
    pub conn: timewait::track::ConnId,
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
    /// Colour of the text output (`analyze`: verdict and severities;
    /// `show`: client and server, SYN, FIN and RST; `timeline`: hosts and
    /// peaks): auto (only on a terminal, not with NO_COLOR), always,
    /// never. conns, JSON and Markdown are plain text.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Width in columns (default: the terminal's; when not on a terminal, text
    /// wraps at 100 and tables keep their natural width, as does `show`'s
    /// ladder). A ladder too wide for it puts its notes, then its labels, on
    /// lines of their own under a shorter arrow; it needs 46 columns.
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

/// Where every command writes its report: standard output, buffered (not
/// locked for the whole run: `conns --format ndjson` writes from a thread
/// of its own; BufWriter locks stdout once per 64 KiB).
pub(crate) type Out = BufWriter<io::Stdout>;

/// How a command ended, and so the exit code: 0 clean, 1 a finding at or
/// above `--fail-on` (or new against the baseline), 2 an input that could
/// not be read, or nothing readable at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Clean,
    FindingsFail,
    InputFailed,
    /// No input could be read: no report was written.
    NothingRead,
    /// A code of its own (`collect` passes the capture command's on).
    Code(u8),
}

impl Outcome {
    /// After reading: clean, or an input that failed.
    pub(crate) fn read(failed: bool) -> Outcome {
        if failed {
            Outcome::InputFailed
        } else {
            Outcome::Clean
        }
    }
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> ExitCode {
        match o {
            Outcome::Clean => ExitCode::SUCCESS,
            Outcome::FindingsFail => ExitCode::from(1),
            Outcome::InputFailed | Outcome::NothingRead => ExitCode::from(2),
            Outcome::Code(c) => ExitCode::from(c),
        }
    }
}

/// Not one input could be read (each was reported on stderr): there is
/// nothing to report.
pub(crate) fn nothing_read(a: &Analysis) -> bool {
    a.captures.iter().all(|c| c.format.is_none())
}

/// Runs the parsed command; returns the exit code.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let mut out: Out = BufWriter::with_capacity(1 << 16, io::stdout());
    let outcome = match cli.command {
        Command::Analyze(args) => analyze::run(&args, &mut out)?,
        Command::Conns(args) => conns::run(&args, &mut out)?,
        Command::Show(args) => show::run(&args, &mut out)?,
        Command::Timeline(args) => timeline::run(&args, &mut out)?,
        Command::Collect(args) => collect::run(&args)?,
        Command::Check(args) => crate::check::run(&args, &mut out)?,
        Command::Explain(args) => explain(&args, &mut out)?,
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "timewait", &mut out);
            Outcome::Clean
        }
        Command::Man => {
            crate::man::render(&mut out)?;
            Outcome::Clean
        }
    };
    out.flush()?;
    Ok(outcome.into())
}

/// `timewait explain [KIND]`.
fn explain(args: &ExplainArgs, out: &mut Out) -> Result<Outcome> {
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
    Ok(Outcome::Clean)
}
