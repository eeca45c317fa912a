//! The command line's shape: every command, argument and flag with its
//! `--help` text, as clap reads them. `main.rs` hands each to the library.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use cocreate::commands;
use cocreate::commands::consultation::SpecFlags;

/// cocreate takes civil society's proposals for an Open Government
/// Partnership action plan by email and web form, and keeps the record of how
/// each one was considered.
#[derive(Parser)]
#[command(name = "cocreate", version, propagate_version = true)]
pub(crate) struct Cli {
    /// Settings file [default: config/cocreate.toml if present, else the
    /// built-in default]. Any setting can also be given as an environment
    /// variable such as COCREATE_DATABASE_URL.
    #[arg(long, global = true, env = "COCREATE_CONFIG", value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run the daemon: web server and health check on the configured address.
    Serve {
        /// First load 300 fictional organisations and the example policy
        /// areas, to try cocreate out. Safe to run again.
        #[arg(long)]
        demo: bool,
    },
    /// Check the settings file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The registry of civil-society organisations (CSOs).
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Consultations: create, edit, open, close, extend.
    #[command(subcommand)]
    Consultation(Box<ConsultationCommand>),
    /// Invitations to a consultation's relevant CSOs.
    #[command(subcommand)]
    Outreach(OutreachCommand),
    /// The queue every outgoing message goes through.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Inbound mail.
    #[command(subcommand)]
    Mail(MailCommand),
    /// The scheduled jobs ([schedules] in the config).
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// The weekly digests to LFPs.
    #[command(subcommand)]
    Digest(DigestCommand),
    /// How each proposal was considered: dispositions with reasoned
    /// responses, and their audit log.
    #[command(subcommand)]
    Disposition(commands::review::DispositionCommand),
    /// The public report: exports, and publishing a consultation's results.
    #[command(subcommand)]
    Report(commands::review::ReportCommand),
}

