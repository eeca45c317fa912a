//! The consultation's life on a moved clock: every command runs at a stated
//! office time (`COCREATE_TEST_CLOCK_OFFSET_SECONDS`), so weeks pass in
//! seconds and nothing sleeps. `cocreate schedule run` runs what `serve`
//! would have run by then (the same code), and the outbox is delivered to
//! .eml files and read back.

use std::io::Write as _;

use mail_parser::MimeHeaders as _;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use crate::common::{self, CLOCK_OFFSET_ENV, TestDb, offset_to, stderr, stdout, write};

/// A POC's server: a folder and a database.
struct Office {
    dir: tempfile::TempDir,
    db: TestDb,
    /// COCREATE_* settings every later command runs with.
    settings: std::cell::RefCell<Vec<(String, String)>>,
}

impl Office {
    fn new(db: TestDb) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            db,
            settings: Default::default(),
        }
    }

    /// From now on, cocreate runs with `variable` set to `value`.
    fn set(&self, variable: &str, value: &str) {
        self.settings
            .borrow_mut()
            .push((variable.to_string(), value.to_string()));
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs cocreate at office time `when` (RFC 3339), delivering to
    /// .eml files.
    fn run_at(&self, when: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = common::command(self.path(), &self.db);
        cmd.envs(self.settings.borrow().iter().cloned())
            .env("COCREATE_OUTBOX_FILE_DIR", self.path().join("outbox"))
            .env(CLOCK_OFFSET_ENV, offset_to(when).to_string())
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(bytes) = stdin {
            child.stdin.take().unwrap().write_all(bytes).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    fn at(&self, when: &str, args: &[&str]) -> String {
        let out = self.run_at(when, args, None);
        assert!(
            out.status.success(),
            "{args:?} at {when}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    fn fails_at(&self, when: &str, args: &[&str]) -> String {
        let out = self.run_at(when, args, None);
        assert!(!out.status.success(), "{args:?} at {when} succeeded");
        stderr(&out)
    }

    /// Delivers what is due and returns every message of `kind` delivered
    /// so far, oldest first, parsed.
    fn delivered(&self, when: &str, kind: &str) -> Vec<Mail> {
        self.at(when, &["outbox", "flush"]);
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.path().join("outbox"))
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        paths.retain(|p| p.to_string_lossy().ends_with(&format!("-{kind}.eml")));
        paths.sort();
        paths.iter().map(|p| Mail::read(p)).collect()
    }

    /// `from` answers the message `to_message` with `text`, at `when`;
    /// returns what `mail ingest` said.
    fn reply(&self, when: &str, to_message: &Mail, from: &str, id: &str, text: &str) -> String {
        let raw = format!(
            "From: {from}\r\nTo: {}\r\nSubject: Re: {}\r\nMessage-ID: <{id}@cso.example.org>\r\nIn-Reply-To: {}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n",
            to_message.reply_to, to_message.subject, to_message.message_id
        );
        let out = self.run_at(when, &["mail", "ingest"], Some(raw.as_bytes()));
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    }
}

/// A delivered message, the parts the tests read.
struct Mail {
    from: String,
    to: String,
    reply_to: String,
    subject: String,
    message_id: String,
    text: String,
    html: String,
    calendar: Option<String>,
}

impl Mail {
    fn read(path: &Path) -> Self {
        let raw = std::fs::read(path).unwrap();
        let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let address = |a: Option<&mail_parser::Address>| {
            a.and_then(|a| a.first())
                .and_then(|a| a.address())
                .unwrap_or_default()
                .to_string()
        };
        Self {
            from: address(m.from()),
            to: address(m.to()),
            reply_to: address(m.reply_to()),
            subject: m.subject().unwrap_or_default().to_string(),
            message_id: format!("<{}>", m.message_id().unwrap_or_default()),
            text: m.body_text(0).unwrap_or_default().to_string(),
            html: m.body_html(0).unwrap_or_default().to_string(),
            calendar: m
                .attachments()
                .find(|a| a.is_content_type("text", "calendar"))
                .map(|a| String::from_utf8_lossy(a.contents()).replace("\r\n ", "")),
        }
    }

    fn calendar_line(&self, name: &str) -> String {
        self.calendar
            .as_deref()
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .unwrap_or_default()
            .to_string()
    }
}

fn to<'m>(mails: &'m [Mail], address: &str) -> Vec<&'m Mail> {
    mails.iter().filter(|m| m.to == address).collect()
}

/// Three organisations working on the budget (one writes in English) and
/// a consultation that opens on 1 December and closes on 11 January.
fn setup(office: &Office, when: &str, reference: &str) {
    let registry = write(
        office.path(),
        "r.csv",
        "Registration number,Name,Email,Fields of activity,Language\n\
         F1,Qendra për Buxhet të Hapur,buxheti@cso.example.org,Buxhet,sq\n\
         F2,Budget Watch,watch@cso.example.org,Budget,en\n\
         F3,Shoqata e Bashkive,bashkite@cso.example.org,Buxhet vendor,sq\n",
    );
    let spec = common::fiscal_consultation(office.path(), reference);
    office.at(when, &["registry", "import", registry.to_str().unwrap()]);
    office.at(
        when,
        &["consultation", "create", "--file", spec.to_str().unwrap()],
    );
}

