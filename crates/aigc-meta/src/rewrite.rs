//! A rewrite of a file as a list of kept input ranges and new bytes, so large payloads are
//! streamed from the input (often a memory map) instead of copied through memory.

use std::io::{self, Write};
use std::ops::Range;

/// One piece of an output file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// These bytes of the input, unchanged.
    Keep(Range<usize>),
    /// New bytes.
    Insert(Vec<u8>),
}

/// An output file described against its input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewrite {
    pieces: Vec<Piece>,
}

impl Rewrite {
    /// An empty rewrite.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps `range` of the input; adjacent kept ranges merge.
    pub fn keep(&mut self, range: Range<usize>) -> &mut Self {
        if range.is_empty() {
            return self;
        }
        if let Some(Piece::Keep(last)) = self.pieces.last_mut()
            && last.end == range.start
        {
            last.end = range.end;
            return self;
        }
        self.pieces.push(Piece::Keep(range));
        self
    }

    /// Appends new bytes; adjacent insertions merge.
    pub fn insert(&mut self, bytes: impl AsRef<[u8]>) -> &mut Self {
        let bytes = bytes.as_ref();
        if bytes.is_empty() {
            return self;
        }
        if let Some(Piece::Insert(last)) = self.pieces.last_mut() {
            last.extend_from_slice(bytes);
            return self;
        }
        self.pieces.push(Piece::Insert(bytes.to_vec()));
        self
    }

    /// The pieces in order.
    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// Length of the output in bytes.
    pub fn len(&self) -> usize {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Keep(r) => r.len(),
                Piece::Insert(b) => b.len(),
            })
            .sum()
    }

    /// Whether the output is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of input bytes kept verbatim.
    pub fn kept_bytes(&self) -> usize {
        self.pieces
            .iter()
            .map(|p| if let Piece::Keep(r) = p { r.len() } else { 0 })
            .sum()
    }

    /// Writes the output, reading kept ranges from `input`.
    pub fn write_to(&self, input: &[u8], out: &mut impl Write) -> io::Result<()> {
        for p in &self.pieces {
            match p {
                Piece::Keep(r) => out.write_all(input.get(r.clone()).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "rewrite keeps a range past the end of its input",
                    )
                })?)?,
                Piece::Insert(b) => out.write_all(b)?,
            }
        }
        Ok(())
    }

    /// The output as one buffer.
    pub fn to_vec(&self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        // Writing into a Vec cannot fail except for a range past the input, which carriers never build.
        let _ = self.write_to(input, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_merge_and_render() {
        let input = b"0123456789";
        let mut r = Rewrite::new();
        r.keep(0..3)
            .keep(3..5)
            .insert(b"ab")
            .insert(b"c")
            .keep(8..10)
            .keep(10..10);
        assert_eq!(r.pieces().len(), 3);
        assert_eq!(r.to_vec(input), b"01234abc89");
        assert_eq!(r.len(), 10);
        assert_eq!(r.kept_bytes(), 7);
    }
}
