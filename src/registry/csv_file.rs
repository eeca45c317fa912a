//! Reading a registry export as the registry office actually produces it:
//! saved from Excel in Windows-1250 or -1252, or as UTF-8 with or without a
//! byte-order mark; separated by `;` (Excel in Albanian and most European
//! locales) or `,`; headers in Albanian or English, in any order and case.
//!
//! The file is read as a stream and handed over a chunk of rows at a time,
//! split into good rows and problem rows, so an import's memory does not
//! grow with the file. Nothing here touches the store; a registration
//! number repeated in the file is found by the import, which knows every
//! organisation it has met.

use std::io::Read;

use super::CsoRecord;
use super::columns::{Columns, Field, map_header};
use super::encoding::{self, Input};
use super::lines::LineCounter;
use crate::domain::{EmailAddress, Language, RegistrationNumber};

/// Why a whole file is refused. Each is one sentence for the POC.
#[derive(Debug, thiserror::Error)]
pub enum CsvFileError {
    #[error("the file is empty")]
    Empty,
    #[error(
        "the file is an Excel workbook, not CSV: open it in Excel and save it with File > Save As > CSV UTF-8"
    )]
    Spreadsheet,
    #[error(
        "the file is not readable text in UTF-8, Windows-1250 or Windows-1252 (it may be binary or in another encoding)"
    )]
    Unreadable,
    #[error(
        "the encoding '{0}' is not one cocreate knows (try utf-8, windows-1250 or windows-1252)"
    )]
    UnknownEncoding(String),
    #[error("the first line is not a usable header: it needs columns for {missing}; found {found}")]
    NoHeader { missing: String, found: String },
    #[error("the header has more than one column for {field} (columns {first} and {second})")]
    AmbiguousHeader {
        field: &'static str,
        first: usize,
        second: usize,
    },
    #[error("the file has a header but no rows")]
    NoRows,
    #[error("the CSV cannot be read: {0}")]
    Csv(String),
    #[error("the file cannot be read: {0}")]
    Io(std::io::Error),
}

/// A row that was skipped, with the line it starts on in the file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowProblem {
    pub line: u64,
    pub registration_no: Option<String>,
    pub reason: String,
}

/// A row that was imported, with something worth telling the POC about.
pub type RowWarning = RowProblem;

/// A good row: the organisation, the line it starts on, and what is worth
/// telling the POC about it (an address left out).
#[derive(Debug)]
pub struct Row {
    pub line: u64,
    pub record: CsoRecord,
    pub warnings: Vec<String>,
}

/// Rows read together, in the file's order.
#[derive(Debug, Default)]
pub struct Chunk {
    pub rows: Vec<Row>,
    pub problems: Vec<RowProblem>,
    /// Registration numbers seen on skipped rows: the organisation is still in
    /// the registry, so a full import must not mark it inactive.
    pub skipped_registration_nos: Vec<RegistrationNumber>,
}

/// How the file was read, known once it is read through.
#[derive(Debug, Clone, Copy)]
pub struct FileFacts {
    pub encoding: &'static str,
    /// Set when the encoding was a guess between two single-byte ones (no
    /// byte-order mark, not UTF-8, none named): the other one, to suggest.
    pub other_encoding: Option<&'static str>,
    pub delimiter: char,
}

/// How many non-blank rows at the top may come before the header.
const HEADER_SEARCH_ROWS: usize = 5;

/// How much of the start of the file the separator is told from: the
/// header line, or this much of it.
const SNIFF_BYTES: usize = 64 * 1024;

/// A registry export being read.
pub struct RegistryReader {
    csv: csv::Reader<LineCounter<Box<dyn Read + Send>>>,
    record: csv::StringRecord,
    columns: Columns,
    header_len: usize,
    facts: FileFacts,
    any_rows: bool,
    progress: indicatif::ProgressBar,
}

impl RegistryReader {
    /// Opens a registry export: tells its encoding (`encoding` forces one by
    /// its WHATWG label, e.g. "windows-1250") and separator, and finds its
    /// header. A file refused as a whole is refused here when it can be
    /// told from its start, else by [`RegistryReader::next_chunk`] or
    /// [`RegistryReader::finish`].
    pub fn open(input: &Input, encoding: Option<&str>) -> Result<Self, CsvFileError> {
        let detected = encoding::detect(input, encoding)?;
        let mut text = encoding::open_utf8(input, detected)?;
        let mut start = Vec::with_capacity(SNIFF_BYTES);
        (&mut text)
            .take(SNIFF_BYTES as u64)
            .read_to_end(&mut start)
            .map_err(io_error)?;
        let delimiter = sniff_delimiter(&start);
        let stream: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(start).chain(text));
        let mut csv = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(LineCounter::new(stream));

