//! `timewait man`: one manual page for the whole program. clap_mangen's
//! default page lists the sub-commands as `timewait-analyze(1)` pages that
//! nothing makes; here every sub-command gets a section of this page with
//! its synopsis, its options and its examples.

use clap::CommandFactory;
use std::io::{self, Write};

pub fn render(out: &mut dyn Write) -> io::Result<()> {
    let cmd = crate::cli::Cli::command();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    writeln!(out, ".SH COMMANDS")?;
    writeln!(
        out,
        "Each command is described below; \\fBtimewait FILE\\fR means \\fBtimewait analyze FILE\\fR."
    )?;
    for sub in cmd.get_subcommands() {
        let name = sub.get_name();
        let full = format!("timewait {name}");
        let sub = sub.clone().bin_name(&full);
        writeln!(out, ".SH \"{}\"", full.to_uppercase())?;
        let man = clap_mangen::Man::new(sub);
        let mut part = Vec::new();
        man.render_description_section(&mut part)?;
        man.render_synopsis_section(&mut part)?;
        man.render_options_section(&mut part)?;
        man.render_extra_section(&mut part)?;
        out.write_all(demote(&String::from_utf8_lossy(&part)).as_bytes())?;
    }
    let mut extra = Vec::new();
    man.render_extra_section(&mut extra)?;
    let extra = String::from_utf8_lossy(&extra).replace(".SH EXTRA", ".SH EXAMPLES");
    out.write_all(extra.as_bytes())?;
    man.render_version_section(out)?;
    Ok(())
}

/// A sub-command's sections become sub-sections of its own section, and
/// the string definitions each rendering starts with are left out (the
/// page's title already made them).
fn demote(roff: &str) -> String {
    let mut out = String::new();
    for line in roff.lines() {
        if line.starts_with(".ie \\n(.g") || line.starts_with(".el .ds Aq") {
            continue;
        }
        if let Some(title) = line.strip_prefix(".SH ") {
            let title = match title {
                "EXTRA" => "Examples",
                "DESCRIPTION" => continue,
                "SYNOPSIS" => "Synopsis",
                "OPTIONS" => "Options",
                other => other,
            };
            out.push_str(&format!(".SS {title}\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}