fn receipt_no(ingested: &str) -> String {
    ingested
        .split_whitespace()
        .map(|w| w.trim_end_matches(','))
        .find(|w| w.starts_with("OGP-") && w.len() == 13)
        .unwrap_or_else(|| panic!("no receipt number in {ingested}"))
        .to_string()
}

const LFP: &str = "ogp-fiscal@financa.example";

/// One consultation from the day the POC opens it ahead of time to the
/// LFP's reminder to answer: it opens on its date and not before, a normal
/// week's digest, a week with nothing new, three weeks of downtime caught
/// up in one digest, reminders 7 and 1 days before, the close at the
/// deadline, a late reply told the real deadline.
#[test]
fn a_consultation_from_its_opening_day_to_the_lfps_reminder_to_answer() {
    let office = Office::new(TestDb::sqlite());
    let r = "OGP-LIFE";
    setup(&office, "2026-11-27T10:00:00+01:00", r);

    // Opened ahead of its date: scheduled, nothing sent.
    let opened = office.at("2026-11-27T10:05:00+01:00", &["consultation", "open", r]);
    assert!(opened.contains("opens on 2026-12-01"), "{opened}");
    assert!(
        office
            .at("2026-11-27T10:05:00+01:00", &["consultation", "list"])
            .contains("scheduled")
    );
    office.at("2026-11-27T10:06:00+01:00", &["schedule", "run"]);
    // The POC's daily summary names what opens soon.
    office.at(
        "2026-11-30T08:01:00+01:00",
        &["schedule", "run", "pen_summary"],
    );
    let summary = &office.delivered("2026-11-30T08:02:00+01:00", "pen_summary")[0];
    assert_eq!(summary.to, "ogp-poc@office.example");
    assert!(
        summary
            .subject
            .starts_with("Përmbledhja ditore e cocreate, 30.11.2026"),
        "{}",
        summary.subject
    );
    assert!(
        summary
            .text
            .contains("HAPEN SË SHPEJTI (ftesat nisen vetë)")
            && summary
                .text
                .contains("- OGP-LIFE, Buxheti i hapur në bashki: e martë, 1 dhjetor 2026"),
        "{}",
        summary.text
    );
    let late_evening = office.at(
        "2026-11-30T23:58:00+01:00",
        &["schedule", "run", "consultations"],
    );
    assert!(
        late_evening.contains("no consultation opens or closes"),
        "{late_evening}"
    );
    assert!(
        office
            .delivered("2026-11-30T23:58:00+01:00", "invitation")
            .is_empty()
    );

    // Its day comes: open, and the invitations go out.
    let midnight = office.at(
        "2026-12-01T00:05:00+01:00",
        &["schedule", "run", "consultations"],
    );
    assert!(
        midnight.contains("opened OGP-LIFE and queued 3 invitations"),
        "{midnight}"
    );
    let invitations = office.delivered("2026-12-01T00:06:00+01:00", "invitation");
    assert_eq!(invitations.len(), 3);
    let invitation = |a: &str| to(&invitations, a)[0];

    // Week one: two proposals and an addition.
    let p1 = receipt_no(&office.reply(
        "2026-12-02T10:00:00+01:00",
        invitation("buxheti@cso.example.org"),
        "buxheti@cso.example.org",
        "p1",
        "Përshëndetje,\r\n\r\nPropozojmë që ministria të botojë çdo muaj ekzekutimin e buxhetit sipas bashkive.\r\n\r\nMe respekt,\r\nArta",
    ));
    let p2 = receipt_no(&office.reply(
        "2026-12-03T11:00:00+01:00",
        invitation("watch@cso.example.org"),
        "watch@cso.example.org",
        "p2",
        "Dear colleagues,\r\n\r\nPublish every procurement contract within 48 hours.",
    ));
    let receipt = &office.delivered("2026-12-03T11:01:00+01:00", "receipt")[0];
    office.reply(
        "2026-12-04T09:00:00+01:00",
        receipt,
        "buxheti@cso.example.org",
        "p1b",
        "Shtojmë edhe studimin tonë për 12 bashki.",
    );

    // Monday 7 December, 08:00: the first digest.
    let run = office.at("2026-12-07T08:01:00+01:00", &["schedule", "run"]);
    assert!(run.contains("FISCAL: 2 new, 1 additions"), "{run}");
    let digests = office.delivered("2026-12-07T08:02:00+01:00", "lfp_digest");
    let fiscal = to(&digests, LFP);
    assert_eq!(fiscal.len(), 1);
    let d = fiscal[0];
    assert!(
        d.subject
            .starts_with("Përmbledhja javore: 2 propozime të reja, 1 shtesë"),
        "{}",
        d.subject
    );
    for want in [
        p1.as_str(),
        p2.as_str(),
        "Qendra për Buxhet të Hapur",
        "Budget Watch",
        "\"Propozojmë që ministria të botojë çdo muaj",
        "\"Publish every procurement contract within 48 hours.\"",
        "shtesë",
        "Shtojmë edhe studimin",
    ] {
        assert!(d.text.contains(want), "{want} is not in\n{}", d.text);
    }
    assert!(
        !d.text.contains("Përshëndetje") && !d.text.contains("Dear colleagues"),
        "{}",
        d.text
    );
    assert_eq!(
        d.reply_to, "ogp-poc@office.example",
        "replies go to the POC"
    );
    assert!(d.html.contains("Budget Watch") && d.html.contains("<html lang=\"sq\">"));
    assert_eq!(
        to(&digests, "budget-office@financa.example").len(),
        1,
        "every contact"
    );
    // Other LFPs: a short note that nothing is new.
    let anticor = to(&digests, "ogp-anticor@justice.example");
    assert_eq!(anticor.len(), 1);
    assert!(
        anticor[0].subject.contains("asgjë e re"),
        "{}",
        anticor[0].subject
    );

    // A week with nothing new: the note, and what still waits, oldest first.
    office.at("2026-12-14T08:01:00+01:00", &["schedule", "run"]);
    let digests = office.delivered("2026-12-14T08:02:00+01:00", "lfp_digest");
    let week2 = to(&digests, LFP)[1];
    assert!(
        week2.text.contains("Asgjë e re nuk ka ardhur"),
        "{}",
        week2.text
    );
    let waiting = week2
        .text
        .split("NË PRITJE")
        .nth(1)
        .expect("a waiting section");
    assert!(
        waiting.contains(&format!(
            "{p1} · Qendra për Buxhet të Hapur · 02.12.2026 · pret prej 11 ditësh"
        )),
        "{waiting}"
    );
    assert!(waiting.find(&p1) < waiting.find(&p2), "oldest first");

    // Down from 15 December to 4 January: three Mondays missed, one digest.
    let p3 = receipt_no(&office.reply(
        "2026-12-15T16:00:00+01:00",
        invitation("bashkite@cso.example.org"),
        "bashkite@cso.example.org",
        "p3",
        "Bashkitë duhet të publikojnë buxhetin në format të hapur.",
    ));
    office.at("2027-01-04T08:30:00+01:00", &["schedule", "run"]);
    let digests = office.delivered("2027-01-04T08:31:00+01:00", "lfp_digest");
    let fiscal = to(&digests, LFP);
    assert_eq!(
        fiscal.len(),
        3,
        "one catch-up digest, not one per missed week"
    );
    assert!(fiscal[2].text.contains(&p3), "{}", fiscal[2].text);
    assert!(
        fiscal[2].text.contains("nga 14.12.2026 08:01"),
        "it covers the whole gap"
    );
    assert!(fiscal[2].text.contains("Propozime të reja: 1"));

    // The same run found the 7-day reminders due (deadline Monday 11 January).
    let reminders = office.delivered("2027-01-04T08:31:00+01:00", "deadline_reminder");
    assert_eq!(reminders.len(), 3);
    let sent = to(&reminders, "buxheti@cso.example.org")[0];
    assert!(
        sent.subject.starts_with("Edhe 7 ditë: "),
        "{}",
        sent.subject
    );
    assert!(
        sent.text.contains(&format!("kemi marrë tashmë: {p1}")),
        "{}",
        sent.text
    );
    assert!(sent.text.contains("consult+"), "its personal reply address");
    let english = to(&reminders, "watch@cso.example.org")[0];
    assert!(
        english
            .text
            .contains(&format!("already received from your organisation: {p2}")),
        "{}",
        english.text
    );
    office.at("2027-01-05T09:01:00+01:00", &["schedule", "run"]);
    assert_eq!(
        office
            .delivered("2027-01-05T09:02:00+01:00", "deadline_reminder")
            .len(),
        3,
        "one 7-day reminder each"
    );
    office.at("2027-01-10T09:01:00+01:00", &["schedule", "run"]);
    let reminders = office.delivered("2027-01-10T09:02:00+01:00", "deadline_reminder");
    assert_eq!(reminders.len(), 6);
    assert!(
        to(&reminders, "bashkite@cso.example.org")[1]
            .subject
            .starts_with("Nesër është dita e fundit")
    );

    // The deadline passes: closed by itself; a late reply is told so, with
    // the real deadline.
    let closed = office.at(
        "2027-01-12T00:06:00+01:00",
        &["schedule", "run", "consultations"],
    );
    assert!(
        closed.contains("closed OGP-LIFE after its deadline"),
        "{closed}"
    );
    office.at("2027-01-12T10:00:00+01:00", &["schedule", "run"]);
    assert_eq!(
        office
            .delivered("2027-01-12T10:00:00+01:00", "deadline_reminder")
            .len(),
        6,
        "none after the close"
    );
    let late = office.reply(
        "2027-01-12T10:00:00+01:00",
        invitation("watch@cso.example.org"),
        "watch@cso.example.org",
        "late",
        "One more idea, sorry it is late.",
    );
    let late_receipt = office
        .delivered("2027-01-12T10:01:00+01:00", "receipt")
        .into_iter()
        .find(|m| m.subject.contains(&receipt_no(&late)))
        .unwrap();
    assert!(
        late_receipt.text.contains("arrived after the deadline"),
        "{}",
        late_receipt.text
    );
    assert!(
        late_receipt.text.contains("Monday 11 January 2027"),
        "{}",
        late_receipt.text
    );

    // Ten working days after the close, the LFP is reminded of what waits.
    // A public holiday (here Wednesday 20 January, added to the shipped
    // list) is not a working day: the tenth is Tuesday 26, not Monday 25.
    let shipped = cocreate::config::Config::embedded()
        .unwrap()
        .calendar
        .holidays;
    let mut holidays: Vec<String> = shipped.iter().map(ToString::to_string).collect();
    holidays.push("2027-01-20".into());
    office.set("COCREATE_CALENDAR_HOLIDAYS", &holidays.join(","));
    office.at("2027-01-22T09:01:00+01:00", &["schedule", "run"]);
    assert!(
        office
            .delivered("2027-01-22T09:02:00+01:00", "response_reminder")
            .is_empty()
    );
    office.at("2027-01-25T09:01:00+01:00", &["schedule", "run"]);
    assert!(
        office
            .delivered("2027-01-25T09:02:00+01:00", "response_reminder")
            .is_empty(),
        "the holiday is not a working day"
    );
    office.at("2027-01-26T09:01:00+01:00", &["schedule", "run"]);
    let reminders = office.delivered("2027-01-26T09:02:00+01:00", "response_reminder");
    let lfp = to(&reminders, LFP);
    assert_eq!(lfp.len(), 1);
    assert!(
        lfp[0]
            .subject
            .starts_with("Në pritje të përgjigjes suaj: 4 propozime"),
        "{}",
        lfp[0].subject
    );
    assert!(
        lfp[0].text.contains("para 10 ditësh pune"),
        "{}",
        lfp[0].text
    );
}

