//! Review at the terminal: the proposals with filters, one proposal's
//! whole thread, its attachments, dispositions and their audit log, and
//! the report's exports and publication. The POC at the server's terminal
//! acts as the POC.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Serialize;

use super::printable;
use crate::accountability::review::{self, Filter, StateFilter};
use crate::accountability::{self, Actor, Answer, Disposition, label_of};
use crate::app::App;
use crate::domain::Language;
use crate::outbound::lfp::excerpt;
use crate::report::{self, export::ExportFormat};
use crate::store::records::ReviewProposal;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ProposalsArgs {
    #[command(subcommand)]
    pub command: Option<ProposalsCommand>,
    /// Only this consultation's.
    #[arg(long, value_name = "REFERENCE")]
    pub consultation: Option<String>,
    /// waiting, decided, or a disposition (accepted, partly-accepted,
    /// merged, not-accepted, out-of-scope).
    #[arg(long, value_parser = StateFilter::parse)]
    pub state: Option<StateFilter>,
    /// Part of the CSO's name or the sender's address.
    #[arg(long, value_name = "TEXT")]
    pub cso: Option<String>,
    /// Only those that arrived after the deadline.
    #[arg(long)]
    pub late: bool,
    /// Only those sent by someone other than the CSO's registered address.
    #[arg(long)]
    pub other_sender: bool,
    /// Only comments on a government draft commitment (this number, or any).
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "0")]
    pub draft: Option<i64>,
    /// Only those marked for a second look (the sender, or disowned).
    #[arg(long)]
    pub flagged: bool,
    /// One JSON object per proposal, in an array.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum ProposalsCommand {
    /// One proposal: who, when, flags, what was written (quoted history and
    /// signature folded), attachments, follow-ups, our receipts, and how it
    /// was considered.
    Show {
        /// The proposal's receipt number, e.g. OGP-2026-FISCAL-0001.
        receipt_no: String,
        /// Also the quoted history and the signature.
        #[arg(long)]
        full: bool,
        /// Print JSON instead of lines for a person.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AttachmentCommand {
    /// Write an attachment of a proposal's thread (numbered as `mail
    /// proposals show` lists them) to standard output or a file.
    Get {
        /// The proposal's receipt number, e.g. OGP-2026-FISCAL-0001.
        receipt_no: String,
        /// Its number in the thread; the first when left out.
        number: Option<usize>,
        /// Write it here instead of to standard output.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum DispositionCommand {
    /// Record how one proposal, or a group answered together, was
    /// considered, with the reasoned response.
    Set {
        /// The receipt numbers (several: one response for the group).
        #[arg(required = true)]
        receipt_nos: Vec<String>,
        /// accepted, partly-accepted, merged, not-accepted, out-of-scope.
        #[arg(long, value_parser = parse_disposition)]
        disposition: Disposition,
        /// The commitment it fed (required for merged).
        #[arg(long)]
        commitment: Option<String>,
        /// The reasoned response in Albanian.
        #[arg(long, value_name = "TEXT")]
        response_sq: String,
        /// The reasoned response in English (required for English-speaking
        /// CSOs).
        #[arg(long, value_name = "TEXT")]
        response_en: Option<String>,
    },
    /// Every change to a disposition: who, when, before and after.
    Log {
        /// The consultation's reference, e.g. OGP-2026-FISCAL.
        #[arg(long, value_name = "REFERENCE")]
        consultation: Option<String>,
        /// Print JSON instead of lines for a person.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ReportCommand {
    /// The report of a consultation (or, without one, of the whole action
    /// plan) as CSV, XLSX or JSON, with every disposition recorded so far.
    Export {
        /// The consultation's reference, e.g. OGP-2026-FISCAL.
        reference: Option<String>,
        /// csv, xlsx or json.
        #[arg(long, default_value = "csv")]
        format: ExportFormat,
        /// Write it here instead of to standard output.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Publish a closed consultation's results: the public report shows
    /// them and each sender gets an outcome notice.
    Publish {
        /// The consultation's reference, e.g. OGP-2026-FISCAL.
        reference: String,
    },
}

fn parse_disposition(s: &str) -> Result<Disposition, String> {
    Disposition::parse(s).ok_or_else(|| {
        format!(
            "the disposition is accepted, partly-accepted, merged, not-accepted or out-of-scope, not '{s}'"
        )
    })
}

/// A proposal as `mail proposals` lists it.
#[derive(Debug, Serialize)]
struct Line<'a> {
    receipt_no: &'a str,
    consultation: &'a str,
    sender: String,
    from_address: &'a str,
    received_at: String,
    excerpt: String,
    follow_ups: i64,
    attachments: usize,
    late: bool,
    other_sender: bool,
    draft_number: Option<i64>,
    sender_flag: Option<&'a str>,
    disowned: bool,
    disposition: Option<&'a str>,
}

/// The sender's name, marked when it is not the registry's.
fn sender(p: &ReviewProposal) -> String {
    let name = accountability::sender_name(p);
    if p.cso_name.is_some() {
        name
    } else {
        format!("{name} (not in the registry)")
    }
}

pub async fn proposals(app: &App, args: ProposalsArgs, out: &mut impl Write) -> anyhow::Result<()> {
    if let Some(ProposalsCommand::Show {
        receipt_no,
        full,
        json,
    }) = args.command
    {
        return show(app, &receipt_no, full, json, out).await;
    }
    let consultations = accountability::visible_consultations(app, &Actor::terminal()).await?;
    let only = match &args.consultation {
        Some(r) => Some(
            crate::outbound::outreach::find(app.store.as_ref(), r)
                .await?
                .id,
        ),
        None => None,
    };
    let filter = Filter {
        state: args.state,
        cso: args.cso,
        late: args.late,
        other_sender: args.other_sender,
        draft: args.draft.map(|n| (n > 0).then_some(n)),
        flagged: args.flagged,
    };
    let all = app.store.review_proposals(only).await?;
    let tz = app.config.office.time_zone;
    let lines: Vec<Line<'_>> = all
        .iter()
        .filter(|p| filter.matches(p))
        .map(|p| Line {
            receipt_no: &p.receipt_no,
            consultation: consultations
                .get(&p.consultation_id)
                .map_or("?", |c| c.spec.reference.as_str()),
            sender: printable(&sender(p)),
            from_address: &p.from_address,
            received_at: p
                .created_at
                .with_timezone(&tz)
                .format("%Y-%m-%d %H:%M")
                .to_string(),
            excerpt: printable(&excerpt(&p.reply_text, 100)),
            follow_ups: p.follow_ups,
            attachments: review::attachments(p, &[]).len(),
            late: p.late,
            other_sender: p.other_sender,
            draft_number: p.draft_number,
            sender_flag: p.sender_flag.as_deref(),
            disowned: p.disowned_at.is_some(),
            disposition: p.disposition.as_ref().map(|d| d.disposition.as_str()),
        })
        .collect();
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &lines)?;
        writeln!(out)?;
        return Ok(());
    }
    if lines.is_empty() {
        writeln!(
            out,
            "{}",
            if all.is_empty() {
                "No proposals yet."
            } else {
                "No proposal matches."
            }
        )?;
    }
    // One line per proposal (a second, indented, only to say why its
    // sender needs a look), so the listing can be counted and grepped.
    for l in &lines {
        let mut flags = Vec::new();
        if let Some(n) = l.draft_number {
            flags.push(format!("on draft {n}"));
        }
        if l.late {
            flags.push("late".into());
        }
        if l.other_sender {
            flags.push(format!("other sender: {}", l.from_address));
        }
        if l.disowned {
            flags.push("disowned by its CSO".into());
        }
        if l.follow_ups > 0 {
            flags.push(accountability::plural(
                usize::try_from(l.follow_ups).unwrap_or(0),
                "follow-up",
            ));
        }
        if l.attachments > 0 {
            flags.push(accountability::plural(l.attachments, "attachment"));
        }
        if let Some(d) = l.disposition {
            flags.push(label_of(d, Language::En).to_lowercase());
        }
        let flags: String = flags.iter().map(|f| format!(" [{f}]")).collect();
        writeln!(
            out,
            "{} {} {} {}{flags} — {}",
            l.receipt_no, l.received_at, l.consultation, l.sender, l.excerpt
        )?;
        if let Some(flag) = l.sender_flag {
            writeln!(out, "    check the sender: {flag}")?;
        }
    }
    Ok(())
}

