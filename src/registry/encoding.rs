//! Which character set a registry export is in, and reading it as UTF-8.
//!
//! The file is read twice, a chunk at a time, so that memory does not grow
//! with it: once here to tell its encoding from the whole of it (a
//! Windows-1250 letter may first appear on row 90,000), and once to import
//! it, decoded as it is read.

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use encoding_rs::{Decoder, DecoderResult, Encoding, UTF_8, UTF_16BE, UTF_16LE};

use super::csv_file::CsvFileError;

/// Where a registry export is read from. It can be opened more than once.
#[derive(Debug, Clone)]
pub enum Input {
    File(PathBuf),
    Bytes(Arc<[u8]>),
}

impl Input {
    pub(super) fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        Ok(match self {
            Input::File(path) => Box::new(std::fs::File::open(path)?),
            Input::Bytes(bytes) => Box::new(io::Cursor::new(Arc::clone(bytes))),
        })
    }

    /// Its size in bytes, for progress; 0 when unknown.
    pub(super) fn len(&self) -> u64 {
        match self {
            Input::File(path) => std::fs::metadata(path).map_or(0, |m| m.len()),
            Input::Bytes(bytes) => bytes.len() as u64,
        }
    }
}

/// How the file is to be read.
#[derive(Debug, Clone, Copy)]
pub(super) struct Detected {
    pub encoding: &'static Encoding,
    /// Bytes of byte-order mark at the start, passed over.
    pub bom: usize,
    /// Set when the encoding was a guess between two single-byte ones (no
    /// byte-order mark, not UTF-8, none named): the other one, to suggest.
    pub other: Option<&'static Encoding>,
}

/// Bytes read at a time, in both passes.
const CHUNK: usize = 1 << 20;

/// What one pass over the raw bytes finds out.
struct Scan {
    head: Vec<u8>,
    anything: bool,
    nul: bool,
    utf8: bool,
    /// How often each byte from 0x80 up occurs, for [`central_or_western`].
    high: [u64; 128],
}

/// Tells the encoding of `input`: `forced` by its WHATWG label (e.g.
/// "windows-1250"), else its byte-order mark, else UTF-8 when the whole
/// file is valid UTF-8, else a legacy Excel export told by its letters.
pub(super) fn detect(input: &Input, forced: Option<&str>) -> Result<Detected, CsvFileError> {
    let scan = scan(input)?;
    if !scan.anything {
        return Err(CsvFileError::Empty);
    }
    if scan.head.starts_with(b"PK\x03\x04") || scan.head.starts_with(b"\xD0\xCF\x11\xE0") {
        return Err(CsvFileError::Spreadsheet);
    }
    let bom = Encoding::for_bom(&scan.head);
    let detected = if let Some(label) = forced {
        let encoding = Encoding::for_label(label.trim().as_bytes())
            .ok_or_else(|| CsvFileError::UnknownEncoding(label.to_string()))?;
        Detected {
            encoding,
            bom: bom.map_or(0, |(_, n)| n),
            other: None,
        }
    } else if let Some((encoding, bom)) = bom {
        Detected {
            encoding,
            bom,
            other: None,
        }
    } else if scan.utf8 {
        Detected {
            encoding: UTF_8,
            bom: 0,
            other: None,
        }
    } else {
        // Not UTF-8: a legacy Excel export. chardetng finds the script;
        // between Central European and Western, the letters decide.
        let mut detector = chardetng::EncodingDetector::new();
        each_chunk(input, |chunk| {
            detector.feed(chunk, false);
        })?;
        detector.feed(&[], true);
        let encoding = central_or_western(&scan.high, detector.guess(None, false));
        let other = if encoding == encoding_rs::WINDOWS_1250 {
            Some(encoding_rs::WINDOWS_1252)
        } else if encoding == encoding_rs::WINDOWS_1252 {
            Some(encoding_rs::WINDOWS_1250)
        } else {
            None
        };
        Detected {
            encoding,
            bom: 0,
            other,
        }
    };
    // NUL bytes outside UTF-16 mean a binary file, whatever it decodes as.
    if scan.nul && detected.encoding != UTF_16LE && detected.encoding != UTF_16BE {
        return Err(CsvFileError::Unreadable);
    }
    Ok(detected)
}

