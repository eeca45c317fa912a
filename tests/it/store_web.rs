//! The web form's part of the store, on both backends (see
//! store_conformance): its signing key setting, proposals waiting for
//! confirmation, lookups by Message-ID, a CSO's sent proposals, and the
//! counts /metrics reads.

use chrono::{Duration, Utc};
use cocreate::intake::types::{NewInbound, NewProposal};
use cocreate::store::records::NewPending;

use crate::common::{self, TestDb};
use crate::store_conformance::{conformance, fixtures, record_proposal, store_inbound};

conformance!(the_web_form_keeps_its_key_its_waiting_proposals_and_its_counts);

async fn the_web_form_keeps_its_key_its_waiting_proposals_and_its_counts(db: &TestDb) {
    let store = db.open().await;
    let (c, cso) = fixtures(store.as_ref()).await;

    // The first key offered is kept; later offers get the kept one.
    let key = store
        .setting_or_insert("signing_key", "first")
        .await
        .unwrap();
    assert_eq!(key, "first");
    assert_eq!(
        store
            .setting_or_insert("signing_key", "second")
            .await
            .unwrap(),
        "first"
    );

    let now = Utc::now();
    let pending = NewPending {
        nonce: "n1".into(),
        token_hash: "h1".into(),
        consultation_id: c,
        address: "visitor@example.net".into(),
        raw: b"From: visitor@example.net\r\n\r\nText\r\n".to_vec(),
        created_at: now,
        expires_at: now + Duration::hours(48),
    };
    assert!(store.insert_pending(&pending).await.unwrap());
    // The same form again (its nonce) waits once.
    let again = NewPending {
        token_hash: "h2".into(),
        ..pending.clone()
    };
    assert!(!store.insert_pending(&again).await.unwrap());
    assert_eq!(
        store
            .pending_count("visitor@example.net", now - Duration::days(1))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .pending_count("visitor@example.net", now + Duration::seconds(1))
            .await
            .unwrap(),
        0
    );
    let found = store.pending("h1").await.unwrap().unwrap();
    assert_eq!(
        (
            found.consultation_id,
            found.raw.as_slice(),
            found.inbound_id
        ),
        (c, pending.raw.as_slice(), None)
    );
    assert!(store.pending("h2").await.unwrap().is_none());

    // Confirmed: the stored message it became, found again by Message-ID.
    let raw = b"Message-ID: <web.n1@ogp.example>\r\n\r\nText\r\n".as_slice();
    let (id, _) = store_inbound(
        store.as_ref(),
        &NewInbound {
            dedupe_key: "web-n1".into(),
            source: "web",
            raw,
            message_id: Some("web.n1@ogp.example".into()),
            from_address: Some("visitor@example.net".into()),
            subject: Some("P".into()),
        },
    )
    .await
    .unwrap();
    store.pending_confirmed("h1", id).await.unwrap();
    assert_eq!(
        store.pending("h1").await.unwrap().unwrap().inbound_id,
        Some(id)
    );
    assert_eq!(
        store
            .inbound_with_message_id("web.n1@ogp.example")
            .await
            .unwrap(),
        Some(id)
    );
    assert_eq!(
        store
            .inbound_with_message_id("web.n2@ogp.example")
            .await
            .unwrap(),
        None
    );

    // A CSO's proposals, and the counts by channel and outcome.
    let proposal = NewProposal {
        receipt_no: "OGP-WWWW-EEEE".into(),
        consultation_id: c,
        cso_id: Some(cso),
        inbound_message_id: id,
        from_address: "visitor@example.net".into(),
        other_sender: true,
        late: false,
        draft_number: None,
        subject: "P".into(),
        reply_text: "Text".into(),
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
        store.receipt_of_message(id).await.unwrap().as_deref(),
        Some("OGP-WWWW-EEEE")
    );
    assert_eq!(store.receipt_of_message(id + 1000).await.unwrap(), None);
    let sent = store.sent_proposals(c, cso).await.unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].receipt_no.as_str(), sent[0].follow_ups),
        ("OGP-WWWW-EEEE", 0)
    );
    assert!(store.sent_proposals(c, cso + 1).await.unwrap().is_empty());
    assert_eq!(
        store.proposals_by_source().await.unwrap(),
        vec![("web".to_string(), 1)]
    );
    let outcomes = store.inbound_by_outcome().await.unwrap();
    assert_eq!(
        outcomes.iter().map(|(_, n)| n).sum::<i64>(),
        1,
        "{outcomes:?}"
    );
}