async fn show(
    app: &App,
    receipt_no: &str,
    full: bool,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (p, c) = accountability::proposal_for(app, &Actor::terminal(), receipt_no).await?;
    let follow_ups = app.store.follow_ups_of(p.id).await?;
    let messages: Vec<i64> = follow_ups.iter().map(|f| f.inbound_message_id).collect();
    let sent = app.store.sent_about(&p.receipt_no, &messages).await?;
    let attachments = review::attachments(&p, &follow_ups);
    let log: Vec<_> = app
        .store
        .disposition_log(Some(c.id))
        .await?
        .into_iter()
        .filter(|e| e.receipt_no == p.receipt_no)
        .collect();
    if json {
        let value = serde_json::json!({
            "proposal": &p,
            "consultation": c.spec.reference,
            "follow_ups": follow_ups,
            "attachments": attachments,
            "sent": sent,
            "log": log,
        });
        serde_json::to_writer_pretty(&mut *out, &value)?;
        writeln!(out)?;
        return Ok(());
    }
    let tz = app.config.office.time_zone;
    let at = |t: chrono::DateTime<chrono::Utc>| {
        t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
    };
    writeln!(
        out,
        "{}  {}  {}",
        p.receipt_no, c.spec.reference, c.spec.title_en
    )?;
    writeln!(out, "From: {} <{}>", printable(&sender(&p)), p.from_address)?;
    writeln!(out, "Received: {}", at(p.created_at))?;
    writeln!(out, "Subject: {}", printable(&p.subject))?;
    if p.late {
        writeln!(out, "Late: it arrived after the deadline")?;
    }
    if let Some(n) = p.draft_number {
        writeln!(out, "On government draft commitment {n}")?;
    }
    if p.other_sender {
        writeln!(
            out,
            "Sent by an address other than the CSO's registered one"
        )?;
    }
    if let Some(flag) = &p.sender_flag {
        writeln!(out, "Check the sender: {flag}")?;
    }
    if let Some(t) = p.disowned_at {
        writeln!(
            out,
            "Disowned: the CSO said on {} that it did not send this",
            at(t)
        )?;
    }
    if p.no_publish {
        writeln!(out, "Its sender asked that the text not be published")?;
    }
    writeln!(out, "\n{}\n", printable(p.reply_text.trim_end()))?;
    fold(out, "quoted history", &p.quoted_text, full)?;
    fold(out, "signature", &p.signature, full)?;
    for f in &follow_ups {
        writeln!(
            out,
            "--- Follow-up from {} on {}",
            f.from_address,
            at(f.created_at)
        )?;
        writeln!(out, "{}\n", printable(f.reply_text.trim_end()))?;
        fold(out, "quoted history", &f.quoted_text, full)?;
    }
    for a in &attachments {
        writeln!(
            out,
            "Attachment {}: {} ({}, {} bytes) — mail attachment get {} {}",
            a.number,
            a.attachment.name,
            a.attachment.content_type,
            a.attachment.size,
            p.receipt_no,
            a.number
        )?;
    }
    for s in &sent {
        writeln!(
            out,
            "Sent: {} to {}, {} ({})",
            s.kind,
            s.recipient,
            s.state,
            at(s.sent_at.unwrap_or(s.created_at))
        )?;
    }
    match &p.disposition {
        None => writeln!(out, "Disposition: waiting")?,
        Some(d) => {
            writeln!(
                out,
                "Disposition: {}{} — by {} on {}",
                label_of(&d.disposition, Language::En),
                d.commitment
                    .as_deref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default(),
                d.decided_by,
                at(d.decided_at)
            )?;
            writeln!(out, "Response (sq): {}", d.response_sq)?;
            if let Some(en) = &d.response_en {
                writeln!(out, "Response (en): {en}")?;
            }
        }
    }
    if log.len() > 1 {
        writeln!(
            out,
            "Changed {} times: cocreate disposition log --consultation {}",
            log.len(),
            c.spec.reference
        )?;
    }
    Ok(())
}

