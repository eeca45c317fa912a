//! Line numbers as an editor shows them, counted as a registry export
//! passes to the CSV reader, so that a problem row is told by the line the
//! POC finds it on.

use std::collections::VecDeque;
use std::io::Read;

/// Counts lines as the text passes to the CSV reader, so that a record's
/// byte offset can be told as the line an editor shows: CRLF, LF and a lone
/// CR each end one line (the csv crate's own count was one low after a CRLF
/// header and left out blank lines). It keeps only the lines the reader has
/// read ahead of the record last asked about. It also counts the stray
/// control characters that tell a binary file.
pub(super) struct LineCounter<R> {
    inner: R,
    /// Bytes passed through so far.
    pub(super) offset: u64,
    /// The line the next byte is on.
    line: u64,
    /// The last byte passed was a CR, so an LF next ends no line.
    after_cr: bool,
    /// The last byte passed was 0xC2, which starts a C1 control if the next
    /// is 0x80 to 0x9F.
    after_c2: bool,
    /// Each line read ahead that has something on it: where that starts,
    /// where the line ends (u64::MAX while it goes on) and its number.
    lines: VecDeque<(u64, u64, u64)>,
    pub(super) controls: u64,
}

impl<R> LineCounter<R> {
    pub(super) fn new(inner: R) -> Self {
        Self {
            inner,
            offset: 0,
            line: 1,
            after_cr: false,
            after_c2: false,
            lines: VecDeque::new(),
            controls: 0,
        }
    }

    /// The line of a record starting at byte `offset`; offsets are asked in
    /// order. The csv crate starts a record after blank lines at the first
    /// of them: the record is on the first line with something on it.
    pub(super) fn line_at(&mut self, offset: u64) -> u64 {
        while self.lines.front().is_some_and(|&(_, end, _)| end <= offset) {
            self.lines.pop_front();
        }
        self.lines.front().map_or(self.line, |&(_, _, line)| line)
    }

    fn count(&mut self, bytes: &[u8]) {
        self.controls += bytes
            .iter()
            .filter(|&&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7F)
            .count() as u64;
        if self.after_c2 && bytes.first().is_some_and(|b| (0x80..=0x9F).contains(b)) {
            self.controls += 1;
        }
        self.controls += memchr::memchr_iter(0xC2, bytes)
            .filter(|&i| bytes.get(i + 1).is_some_and(|b| (0x80..=0x9F).contains(b)))
            .count() as u64;
        self.after_c2 = bytes.last() == Some(&0xC2);

        let mut at = 0;
        let text = |lines: &mut VecDeque<(u64, u64, u64)>, from: usize, to: usize, line| {
            // Something on a line not yet seen to have anything.
            if to > from && lines.back().is_none_or(|&(_, end, _)| end != u64::MAX) {
                lines.push_back((self.offset + from as u64, u64::MAX, line));
            }
        };
        for i in memchr::memchr2_iter(b'\n', b'\r', bytes) {
            text(&mut self.lines, at, i, self.line);
            let crlf = bytes[i] == b'\n' && self.after_cr && i == at;
            self.after_cr = bytes[i] == b'\r';
            at = i + 1;
            if crlf {
                continue;
            }
            if let Some(last) = self.lines.back_mut()
                && last.1 == u64::MAX
            {
                last.1 = self.offset + i as u64;
            }
            self.line += 1;
        }
        if at < bytes.len() {
            text(&mut self.lines, at, bytes.len(), self.line);
            self.after_cr = false;
        }
        self.offset += bytes.len() as u64;
    }
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// However the text arrives in reads (the reader asks for 8 KB at a
    /// time, a decoder gives what it has), a record's line is the same: a
    /// CRLF split between two reads ends one line.
    #[test]
    fn lines_are_counted_the_same_whatever_the_reads() {
        let text = b"h1,h2\r\n\r\nA1,x\r\n\"q\r\nq\",y\rA3,z\n\nA4,w";
        let starts = [(7, 3), (9, 3), (15, 4), (24, 6), (29, 8), (30, 8)];
        let lines = |pieces: &[&[u8]]| {
            let mut counter = LineCounter::new(());
            for piece in pieces {
                counter.count(piece);
            }
            starts
                .iter()
                .map(|&(offset, _)| counter.line_at(offset))
                .collect::<Vec<_>>()
        };
        let want: Vec<u64> = starts.iter().map(|&(_, line)| line).collect();
        assert_eq!(lines(&[text]), want);
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(lines(&bytes), want);
        for split in 1..text.len() {
            let (a, b) = text.split_at(split);
            assert_eq!(lines(&[a, b]), want, "split at {split}");
        }
    }
}
