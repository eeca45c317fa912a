//! Web pages: handlebars templates under templates/web/, compiled into the
//! binary and replaced file by file from `mail.templates_dir/web/`, like the
//! emails. The words are not in the templates but in one strings file per
//! language (`strings.sq.toml`, `strings.en.toml`), so a page's layout is
//! written once and both languages always say the same thing: a template
//! writes `{{t "key"}}`, and an unknown key is an error.
//!
//! Strict mode, and every page rendered in both languages with an example
//! when the pages load: a misspelt variable or a missing word stops `serve`
//! at start, not a CSO at the form. Every value is HTML-escaped.

use std::path::Path;

use std::sync::Arc;

use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, RenderContext, RenderErrorReason,
};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::Language;

macro_rules! embedded {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../templates/web/", $path)))),*]
    };
}

/// The built-in files, by name under templates/web/.
const EMBEDDED: &[(&str, &str)] = embedded!(
    "layout.hbs",
    "field.hbs",
    "form.hbs",
    "index.hbs",
    "consultation.hbs",
    "receipt.hbs",
    "notice.hbs",
    "review_bar.hbs",
    "review_decide.hbs",
    "sign_in.hbs",
    "review_home.hbs",
    "review_consultation.hbs",
    "review_proposal.hbs",
    "review_pen.hbs",
    "review_log.hbs",
    "report.hbs",
    "style.css",
    "strings.sq.toml",
    "strings.en.toml",
);

/// Templates used as partials by the pages.
const PARTIALS: &[&str] = &["layout", "field", "form", "review_bar", "review_decide"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Index,
    Consultation,
    Receipt,
    Notice,
    SignIn,
    ReviewHome,
    ReviewConsultation,
    ReviewProposal,
    ReviewPen,
    ReviewLog,
    Report,
}

impl Page {
    const ALL: [Page; 11] = [
        Page::Index,
        Page::Consultation,
        Page::Receipt,
        Page::Notice,
        Page::SignIn,
        Page::ReviewHome,
        Page::ReviewConsultation,
        Page::ReviewProposal,
        Page::ReviewPen,
        Page::ReviewLog,
        Page::Report,
    ];

    fn name(self) -> &'static str {
        match self {
            Page::Index => "index",
            Page::Consultation => "consultation",
            Page::Receipt => "receipt",
            Page::Notice => "notice",
            Page::SignIn => "sign_in",
            Page::ReviewHome => "review_home",
            Page::ReviewConsultation => "review_consultation",
            Page::ReviewProposal => "review_proposal",
            Page::ReviewPen => "review_pen",
            Page::ReviewLog => "review_log",
            Page::Report => "report",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("cannot read the page template {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the page template {name} does not parse: {message}")]
    Syntax { name: String, message: String },
    #[error("the page strings {name} do not parse: {message}")]
    Strings { name: String, message: String },
    #[error("the page strings {name} lack {keys} (every word must be in both languages)")]
    Missing { name: String, keys: String },
    #[error("the page {name} cannot be rendered in {lang}: {message}")]
    Render {
        name: String,
        lang: &'static str,
        message: String,
    },
}

/// What every page shows around its content.
#[derive(Debug, Clone, Serialize)]
pub struct Chrome {
    pub title: String,
    pub office: String,
    pub office_email: String,
    /// The same page in the other language.
    pub switch_url: String,
}

pub struct Pages {
    registry: Handlebars<'static>,
    strings: Arc<[Value; 2]>,
    pub stylesheet: String,
}

/// `{{t "key"}}`: the word `key` in the page's language (its root `lang`),
/// escaped. Looked up, not copied into every page's data: a page renders
/// without cloning a hundred strings.
fn words(strings: Arc<[Value; 2]>) -> impl HelperDef + Send + Sync + 'static {
    move |h: &Helper<'_>,
          _: &Handlebars<'_>,
          ctx: &Context,
          _: &mut RenderContext<'_, '_>,
          out: &mut dyn Output|
          -> HelperResult {
        let key = h
            .param(0)
            .and_then(|p| p.value().as_str())
            .ok_or_else(|| RenderErrorReason::ParamNotFoundForIndex("t", 0))?;
        let i = usize::from(ctx.data().get("lang").and_then(Value::as_str) == Some("en"));
        let word = strings[i]
            .get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| RenderErrorReason::Other(format!("no word \"{key}\" in the strings")))?;
        out.write(&handlebars::html_escape(word))?;
        Ok(())
    }
}

fn source(dir: Option<&Path>, name: &str, builtin: &str) -> Result<String, PageError> {
    match dir.map(|d| d.join("web").join(name)) {
        Some(file) if file.is_file() => {
            std::fs::read_to_string(&file).map_err(|source| PageError::Read {
                path: file.display().to_string(),
                source,
            })
        }
        _ => Ok(builtin.to_string()),
    }
}

fn strings(name: &str, text: &str) -> Result<Value, PageError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| PageError::Strings {
        name: name.into(),
        message: e.to_string(),
    })?;
    serde_json::to_value(table).map_err(|e| PageError::Strings {
        name: name.into(),
        message: e.to_string(),
    })
}

/// Keys of `a` that `b` lacks.
fn lacking(a: &Value, b: &Value) -> Vec<String> {
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => a.keys().filter(|k| !b.contains_key(*k)).cloned().collect(),
        _ => Vec::new(),
    }
}

