//! Settings as the POC meets them: the shipped file, overrides from the
//! environment, and each kind of mistake named in one sentence.

use std::path::Path;
use std::process::Command;

use crate::common::{stderr, stdout, write};

fn check(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cocreate"));
    cmd.current_dir(dir).env_remove("COCREATE_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args).args(["config", "check"]).output().unwrap()
}

fn shipped() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/cocreate.toml"))
        .unwrap()
}

#[test]
fn the_shipped_file_works_as_it_is() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = check(repo, &[], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("config/cocreate.toml is valid.\n"),
        "{text}"
    );
    for line in [
        "  listen:             127.0.0.1:8080, public address http://127.0.0.1:8080\n",
        "  outbox:             file: each message written to ",
        "  imap:               off\n",
        "  lmtp:               off\n",
        "  webhook:            off (COCREATE_WEBHOOK_SECRET is not set)\n",
        "  lfp_digest:         \"0 8 * * Mon\" in Europe/Tirane\n",
        "  policy areas: 5\n",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    // The shipped file's paths are relative to its folder: data/ beside
    // config/, wherever cocreate is started from.
    let data = repo.join("data");
    assert!(
        text.contains(&format!(
            "  database:           sqlite:{}, cache 16 MiB and memory map 0 MiB a connection\n",
            data.join("cocreate.db").display()
        )),
        "{text}"
    );

    // Without a config folder, the same defaults are built in.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = check(elsewhere.path(), &[], &[]);
    assert!(stdout(&out).starts_with("the built-in default config is valid.\n"));
    assert!(
        stdout(&out).contains(&format!(
            "sqlite:{}, cache",
            elsewhere.path().join("data/cocreate.db").display()
        )),
        "the built-in default reads as config/cocreate.toml in the current folder: {}",
        stdout(&out)
    );
}

/// A string setting from the environment that is wrong is blamed on its
/// variable, as numbers are, not on the file.
#[test]
fn a_bad_value_from_the_environment_names_its_variable() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value, expected) in [
        (
            "COCREATE_OUTBOX_TRANSPORT",
            "smpt",
            "error: environment variable COCREATE_OUTBOX_TRANSPORT: `outbox.transport` is wrong: unknown variant `smpt`, expected `file` or `smtp`\n",
        ),
        (
            "COCREATE_LOG_LEVEL",
            "loud",
            "error: environment variable COCREATE_LOG_LEVEL: `log.level` must be one of error, warn, info, debug, trace, not 'loud'\n",
        ),
    ] {
        let out = check(dir.path(), &[], &[(var, value)]);
        assert_eq!(out.status.code(), Some(78));
        assert_eq!(stderr(&out), expected);
    }
    let out = check(
        dir.path(),
        &[],
        &[("COCREATE_SCHEDULES_LFP_DIGEST", "0 8 * * funday")],
    );
    assert!(
        stderr(&out).starts_with(
            "error: environment variable COCREATE_SCHEDULES_LFP_DIGEST: `schedules.lfp_digest` is wrong: '0 8 * * funday' is not a schedule"
        ),
        "{}",
        stderr(&out)
    );
}

/// A relative path in a config file is relative to the file's folder, so
/// the same file opens the same database from any folder.
#[test]
fn a_relative_database_path_is_relative_to_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("etc");
    std::fs::create_dir(&conf).unwrap();
    let text = shipped().replace(
        "url = \"sqlite:../data/cocreate.db\"",
        "url = \"sqlite:db/cocreate.db\"",
    );
    let file = write(&conf, "cocreate.toml", &text);
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let out = check(&elsewhere, &["--config", file.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let db = conf.join("db/cocreate.db");
    assert!(
        stdout(&out).contains(&format!(
            "  database:           sqlite:{}, cache 16 MiB and memory map 0 MiB a connection\n",
            db.display()
        )),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).ends_with("The database does not exist yet: it is created at start.\n"));
    let import = Command::new(env!("CARGO_BIN_EXE_cocreate"))
        .current_dir(&elsewhere)
        .env_remove("COCREATE_CONFIG")
        .args(["--config", file.to_str().unwrap(), "registry", "list"])
        .output()
        .unwrap();
    assert!(import.status.success(), "{}", stderr(&import));
    assert!(db.is_file(), "the database is beside the config file");
    assert!(!elsewhere.join("db").exists(), "not in the current folder");
    let out = check(&elsewhere, &["--config", file.to_str().unwrap()], &[]);
    assert!(
        stdout(&out).ends_with("The database opens; its schema is up to date.\n"),
        "{}",
        stdout(&out)
    );
}