/// After the invitations: the meeting moves (one notice each, the same
/// calendar event at a higher SEQUENCE) and is cancelled (METHOD:CANCEL),
/// the deadline moves after the first reminder (reminders follow it), and
/// an early close needs a reason, tells everyone, and cancels what had not
/// left.
#[test]
fn the_meeting_and_the_deadline_move_and_the_consultation_closes_early() {
    let office = Office::new(TestDb::sqlite());
    let r = "OGP-MOVE";
    setup(&office, "2026-12-02T09:00:00+01:00", r);
    office.at("2026-12-02T09:00:00+01:00", &["consultation", "open", r]);
    office.at("2026-12-02T09:00:00+01:00", &["outreach", "send", r]);
    office.at("2026-12-02T09:00:00+01:00", &["schedule", "run"]);
    let invitations = office.delivered("2026-12-02T09:01:00+01:00", "invitation");
    let first = to(&invitations, "watch@cso.example.org")[0];
    let uid = first.calendar_line("UID");
    assert!(uid.starts_with("UID:ogp-move-meeting@"), "{uid}");
    assert_eq!(first.calendar_line("SEQUENCE"), "SEQUENCE:0");

    let moved = office.at(
        "2026-12-03T10:00:00+01:00",
        &[
            "consultation",
            "edit",
            r,
            "--meeting-at",
            "2026-12-11T14:00",
        ],
    );
    assert!(
        moved.contains("3 invited CSO addresses will be told"),
        "{moved}"
    );
    let edited = office.at(
        "2026-12-03T10:05:00+01:00",
        &["consultation", "edit", r, "--title-en", "Open budgets"],
    );
    assert!(
        !edited.contains("told"),
        "a new title is no meeting change: {edited}"
    );
    office.at(
        "2026-12-03T10:10:00+01:00",
        &["consultation", "edit", r, "--meeting-place", "Salla 5"],
    );
    let notices = office.delivered("2026-12-03T10:11:00+01:00", "meeting_changed");
    let watch = to(&notices, "watch@cso.example.org");
    assert_eq!(watch.len(), 2, "one notice per change");
    assert_eq!(watch[0].calendar_line("UID"), uid);
    assert_eq!(watch[0].calendar_line("SEQUENCE"), "SEQUENCE:1");
    assert_eq!(
        watch[0].calendar_line("DTSTART"),
        "DTSTART:20261211T130000Z"
    );
    assert!(
        watch[0].text.contains("Before: Thursday 10 December 2026"),
        "{}",
        watch[0].text
    );
    assert_eq!(watch[1].calendar_line("SEQUENCE"), "SEQUENCE:2");
    assert_eq!(watch[1].calendar_line("LOCATION"), "LOCATION:Salla 5");
    office.at(
        "2026-12-04T10:00:00+01:00",
        &["consultation", "edit", r, "--cancel-meeting"],
    );
    let notices = office.delivered("2026-12-04T10:01:00+01:00", "meeting_changed");
    let cancel = to(&notices, "buxheti@cso.example.org")[2];
    assert!(
        cancel.subject.starts_with("Takimi u anulua"),
        "{}",
        cancel.subject
    );
    assert!(
        cancel
            .calendar
            .as_deref()
            .unwrap()
            .contains("METHOD:CANCEL")
    );
    assert_eq!(cancel.calendar_line("SEQUENCE"), "SEQUENCE:3");
    assert_eq!(cancel.calendar_line("UID"), uid);

    // The 7-day reminder, then the deadline moves two weeks: the reminders
    // follow the new deadline.
    office.at("2027-01-04T09:01:00+01:00", &["schedule", "run"]);
    office.at(
        "2027-01-05T10:00:00+01:00",
        &[
            "consultation",
            "extend",
            r,
            "--until",
            "2027-01-25",
            "--reason",
            "Më shumë kohë pas takimit.",
        ],
    );
    office.at("2027-01-11T09:01:00+01:00", &["schedule", "run"]);
    assert_eq!(
        office
            .delivered("2027-01-11T09:02:00+01:00", "deadline_reminder")
            .len(),
        3,
        "none for the old deadline's eve"
    );
    office.at("2027-01-18T09:01:00+01:00", &["schedule", "run"]);
    let reminders = office.delivered("2027-01-18T09:02:00+01:00", "deadline_reminder");
    let buxheti = to(&reminders, "buxheti@cso.example.org");
    assert_eq!(buxheti.len(), 2);
    assert!(
        buxheti[1].text.contains("25 janar 2027"),
        "{}",
        buxheti[1].text
    );

    // A new organisation's invitation waits in the outbox when the POC
    // closes early.
    let more = write(
        office.path(),
        "more.csv",
        "Registration number,Name,Email,Fields of activity,Language\n\
         F1,Qendra për Buxhet të Hapur,buxheti@cso.example.org,Buxhet,sq\n\
         F2,Budget Watch,watch@cso.example.org,Budget,en\n\
         F3,Shoqata e Bashkive,bashkite@cso.example.org,Buxhet vendor,sq\n\
         F4,Forumi Fiskal,forumi@cso.example.org,Buxhet,sq\n",
    );
    office.at(
        "2027-01-19T10:00:00+01:00",
        &["registry", "import", more.to_str().unwrap()],
    );
    office.at("2027-01-19T10:00:00+01:00", &["outreach", "send", r]);
    let refused = office.fails_at("2027-01-19T11:00:00+01:00", &["consultation", "close", r]);
    assert_eq!(
        refused,
        "error: consultation OGP-MOVE is announced until 2027-01-25: closing it earlier needs --reason TEXT, which every invited CSO is told\n"
    );
    let closed = office.at(
        "2027-01-19T11:00:00+01:00",
        &[
            "consultation",
            "close",
            r,
            "--reason",
            "Plani duhet dorëzuar më herët.",
        ],
    );
    assert!(
        closed.contains("1 message about it that had not left yet is cancelled"),
        "{closed}"
    );
    let status = office.at("2027-01-19T11:00:00+01:00", &["outbox", "status"]);
    assert!(
        status.contains("Cancelled 1: their consultation closed"),
        "{status}"
    );
    let notices = office.delivered("2027-01-19T11:01:00+01:00", "consultation_closed");
    assert_eq!(notices.len(), 3, "to the three who were invited");
    let notice = to(&notices, "buxheti@cso.example.org")[0];
    assert!(
        notice.text.contains(
            "u mbyll më e martë, 19 janar 2027, më herët se afati i njoftuar, e hënë, 25 janar 2027"
        ),
        "{}",
        notice.text
    );
    assert!(notice.text.contains("Plani duhet dorëzuar më herët."));
    assert!(
        to(
            &office.delivered("2027-01-19T11:01:00+01:00", "invitation"),
            "forumi@cso.example.org"
        )
        .is_empty()
    );
    assert!(office.at("2027-01-19T11:01:00+01:00", &["consultation", "show", r]).contains(
        "Closed early on 2027-01-19, before its announced deadline 2027-01-25: Plani duhet dorëzuar më herët."
    ));
    office.at("2027-01-24T09:01:00+01:00", &["schedule", "run"]);
    assert_eq!(
        office
            .delivered("2027-01-24T09:02:00+01:00", "deadline_reminder")
            .len(),
        6,
        "no reminder after the close"
    );
    let edit = office.fails_at(
        "2027-01-24T10:00:00+01:00",
        &["consultation", "edit", r, "--meeting-place", "X"],
    );
    assert!(
        edit.contains("is closed and can no longer be edited"),
        "{edit}"
    );
}

