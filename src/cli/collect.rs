//! `timewait collect`: host snapshots around a capture command.

use super::{CollectArgs, Outcome};
use anyhow::{Context, Result, bail};
use std::fs::File;
use std::io::{self, BufWriter, Write};

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
pub(super) fn run(args: &CollectArgs) -> Result<Outcome> {
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
        return Ok(Outcome::Clean);
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
        (Some(0), _) => Outcome::Clean,
        (Some(c), _) => Outcome::Code(u8::try_from(c).unwrap_or(1)),
        (None, Some(sig)) => Outcome::Code(128u8.saturating_add(sig as u8)),
        (None, None) => Outcome::Code(1),
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