fn fold(out: &mut impl Write, what: &str, text: &str, full: bool) -> std::io::Result<()> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(());
    }
    if full {
        writeln!(out, "[{what}]\n{}\n", printable(text))
    } else {
        let n = text.lines().count();
        writeln!(
            out,
            "[{what}: {} folded; --full shows it]",
            accountability::plural(n, "line")
        )
    }
}

pub async fn attachment(
    app: &App,
    command: AttachmentCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let AttachmentCommand::Get {
        receipt_no,
        number,
        output,
    } = command;
    let (p, _) = accountability::proposal_for(app, &Actor::terminal(), &receipt_no).await?;
    let follow_ups = app.store.follow_ups_of(p.id).await?;
    let listed = review::attachments(&p, &follow_ups);
    if listed.is_empty() {
        anyhow::bail!("{} has no attachments", p.receipt_no);
    }
    let n = number.unwrap_or(1);
    let Some(a) = listed.iter().find(|a| a.number == n) else {
        anyhow::bail!(
            "{} has {}; there is no number {n}",
            p.receipt_no,
            accountability::plural(listed.len(), "attachment")
        );
    };
    let bytes = review::bytes(app, a).await?;
    deliver(out, &bytes, output, &a.attachment.name, true)?;
    Ok(())
}

pub async fn disposition(
    app: &App,
    command: DispositionCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        DispositionCommand::Set {
            receipt_nos,
            disposition,
            commitment,
            response_sq,
            response_en,
        } => {
            let answer = Answer {
                disposition,
                commitment,
                response_sq,
                response_en,
            };
            let decided =
                accountability::decide(app, &Actor::terminal(), &receipt_nos, &answer).await?;
            writeln!(
                out,
                "{}: {} recorded for {}{}.",
                receipt_nos.join(", "),
                disposition.label(Language::En),
                accountability::plural(decided.changed.len(), "proposal"),
                if decided.corrections.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; the results were published, so the sender is told ({} queued)",
                        accountability::plural(decided.corrections.len(), "notice")
                    )
                }
            )?;
        }
        DispositionCommand::Log { consultation, json } => {
            let only = match &consultation {
                Some(r) => Some(
                    crate::outbound::outreach::find(app.store.as_ref(), r)
                        .await?
                        .id,
                ),
                None => None,
            };
            let log = app.store.disposition_log(only).await?;
            if json {
                serde_json::to_writer_pretty(&mut *out, &log)?;
                writeln!(out)?;
                return Ok(());
            }
            if log.is_empty() {
                writeln!(out, "No disposition has been recorded yet.")?;
            }
            let tz = app.config.office.time_zone;
            for e in log {
                writeln!(
                    out,
                    "{}  {}  {}: {} → {}{}",
                    e.at.with_timezone(&tz).format("%Y-%m-%d %H:%M"),
                    e.actor,
                    e.receipt_no,
                    e.before.as_ref().map_or_else(
                        || "waiting".into(),
                        |b| label_of(&b.disposition, Language::En)
                    ),
                    label_of(&e.after.disposition, Language::En),
                    match (e.correction, e.before.is_some()) {
                        (true, true) => " (correction after publication)",
                        (true, false) => " (first answer, after publication)",
                        _ => "",
                    }
                )?;
            }
        }
    }
    Ok(())
}

