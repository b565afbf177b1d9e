//! `timewait analyze`: the verdict, findings and tables of a capture, its
//! exit code for CI (`--fail-on`, `--baseline`), and host information.

use super::{AnalyzeArgs, FailOn, InputArgs, Out, Outcome, ReportFormat, nothing_read};
use anyhow::{Context, Result};
use std::io::Write;
use timewait::analysis::{Analysis, Pipeline, Retain};
use timewait::baseline;
use timewait::detect::{Selection, Severity};
use timewait::report;

pub(super) fn run(args: &AnalyzeArgs, out: &mut Out) -> Result<Outcome> {
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
            baseline::compare(&[], &text).with_context(|| format!("--baseline {}", p.display()))?;
            Some(text)
        }
        None => None,
    };
    let renderer: Box<dyn report::Render> = match args.format {
        ReportFormat::Text => Box::new(report::Text(args.input.style())),
        ReportFormat::Json => Box::new(report::Json),
        ReportFormat::Markdown => Box::new(report::Markdown {
            max_chars: (args.max_chars > 0).then_some(args.max_chars),
        }),
    };
    let host = args.host_report()?;
    let (analysis, failed) = args
        .input
        .run_with_host(selection, renderer.retain(), host)?;
    if nothing_read(&analysis) {
        return Ok(Outcome::NothingRead);
    }
    renderer.render(&analysis, out)?;
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
    // The process ends with this command: its report is not freed piece
    // by piece (thousands of findings with their rows and strings on a
    // busy capture, 8 ms of the last, single-threaded part of a 1 GB run).
    std::mem::forget(analysis);
    Ok(if failed {
        Outcome::InputFailed
    } else if findings_fail {
        Outcome::FindingsFail
    } else {
        Outcome::Clean
    })
}

impl InputArgs {
    /// `analyze` with host information: the port range defaults to the
    /// host's, and the findings are checked against its counters.
    fn run_with_host(
        &self,
        selection: Selection,
        retain: Retain<'_>,
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
        let mut pipeline = Pipeline::new(options, retain);
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
