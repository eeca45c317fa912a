//! One suite, both backends: every case runs on SQLite, and on PostgreSQL
//! when COCREATE_TEST_POSTGRES_URL is set (each case in a database of its
//! own). The store must behave the same whichever the POC picked.

use crate::common;

use std::collections::HashMap;

use crate::common::{TestDb, registry_csv};
use chrono::Utc;
use cocreate::consultation::{ConsultationSpec, ConsultationState, DeadlineExtension};
use cocreate::domain::Bilingual;
use cocreate::domain::{EmailAddress, Language, RegistrationNumber};
use cocreate::domain::{EmailKind, ReceiptNo, ReplyKey};
use cocreate::intake::types::{
    Applied, InboundState, IntakeWrite, NewFollowUp, NewInbound, NewProposal,
};
use cocreate::outbound::outbox::{Delivery, NewMessage, RelayRefusal, ReplyKeyRecord};
use cocreate::registry::import::{ImportError, ImportMode, ImportOptions, import_bytes};
use cocreate::registry::relevance::{Relevance, RelevanceOverride};
use cocreate::registry::{CsoRecord, ImportLogEntry, RegistryChanges};
use cocreate::store::Store;
use cocreate::store::StoreError;
use cocreate::store::records::RetryScope;

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = super::TestDb::sqlite();
                super::$case(&db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = super::TestDb::postgres().await else {
                    eprintln!("{} not set: PostgreSQL half not run", super::common::POSTGRES_ENV);
                    return;
                };
                super::$case(&db).await;
            }
        }
    )*};
}

pub(crate) use conformance;

conformance!(
    opening_twice_applies_migrations_once,
    changes_round_trip_with_addresses_and_unicode,
    reimporting_the_same_file_changes_nothing,
    an_updated_file_updates_adds_and_inactivates,
    overrides_survive_reimports_and_can_be_replaced_and_cleared,
    a_dry_run_writes_nothing,
    a_refused_file_writes_nothing,
    a_full_import_will_not_silently_empty_the_registry,
    concurrent_imports_all_succeed,
    many_rows_cross_statement_chunks,
    consultations_round_trip_and_references_are_unique,
    enqueueing_the_same_key_twice_queues_once_with_one_reply_key,
    claims_never_hand_the_same_message_to_two_claimers,
    outcomes_are_recorded_and_hard_bounces_mark_the_address,
    an_expired_claim_is_taken_over,
    a_renewed_claim_is_not_taken_over,
    opt_outs_and_restores_are_kept_with_their_reasons,
    a_message_is_stored_once_and_has_at_most_one_proposal,
    a_cso_is_found_by_id_and_by_address,
    released_claims_go_back_as_they_were,
    the_relay_refusal_and_schedule_watermarks_are_kept,
    follow_ups_bounces_and_lookups_by_receipt,
    failed_processing_is_retried_later_and_held_after_too_many,
);

/// Every message stored and not processed, whenever stored or last tried.
async fn unprocessed(store: &dyn Store) -> Vec<(i64, Vec<u8>)> {
    let end = Utc::now() + chrono::Duration::days(365 * 100);
    store.due_unprocessed(end, end, 1000).await.unwrap()
}

fn record(reg: &str, name: &str, emails: &[&str]) -> CsoRecord {
    CsoRecord {
        registration_no: RegistrationNumber::parse(reg).unwrap(),
        name: name.to_string(),
        emails: emails
            .iter()
            .map(|e| EmailAddress::parse(e).unwrap())
            .collect(),
        phone: None,
        city: Some("Gjirokastër".into()),
        fields_of_activity: vec!["Të drejtat e njeriut".into(), "Arsim".into()],
        language: Language::Sq,
    }
}

async fn import(
    store: &dyn Store,
    csv: &str,
    mode: ImportMode,
) -> cocreate::registry::import::ImportSummary {
    let options = ImportOptions {
        mode,
        ..ImportOptions::default()
    };
    import_bytes(store, csv.as_bytes(), "test.csv", &options)
        .await
        .expect("import")
}

async fn opening_twice_applies_migrations_once(db: &TestDb) {
    let first = db.open().await;
    first.ping().await.unwrap();
    drop(first);
    let second = db.open().await;
    second.ping().await.unwrap();
    assert!(second.csos().await.unwrap().is_empty());
}

