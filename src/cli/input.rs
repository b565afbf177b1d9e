//! Reading the inputs a command names: options from the flags, the files
//! in the order of their first packet, standard input, Ctrl-C.

use super::progress::{PROGRESS_MIN_BYTES, Progress};
use super::{ColorChoice, InputArgs};
use anyhow::{Context, Result, bail};
use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use timewait::analysis::{Analysis, Options, Pipeline, ProgressCounts, Retain};
use timewait::detect::Selection;
use timewait::report::TextStyle;

impl InputArgs {
    pub(super) fn options(&self) -> Result<Options> {
        if !(self.time_wait.is_finite() && self.time_wait > 0.0) {
            bail!("--time-wait must be a number of seconds above 0");
        }
        Ok(Options {
            time_wait_s: self.time_wait,
            port_range: self.port_range.unwrap_or(Options::default().port_range),
            findings: Selection::default(),
        })
    }

    pub(super) fn style(&self) -> TextStyle {
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
    pub(super) fn run_pipeline(
        &self,
        selection: Selection,
        retain: Retain<'_>,
    ) -> Result<(Analysis, bool)> {
        let mut options = self.options()?;
        options.findings = selection;
        self.run(Pipeline::new(options, retain))
    }

    /// Reads every input through `pipeline`.
    pub(super) fn run(&self, mut pipeline: Pipeline<'_>) -> Result<(Analysis, bool)> {
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

    /// The files in the order of their first packet (see
    /// [`timewait::capture::in_time_order`]), said on stderr when that is
    /// not the order given.
    fn in_time_order(&self) -> Vec<String> {
        let ordered = timewait::capture::in_time_order(&self.files);
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
