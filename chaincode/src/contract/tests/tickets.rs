//! Password tickets: the key service's registration, and what the gated actions do with
//! an accepted, a rejected, a missing or an invalid ticket.

use super::*;
use medcert_hospital_api::KeyService;
use medcert_hospital_api::ticket::{TICKET_LIFETIME_MS, VerifyingKey};

/// Asserts a recorded refusal: status 300, `event`, the exact `message`, and an audit
/// entry of `event` under record R-1 naming `nonce`; and that no record was created.
async fn recorded(
    chain: &mut Chain,
    outcome: &Outcome,
    event: &str,
    message: &str,
    nonce: Option<String>,
) {
    assert_eq!(
        (outcome.status, outcome.message.as_str()),
        (STATUS_REFUSED_RECORDED, message)
    );
    let emitted = outcome.event.as_ref().expect("a recorded refusal's event");
    assert_eq!(emitted.name, event);
    let emitted: AuditEntry = serde_json::from_slice(&emitted.payload).unwrap();
    let last = chain.audit("record", "R-1").await.pop().unwrap();
    assert_eq!(last, emitted);
    assert_eq!(last.action, event);
    assert_eq!(last.actor.name, "User1@hospital1.medcert.local");
    assert_eq!(last.treatment_number.as_deref(), Some("T-1"));
    assert_eq!(last.ticket, nonce);
    assert!(!chain.ledger.committed().contains_key(&keys::record("R-1")));
}

#[tokio::test]
async fn an_accepted_ticket_runs_the_action_and_its_audit_entry_names_the_ticket() {
    let mut chain = Chain::new().await;
    ok(&chain.register("T-1").await);
    let ticket = chain.ticket(Function::CreateRecord, "R-1", Verdict::Accepted);
    let nonce = hex::encode(ticket.nonce);
    let created = chain.create("R-1", &signed(ticket)).await;
    ok(&created);
    let event: AuditEntry = serde_json::from_slice(&created.event.unwrap().payload).unwrap();
    assert_eq!(event.action, "CreateRecord");
    assert_eq!(event.ticket.as_deref(), Some(nonce.as_str()));
    let entries = chain.audit("record", "R-1").await;
    assert_eq!(entries, [event]);
    // Registration takes no ticket, and its entry names none.
    let registration = chain.audit("patient", "T-1").await.remove(0);
    assert_eq!(
        (registration.action.as_str(), registration.ticket),
        ("RegisterPatient", None)
    );
}

#[tokio::test]
async fn a_rejected_ticket_is_a_recorded_wrong_password_and_is_spent() {
    let mut chain = Chain::new().await;
    ok(&chain.register("T-1").await);
    let first = chain.rejected(Function::CreateRecord, "R-1", 1);
    let nonce = hex::encode(first.nonce);
    let first = signed(first);
    let outcome = chain.create("R-1", &first).await;
    recorded(
        &mut chain,
        &outcome,
        events::PASSWORD_REJECTED,
        "wrong password for patient \"T-1\": attempt 1 of 5",
        Some(nonce.clone()),
    )
    .await;

    let last = chain.rejected(Function::CreateRecord, "R-1", 5);
    let last_nonce = hex::encode(last.nonce);
    let outcome = chain.create("R-1", &signed(last)).await;
    recorded(
        &mut chain,
        &outcome,
        events::PASSWORD_REJECTED,
        "wrong password for patient \"T-1\": attempt 5 of 5, the patient is now locked",
        Some(last_nonce),
    )
    .await;

    // The rejected ticket was consumed: it cannot be replayed.
    let outcome = chain.create("R-1", &first).await;
    recorded(
        &mut chain,
        &outcome,
        events::ACCESS_REFUSED,
        &format!("access refused: the password ticket {nonce} was already used"),
        Some(nonce),
    )
    .await;
}