async fn changes_round_trip_with_addresses_and_unicode(db: &TestDb) {
    let store = db.open().await;
    let mut a = record(
        "L1",
        "Shoqata “Çelësi” për të Drejtat",
        &["b@x.al", "a@x.al"],
    );
    a.phone = Some("+355 00 000 0001".into());
    let b = record("L2", "Qendra Ëndrra", &["qendra@x.al"]);
    let mut c = record("L3", "Forum", &["forum@x.al"]);
    c.language = Language::En;
    c.fields_of_activity.clear();
    store
        .apply_registry_changes(&RegistryChanges {
            added: vec![a.clone(), b.clone(), c.clone()],
            ..Default::default()
        })
        .await
        .unwrap();

    let got = store.csos().await.unwrap();
    let records: Vec<&CsoRecord> = got.iter().map(|c| &c.record).collect();
    assert_eq!(records, [&a, &b, &c], "addresses keep their order");
    assert!(got.iter().all(|c| c.active));

    let ids: HashMap<String, i64> = got
        .iter()
        .map(|c| (c.record.registration_no.to_string(), c.id))
        .collect();
    let mut a2 = a.clone();
    a2.emails = vec![EmailAddress::parse("new@x.al").unwrap()];
    a2.name = "Shoqata Çelësi".into();
    store
        .apply_registry_changes(&RegistryChanges {
            updated: vec![(ids["L1"], a2.clone())],
            inactivated: vec![ids["L2"]],
            ..Default::default()
        })
        .await
        .unwrap();
    let got = store.csos().await.unwrap();
    assert_eq!(got[0].record, a2);
    assert!(got[0].active);
    assert_eq!(
        got[1].record, b,
        "inactive organisations are kept as they were"
    );
    assert!(!got[1].active);

    // Back in the registry: an update makes it active again.
    store
        .apply_registry_changes(&RegistryChanges {
            updated: vec![(ids["L2"], b.clone())],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(store.csos().await.unwrap()[1].active);
}

async fn reimporting_the_same_file_changes_nothing(db: &TestDb) {
    let store = db.open().await;
    let csv = registry_csv(1, 50);
    let first = import(store.as_ref(), &csv, ImportMode::Full).await;
    assert_eq!((first.added, first.unchanged), (50, 0));
    let before = store.csos().await.unwrap();

    let again = import(store.as_ref(), &csv, ImportMode::Full).await;
    assert_eq!(
        (
            again.added,
            again.updated,
            again.unchanged,
            again.inactivated
        ),
        (0, 0, 50, 0)
    );
    assert_eq!(
        store.csos().await.unwrap(),
        before,
        "not even a timestamp moved"
    );
    let history = store.registry_imports(10).await.unwrap();
    assert_eq!(
        history.len(),
        1,
        "an import that changes nothing leaves no history"
    );
    assert_eq!(
        history[0].entry,
        ImportLogEntry {
            file_name: "test.csv".into(),
            full: true,
            added: 50,
            updated: 0,
            unchanged: 0,
            inactivated: 0,
            skipped: 0,
        }
    );
}

async fn an_updated_file_updates_adds_and_inactivates(db: &TestDb) {
    let store = db.open().await;
    import(store.as_ref(), &registry_csv(1, 20), ImportMode::Full).await;
    // Rows 1-5 gone, 6-20 kept with 6 renamed, 21-22 new.
    let mut csv = registry_csv(6, 17);
    csv = csv.replace("Shoqata Nr. 6 për", "Shoqata e Re Nr. 6 për");
    let s = import(store.as_ref(), &csv, ImportMode::Full).await;
    assert_eq!(
        (s.added, s.updated, s.unchanged, s.inactivated, s.skipped),
        (2, 1, 14, 5, 0)
    );
    let csos = store.csos().await.unwrap();
    assert_eq!(csos.len(), 22, "nothing is deleted");
    let inactive: Vec<String> = csos
        .iter()
        .filter(|c| !c.active)
        .map(|c| c.record.registration_no.to_string())
        .collect();
    assert_eq!(
        inactive,
        [
            "REG-000001",
            "REG-000002",
            "REG-000003",
            "REG-000004",
            "REG-000005"
        ]
    );

    // A partial file adds and updates but inactivates no one.
    let s = import(store.as_ref(), &registry_csv(100, 1), ImportMode::Partial).await;
    assert_eq!((s.added, s.inactivated), (1, 0));
}

async fn overrides_survive_reimports_and_can_be_replaced_and_cleared(db: &TestDb) {
    let store = db.open().await;
    import(store.as_ref(), &registry_csv(1, 3), ImportMode::Full).await;
    let reg = RegistrationNumber::parse("REG-000002").unwrap();
    let o = RelevanceOverride {
        registration_no: reg.clone(),
        policy_area: "FISCAL".into(),
        relevance: Relevance::None,
        reason: "Works only on sport".into(),
        set_at: Utc::now(),
    };
    store.set_relevance_override(&o).await.unwrap();
    let changed = registry_csv(1, 3).replace("Shoqata Nr. 2 ", "Shoqata Nr. Dy ");
    import(store.as_ref(), &changed, ImportMode::Full).await;
    import(store.as_ref(), &registry_csv(1, 1), ImportMode::Full).await;
    let got = store.relevance_overrides().await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].relevance, Relevance::None);
    assert_eq!(got[0].reason, "Works only on sport");

    let replaced = RelevanceOverride {
        relevance: Relevance::Direct,
        reason: "Monitors the municipal budget".into(),
        ..o
    };
    store.set_relevance_override(&replaced).await.unwrap();
    let got = store.relevance_overrides().await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].relevance, Relevance::Direct);

    assert!(
        store
            .clear_relevance_override(&reg, "FISCAL")
            .await
            .unwrap()
    );
    assert!(
        !store
            .clear_relevance_override(&reg, "FISCAL")
            .await
            .unwrap()
    );
    assert!(store.relevance_overrides().await.unwrap().is_empty());
}

async fn a_dry_run_writes_nothing(db: &TestDb) {
    let store = db.open().await;
    let options = ImportOptions {
        dry_run: true,
        ..ImportOptions::default()
    };
    let s = import_bytes(
        store.as_ref(),
        registry_csv(1, 10).as_bytes(),
        "x.csv",
        &options,
    )
    .await
    .unwrap();
    assert_eq!(s.added, 10);
    assert!(store.csos().await.unwrap().is_empty());
    assert!(store.registry_imports(10).await.unwrap().is_empty());
}

async fn a_refused_file_writes_nothing(db: &TestDb) {
    let store = db.open().await;
    import(store.as_ref(), &registry_csv(1, 5), ImportMode::Full).await;
    let before = store.csos().await.unwrap();
    for bad in [
        &b""[..],
        b"name;city\nA;B\n",
        b"\xD0\xCF\x11\xE0 an old .xls",
    ] {
        let err = import_bytes(store.as_ref(), bad, "bad.csv", &ImportOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, ImportError::File { .. }), "{err}");
    }
    assert_eq!(store.csos().await.unwrap(), before);
    assert_eq!(store.registry_imports(10).await.unwrap().len(), 1);
}

