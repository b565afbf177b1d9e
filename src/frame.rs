//! Frame references over several files.
//!
//! Wireshark numbers frames per file (`frame.number`), so with rotated
//! `tcpdump -C/-G` files "frame 19" means nothing until the file is named.
//! Inside the pipeline a frame is therefore one `u64` that carries both:
//! the file's index (into `captures[]`) in the bits above [`FILE_SHIFT`],
//! Wireshark's frame number below. For the first file (and so for every
//! single-file run) the two are the same number. Comparing and sorting
//! these ids follows the timeline across files (a later file's frames sort
//! after an earlier file's), which plain per-file numbers would not.
//! Reports split them again ([`split`]) before anyone reads a frame number.

/// Bits of Wireshark's frame number: 2^40 records is far more than any
/// file holds (each record takes at least 16 bytes of header).
pub const FILE_SHIFT: u32 = 40;

const LOCAL_MASK: u64 = (1 << FILE_SHIFT) - 1;

/// The frame id of Wireshark's frame `local` in file `capture`.
pub fn frame_id(capture: u32, local: u64) -> u64 {
    (u64::from(capture) << FILE_SHIFT) | (local & LOCAL_MASK)
}

/// `(file index, Wireshark's frame number)` of a frame id.
pub fn split(id: u64) -> (u32, u64) {
    ((id >> FILE_SHIFT) as u32, id & LOCAL_MASK)
}

/// Wireshark's frame number of a frame id (its number inside its file).
pub fn local(id: u64) -> u64 {
    id & LOCAL_MASK
}

/// `19` with one file, `1:19` (file index, frame) with several, as `conns`
/// and every report print it.
pub fn label(id: u64, several_files: bool) -> String {
    let (file, frame) = split(id);
    if several_files {
        format!("{file}:{frame}")
    } else {
        frame.to_string()
    }
}

/// A frame id inside a finding's prose: `19` in the first file, `1:19`
/// in a later one (a note cannot know how many files were read; the first
/// file's numbers are Wireshark's as they are).
pub fn in_text(id: u64) -> String {
    let (file, frame) = split(id);
    if file == 0 {
        frame.to_string()
    } else {
        format!("{file}:{frame}")
    }
}

/// Serializes a frame id as Wireshark's frame number (the JSON contract's
/// frames are per file; `capture` says which).
pub fn serialize_local<S: serde::Serializer>(id: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(local(*id))
}

/// [`serialize_local`] for an optional frame.
pub fn serialize_local_opt<S: serde::Serializer>(
    id: &Option<u64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => s.serialize_some(&local(*id)),
        None => s.serialize_none(),
    }
}

/// [`serialize_local`] for a list of frames.
pub fn serialize_local_list<S: serde::Serializer, L: AsRef<[u64]>>(
    ids: &L,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(ids.as_ref().iter().map(|id| local(*id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_the_file_and_sort_along_the_timeline() {
        assert_eq!(frame_id(0, 19), 19);
        assert_eq!(split(frame_id(3, 19)), (3, 19));
        assert_eq!(local(frame_id(3, 19)), 19);
        // Frame 2 of the second file comes after frame 900 of the first.
        assert!(frame_id(1, 2) > frame_id(0, 900));
        assert_eq!(label(frame_id(1, 7), true), "1:7");
        assert_eq!(label(frame_id(0, 7), false), "7");
    }

    #[test]
    fn json_shows_the_number_inside_the_file() {
        #[derive(serde::Serialize)]
        struct R {
            #[serde(serialize_with = "serialize_local")]
            f: u64,
            #[serde(serialize_with = "serialize_local_opt")]
            o: Option<u64>,
            #[serde(serialize_with = "serialize_local_list")]
            l: Vec<u64>,
        }
        let r = R {
            f: frame_id(2, 5),
            o: Some(frame_id(1, 6)),
            l: vec![frame_id(0, 1), frame_id(4, 2)],
        };
        assert_eq!(
            serde_json::to_value(r).unwrap(),
            serde_json::json!({"f": 5, "o": 6, "l": [1, 2]})
        );
    }
}
