//! AFL++ target: raw bytes through the whole inbound reading (parse,
//! classify, route against a store with a registered CSO and an open
//! consultation, trim, as `mail inspect` does), and the same bytes as text
//! straight into trimming and the HTML reader. A panic, a store error or a
//! broken promise of trimming (a line lost or invented) is a crash.

use std::panic::AssertUnwindSafe;
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
        sqlite_cache_mib: store::SqliteMemory::default().cache_mib,
        sqlite_mmap_mib: store::SqliteMemory::default().mmap_mib,
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

/// What the runs of one fuzzing process need, made on its first run: AFL++
/// forks the process after `main` has started, and the store's connection
/// threads would not survive a fork.
struct Target {
    runtime: tokio::runtime::Runtime,
    store: Arc<dyn Store>,
    config: Config,
}

impl Target {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // One database per process, in the folder fuzz/run.sh clears.
        let dir = std::env::var_os("COCREATE_TEST_FUZZ_DB_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let file = dir.join(format!("cocreate-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&file).unwrap();
        let store = runtime.block_on(store(&file));
        Self {
            runtime,
            store,
            config: Config::embedded().unwrap(),
        }
    }

    fn run(&self, data: &[u8]) {
        self.runtime
            .block_on(inspect(self.store.as_ref(), &self.config, data))
            .expect("inspecting a message never fails on the store");
        let text = String::from_utf8_lossy(data);
        if let Err(broken) = trim(&text).keeps_every_line_of(&text) {
            panic!("{broken}");
        }
        let _ = html::to_text(&text);
    }
}

fn main() {
    let target = std::sync::OnceLock::new();
    // A panic is the finding: nothing is used after one is caught.
    let target = AssertUnwindSafe(&target);
    // Without afl.rs's panic hook: a panic that cocreate catches (mail-parser
    // fails on some broken multipart structures; parse_within holds such a
    // message) is handled, not a finding. One that escapes still aborts.
    afl::fuzz_nohook!(|data: &[u8]| target.get_or_init(Target::new).run(data));
}