/// A digest run stopped after some LFPs' digests were queued (a restart):
/// run again, it sends the rest and nothing twice.
#[test]
fn a_digest_run_cut_short_sends_the_rest_and_nothing_twice() {
    let office = Office::new(TestDb::sqlite());
    setup(&office, "2026-12-02T09:00:00+01:00", "OGP-CUT");
    office.at("2026-12-02T09:00:00+01:00", &["schedule", "run"]);
    // As if the 08:00 run had queued ANTICOR's digest and then stopped.
    let sent = office.at(
        "2026-12-07T08:00:01+01:00",
        &["digest", "send", "--lfp", "anticor"],
    );
    assert!(
        sent.starts_with("Queued the digest of ANTICOR for 1 contact:"),
        "{sent}"
    );
    let run = office.at(
        "2026-12-07T08:03:00+01:00",
        &["schedule", "run", "lfp_digest"],
    );
    assert!(run.contains("ANTICOR: sent already for this week"), "{run}");
    assert!(run.contains("FISCAL: 0 new"), "{run}");
    let again = office.at(
        "2026-12-07T08:04:00+01:00",
        &["schedule", "run", "lfp_digest"],
    );
    assert!(
        again.starts_with("lfp_digest: not due; next at 2026-12-14 08:00"),
        "{again}"
    );
    let digests = office.delivered("2026-12-07T08:05:00+01:00", "lfp_digest");
    assert_eq!(to(&digests, "ogp-anticor@justice.example").len(), 1);
    assert_eq!(to(&digests, LFP).len(), 1);
    assert_eq!(digests.len(), 6, "each of the six contacts once");
}