/// Reads `input` through, a chunk at a time.
fn each_chunk(input: &Input, mut f: impl FnMut(&[u8])) -> Result<(), CsvFileError> {
    let mut reader = input.open().map_err(CsvFileError::Io)?;
    let mut buf = vec![0; CHUNK];
    loop {
        let n = fill(&mut reader, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        f(&buf[..n]);
    }
}

/// Reads until `buf` is full or the input ends.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> Result<usize, CsvFileError> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CsvFileError::Io(e)),
        }
    }
    Ok(n)
}

fn scan(input: &Input) -> Result<Scan, CsvFileError> {
    let mut scan = Scan {
        head: Vec::new(),
        anything: false,
        nul: false,
        utf8: true,
        high: [0; 128],
    };
    let mut reader = input.open().map_err(CsvFileError::Io)?;
    // Room before each chunk for the start of a UTF-8 sequence the last
    // chunk ended in the middle of.
    let mut buf = vec![0; CHUNK + 4];
    let mut carried = 0;
    loop {
        let n = fill(&mut reader, &mut buf[carried..])?;
        let fresh = &buf[carried..carried + n];
        if scan.head.is_empty() {
            scan.head = fresh[..fresh.len().min(4)].to_vec();
        }
        scan.anything |= !fresh.iter().all(u8::is_ascii_whitespace);
        scan.nul |= memchr::memchr(0, fresh).is_some();
        for &b in fresh.iter().filter(|&&b| b >= 0x80) {
            scan.high[usize::from(b - 0x80)] += 1;
        }
        let end = carried + n;
        let mut next = 0;
        if scan.utf8 {
            match std::str::from_utf8(&buf[..end]) {
                Ok(_) => {}
                // A sequence cut by the chunk's end: finished by the next.
                Err(e) if e.error_len().is_none() && n > 0 => next = end - e.valid_up_to(),
                Err(_) => scan.utf8 = false,
            }
        }
        if n == 0 {
            return Ok(scan);
        }
        buf.copy_within(end - next..end, 0);
        carried = next;
    }
}

/// Letters outside ASCII of Albanian and of the neighbouring languages
/// written in Latin script (Bosnian, Croatian, Montenegrin, Serbian,
/// Slovenian, Macedonian in Latin).
const REGIONAL_LETTERS: &str = "ëçčćđšžËÇČĆĐŠŽ";

/// Windows-1250 (Central European: Excel on Albanian Windows) or -1252
/// (Western), where the guess is one of them. Albanian's own ë and ç are
/// the same bytes in both; the neighbours' č, ć and đ are not, and read as
/// è, æ and ð in the wrong one. A general detector weighs a few such
/// letters in a long Albanian file too lightly and picks Western; here
/// each byte (`high` counts them) counts for the encoding that reads it as
/// a letter of the region and against the one that reads it as a foreign
/// letter. A tie keeps the detector's guess.
fn central_or_western(high: &[u64; 128], guess: &'static Encoding) -> &'static Encoding {
    use encoding_rs::{WINDOWS_1250, WINDOWS_1252};
    if guess != WINDOWS_1250 && guess != WINDOWS_1252 {
        return guess;
    }
    let score = |encoding: &'static Encoding| -> i64 {
        (0x80..=0xFFu8)
            .zip(high)
            .map(|(b, &count)| {
                let byte = [b];
                let (text, unmappable) = encoding.decode_without_bom_handling(&byte);
                let weight = match text.chars().next() {
                    _ if unmappable => -1,
                    Some(c) if REGIONAL_LETTERS.contains(c) => 1,
                    Some(c) if c.is_alphabetic() => -1,
                    _ => 0,
                };
                weight * i64::try_from(count).unwrap_or(i64::MAX)
            })
            .sum()
    };
    let (central, western) = (score(WINDOWS_1250), score(WINDOWS_1252));
    match central.cmp(&western) {
        std::cmp::Ordering::Greater => WINDOWS_1250,
        std::cmp::Ordering::Less => WINDOWS_1252,
        std::cmp::Ordering::Equal => guess,
    }
}

/// The file as UTF-8, its byte-order mark passed over: read as it is when
/// it is UTF-8 (the first pass checked it), decoded as it is read
/// otherwise.
pub(super) fn open_utf8(
    input: &Input,
    detected: Detected,
) -> Result<Box<dyn Read + Send>, CsvFileError> {
    let mut raw = input.open().map_err(CsvFileError::Io)?;
    let mut bom = [0; 4];
    raw.read_exact(&mut bom[..detected.bom])
        .map_err(CsvFileError::Io)?;
    if detected.encoding == UTF_8 {
        return Ok(raw);
    }
    Ok(Box::new(DecodeReader {
        inner: raw,
        decoder: detected.encoding.new_decoder_without_bom_handling(),
        input: vec![0; 64 * 1024].into_boxed_slice(),
        start: 0,
        end: 0,
        eof: false,
        done: false,
        output: vec![0; 64 * 1024].into_boxed_slice(),
        out_start: 0,
        out_end: 0,
    }))
}

