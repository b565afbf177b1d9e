//! The pipeline's stages only look down (docs/design.md): capture →
//! decode → track → detect → analysis → report. A stage that names a
//! higher one makes a cycle the next change has to work around.

use std::path::Path;

/// Every `crate::NAME` a stage's source files mention (test-only files
/// excepted: packet-built scenarios drive the whole pipeline).
fn named_by(stage: &str) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(stage);
    let mut out = Vec::new();
    let mut dirs = vec![root];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if name == "scenarios.rs" || name == "tests.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            for (i, _) in text.match_indices("crate::") {
                let rest = &text[i + 7..];
                let m: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                out.push((name.clone(), m));
            }
        }
    }
    out
}

#[test]
fn lower_stages_never_name_higher_ones() {
    let order = ["capture", "decode", "track", "detect", "analysis", "report"];
    let above = |stage: &str| -> Vec<&str> {
        let i = order.iter().position(|s| *s == stage).unwrap();
        let mut v: Vec<&str> = order[i + 1..].to_vec();
        v.push("host");
        v
    };
    for stage in ["capture", "decode", "track", "detect"] {
        let higher = above(stage);
        for (file, named) in named_by(stage) {
            assert!(
                !higher.contains(&named.as_str()),
                "src/{stage}/{file} names crate::{named}, a stage above it"
            );
        }
    }
}