        // Exports often start with a title ("Regjistri i OSHC-ve, 2020") or a
        // blank line; the header is the first of the opening rows that names
        // the required columns.
        let mut first_refusal = None;
        let mut looked_at = 0;
        let mut header = csv::StringRecord::new();
        let columns = loop {
            match csv.read_record(&mut header) {
                Ok(false) => return Err(first_refusal.unwrap_or(CsvFileError::Empty)),
                Err(e) => return Err(csv_error(e)),
                Ok(true) if header.iter().all(|c| c.trim().is_empty()) => continue,
                Ok(true) => match map_header(&header) {
                    Ok(columns) => break columns,
                    Err(e) => {
                        looked_at += 1;
                        let refusal = first_refusal.get_or_insert(e);
                        if looked_at == HEADER_SEARCH_ROWS {
                            return Err(std::mem::replace(refusal, CsvFileError::Empty));
                        }
                    }
                },
            }
        };
        Ok(Self {
            csv,
            record: csv::StringRecord::new(),
            columns,
            header_len: header.len(),
            facts: FileFacts {
                encoding: detected.encoding.name(),
                other_encoding: detected.other.map(|e| e.name()),
                delimiter: delimiter as char,
            },
            any_rows: false,
            progress: super::progress::bytes(input.len(), "importing"),
        })
    }

    /// The next `rows` rows with something on them (good or not), or None
    /// at the end of the file.
    pub fn next_chunk(&mut self, rows: usize) -> Result<Option<Chunk>, CsvFileError> {
        let mut chunk = Chunk {
            rows: Vec::with_capacity(rows),
            ..Chunk::default()
        };
        let mut taken = 0;
        while taken < rows {
            let read = self.csv.read_record(&mut self.record);
            let record = &self.record;
            match read {
                Ok(false) => break,
                Err(e) => {
                    if let csv::ErrorKind::Io(io) = e.kind() {
                        return Err(io_error_ref(io));
                    }
                    let line = e
                        .position()
                        .map_or(0, |p| self.csv.get_mut().line_at(p.byte()));
                    chunk.problems.push(RowProblem {
                        line,
                        registration_no: None,
                        reason: format!("cannot be read: {e}"),
                    });
                    taken += 1;
                    continue;
                }
                Ok(true) => {}
            }
            let line = record
                .position()
                .map_or(0, |p| self.csv.get_mut().line_at(p.byte()));
            if record.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            self.any_rows = true;
            taken += 1;
            match parse_row(record, &self.columns, self.header_len) {
                Ok((record, warnings)) => chunk.rows.push(Row {
                    line,
                    record,
                    warnings,
                }),
                Err((reg, reason)) => {
                    if let Some(r) = &reg {
                        chunk.skipped_registration_nos.push(r.clone());
                    }
                    chunk.problems.push(RowProblem {
                        line,
                        registration_no: reg.map(|r| r.to_string()),
                        reason,
                    });
                }
            }
        }
        self.progress.set_position(self.csv.position().byte());
        Ok((taken > 0).then_some(chunk))
    }

    /// Ends the reading: refuses a file with no rows, or one so full of
    /// control characters that it is not text.
    pub fn finish(self) -> Result<FileFacts, CsvFileError> {
        self.progress.finish_and_clear();
        if !self.any_rows {
            return Err(CsvFileError::NoRows);
        }
        let counted = self.csv.get_ref();
        // A stray control character (a DOS end-of-file mark, a form feed) is
        // cleaned out of its cell; many of them mean the file is not text.
        if counted.controls > 16 && counted.controls * 100 > counted.offset {
            return Err(CsvFileError::Unreadable);
        }
        Ok(self.facts)
    }
}

/// A whole-file failure from the CSV reader.
fn csv_error(e: csv::Error) -> CsvFileError {
    match e.kind() {
        csv::ErrorKind::Io(io) => io_error_ref(io),
        _ => CsvFileError::Csv(e.to_string()),
    }
}

