//! Compressed captures (`dump.pcap.gz`, `dump.pcap.zst`), detected by their
//! magic number like the capture formats, never by the file name, and
//! decompressed as a stream.

use std::io::{BufRead, BufReader, Read};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The buffer that holds the first bytes for the magic test. Reads of at
/// least its size from a plain input go straight to the file (std's
/// `BufReader` skips its buffer for them); the capture reader asks for
/// that much ([`super::reader`]'s `READ_BYTES`).
pub(super) const BUFFER_BYTES: usize = 256 << 10;

/// The input, decompressed when it starts with a gzip or zstd magic.
pub enum Input<R: Read> {
    Plain(BufReader<R>),
    /// gzip; several concatenated members read as one stream (`cat a.gz b.gz`).
    Gzip(Box<flate2::read::MultiGzDecoder<BufReader<R>>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, BufReader<R>>>),
}

impl<R: Read> Input<R> {
    pub fn new(input: R) -> std::io::Result<Input<R>> {
        let mut buf = BufReader::with_capacity(BUFFER_BYTES, input);
        // A pipe may deliver fewer bytes than a magic; fill_buf returns what
        // one read gave, which is enough to tell the three apart in practice
        // because all three magics are at least 2 bytes and the first read
        // of a pipe carries at least one block.
        let head = buf.fill_buf()?;
        Ok(if head.starts_with(&GZIP_MAGIC) {
            Input::Gzip(Box::new(flate2::read::MultiGzDecoder::new(buf)))
        } else if head.starts_with(&ZSTD_MAGIC) {
            Input::Zstd(Box::new(zstd::stream::read::Decoder::with_buffer(buf)?))
        } else {
            Input::Plain(buf)
        })
    }

    /// `gzip`, `zstd`, or none.
    pub fn compression(&self) -> Option<&'static str> {
        match self {
            Input::Plain(_) => None,
            Input::Gzip(_) => Some("gzip"),
            Input::Zstd(_) => Some("zstd"),
        }
    }
}

impl<R: Read> Read for Input<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Input::Plain(r) => r.read(buf),
            Input::Gzip(r) => r.read(buf),
            Input::Zstd(r) => r.read(buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const DATA: &[u8] = b"\xd4\xc3\xb2\xa1 not really a capture, but bytes";

    fn read_all(bytes: &[u8]) -> (Vec<u8>, Option<&'static str>) {
        let mut input = Input::new(bytes).unwrap();
        let kind = input.compression();
        let mut out = Vec::new();
        input.read_to_end(&mut out).unwrap();
        (out, kind)
    }

    #[test]
    fn plain_gzip_and_zstd_read_the_same_bytes() {
        assert_eq!(read_all(DATA), (DATA.to_vec(), None));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(DATA).unwrap();
        assert_eq!(
            read_all(&gz.finish().unwrap()),
            (DATA.to_vec(), Some("gzip"))
        );
        let zst = zstd::encode_all(DATA, 1).unwrap();
        assert_eq!(read_all(&zst), (DATA.to_vec(), Some("zstd")));
    }
}
