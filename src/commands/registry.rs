//! `cocreate registry …`: import, list, match and relevance overrides.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use chrono::Utc;

use super::thousands;
use crate::config::Config;
use crate::domain::RegistrationNumber;
use crate::registry::Cso;
use crate::registry::csv_file::RowProblem;
use crate::registry::import::{self, ChangeKind, ImportOptions, ImportSummary, RegistryChange};
use crate::registry::relevance::{Assessment, Matcher, Relevance, RelevanceOverride};
use crate::store::Store;

/// Problems printed on the terminal; the rest go to --report.
const SHOWN_PROBLEMS: usize = 20;

/// Where an import writes its lists besides the terminal.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReportFiles<'a> {
    /// Every skipped row and note (`--report`).
    pub problems: Option<&'a Path>,
    /// Every organisation added, updated or inactivated (`--changes`).
    pub changes: Option<&'a Path>,
}

pub async fn import(
    store: &dyn Store,
    path: &Path,
    options: &ImportOptions,
    files: ReportFiles<'_>,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<ImportSummary> {
    let summary = import::import_file(store, path, options).await?;
    let report = files.problems;
    if let Some(report) = report {
        write_report(report, &summary)
            .with_context(|| format!("cannot write the report {}", report.display()))?;
    }
    if let Some(file) = files.changes {
        write_changes(file, summary.changes.as_deref().unwrap_or_default())
            .with_context(|| format!("cannot write the list of changes {}", file.display()))?;
    }
    if json {
        serde_json::to_writer_pretty(&mut *out, &summary)?;
        writeln!(out)?;
        return Ok(summary);
    }
    let delimiter = match summary.delimiter {
        '\t' => "tabs".to_string(),
        d => format!("'{d}'"),
    };
    writeln!(
        out,
        "Read {} ({}, separated by {delimiter}).",
        path.display(),
        summary.encoding
    )?;
    if let Some(other) = summary.other_encoding {
        writeln!(
            out,
            "The file is not UTF-8: it was read as {} by the letters it uses; if names look wrong (č as è, ć as æ), run again with --encoding {other}.",
            summary.encoding
        )?;
    }
    print_rows(out, "Skipped rows", &summary.problems, report)?;
    print_rows(out, "Imported with a note", &summary.warnings, report)?;
    writeln!(
        out,
        "Added {}, updated {}, unchanged {}, inactivated {}, skipped {}.",
        thousands(summary.added),
        thousands(summary.updated),
        thousands(summary.unchanged),
        thousands(summary.inactivated),
        thousands(summary.skipped),
    )?;
    if summary.dry_run {
        print_changes(
            out,
            summary.changes.as_deref().unwrap_or_default(),
            files.changes,
        )?;
        writeln!(out, "Dry run: nothing was written.")?;
    }
    Ok(summary)
}

/// A dry run's changes on the terminal, the first of them; `--changes`
/// lists them all.
fn print_changes(
    out: &mut impl Write,
    changes: &[RegistryChange],
    file: Option<&Path>,
) -> std::io::Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    writeln!(out, "Would change:")?;
    for c in changes.iter().take(SHOWN_PROBLEMS) {
        let what = match c.change {
            ChangeKind::Added => "add".to_string(),
            ChangeKind::Inactivated => "mark inactive".to_string(),
            ChangeKind::Updated => c
                .fields
                .iter()
                .map(|f| format!("{} '{}' → '{}'", f.field, f.old, f.new))
                .collect::<Vec<_>>()
                .join("; "),
        };
        writeln!(out, "  {} {}: {what}", c.registration_no, c.name)?;
    }
    if changes.len() > SHOWN_PROBLEMS {
        let more = thousands(changes.len() - SHOWN_PROBLEMS);
        match file {
            Some(f) => writeln!(out, "  … and {more} more, all listed in {}", f.display())?,
            None => writeln!(
                out,
                "  … and {more} more (add --changes FILE.csv to list them all)"
            )?,
        }
    }
    Ok(())
}

/// One line per field changed; an added or inactivated organisation is one
/// line with the field left empty.
fn write_changes(path: &Path, changes: &[RegistryChange]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_path(path)?;
    w.write_record(["registration_no", "name", "change", "field", "old", "new"])?;
    for c in changes {
        let base = [
            c.registration_no.as_str(),
            c.name.as_str(),
            c.change.as_str(),
        ];
        if c.fields.is_empty() {
            w.write_record(base.iter().copied().chain(["", "", ""]))?;
        }
        for f in &c.fields {
            w.write_record(
                base.iter()
                    .copied()
                    .chain([f.field, f.old.as_str(), f.new.as_str()]),
            )?;
        }
    }
    w.flush()?;
    Ok(())
}

