//! The `timewait` binary: parse flags, run, map the outcome to an exit code.

mod check;
mod cli;
mod man;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    share_malloc_arenas();
    let cli = match cli::Cli::try_parse_from(cli::args_with_default_command()) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not errors.
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // `timewait dump.pcap | head` closes the pipe early: not an error.
            if err.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("timewait: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Two malloc arenas for all threads, not one per thread. glibc gives
/// each thread that allocates an arena of its own (up to eight per core)
/// and keeps what is freed in an arena for that arena's threads. Ours hand
/// memory on: at the end, `analyze` builds the findings on two threads
/// while the detectors' state, freed as it is used, lies in the folding
/// thread's arena; in their own arenas the findings took fresh pages
/// beside the freed ones. On the 1 GB benchmark capture (4,006 churn
/// findings) the peak was then set there, not by the pass over the
/// capture, and varied from run to run: 47.8-50.0 MB over five runs,
/// 46.9-47.3 with two arenas, at the same speed (one arena: 46.7-47.0,
/// but the threads then wait on its lock). `MALLOC_ARENA_MAX`, when set,
/// still decides.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn share_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: sets one of glibc's malloc tunables, before any thread
        // of ours exists; no memory is touched.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn share_malloc_arenas() {}