async fn a_full_import_will_not_silently_empty_the_registry(db: &TestDb) {
    let store = db.open().await;
    import(store.as_ref(), &registry_csv(1, 40), ImportMode::Full).await;
    let err = import_bytes(
        store.as_ref(),
        registry_csv(1, 3).as_bytes(),
        "extract.csv",
        &ImportOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "extract.csv was not imported: it would mark 37 of the 40 active organisations inactive; \
         if it really is the whole registry, run again with --allow-mass-inactivation, or use \
         --partial to only add and update"
    );
    assert!(store.csos().await.unwrap().iter().all(|c| c.active));

    let options = ImportOptions {
        allow_mass_inactivation: true,
        ..ImportOptions::default()
    };
    let s = import_bytes(
        store.as_ref(),
        registry_csv(1, 3).as_bytes(),
        "x.csv",
        &options,
    )
    .await
    .unwrap();
    assert_eq!(s.inactivated, 37);
}

async fn concurrent_imports_all_succeed(db: &TestDb) {
    let store = db.open().await;
    let mut tasks = Vec::new();
    for t in 0..12 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let csv = registry_csv(t * 100, 100);
            for _ in 0..3 {
                import(store.as_ref(), &csv, ImportMode::Partial).await;
                store
                    .set_relevance_override(&RelevanceOverride {
                        registration_no: RegistrationNumber::parse(&format!("REG-{:06}", t * 100))
                            .unwrap(),
                        policy_area: "ANTICOR".into(),
                        relevance: Relevance::Direct,
                        reason: format!("task {t}"),
                        set_at: Utc::now(),
                    })
                    .await
                    .expect("no 'database is locked' under concurrent writers");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.csos().await.unwrap().len(), 1200);
    assert_eq!(store.relevance_overrides().await.unwrap().len(), 12);
    assert_eq!(store.registry_imports(100).await.unwrap().len(), 12);
}

async fn many_rows_cross_statement_chunks(db: &TestDb) {
    let store = db.open().await;
    let s = import(store.as_ref(), &registry_csv(1, 25_000), ImportMode::Full).await;
    assert_eq!(s.added, 25_000);
    let csos = store.csos().await.unwrap();
    assert_eq!(csos.len(), 25_000);
    let last = &csos[24_999].record;
    assert_eq!(last.registration_no.as_str(), "REG-025000");
    assert_eq!(last.emails[0].as_str(), "info25000@shoqata25000.org.al");
    // Every row changed: updates cross chunks too.
    let changed = registry_csv(1, 25_000).replace("Korçë", "Tiranë");
    let s = import(store.as_ref(), &changed, ImportMode::Full).await;
    assert_eq!(s.updated, 25_000);
    let csos = store.csos().await.unwrap();
    assert!(
        csos.iter()
            .all(|c| c.record.city.as_deref() == Some("Tiranë"))
    );
    assert!(csos.iter().all(|c| c.record.emails.len() == 1));

    // The import reads, compares and writes a chunk of rows at a time: a
    // registration number repeated thousands of rows later is still found
    // (an existing organisation and one new in this file), a skipped row
    // still keeps its organisation, and a full import that would leave
    // out most of the registry is refused with nothing written.
    let kept = changed.lines().take(12_001).collect::<Vec<_>>().join("\n");
    let file = format!(
        "{kept}\nREG-030000,Shoqata e Re,re@x.al,,,,\nREG-020000,Pa adresë,,,,,\n{}\n\
         REG-000001,Again,again@x.al,,,,\nREG-030000,Again,again2@x.al,,,,\n",
        registry_csv(12_001, 1).lines().nth(1).unwrap()
    );
    let refused = import_bytes(
        store.as_ref(),
        file.as_bytes(),
        "part.csv",
        &ImportOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            refused,
            ImportError::MassInactivation {
                would: 12_998,
                active: 25_000,
                ..
            }
        ),
        "{refused}"
    );
    assert_eq!(
        store.csos().await.unwrap().len(),
        25_000,
        "nothing was added"
    );
    assert!(store.csos().await.unwrap().iter().all(|c| c.active));

    let options = ImportOptions {
        allow_mass_inactivation: true,
        ..ImportOptions::default()
    };
    let s = import_bytes(store.as_ref(), file.as_bytes(), "part.csv", &options)
        .await
        .unwrap();
    assert_eq!(
        (s.added, s.updated, s.unchanged, s.inactivated, s.skipped),
        (1, 1, 12_000, 12_998, 3)
    );
    let problems: Vec<(u64, &str)> = s
        .problems
        .iter()
        .map(|p| (p.line, p.reason.as_str()))
        .collect();
    assert_eq!(
        problems,
        [
            (12_003, "has no email address"),
            (12_005, "repeats registration number REG-000001 from line 2"),
            (
                12_006,
                "repeats registration number REG-030000 from line 12002"
            ),
        ]
    );
    let csos = store.csos().await.unwrap();
    assert_eq!(csos.len(), 25_001);
    let active = |reg: &str| {
        csos.iter()
            .find(|c| c.record.registration_no.as_str() == reg)
            .map(|c| c.active)
    };
    assert_eq!(active("REG-020000"), Some(true), "named by a skipped row");
    assert_eq!(active("REG-012001"), Some(true), "updated back to Korçë");
    assert_eq!(active("REG-012002"), Some(false));
    assert_eq!(active("REG-030000"), Some(true));
    assert_eq!(csos.iter().filter(|c| c.active).count(), 12_003);
}

fn spec(reference: &str) -> ConsultationSpec {
    ConsultationSpec {
        reference: reference.into(),
        policy_area: "FISCAL".into(),
        thematic_group: None,
        title_sq: "Buxheti i hapur".into(),
        title_en: "Open budget".into(),
        description_sq: "Përshkrim".into(),
        description_en: "Description".into(),
        opens_on: "2026-12-01".parse().unwrap(),
        closes_on: "2027-01-11".parse().unwrap(),
        meeting: None,
        drafts: vec![],
        short_period_reason: None,
    }
}

