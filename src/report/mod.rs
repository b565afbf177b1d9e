//! Renderers: one per output format, each reading only the [`Analysis`].
//! Renderers format; they never compute verdicts.

mod json;
mod text;

pub use json::{render_connections_json, render_connections_ndjson, render_json};
pub use text::{TextStyle, render_connections_text, render_text};

use crate::analysis::Analysis;
use crate::time::Timestamp;

/// Seconds since the start of the capture, `+1.234 s` style, for text.
pub fn relative(analysis: &Analysis, ts: Timestamp) -> String {
    match analysis.origin() {
        Some(o) => format!("{:.3}", ts.secs_since(o)),
        None => "-".to_string(),
    }
}
