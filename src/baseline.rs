//! Comparing a run with an earlier JSON report of the same capture, so CI
//! fails only on findings that are new. Findings are matched by kind, host
//! and connections — never by wording, which may improve between versions.

use crate::detect::{Finding, Severity};
use serde_json::Value;
use std::collections::BTreeSet;

/// What identifies a finding across runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FindingKey {
    pub kind: String,
    pub host: Option<String>,
    pub connections: Vec<u64>,
}

impl FindingKey {
    pub fn of(f: &Finding) -> FindingKey {
        FindingKey {
            kind: f.kind.as_str().to_string(),
            host: f.host.clone(),
            connections: f.connections.iter().map(|c| u64::from(c.0)).collect(),
        }
    }

    fn from_json(v: &Value) -> Option<(FindingKey, String)> {
        let kind = v.get("kind")?.as_str()?.to_string();
        let host = v.get("host").and_then(Value::as_str).map(str::to_string);
        let connections = v
            .get("connections")?
            .as_array()?
            .iter()
            .filter_map(Value::as_u64)
            .collect();
        let severity = v
            .get("severity")
            .and_then(Value::as_str)
            .unwrap_or("info")
            .to_string();
        Some((
            FindingKey {
                kind,
                host,
                connections,
            },
            severity,
        ))
    }
}

impl std::fmt::Display for FindingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let conns: Vec<String> = self.connections.iter().map(u64::to_string).collect();
        write!(
            f,
            "{} {} (connections {})",
            self.kind,
            self.host.as_deref().unwrap_or("-"),
            conns.join(" ")
        )
    }
}

/// The difference between a baseline report and this run.
#[derive(Debug, Default)]
pub struct BaselineDiff<'a> {
    /// Findings of this run that the baseline does not have.
    pub new: Vec<&'a Finding>,
    /// Findings of the baseline this run no longer has, with their severity.
    pub gone: Vec<(FindingKey, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// The parser's message is the source, shown once after this one.
    #[error("not a timewait JSON report")]
    Json(#[from] serde_json::Error),
    #[error("not a timewait/1 report (no `findings` array)")]
    NotAReport,
}

/// Compares this run's findings with the baseline report's JSON text.
pub fn compare<'a>(
    findings: &'a [Finding],
    baseline_json: &str,
) -> Result<BaselineDiff<'a>, BaselineError> {
    let v: Value = serde_json::from_str(baseline_json)?;
    let old: Vec<(FindingKey, String)> = v
        .get("findings")
        .and_then(Value::as_array)
        .ok_or(BaselineError::NotAReport)?
        .iter()
        .filter_map(FindingKey::from_json)
        .collect();
    let old_keys: BTreeSet<&FindingKey> = old.iter().map(|(k, _)| k).collect();
    let now_keys: BTreeSet<FindingKey> = findings.iter().map(FindingKey::of).collect();
    Ok(BaselineDiff {
        new: findings
            .iter()
            .filter(|f| !old_keys.contains(&FindingKey::of(f)))
            .collect(),
        gone: old
            .into_iter()
            .filter(|(k, _)| !now_keys.contains(k))
            .collect(),
    })
}

/// Whether a run fails CI: any finding at or above `threshold`.
pub fn fails<'a>(findings: impl IntoIterator<Item = &'a Finding>, threshold: Severity) -> bool {
    findings.into_iter().any(|f| f.severity >= threshold)
}