/// A consultation and one CSO to hang messages on.
pub(crate) async fn fixtures(store: &dyn Store) -> (i64, i64) {
    import(store, &registry_csv(1, 1), ImportMode::Full).await;
    let cso = store.csos().await.unwrap()[0].id;
    let consultation = store.insert_consultation(&spec("OGP-T")).await.unwrap();
    (consultation, cso)
}

pub(crate) fn message(key: &str, to: &str, consultation: i64, cso: i64) -> NewMessage {
    let address = EmailAddress::parse(to).unwrap();
    NewMessage {
        idempotency_key: key.into(),
        kind: EmailKind::Invitation,
        recipient: address.clone(),
        envelope_from: "ogp-poc@office.example".into(),
        consultation_id: Some(consultation),
        cso_id: Some(cso),
        message: format!("Subject: {key}\r\n\r\nBody\r\n").into_bytes(),
        reply_key: Some(ReplyKeyRecord {
            key: ReplyKey::generate(),
            consultation_id: consultation,
            cso_id: cso,
            address,
            purpose: "invitation",
            receipt_no: None,
        }),
    }
}

async fn consultations_round_trip_and_references_are_unique(db: &TestDb) {
    let store = db.open().await;
    let mut s = spec("OGP-A");
    s.drafts.push(cocreate::consultation::DraftCommitment {
        number: 1,
        title: "Të dhëna çdo muaj".into(),
        text: "Tekst".into(),
    });
    let id = store.insert_consultation(&s).await.unwrap();
    let err = store.insert_consultation(&spec("OGP-A")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "a consultation with reference OGP-A already exists"
    );

    let got = store.consultations().await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].spec, s);
    assert_eq!(got[0].state, ConsultationState::Draft);

    store
        .update_consultation(id, &s, Some(ConsultationState::Open))
        .await
        .unwrap();
    let mut later = s.clone();
    later.closes_on = "2027-01-25".parse().unwrap();
    let queued = store
        .extend_deadline(
            &DeadlineExtension {
                consultation_id: id,
                previous: s.closes_on,
                new: later.closes_on,
                reason: Bilingual::new(
                    "Më shumë kohë pas takimit".into(),
                    "More time after the meeting".into(),
                ),
                at: Utc::now(),
            },
            &later,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(queued, 0);
    let got = store.consultations().await.unwrap();
    assert_eq!(
        got[0].state,
        ConsultationState::Open,
        "extending keeps the state"
    );
    assert_eq!(got[0].spec.closes_on, later.closes_on);
    let ext = store.deadline_extensions().await.unwrap();
    assert_eq!(ext.len(), 1);
    assert_eq!(ext[0].reason.sq, "Më shumë kohë pas takimit");
    assert_eq!(ext[0].reason.en, "More time after the meeting");
}

async fn enqueueing_the_same_key_twice_queues_once_with_one_reply_key(db: &TestDb) {
    let store = db.open().await;
    let (c, cso) = fixtures(store.as_ref()).await;
    let first = message("invitation:1:1:a@x.al", "a@x.al", c, cso);
    let key = first.reply_key.as_ref().unwrap().key.clone();
    assert_eq!(
        store.enqueue(std::slice::from_ref(&first)).await.unwrap(),
        1
    );
    let again = message("invitation:1:1:a@x.al", "a@x.al", c, cso);
    let ghost = again.reply_key.as_ref().unwrap().key.clone();
    assert_eq!(
        store
            .enqueue(&[again, message("invitation:1:1:b@x.al", "b@x.al", c, cso)])
            .await
            .unwrap(),
        1
    );
    assert!(store.reply_key(&key).await.unwrap().is_some());
    assert!(
        store.reply_key(&ghost).await.unwrap().is_none(),
        "no key for a message not queued"
    );
    let keys = store.queued_keys("invitation:1:").await.unwrap();
    assert_eq!(keys.len(), 2);
    assert!(
        store.queued_keys("invitation_1").await.unwrap().is_empty(),
        "'_' is not a wildcard"
    );
    assert_eq!(store.outbox_counts().await.unwrap().queued, 2);
}

async fn claims_never_hand_the_same_message_to_two_claimers(db: &TestDb) {
    let store = db.open().await;
    let (c, cso) = fixtures(store.as_ref()).await;
    let messages: Vec<NewMessage> = (0..300)
        .map(|i| message(&format!("k:{i}"), &format!("m{i}@x.al"), c, cso))
        .collect();
    store.enqueue(&messages).await.unwrap();
    let mut claimers = Vec::new();
    for _ in 0..6 {
        let store = store.clone();
        claimers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store
                    .claim_due_messages(7, std::time::Duration::from_secs(600))
                    .await
                    .unwrap()
                    .messages;
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|m| m.id));
            }
        }));
    }
    let mut all = Vec::new();
    for c in claimers {
        all.extend(c.await.unwrap());
    }
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(
        (n, all.len()),
        (300, 300),
        "each message claimed exactly once"
    );
    assert_eq!(store.outbox_counts().await.unwrap().sending, 300);
}