/// Bytes the encoding cannot have written: the file is not in the encoding
/// it was read as, and is refused rather than read with letters replaced.
#[derive(Debug, thiserror::Error)]
#[error("the file has bytes that are not text in its encoding")]
pub(super) struct Malformed;

/// Decodes `inner` into UTF-8 as it is read, refusing malformed input.
struct DecodeReader<R> {
    inner: R,
    decoder: Decoder,
    input: Box<[u8]>,
    start: usize,
    end: usize,
    eof: bool,
    done: bool,
    output: Box<[u8]>,
    out_start: usize,
    out_end: usize,
}

impl<R: Read> Read for DecodeReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.out_start < self.out_end {
                let n = buf.len().min(self.out_end - self.out_start);
                buf[..n].copy_from_slice(&self.output[self.out_start..self.out_start + n]);
                self.out_start += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            if self.start == self.end && !self.eof {
                self.start = 0;
                self.end = self.inner.read(&mut self.input)?;
                self.eof = self.end == 0;
            }
            let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
                &self.input[self.start..self.end],
                &mut self.output,
                self.eof,
            );
            self.start += read;
            (self.out_start, self.out_end) = (0, written);
            match result {
                DecoderResult::InputEmpty => self.done = self.eof,
                DecoderResult::OutputFull => {}
                DecoderResult::Malformed(..) => {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, Malformed));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(b: &[u8]) -> Input {
        Input::Bytes(Arc::from(b))
    }

    fn decoded(input: &Input, detected: Detected) -> io::Result<String> {
        let mut out = String::new();
        open_utf8(input, detected)
            .unwrap()
            .read_to_string(&mut out)?;
        Ok(out)
    }

    /// A letter split across the first pass's chunks is still UTF-8, and a
    /// decoder fed a byte at a time gives the same text.
    #[test]
    fn utf8_across_chunks_and_windows_1250_decoded_as_read() {
        let mut text = "a".repeat(CHUNK - 1);
        text.push('ë');
        text.push_str("\nÇelësi\n");
        let input = bytes(text.as_bytes());
        let d = detect(&input, None).unwrap();
        assert_eq!(d.encoding, UTF_8);
        assert_eq!(decoded(&input, d).unwrap(), text);

        let legacy = "NIPT;Emri\r\nK1;Udruženje Kovačević\r\n".repeat(5000);
        let (raw, _, _) = encoding_rs::WINDOWS_1250.encode(&legacy);
        let input = bytes(&raw);
        let d = detect(&input, None).unwrap();
        assert_eq!(d.encoding, encoding_rs::WINDOWS_1250);
        assert_eq!(d.other, Some(encoding_rs::WINDOWS_1252));
        assert_eq!(decoded(&input, d).unwrap(), legacy);
    }

    #[test]
    fn a_byte_order_mark_is_passed_over_and_utf16_decoded() {
        let input = bytes(b"\xEF\xBB\xBFNIPT,Emri\n");
        let d = detect(&input, None).unwrap();
        assert_eq!((d.encoding, d.bom), (UTF_8, 3));
        assert_eq!(decoded(&input, d).unwrap(), "NIPT,Emri\n");

        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend("NIPT,Emri\n".encode_utf16().flat_map(u16::to_le_bytes));
        let input = bytes(&utf16);
        let d = detect(&input, None).unwrap();
        assert_eq!(d.encoding, UTF_16LE);
        assert_eq!(decoded(&input, d).unwrap(), "NIPT,Emri\n");
    }

    /// A lone surrogate cannot be UTF-16 text: the read fails, nothing is
    /// replaced.
    #[test]
    fn malformed_input_is_an_error_not_a_replacement() {
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend("NIPT".encode_utf16().flat_map(u16::to_le_bytes));
        utf16.extend([0x00, 0xD8, b',', 0]);
        let input = bytes(&utf16);
        let d = detect(&input, None).unwrap();
        let err = decoded(&input, d).unwrap_err();
        assert!(err.get_ref().is_some_and(|e| e.is::<Malformed>()), "{err}");
    }
}
