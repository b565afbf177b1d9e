//! The connection records of the JSON report, kept as the report writes
//! them: each record is serialized when it is retired, and the bytes wait
//! in memory up to a bound, then go to a temporary file as a run sorted by
//! id; the report merges the runs. Held as records, `connections[]` of a
//! 1 GB capture took 280 MB (about 520 bytes a connection for good), and
//! a day-long capture more than the machine has. A record whose TIME_WAIT
//! a new connection cuts after it was written ([`TimeWaitCut`]) has its
//! `time_wait` object written again when it is merged.

use crate::time::Timestamp;
use crate::track::{ConnId, ConnectionRecord, TimeWaitCut, TimeWaitRecord};
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};

/// Serialized records held in memory before a sorted run is written out:
/// the bound on what `connections[]` costs in memory, whatever the length
/// of the capture.
pub const SPILL_ABOVE: usize = 32 << 20;

/// Indentation of a record in the report (`connections` is a member of
/// the top object: the array at depth 1, its records at depth 2).
const INDENT: &[u8] = b"    ";

/// The records as they are retired: serialized, the latest in memory, the
/// rest in sorted runs in a temporary file.
pub(super) struct Store {
    spill_above: usize,
    /// Serialized records not yet in a run, and each one's id and range.
    bytes: Vec<u8>,
    index: Vec<(ConnId, u32, u32)>,
    file: Option<BufWriter<File>>,
    /// Each run's offset in the file and its number of records.
    runs: Vec<(u64, u64)>,
    written: u64,
    cuts: FxHashMap<ConnId, TimeWaitCut>,
    scratch: Vec<u8>,
    /// The first error of the temporary file; records after it are not
    /// stored, and the report fails with it.
    error: Option<io::Error>,
}

impl Store {
    pub(super) fn new(spill_above: usize) -> Store {
        Store {
            // Ranges in the buffer are kept in 32 bits.
            spill_above: spill_above.min(u32::MAX as usize / 2),
            bytes: Vec::new(),
            index: Vec::new(),
            file: None,
            runs: Vec::new(),
            written: 0,
            cuts: FxHashMap::default(),
            scratch: Vec::new(),
            error: None,
        }
    }

    pub(super) fn push(&mut self, record: &ConnectionRecord) {
        if self.error.is_some() {
            return;
        }
        let mut stored = serde_json::to_writer_pretty(&mut self.scratch, record);
        // Written out before the buffer would grow past its bound (a
        // doubling would take twice the bound).
        if stored.is_ok() && self.bytes.len() + 2 * self.scratch.len() > self.spill_above {
            stored = self.spill().map_err(serde_json::Error::io);
        }
        if let Err(e) = stored {
            self.error = Some(e.into());
            return;
        }
        if self.bytes.capacity() == 0 {
            self.bytes.reserve_exact(self.spill_above.min(SPILL_ABOVE));
        }
        let start = self.bytes.len();
        Indented {
            out: &mut self.bytes,
            by: INDENT,
        }
        .write_all(&self.scratch)
        .expect("writing to a vector");
        self.scratch.clear();
        let len = self.bytes.len() - start;
        self.index.push((record.id, start as u32, len as u32));
    }

    /// A record pushed before ends its TIME_WAIT at `cut.at` (applied when
    /// it is merged, as [`super::Pipeline::finish`] applies it to records
    /// it holds).
    pub(super) fn cut(&mut self, cut: TimeWaitCut) {
        self.cuts.insert(cut.id, cut);
    }

    /// Writes what is in memory as a run sorted by id.
    fn spill(&mut self) -> io::Result<()> {
        if self.index.is_empty() {
            return Ok(());
        }
        let file = match &mut self.file {
            Some(f) => f,
            None => self
                .file
                .insert(BufWriter::with_capacity(1 << 20, tempfile::tempfile()?)),
        };
        self.index.sort_unstable_by_key(|&(id, _, _)| id);
        for &(id, start, len) in &self.index {
            file.write_all(&id.0.to_le_bytes())?;
            file.write_all(&len.to_le_bytes())?;
            file.write_all(&self.bytes[start as usize..(start + len) as usize])?;
        }
        let run_bytes: u64 = self
            .index
            .iter()
            .map(|&(_, _, len)| 8 + u64::from(len))
            .sum();
        self.runs.push((self.written, self.index.len() as u64));
        self.written += run_bytes;
        self.index.clear();
        self.bytes.clear();
        Ok(())
    }

    pub(super) fn finish(mut self) -> Stored {
        let mut file = None;
        if self.error.is_none() {
            let done = if self.file.is_some() {
                self.spill()
            } else {
                self.index.sort_unstable_by_key(|&(id, _, _)| id);
                Ok(())
            };
            match done.and_then(|()| match self.file.take() {
                Some(f) => f.into_inner().map(Some).map_err(|e| e.into_error()),
                None => Ok(None),
            }) {
                Ok(f) => file = f,
                Err(e) => self.error = Some(e),
            }
        }
        Stored {
            bytes: self.bytes,
            index: self.index,
            file,
            runs: self.runs,
            cuts: self.cuts,
            error: self.error.map(|e| e.to_string()),
        }
    }
}

