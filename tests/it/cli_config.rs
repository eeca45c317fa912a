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
    assert!(text.contains("  listen:   127.0.0.1:8080\n"));
    assert!(text.contains("  policy areas: 5\n"));

    // Without a config folder, the same defaults are built in.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = check(elsewhere.path(), &[], &[]);
    assert!(stdout(&out).starts_with("the built-in default config is valid.\n"));
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
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("  listen:   0.0.0.0:9999\n"), "{text}");
    assert!(
        text.contains("  database: postgres://cocreate:***@db.internal/cocreate\n"),
        "a password from the environment is accepted and never printed: {text}"
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
            file.replace("url = \"sqlite:data/cocreate.db\"", "url = \"postgres://u:pw@h/db\""),
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
