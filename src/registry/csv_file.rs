//! Reading a registry export as the registry office actually produces it:
//! saved from Excel in Windows-1250 or -1252, or as UTF-8 with or without a
//! byte-order mark; separated by `;` (Excel in Albanian and most European
//! locales) or `,`; headers in Albanian or English, in any order and case.
//!
//! The file is decoded and split into good rows and problem rows. Nothing
//! here touches the store.

use encoding_rs::Encoding;
use std::collections::HashMap;

use super::CsoRecord;
use super::columns::{Columns, Field, map_header};
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

/// The outcome of reading a file: good rows, problems, and how it was read.
#[derive(Debug)]
pub struct RegistryFile {
    pub rows: Vec<CsoRecord>,
    pub problems: Vec<RowProblem>,
    pub warnings: Vec<RowWarning>,
    /// Registration numbers seen on skipped rows: the organisation is still in
    /// the registry, so a full import must not mark it inactive.
    pub skipped_registration_nos: Vec<RegistrationNumber>,
    pub encoding: &'static str,
    /// Set when the encoding was a guess between two single-byte ones (no
    /// byte-order mark, not UTF-8, none named): the other one, to suggest.
    pub other_encoding: Option<&'static str>,
    pub delimiter: char,
}

/// How many non-blank rows at the top may come before the header.
const HEADER_SEARCH_ROWS: usize = 5;

/// Reads a registry export. `encoding` forces a character set by its WHATWG
/// label (e.g. "windows-1250"); otherwise it is detected.
pub fn read(bytes: &[u8], encoding: Option<&str>) -> Result<RegistryFile, CsvFileError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(CsvFileError::Empty);
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"\xD0\xCF\x11\xE0") {
        return Err(CsvFileError::Spreadsheet);
    }
    let (text, chosen) = decode(bytes, encoding)?;
    let mut file = parse(&text, chosen.name())?;
    if encoding.is_none() && chosen == encoding_rs::WINDOWS_1250 {
        file.other_encoding = Some(encoding_rs::WINDOWS_1252.name());
    } else if encoding.is_none() && chosen == encoding_rs::WINDOWS_1252 {
        file.other_encoding = Some(encoding_rs::WINDOWS_1250.name());
    }
    Ok(file)
}

fn decode<'a>(
    bytes: &'a [u8],
    forced: Option<&str>,
) -> Result<(std::borrow::Cow<'a, str>, &'static Encoding), CsvFileError> {
    let (encoding, body) = if let Some(label) = forced {
        let enc = Encoding::for_label(label.trim().as_bytes())
            .ok_or_else(|| CsvFileError::UnknownEncoding(label.to_string()))?;
        let skip = Encoding::for_bom(bytes).map_or(0, |(_, n)| n);
        (enc, &bytes[skip..])
    } else if let Some((enc, bom_len)) = Encoding::for_bom(bytes) {
        (enc, &bytes[bom_len..])
    } else if std::str::from_utf8(bytes).is_ok() {
        (encoding_rs::UTF_8, bytes)
    } else {
        // Not UTF-8: a legacy Excel export. chardetng finds the script;
        // between Central European and Western, the letters decide.
        let mut detector = chardetng::EncodingDetector::new();
        detector.feed(bytes, true);
        (
            central_or_western(bytes, detector.guess(None, false)),
            bytes,
        )
    };
    // NUL bytes outside UTF-16 mean a binary file, whatever it decodes as.
    if body.contains(&0) && encoding != encoding_rs::UTF_16LE && encoding != encoding_rs::UTF_16BE {
        return Err(CsvFileError::Unreadable);
    }
    let text = encoding
        .decode_without_bom_handling_and_without_replacement(body)
        .ok_or(CsvFileError::Unreadable)?;
    // A stray control character (a DOS end-of-file mark, a form feed) is
    // cleaned out of its cell; many of them mean the file is not text.
    let controls = text.chars().filter(|&c| is_stray_control(c)).count();
    if controls > 16 && controls * 100 > text.len() {
        return Err(CsvFileError::Unreadable);
    }
    Ok((text, encoding))
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
/// each byte counts for the encoding that reads it as a letter of the
/// region and against the one that reads it as a foreign letter. A tie
/// keeps the detector's guess.
fn central_or_western(bytes: &[u8], guess: &'static Encoding) -> &'static Encoding {
    use encoding_rs::{WINDOWS_1250, WINDOWS_1252};
    if guess != WINDOWS_1250 && guess != WINDOWS_1252 {
        return guess;
    }
    let score = |encoding: &'static Encoding| -> i64 {
        let mut weight = [0i64; 128];
        for (b, w) in (0x80..=0xFFu8).zip(weight.iter_mut()) {
            let byte = [b];
            let (text, unmappable) = encoding.decode_without_bom_handling(&byte);
            *w = match text.chars().next() {
                _ if unmappable => -1,
                Some(c) if REGIONAL_LETTERS.contains(c) => 1,
                Some(c) if c.is_alphabetic() => -1,
                _ => 0,
            };
        }
        bytes
            .iter()
            .filter(|&&b| b >= 0x80)
            .map(|&b| weight[usize::from(b - 0x80)])
            .sum()
    };
    let (central, western) = (score(WINDOWS_1250), score(WINDOWS_1252));
    match central.cmp(&western) {
        std::cmp::Ordering::Greater => WINDOWS_1250,
        std::cmp::Ordering::Less => WINDOWS_1252,
        std::cmp::Ordering::Equal => guess,
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

/// The separator used in the header line: whichever of `;`, `,` and tab
/// occurs most outside quotes. Excel writes `;` where `,` is the decimal mark.
fn sniff_delimiter(text: &str) -> u8 {
    let header = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0)];
    let mut quoted = false;
    for b in header.bytes() {
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

/// Line numbers as an editor shows them, from a record's byte offset. The
/// csv crate's own count was one low after a CRLF header and left out
/// blank lines; here CRLF, LF and a lone CR each end one line.
struct Lines<'a> {
    text: &'a [u8],
    at: usize,
    line: u64,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text: text.as_bytes(),
            at: 0,
            line: 1,
        }
    }

    /// The line of a record starting at byte `offset`; offsets are asked in
    /// order. The csv crate starts a record after blank lines at the first
    /// of them: the record is on the first line with something on it.
    fn at(&mut self, offset: u64) -> u64 {
        let mut end = (offset as usize).min(self.text.len());
        while matches!(self.text.get(end), Some(b'\n' | b'\r')) {
            end += 1;
        }
        if end > self.at {
            let ends = memchr::memchr2_iter(b'\n', b'\r', &self.text[self.at..end])
                .filter(|&i| {
                    let i = self.at + i;
                    self.text[i] == b'\n' || self.text.get(i + 1) != Some(&b'\n')
                })
                .count();
            self.line += ends as u64;
            self.at = end;
        }
        self.line
    }
}