pub async fn report(app: &App, command: ReportCommand, out: &mut impl Write) -> anyhow::Result<()> {
    match command {
        ReportCommand::Export {
            reference,
            format,
            output,
        } => {
            let consultations = match &reference {
                Some(r) => vec![crate::outbound::outreach::find(app.store.as_ref(), r).await?],
                None => report::public_consultations(app).await?,
            };
            let built = report::build(app, &consultations, false, Language::Sq).await?;
            let bytes = report::export::write(&built, format)?;
            let what = format!(
                "the report of {} ({format})",
                accountability::plural(
                    usize::try_from(built.totals.proposals).unwrap_or(0),
                    "proposal"
                )
            );
            deliver(out, &bytes, output, &what, format == ExportFormat::Xlsx)?;
        }
        ReportCommand::Publish { reference } => {
            let published = accountability::publish(app, &Actor::terminal(), &reference).await?;
            writeln!(
                out,
                "Published the results of {}: {}; {} queued. The public report: {}",
                reference.trim().to_uppercase(),
                accountability::plural(published.proposals, "proposal"),
                accountability::plural(published.notices, "outcome notice"),
                accountability::notices::report_url(app, &reference.trim().to_uppercase())
            )?;
        }
    }
    Ok(())
}

/// Writes `bytes` to `output`, saying so, or to standard output: never a
/// binary file to a terminal, where it would be garbage.
fn deliver(
    out: &mut impl Write,
    bytes: &[u8],
    output: Option<PathBuf>,
    what: &str,
    binary: bool,
) -> anyhow::Result<()> {
    match output {
        Some(path) => {
            std::fs::write(&path, bytes)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            writeln!(
                out,
                "Wrote {what}, {} bytes, to {}",
                bytes.len(),
                path.display()
            )?;
        }
        None if binary && std::io::stdout().is_terminal() => anyhow::bail!(
            "{what} is a file, not text for the terminal: add --output FILE or redirect it (> file)"
        ),
        None => out.write_all(bytes)?,
    }
    Ok(())
}
