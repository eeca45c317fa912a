//! A complete example context for each email: what start-up renders to
//! check the templates (strict mode fails on any missing field), and what
//! docs/examples shows reviewers.

use super::email::{
    Acknowledgement, AttachmentLine, CampaignLine, ClosingLine, Confirmation, ConsultationClosed,
    ConsultationMail, ConsultationView, Context, DeadlineExtended, DeadlineReminder,
    DigestConsultation, DraftView, HeldLine, LfpDigest, MeetingChanged, MeetingView, Named,
    NotAProposal, Office, OutboxLine, OutcomeLine, OutcomeNotice, PenSummary, ProposalLine,
    ResponseReminder, SignIn,
};
use crate::domain::{Bilingual, EmailKind, Language};

/// A complete context for each email: what start-up renders to check the
/// templates, and what docs/examples show.
pub fn example_context(email: EmailKind, lang: Language) -> Context<'static> {
    let text = |sq: &'static str, en: &'static str| *Bilingual::new(sq, en).get(lang);
    let mail = ConsultationMail {
        office: Office {
            name: text(
                "Pika e Kontaktit e Qeverisë për OGP",
                "Government Point of Contact for OGP",
            ),
            email: "ogp-poc@office.example",
            postal_address: "Sheshi Skënderbej 1, 1001 Tiranë",
        },
        cso: Named {
            name: "Qendra për Buxhet të Hapur Korçë",
        },
        consultation: ConsultationView {
            reference: "OGP-2026-FISCAL",
            title: text("Buxheti i hapur në bashki", "Open municipal budgets"),
            description: text(
                "Qeveria po përgatit angazhimet e Planit të Veprimit për transparencën fiskale.\n\nNa tregoni çfarë të dhënash buxhetore ju nevojiten dhe si duhet të publikohen.",
                "The government is preparing the Action Plan's commitments on fiscal transparency.\n\nTell us which budget data you need and how it should be published.",
            ),
            area_name: Some(text(
                "Transparenca fiskale dhe buxheti",
                "Fiscal transparency and the budget",
            )),
            lfp_name: Some(text(
                "Ministria e Financave dhe Ekonomisë",
                "Ministry of Finance and Economy",
            )),
            deadline: text("e hënë, 11 janar 2027", "Monday 11 January 2027").into(),
            deadline_short: text("11.01.2027", "11 Jan 2027").into(),
            working_days: 28,
        },
        meeting: Some(MeetingView {
            when: text(
                "e enjte, 10 dhjetor 2026, ora 10:00–12:00",
                "Thursday 10 December 2026, 10:00–12:00",
            )
            .into(),
            place: Some("Kryeministria, salla 2, Tiranë"),
            link: Some("https://meet.example/ogp-fiscal"),
            presentation: Some("fiscal-transparency.pdf".into()),
        }),
        drafts: vec![DraftView {
            number: 1,
            title: text("Të dhënat e buxhetit çdo muaj", "Budget data every month"),
            text: text(
                "Ministria publikon çdo muaj ekzekutimin e buxhetit në format të hapur.",
                "The ministry publishes budget execution monthly as open data.",
            ),
            reply_address: "consult+abcdefghijklmnopqrst-d1@ogp.office.example".into(),
        }],
        reply_address: "consult+abcdefghijklmnopqrst@ogp.office.example".into(),
        form_url: "https://ogp.office.example/p/abcdefghijklmnopqrst".into(),
        unsubscribe_url: "https://ogp.office.example/unsubscribe/abcdefghijklmnopqrst".into(),
    };
    let acknowledgement = |mail| Acknowledgement {
        mail,
        receipt_no: "OGP-7K3M-Q9TX",
        late: false,
        sent_by: None,
        disown_url: None,
        received_text: text(
            "Propozojmë që ministria të publikojë çdo muaj ekzekutimin e buxhetit, sipas bashkive.\n\nMe respekt,\nArta Hoxha",
            "We propose that the ministry publish budget execution every month, by municipality.\n\nKind regards,\nArta Hoxha",
        ),
        draft: None,
        attachments: vec![
            AttachmentLine {
                name: "propozimi.pdf".into(),
                size: "240 KB".into(),
                too_large: false,
                winmail: false,
            },
            AttachmentLine {
                name: "studimi-i-plote.pdf".into(),
                size: "14.2 MB".into(),
                too_large: true,
                winmail: false,
            },
        ],
    };
    match email {
        EmailKind::Invitation => Context::Invitation(mail),
        EmailKind::DeadlineExtended => Context::DeadlineExtended(DeadlineExtended {
            mail,
            previous_deadline: text("e hënë, 28 dhjetor 2026", "Monday 28 December 2026").into(),
            reason: text(
                "Shumë organizata kërkuan më shumë kohë pas takimit.",
                "Many organisations asked for more time after the meeting.",
            ),
        }),
        EmailKind::DeadlineReminder => Context::DeadlineReminder(DeadlineReminder {
            mail,
            days_left: 7,
            tomorrow: false,
            receipts: vec!["OGP-7K3M-Q9TX".into()],
        }),
        EmailKind::MeetingChanged => Context::MeetingChanged(MeetingChanged {
            previous: Some(MeetingView {
                when: text(
                    "e martë, 8 dhjetor 2026, ora 10:00–12:00",
                    "Tuesday 8 December 2026, 10:00–12:00",
                )
                .into(),
                place: Some("Kryeministria, salla 1, Tiranë"),
                link: Some("https://meet.example/ogp-fiscal"),
                presentation: None,
            }),
            mail,
            cancelled: false,
        }),
        EmailKind::ConsultationClosed => Context::ConsultationClosed(ConsultationClosed {
            announced_deadline: text("e hënë, 11 janar 2027", "Monday 11 January 2027").into(),
            reason: text(
                "Qeveria duhet t'ia dorëzojë planin OGP-së më herët se sa ishte parashikuar.",
                "The government must submit the plan to OGP earlier than planned.",
            ),
            mail: ConsultationMail {
                consultation: ConsultationView {
                    deadline: text("e enjte, 17 dhjetor 2026", "Thursday 17 December 2026")
                        .into(),
                    deadline_short: text("17.12.2026", "17 Dec 2026").into(),
                    ..mail.consultation
                },
                ..mail
            },
        }),
        EmailKind::LfpDigest => Context::LfpDigest(LfpDigest {
            office: mail.office,
            lfp: Named {
                name: text(
                    "Ministria e Financave dhe Ekonomisë",
                    "Ministry of Finance and Economy",
                ),
            },
            area: Named {
                name: text(
                    "Transparenca fiskale dhe buxheti",
                    "Fiscal transparency and the budget",
                ),
            },
            since: "07.12.2026 08:00".into(),
            through: "14.12.2026 08:00".into(),
            new_proposals: 27,
            new_follow_ups: 1,
            waiting_total: 31,
            closing_total: 1,
            nothing_new: false,
            consultations: vec![DigestConsultation {
                reference: "OGP-2026-FISCAL".into(),
                title: text("Buxheti i hapur në bashki", "Open municipal budgets").into(),
                campaigns: vec![CampaignLine {
                    copies: 40,
                    excerpt: text(
                        "Ne, organizatat e shoqërisë civile, kërkojmë buxhet të hapur në çdo bashki…",
                        "We, civil society organisations, ask for an open budget in every municipality…",
                    )
                    .into(),
                    link: "https://ogp.office.example/review/c/OGP-2026-FISCAL?campaign=1".into(),
                }],
                entries: vec![
                    ProposalLine {
                        receipt_no: "OGP-7K3M-Q9TX".into(),
                        from: "Qendra për Buxhet të Hapur Korçë".into(),
                        date: "08.12.2026".into(),
                        excerpt: text(
                            "Propozojmë që ministria të publikojë çdo muaj ekzekutimin e buxhetit, sipas bashkive…",
                            "We propose that the ministry publish budget execution every month, by municipality…",
                        )
                        .into(),
                        follow_up: false,
                        late: false,
                        waited_days: None,
                        link: None,
                    },
                    ProposalLine {
                        receipt_no: "OGP-7K3M-Q9TX".into(),
                        from: "Qendra për Buxhet të Hapur Korçë".into(),
                        date: "10.12.2026".into(),
                        excerpt: text(
                            "Bashkëngjitur gjeni studimin për 12 bashki.",
                            "Attached is our study of 12 municipalities.",
                        )
                        .into(),
                        follow_up: true,
                        late: false,
                        waited_days: None,
                        link: None,
                    },
                ],
            }],
            new_more: 26,
            waiting: vec![ProposalLine {
                receipt_no: "OGP-2B9D-HT4K".into(),
                from: "info@shoqata-e-re.example.org".into(),
                date: "02.12.2026".into(),
                excerpt: text(
                    "Kërkojmë që raportet e auditimit të botohen brenda 30 ditëve…",
                    "We ask that audit reports be published within 30 days…",
                )
                .into(),
                follow_up: false,
                late: false,
                waited_days: Some(12),
                link: None,
            }],
            waiting_more: 30,
            closing: vec![ClosingLine {
                reference: "OGP-2026-FISCAL".into(),
                title: text("Buxheti i hapur në bashki", "Open municipal budgets").into(),
                deadline: text("e hënë, 11 janar 2027", "Monday 11 January 2027").into(),
                invited: 412,
                replied: 38,
            }],
        }),
        EmailKind::ResponseReminder => Context::ResponseReminder(ResponseReminder {
            office: mail.office,
            lfp: Named {
                name: text(
                    "Ministria e Financave dhe Ekonomisë",
                    "Ministry of Finance and Economy",
                ),
            },
            consultation: Named {
                name: text("Buxheti i hapur në bashki", "Open municipal budgets"),
            },
            reference: "OGP-2026-FISCAL",
            closed_on: text("e hënë, 11 janar 2027", "Monday 11 January 2027").into(),
            working_days: 10,
            waiting_total: 2,
            waiting: vec![ProposalLine {
                receipt_no: "OGP-2B9D-HT4K".into(),
                from: "Qendra për Buxhet të Hapur Korçë".into(),
                date: "02.12.2026".into(),
                excerpt: text(
                    "Kërkojmë që raportet e auditimit të botohen brenda 30 ditëve…",
                    "We ask that audit reports be published within 30 days…",
                )
                .into(),
                follow_up: false,
                late: false,
                waited_days: Some(54),
                link: None,
            }],
            waiting_more: 1,
        }),
        EmailKind::Receipt => Context::Receipt(acknowledgement(mail)),
        EmailKind::FollowUp => Context::FollowUp(acknowledgement(mail)),
        EmailKind::Confirmation => Context::Confirmation(Confirmation {
            office: Named {
                name: text("Pika e Kontaktit", "Point of Contact"),
            },
            name: "Arta Hoxha",
            consultation: Named {
                name: text("Transparenca fiskale", "Fiscal transparency"),
            },
            link: "https://ogp.office.example/confirm/0123456789abcdef".into(),
            hours: 48,
        }),
        EmailKind::PenSummary => Context::PenSummary(PenSummary {
            office: Named {
                name: mail.office.name,
            },
            date: "03.12.2026".into(),
            count: 2,
            many: true,
            messages: vec![
                HeldLine {
                    id: 17,
                    received: "02.12.2026 16:40".into(),
                    source: "maildir",
                    from: "info@shoqata-e-re.example.org",
                    subject: "Propozim për buxhetin",
                    reason: "no reply key, and info@shoqata-e-re.example.org is not a registered CSO address",
                },
                HeldLine {
                    id: 21,
                    received: "03.12.2026 07:05".into(),
                    source: "imap",
                    from: "buxheti@cso.example.org",
                    subject: "Re: Ftesë për konsultim",
                    reason: "buxheti@cso.example.org sent these exact words before; an automatic reply?",
                },
            ],
            more: 0,
            failed_total: 1,
            failures: vec![OutboxLine {
                kind: "invitation".into(),
                recipient: "info@old-domain.example.org".into(),
                attempts: 1,
                error: "550 5.1.1 <info@old-domain.example.org>: Recipient address rejected: User unknown".into(),
                next: None,
            }],
            deferred: vec![OutboxLine {
                kind: "receipt".into(),
                recipient: "kontakt@greylist.example.org".into(),
                attempts: 2,
                error: "451 4.7.1 Greylisted, please try again later".into(),
                next: Some("03.12.2026 08:20".into()),
            }],
            opening: vec![text(
                "OGP-2026-SERVICES, Shërbimet publike dixhitale: e premte, 4 dhjetor 2026",
                "OGP-2026-SERVICES, Digital public services: Friday 4 December 2026",
            )
            .into()],
            closing: Vec::new(),
            digests_sent: 6,
        }),
        EmailKind::Outcome | EmailKind::Correction => {
            let correction = email == EmailKind::Correction;
            let notice = OutcomeNotice {
                office: mail.office,
                cso: mail.cso,
                consultation: Named {
                    name: text("Buxheti i hapur në bashki", "Open municipal budgets"),
                },
                reference: "OGP-2026-FISCAL",
                proposals: vec![
                    OutcomeLine {
                        receipt_no: "OGP-7K3M-Q9TX".into(),
                        date: "02.12.2026".into(),
                        excerpt: text(
                            "Propozojmë që ministria të publikojë çdo muaj ekzekutimin e buxhetit, sipas bashkive…",
                            "We propose that the ministry publish budget execution every month, by municipality…",
                        )
                        .into(),
                        disposition: text("Shkrirë në një angazhim", "Merged into a commitment").into(),
                        commitment: Some(
                            text(
                                "Angazhimi 3: Buxheti i bashkive si të dhëna të hapura",
                                "Commitment 3: Municipal budgets as open data",
                            )
                            .into(),
                        ),
                        response: text(
                            "Propozimi u përfshi në angazhimin 3 bashkë me dy propozime të ngjashme; publikimi do të jetë tremujor në vitin e parë.",
                            "The proposal was included in commitment 3 together with two similar proposals; publication will be quarterly in the first year.",
                        )
                        .into(),
                        previous: correction
                            .then(|| text("Nuk u pranua", "Not accepted").into()),
                    },
                ],
                report_url: "https://ogp.office.example/report/OGP-2026-FISCAL".into(),
            };
            if correction {
                Context::Correction(notice)
            } else {
                Context::Outcome(notice)
            }
        }
        EmailKind::SignIn => Context::SignIn(SignIn {
            office: Named {
                name: mail.office.name,
            },
            link: "https://ogp.office.example/review/sign-in/0123456789abcdef".into(),
            minutes: 15,
        }),
        EmailKind::NotAProposal => Context::NotAProposal(NotAProposal {
            office: mail.office,
            their_subject: text(
                "Re: Përmbledhja javore: 2 propozime të reja",
                "Re: Weekly digest: 2 new proposals",
            )
            .into(),
            received: text("7 dhjetor 2026, ora 09:14", "7 December 2026 at 09:14").into(),
            review_url: "https://ogp.office.example/review".into(),
        }),
    }
}
