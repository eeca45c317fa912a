//! The IMAP source against a real Dovecot started by the test: a reply in
//! the mailbox is stored, then marked, and a second run (a restart) does not
//! take it twice.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestDb, cocreate, fiscal_consultation, stderr, stdout, write};

struct Dovecot {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A throw-away Dovecot: one user `ogp` with password `secret`, maildir
/// storage, plain IMAP on a free local port.
fn dovecot() -> Dovecot {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for sub in ["run", "state", "mail", "home"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    // Mail is owned by an unprivileged user: Dovecot refuses uid 0.
    let chown = Command::new("chown")
        .args(["-R", "nobody:nogroup"])
        .arg(d.join("mail"))
        .arg(d.join("home"))
        .status()
        .unwrap();
    assert!(chown.success());
    std::fs::write(d.join("passwd"), "ogp:{PLAIN}secret\n").unwrap();
    let conf = format!(
        "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\nprotocols = imap\n\
         listen = 127.0.0.1\nssl = no\ndisable_plaintext_auth = no\nauth_mechanisms = plain login\n\
         mail_location = maildir:{d}/mail/%u\n\
         passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/passwd\n}}\n\
         userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={d}/home/%u\n}}\n\
         service imap-login {{\n  chroot =\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
         service anvil {{\n  chroot =\n}}\n",
        d = d.display()
    );
    std::fs::write(d.join("dovecot.conf"), conf).unwrap();
    let child = Command::new("dovecot")
        .args(["-F", "-c"])
        .arg(d.join("dovecot.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dovecot (Debian dovecot-imapd) must be installed");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "Dovecot did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Dovecot {
        child,
        port,
        _dir: dir,
    }
}

/// Speaks IMAP with Python's imaplib, as a second, independent client.
fn imap(port: u16, script: &str) -> String {
    let program = format!(
        "import imaplib,sys\nm=imaplib.IMAP4('127.0.0.1',{port})\nm.login('ogp','secret')\nm.select('INBOX')\n{script}\n"
    );
    let out = Command::new("/usr/bin/python3")
        .args(["-c", &program])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run(dir: &Path, db: &TestDb, port: u16, args: &[&str]) -> std::process::Output {
    common::command(dir, db)
        .env("COCREATE_INBOUND_IMAP_HOST", "127.0.0.1")
        .env("COCREATE_INBOUND_IMAP_PORT", port.to_string())
        .env("COCREATE_INBOUND_IMAP_SECURITY", "none")
        .env("COCREATE_INBOUND_IMAP_USERNAME", "ogp")
        .env("COCREATE_IMAP_PASSWORD", "secret")
        .env("COCREATE_OUTBOX_FILE_DIR", dir.join("outbox"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
#[ignore = "needs Dovecot (Debian dovecot-imapd)"]
fn a_reply_in_the_mailbox_is_stored_then_marked_and_never_taken_twice() {
    let server = dovecot();
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let registry = write(
        dir.path(),
        "r.csv",
        "Registration number,Name,Email,Fields of activity\nF1,Qendra,buxheti@cso.example.org,Buxhet\n",
    );
    let spec = fiscal_consultation(dir.path(), "OGP-IMAP");
    for args in [
        vec!["registry", "import", registry.to_str().unwrap()],
        vec!["consultation", "create", "--file", spec.to_str().unwrap()],
        vec!["consultation", "open", "OGP-IMAP"],
    ] {
        assert!(cocreate(dir.path(), &db, &args).status.success());
    }
    imap(
        server.port,
        "m.append('INBOX', None, None, b'From: buxheti@cso.example.org\\r\\nTo: ogp-poc@office.example\\r\\nSubject: Propozim\\r\\nMessage-ID: <imap1@cso.example.org>\\r\\n\\r\\nPropozim nga IMAP.\\r\\n')",
    );

    let first = run(dir.path(), &db, server.port, &["mail", "ingest", "--imap"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(
        stdout(&first),
        "Took in 1 message from INBOX on 127.0.0.1.\n"
    );
    let marked = imap(
        server.port,
        "print(m.uid('SEARCH','KEYWORD','$CocreateTaken')[1][0].decode())",
    );
    assert_eq!(marked.trim(), "1", "marked after it was stored");
    let unread = imap(
        server.port,
        "print(m.uid('SEARCH','UNSEEN')[1][0].decode())",
    );
    assert_eq!(
        unread.trim(),
        "1",
        "still unread for the people using the mailbox"
    );

    // A restart: nothing is taken twice.
    let second = run(dir.path(), &db, server.port, &["mail", "ingest", "--imap"]);
    assert_eq!(
        stdout(&second),
        "Took in 0 messages from INBOX on 127.0.0.1.\n"
    );
    let proposals = stdout(&cocreate(dir.path(), &db, &["mail", "proposals"]));
    assert_eq!(proposals.lines().count(), 1, "{proposals}");
    assert!(proposals.contains("Propozim nga IMAP."));

    let wrong = common::command(dir.path(), &db)
        .env("COCREATE_INBOUND_IMAP_HOST", "127.0.0.1")
        .env("COCREATE_INBOUND_IMAP_PORT", server.port.to_string())
        .env("COCREATE_INBOUND_IMAP_SECURITY", "none")
        .env("COCREATE_INBOUND_IMAP_USERNAME", "ogp")
        .env("COCREATE_IMAP_PASSWORD", "wrong")
        .args(["mail", "ingest", "--imap"])
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        stderr(&wrong).starts_with("error: the IMAP server refused the login for ogp: "),
        "{}",
        stderr(&wrong)
    );
}

/// `serve` waits on the mailbox with IDLE: a reply appended while it waits
/// is taken in at once, though the polling interval is ten minutes.
#[test]
#[ignore = "needs Dovecot (Debian dovecot-imapd)"]
fn serve_takes_a_new_reply_in_as_it_arrives_with_idle() {
    let server = dovecot();
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let spec = fiscal_consultation(dir.path(), "OGP-IDLE");
    for args in [
        vec!["consultation", "create", "--file", spec.to_str().unwrap()],
        vec!["consultation", "open", "OGP-IDLE"],
    ] {
        assert!(cocreate(dir.path(), &db, &args).status.success());
    }
    let env = [
        ("COCREATE_INBOUND_IMAP_HOST", "127.0.0.1".to_string()),
        ("COCREATE_INBOUND_IMAP_PORT", server.port.to_string()),
        ("COCREATE_INBOUND_IMAP_SECURITY", "none".to_string()),
        ("COCREATE_INBOUND_IMAP_USERNAME", "ogp".to_string()),
        ("COCREATE_IMAP_PASSWORD", "secret".to_string()),
        ("COCREATE_INBOUND_IMAP_POLL_SECONDS", "600".to_string()),
        (
            "COCREATE_OUTBOX_FILE_DIR",
            dir.path().join("outbox").display().to_string(),
        ),
    ];
    let daemon = common::Daemon::start_with(dir.path(), &db, &env, &[]);
    // Let it connect, find the mailbox empty and start waiting.
    std::thread::sleep(Duration::from_secs(2));
    imap(
        server.port,
        "m.append('INBOX', None, None, b'From: someone@elsewhere.example.org\\r\\nTo: ogp-poc@office.example\\r\\nSubject: Pyetje\\r\\nMessage-ID: <idle1@elsewhere.example.org>\\r\\n\\r\\nA e moret?\\r\\n')",
    );
    let start = Instant::now();
    loop {
        let marked = imap(
            server.port,
            "print(m.uid('SEARCH','KEYWORD','$CocreateTaken')[1][0].decode())",
        );
        if marked.trim() == "1" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the reply was not taken in while the daemon waited"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, log) = daemon.stop(libc::SIGTERM);
    assert!(status.success(), "{log:#?}");
    assert!(
        log.iter()
            .any(|l| l.contains("IMAP connected") && l.contains("\"idle\":true")),
        "{log:#?}"
    );
    let pen = stdout(&cocreate(dir.path(), &db, &["mail", "pen", "list"]));
    assert!(pen.contains("someone@elsewhere.example.org"), "{pen}");
}
