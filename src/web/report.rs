//! The public report, "what we asked, what you said, what we did": for the
//! action plan (every consultation) and for each consultation, in Albanian
//! and English, with CSV, XLSX and JSON downloads. Only published results
//! are shown; a consultation not yet published shows what was asked and
//! that its results will follow. No contact address or phone number is
//! ever on these pages or in the downloads (see `report`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::WebState;
use super::pages::Page;
use super::review::views::{AreaCounts, Count, ReportConsultation, ReportLine, ReportPage};
use super::site::{LangQuery, language};
use super::views::paragraphs;
use crate::consultation::Consultation;
use crate::domain::Language;
use crate::report::export::ExportFormat;
use crate::report::{self, Counts, Report};

fn counts(lang: Language, c: &Counts, w: &impl Fn(&str) -> String) -> Vec<Count> {
    let mut out = vec![Count {
        label: w("report_proposals"),
        count: c.proposals,
        href: String::new(),
    }];
    out.extend(
        c.each()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(d, n)| Count {
                label: d.label(lang).into(),
                count: n,
                href: String::new(),
            }),
    );
    if c.waiting > 0 {
        out.push(Count {
            label: w("report_waiting"),
            count: c.waiting,
            href: String::new(),
        });
    }
    out
}

impl WebState {
    /// The public consultations and, of them, those whose results are
    /// published.
    async fn reportable(&self) -> Result<(Vec<Consultation>, Vec<Consultation>), Response> {
        let all = report::public_consultations(&self.app)
            .await
            .map_err(|e| self.failed(Language::Sq, &e))?;
        let published: Vec<i64> = self
            .app
            .store
            .publications()
            .await
            .map_err(|e| self.failed(Language::Sq, &e))?
            .into_iter()
            .map(|p| p.consultation_id)
            .collect();
        let done = all
            .iter()
            .filter(|c| published.contains(&c.id))
            .cloned()
            .collect();
        Ok((all, done))
    }

    /// The report page of `built` (and of `all`'s consultations not yet
    /// published): the action plan's with its policy areas, or one
    /// consultation's.
    fn report_page(
        &self,
        lang: Language,
        path: &str,
        built: &Report,
        all: &[Consultation],
        heading: String,
        plan: bool,
    ) -> Response {
        let w = |k: &str| self.pages.word(lang, k);
        let published: Vec<&str> = built
            .consultations
            .iter()
            .map(|c| c.reference.as_str())
            .collect();
        let tz_date = |d: chrono::NaiveDate| d.format("%d.%m.%Y").to_string();
        let mut consultations: Vec<ReportConsultation> = built
            .consultations
            .iter()
            .map(|c| ReportConsultation {
                reference: c.reference.clone(),
                title: if lang == Language::En {
                    c.title_en.clone()
                } else {
                    c.title_sq.clone()
                },
                href: format!("/report/{}?lang={}", c.reference, lang.code()),
                asked: paragraphs(if lang == Language::En {
                    &c.description_en
                } else {
                    &c.description_sq
                }),
                period: format!("{} – {}", tz_date(c.opens_on), tz_date(c.closes_on)),
                published: true,
                proposals: c
                    .proposals
                    .iter()
                    .map(|p| ReportLine {
                        receipt_no: p.receipt_no.clone(),
                        sender: p.sender_label(lang),
                        date: tz_date(p.received_on),
                        paragraphs: p.text.as_deref().map(paragraphs).unwrap_or_default(),
                        withheld: p.text_withheld,
                        disposition: p.disposition_label(lang),
                        commitment: p.commitment.clone(),
                        response: match lang {
                            Language::En => p.response_en.clone().or_else(|| p.response_sq.clone()),
                            Language::Sq => p.response_sq.clone(),
                        }
                        .unwrap_or_default(),
                        campaign: p.campaign.map(|n| {
                            format!(
                                "{} {n} ({})",
                                w("review_campaign_label"),
                                p.campaign_size.unwrap_or(0)
                            )
                        }),
                    })
                    .collect(),
            })
            .collect();
        // What was asked in consultations whose results are still to come.
        consultations.extend(
            all.iter()
                .filter(|c| !published.contains(&c.spec.reference.as_str()))
                .map(|c| ReportConsultation {
                    reference: c.spec.reference.clone(),
                    title: c.spec.title().get(lang).to_string(),
                    href: format!("/report/{}?lang={}", c.spec.reference, lang.code()),
                    asked: paragraphs(c.spec.description().get(lang)),
                    period: format!(
                        "{} – {}",
                        tz_date(c.spec.opens_on),
                        tz_date(c.spec.closes_on)
                    ),
                    published: false,
                    proposals: Vec::new(),
                }),
        );
        let areas = built
            .by_policy_area
            .iter()
            .filter(|_| plan)
            .map(|(code, c)| AreaCounts {
                name: self
                    .app
                    .config
                    .policy_area(code)
                    .map_or_else(|| code.clone(), |a| a.name.get(lang).clone()),
                counts: counts(lang, c, &w),
            })
            .collect();
        let base = path.trim_end_matches('/');
        let content = ReportPage {
            heading: heading.clone(),
            intro: vec![w(if plan {
                "report_intro_plan"
            } else {
                "report_heading_plan"
            })],
            totals: counts(lang, &built.totals, &w),
            areas,
            consultations,
            downloads: if built.consultations.is_empty() {
                Vec::new()
            } else {
                [ExportFormat::Csv, ExportFormat::Xlsx, ExportFormat::Json]
                    .into_iter()
                    .map(|f| Count {
                        label: f.extension().to_uppercase(),
                        count: built.totals.proposals,
                        href: format!("{base}.{}", f.extension()),
                    })
                    .collect()
            },
        };
        let chrome = self.chrome(lang, heading, path);
        self.page(StatusCode::OK, Page::Report, lang, &chrome, &content)
    }
}