#[tokio::test]
async fn an_accepted_ticket_is_spent_by_its_action() {
    let mut chain = Chain::new().await;
    ok(&chain.register("T-1").await);
    ok(&chain.create_accepted("R-1").await);
    let ticket = chain.ticket(Function::QueryRecord, "R-1", Verdict::Accepted);
    let nonce = hex::encode(ticket.nonce);
    let ticket = signed(ticket);
    ok(&chain.query("R-1", &ticket).await);
    let replayed = chain.query("R-1", &ticket).await;
    assert_eq!(
        (replayed.status, replayed.message.as_str()),
        (
            STATUS_REFUSED_RECORDED,
            format!("access refused: the password ticket {nonce} was already used").as_str()
        )
    );
    assert_eq!(replayed.event.unwrap().name, events::ACCESS_REFUSED);
    assert_eq!(
        chain.audited_actions("record", "R-1").await,
        ["CreateRecord", "QueryRecord", "AccessRefused"]
    );
}

#[tokio::test]
async fn every_invalid_ticket_is_a_recorded_refusal_naming_what_is_wrong() {
    let mut chain = Chain::new().await;
    ok(&chain.register("T-1").await);
    let valid = chain.ticket(Function::CreateRecord, "R-1", Verdict::Accepted);
    let bytes = hex::decode(signed(valid.clone())).unwrap();
    let foreign_key = hex::encode(
        valid
            .clone()
            .sign(&SigningKey::from_bytes(&[6; 32]))
            .encode(),
    );
    let changed = |change: fn(&mut Ticket)| {
        let mut ticket = valid.clone();
        change(&mut ticket);
        ticket
    };
    // Past the leeway for clocks that differ, and past the lifetime.
    let issued_late = changed(|t| t.issued_at_ms += 2 * 60_000);
    let issued_early = changed(|t| t.issued_at_ms -= TICKET_LIFETIME_MS);
    let named = |ticket: Ticket| (signed(ticket.clone()), Some(hex::encode(ticket.nonce)));
    // (ticket, the refusal's message after "access refused: " where "{now}" stands for
    // the transaction's time, the nonce its entry names)
    let cases = [
        (
            String::new(),
            "CreateRecord needs the hospital key service's password ticket, and the call \
             carries none"
                .to_owned(),
            None,
        ),
        (
            hex::encode("some bytes longer than the ticket's domain tag"),
            "malformed password ticket: not a password ticket".to_owned(),
            None,
        ),
        (
            hex::encode(&bytes[..bytes.len() - 1]),
            "malformed password ticket: ends early".to_owned(),
            None,
        ),
        (
            foreign_key,
            "the password ticket is not signed by the registered key service".to_owned(),
            None,
        ),
        {
            let (ticket, nonce) = named(changed(|t| t.channel = "hospital2".into()));
            (
                ticket,
                "the password ticket is for channel \"hospital2\", not \"hospital1\"".to_owned(),
                nonce,
            )
        },
        {
            let (ticket, nonce) = named(changed(|t| t.function = Function::QueryRecord));
            (
                ticket,
                "the password ticket is for QueryRecord, not CreateRecord".to_owned(),
                nonce,
            )
        },
        {
            let (ticket, nonce) = named(changed(|t| t.treatment_number = "T-2".into()));
            (
                ticket,
                "the password ticket is for patient \"T-2\", not \"T-1\"".to_owned(),
                nonce,
            )
        },
        {
            let (ticket, nonce) = named(changed(|t| t.record_id = "R-2".into()));
            (
                ticket,
                "the password ticket is for record \"R-2\", not \"R-1\"".to_owned(),
                nonce,
            )
        },
        {
            let other = cert_id(&creator("Hospital1MSP", DOCTOR1B));
            let mut ticket = valid.clone();
            ticket.doctor_cert_id = other;
            let (ticket, nonce) = named(ticket);
            (
                ticket,
                "the password ticket was issued to another doctor than \
                 User1@hospital1.medcert.local"
                    .to_owned(),
                nonce,
            )
        },
    ];
    let expired = [issued_early, issued_late].map(|ticket| {
        let issued = ticket.issued_at_ms;
        let (ticket, nonce) = named(ticket);
        let message = format!(
            "the password ticket issued at {issued} ms is not valid at the transaction's \
             time, {{now}} ms"
        );
        (ticket, message, nonce)
    });
    for (ticket, message, nonce) in cases.into_iter().chain(expired) {
        let message = message.replace("{now}", &(chain.clock + 1000).to_string());
        let outcome = chain.create("R-1", &ticket).await;
        recorded(
            &mut chain,
            &outcome,
            events::ACCESS_REFUSED,
            &format!("access refused: {message}"),
            nonce,
        )
        .await;
    }
    // None of the refusals spent the ticket they named: the genuine one still works.
    ok(&chain.create("R-1", &hex::encode(&bytes)).await);
}