#[derive(Subcommand)]
pub(crate) enum ScheduleCommand {
    /// Each job, its schedule, its next three runs and its last run.
    List,
    /// Run every job whose time has come (or only JOB), once, as `serve`
    /// does: for a server run from cron, or to catch up now.
    Run {
        /// consultations, deadline_reminders, lfp_digest,
        /// response_reminders or pen_summary.
        job: Option<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum DigestCommand {
    /// Print an LFP's next digest as it would be sent now, without sending
    /// it or moving its watermark.
    Preview {
        /// The LFP, by its policy area's code (e.g. FISCAL).
        #[arg(long, value_name = "CODE")]
        lfp: String,
    },
    /// Send an LFP's digest now: everything since its last one.
    Send {
        /// The LFP, by its policy area's code (e.g. FISCAL).
        #[arg(long, value_name = "CODE")]
        lfp: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum PenCommand {
    /// What waits, with the reason.
    List,
    /// One message: sender, subject, attachments and what was written.
    Show {
        /// The message's number (#N in `mail pen list` and the logs).
        id: i64,
    },
    /// Make it a proposal of this CSO (or of a sender outside the registry)
    /// in this consultation; the receipt goes out.
    Assign {
        /// The message's number (#N in `mail pen list` and the logs).
        id: i64,
        /// The consultation's reference, e.g. OGP-2026-FISCAL.
        #[arg(long, value_name = "REFERENCE")]
        consultation: String,
        /// The CSO's registration number.
        #[arg(long, value_name = "REGNO", required_unless_present_any = ["outside", "individual"])]
        cso: Option<String>,
        /// An organisation outside the registry, by its name: recorded as
        /// such, with no registry entry made up for it.
        #[arg(long, value_name = "NAME", conflicts_with_all = ["cso", "individual"])]
        outside: Option<String>,
        /// A person writing for themselves.
        #[arg(long, conflicts_with = "cso")]
        individual: bool,
    },
    /// Set it aside (it is kept, with the reason).
    Discard {
        /// The message's number (#N in `mail pen list` and the logs).
        id: i64,
        /// Why: kept with the message.
        #[arg(long)]
        reason: String,
    },
    /// The POC's daily summary of what waits: shown, or with --send queued
    /// now (`serve` queues it on the schedules.pen_summary schedule).
    Summary {
        /// Queue it for the POC now instead of showing it here.
        #[arg(long)]
        send: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum MailCommand {
    /// Take in mail: one message on standard input (for an MTA pipe or
    /// .forward), or the given .eml files. Each is stored before anything
    /// else, then made into a proposal with a receipt, recognised as machine
    /// mail, or put in the holding pen. Exits 75 (EX_TEMPFAIL) when a message
    /// could not be stored, so the MTA tries again.
    Ingest {
        /// .eml files; none means one message on standard input.
        files: Vec<PathBuf>,
        /// Take in every message in this maildir's new/ folder instead.
        #[arg(long, value_name = "DIR", conflicts_with = "files")]
        maildir: Option<PathBuf>,
        /// Take in the messages of the configured IMAP mailbox not yet taken.
        #[arg(long, conflicts_with_all = ["files", "maildir"])]
        imap: bool,
        /// One JSON object a line, for scripts, instead of sentences.
        #[arg(long)]
        json: bool,
    },
    /// One stored message (#N in `mail pen list` and the logs): where it
    /// came from, what became of it and why, and what it says.
    Show {
        /// The message's number (#N in `mail pen list` and the logs).
        id: i64,
        /// Print the message exactly as it arrived, nothing else.
        #[arg(long)]
        raw: bool,
    },
    /// The proposals received, with filters; `show RECEIPT_NO` for one.
    Proposals(commands::review::ProposalsArgs),
    /// The attachments of a proposal's thread.
    #[command(subcommand)]
    Attachment(commands::review::AttachmentCommand),
    /// Messages cocreate could not thread, waiting for the POC.
    #[command(subcommand)]
    Pen(PenCommand),
    /// Run stored messages through the pipeline again (after a fix, or for
    /// the holding pen). Nothing is duplicated.
    Reprocess {
        /// Message numbers (#N in `mail pen list`).
        ids: Vec<i64>,
        /// Every message in the holding pen.
        #[arg(long)]
        held: bool,
        /// One JSON object a line, for scripts, instead of sentences.
        #[arg(long)]
        json: bool,
    },
    /// Show, as JSON, how cocreate reads one message: its classification,
    /// where it would be threaded and why, and what the sender wrote apart
    /// from quotes and signature. Changes nothing.
    Inspect {
        /// An .eml file, or - for standard input.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
pub(crate) enum ConsultationCommand {
    /// Create a consultation (as a draft) from a TOML file and/or flags.
    ///
    /// The period must be at least the legal minimum of working days
    /// (Law 146/2014, Art. 15; weekends and configured holidays do not
    /// count), unless --short-period-reason says why.
    Create(#[command(flatten)] SpecFlags),
    /// Change a draft or open consultation; flags replace single values.
    ///
    /// Moving an open consultation's meeting (time, length, place, link)
    /// tells every invited CSO, with a calendar file that updates the event.
    Edit {
        /// The consultation's current reference.
        #[arg(value_name = "REFERENCE")]
        consultation: String,
        #[command(flatten)]
        flags: SpecFlags,
        /// Cancel the meeting; invited CSOs get a calendar file that removes it.
        #[arg(long, conflicts_with_all = ["meeting_at", "meeting_minutes", "meeting_place", "meeting_link"])]
        cancel_meeting: bool,
    },
    /// List all consultations.
    List,
    /// Show one consultation in full.
    Show {
        /// The consultation's reference, e.g. OGP-2026-FISCAL.
        reference: String,
    },
    /// Open a draft: now if its opening date has come (then send the
    /// invitations with `outreach send`), otherwise on that date, when the
    /// schedule opens it and sends the invitations itself.
    Open {
        /// The consultation's reference, e.g. OGP-2026-FISCAL.
        reference: String,
    },
    /// Close an open consultation; mail about it still queued is cancelled.
    Close {
        /// The consultation's reference, e.g. OGP-2026-FISCAL.
        reference: String,
        /// Why it closes before its announced deadline, in Albanian: needed
        /// then, and sent to every invited CSO.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// The reason in English, for CSOs that read English (without it
        /// they get the Albanian text).
        #[arg(long, value_name = "TEXT", requires = "reason")]
        reason_en: Option<String>,
    },
    /// Move an open consultation's deadline later; the invited CSOs are told.
    Extend {
        /// The consultation's reference, e.g. OGP-2026-FISCAL.
        reference: String,
        /// The new last day, YYYY-MM-DD.
        #[arg(long, value_name = "DATE")]
        until: chrono::NaiveDate,
        /// Why, in Albanian: recorded and sent to the CSOs.
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// The reason in English, for CSOs that read English (without it
        /// they get the Albanian text).
        #[arg(long, value_name = "TEXT")]
        reason_en: Option<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum OutreachCommand {
    /// List exactly who will be invited and why, and who is left out and why.
    Preview {
        /// The consultation's reference, e.g. OGP-2026-FISCAL.
        reference: String,
        /// Print JSON instead of lines for a person.
        #[arg(long)]
        json: bool,
    },
    /// Queue one personal invitation per relevant CSO address not yet
    /// invited. Safe to run again: no one is invited twice.
    Send {
        /// The consultation's reference, e.g. OGP-2026-FISCAL.
        reference: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum OutboxCommand {
    /// Counts by state, deferred messages with their last error and next
    /// attempt, and the last failures.
    Status,
    /// Deliver everything due now, once (`serve` does this continuously).
    Flush,
    /// Put failed messages back in the queue.
    Retry {
        /// Also try deferred messages now, not at their next attempt.
        #[arg(long)]
        now: bool,
        /// Also retry messages whose address was refused for good (after
        /// the refusal was found to be wrong).
        #[arg(long)]
        refused: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum ConfigCommand {
    /// Validate the settings and environment overrides without starting
    /// anything; prints what was read.
    Check,
}

#[derive(Subcommand)]
pub(crate) enum RegistryCommand {
    /// Import the registry office's CSV export.
    ///
    /// Columns are found by their header (Albanian or English, any order):
    /// registration number, name, email, phone, city/district, fields of
    /// activity, language (sq or en; empty means sq). UTF-8, Windows-1250 and
    /// Windows-1252 files and `;` or `,` separators are all read. Importing
    /// the same file again changes nothing; organisations missing from the
    /// file are marked inactive, never deleted.
    Import {
        /// The CSV file.
        file: PathBuf,
        /// Show what would change, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// The file holds only some organisations: add and update them, mark
        /// no one inactive.
        #[arg(long)]
        partial: bool,
        /// Read the file in this encoding (e.g. windows-1250) instead of
        /// detecting it.
        #[arg(long, value_name = "NAME")]
        encoding: Option<String>,
        /// Let a full import mark more than half of the active organisations
        /// inactive.
        #[arg(long)]
        allow_mass_inactivation: bool,
        /// Also write every skipped row and note to this CSV file.
        #[arg(long, value_name = "FILE.csv")]
        report: Option<PathBuf>,
        /// Also write each organisation added, updated (each field's old and
        /// new value) or inactivated to this CSV file.
        #[arg(long, value_name = "FILE.csv")]
        changes: Option<PathBuf>,
        /// Print the summary as JSON, each change included.
        #[arg(long)]
        json: bool,
    },
    /// List the organisations.
    List {
        /// Include organisations no longer in the registry.
        #[arg(long)]
        inactive: bool,
    },
    /// Show past imports.
    History,
    /// Show which organisations each policy area reaches, and why.
    Match {
        /// Only this policy area (its code, e.g. ANTICOR).
        #[arg(long, value_name = "CODE")]
        policy_area: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Override a match, for cases the keywords get wrong.
    #[command(subcommand)]
    Relevance(RelevanceCommand),
    /// Addresses that opted out of consultation mail or bounced, and when.
    Addresses,
    /// Let an address that opted out or bounced receive consultation mail again.
    Restore {
        /// The email address.
        address: String,
        /// Why: kept with the address.
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum RelevanceCommand {
    /// Make an organisation directly, indirectly or not relevant to a policy
    /// area, whatever its fields of activity say. Survives re-imports.
    Set {
        /// Registration number of the organisation.
        registration_no: String,
        /// Policy area code, e.g. ANTICOR.
        policy_area: String,
        /// direct, indirect or none.
        relevance: String,
        /// Why: kept with the decision.
        #[arg(long)]
        reason: String,
    },
    /// Remove an override: keywords decide again.
    Clear {
        /// The organisation's registration number.
        registration_no: String,
        /// Policy area code, e.g. ANTICOR.
        policy_area: String,
    },
    /// List all overrides.
    List,
}
