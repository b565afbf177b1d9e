//! Shared helpers: fixture paths, tshark's truth files, the kernel's
//! socket snapshots, and running the binary.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use timewait::analysis::{Analysis, Options, analyze};

/// The fixtures folder: the committed one, or `TIMEWAIT_FIXTURES` to run
/// the same checks on captures freshly re-made by the fixture scripts
/// (`cp -r fixtures /tmp/fx && sudo bash /tmp/fx/make-all-*.sh`).
pub fn fixtures_dir() -> PathBuf {
    std::env::var_os("TIMEWAIT_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures"))
}

pub fn fixture(name: &str) -> PathBuf {
    fixtures_dir().join(name)
}

/// Every capture under fixtures/ that has a tshark truth file beside it.
pub fn fixtures_with_truth() -> Vec<(String, PathBuf)> {
    let dir = fixtures_dir();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("fixtures dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if let Some(stem) = name
            .strip_suffix(".pcapng")
            .or_else(|| name.strip_suffix(".pcap"))
            && dir.join(format!("{stem}.tshark.tsv")).exists()
        {
            out.push((stem.to_string(), path));
        }
    }
    out.sort();
    out
}

pub fn analyze_file(path: &Path) -> Analysis {
    let f = std::fs::File::open(path).expect("open fixture");
    analyze(&path.display().to_string(), f, &Options::default()).expect("fixture is readable")
}

/// One row of `<name>.tshark.tsv` (see fixtures/README.md).
#[derive(Debug, Clone)]
pub struct TsharkFrame {
    pub frame: u64,
    pub stream: Option<u32>,
    pub flags: u16,
    pub src: String,
    pub dst: String,
    pub seq: u32,
    pub ack: u32,
    pub len: u32,
    /// TSval as tshark prints it (empty without timestamps).
    pub tsval: String,
    pub retransmission: bool,
}

impl TsharkFrame {
    pub fn syn(&self) -> bool {
        self.flags & 0x02 != 0
    }
    pub fn fin(&self) -> bool {
        self.flags & 0x01 != 0
    }
    pub fn rst(&self) -> bool {
        self.flags & 0x04 != 0
    }
    pub fn ack_flag(&self) -> bool {
        self.flags & 0x10 != 0
    }
}

fn endpoint(ip4: &str, ip6: &str, port: &str) -> String {
    if !ip4.is_empty() {
        format!("{ip4}:{port}")
    } else {
        format!("[{ip6}]:{port}")
    }
}

pub fn tshark_truth(stem: &str) -> Vec<TsharkFrame> {
    let text = std::fs::read_to_string(fixture(&format!("{stem}.tshark.tsv"))).expect("truth file");
    let mut rows = Vec::new();
    for line in text.lines().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        let get = |i: usize| c.get(i).copied().unwrap_or("");
        let stream = get(1).parse().ok();
        rows.push(TsharkFrame {
            frame: get(0).parse().expect("frame number"),
            stream,
            flags: u16::from_str_radix(get(2).trim_start_matches("0x"), 16).unwrap_or(0),
            src: endpoint(get(3), get(4), get(5)),
            dst: endpoint(get(6), get(7), get(8)),
            seq: get(9).parse().unwrap_or(0),
            ack: get(10).parse().unwrap_or(0),
            len: get(11).parse().unwrap_or(0),
            tsval: get(12).to_string(),
            retransmission: !get(13).is_empty(),
        });
    }
    rows
}

/// Frames of each tshark stream, in order.
pub fn streams(rows: &[TsharkFrame]) -> BTreeMap<u32, Vec<&TsharkFrame>> {
    let mut m: BTreeMap<u32, Vec<&TsharkFrame>> = BTreeMap::new();
    for r in rows {
        if let Some(s) = r.stream {
            m.entry(s).or_default().push(r);
        }
    }
    m
}

/// The kernel's TIME-WAIT sockets after the traffic: (local, peer).
pub fn kernel_time_wait(stem: &str) -> Option<BTreeSet<(String, String)>> {
    let text = std::fs::read_to_string(fixture(&format!("{stem}.kernel.tsv"))).ok()?;
    Some(
        text.lines()
            .skip(1)
            .filter_map(|l| {
                let c: Vec<&str> = l.split('\t').collect();
                (c.len() >= 5 && c[1] == "socket" && c[2] == "TIME-WAIT")
                    .then(|| (c[3].to_string(), c[4].to_string()))
            })
            .collect(),
    )
}

