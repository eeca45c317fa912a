//! `cocreate mail inspect` on replies written the way CSO staff write them,
//! against a store with a real consultation and its invitations: each
//! routing rule, each kind of machine mail, and the exact text kept.

use crate::common;

use crate::common::{TestDb, fiscal_consultation, stderr, stdout, write};
use serde_json::Value;

struct Fixture {
    dir: tempfile::TempDir,
    db: TestDb,
    /// (address, reply key, our Message-ID) of each invitation.
    invitations: Vec<(String, String, String)>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = TestDb::sqlite();
        let registry = write(
            dir.path(),
            "r.csv",
            "Registration number,Name,Email,Fields of activity,Language\n\
             F1,Qendra për Buxhet të Hapur,buxheti@cso.example.org,Buxhet,sq\n\
             F2,Budget Watch,watch@cso.example.org,Budget,en\n\
             S1,Klubi Sportiv,sport@cso.example.org,Sport,sq\n",
        );
        let spec = fiscal_consultation(dir.path(), "OGP-2026-FISCAL");
        let mut f = Self {
            dir,
            db,
            invitations: Vec::new(),
        };
        for args in [
            vec!["registry", "import", registry.to_str().unwrap()],
            vec!["consultation", "create", "--file", spec.to_str().unwrap()],
            vec!["consultation", "open", "OGP-2026-FISCAL"],
            vec!["outreach", "send", "OGP-2026-FISCAL"],
            vec!["outbox", "flush"],
        ] {
            f.ok(&args);
        }
        let outbox = f.dir.path().join("outbox");
        for entry in std::fs::read_dir(&outbox).unwrap() {
            let raw = std::fs::read(entry.unwrap().path()).unwrap();
            let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
            let to = m
                .to()
                .unwrap()
                .first()
                .unwrap()
                .address()
                .unwrap()
                .to_string();
            let reply_to = m
                .reply_to()
                .unwrap()
                .first()
                .unwrap()
                .address()
                .unwrap()
                .to_string();
            let key = reply_to
                .trim_start_matches("consult+")
                .split('@')
                .next()
                .unwrap()
                .to_string();
            f.invitations
                .push((to, key, m.message_id().unwrap().to_string()));
        }
        f
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = common::command(self.dir.path(), &self.db)
            .env("COCREATE_OUTBOX_FILE_DIR", self.dir.path().join("outbox"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    }

    fn invitation(&self, to: &str) -> (String, String) {
        let (_, key, id) = self.invitations.iter().find(|(a, _, _)| a == to).unwrap();
        (key.clone(), id.clone())
    }

    fn inspect(&self, raw: &str) -> Value {
        let path = write(self.dir.path(), "m.eml", raw.replace('\n', "\r\n"));
        serde_json::from_str(&self.ok(&["mail", "inspect", path.to_str().unwrap()])).unwrap()
    }
}

fn eml(from: &str, to: &str, extra: &str, subject: &str, body: &str) -> String {
    format!(
        "From: {from}\nTo: {to}\nSubject: {subject}\nMessage-ID: <{}@cso.example.org>\n{extra}Content-Type: text/plain; charset=utf-8\n\n{body}",
        subject.len()
    )
}

#[test]
fn each_routing_rule_and_the_exact_reply_text() {
    let f = Fixture::new();
    let (key, our_id) = f.invitation("buxheti@cso.example.org");

    // 1. The key in the recipient address (a Gmail reply in Albanian).
    let gmail = f.inspect(&eml(
        "Arta <buxheti@cso.example.org>",
        &format!("consult+{key}@ogp.office.example"),
        "",
        "Re: Ftesë për konsultim",
        &format!(
            "Propozojmë që ministria të publikojë çdo muaj ekzekutimin e buxhetit.\n\nMe respekt,\nArta\n\nMë 3 dhj 2026 në 10:00, Pika e Kontaktit <consult+{key}@ogp.office.example> shkroi:\n> Ftesë për konsultim\n> Afati: 11 janar 2027\n"
        ),
    ));
    assert_eq!(gmail["classification"], "proposal");
    assert_eq!(gmail["route"]["method"], "recipient_key");
    assert_eq!(gmail["route"]["consultation"], "OGP-2026-FISCAL");
    assert_eq!(gmail["route"]["cso"], "F1");
    assert_eq!(gmail["route"]["other_sender"], false);
    assert_eq!(
        gmail["reply_text"],
        "Propozojmë që ministria të publikojë çdo muaj ekzekutimin e buxhetit.\n\nMe respekt,\nArta"
    );

    // 2. A relay stripped the +key: found again in In-Reply-To (Outlook style).
    let outlook = f.inspect(&eml(
        "Budget Watch <buxheti@cso.example.org>",
        "consult@ogp.office.example",
        &format!("In-Reply-To: <{our_id}>\nReferences: <{our_id}>\n"),
        "RE: Invitation",
        "Our proposal: publish procurement contracts within 10 days.\n\n________________________________\nFrom: OGP Office <consult@ogp.office.example>\nSent: Thursday, December 3, 2026 10:00 AM\nTo: buxheti@cso.example.org\nSubject: Invitation\n\nDear colleagues,\n",
    ));
    assert_eq!(outlook["route"]["method"], "reference_key");
    assert_eq!(
        outlook["reply_text"],
        "Our proposal: publish procurement contracts within 10 days."
    );

    // 3. A colleague's address: accepted but flagged.
    let colleague = f.inspect(&eml(
        "Colleague <drejtori@cso.example.org>",
        &format!("consult+{key}@ogp.office.example"),
        "Authentication-Results: mx.ogp.office.example; dkim=pass header.d=cso.example.org; spf=pass; dmarc=pass\n",
        "Re: Ftesë",
        "Shtojmë një propozim.\n\nSent from my iPhone\n",
    ));
    assert_eq!(colleague["classification"], "proposal");
    assert_eq!(colleague["route"]["other_sender"], true);
    assert_eq!(
        colleague["route"]["reason"],
        "reply key issued to buxheti@cso.example.org, but sent from drejtori@cso.example.org"
    );
    assert_eq!(colleague["authentication"]["dmarc"], "pass");
    assert_eq!(colleague["reply_text"], "Shtojmë një propozim.");
    assert_eq!(colleague["signature"], "Sent from my iPhone");

    // 4. No key, a registered sender with one open consultation.
    let fresh = f.inspect(&eml(
        "watch@cso.example.org",
        "ogp-poc@office.example",
        "",
        "Proposal on budgets",
        "We propose citizen budgets for every municipality.\n",
    ));
    assert_eq!(fresh["route"]["method"], "sender_consultation");
    assert_eq!(fresh["route"]["cso"], "F2");

    // 5. Otherwise the holding pen, with the reason.
    let stranger = f.inspect(&eml(
        "someone@elsewhere.example.org",
        "ogp-poc@office.example",
        "",
        "Hello",
        "Is this the right address?\n",
    ));
    assert_eq!(stranger["classification"], "unmatched");
    assert_eq!(
        stranger["reason"],
        "no reply key, and someone@elsewhere.example.org is not a registered CSO address"
    );
    let sports = f.inspect(&eml(
        "sport@cso.example.org",
        "ogp-poc@office.example",
        "",
        "Hi",
        "Hi\n",
    ));
    assert_eq!(
        sports["reason"],
        "no reply key, and sport@cso.example.org has no open consultation in its policy areas"
    );
    // A guessed key is not a key.
    let guessed = f.inspect(&eml(
        "someone@elsewhere.example.org",
        "consult+aaaaaaaaaaaaaaaaaaaa@ogp.office.example",
        "",
        "Re",
        "x\n",
    ));
    assert_eq!(guessed["classification"], "unmatched");
}

#[test]
fn machines_are_never_proposals() {
    let f = Fixture::new();
    let (key, _) = f.invitation("watch@cso.example.org");
    let to = format!("consult+{key}@ogp.office.example");
    let cases = [
        (
            "Auto-Submitted: auto-replied\n",
            "Automatic reply: Invitation",
            "auto_reply",
        ),
        ("", "Jashtë zyrës deri më 5 janar", "auto_reply"),
        (
            "X-Auto-Response-Suppress: All\n",
            "Out of Office: Invitation",
            "auto_reply",
        ),
        ("Precedence: bulk\n", "Newsletter", "list"),
        ("List-Id: <news.cso.example.org>\n", "Newsletter", "list"),
        ("X-Spam-Flag: YES\n", "Win a prize", "spam"),
    ];
    for (headers, subject, expected) in cases {
        let got = f.inspect(&eml("watch@cso.example.org", &to, headers, subject, "x\n"));
        assert_eq!(got["classification"], expected, "{subject}");
        assert!(got["route"].is_null(), "{subject}: machines are not routed");
    }
    let bounce = f.inspect(&eml(
        "MAILER-DAEMON@mx.cso.example.org",
        &to,
        "",
        "Undelivered Mail Returned to Sender",
        "x\n",
    ));
    assert_eq!(bounce["classification"], "bounce");
    let own = f.inspect(&eml("ogp-poc@office.example", &to, "", "Ftesë", "x\n"));
    assert_eq!(own["classification"], "own");
}

#[test]
fn html_only_mail_windows_1250_and_attachments() {
    let f = Fixture::new();
    let (key, _) = f.invitation("buxheti@cso.example.org");
    let raw = format!(
        "From: buxheti@cso.example.org\r\nTo: consult+{key}@ogp.office.example\r\nSubject: =?windows-1250?q?Propozim_p=EBr_buxhetin?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/html; charset=windows-1250\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>Propozimi yn=EB: t=EB dh=EBna =E7do muaj.</p>\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"../../propozimi.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n"
    );
    let path = write(f.dir.path(), "html.eml", raw);
    let got: Value =
        serde_json::from_str(&f.ok(&["mail", "inspect", path.to_str().unwrap()])).unwrap();
    assert_eq!(got["subject"], "Propozim për buxhetin");
    assert_eq!(got["reply_text"], "Propozimi ynë: të dhëna çdo muaj.");
    assert_eq!(got["attachments"][0]["name"], "propozimi.pdf");
    assert_eq!(got["attachments"][0]["type"], "application/pdf");
    assert_eq!(got["attachments"][0]["size"], 9);
}
