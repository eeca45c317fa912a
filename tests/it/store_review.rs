//! Review's part of the store, on both backends (see store_conformance):
//! decisions and their audit log, corrections told once, publication with
//! its notices in one transaction, single-use sign-in links and sessions.

use chrono::{DateTime, Duration, Utc};
use cocreate::intake::types::{NewInbound, NewProposal};
use cocreate::store::StoreError;
use cocreate::store::records::{DispositionRecord, DispositionWrite};

use crate::common::{self, TestDb};
use crate::store_conformance::{conformance, fixtures, message, record_proposal, store_inbound};

conformance!(decisions_are_logged_published_once_and_sign_in_links_work_once);

fn decision(disposition: &str, by: &str, at: DateTime<Utc>) -> DispositionRecord {
    DispositionRecord {
        disposition: disposition.into(),
        commitment: None,
        response_sq: format!("Arsyeja: {disposition}"),
        response_en: Some(format!("Reason: {disposition}")),
        decided_by: by.into(),
        decided_at: at,
        group_key: Some("g-1".into()),
    }
}

async fn decisions_are_logged_published_once_and_sign_in_links_work_once(db: &TestDb) {
    let store = db.open().await;
    let (c, cso) = fixtures(store.as_ref()).await;
    let mut ids = Vec::new();
    for n in 0..2 {
        let raw = format!("From: a@x.al\r\nMessage-ID: <{n}@x.al>\r\n\r\nPropozim {n}\r\n");
        let (id, _) = store_inbound(
            store.as_ref(),
            &NewInbound {
                dedupe_key: format!("review-{n}"),
                source: "stdin",
                raw: raw.as_bytes(),
                message_id: Some(format!("{n}@x.al")),
                from_address: Some("a@x.al".into()),
                subject: Some("P".into()),
            },
        )
        .await
        .unwrap();
        record_proposal(
            store.as_ref(),
            &NewProposal {
                receipt_no: format!("OGP-RVW{n}-AAAA"),
                consultation_id: c,
                cso_id: (n == 0).then_some(cso),
                inbound_message_id: id,
                from_address: "a@x.al".into(),
                other_sender: false,
                late: false,
                draft_number: None,
                subject: "P".into(),
                reply_text: format!("Propozim {n}"),
                quoted_text: String::new(),
                signature: String::new(),
                attachments_json: "[]".into(),
                authentication_json: "{}".into(),
                sender_flag: None,
                no_publish: n == 1,
                sender_name: (n == 1).then(|| "Lëvizja".to_string()),
            },
            None,
        )
        .await
        .unwrap();
        ids.push(
            store
                .review_proposal(&format!("OGP-RVW{n}-AAAA"))
                .await
                .unwrap()
                .unwrap()
                .id,
        );
    }
    let listed = store.review_proposals(Some(c)).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed[0].cso_name.is_some() && listed[0].disposition.is_none());
    assert_eq!(listed[1].sender_name.as_deref(), Some("Lëvizja"));
    assert!(listed[1].no_publish);

    // Two decided together; the same decision again is no change.
    let now = Utc::now();
    let writes: Vec<DispositionWrite> = ids
        .iter()
        .map(|id| DispositionWrite {
            proposal_id: *id,
            record: decision("accepted", "lfp@x.al", now),
        })
        .collect();
    let decided = store.decide(&writes, "lfp@x.al", false).await.unwrap();
    assert_eq!((decided.changed.len(), decided.corrections.len()), (2, 0));
    assert!(
        store
            .decide(&writes, "lfp@x.al", false)
            .await
            .unwrap()
            .changed
            .is_empty()
    );
    let p = store
        .review_proposal("OGP-RVW0-AAAA")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        p.disposition.as_ref().unwrap().group_key.as_deref(),
        Some("g-1")
    );

    // Published once, with its notices in the same transaction.
    let notice = message("outcome:1", "a@x.al", c, cso);
    assert!(
        store
            .publish(c, "poc@x.al", std::slice::from_ref(&notice))
            .await
            .unwrap()
    );
    assert!(
        !store
            .publish(c, "poc@x.al", &[message("outcome:2", "a@x.al", c, cso)])
            .await
            .unwrap()
    );
    assert_eq!(store.publications().await.unwrap().len(), 1);
    assert!(store.queued_keys("outcome:").await.unwrap().len() == 1);

    // After publication only the POC changes a result, as a correction
    // told once.
    let change = [DispositionWrite {
        proposal_id: ids[0],
        record: decision("not_accepted", "lfp@x.al", now),
    }];
    assert!(matches!(
        store.decide(&change, "lfp@x.al", false).await,
        Err(StoreError::Conflict(_))
    ));
    let decided = store.decide(&change, "poc@x.al", true).await.unwrap();
    assert_eq!(decided.corrections.len(), 1);
    let untold = store.untold_corrections().await.unwrap();
    assert_eq!(untold.len(), 1);
    assert_eq!(untold[0].before.as_ref().unwrap().disposition, "accepted");
    assert_eq!(untold[0].after.disposition, "not_accepted");
    store
        .tell_correction(untold[0].id, &[message("correction:1", "a@x.al", c, cso)])
        .await
        .unwrap();
    assert!(store.untold_corrections().await.unwrap().is_empty());
    let log = store.disposition_log(Some(c)).await.unwrap();
    assert_eq!(log.len(), 3, "two decisions and one correction");
    assert!(
        log[0].correction && log[0].actor == "poc@x.al",
        "newest first"
    );

    // Disowned once.
    assert!(store.disown("OGP-RVW0-AAAA").await.unwrap());
    assert!(!store.disown("OGP-RVW0-AAAA").await.unwrap());

    // A sign-in link works once, and not after it expires.
    let later = Utc::now() + Duration::minutes(15);
    store
        .insert_sign_in_link("h1", "lfp@x.al", later)
        .await
        .unwrap();
    store
        .insert_sign_in_link("h2", "lfp@x.al", Utc::now() - Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(
        store
            .sign_in_links_since("lfp@x.al", Utc::now() - Duration::hours(1))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store.use_sign_in_link("h1").await.unwrap().as_deref(),
        Some("lfp@x.al")
    );
    assert_eq!(store.use_sign_in_link("h1").await.unwrap(), None, "used");
    assert_eq!(store.use_sign_in_link("h2").await.unwrap(), None, "expired");
    assert_eq!(store.use_sign_in_link("nope").await.unwrap(), None);

    // A session lives until it expires or ends.
    store.insert_session("s1", "lfp@x.al", later).await.unwrap();
    store
        .insert_session("s2", "lfp@x.al", Utc::now() - Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(
        store.session("s1").await.unwrap().as_deref(),
        Some("lfp@x.al")
    );
    assert_eq!(store.session("s2").await.unwrap(), None);
    store.end_session("s1").await.unwrap();
    assert_eq!(store.session("s1").await.unwrap(), None);
}
