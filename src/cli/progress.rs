//! The progress bar on stderr while a large input is read.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use timewait::analysis::ProgressCounts;

/// Inputs smaller than this are read without a progress bar.
pub(super) const PROGRESS_MIN_BYTES: u64 = 50 << 20;

/// Counts the bytes read from a file into a progress bar on stderr, with
/// the packets and connections the pipeline has seen so far; the bar is
/// cleared when the file has been read.
pub(super) struct Progress<R> {
    pub(super) inner: R,
    pub(super) bar: indicatif::ProgressBar,
    pub(super) counts: Arc<ProgressCounts>,
    /// The bar is hidden until this many bytes were read (0: shown).
    pub(super) show_after: u64,
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
