//! The IMAP source against a real Dovecot started by the test: a reply in
//! the mailbox is stored, then marked, and a second run (a restart) does not
//! take it twice.

use crate::common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{TestDb, cocreate, fiscal_consultation, stderr, stdout, write};

struct Dovecot {
    child: Child,
    /// Plain IMAP that offers STARTTLS, as on port 143.
    port: u16,
    /// IMAP over TLS from the first byte, as on port 993.
    tls_port: u16,
    /// The certificate authority that signed the server's certificate.
    ca: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// A throw-away certificate authority and a certificate for 127.0.0.1
/// signed by it (openssl), as a mail server with a private CA has.
fn certificates(d: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(d)
            .output()
            .expect("openssl must be installed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"],
            &ec[..],
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=cocreate test CA",
                "-days",
                "2",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"],
            &ec[..],
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        d.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A throw-away Dovecot: one user `ogp` with password `secret`, maildir
/// storage, IMAP with STARTTLS and IMAP over TLS on free local ports.
fn dovecot() -> Dovecot {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = common::free_port();
    let tls_port = common::free_port();
    certificates(d);
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
         listen = 127.0.0.1\nssl = yes\nssl_cert = <{d}/server.pem\nssl_key = <{d}/server.key\ndisable_plaintext_auth = no\nauth_mechanisms = plain login\n\
         mail_location = maildir:{d}/mail/%u\n\
         passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/passwd\n}}\n\
         userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={d}/home/%u\n}}\n\
         service imap-login {{\n  chroot =\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {tls_port}\n    ssl = yes\n  }}\n}}\n\
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
        tls_port,
        ca: d.join("ca.pem"),
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
    // One proposal (a second line flags that it came without a reply key).
    assert_eq!(
        proposals.lines().filter(|l| !l.starts_with(' ')).count(),
        1,
        "{proposals}"
    );
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

/// `starttls` upgrades the plain connection before logging in, and `tls`
/// speaks TLS from the first byte; both check the server's certificate
/// (here against the CA given in inbound.imap_ca_file).
#[test]
#[ignore = "needs Dovecot (Debian dovecot-imapd) and openssl"]
fn imap_over_starttls_and_over_tls_checks_the_certificate() {
    let server = dovecot();
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let ingest = |security: &str, port: u16, ca: Option<&Path>| {
        common::command(dir.path(), &db)
            .env("COCREATE_INBOUND_IMAP_HOST", "127.0.0.1")
            .env("COCREATE_INBOUND_IMAP_PORT", port.to_string())
            .env("COCREATE_INBOUND_IMAP_SECURITY", security)
            .env(
                "COCREATE_INBOUND_IMAP_CA_FILE",
                ca.map_or(String::new(), |p| p.display().to_string()),
            )
            .env("COCREATE_INBOUND_IMAP_USERNAME", "ogp")
            .env("COCREATE_INBOUND_IMAP_TIMEOUT_SECONDS", "2")
            .env("COCREATE_IMAP_PASSWORD", "secret")
            .env("COCREATE_OUTBOX_FILE_DIR", dir.path().join("outbox"))
            .args(["mail", "ingest", "--imap"])
            .output()
            .unwrap()
    };
    let append = |n: u32| {
        imap(
            server.port,
            &format!(
                "m.append('INBOX', None, None, b'From: someone@elsewhere.example.org\\r\\nTo: ogp-poc@office.example\\r\\nSubject: Pyetje {n}\\r\\nMessage-ID: <tls{n}@elsewhere.example.org>\\r\\n\\r\\nA e moret?\\r\\n')"
            ),
        );
    };

    append(1);
    let starttls = ingest("starttls", server.port, Some(&server.ca));
    assert!(starttls.status.success(), "{}", stderr(&starttls));
    assert_eq!(
        stdout(&starttls),
        "Took in 1 message from INBOX on 127.0.0.1.\n"
    );

    append(2);
    let tls = ingest("tls", server.tls_port, Some(&server.ca));
    assert!(tls.status.success(), "{}", stderr(&tls));
    assert_eq!(stdout(&tls), "Took in 1 message from INBOX on 127.0.0.1.\n");

    // Without the private CA the certificate is not trusted: no login.
    for (security, port) in [("starttls", server.port), ("tls", server.tls_port)] {
        let untrusted = ingest(security, port, None);
        assert_eq!(untrusted.status.code(), Some(1), "{security}");
        assert!(
            stderr(&untrusted).contains("TLS failed: invalid peer certificate: UnknownIssuer"),
            "{security}: {}",
            stderr(&untrusted)
        );
    }
    // STARTTLS is not TLS from the first byte: asked on the TLS port it
    // gives up after the timeout instead of waiting for ever.
    let confused = ingest("starttls", server.tls_port, Some(&server.ca));
    assert_eq!(confused.status.code(), Some(1));
    assert!(
        stderr(&confused).contains("no answer within 2 s (is imap_security right for this port?)"),
        "{}",
        stderr(&confused)
    );
}