/// Reports and downloads built a moment ago, by what they cover, language
/// and format: anyone may ask for the report as often as they like, and
/// building it reads and redacts every published proposal.
#[derive(Default)]
pub struct ReportCache {
    reports: Fresh<Arc<Report>>,
    downloads: Fresh<Arc<Vec<u8>>>,
}

/// Values by key, each with when it was made.
type Fresh<T> = Mutex<HashMap<String, (Instant, T)>>;

/// How long a built report is shown before it is built again: a decision
/// or publication appears within this.
const REPORT_FRESH: Duration = Duration::from_secs(10);

fn fresh<T: Clone>(map: &Fresh<T>, key: &str) -> Option<T> {
    let map = map.lock().ok()?;
    map.get(key)
        .filter(|(at, _)| at.elapsed() < REPORT_FRESH)
        .map(|(_, v)| v.clone())
}

fn keep<T>(map: &Fresh<T>, key: String, value: T) {
    if let Ok(mut map) = map.lock() {
        if map.len() > 200 {
            map.retain(|_, (at, _)| at.elapsed() < REPORT_FRESH);
        }
        map.insert(key, (Instant::now(), value));
    }
}

impl WebState {
    /// The report of `consultations` in `lang`, built at most
    /// `REPORT_FRESH` ago.
    async fn built(
        &self,
        key: &str,
        consultations: &[Consultation],
        lang: Language,
    ) -> Result<Arc<Report>, crate::accountability::AccountabilityError> {
        // What the report covers is part of its key: a consultation
        // published a moment ago is in the next page, not in ten seconds.
        let ids: Vec<String> = consultations.iter().map(|c| c.id.to_string()).collect();
        let key = format!("{key}|{}|{}", ids.join(","), lang.code());
        if let Some(report) = fresh(&self.report_cache.reports, &key) {
            return Ok(report);
        }
        let report = Arc::new(report::build(&self.app, consultations, true, lang).await?);
        keep(&self.report_cache.reports, key, report.clone());
        Ok(report)
    }

    fn download(&self, key: &str, built: &Report, format: ExportFormat, name: &str) -> Response {
        let ids: Vec<String> = built
            .consultations
            .iter()
            .map(|c| c.reference.clone())
            .collect();
        let key = format!("{key}|{}|{}", ids.join(","), format.extension());
        let bytes = match fresh(&self.report_cache.downloads, &key) {
            Some(bytes) => Ok(bytes),
            None => report::export::write(built, format).map(|b| {
                let b = Arc::new(b);
                keep(&self.report_cache.downloads, key, b.clone());
                b
            }),
        };
        download(bytes, format, name)
    }
}

fn download(
    bytes: Result<Arc<Vec<u8>>, report::export::ExportError>,
    format: ExportFormat,
    name: &str,
) -> Response {
    match bytes {
        Ok(bytes) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(format.content_type()),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    HeaderValue::from_str(&format!(
                        "attachment; filename=\"{name}.{}\"",
                        format.extension()
                    ))
                    .unwrap_or(HeaderValue::from_static("attachment")),
                ),
            ],
            bytes.as_ref().clone(),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a report download could not be made");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `/report`, and its downloads `/report.csv`, `.xlsx`, `.json`.
pub async fn action_plan(
    State(state): State<WebState>,
    Query(query): Query<LangQuery>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let lang = language(query.lang.as_deref(), &headers, None);
    let (all, published) = match state.reportable().await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let format = uri
        .path()
        .rsplit_once('.')
        .and_then(|(_, ext)| ext.parse::<ExportFormat>().ok());
    // Downloads mark what was removed in Albanian, the record's language.
    let built = match state
        .built("plan", &published, format.map_or(lang, |_| Language::Sq))
        .await
    {
        Ok(r) => r,
        Err(e) => return state.failed(lang, &e),
    };
    if let Some(format) = format {
        return state.download("plan", &built, format, "action-plan-report");
    }
    let heading = state.pages.word(lang, "report_heading_plan");
    state.report_page(lang, "/report", &built, &all, heading, true)
}

/// `/report/REF`, and its downloads `/report/REF.csv`, `.xlsx`, `.json`.
pub async fn consultation(
    State(state): State<WebState>,
    Path(file): Path<String>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = language(query.lang.as_deref(), &headers, None);
    let (reference, format) = match file.rsplit_once('.') {
        Some((r, ext)) => match ext.parse::<ExportFormat>() {
            Ok(f) => (r.to_string(), Some(f)),
            Err(_) => return state.unknown(lang),
        },
        None => (file.clone(), None),
    };
    let wanted = reference.trim().to_ascii_uppercase();
    let (all, published) = match state.reportable().await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Some(c) = all.into_iter().find(|c| c.spec.reference == wanted) else {
        return state.unknown(lang);
    };
    let done: Vec<Consultation> = published.into_iter().filter(|p| p.id == c.id).collect();
    let built = match state
        .built(
            &c.spec.reference,
            &done,
            if format.is_some() { Language::Sq } else { lang },
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return state.failed(lang, &e),
    };
    match format {
        Some(_) if done.is_empty() => state.unknown(lang),
        Some(f) => state.download(&c.spec.reference, &built, f, &c.spec.reference),
        None => {
            let heading = c.spec.title().get(lang).to_string();
            state.report_page(
                lang,
                &format!("/report/{}", c.spec.reference),
                &built,
                &[c],
                heading,
                false,
            )
        }
    }
}