/// Every record pushed, sorted by id when written out
/// ([`Stored::write_array`]).
pub struct Stored {
    bytes: Vec<u8>,
    index: Vec<(ConnId, u32, u32)>,
    file: Option<File>,
    runs: Vec<(u64, u64)>,
    cuts: FxHashMap<ConnId, TimeWaitCut>,
    /// Why records could not be stored (the temporary file).
    error: Option<String>,
}

impl Stored {
    /// Records stored.
    pub fn len(&self) -> usize {
        self.index.len() + self.runs.iter().map(|&(_, n)| n as usize).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Why the records could not be stored, if they could not.
    pub fn check(&self) -> io::Result<()> {
        match &self.error {
            Some(e) => Err(io::Error::other(format!(
                "the connection records could not be kept in a temporary file in {} \
                 (TMPDIR): {e}",
                std::env::temp_dir().display()
            ))),
            None => Ok(()),
        }
    }

    /// The records as `serde_json::to_writer_pretty` writes a vector of
    /// them at depth 1 of a document (`[]` when there is none), by id.
    pub fn write_array(&self, out: &mut dyn Write) -> io::Result<()> {
        self.check()?;
        if self.is_empty() {
            return out.write_all(b"[]");
        }
        out.write_all(b"[")?;
        let mut first = true;
        let mut emit = |id: ConnId, bytes: &[u8], out: &mut dyn Write| -> io::Result<()> {
            out.write_all(if first { b"\n" } else { b",\n" })?;
            first = false;
            out.write_all(INDENT)?;
            match self.cuts.get(&id) {
                Some(cut) => out.write_all(&with_cut(bytes, cut)?),
                None => out.write_all(bytes),
            }
        };
        match &self.file {
            None => {
                for &(id, start, len) in &self.index {
                    emit(id, &self.bytes[start as usize..(start + len) as usize], out)?;
                }
            }
            Some(file) => {
                let mut runs: Vec<Run> = self
                    .runs
                    .iter()
                    .map(|&(offset, n)| Run::new(offset, n))
                    .collect();
                let mut heads = BinaryHeap::new();
                for (i, run) in runs.iter_mut().enumerate() {
                    if let Some(id) = run.next(file)? {
                        heads.push(Reverse((id, i)));
                    }
                }
                while let Some(Reverse((id, i))) = heads.pop() {
                    emit(id, &runs[i].record, out)?;
                    if let Some(next) = runs[i].next(file)? {
                        heads.push(Reverse((next, i)));
                    }
                }
            }
        }
        out.write_all(b"\n  ]")
    }
}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stored")
            .field("records", &self.len())
            .field("runs", &self.runs.len())
            .field("cuts", &self.cuts.len())
            .finish()
    }
}

/// One sorted run of the file, read a block at a time.
struct Run {
    /// Where the next read starts, and the records left to read.
    offset: u64,
    left: u64,
    buf: Vec<u8>,
    at: usize,
    /// The record last read.
    record: Vec<u8>,
}

/// Bytes read from a run at once: the merge holds one block per run.
const BLOCK: usize = 64 << 10;

impl Run {
    fn new(offset: u64, left: u64) -> Run {
        Run {
            offset,
            left,
            buf: Vec::new(),
            at: 0,
            record: Vec::new(),
        }
    }

    /// Reads the next record into `record`; its id, or None at the end.
    fn next(&mut self, file: &File) -> io::Result<Option<ConnId>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let mut head = [0u8; 8];
        self.take(file, &mut head)?;
        let id = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
        let len = u32::from_le_bytes(head[4..].try_into().expect("4 bytes")) as usize;
        let mut record = std::mem::take(&mut self.record);
        record.resize(len, 0);
        self.take(file, &mut record)?;
        self.record = record;
        Ok(Some(ConnId(id)))
    }

    fn take(&mut self, mut file: &File, into: &mut [u8]) -> io::Result<()> {
        let mut done = 0;
        while done < into.len() {
            if self.at == self.buf.len() {
                self.buf.resize(BLOCK, 0);
                file.seek(SeekFrom::Start(self.offset))?;
                let n = file.read(&mut self.buf)?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "a run of stored records ends early",
                    ));
                }
                self.buf.truncate(n);
                self.offset += n as u64;
                self.at = 0;
            }
            let n = (into.len() - done).min(self.buf.len() - self.at);
            into[done..done + n].copy_from_slice(&self.buf[self.at..self.at + n]);
            done += n;
            self.at += n;
        }
        Ok(())
    }
}