fn io_error(e: std::io::Error) -> CsvFileError {
    io_error_ref(&e)
}

/// Bytes the encoding cannot have written make the file unreadable; any
/// other failure to read is the system's, told as it is.
fn io_error_ref(e: &std::io::Error) -> CsvFileError {
    if e.get_ref()
        .is_some_and(|inner| inner.is::<encoding::Malformed>())
    {
        CsvFileError::Unreadable
    } else {
        CsvFileError::Io(std::io::Error::new(e.kind(), e.to_string()))
    }
}

fn is_stray_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\n' | '\r' | '\t')
}

/// A cell's text as a person would read it: control characters removed and
/// runs of whitespace (line breaks inside a cell included) made one space.
fn clean(cell: &str) -> String {
    cell.split(|c: char| c.is_whitespace() || is_stray_control(c))
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The separator used in the header line (the first line with something on
/// it in `start`): whichever of `;`, `,` and tab occurs most outside quotes.
/// Excel writes `;` where `,` is the decimal mark.
fn sniff_delimiter(start: &[u8]) -> u8 {
    let header = start
        .split(|&b| b == b'\n' || b == b'\r')
        .find(|l| !l.iter().all(u8::is_ascii_whitespace))
        .unwrap_or(&[]);
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0)];
    let mut quoted = false;
    for &b in header {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted {
            for (d, n) in &mut counts {
                if *d == b {
                    *n += 1;
                }
            }
        }
    }
    // Ties go to ',' (first), the standard.
    counts
        .iter()
        .fold(
            (b',', 0),
            |best, &(d, n)| if n > best.1 { (d, n) } else { best },
        )
        .0
}

type RowError = (Option<RegistrationNumber>, String);

/// The longest organisation name taken, in characters: the longest real
/// names run to about 150; a longer cell is a mistake in the file (two
/// columns run together, a pasted paragraph), and the name is written into
/// every message's To line.
const MAX_NAME_CHARS: usize = 300;