/// `config check` opens the database: one that cannot be is an error in
/// one sentence after the settings are shown.
#[test]
fn config_check_says_when_the_database_cannot_be_opened() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = write(dir.path(), "not-a-folder", "x");
    let url = format!("sqlite:{}/cocreate.db", blocker.display());
    let out = check(dir.path(), &[], &[("COCREATE_DATABASE_URL", url.as_str())]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("  policy areas: 5\n"));
    assert!(
        stderr(&out).starts_with(&format!(
            "error: cannot create the folder {} for the database: ",
            blocker.display()
        )),
        "{}",
        stderr(&out)
    );
    // Nothing listens on port 9 of this machine.
    let out = check(
        dir.path(),
        &[],
        &[(
            "COCREATE_DATABASE_URL",
            "postgres://cocreate@127.0.0.1:9/cocreate",
        )],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with(
            "error: cannot open the database postgres://cocreate@127.0.0.1:9/cocreate: "
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

#[test]
fn environment_variables_override_single_settings() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(
        dir.path(),
        &[],
        &[
            ("COCREATE_SERVER_LISTEN", "0.0.0.0:9999"),
            (
                "COCREATE_DATABASE_URL",
                "postgres://cocreate:secret@db.internal/cocreate",
            ),
        ],
    );
    let text = stdout(&out);
    assert!(
        text.contains("  listen:             0.0.0.0:9999, "),
        "{text}"
    );
    assert!(
        text.contains(
            "  database:           postgres://cocreate:***@db.internal/cocreate, 8 connections\n"
        ),
        "a password from the environment is accepted and never printed: {text}"
    );
    // That server does not exist: the check says so, password hidden.
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with(
            "error: cannot open the database postgres://cocreate:***@db.internal/cocreate: "
        ),
        "{}",
        stderr(&out)
    );
}

/// A config file's text, extra environment, and the end of the expected error.
type Case = (String, Vec<(&'static str, &'static str)>, String);

#[test]
fn each_mistake_is_one_sentence_with_exit_status_78() {
    let dir = tempfile::tempdir().unwrap();
    let file = shipped();
    let cases: Vec<Case> = vec![
        (
            file.replace("listen = \"127.0.0.1:8080\"", "listen = \"localhost\""),
            vec![],
            "`server.listen` is wrong: invalid socket address syntax".into(),
        ),
        (
            file.replace("\nlisten = ", "\nlistne = "),
            vec![],
            "`server.listne` is not a setting (expected one of `listen`, `public_url`, `max_connections`, `header_timeout_seconds`, `request_timeout_seconds`, `shutdown_grace_seconds`)".into(),
        ),
        (
            file.replace("url = \"sqlite:../data/cocreate.db\"", "url = \"postgres://u:pw@h/db\""),
            vec![],
            "`database.url` contains a password; put it in the environment variable named by database.password_env instead".into(),
        ),
        (
            file.replace("time_zone = \"Europe/Tirane\"", "time_zone = \"Tirana\""),
            vec![],
            "`office.time_zone` must be a time zone name like Europe/Tirane, not 'Tirana'".into(),
        ),
        (
            file.replace("code = \"FISCAL\"", "code = \"ANTICOR\""),
            vec![],
            "`policy_areas[3].code` is 'ANTICOR', which another area or group already uses".into(),
        ),
        (
            file.replace("emails = [\"ogp-anticor@justice.example\"]", "emails = [\"ogp-anticor\"]"),
            vec![],
            "`policy_areas[0].lfp.emails` is wrong: 'ogp-anticor' is not an email address".into(),
        ),
        (
            file.replace("\"whistleblow*\"", "\"whistle*blow\""),
            vec![],
            "`policy_areas[0].direct_keywords` has the keyword 'whistle*blow', where `*` may only end a word".into(),
        ),
        (
            file.clone(),
            vec![("COCREATE_DATABASE_MAX_CONNECTIONS", "lots")],
            "`database.max_connections` must be a whole number, not 'lots'".into(),
        ),
    ];
    for (text, env, expected) in cases {
        let path = write(dir.path(), "c.toml", &text);
        let out = check(dir.path(), &["--config", path.to_str().unwrap()], &env);
        assert_eq!(out.status.code(), Some(78), "{expected}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: "), "{err}");
        assert!(
            err.trim_end().ends_with(&expected),
            "expected …{expected}\n got {err}"
        );
    }

    let out = check(dir.path(), &[], &[("COCREATE_SERVR_LISTEN", "x")]);
    assert_eq!(
        stderr(&out),
        "error: environment variable COCREATE_SERVR_LISTEN does not name a cocreate setting (settings look like COCREATE_SERVER_LISTEN)\n"
    );
    let broken = write(dir.path(), "broken.toml", "[server\nlisten = 1\n");
    let out = check(dir.path(), &["--config", broken.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(78));
    assert!(
        stderr(&out).contains("broken.toml is not valid TOML: "),
        "{}",
        stderr(&out)
    );
    let out = check(dir.path(), &["--config", "missing.toml"], &[]);
    assert_eq!(
        stderr(&out),
        "error: cannot read the config file missing.toml: No such file or directory (os error 2)\n"
    );
}

