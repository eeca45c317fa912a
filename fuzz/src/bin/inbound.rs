//! AFL++ target: raw bytes through the whole inbound reading (parse,
//! classify, route against a store with a registered CSO and an open
//! consultation, trim, as `mail inspect` does), and the same bytes as text
//! straight into trimming and the HTML reader. A panic, a store error or a
//! broken promise of trimming (a line lost or invented) is a crash.

use std::sync::Arc;

use cocreate::config::{Config, DatabaseConfig};
use cocreate::consultation::{ConsultationSpec, ConsultationState};
use cocreate::domain::{EmailAddress, Language, RegistrationNumber};
use cocreate::inbound::{html, inspect::inspect, trim::trim};
use cocreate::registry::{CsoRecord, RegistryChanges};
use cocreate::store::{self, Store};

async fn store(dir: &std::path::Path) -> Arc<dyn Store> {
    let store = store::open(&DatabaseConfig {
        url: format!("sqlite:{}", dir.join("fuzz.db").display()),
        password_env: None,
        max_connections: 2,
    })
    .await
    .expect("a store in a temporary folder");
    let cso = CsoRecord {
        registration_no: RegistrationNumber::parse("F1").unwrap(),
        name: "Qendra për Buxhet të Hapur".into(),
        emails: vec![EmailAddress::parse("buxheti@cso.example.org").unwrap()],
        phone: None,
        city: None,
        fields_of_activity: vec!["Buxhet".into()],
        language: Language::Sq,
    };
    store
        .apply_registry_changes(&RegistryChanges {
            added: vec![cso],
            ..RegistryChanges::default()
        })
        .await
        .unwrap();
    let spec = ConsultationSpec {
        reference: "OGP-FUZZ".into(),
        policy_area: "FISCAL".into(),
        thematic_group: None,
        title_sq: "Buxheti".into(),
        title_en: "Budget".into(),
        description_sq: "Përshkrim".into(),
        description_en: "Description".into(),
        opens_on: "2026-12-01".parse().unwrap(),
        closes_on: "2099-12-31".parse().unwrap(),
        meeting: None,
        drafts: vec![],
        short_period_reason: None,
    };
    let id = store.insert_consultation(&spec).await.unwrap();
    store
        .update_consultation(id, &spec, Some(ConsultationState::Open))
        .await
        .unwrap();
    store
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = runtime.block_on(store(dir.path()));
    let config = Config::embedded().unwrap();
    afl::fuzz!(|data: &[u8]| {
        runtime
            .block_on(inspect(store.as_ref(), &config, data))
            .expect("inspecting a message never fails on the store");
        let text = String::from_utf8_lossy(data);
        if let Err(broken) = trim(&text).keeps_every_line_of(&text) {
            panic!("{broken}");
        }
        let _ = html::to_text(&text);
    });
}