/// A counter from `<name>.kernel.tsv`: `namespace nstat COUNTER VALUE`.
pub fn kernel_counter(stem: &str, namespace: &str, counter: &str) -> Option<i64> {
    let text = std::fs::read_to_string(fixture(&format!("{stem}.kernel.tsv"))).ok()?;
    text.lines().find_map(|l| {
        let c: Vec<&str> = l.split('\t').collect();
        (c.len() >= 4 && c[0] == namespace && c[2] == counter)
            .then(|| c[3].parse().ok())
            .flatten()
    })
}

pub fn timewait(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_timewait"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run timewait")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A classic little-endian µs pcap header with this snaplen and link type.
pub fn pcap_header(snaplen: u32, link: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&snaplen.to_le_bytes());
    h.extend_from_slice(&link.to_le_bytes());
    h
}

/// One TCP segment being built, for [`many_connections`].
type Tcp = etherparse::PacketBuilderStep<etherparse::TcpHeader>;

/// A pcap of `n` short connections from many clients, interleaved in
/// pairs, closed by alternating sides: several reader batches long.
pub fn many_connections(n: u32) -> Vec<u8> {
    let mut out = pcap_header(65535, 1);
    let mut usec: u64 = 0;
    let mut push = |out: &mut Vec<u8>, b: Tcp, payload: &[u8]| {
        let mut frame = Vec::new();
        b.write(&mut frame, payload).unwrap();
        usec += 700;
        out.extend_from_slice(&((usec / 1_000_000) as u32 + 1_700_000_000).to_le_bytes());
        out.extend_from_slice(&((usec % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    };
    let server = [10, 0, 0, 1];
    for i in 0..n {
        let client = [10, 1, (i % 200) as u8, 2];
        let port = 30000 + (i % 30000) as u16;
        let (c, s) = (1000 * i, 5000 * i);
        let tcp = |from_client: bool, seq: u32, ack: u32| {
            let (src, dst, sp, dp) = if from_client {
                (client, server, port, 80)
            } else {
                (server, client, 80, port)
            };
            etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4(src, dst, 64)
                .tcp(sp, dp, seq, 1000)
                .ack(ack)
        };
        let client_closes = i % 3 != 0;
        push(
            &mut out,
            etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4(client, server, 64)
                .tcp(port, 80, c, 1000)
                .syn(),
            &[],
        );
        push(&mut out, tcp(false, s, c + 1).syn(), &[]);
        push(&mut out, tcp(true, c + 1, s + 1), &[]);
        push(&mut out, tcp(true, c + 1, s + 1).psh(), b"GET");
        push(&mut out, tcp(false, s + 1, c + 4).psh(), b"OK");
        if client_closes {
            push(&mut out, tcp(true, c + 4, s + 3).fin(), &[]);
            push(&mut out, tcp(false, s + 3, c + 5).fin(), &[]);
            push(&mut out, tcp(true, c + 5, s + 4), &[]);
        } else {
            push(&mut out, tcp(false, s + 3, c + 4).fin(), &[]);
            push(&mut out, tcp(true, c + 4, s + 4).fin(), &[]);
            push(&mut out, tcp(false, s + 4, c + 5), &[]);
        }
    }
    out
}

/// Writes `bytes` to a file of this name in a directory of this test run.
pub fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("timewait-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Asserts that `md` is GitHub-flavoured Markdown that renders as meant,
/// by a real GFM renderer (comrak): every table written renders as a
/// table, `<details>` and code fences pair up, no table row leaks into a
/// paragraph, and the verdict is the heading.
pub fn assert_valid_gfm(md: &str, what: &str) {
    let mut options = comrak::Options::default();
    options.extension.table = true;
    options.render.r#unsafe = true; // keep <details>
    let html = comrak::markdown_to_html(md, &options);
    let tables_written = md.lines().filter(|l| l.starts_with("|--")).count();
    assert_eq!(
        html.matches("<table>").count(),
        tables_written,
        "{what}: every table renders as a table"
    );
    assert_eq!(
        md.matches("<details>").count(),
        md.matches("</details>").count(),
        "{what}: unbalanced details"
    );
    assert_eq!(
        html.matches("<details>").count(),
        md.matches("<details>").count(),
        "{what}"
    );
    assert_eq!(
        md.matches("```").count() % 2,
        0,
        "{what}: unbalanced fences"
    );
    assert_eq!(
        html.matches("<pre><code>").count(),
        md.matches("```").count() / 2,
        "{what}: code blocks"
    );
    assert!(!html.contains("<p>|"), "{what}: a table row in a paragraph");
    assert!(html.starts_with("<h3>timewait: "), "{what}");
}

/// Connection ids from their numbers (`tcp.stream`), to compare with a
/// finding's list.
pub fn ids(v: &[u32]) -> Vec<timewait::track::ConnId> {
    v.iter().copied().map(timewait::track::ConnId).collect()
}