fn parse_row(
    record: &csv::StringRecord,
    columns: &Columns,
    header_len: usize,
) -> Result<(CsoRecord, Vec<String>), RowError> {
    let registration_no = match columns.get(Field::RegistrationNo, record).first() {
        None => return Err((None, "has no registration number".into())),
        Some(raw) => RegistrationNumber::parse(raw).map_err(|e| (None, e.to_string()))?,
    };
    let fail = |reason: String| (Some(registration_no.clone()), reason);

    if record.len() < header_len {
        return Err(fail(format!(
            "has only {} of the header's {header_len} columns (the line looks cut off)",
            record.len()
        )));
    }
    if record.iter().skip(header_len).any(|c| !c.trim().is_empty()) {
        return Err(fail(format!(
            "has {} columns but the header has {header_len} (a value may contain an unquoted separator)",
            record.len()
        )));
    }

    let name = clean(&columns.get(Field::Name, record).join(" "));
    if name.is_empty() {
        return Err(fail("has no name".into()));
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(fail(format!(
            "has a name of {chars} characters, more than the {MAX_NAME_CHARS} a name may have"
        )));
    }

    let mut warnings = Vec::new();
    let mut emails = Vec::new();
    let mut bad = Vec::new();
    for cell in columns.get(Field::Email, record) {
        for part in cell
            .split(|c: char| {
                matches!(c, ';' | ',' | '/') || c.is_whitespace() || is_stray_control(c)
            })
            .filter(|p| !p.trim().is_empty())
        {
            match EmailAddress::parse(part) {
                Ok(e) if !emails.contains(&e) => emails.push(e),
                Ok(_) => {}
                Err(e) => bad.push(e.to_string()),
            }
        }
    }
    if emails.is_empty() {
        return Err(fail(match bad.first() {
            Some(e) => format!("has no valid email address ({e})"),
            None => "has no email address".into(),
        }));
    }
    warnings.extend(bad.into_iter().map(|e| format!("{e}; it was left out")));

    let language = match columns.get(Field::Language, record).first() {
        None => Language::default(),
        Some(raw) => Language::parse(raw).map_err(|e| fail(e.to_string()))?,
    };

    let fields_of_activity = columns
        .get(Field::FieldsOfActivity, record)
        .into_iter()
        .flat_map(|c| c.split([';', ',', '|', '\n']))
        .map(clean)
        .filter(|f| !f.is_empty())
        .collect();
    let joined = |field| {
        let parts: Vec<String> = columns
            .get(field, record)
            .into_iter()
            .map(clean)
            .filter(|p| !p.is_empty())
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    };

    Ok((
        CsoRecord {
            registration_no,
            name,
            emails,
            phone: joined(Field::Phone),
            city: joined(Field::City),
            fields_of_activity,
            language,
        },
        warnings,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A whole file read as the import reads it, two rows at a time.
    #[derive(Debug)]
    struct ReadAll {
        rows: Vec<CsoRecord>,
        problems: Vec<RowProblem>,
        delimiter: char,
        encoding: &'static str,
        other_encoding: Option<&'static str>,
    }

    fn read(bytes: &[u8], encoding: Option<&str>) -> Result<ReadAll, CsvFileError> {
        let mut reader = RegistryReader::open(&Input::Bytes(Arc::from(bytes)), encoding)?;
        let (mut rows, mut problems) = (Vec::new(), Vec::new());
        while let Some(chunk) = reader.next_chunk(2)? {
            rows.extend(chunk.rows.into_iter().map(|r| r.record));
            problems.extend(chunk.problems);
        }
        let facts = reader.finish()?;
        Ok(ReadAll {
            rows,
            problems,
            delimiter: facts.delimiter,
            encoding: facts.encoding,
            other_encoding: facts.other_encoding,
        })
    }

    #[test]
    fn reads_albanian_headers_semicolons_and_windows_1250() {
        let text = "Nr. i regjistrimit;Emërtimi;E-mail;Qyteti;Fushat e veprimtarisë;Gjuha\r\n\
                    L1;Shoqata Çelësi;info@celesi.al;Korçë;Arsim, rini;\r\n";
        let (bytes, _, _) = encoding_rs::WINDOWS_1250.encode(text);
        let file = read(&bytes, None).unwrap();
        assert_eq!(file.delimiter, ';');
        assert_eq!(file.problems, []);
        let row = &file.rows[0];
        assert_eq!(row.name, "Shoqata Çelësi");
        assert_eq!(row.city.as_deref(), Some("Korçë"));
        assert_eq!(row.fields_of_activity, ["Arsim", "rini"]);
        assert_eq!(row.language, Language::Sq);
    }

    #[test]
    fn header_names_match_in_any_case_order_and_accents() {
        for h in ["EMËRTIMI", "emertimi", " Organisation Name "] {
            assert_eq!(Field::for_header(h), Some(Field::Name), "{h}");
        }
        assert_eq!(Field::for_header("Email 2"), Some(Field::Email));
        assert_eq!(Field::for_header("Notes"), None);
    }

    #[test]
    fn problem_rows_are_reported_with_their_line_and_reason() {
        let text = "reg no,name,email,language\n\
                    A1,One,one@x.al,en\n\
                    A2,,two@x.al,\n\
                    A3,Three,not-an-address,\n\
                    A1,Again,again@x.al,\n\
                    A5,Five,five@x.al,fr\n";
        let text = format!("{text}A6,{},six@x.al,\n", "Emër ".repeat(200));
        let file = read(text.as_bytes(), None).unwrap();
        // The second A1 is a good row here: the import finds the repeat
        // (tests/it/cli_registry.rs).
        assert_eq!(file.rows.len(), 2);
        let got: Vec<(u64, &str)> = file
            .problems
            .iter()
            .map(|p| (p.line, p.reason.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (3, "has no name"),
                (
                    4,
                    "has no valid email address ('not-an-address' is not an email address)"
                ),
                (
                    6,
                    "'fr' is not a language cocreate writes in (use sq for Albanian or en for English)"
                ),
                (
                    7,
                    "has a name of 999 characters, more than the 300 a name may have"
                ),
            ]
        );
    }

    /// Excel writes CRLF: a problem's line is the line the POC sees in an
    /// editor, whatever ends the lines.
    #[test]
    fn line_numbers_are_the_same_whatever_ends_the_lines() {
        let rows = [
            "reg no,name,email",
            "A1,One,one@x.al",
            "A2,,two@x.al",
            "",
            "A3,Three,x",
            "A4,\"Four\nLines\",",
            "A5,,five@x.al",
        ];
        let lines = |ending: &str| {
            let text = rows.join(ending) + ending;
            let file = read(text.as_bytes(), None).unwrap();
            file.problems.iter().map(|p| p.line).collect::<Vec<_>>()
        };
        assert_eq!(lines("\n"), [3, 5, 6, 8]);
        assert_eq!(lines("\r\n"), [3, 5, 6, 8]);
    }

    /// Albanian's own letters (ë, ç) are the same bytes in Windows-1250 and
    /// -1252; the letters of the neighbouring languages (č, ć, đ) are not,
    /// and read as è, æ, ð in the wrong one. Each file is told by them.
    #[test]
    fn windows_1250_is_told_from_1252_by_the_letters_used() {
        // An Albanian registry with one organisation of the Montenegrin
        // minority among many: a handful of letters decide.
        let mut central = String::from("reg no;name;email;city\r\n");
        for i in 0..40 {
            central +=
                &format!("A{i};Shoqata për të drejtat e fëmijëve në Korçë {i};s{i}@x.al;Korçë\r\n");
        }
        central += "M1;Udruženje Crnogoraca Kovačević i Ćorović;m@x.me;Tuzi\r\n";
        let (bytes, _, _) = encoding_rs::WINDOWS_1250.encode(&central);
        let file = read(&bytes, None).unwrap();
        assert_eq!(file.encoding, "windows-1250");
        assert_eq!(file.other_encoding, Some("windows-1252"));
        assert_eq!(
            file.rows[40].name,
            "Udruženje Crnogoraca Kovačević i Ćorović"
        );
        assert_eq!(
            file.rows[0].name,
            "Shoqata për të drejtat e fëmijëve në Korçë 0"
        );

        // Letters that are foreign in either reading leave the detector's
        // guess standing.
        let western = "reg no;name;email;city\r\n\
                       A1;Fundación Señora da Conceição;a@x.es;São Paulo\r\n\
                       A2;Shoqata Çelësi;b@x.al;Korçë\r\n";
        let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(western);
        let file = read(&bytes, None).unwrap();
        assert_eq!(file.encoding, "windows-1252");
        assert_eq!(file.rows[0].name, "Fundación Señora da Conceição");
        assert_eq!(file.rows[1].name, "Shoqata Çelësi");
    }

    #[test]
    fn whole_file_refusals_are_one_sentence() {
        assert!(matches!(read(b"", None), Err(CsvFileError::Empty)));
        assert!(matches!(read(b" \n\n", None), Err(CsvFileError::Empty)));
        assert!(matches!(
            read(b"PK\x03\x04rest", None),
            Err(CsvFileError::Spreadsheet)
        ));
        assert!(matches!(
            read(b"a\x00b\x00c,d\n", None),
            Err(CsvFileError::Unreadable)
        ));
        let err = read(b"foo,bar\n1,2\n", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the first line is not a usable header: it needs columns for registration number, name, email; found 'foo', 'bar'"
        );
        assert!(matches!(
            read(b"reg no,name,email\n", None),
            Err(CsvFileError::NoRows)
        ));
    }

    #[test]
    fn a_title_above_the_header_is_passed_over() {
        let text = "Regjistri i OSHC-ve;;\n\
                    Eksportuar më 01.03.2020;;\n\
                    NIPT;Emri;Email\n\
                    K1;Shoqata;k@x.al\n";
        let file = read(text.as_bytes(), None).unwrap();
        assert_eq!(file.rows.len(), 1);
        assert_eq!(file.rows[0].registration_no.as_str(), "K1");

        let six_titles = "a\nb\nc\nd\ne\nNIPT,Emri,Email\nK1,S,k@x.al\n";
        assert!(matches!(
            read(six_titles.as_bytes(), None),
            Err(CsvFileError::NoHeader { .. })
        ));
    }

    #[test]
    fn stray_control_characters_are_cleaned_out_of_cells() {
        let text = "NIPT,Emri,Email,Qyteti\nK1,Shoqata\u{1a} \u{c}Ime,k@x.al\u{b},\"Tiranë\n\"\n";
        let file = read(text.as_bytes(), None).unwrap();
        assert_eq!(file.problems, []);
        assert_eq!(file.rows[0].name, "Shoqata Ime");
        assert_eq!(file.rows[0].emails[0].as_str(), "k@x.al");
        assert_eq!(file.rows[0].city.as_deref(), Some("Tiranë"));
    }
}