/// `schedule list` shows each job, its schedule and next runs in office
/// time (Monday 08:00 stays 08:00 across the change to summer time in
/// Tirana), `digest preview` changes nothing, and a bad expression stops
/// cocreate in one sentence that names the key.
#[test]
fn schedules_are_listed_in_office_time_and_a_bad_one_is_refused() {
    let office = Office::new(TestDb::sqlite());
    let when = "2027-03-26T12:00:00+01:00";
    office.at(when, &["schedule", "run"]);
    let list = office.at(when, &["schedule", "list"]);
    assert!(list.starts_with("Times are in Europe/Tirane.\n"), "{list}");
    assert!(
        list.contains("lfp_digest          \"0 8 * * Mon\"; next: Mon 2027-03-29 08:00, Mon 2027-04-05 08:00, Mon 2027-04-12 08:00; last ran: Fri 2027-03-26 12:00"),
        "{list}"
    );
    let preview = office.at(when, &["digest", "preview", "--lfp", "FISCAL"]);
    assert!(preview.starts_with("To: ogp-fiscal@financa.example, budget-office@financa.example\nSubject: Përmbledhja javore: asgjë e re"), "{preview}");
    let status = office.at(when, &["outbox", "status"]);
    assert!(
        status.starts_with("Queued 0,"),
        "a preview sends nothing: {status}"
    );
    let unknown = office.fails_at(when, &["digest", "preview", "--lfp", "NOPE"]);
    assert!(unknown.contains("there is no LFP NOPE"), "{unknown}");

    let mut cmd = common::command(office.path(), &office.db);
    let out = cmd
        .env("COCREATE_SCHEDULES_LFP_DIGEST", "0 8 * * Funday")
        .args(["schedule", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let error = stderr(&out);
    assert!(
        error.starts_with("error: ")
            && error
                .contains("`schedules.lfp_digest` is wrong: '0 8 * * Funday' is not a schedule"),
        "{error}"
    );
    assert_eq!(error.lines().count(), 1, "{error}");
}

/// Two `serve` daemons on one PostgreSQL database, their clocks three
/// seconds before Monday's digest and Monday's 7-day reminders: each LFP
/// contact gets one digest, each invited address one reminder.
#[tokio::test]
#[ignore = "needs PostgreSQL (COCREATE_TEST_POSTGRES_URL)"]
async fn two_daemons_on_one_postgresql_send_each_digest_and_reminder_once() {
    let db = TestDb::postgres()
        .await
        .expect("COCREATE_TEST_POSTGRES_URL names the server");
    let office = Office::new(db);
    let r = "OGP-TWO";
    setup(&office, "2026-12-02T09:00:00+01:00", r);
    office.at("2026-12-02T09:00:00+01:00", &["consultation", "open", r]);
    office.at("2026-12-02T09:00:00+01:00", &["outreach", "send", r]);
    office.at("2026-12-02T09:00:00+01:00", &["schedule", "run"]);
    let invitations = office.delivered("2026-12-02T09:01:00+01:00", "invitation");
    office.reply(
        "2026-12-03T10:00:00+01:00",
        to(&invitations, "watch@cso.example.org")[0],
        "watch@cso.example.org",
        "two1",
        "Publish the budget monthly.",
    );
    for (when, fires, after, job, kind, per_address) in [
        (
            "2026-12-07T07:59:57+01:00",
            "2026-12-07T08:00:00+01:00",
            "2026-12-07T08:05:00+01:00",
            "lfp_digest",
            "lfp_digest",
            LFP,
        ),
        (
            "2027-01-04T08:59:57+01:00",
            "2027-01-04T09:00:00+01:00",
            "2027-01-04T09:05:00+01:00",
            "deadline_reminders",
            "deadline_reminder",
            "bashkite@cso.example.org",
        ),
    ] {
        let env = [
            (CLOCK_OFFSET_ENV, offset_to(when).to_string()),
            (
                "COCREATE_OUTBOX_FILE_DIR",
                office.path().join("outbox").display().to_string(),
            ),
        ];
        let first = common::Daemon::start_with(office.path(), &office.db, &env, &[]);
        let second = common::Daemon::start_with(office.path(), &office.db, &env, &[]);
        let start = std::time::Instant::now();
        // Each daemon either runs the job, or finds it already run by the
        // other (which read the watermark first) and waits for the run
        // after: both are right, and which happens depends on how fast each
        // started. Waiting for the fire time is not enough.
        let ran = |d: &mut common::Daemon| {
            d.log_so_far().iter().any(|l| {
                l.contains(&format!("\"job\":\"{job}\""))
                    && (l.contains("catch_up") || l.contains("\"next\":") && !l.contains(fires))
            })
        };
        let (mut first, mut second) = (first, second);
        while !(ran(&mut first) && ran(&mut second)) {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(30),
                "the {job} job did not run in both daemons:\n{}\n---\n{}",
                first.log_so_far().join("\n"),
                second.log_so_far().join("\n")
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        first.stop(libc::SIGTERM);
        second.stop(libc::SIGTERM);
        let sent = office.delivered(after, kind);
        assert_eq!(to(&sent, per_address).len(), 1, "{kind} to {per_address}");
    }
    // 7 December's, and on 4 January one catch-up for the weeks between.
    // Each queued once (the store's idempotency keys say which).
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(&office.db.url).await.unwrap();
    let keys: Vec<(String,)> =
        sqlx::query_as("SELECT idempotency_key FROM outbox WHERE kind = 'lfp_digest' ORDER BY id")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        keys.len(),
        12,
        "two digests to each of the six LFP contacts: {keys:#?}"
    );
    let digests = office.delivered("2027-01-04T09:10:00+01:00", "lfp_digest");
    assert_eq!(digests.len(), 12, "each delivered once");
    let reminders = office.delivered("2027-01-04T09:10:00+01:00", "deadline_reminder");
    assert_eq!(reminders.len(), 3, "one reminder to each invited address");
}

/// An LFP with 2,000 new proposals in a week: the digest lists the first
/// 25 of each section and counts the rest.
#[test]
fn a_digest_of_two_thousand_proposals_stays_within_its_caps() {
    let office = Office::new(TestDb::sqlite());
    let when = "2026-12-02T09:00:00+01:00";
    let mut csv = String::from("Registration number,Name,Email,Fields of activity,Language\n");
    for i in 0..2_000 {
        csv.push_str(&format!(
            "C{i:05},Shoqata {i},cso{i}@cso.example.org,Buxhet,sq\n"
        ));
    }
    let registry = write(office.path(), "big.csv", csv);
    let spec = common::fiscal_consultation(office.path(), "OGP-BIG");
    office.at(when, &["registry", "import", registry.to_str().unwrap()]);
    office.at(
        when,
        &["consultation", "create", "--file", spec.to_str().unwrap()],
    );
    office.at(when, &["consultation", "open", "OGP-BIG"]);
    // Each organisation writes to the consultation's address without a
    // key: it is their only open consultation, so the sender routes it.
    let inbox = office.path().join("inbox");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(inbox.join(sub)).unwrap();
    }
    for i in 0..2_000 {
        std::fs::write(
            inbox.join("new").join(format!("{i}.eml")),
            format!(
                "From: cso{i}@cso.example.org\r\nTo: consult@ogp.office.example\r\nSubject: Propozim\r\nMessage-ID: <big{i}@cso.example.org>\r\n\r\nPërshëndetje,\r\n\r\nPropozimi {i}: të dhënat e buxhetit çdo muaj.\r\n"
            ),
        )
        .unwrap();
    }
    let took = office.at(
        "2026-12-03T10:00:00+01:00",
        &["mail", "ingest", "--maildir", inbox.to_str().unwrap()],
    );
    assert!(
        took.ends_with("Took in 2,000 messages; 0 left in new/.\n"),
        "{took}"
    );
    let digest = office.at(
        "2026-12-07T08:01:00+01:00",
        &["digest", "preview", "--lfp", "FISCAL"],
    );
    assert!(digest.contains("Propozime të reja: 2000\n"), "{digest}");
    let listed = digest.lines().filter(|l| l.starts_with("- OGP-")).count();
    assert_eq!(listed, 25, "{digest}");
    assert!(digest.contains("… dhe 1975 të tjera"), "{digest}");
    assert!(digest.len() < 20_000, "a digest of {} bytes", digest.len());
}

/// An LFP contact answers the weekly digest by writing to cocreate's own
/// address (their mail program ignored Reply-To): the answer waits in the
/// holding pen, is no proposal, and the contact is told once, in their
/// LFP's language, where to write. Someone the digest was forwarded to is
/// not written to: cocreate never mailed them.
#[test]
fn an_answer_to_the_digest_is_held_and_its_sender_told_where_to_write() {
    let office = Office::new(TestDb::sqlite());
    let r = "OGP-ANSWER";
    setup(&office, "2026-12-01T09:00:00+01:00", r);
    office.at("2026-12-01T09:01:00+01:00", &["consultation", "open", r]);
    office.at(
        "2026-12-07T08:00:00+01:00",
        &["digest", "send", "--lfp", "FISCAL"],
    );
    let digests = office.delivered("2026-12-07T08:01:00+01:00", "lfp_digest");
    let digest = to(&digests, LFP)[0];
    let answer = |from: &str, id: &str| {
        format!(
            "From: {from}\r\nTo: {}\r\nSubject: Re: {}\r\nMessage-ID: <{id}@financa.example>\r\nIn-Reply-To: {}\r\nReferences: {}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nFaleminderit. A mund të na dërgoni edhe propozimet e vitit të kaluar?\r\n",
            digest.from, digest.subject, digest.message_id, digest.message_id
        )
    };
    let ingested = office.run_at(
        "2026-12-07T09:14:00+01:00",
        &["mail", "ingest"],
        Some(answer(LFP, "answer-1").as_bytes()),
    );
    assert!(ingested.status.success(), "{}", stderr(&ingested));
    let said = stdout(&ingested);
    assert!(
        said.contains("in the holding pen")
            && said.contains("a reply to cocreate's digest or reminder to an LFP"),
        "{said}"
    );
    let forwarded = office.run_at(
        "2026-12-07T09:20:00+01:00",
        &["mail", "ingest"],
        Some(answer("kolegu@financa.example", "answer-2").as_bytes()),
    );
    assert!(
        stdout(&forwarded).contains("in the holding pen"),
        "{}",
        stdout(&forwarded)
    );

    let notes = office.delivered("2026-12-07T09:21:00+01:00", "not_a_proposal");
    assert_eq!(notes.len(), 1, "one note, to the LFP contact only");
    let note = &notes[0];
    assert_eq!(note.to, LFP);
    assert_eq!(
        note.subject,
        "Nuk u regjistrua si propozim: ju lutemi shkruajini ogp-poc@office.example"
    );
    assert_eq!(note.reply_to, "ogp-poc@office.example");
    for want in [
        format!(
            "Mesazhi juaj \"Re: {}\", i marrë më 7 dhjetor 2026, ora 09:14, erdhi",
            digest.subject
        ),
        "Pikës së Kontaktit: ogp-poc@office.example".to_string(),
        "/review".to_string(),
    ] {
        assert!(note.text.contains(&want), "{want} is not in\n{}", note.text);
    }
    assert!(note.html.contains("mailto:ogp-poc@office.example"));

    let proposals = office.at(
        "2026-12-07T09:22:00+01:00",
        &["mail", "proposals", "--json"],
    );
    assert_eq!(proposals.trim(), "[]", "no proposal: {proposals}");
    let pen = office.at("2026-12-07T09:22:00+01:00", &["mail", "pen", "list"]);
    assert!(
        pen.contains(LFP) && pen.contains("kolegu@financa.example"),
        "both wait for the POC:\n{pen}"
    );
}

/// Monday's digest stays at 08:00 office time on both sides of each change
/// of clocks in Tirana (summer time from 28 March 2027, winter time from 31
/// October 2027), and a job set in the hour the clocks skip or repeat runs
/// once that night: in spring as the skipped hour ends, in autumn the first
/// time the hour comes.
#[test]
fn schedules_keep_office_time_across_both_changes_of_clock() {
    let ran = |said: &str, job: &str| !said.starts_with(&format!("{job}: not due"));
    for (first, week_before, early, on_time, next) in [
        // Winter to summer: 08:00 is 07:00 UTC on 22 March, 06:00 on the 29th.
        (
            "2027-03-20T12:00:00+01:00",
            "2027-03-22T08:00:30+01:00",
            "2027-03-29T07:59:00+02:00",
            "2027-03-29T08:00:30+02:00",
            "next at 2027-03-29 08:00",
        ),
        // Summer to winter: 06:00 UTC on 25 October, 07:00 on 1 November.
        (
            "2027-10-23T12:00:00+02:00",
            "2027-10-25T08:00:30+02:00",
            "2027-11-01T07:59:00+01:00",
            "2027-11-01T08:00:30+01:00",
            "next at 2027-11-01 08:00",
        ),
    ] {
        let office = Office::new(TestDb::sqlite());
        let digest = |when: &str| office.at(when, &["schedule", "run", "lfp_digest"]);
        digest(first);
        let said = digest(week_before);
        assert!(ran(&said, "lfp_digest"), "{said}");
        let said = digest(early);
        assert!(said.contains(next), "a minute early: {said}");
        let said = digest(on_time);
        assert!(ran(&said, "lfp_digest"), "{said}");
    }

    let office = Office::new(TestDb::sqlite());
    office.set("COCREATE_SCHEDULES_PEN_SUMMARY", "30 2 * * *");
    let run = |when: &str| office.at(when, &["schedule", "run", "pen_summary"]);
    // 02:30 does not exist on 28 March 2027 (02:00 becomes 03:00): the job
    // runs once as the gap ends, then on the 29th as usual.
    run("2027-03-27T12:00:00+01:00");
    let said = run("2027-03-28T01:59:00+01:00");
    assert!(said.contains("next at 2027-03-28 03:00"), "{said}");
    let said = run("2027-03-28T03:00:30+02:00");
    assert!(ran(&said, "pen_summary"), "{said}");
    let said = run("2027-03-28T03:30:00+02:00");
    assert!(said.contains("next at 2027-03-29 02:30"), "{said}");
    // 02:30 comes twice on 31 October 2027 (03:00 becomes 02:00): once.
    run("2027-10-30T12:00:00+02:00");
    let said = run("2027-10-31T02:30:30+02:00");
    assert!(ran(&said, "pen_summary"), "{said}");
    let said = run("2027-10-31T02:31:00+01:00");
    assert!(
        said.contains("next at 2027-11-01 02:30"),
        "once, not twice: {said}"
    );
}