impl Pages {
    /// Loads the built-in pages, each replaced by `dir/web/NAME` where that
    /// exists, and renders every page in both languages once.
    pub fn load(dir: Option<&Path>) -> Result<Self, PageError> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        let mut found: Vec<(&str, String)> = Vec::new();
        for (name, builtin) in EMBEDDED {
            found.push((name, source(dir, name, builtin)?));
        }
        let text_of = |name: &str| {
            found
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| t.clone())
                .unwrap_or_default()
        };
        let sq = strings("strings.sq.toml", &text_of("strings.sq.toml"))?;
        let en = strings("strings.en.toml", &text_of("strings.en.toml"))?;
        for (name, this, other) in [("strings.en.toml", &sq, &en), ("strings.sq.toml", &en, &sq)] {
            let keys = lacking(this, other);
            if !keys.is_empty() {
                return Err(PageError::Missing {
                    name: name.into(),
                    keys: keys.join(", "),
                });
            }
        }
        for (name, text) in &found {
            let Some(stem) = name.strip_suffix(".hbs") else {
                continue;
            };
            let syntax = |e: handlebars::TemplateError| PageError::Syntax {
                name: (*name).to_string(),
                message: e.to_string(),
            };
            if PARTIALS.contains(&stem) {
                registry
                    .register_partial(stem, text.as_str())
                    .map_err(syntax)?;
            } else {
                registry
                    .register_template_string(stem, text.as_str())
                    .map_err(syntax)?;
            }
        }
        let strings = Arc::new([sq, en]);
        registry.register_helper("t", Box::new(words(strings.clone())));
        let pages = Self {
            registry,
            strings,
            stylesheet: text_of("style.css"),
        };
        for lang in [Language::Sq, Language::En] {
            for page in Page::ALL {
                pages.render(
                    page,
                    lang,
                    &super::views::example_chrome(),
                    &super::views::example(page, lang, &pages),
                )?;
            }
        }
        Ok(pages)
    }

    /// One word or sentence in `lang`, by its key in the strings files
    /// (checked at load to be in both; an unknown key gives the key).
    pub fn word(&self, lang: Language, key: &str) -> String {
        self.strings(lang)
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or(key)
            .to_string()
    }

    pub fn has_word(&self, key: &str) -> bool {
        self.strings[0].get(key).is_some()
    }

    fn strings(&self, lang: Language) -> &Value {
        match lang {
            Language::Sq => &self.strings[0],
            Language::En => &self.strings[1],
        }
    }

    /// `page` in `lang` with `chrome` around `content` (an object whose
    /// fields the page's template uses).
    pub fn render(
        &self,
        page: Page,
        lang: Language,
        chrome: &Chrome,
        content: &impl Serialize,
    ) -> Result<String, PageError> {
        let render_error = |message: String| PageError::Render {
            name: page.name().into(),
            lang: lang.code(),
            message,
        };
        let mut data = match serde_json::to_value(content) {
            Ok(Value::Object(map)) => map,
            Ok(_) => Map::new(),
            Err(e) => return Err(render_error(e.to_string())),
        };
        data.insert("title".into(), chrome.title.clone().into());
        data.insert("office".into(), chrome.office.clone().into());
        data.insert("office_email".into(), chrome.office_email.clone().into());
        data.insert("switch_url".into(), chrome.switch_url.clone().into());
        data.insert("lang".into(), lang.code().into());
        let other = match lang {
            Language::Sq => Language::En,
            Language::En => Language::Sq,
        };
        data.insert("other_lang".into(), other.code().into());
        // Context::from takes the data as it is; render() would copy it.
        self.registry
            .render_with_context(page.name(), &Context::from(Value::Object(data)))
            .map_err(|e| render_error(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "1 day left", not "1 days left", in either language.
    #[test]
    fn one_day_left_reads_as_one_day() {
        let pages = Pages::load(None).unwrap();
        for (lang, one, many) in [
            (Language::En, "1 day left", "12 days left"),
            (Language::Sq, "1 ditë e mbetur", "12 ditë të mbetura"),
        ] {
            let mut content = super::super::views::example(Page::Index, lang, &pages);
            let render = |content: &serde_json::Value| {
                pages
                    .render(
                        Page::Index,
                        lang,
                        &super::super::views::example_chrome(),
                        content,
                    )
                    .unwrap()
            };
            assert!(render(&content).contains(many), "{lang:?}");
            content["areas"][0]["consultations"][0]["days_left"] = 1.into();
            assert!(render(&content).contains(one), "{lang:?}");
        }
    }

    #[test]
    fn the_built_in_pages_load_and_a_broken_override_stops_loading() {
        Pages::load(None).expect("the built-in pages load");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("web")).unwrap();
        std::fs::write(
            dir.path().join("web/receipt.hbs"),
            "{{#> layout}}{{recept_no}}{{/layout}}",
        )
        .unwrap();
        let e = Pages::load(Some(dir.path()))
            .err()
            .expect("a misspelt variable is refused");
        assert!(e.to_string().contains("receipt"), "{e}");
        std::fs::write(
            dir.path().join("web/receipt.hbs"),
            "{{#> layout}}{{receipt_no}}{{/layout}}",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("web/strings.en.toml"),
            "switch = \"Shqip\"\n",
        )
        .unwrap();
        let e = Pages::load(Some(dir.path()))
            .err()
            .expect("a missing word is refused");
        assert!(e.to_string().contains("strings.en.toml lack"), "{e}");
    }
}