async fn outcomes_are_recorded_and_hard_bounces_mark_the_address(db: &TestDb) {
    let store = db.open().await;
    let (c, cso) = fixtures(store.as_ref()).await;
    store
        .enqueue(&[
            message("k:ok", "ok@x.al", c, cso),
            message("k:later", "later@x.al", c, cso),
            message("k:bad", "bad@x.al", c, cso),
        ])
        .await
        .unwrap();
    let claim = store
        .claim_due_messages(10, std::time::Duration::from_secs(600))
        .await
        .unwrap();
    let claimed = &claim.messages;
    assert_eq!(claimed.len(), 3);
    assert!(claimed.iter().all(|m| m.attempts == 1));
    let id = |r: &str| claimed.iter().find(|m| m.recipient == r).unwrap().id;
    let later = Utc::now() + chrono::Duration::hours(1);
    let outcomes = [
        (id("ok@x.al"), "ok@x.al".into(), Delivery::Sent),
        (
            id("later@x.al"),
            "later@x.al".into(),
            Delivery::Retry {
                at: later,
                error: "451 greylisted".into(),
            },
        ),
        (
            id("bad@x.al"),
            "bad@x.al".into(),
            Delivery::Failed {
                error: "550 no such user".into(),
                hard_bounce: true,
            },
        ),
    ];
    assert_eq!(
        store
            .record_deliveries("another claim's token", &outcomes)
            .await
            .unwrap(),
        0,
        "only the claim's holder records outcomes"
    );
    assert_eq!(store.outbox_counts().await.unwrap().sending, 3);
    assert_eq!(
        store
            .record_deliveries(&claim.token, &outcomes)
            .await
            .unwrap(),
        3
    );
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!(
        (counts.queued, counts.sending, counts.sent, counts.failed),
        (1, 0, 1, 1)
    );
    assert!(
        store
            .claim_due_messages(10, std::time::Duration::from_secs(600))
            .await
            .unwrap()
            .messages
            .is_empty(),
        "the retry is not due for an hour"
    );
    let failures = store.outbox_failures(10).await.unwrap();
    assert_eq!(failures[0].recipient, "bad@x.al");
    assert_eq!(failures[0].last_error, "550 no such user");
    let statuses = store.address_statuses().await.unwrap();
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].address, "bad@x.al");
    assert!(statuses[0].bounced_at.is_some());

    // A refused address is left alone unless asked for.
    assert!(failures[0].refused);
    let left = store.retry(RetryScope::default()).await.unwrap();
    assert_eq!((left.failed, left.refused_left), (0, 1));
    let retried = store
        .retry(RetryScope {
            refused: true,
            ..RetryScope::default()
        })
        .await
        .unwrap();
    assert_eq!((retried.failed, retried.refused_left), (1, 0));
    let again = store
        .claim_due_messages(10, std::time::Duration::from_secs(600))
        .await
        .unwrap()
        .messages;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].recipient, "bad@x.al");
}

async fn an_expired_claim_is_taken_over(db: &TestDb) {
    let store = db.open().await;
    let (c, cso) = fixtures(store.as_ref()).await;
    store
        .enqueue(&[message("k:1", "one@x.al", c, cso)])
        .await
        .unwrap();
    let short = std::time::Duration::from_millis(300);
    let long = std::time::Duration::from_secs(60);
    let first = store.claim_due_messages(10, short).await.unwrap();
    assert_eq!(first.messages.len(), 1);
    let id = first.messages[0].id;
    assert!(
        store
            .claim_due_messages(10, long)
            .await
            .unwrap()
            .messages
            .is_empty()
    );
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let second = store.claim_due_messages(10, long).await.unwrap();
    assert_eq!(
        second.messages.len(),
        1,
        "a crashed claimer's message is sent by another"
    );
    assert_eq!(second.messages[0].attempts, 2);
    assert_ne!(first.token, second.token);

    // The first claimer, slow rather than crashed, finds it no longer holds
    // the message, and what it reports late changes nothing.
    assert!(
        store
            .renew_claim(&first.token, long)
            .await
            .unwrap()
            .is_empty()
    );
    let late = [(id, "one@x.al".to_string(), Delivery::Sent)];
    assert_eq!(
        store.record_deliveries(&first.token, &late).await.unwrap(),
        0
    );
    store.release_claims(&first.token, &[id]).await.unwrap();
    assert_eq!(store.outbox_counts().await.unwrap().sending, 1);
    assert_eq!(
        store.record_deliveries(&second.token, &late).await.unwrap(),
        1
    );
    assert_eq!(store.outbox_counts().await.unwrap().sent, 1);
}

async fn a_renewed_claim_is_not_taken_over(db: &TestDb) {
    let store = db.open().await;
    let (c, cso) = fixtures(store.as_ref()).await;
    store
        .enqueue(&[
            message("k:1", "one@x.al", c, cso),
            message("k:2", "two@x.al", c, cso),
        ])
        .await
        .unwrap();
    let claim = store
        .claim_due_messages(10, std::time::Duration::from_millis(300))
        .await
        .unwrap();
    let sent = [(claim.messages[0].id, "one@x.al".to_string(), Delivery::Sent)];
    store.record_deliveries(&claim.token, &sent).await.unwrap();
    let held = store
        .renew_claim(&claim.token, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        held,
        vec![claim.messages[1].id],
        "what is recorded is no longer held"
    );
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(
        store
            .claim_due_messages(10, std::time::Duration::from_secs(60))
            .await
            .unwrap()
            .messages
            .is_empty(),
        "the renewed lease has not run out"
    );
}

async fn opt_outs_and_restores_are_kept_with_their_reasons(db: &TestDb) {
    let store = db.open().await;
    let a = EmailAddress::parse("cso@x.al").unwrap();
    store.opt_out(&a, "unsubscribe page").await.unwrap();
    let first = store.address_statuses().await.unwrap()[0].opted_out_at;
    store.opt_out(&a, "one-click").await.unwrap();
    let s = &store.address_statuses().await.unwrap()[0];
    assert_eq!(s.opted_out_at, first, "the first opt-out date is kept");
    assert_eq!(s.opt_out_source.as_deref(), Some("unsubscribe page"));
    assert!(
        store
            .restore_address(&a, "Asked by phone to receive invitations again")
            .await
            .unwrap()
    );
    let s = &store.address_statuses().await.unwrap()[0];
    assert!(s.opted_out_at.is_none());
    assert_eq!(
        s.restore_reason.as_deref(),
        Some("Asked by phone to receive invitations again")
    );
    assert!(!store.restore_address(&a, "again").await.unwrap());
}