#[tokio::test]
async fn without_a_registered_key_service_a_gated_action_is_a_recorded_refusal() {
    let mut chain = Chain::without_key_service();
    ok(&chain.register("T-1").await);
    let ticket = chain.accepted(Function::CreateRecord, "R-1");
    let outcome = chain.create("R-1", &ticket).await;
    recorded(
        &mut chain,
        &outcome,
        events::ACCESS_REFUSED,
        "access refused: no key service is registered on channel hospital1: a hospital \
         admin must call SetKeyService",
        None,
    )
    .await;
}

#[tokio::test]
async fn only_a_hospital_admin_registers_the_key_service() {
    let mut chain = Chain::without_key_service();
    let none = chain.tx(doctor1(), "GetKeyService", &[]).await;
    ok(&none);
    assert_eq!(none.payload, b"null");

    let old = SigningKey::from_bytes(&TICKET_SEED);
    let old_key = hex::encode(old.verifying_key().as_bytes());
    refused(
        &chain.tx(doctor1(), "SetKeyService", &[&old_key]).await,
        403,
        "is not a hospital admin (NodeOU admin) of Hospital1MSP",
    );
    refused(
        &chain
            .tx(
                creator("Hospital2MSP", DOCTOR2),
                "SetKeyService",
                &[&old_key],
            )
            .await,
        403,
        "not a member of Hospital1MSP",
    );
    refused(
        &chain
            .tx(creator("RelayMSP", RELAY), "GetKeyService", &[])
            .await,
        403,
        "not a member of Hospital1MSP",
    );
    assert!(chain.ledger.committed().is_empty());

    let set = chain.tx(admin1(), "SetKeyService", &[&old_key]).await;
    ok(&set);
    let event = set.event.unwrap();
    assert_eq!(event.name, events::KEY_SERVICE_SET);
    let service: KeyService = serde_json::from_slice(&event.payload).unwrap();
    assert_eq!(service.ticket_key, old_key);
    assert_eq!(service.set_by.role, Role::Admin);
    let got = chain.tx(doctor1(), "GetKeyService", &[]).await;
    assert_eq!(
        serde_json::from_slice::<Option<KeyService>>(&got.payload).unwrap(),
        Some(service)
    );

    // A replaced key: tickets of the old one no longer verify, the new one's do.
    ok(&chain.register("T-1").await);
    let ticket = chain.ticket(Function::CreateRecord, "R-1", Verdict::Accepted);
    let new = SigningKey::from_bytes(&[8; 32]);
    let new_key = hex::encode(new.verifying_key().as_bytes());
    ok(&chain.tx(admin1(), "SetKeyService", &[&new_key]).await);
    let old_ticket = hex::encode(ticket.clone().sign(&old).encode());
    refused(
        &chain.create("R-1", &old_ticket).await,
        STATUS_REFUSED_RECORDED,
        "not signed by the registered key service",
    );
    ok(&chain
        .create("R-1", &hex::encode(ticket.sign(&new).encode()))
        .await);

    // Not every 32 bytes are a public key.
    let not_a_point = (0..=u8::MAX)
        .map(|b| [b; 32])
        .find(|bytes| VerifyingKey::from_bytes(bytes).is_err())
        .unwrap();
    let not_a_point = hex::encode(not_a_point);
    refused(
        &chain.tx(admin1(), "SetKeyService", &[&not_a_point]).await,
        400,
        "argument ticketKey is malformed: not an Ed25519 public key",
    );
}
