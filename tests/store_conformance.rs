//! One suite, both backends: every case runs on SQLite, and on PostgreSQL
//! when COCREATE_TEST_POSTGRES_URL is set (each case in a database of its
//! own). The store must behave the same whichever the POC picked.

mod common;

use std::collections::HashMap;

use chrono::Utc;
use cocreate::domain::{EmailAddress, Language, RegistrationNumber};
use cocreate::registry::import::{ImportError, ImportMode, ImportOptions, import_bytes};
use cocreate::registry::relevance::{Relevance, RelevanceOverride};
use cocreate::registry::{CsoRecord, ImportLogEntry, RegistryChanges};
use cocreate::store::Store;
use common::{TestDb, registry_csv};

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
);

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
}