async fn a_message_is_stored_once_and_has_at_most_one_proposal(db: &TestDb) {
    let store = db.open().await;
    let (c, cso) = fixtures(store.as_ref()).await;
    let raw = b"From: a@x.al\r\nSubject: P\r\n\r\nPropozim\r\n".as_slice();
    let inbound = NewInbound {
        dedupe_key: "k1".into(),
        source: "stdin",
        raw,
        message_id: Some("1@x.al".into()),
        from_address: Some("a@x.al".into()),
        subject: Some("P".into()),
    };
    let (id, new) = store_inbound(store.as_ref(), &inbound).await.unwrap();
    assert!(new);
    assert_eq!(
        store_inbound(store.as_ref(), &inbound).await.unwrap(),
        (id, false)
    );
    assert_eq!(unprocessed(store.as_ref()).await, [(id, raw.to_vec())]);

    let proposal = NewProposal {
        receipt_no: "OGP-7K3M-Q9TX".into(),
        consultation_id: c,
        cso_id: Some(cso),
        inbound_message_id: id,
        from_address: "a@x.al".into(),
        other_sender: false,
        late: false,
        draft_number: None,
        subject: "P".into(),
        reply_text: "Propozim".into(),
        quoted_text: String::new(),
        signature: String::new(),
        attachments_json: "[]".into(),
        authentication_json: "{}".into(),
        sender_flag: None,
        no_publish: false,
        sender_name: None,
    };
    let receipt = NewMessage {
        kind: EmailKind::Receipt,
        envelope_from: String::new(),
        ..message("receipt:OGP-7K3M-Q9TX", "a@x.al", c, cso)
    };
    let first = record_proposal(store.as_ref(), &proposal, Some(&receipt))
        .await
        .unwrap();
    assert_eq!(first, ("OGP-7K3M-Q9TX".to_string(), true));
    let again = NewProposal {
        receipt_no: "OGP-AAAA-BBBB".into(),
        ..proposal
    };
    let second = record_proposal(store.as_ref(), &again, Some(&receipt))
        .await
        .unwrap();
    assert_eq!(
        second,
        ("OGP-7K3M-Q9TX".to_string(), false),
        "the first proposal stands"
    );
    assert_eq!(store.proposals().await.unwrap().len(), 1);
    assert!(unprocessed(store.as_ref()).await.is_empty());
    let hour_ago = Utc::now() - chrono::Duration::hours(1);
    let senders = ["a@x.al".to_string(), "b@x.al".to_string()];
    let known = store
        .intake_lookups(&[], &senders, hour_ago, hour_ago)
        .await
        .unwrap();
    assert_eq!(known.acknowledgements.get("a@x.al"), Some(&1));
    assert_eq!(known.acknowledgements.get("b@x.al"), None);
    assert!(
        known
            .texts
            .contains(&("a@x.al".to_string(), "Propozim".to_string()))
    );
    assert_eq!(known.texts.len(), 1);

    let (held, _) = store_inbound(
        store.as_ref(),
        &NewInbound {
            dedupe_key: "k2".into(),
            ..inbound.clone()
        },
    )
    .await
    .unwrap();
    store
        .set_inbound_outcome(held, InboundState::Held, "unmatched", "no reply key")
        .await
        .unwrap();
    assert!(unprocessed(store.as_ref()).await.is_empty());

    // A batch: stored in one call, the same message twice in it stored
    // once; then three proposals and a held message written in one call.
    let batch: Vec<NewInbound> = ["k3", "k4", "k3", "k5", "k1"]
        .iter()
        .map(|k| NewInbound {
            dedupe_key: k.to_string(),
            ..inbound.clone()
        })
        .collect();
    let stored = store.store_inbound_many(&batch).await.unwrap();
    let news: Vec<bool> = stored.iter().map(|s| s.new).collect();
    assert_eq!(news, [true, true, false, true, false]);
    assert_eq!(stored[0].id, stored[2].id);
    assert_eq!(stored[4].id, id);
    assert_eq!(stored[4].state, InboundState::Processed);
    let proposal_of = |i: usize, receipt_no: &str| IntakeWrite::Proposal {
        proposal: NewProposal {
            receipt_no: receipt_no.into(),
            inbound_message_id: stored[i].id,
            ..again.clone()
        },
        receipts: vec![NewMessage {
            kind: EmailKind::Receipt,
            envelope_from: String::new(),
            ..message(&format!("receipt:{receipt_no}"), "a@x.al", c, cso)
        }],
    };
    let applied = store
        .apply_intake(&[
            proposal_of(0, "OGP-CCCC-DDDD"),
            IntakeWrite::Outcome {
                id: stored[1].id,
                state: InboundState::Held,
                classification: "unmatched".into(),
                reason: "no reply key".into(),
            },
            proposal_of(3, "OGP-EEEE-FFFF"),
            proposal_of(4, "OGP-GGGG-HHHH"),
        ])
        .await
        .unwrap();
    assert_eq!(
        applied,
        [
            Applied::Proposal {
                receipt_no: "OGP-CCCC-DDDD".into(),
                new: true
            },
            Applied::Done,
            Applied::Proposal {
                receipt_no: "OGP-EEEE-FFFF".into(),
                new: true
            },
            Applied::Proposal {
                receipt_no: "OGP-7K3M-Q9TX".into(),
                new: false
            },
        ]
    );
    assert_eq!(store.proposals().await.unwrap().len(), 3);
    let held: Vec<i64> = store
        .inbound_in_state(InboundState::Held)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert!(held.contains(&stored[1].id));
    let known = store
        .intake_lookups(&[], &senders, hour_ago, hour_ago)
        .await
        .unwrap();
    assert_eq!(known.acknowledgements.get("a@x.al"), Some(&3));
    assert!(unprocessed(store.as_ref()).await.is_empty());
}

