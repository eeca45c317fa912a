//! The `cocreate` command: parses arguments and hands each subcommand to the
//! library. Every failure ends here as one sentence on stderr and a non-zero
//! exit status.

use std::io::Write;
use std::process::ExitCode;

// The daemon renders pages and builds messages: many small allocations,
// which mimalloc serves faster than glibc's allocator (see the README's
// web form benchmark).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

use cocreate::app::App;
use cocreate::commands;
use cocreate::config::{Config, ConfigError};
use cocreate::domain::Bilingual;
use cocreate::registry::import::{ImportMode, ImportOptions};
use cocreate::store::records::RetryScope;

mod cli;

use cli::*;

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
