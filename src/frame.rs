//! Frame references over several files.
//!
//! Wireshark numbers frames per file (`frame.number`), so with rotated
//! `tcpdump -C/-G` files "frame 19" means nothing until the file is named.
//! Inside the pipeline a frame is therefore one [`FrameId`] (a `u64`) that
//! carries both: the file's index (into `captures[]`) in the bits above
//! [`FILE_SHIFT`], Wireshark's frame number below. For the first file (and so for every
//! single-file run) the two are the same number. Comparing and sorting
//! these ids follows the timeline across files (a later file's frames sort
//! after an earlier file's), which plain per-file numbers would not.
//! Reports split them again ([`FrameId::split`]) before anyone reads a
//! frame number.

/// Bits of Wireshark's frame number: 2^40 records is far more than any
/// file holds (each record takes at least 16 bytes of header).
pub const FILE_SHIFT: u32 = 40;

const LOCAL_MASK: u64 = (1 << FILE_SHIFT) - 1;

/// A frame inside the pipeline: the file's index above [`FILE_SHIFT`],
/// Wireshark's frame number below (see the module). A type of its own so
/// that an id and a plain per-file number (or a connection id, or a
/// count) cannot be passed for each other: only [`FrameId::local`] and
/// [`FrameId::split`] give the per-file number, and nothing serializes an
/// id by accident (it has no `Serialize`; records choose
/// [`serialize_local`]). `Display` is the form of a finding's prose:
/// `19` in the first file, `1:19` in a later one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FrameId(pub u64);

impl FrameId {
    /// The frame id of Wireshark's frame `local` in file `capture`.
    pub fn new(capture: u32, local: u64) -> FrameId {
        FrameId((u64::from(capture) << FILE_SHIFT) | (local & LOCAL_MASK))
    }

    /// `(file index, Wireshark's frame number)` of the frame.
    pub fn split(self) -> (u32, u64) {
        ((self.0 >> FILE_SHIFT) as u32, self.0 & LOCAL_MASK)
    }

    /// Wireshark's frame number of the frame (its number inside its file).
    pub fn local(self) -> u64 {
        self.0 & LOCAL_MASK
    }

    /// `19` with one file, `1:19` (file index, frame) with several, as
    /// `conns` and every report print it.
    pub fn label(self, several_files: bool) -> String {
        let (file, frame) = self.split();
        if several_files {
            format!("{file}:{frame}")
        } else {
            frame.to_string()
        }
    }
}

/// The frame inside a finding's prose: `19` in the first file, `1:19` in a
/// later one (a note cannot know how many files were read; the first
/// file's numbers are Wireshark's as they are).
impl std::fmt::Display for FrameId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (file, frame) = self.split();
        if file == 0 {
            write!(f, "{frame}")
        } else {
            write!(f, "{file}:{frame}")
        }
    }
}

/// The ids of the first file's frames `numbers` (tests write frames as
/// Wireshark's numbers).
#[cfg(test)]
pub(crate) fn frames(numbers: &[u64]) -> Vec<FrameId> {
    numbers.iter().map(|&n| FrameId(n)).collect()
}

/// Serializes a frame id as Wireshark's frame number (the JSON contract's
/// frames are per file; `capture` says which).
pub fn serialize_local<S: serde::Serializer>(id: &FrameId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(id.local())
}

/// [`serialize_local`] for an optional frame.
pub fn serialize_local_opt<S: serde::Serializer>(
    id: &Option<FrameId>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => s.serialize_some(&id.local()),
        None => s.serialize_none(),
    }
}

/// [`serialize_local`] for a list of frames.
pub fn serialize_local_list<S: serde::Serializer, L: AsRef<[FrameId]>>(
    ids: &L,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(ids.as_ref().iter().map(|id| id.local()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_the_file_and_sort_along_the_timeline() {
        assert_eq!(FrameId::new(0, 19), FrameId(19));
        assert_eq!(FrameId::new(3, 19).split(), (3, 19));
        assert_eq!(FrameId::new(3, 19).local(), 19);
        // Frame 2 of the second file comes after frame 900 of the first.
        assert!(FrameId::new(1, 2) > FrameId::new(0, 900));
        assert_eq!(FrameId::new(1, 7).label(true), "1:7");
        assert_eq!(FrameId::new(0, 7).label(false), "7");
        assert_eq!(FrameId::new(0, 7).label(true), "0:7");
        // Prose: the first file's numbers as they are.
        assert_eq!(FrameId::new(0, 7).to_string(), "7");
        assert_eq!(format!("frame {}", FrameId::new(2, 7)), "frame 2:7");
    }

    #[test]
    fn json_shows_the_number_inside_the_file() {
        #[derive(serde::Serialize)]
        struct R {
            #[serde(serialize_with = "serialize_local")]
            f: FrameId,
            #[serde(serialize_with = "serialize_local_opt")]
            o: Option<FrameId>,
            #[serde(serialize_with = "serialize_local_list")]
            l: Vec<FrameId>,
        }
        let r = R {
            f: FrameId::new(2, 5),
            o: Some(FrameId::new(1, 6)),
            l: vec![FrameId::new(0, 1), FrameId::new(4, 2)],
        };
        assert_eq!(
            serde_json::to_value(r).unwrap(),
            serde_json::json!({"f": 5, "o": 6, "l": [1, 2]})
        );
    }
}
