//! The report's downloads: CSV (UTF-8 with a byte-order mark, so Excel
//! opens it with ë and ç intact), XLSX, and JSON (docs/report-schema.md).
//! CSV and XLSX have the same columns and rows, one per proposal.

use std::fmt;
use std::str::FromStr;

use rust_xlsxwriter::{Format, Workbook, XlsxError};

use super::{Report, ReportProposal};
use crate::domain::Language;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Xlsx,
    Json,
}

impl ExportFormat {
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Xlsx => "xlsx",
            Self::Json => "json",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Self::Json => "application/json",
        }
    }
}

impl FromStr for ExportFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(Self::Csv),
            "xlsx" => Ok(Self::Xlsx),
            "json" => Ok(Self::Json),
            other => Err(format!("the format is csv, xlsx or json, not '{other}'")),
        }
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write the CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("cannot write the spreadsheet: {0}")]
    Xlsx(#[from] XlsxError),
    #[error("cannot write the JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The columns of the CSV and the spreadsheet.
pub const COLUMNS: [&str; 15] = [
    "consultation",
    "policy_area",
    "receipt_no",
    "received_on",
    "sender",
    "sender_kind",
    "late",
    "draft_number",
    "text",
    "disposition",
    "commitment",
    "response_sq",
    "response_en",
    "response_group",
    "campaign",
];

/// One proposal's cells, in the order of [`COLUMNS`].
fn cells(area: &str, p: &ReportProposal) -> [String; 15] {
    [
        p.consultation.clone(),
        area.to_string(),
        p.receipt_no.clone(),
        p.received_on.to_string(),
        p.sender_label(Language::En),
        serde_json::to_value(p.sender_kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        if p.late { "yes" } else { "no" }.to_string(),
        p.draft_number.map(|n| n.to_string()).unwrap_or_default(),
        p.text
            .clone()
            .unwrap_or_else(|| "(its sender asked that it not be published)".into()),
        p.disposition
            .map(|d| d.as_str().to_string())
            .unwrap_or_default(),
        p.commitment.clone().unwrap_or_default(),
        p.response_sq.clone().unwrap_or_default(),
        p.response_en.clone().unwrap_or_default(),
        p.response_group.clone().unwrap_or_default(),
        p.campaign
            .map(|n| format!("{n} ({} copies)", p.campaign_size.unwrap_or(0)))
            .unwrap_or_default(),
    ]
}

/// The longest cell a spreadsheet holds (Excel's limit, which
/// rust_xlsxwriter enforces); a longer text is cut in both the CSV and the
/// spreadsheet, with a note, and is whole in the JSON.
const MAX_CELL_CHARS: usize = 32_000;

fn bounded(cell: String) -> String {
    if cell.encode_utf16().count() <= MAX_CELL_CHARS {
        return cell;
    }
    let mut out = String::new();
    for c in cell.chars() {
        if out.encode_utf16().count() + c.len_utf16() > MAX_CELL_CHARS - 40 {
            break;
        }
        out.push(c);
    }
    out.push_str(" … (cut here; whole in the JSON)");
    out
}

/// Every row of `report`, header first, defused.
pub fn rows(report: &Report) -> Vec<Vec<String>> {
    let mut out = vec![COLUMNS.iter().map(|c| c.to_string()).collect()];
    for c in &report.consultations {
        for p in &c.proposals {
            out.push(
                cells(&c.policy_area, p)
                    .iter()
                    .map(|c| bounded(defused(c)))
                    .collect(),
            );
        }
    }
    out
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab,
/// carriage return first) gets a leading apostrophe: text from the public
/// must never become a formula on an official's computer. Both the CSV
/// and the spreadsheet carry it, so their rows are the same.
fn defused(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

pub fn write(report: &Report, format: ExportFormat) -> Result<Vec<u8>, ExportError> {
    match format {
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
            for row in rows(report) {
                w.write_record(&row)?;
            }
            w.into_inner()
                .map_err(|e| ExportError::Csv(e.into_error().into()))
        }
        ExportFormat::Xlsx => {
            let mut book = Workbook::new();
            let sheet = book.add_worksheet();
            sheet.set_name("proposals")?;
            let bold = Format::new().set_bold();
            let wrap = Format::new().set_text_wrap();
            for (r, row) in rows(report).iter().enumerate() {
                let r = u32::try_from(r).unwrap_or(u32::MAX);
                for (c, cell) in row.iter().enumerate() {
                    let c = u16::try_from(c).unwrap_or(u16::MAX);
                    // Strings, always: the writer stores them as text, so
                    // nothing from the public is read as a formula.
                    if r == 0 {
                        sheet.write_string_with_format(r, c, cell, &bold)?;
                    } else {
                        sheet.write_string_with_format(r, c, cell, &wrap)?;
                    }
                }
            }
            sheet.set_freeze_panes(1, 0)?;
            Ok(book.save_to_buffer()?)
        }
        ExportFormat::Json => Ok(serde_json::to_vec_pretty(report)?),
    }
}