async fn a_cso_is_found_by_id_and_by_address(db: &TestDb) {
    let store = db.open().await;
    store.ping().await.unwrap();
    let changes = RegistryChanges {
        added: vec![
            record("R1", "Një", &["a@x.al", "shared@x.al"]),
            record("R2", "Dy", &["shared@x.al"]),
        ],
        ..RegistryChanges::default()
    };
    store.apply_registry_changes(&changes).await.unwrap();
    let all = store.csos().await.unwrap();
    let first = store.cso(all[0].id).await.unwrap().unwrap();
    assert_eq!(first, all[0]);
    assert_eq!(first.record.emails.len(), 2);
    assert!(store.cso(-1).await.unwrap().is_none());
    let shared = EmailAddress::parse("shared@x.al").unwrap();
    let names: Vec<String> = store
        .csos_with_address(&shared)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.record.name)
        .collect();
    assert_eq!(names, ["Një", "Dy"]);
    let nobody = EmailAddress::parse("nobody@x.al").unwrap();
    assert!(store.csos_with_address(&nobody).await.unwrap().is_empty());
}

async fn released_claims_go_back_as_they_were(db: &TestDb) {
    let store = db.open().await;
    let (c, cso) = fixtures(store.as_ref()).await;
    store
        .enqueue(&[message("invitation:r:1", "a@x.al", c, cso)])
        .await
        .unwrap();
    let claim = store
        .claim_due_messages(10, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    let claimed = &claim.messages;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempts, 1);
    assert_eq!(store.outbox_counts().await.unwrap().sending, 1);
    store
        .release_claims(&claim.token, &[claimed[0].id])
        .await
        .unwrap();
    assert_eq!(store.outbox_counts().await.unwrap().queued, 1);
    let again = store
        .claim_due_messages(10, std::time::Duration::from_secs(60))
        .await
        .unwrap()
        .messages;
    assert_eq!(again.len(), 1, "due again at once");
    assert_eq!(again[0].attempts, 1, "the released attempt does not count");
}

async fn the_relay_refusal_and_schedule_watermarks_are_kept(db: &TestDb) {
    let store = db.open().await;
    assert!(store.relay_refusal().await.unwrap().is_none());
    let since = Utc::now() - chrono::Duration::minutes(5);
    let first = RelayRefusal {
        reason: "permanent error (535): 5.7.8 Authentication credentials invalid".into(),
        since,
        next_try_at: since + chrono::Duration::seconds(30),
    };
    store.set_relay_refusal(Some(&first)).await.unwrap();
    let later = RelayRefusal {
        since: Utc::now(),
        next_try_at: Utc::now() + chrono::Duration::seconds(60),
        ..first.clone()
    };
    store.set_relay_refusal(Some(&later)).await.unwrap();
    let kept = store.relay_refusal().await.unwrap().unwrap();
    assert_eq!(kept.reason, first.reason);
    assert_eq!(
        kept.since.timestamp_micros(),
        since.timestamp_micros(),
        "the first refusal's time is kept while the relay goes on refusing"
    );
    assert_eq!(
        kept.next_try_at.timestamp_micros(),
        later.next_try_at.timestamp_micros()
    );
    store.set_relay_refusal(None).await.unwrap();
    assert!(store.relay_refusal().await.unwrap().is_none());

    assert!(store.schedule_watermark("digest").await.unwrap().is_none());
    let t1 = Utc::now() - chrono::Duration::days(2);
    store.set_schedule_watermark("digest", t1).await.unwrap();
    store
        .set_schedule_watermark("pen_summary", Utc::now())
        .await
        .unwrap();
    let t2 = Utc::now();
    store.set_schedule_watermark("digest", t2).await.unwrap();
    let got = store.schedule_watermark("digest").await.unwrap().unwrap();
    assert_eq!(got.timestamp_micros(), t2.timestamp_micros());
}