#[test]
fn help_explains_every_command_without_the_source() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["registry", "import", "--help"],
        vec!["registry", "relevance", "set", "--help"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_cocreate"))
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(stdout(&out).contains("Usage: cocreate"), "{args:?}");
    }
    let import = Command::new(env!("CARGO_BIN_EXE_cocreate"))
        .args(["registry", "import", "--help"])
        .output()
        .unwrap();
    let text = stdout(&import);
    for word in ["--dry-run", "--partial", "Windows-1250", "marked inactive"] {
        assert!(text.contains(word), "{word} missing from:\n{text}");
    }
}

/// On PostgreSQL, `config check` reads how far the schema is without
/// changing it: a new database is empty until the first start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL (COCREATE_TEST_POSTGRES_URL)"]
async fn config_check_reads_a_postgres_schema_without_changing_it() {
    let db = crate::common::TestDb::postgres().await.unwrap_or_else(|| {
        panic!(
            "{} must name a PostgreSQL server",
            crate::common::POSTGRES_ENV
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let url = db.url.clone();
    let run = move |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cocreate"));
        cmd.current_dir(dir.path())
            .env_remove("COCREATE_CONFIG")
            .env("COCREATE_DATABASE_URL", &url)
            .args(args)
            .output()
            .unwrap()
    };
    let checked = tokio::task::spawn_blocking(move || {
        let before = run(&["config", "check"]);
        let list = run(&["registry", "list"]);
        let after = run(&["config", "check"]);
        (before, list, after)
    })
    .await
    .unwrap();
    let (before, list, after) = checked;
    assert!(before.status.success(), "{}", stderr(&before));
    assert!(
        stdout(&before).ends_with("The database opens; empty: its tables are created at start.\n"),
        "{}",
        stdout(&before)
    );
    assert!(list.status.success(), "{}", stderr(&list));
    assert!(
        stdout(&after).ends_with("The database opens; its schema is up to date.\n"),
        "{}",
        stdout(&after)
    );
}

/// A mistake on the command line is one sentence, like every other error,
/// naming the --help to read; exit status 64 (EX_USAGE).
#[test]
fn usage_errors_are_one_sentence() {
    let dir = tempfile::tempdir().unwrap();
    for (args, expected) in [
        (
            vec!["mail", "shwo", "1"],
            "error: unrecognized subcommand 'shwo'; a similar subcommand exists: 'show' (see `cocreate mail --help`)\n",
        ),
        (
            vec!["consultation", "extend", "OGP-X", "--until", "2027-01-01"],
            "error: the following required arguments were not provided: --reason <TEXT> (see `cocreate consultation extend --help`)\n",
        ),
        (
            vec!["registry", "import", "r.csv", "--jsno"],
            "error: unexpected argument '--jsno' found; a similar argument exists: '--json' (see `cocreate registry import --help`)\n",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_cocreate"))
            .current_dir(dir.path())
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        assert_eq!(stderr(&out), expected, "{args:?}");
    }
}

/// `cocreate registry list | head -1`: the reader closing the pipe ends
/// cocreate quietly, with no error and no "internal error".
#[test]
fn a_closed_pipe_ends_quietly() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let db = crate::common::TestDb::sqlite();
    let registry = write(dir.path(), "r.csv", crate::common::registry_csv(1, 3_000));
    let import = crate::common::cocreate(
        dir.path(),
        &db,
        &["registry", "import", registry.to_str().unwrap()],
    );
    assert!(import.status.success(), "{}", stderr(&import));
    // Lines for a person, and JSON (which failed with "error: Broken pipe
    // (os error 32)": serde_json wraps the io error).
    for (args, first_line) in [
        (["registry", "list"].as_slice(), "REG-000001"),
        (["registry", "match", "--json"].as_slice(), "["),
    ] {
        let mut child = crate::common::command(dir.path(), &db)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(first.starts_with(first_line), "{args:?}: {first}");
        // The reader is gone (dropped above) with ~300 KB still to write.
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?}: {:?}", out.status);
        assert_eq!(stderr(&out), "", "{args:?}");
    }
}
