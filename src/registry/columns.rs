//! Which column of a registry export holds what: the header names POC
//! staff and other systems use, in Albanian and English, mapped to fields.

use std::collections::HashMap;

use super::csv_file::CsvFileError;
use crate::domain::fold;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Field {
    RegistrationNo,
    Name,
    Email,
    Phone,
    City,
    FieldsOfActivity,
    Language,
}

impl Field {
    const ALL: [Field; 7] = [
        Field::RegistrationNo,
        Field::Name,
        Field::Email,
        Field::Phone,
        Field::City,
        Field::FieldsOfActivity,
        Field::Language,
    ];

    pub(super) fn label(self) -> &'static str {
        match self {
            Field::RegistrationNo => "registration number",
            Field::Name => "name",
            Field::Email => "email",
            Field::Phone => "phone",
            Field::City => "city/district",
            Field::FieldsOfActivity => "fields of activity",
            Field::Language => "language",
        }
    }

    /// Header names accepted for each column, folded (lower case, no
    /// diacritics, punctuation as spaces). Documented in the README.
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::RegistrationNo => &[
                "registration number",
                "registration no",
                "registration nr",
                "reg no",
                "reg nr",
                "registration",
                "registry number",
                "nipt",
                "nuis",
                "numri i regjistrimit",
                "nr i regjistrimit",
                "nr regjistrimi",
                "numer regjistrimi",
                "numri regjistrimit",
                "nr regjistrimit",
            ],
            Field::Name => &[
                "name",
                "organisation",
                "organization",
                "organisation name",
                "organization name",
                "cso name",
                "cso",
                "emri",
                "emertimi",
                "emri i organizates",
                "organizata",
                "emri i oshc",
                "oshc",
            ],
            Field::Email => &[
                "email",
                "e mail",
                "email address",
                "e mail address",
                "emails",
                "email addresses",
                "adresa e emailit",
                "adresa email",
                "adresa e email",
                "posta elektronike",
                "e posta",
                "emaili",
            ],
            Field::Phone => &[
                "phone",
                "telephone",
                "tel",
                "mobile",
                "phone number",
                "telefon",
                "telefoni",
                "nr telefoni",
                "numri i telefonit",
                "cel",
                "celular",
            ],
            Field::City => &[
                "city",
                "district",
                "city district",
                "town",
                "municipality",
                "qyteti",
                "qytet",
                "rrethi",
                "bashkia",
                "qarku",
                "qyteti rrethi",
                "qytet rreth",
            ],
            Field::FieldsOfActivity => &[
                "fields of activity",
                "field of activity",
                "fields",
                "field",
                "activity",
                "activities",
                "sector",
                "sectors",
                "area of activity",
                "areas of activity",
                "fusha e veprimtarise",
                "fushat e veprimtarise",
                "fusha e aktivitetit",
                "fushat e aktivitetit",
                "fusha",
                "fushat",
                "veprimtaria",
                "fusha veprimtarie",
            ],
            Field::Language => &[
                "language",
                "preferred language",
                "lang",
                "gjuha",
                "gjuha e preferuar",
                "gjuha e komunikimit",
            ],
        }
    }

    fn required(self) -> bool {
        matches!(self, Field::RegistrationNo | Field::Name | Field::Email)
    }

    /// Fields that may come from several columns (Email 1, Email 2; Qyteti, Rrethi).
    fn repeatable(self) -> bool {
        matches!(
            self,
            Field::Email | Field::Phone | Field::City | Field::FieldsOfActivity
        )
    }

    pub(super) fn for_header(header: &str) -> Option<Field> {
        let folded = fold(header);
        // "Email 2", "Telefoni 1": the number only tells columns apart.
        let base = folded
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .trim_end();
        Field::ALL.into_iter().find(|f| f.aliases().contains(&base))
    }
}

/// Column indexes for each field, from the header row.
pub(super) struct Columns {
    by_field: HashMap<Field, Vec<usize>>,
}

impl Columns {
    pub(super) fn get<'r>(&self, field: Field, record: &'r csv::StringRecord) -> Vec<&'r str> {
        self.by_field
            .get(&field)
            .into_iter()
            .flatten()
            .filter_map(|&i| record.get(i))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    }
}

pub(super) fn map_header(header: &csv::StringRecord) -> Result<Columns, CsvFileError> {
    let mut by_field: HashMap<Field, Vec<usize>> = HashMap::new();
    for (i, cell) in header.iter().enumerate() {
        // Excel sometimes leaves a BOM or stray quotes in the first cell.
        let cell = cell.trim_start_matches('\u{feff}');
        if let Some(field) = Field::for_header(cell) {
            let cols = by_field.entry(field).or_default();
            if let Some(&first) = cols.first()
                && !field.repeatable()
            {
                return Err(CsvFileError::AmbiguousHeader {
                    field: field.label(),
                    first: first + 1,
                    second: i + 1,
                });
            }
            cols.push(i);
        }
    }
    let missing: Vec<&str> = Field::ALL
        .into_iter()
        .filter(|f| f.required() && !by_field.contains_key(f))
        .map(Field::label)
        .collect();
    if !missing.is_empty() {
        let found: Vec<String> = header
            .iter()
            .take(8)
            .map(|h| format!("'{}'", h.trim().chars().take(40).collect::<String>()))
            .collect();
        return Err(CsvFileError::NoHeader {
            missing: missing.join(", "),
            found: if found.is_empty() {
                "nothing".into()
            } else {
                found.join(", ")
            },
        });
    }
    Ok(Columns { by_field })
}
