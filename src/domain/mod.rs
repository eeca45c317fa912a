//! Plain values that parse at the edge of cocreate and are trusted inside it.
//!
//! Anything typed by a person (a CSV cell, a config value, a command-line
//! argument) becomes one of these types once, with a one-sentence error if it
//! cannot; code further in never re-checks.

mod bilingual;
mod email;
mod email_kind;
mod keyword;
mod language;
mod receipt_no;
mod registration_no;
mod relevance;
mod reply_key;
mod schedule;
mod text;
mod working_days;

pub use bilingual::Bilingual;
pub use email::{EmailAddress, EmailAddressError};
pub use email_kind::{EmailFor, EmailKind, Lane};
pub use keyword::{Keyword, KeywordError};
pub use language::{Language, LanguageError};
pub use receipt_no::{ReceiptNo, ReceiptNoError};
pub use registration_no::{RegistrationNumber, RegistrationNumberError};
pub use relevance::{Relevance, RelevanceError};
pub use reply_key::{ReplyKey, ReplyKeyError};
pub use schedule::{Schedule, ScheduleError, optional_schedule};
pub use text::{count, fold, fold_words, one_line, prose_lines, thousands};
pub use working_days::WorkingCalendar;