fn parse(text: &str, encoding: &'static str) -> Result<RegistryFile, CsvFileError> {
    let delimiter = sniff_delimiter(text);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();

    // Exports often start with a title ("Regjistri i OSHC-ve, 2020") or a
    // blank line; the header is the first of the opening rows that names the
    // required columns.
    let mut first_refusal = None;
    let mut looked_at = 0;
    let (header, columns) = loop {
        match records.next() {
            None => return Err(first_refusal.unwrap_or(CsvFileError::Empty)),
            Some(Err(e)) => return Err(CsvFileError::Csv(e.to_string())),
            Some(Ok(r)) if r.iter().all(|c| c.trim().is_empty()) => continue,
            Some(Ok(r)) => match map_header(&r) {
                Ok(columns) => break (r, columns),
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
    let header_len = header.len();

    let progress = super::progress::bytes(text.len() as u64, "reading");
    let mut file = RegistryFile {
        rows: Vec::new(),
        problems: Vec::new(),
        warnings: Vec::new(),
        skipped_registration_nos: Vec::new(),
        encoding,
        other_encoding: None,
        delimiter: delimiter as char,
    };
    let mut lines = Lines::new(text);
    let mut first_line: HashMap<RegistrationNumber, u64> = HashMap::new();
    let mut any_rows = false;
    for (n, result) in records.enumerate() {
        let record = match result {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| lines.at(p.byte()));
                file.problems.push(RowProblem {
                    line,
                    registration_no: None,
                    reason: format!("cannot be read: {e}"),
                });
                continue;
            }
        };
        if n.is_multiple_of(4096) {
            progress.set_position(record.position().map_or(0, |p| p.byte()));
        }
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        any_rows = true;
        let line = record.position().map_or(0, |p| lines.at(p.byte()));
        match parse_row(&record, &columns, header_len) {
            Ok((row, warnings)) => {
                if let Some(first) = first_line.get(&row.registration_no) {
                    file.problems.push(RowProblem {
                        line,
                        registration_no: Some(row.registration_no.to_string()),
                        reason: format!(
                            "repeats registration number {} from line {first}",
                            row.registration_no
                        ),
                    });
                    continue;
                }
                first_line.insert(row.registration_no.clone(), line);
                for reason in warnings {
                    file.warnings.push(RowWarning {
                        line,
                        registration_no: Some(row.registration_no.to_string()),
                        reason,
                    });
                }
                file.rows.push(row);
            }
            Err((reg, reason)) => {
                if let Some(r) = &reg {
                    file.skipped_registration_nos.push(r.clone());
                }
                file.problems.push(RowProblem {
                    line,
                    registration_no: reg.map(|r| r.to_string()),
                    reason,
                });
            }
        }
    }
    progress.finish_and_clear();
    if !any_rows {
        return Err(CsvFileError::NoRows);
    }
    Ok(file)
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
        assert_eq!(file.rows.len(), 1);
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
                (5, "repeats registration number A1 from line 2"),
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