fn print_rows(
    out: &mut impl Write,
    title: &str,
    rows: &[RowProblem],
    report: Option<&Path>,
) -> std::io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(out, "{title} ({}):", thousands(rows.len()))?;
    for p in rows.iter().take(SHOWN_PROBLEMS) {
        match &p.registration_no {
            Some(r) => writeln!(out, "  line {} ({r}): {}", p.line, p.reason)?,
            None => writeln!(out, "  line {}: {}", p.line, p.reason)?,
        }
    }
    if rows.len() > SHOWN_PROBLEMS {
        let more = thousands(rows.len() - SHOWN_PROBLEMS);
        match report {
            Some(r) => writeln!(out, "  … and {more} more, all listed in {}", r.display())?,
            None => writeln!(
                out,
                "  … and {more} more (add --report FILE.csv to list them all)"
            )?,
        }
    }
    Ok(())
}

fn write_report(path: &Path, summary: &ImportSummary) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_path(path)?;
    w.write_record(["line", "registration_no", "outcome", "reason"])?;
    let rows = summary
        .problems
        .iter()
        .map(|p| (p, "skipped"))
        .chain(summary.warnings.iter().map(|p| (p, "imported")));
    for (p, outcome) in rows {
        w.write_record([
            p.line.to_string().as_str(),
            p.registration_no.as_deref().unwrap_or(""),
            outcome,
            p.reason.as_str(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

pub async fn list(
    store: &dyn Store,
    include_inactive: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let csos = store.csos().await?;
    let shown: Vec<&Cso> = csos
        .iter()
        .filter(|c| include_inactive || c.active)
        .collect();
    for c in &shown {
        let emails: Vec<&str> = c.record.emails.iter().map(|e| e.as_str()).collect();
        writeln!(
            out,
            "{:<14} {:<2} {}{} <{}> {}",
            c.record.registration_no,
            c.record.language,
            c.record.name,
            if c.active { "" } else { " [inactive]" },
            emails.join(", "),
            c.record.city.as_deref().unwrap_or(""),
        )?;
    }
    let active = csos.iter().filter(|c| c.active).count();
    writeln!(
        out,
        "{} active organisations, {} inactive.",
        thousands(active),
        thousands(csos.len() - active)
    )?;
    Ok(())
}

pub async fn history(store: &dyn Store, out: &mut impl Write) -> anyhow::Result<()> {
    let imports = store.registry_imports(50).await?;
    if imports.is_empty() {
        writeln!(out, "No registry has been imported yet.")?;
    }
    for i in imports {
        let e = &i.entry;
        writeln!(
            out,
            "{}  {} ({}): added {}, updated {}, unchanged {}, inactivated {}, skipped {}",
            i.imported_at.format("%Y-%m-%d %H:%M UTC"),
            e.file_name,
            if e.full { "full" } else { "partial" },
            e.added,
            e.updated,
            e.unchanged,
            e.inactivated,
            e.skipped
        )?;
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct MatchRow<'a> {
    registration_no: &'a RegistrationNumber,
    name: &'a str,
    #[serde(flatten)]
    assessment: Assessment,
}

pub async fn matches(
    store: &dyn Store,
    config: &Config,
    policy_area: Option<&str>,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let areas: Vec<_> = match policy_area {
        Some(code) => match config.policy_area(code) {
            Some(a) => vec![a.clone()],
            None => bail!("{}", unknown_area(config, code)),
        },
        None => config.policy_areas.clone(),
    };
    let csos = store.csos().await?;
    let overrides = store.relevance_overrides().await?;
    let matcher = Matcher::new(&areas, &overrides);
    let mut rows: Vec<MatchRow> = Vec::new();
    for c in csos.iter().filter(|c| c.active) {
        for a in matcher.assess(c) {
            if a.relevance != Relevance::None || a.override_reason.is_some() {
                rows.push(MatchRow {
                    registration_no: &c.record.registration_no,
                    name: &c.record.name,
                    assessment: a,
                });
            }
        }
    }
    if json {
        serde_json::to_writer_pretty(&mut *out, &rows)?;
        writeln!(out)?;
        return Ok(());
    }
    for area in &areas {
        let mine: Vec<&MatchRow> = rows
            .iter()
            .filter(|r| r.assessment.policy_area == area.code)
            .collect();
        writeln!(
            out,
            "{} {} (LFP: {})",
            area.code, area.name.en, area.lfp.name.en
        )?;
        for level in [Relevance::Direct, Relevance::Indirect, Relevance::None] {
            let group: Vec<&&MatchRow> = mine
                .iter()
                .filter(|r| r.assessment.relevance == level)
                .collect();
            if group.is_empty() {
                continue;
            }
            let title = match level {
                Relevance::Direct => "directly relevant",
                Relevance::Indirect => "indirectly relevant",
                Relevance::None => "left out by the POC",
            };
            writeln!(out, "  {title} ({}):", thousands(group.len()))?;
            for r in group {
                let why = match &r.assessment.override_reason {
                    Some(reason) => format!("set by the POC: {reason}"),
                    None => format!("matched: {}", r.assessment.matched_words.join(", ")),
                };
                writeln!(out, "    {:<14} {} — {why}", r.registration_no, r.name)?;
            }
        }
        let direct = mine
            .iter()
            .filter(|r| r.assessment.relevance == Relevance::Direct)
            .count();
        let indirect = mine
            .iter()
            .filter(|r| r.assessment.relevance == Relevance::Indirect)
            .count();
        writeln!(
            out,
            "  {} directly and {} indirectly relevant.\n",
            thousands(direct),
            thousands(indirect)
        )?;
    }
    Ok(())
}

fn unknown_area(config: &Config, code: &str) -> String {
    let known: Vec<&str> = config
        .policy_areas
        .iter()
        .map(|a| a.code.as_str())
        .collect();
    format!(
        "there is no policy area '{code}' in {} (known: {})",
        config.source,
        known.join(", ")
    )
}

pub async fn set_override(
    store: &dyn Store,
    config: &Config,
    registration_no: &str,
    policy_area: &str,
    relevance: &str,
    reason: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let registration_no = RegistrationNumber::parse(registration_no)?;
    let Some(area) = config.policy_area(policy_area) else {
        bail!("{}", unknown_area(config, policy_area));
    };
    let relevance = Relevance::parse(relevance)?;
    let reason = reason.trim();
    if reason.is_empty() {
        bail!("give a reason with --reason, so the decision can be explained later");
    }
    let csos = store.csos().await?;
    let Some(cso) = csos
        .iter()
        .find(|c| c.record.registration_no == registration_no)
    else {
        bail!("no organisation with registration number {registration_no} has been imported");
    };
    store
        .set_relevance_override(&RelevanceOverride {
            registration_no: registration_no.clone(),
            policy_area: area.code.clone(),
            relevance,
            reason: reason.to_string(),
            set_at: Utc::now(),
        })
        .await?;
    writeln!(
        out,
        "{} ({}) is now {} relevant to {}, whatever its fields of activity say.",
        cso.record.name,
        registration_no,
        match relevance {
            Relevance::Direct => "directly",
            Relevance::Indirect => "indirectly",
            Relevance::None => "not",
        },
        area.code
    )?;
    Ok(())
}

pub async fn clear_override(
    store: &dyn Store,
    config: &Config,
    registration_no: &str,
    policy_area: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let registration_no = RegistrationNumber::parse(registration_no)?;
    let Some(area) = config.policy_area(policy_area) else {
        bail!("{}", unknown_area(config, policy_area));
    };
    if store
        .clear_relevance_override(&registration_no, &area.code)
        .await?
    {
        writeln!(
            out,
            "Removed the override: {registration_no} is matched to {} by its fields of activity again.",
            area.code
        )?;
    } else {
        writeln!(out, "{registration_no} had no override for {}.", area.code)?;
    }
    Ok(())
}

pub async fn list_overrides(store: &dyn Store, out: &mut impl Write) -> anyhow::Result<()> {
    let overrides = store.relevance_overrides().await?;
    if overrides.is_empty() {
        writeln!(out, "No relevance overrides.")?;
    }
    for o in overrides {
        writeln!(
            out,
            "{:<10} {:<14} {:<8} {} (set {})",
            o.policy_area,
            o.registration_no,
            o.relevance,
            o.reason,
            o.set_at.format("%Y-%m-%d")
        )?;
    }
    Ok(())
}

pub async fn addresses(store: &dyn Store, out: &mut impl Write) -> anyhow::Result<()> {
    let all = store.address_statuses().await?;
    let stopped: Vec<_> = all
        .iter()
        .filter(|s| s.opted_out_at.is_some() || s.bounced_at.is_some())
        .collect();
    if stopped.is_empty() {
        writeln!(out, "No address has opted out or bounced.")?;
    }
    for s in stopped {
        if let Some(at) = s.opted_out_at {
            writeln!(
                out,
                "{:<40} opted out {} ({})",
                s.address,
                at.format("%Y-%m-%d %H:%M UTC"),
                s.opt_out_source.as_deref().unwrap_or("")
            )?;
        }
        if let Some(at) = s.bounced_at {
            writeln!(
                out,
                "{:<40} bounced {}: {}",
                s.address,
                at.format("%Y-%m-%d %H:%M UTC"),
                s.bounce_reason.as_deref().unwrap_or("")
            )?;
        }
    }
    Ok(())
}

pub async fn restore(
    store: &dyn Store,
    address: &str,
    reason: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let address = crate::domain::EmailAddress::parse(address)?;
    if reason.trim().is_empty() {
        bail!(
            "give the reason with --reason: restoring an address that opted out must be explained"
        );
    }
    if store.restore_address(&address, reason.trim()).await? {
        writeln!(out, "{address} will receive consultation mail again.")?;
    } else {
        writeln!(
            out,
            "{address} had not opted out or bounced; nothing changed."
        )?;
    }
    Ok(())
}