/// Writes what it is given with `by` after every newline: JSON written at
/// depth 0 as it would be deeper in a document (a JSON string holds no
/// raw newline, so every newline is the formatter's).
pub(super) struct Indented<'a> {
    pub(super) out: &'a mut dyn Write,
    pub(super) by: &'a [u8],
}

impl Write for Indented<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut lines = buf.split(|&b| b == b'\n');
        if let Some(first) = lines.next() {
            self.out.write_all(first)?;
        }
        for line in lines {
            self.out.write_all(b"\n")?;
            self.out.write_all(self.by)?;
            self.out.write_all(line)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A stored record with its TIME_WAIT cut: the `time_wait` object the
/// record was written with (the cut's interval, not yet reused) replaced
/// by the one the cut makes of it, as [`super::Pipeline::finish`] sets
/// `until` and `reused_by` on a record it holds.
fn with_cut(record: &[u8], cut: &TimeWaitCut) -> io::Result<Vec<u8>> {
    let object = |until: Timestamp, reused_by: Option<ConnId>| -> io::Result<Vec<u8>> {
        let tw = TimeWaitRecord {
            holder: cut.holder,
            from: Some(cut.from),
            until: Some(until),
            reused_by,
        };
        let mut out = b"\"time_wait\": ".to_vec();
        // The object sits at depth 3: its lines after the first indented
        // by six spaces.
        serde_json::to_writer_pretty(
            Indented {
                out: &mut out,
                by: b"      ",
            },
            &tw,
        )?;
        Ok(out)
    };
    let old = object(cut.until, None)?;
    let new = object(cut.at, Some(cut.reused_by))?;
    match find(record, &old) {
        Some(at) => {
            let mut out = Vec::with_capacity(record.len() + new.len());
            out.extend_from_slice(&record[..at]);
            out.extend_from_slice(&new);
            out.extend_from_slice(&record[at + old.len()..]);
            Ok(out)
        }
        // A record whose TIME_WAIT is not the interval the cut names: the
        // tracker makes no such cut.
        None => Err(io::Error::other(format!(
            "connection {}: its stored record has no TIME_WAIT from {:?} to {:?} to cut",
            cut.id.0, cut.from, cut.until
        ))),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Connections;
    use crate::track::Closer;
    use crate::track::connection_tests::taken_over;

    /// Records pushed out of id order, some of their TIME_WAITs cut after
    /// they were pushed, come out as the report writes the held records
    /// sorted by id with the cuts applied: in memory, and merged from runs
    /// of one record, of a few, and of many.
    #[test]
    fn stored_records_come_out_sorted_with_their_cuts() {
        let base = crate::track::connection_tests::client_closed_record();
        assert_eq!(base.time_wait.holder, Closer::Client);
        let from = base.time_wait.from.unwrap();
        let records: Vec<ConnectionRecord> = (0..300u32)
            .map(|i| {
                let mut r = base.clone();
                // Ids in a scrambled order.
                r.id = ConnId((i * 7_919) % 300);
                let start = from.add_secs(f64::from(r.id.0));
                r.time_wait.from = Some(start);
                r.time_wait.until = Some(start.add_secs(60.0));
                r
            })
            .collect();
        let cuts: Vec<TimeWaitCut> = records
            .iter()
            .filter(|r| r.id.0 % 7 == 3)
            .map(|r| {
                taken_over(
                    r,
                    r.time_wait.from.unwrap().add_secs(2.5),
                    ConnId(r.id.0 + 1_000),
                )
            })
            .collect();
        let mut held = records.clone();
        held.sort_by_key(|r| r.id);
        for cut in &cuts {
            let tw = &mut held[cut.id.0 as usize].time_wait;
            tw.until = Some(cut.at);
            tw.reused_by = Some(cut.reused_by);
        }
        let mut want = Vec::new();
        Connections::from(held).write_json(&mut want).unwrap();
        for spill_above in [usize::MAX, 1, 5_000, 200_000] {
            let mut store = Store::new(spill_above);
            for (i, r) in records.iter().enumerate() {
                store.push(r);
                // Each cut comes after its record.
                if let Some(c) = cuts.iter().find(|c| c.id == r.id)
                    && i % 2 == 0
                {
                    store.cut(*c);
                }
            }
            for (i, r) in records.iter().enumerate() {
                if let Some(c) = cuts.iter().find(|c| c.id == r.id)
                    && i % 2 == 1
                {
                    store.cut(*c);
                }
            }
            let stored = store.finish();
            assert_eq!(stored.len(), 300);
            assert_eq!(
                stored.runs.len() > 1,
                spill_above < 1_000_000,
                "{spill_above}"
            );
            let mut got = Vec::new();
            stored.write_array(&mut got).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "spilled above {spill_above} bytes"
            );
        }
    }
}