async fn follow_ups_bounces_and_lookups_by_receipt(db: &TestDb) {
    let store = db.open().await;
    let (c, cso) = fixtures(store.as_ref()).await;
    let inbound = |key: &str, raw: &'static [u8]| NewInbound {
        dedupe_key: key.into(),
        source: "stdin",
        raw,
        message_id: None,
        from_address: Some("a@x.al".into()),
        subject: Some("P".into()),
    };
    let raw = b"From: a@x.al\r\nSubject: P\r\n\r\nPropozim\r\n".as_slice();
    let (id, _) = store_inbound(store.as_ref(), &inbound("p", raw))
        .await
        .unwrap();
    let (summary, bytes) = store.inbound_raw(id).await.unwrap().unwrap();
    assert_eq!(bytes, raw);
    assert_eq!(summary.state, InboundState::Received);
    assert!(store.inbound_raw(id + 1000).await.unwrap().is_none());
    let proposal = NewProposal {
        receipt_no: "OGP-PPPP-QQQQ".into(),
        consultation_id: c,
        cso_id: Some(cso),
        inbound_message_id: id,
        from_address: "a@x.al".into(),
        other_sender: false,
        late: false,
        draft_number: None,
        subject: "P".into(),
        reply_text: "Propozim".into(),
        quoted_text: String::new(),
        signature: String::new(),
        attachments_json: "[]".into(),
        authentication_json: "{}".into(),
        sender_flag: None,
        no_publish: false,
        sender_name: None,
    };
    record_proposal(store.as_ref(), &proposal, None)
        .await
        .unwrap();
    assert_eq!(
        store.receipt_for_message(id).await.unwrap().as_deref(),
        Some("OGP-PPPP-QQQQ")
    );
    let receipt = ReceiptNo::parse("OGP-PPPP-QQQQ").unwrap();
    let found = store.proposal_by_receipt(&receipt).await.unwrap().unwrap();
    assert_eq!((found.consultation_id, found.cso_id), (c, Some(cso)));
    let proposal_id = found.id;
    let nobody = ReceiptNo::parse("OGP-NNNN-XXXX").unwrap();
    assert!(store.proposal_by_receipt(&nobody).await.unwrap().is_none());

    let (reply, _) = store_inbound(
        store.as_ref(),
        &inbound("f", b"Subject: Re\r\n\r\nShtese\r\n"),
    )
    .await
    .unwrap();
    let follow_up = NewFollowUp {
        proposal_id,
        receipt_no: "OGP-PPPP-QQQQ".into(),
        inbound_message_id: reply,
        from_address: "a@x.al".into(),
        reply_text: "Shtesë".into(),
        quoted_text: String::new(),
        signature: String::new(),
        attachments_json: "[]".into(),
        sender_flag: None,
    };
    assert!(
        record_follow_up(store.as_ref(), &follow_up, None)
            .await
            .unwrap()
    );
    assert!(
        !record_follow_up(store.as_ref(), &follow_up, None)
            .await
            .unwrap(),
        "a message is one follow-up at most"
    );
    assert!(unprocessed(store.as_ref()).await.is_empty());

    record_bounce(
        store.as_ref(),
        "soft@x.al",
        false,
        "delivery report: status 4.2.2",
    )
    .await
    .unwrap();
    record_bounce(
        store.as_ref(),
        "soft@x.al",
        false,
        "delivery report: status 4.2.2",
    )
    .await
    .unwrap();
    record_bounce(
        store.as_ref(),
        "gone@x.al",
        true,
        "delivery report: status 5.1.1",
    )
    .await
    .unwrap();
    let statuses = store.address_statuses().await.unwrap();
    let gone = statuses.iter().find(|s| s.address == "gone@x.al").unwrap();
    assert!(gone.bounced_at.is_some());
    assert_eq!(
        gone.bounce_reason.as_deref(),
        Some("delivery report: status 5.1.1")
    );
    let soft = statuses.iter().find(|s| s.address == "soft@x.al").unwrap();
    assert!(soft.bounced_at.is_none());
    assert_eq!(soft.soft_bounces, 2);
}

// One write at a time, as the tests state them; intake writes a batch of
// them with `apply_intake` and stores messages with `store_inbound_many`.

pub(crate) async fn store_inbound(
    store: &dyn Store,
    m: &NewInbound<'_>,
) -> Result<(i64, bool), StoreError> {
    let stored = store.store_inbound_many(std::slice::from_ref(m)).await?;
    Ok((stored[0].id, stored[0].new))
}

pub(crate) async fn record_proposal(
    store: &dyn Store,
    proposal: &NewProposal,
    receipt: Option<&NewMessage>,
) -> Result<(String, bool), StoreError> {
    let applied = store
        .apply_intake(&[IntakeWrite::Proposal {
            proposal: proposal.clone(),
            receipts: receipt.into_iter().cloned().collect(),
        }])
        .await?;
    match &applied[..] {
        [Applied::Proposal { receipt_no, new }] => Ok((receipt_no.clone(), *new)),
        other => panic!("a proposal write applied as {other:?}"),
    }
}

async fn record_follow_up(
    store: &dyn Store,
    follow_up: &NewFollowUp,
    confirmation: Option<&NewMessage>,
) -> Result<bool, StoreError> {
    let applied = store
        .apply_intake(&[IntakeWrite::FollowUp {
            follow_up: follow_up.clone(),
            confirmations: confirmation.into_iter().cloned().collect(),
        }])
        .await?;
    Ok(matches!(applied[..], [Applied::FollowUp { new: true }]))
}

async fn record_bounce(
    store: &dyn Store,
    address: &str,
    hard: bool,
    reason: &str,
) -> Result<(), StoreError> {
    store
        .apply_intake(&[IntakeWrite::Bounce {
            address: address.into(),
            hard,
            reason: reason.into(),
        }])
        .await?;
    Ok(())
}

async fn failed_processing_is_retried_later_and_held_after_too_many(db: &TestDb) {
    let store = db.open().await;
    let raw = b"From: a@x.al\r\nSubject: P\r\n\r\nText\r\n";
    let inbound = NewInbound {
        dedupe_key: "retry-1".into(),
        source: "test",
        raw,
        message_id: None,
        from_address: Some("a@x.al".into()),
        subject: Some("P".into()),
    };
    let (id, _) = store_inbound(store.as_ref(), &inbound).await.unwrap();
    let now = Utc::now();
    let soon = now + chrono::Duration::seconds(1);
    assert_eq!(
        store.due_unprocessed(soon, soon, 10).await.unwrap().len(),
        1
    );
    assert!(
        store
            .due_unprocessed(soon, now - chrono::Duration::seconds(60), 10)
            .await
            .unwrap()
            .is_empty(),
        "a message just stored is left to the batch that stored it"
    );
    assert_eq!(store.unprocessed_backlog().await.unwrap().0, 1);

    let later = now + chrono::Duration::minutes(5);
    let retry_at = move |_| later;
    assert!(
        !store
            .processing_failed(id, "disk full", 2, &retry_at)
            .await
            .unwrap()
    );
    assert!(
        store
            .due_unprocessed(soon, soon, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due again before its backoff has passed"
    );
    let after = later + chrono::Duration::seconds(1);
    assert_eq!(
        store.due_unprocessed(after, soon, 10).await.unwrap().len(),
        1
    );

    assert!(
        store
            .processing_failed(id, "disk full", 2, &retry_at)
            .await
            .unwrap()
    );
    let held = store.inbound_in_state(InboundState::Held).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(
        held[0].reason.as_deref(),
        Some("could not be processed after 2 attempts: disk full")
    );
    assert_eq!(store.unprocessed_backlog().await.unwrap(), (0, None));
    store.probe_write().await.unwrap();
}
