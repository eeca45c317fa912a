//! The `cocreate` command: parses arguments and hands each subcommand to the
//! library. Every failure ends here as one sentence on stderr and a non-zero
//! exit status.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

// The daemon renders pages and builds messages: many small allocations,
// which mimalloc serves faster than glibc's allocator (see the README's
// web form benchmark).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

use cocreate::app::App;
use cocreate::commands;
use cocreate::commands::consultation::SpecFlags;
use cocreate::config::{Config, ConfigError};
use cocreate::domain::Bilingual;
use cocreate::registry::import::{ImportMode, ImportOptions};
use cocreate::store::records::RetryScope;

/// cocreate takes civil society's proposals for an Open Government
/// Partnership action plan by email and web form, and keeps the record of how
/// each one was considered.
#[derive(Parser)]
#[command(name = "cocreate", version, propagate_version = true)]
struct Cli {
    /// Settings file [default: config/cocreate.toml if present, else the
    /// built-in default]. Any setting can also be given as an environment
    /// variable such as COCREATE_DATABASE_URL.
    #[arg(long, global = true, env = "COCREATE_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
enum ScheduleCommand {
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
enum DigestCommand {
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
enum PenCommand {
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
enum MailCommand {
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
enum ConsultationCommand {
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
enum OutreachCommand {
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
enum OutboxCommand {
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
enum ConfigCommand {
    /// Validate the settings and environment overrides without starting
    /// anything; prints what was read.
    Check,
}

#[derive(Subcommand)]
enum RegistryCommand {
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
enum RelevanceCommand {
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

fn main() -> ExitCode {
    // A bug must still end in one sentence, not a backtrace the POC cannot use.
    std::panic::set_hook(Box::new(|info| {
        let _ = writeln!(
            std::io::stderr(),
            "error: cocreate hit an internal error ({info}); please report this message"
        );
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help, --version, and a bare `cocreate mail` (which shows help).
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            e.exit()
        }
        Err(e) => return fail(&usage_error(&e), ExitCode::from(64)),
    };
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(&e, exit_code_for_config(&e)),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start: {e}"), ExitCode::FAILURE),
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        // `cocreate registry list | head`: the reader has what it wanted.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        // The MTA keeps the message and tries again later.
        Err(e) if e.downcast_ref::<commands::mail::NotStored>().is_some() => {
            fail(&e, ExitCode::from(75))
        }
        // EX_DATAERR: the MTA returns the message to its sender.
        Err(e) if e.downcast_ref::<commands::mail::Refused>().is_some() => {
            fail(&e, ExitCode::from(65))
        }
        Err(e) => fail(&e, ExitCode::FAILURE),
    }
}

/// A mistake on the command line in one sentence, like every other error:
/// clap's own message, its tip if it has one, and which --help to read.
/// Exit status 64, EX_USAGE from sysexits.h.
fn usage_error(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    // The message runs to the first blank line ("the following required
    // arguments were not provided:" names them on the lines below).
    let first = rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let first = first.trim_start_matches("error:").trim();
    let tip = rendered
        .lines()
        .find_map(|l| l.trim().strip_prefix("tip:"))
        .map(|t| format!("; {}", t.trim()))
        .unwrap_or_default();
    let command = rendered
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage:"))
        .map(|u| {
            u.split_whitespace()
                .take_while(|w| !w.starts_with(['[', '<', '-']))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "cocreate".into());
    format!("{first}{tip} (see `{command} --help`)")
}

fn exit_code_for_config(_: &ConfigError) -> ExitCode {
    // EX_CONFIG from sysexits.h: systemd and scripts can tell a bad config
    // from a failure at run time.
    ExitCode::from(78)
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    let broken = Some(std::io::ErrorKind::BrokenPipe);
    e.chain().any(|c| {
        // Sentences fail as io errors; `--json` fails inside serde_json,
        // which keeps the io error's kind but is not an io error itself.
        c.downcast_ref::<std::io::Error>().map(std::io::Error::kind) == broken
            || c.downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == broken
    })
}

fn fail(error: &dyn std::fmt::Display, code: ExitCode) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "error: {error}");
    code
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let ingest = matches!(command, Command::Mail(MailCommand::Ingest { .. }));
    let app = match command {
        Command::Config(ConfigCommand::Check) => {
            return commands::config::check(&config, &mut out).await;
        }
        Command::Serve { demo } => {
            cocreate::telemetry::init(&config.log);
            return Ok(cocreate::serve::run(config, demo).await?);
        }
        _ => match App::open(config).await {
            Ok(app) => app,
            // A piped message that cannot be stored stays with the MTA.
            Err(e) if ingest => return Err(commands::mail::NotStored(e.to_string()).into()),
            Err(e) => return Err(e.into()),
        },
    };
    let store = app.store.as_ref();
    let config = app.config.as_ref();
    match command {
        Command::Config(_) | Command::Serve { .. } => unreachable!("handled above"),
        Command::Registry(cmd) => match cmd {
            RegistryCommand::Import {
                file,
                dry_run,
                partial,
                encoding,
                allow_mass_inactivation,
                report,
                changes,
                json,
            } => {
                let options = ImportOptions {
                    mode: if partial {
                        ImportMode::Partial
                    } else {
                        ImportMode::Full
                    },
                    dry_run,
                    encoding,
                    allow_mass_inactivation,
                    list_changes: dry_run || json || changes.is_some(),
                };
                let files = commands::registry::ReportFiles {
                    problems: report.as_deref(),
                    changes: changes.as_deref(),
                };
                commands::registry::import(store, &file, &options, files, json, &mut out).await?;
            }
            RegistryCommand::List { inactive } => {
                commands::registry::list(store, inactive, &mut out).await?;
            }
            RegistryCommand::History => commands::registry::history(store, &mut out).await?,
            RegistryCommand::Match { policy_area, json } => {
                commands::registry::matches(store, config, policy_area.as_deref(), json, &mut out)
                    .await?;
            }
            RegistryCommand::Relevance(RelevanceCommand::Set {
                registration_no,
                policy_area,
                relevance,
                reason,
            }) => {
                commands::registry::set_override(
                    store,
                    config,
                    &registration_no,
                    &policy_area,
                    &relevance,
                    &reason,
                    &mut out,
                )
                .await?;
            }
            RegistryCommand::Relevance(RelevanceCommand::Clear {
                registration_no,
                policy_area,
            }) => {
                commands::registry::clear_override(
                    store,
                    config,
                    &registration_no,
                    &policy_area,
                    &mut out,
                )
                .await?;
            }
            RegistryCommand::Relevance(RelevanceCommand::List) => {
                commands::registry::list_overrides(store, &mut out).await?;
            }
            RegistryCommand::Addresses => commands::registry::addresses(store, &mut out).await?,
            RegistryCommand::Restore { address, reason } => {
                commands::registry::restore(store, &address, &reason, &mut out).await?;
            }
        },
        Command::Consultation(cmd) => {
            use commands::consultation as c;
            match *cmd {
                ConsultationCommand::Create(flags) => {
                    c::create(store, config, flags, &mut out).await?
                }
                ConsultationCommand::Edit {
                    consultation,
                    flags,
                    cancel_meeting,
                } => {
                    c::edit(&app, &consultation, flags, cancel_meeting, &mut out).await?;
                }
                ConsultationCommand::List => c::list(store, &mut out).await?,
                ConsultationCommand::Show { reference } => {
                    c::show(store, config, &reference, &mut out).await?;
                }
                ConsultationCommand::Open { reference } => {
                    c::open(&app, &reference, &mut out).await?;
                }
                ConsultationCommand::Close {
                    reference,
                    reason,
                    reason_en,
                } => {
                    let reason = reason.map(|r| Bilingual::sq_and_maybe_en(r, reason_en));
                    c::close(&app, &reference, reason.as_ref(), &mut out).await?;
                }
                ConsultationCommand::Extend {
                    reference,
                    until,
                    reason,
                    reason_en,
                } => {
                    let reason = Bilingual::sq_and_maybe_en(reason, reason_en);
                    c::extend(&app, &reference, until, &reason, &mut out).await?;
                }
            }
        }
        Command::Outreach(cmd) => match cmd {
            OutreachCommand::Preview { reference, json } => {
                commands::consultation::preview(store, config, &reference, json, &mut out).await?;
            }
            OutreachCommand::Send { reference } => {
                commands::consultation::send(&app, &reference, &mut out).await?;
            }
        },
        Command::Mail(MailCommand::Ingest {
            files,
            maildir,
            imap,
            json,
        }) => {
            if imap {
                return commands::mail::ingest_imap(&app, &mut out).await;
            }
            return commands::mail::ingest(&app, &files, maildir.as_deref(), json, &mut out).await;
        }
        Command::Mail(MailCommand::Show { id, raw }) => {
            commands::mail::show(store, config, id, raw, &mut out).await?;
        }
        Command::Mail(MailCommand::Pen(cmd)) => match cmd {
            PenCommand::List => commands::mail::pen_list(store, &mut out).await?,
            PenCommand::Show { id } => {
                commands::mail::show(store, config, id, false, &mut out).await?;
            }
            PenCommand::Assign {
                id,
                consultation,
                cso,
                outside,
                individual: _,
            } => {
                commands::mail::pen_assign(
                    &app,
                    id,
                    &consultation,
                    cso.as_deref(),
                    outside.as_deref(),
                    &mut out,
                )
                .await?;
            }
            PenCommand::Discard { id, reason } => {
                commands::mail::pen_discard(store, id, &reason, &mut out).await?;
            }
            PenCommand::Summary { send } => {
                commands::mail::pen_summary(&app, send, &mut out).await?;
            }
        },
        Command::Mail(MailCommand::Reprocess { ids, held, json }) => {
            commands::mail::reprocess(&app, &ids, held, json, &mut out).await?;
        }
        Command::Mail(MailCommand::Proposals(args)) => {
            commands::review::proposals(&app, args, &mut out).await?;
        }
        Command::Mail(MailCommand::Attachment(cmd)) => {
            commands::review::attachment(&app, cmd, &mut out).await?;
        }
        Command::Disposition(cmd) => commands::review::disposition(&app, cmd, &mut out).await?,
        Command::Report(cmd) => commands::review::report(&app, cmd, &mut out).await?,
        Command::Mail(MailCommand::Inspect { file }) => {
            let raw = if file.as_os_str() == "-" {
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
                buf
            } else {
                std::fs::read(&file)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?
            };
            let inspection = cocreate::inbound::inspect::inspect(store, config, &raw).await?;
            serde_json::to_writer_pretty(&mut out, &inspection)?;
            writeln!(out)?;
        }
        Command::Outbox(cmd) => match cmd {
            OutboxCommand::Status => commands::outbox::status(store, config, &mut out).await?,
            OutboxCommand::Flush => commands::outbox::flush(&app, &mut out).await?,
            OutboxCommand::Retry { now, refused } => {
                let scope = RetryScope {
                    deferred_now: now,
                    refused,
                };
                commands::outbox::retry(store, scope, &mut out).await?
            }
        },
        Command::Schedule(cmd) => match cmd {
            ScheduleCommand::List => commands::schedule::list(&app, &mut out).await?,
            ScheduleCommand::Run { job } => {
                commands::schedule::run(&app, job.as_deref(), &mut out).await?
            }
        },
        Command::Digest(cmd) => match cmd {
            DigestCommand::Preview { lfp } => {
                commands::schedule::preview(&app, &lfp, &mut out).await?
            }
            DigestCommand::Send { lfp } => commands::schedule::send(&app, &lfp, &mut out).await?,
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }

    /// `--help` explains every command, argument and flag: a POC at a
    /// terminal has nothing else to go by.
    #[test]
    fn every_command_argument_and_flag_has_a_description() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") || arg.is_hide_set() {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                let sub_path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(sub_path.clone());
                }
                walk(sub, &sub_path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "cocreate", &mut missing);
        assert!(missing.is_empty(), "no description: {missing:#?}");
    }
}
