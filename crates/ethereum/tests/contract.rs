//! The MedicalCertificate contract on the real anvil started by deploy/up: every function,
//! every refusal, and that a refusal changes nothing.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use medcert_ethereum::bindings::MedicalCertificateErrors as E;
use medcert_ethereum::bindings::{
    AgentAuthorizedFilter, AgentRevokedFilter, Certificate, CertificateIssuedFilter,
    CertificateRecoveryRevokedFilter, ConsentNonceRevokedFilter, HospitalRegisteredFilter,
    HospitalRemovedFilter, RelaySetFilter,
};
use medcert_ethereum::ethers::contract::{EthEvent, parse_log};
use medcert_ethereum::ethers::providers::Middleware;
use medcert_ethereum::ethers::types::{Address, Bytes, TransactionReceipt, U256};
use medcert_ethereum::{
    AgentAuthorization, Consent, EthereumError, HospitalKeys, MedicalCertificateClient,
    PatientSigner, hospital_id,
};
use support::{
    Fixture, address_of, authorization_for, deadline, funded_wallet, keys, register,
    sent_transactions,
};

/// The one event `T` the contract emitted in `receipt`.
fn emitted<T: EthEvent>(receipt: &TransactionReceipt) -> T {
    let mut events = receipt
        .logs
        .iter()
        .filter(|log| log.topics.first() == Some(&T::signature()))
        .map(|log| parse_log::<T>(log.clone()).unwrap());
    let event = events
        .next()
        .unwrap_or_else(|| panic!("no {} event", T::name()));
    assert!(events.next().is_none(), "more than one {} event", T::name());
    event
}

/// The decoded custom error of a refused call; panics on success or any other failure.
fn refusal<T: std::fmt::Debug>(result: Result<T, EthereumError>) -> E {
    match result {
        Err(EthereumError::Refused(error)) => error,
        other => panic!("expected a refusal by the contract, got {other:?}"),
    }
}

/// The number of the chain's newest block.
async fn head(f: &Fixture) -> u64 {
    f.admin
        .contract()
        .client()
        .get_block_number()
        .await
        .unwrap()
        .as_u64()
}

/// The next event of a stream, within ten seconds.
async fn next_event<T, S>(events: &mut S) -> T
where
    S: futures_util::Stream<Item = Result<T, EthereumError>> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("the next event arrives")
        .unwrap()
        .unwrap()
}

#[test]
fn network_accounts_are_usable_wallets() {
    let network = medcert_test_support::network();
    assert!(!network.ethereum.accounts.is_empty());
    for account in &network.ethereum.accounts {
        let wallet = medcert_ethereum::wallet_from_hex(&account.private_key).unwrap();
        let address: Address = account.address.parse().unwrap();
        assert_eq!(address_of(&wallet), address);
    }
}

#[tokio::test]
async fn deploy_records_admin_and_relay() {
    let f = Fixture::new().await;
    assert_eq!(
        f.admin.contract().admin().call().await.unwrap(),
        f.admin.sender()
    );
    assert_eq!(f.admin.relay().await.unwrap(), f.relay.sender());
}

#[tokio::test]
async fn rust_digests_match_the_contracts() {
    let f = Fixture::new().await;
    let domain = f.admin.domain();
    let contract = f.admin.contract();
    assert_eq!(
        contract.domain_separator().call().await.unwrap(),
        domain.separator()
    );

    let (authorization, _) = f.authorization(7, 99);
    let on_chain = contract
        .hash_certificate_authorization(
            authorization.hospital,
            authorization.record_id,
            authorization.cid.clone(),
            authorization.content_fingerprint,
            authorization.watermark_fingerprint,
            U256::from(authorization.nonce),
        )
        .call()
        .await
        .unwrap();
    assert_eq!(on_chain, authorization.digest(&domain));

    let consent = Consent {
        hospital: f.hospital_id,
        certificate_id: u64::MAX,
        expiry: 1_900_000_000,
        nonce: 12345,
    };
    let on_chain = contract
        .hash_consent(medcert_ethereum::bindings::Consent {
            hospital: consent.hospital,
            certificate_id: U256::from(consent.certificate_id),
            expiry: consent.expiry,
            nonce: U256::from(consent.nonce),
        })
        .call()
        .await
        .unwrap();
    assert_eq!(on_chain, consent.digest(&domain));

    let authorization = AgentAuthorization {
        agent: [0xa9; 20],
        nonce: u64::MAX,
    };
    let on_chain = contract
        .hash_agent_authorization(
            Address::from(authorization.agent),
            U256::from(authorization.nonce),
        )
        .call()
        .await
        .unwrap();
    assert_eq!(on_chain, authorization.digest(&domain));
}

#[tokio::test]
async fn admin_registers_and_removes_hospitals() {
    let f = Fixture::new().await;
    let registered = f.admin.hospital(f.hospital_id).await.unwrap();
    assert_eq!(registered.account, f.hospital.sender());
    assert_eq!(registered.public_key, Bytes::from(vec![0x25; 32]));

    let id2 = hospital_id("hospital2").unwrap();
    let account2 = address_of(&funded_wallet(&f.config).await);
    let receipt = f
        .admin
        .register_hospital(id2, account2, &keys([7; 32]))
        .await
        .unwrap();
    let event: HospitalRegisteredFilter = emitted(&receipt);
    assert_eq!((event.hospital, event.account), (id2, account2));
    assert_eq!(event.public_key, Bytes::from(vec![7; 32]));
    assert_eq!(f.admin.hospital(id2).await.unwrap().account, account2);

    let receipt = f.admin.remove_hospital(id2).await.unwrap();
    let event: HospitalRemovedFilter = emitted(&receipt);
    assert_eq!((event.hospital, event.account), (id2, account2));
    assert!(matches!(
        refusal(f.admin.hospital(id2).await),
        E::UnknownHospital(e) if e.hospital == id2
    ));
    // The account is free again once its hospital is removed.
    f.admin
        .register_hospital(hospital_id("hospital3").unwrap(), account2, &keys([7; 32]))
        .await
        .unwrap();
}

#[tokio::test]
async fn hospital_registry_refusals() {
    let f = Fixture::new().await;
    let other = address_of(&funded_wallet(&f.config).await);
    assert!(matches!(
        refusal(
            f.admin
                .register_hospital(f.hospital_id, other, &keys([1; 32]))
                .await
        ),
        E::HospitalAlreadyRegistered(_)
    ));
    assert!(matches!(
        refusal(f.admin.register_hospital(hospital_id("h2").unwrap(), f.hospital.sender(), &keys([1; 32])).await),
        E::AccountAlreadyRegistered(e) if e.account == f.hospital.sender()
    ));
    assert!(matches!(
        refusal(
            f.admin
                .register_hospital([0; 32], other, &keys([1; 32]))
                .await
        ),
        E::InvalidHospital(_)
    ));
    assert!(matches!(
        refusal(
            f.admin
                .remove_hospital(hospital_id("nobody").unwrap())
                .await
        ),
        E::UnknownHospital(_)
    ));
    // A public key that is not 32 bytes, through the raw bindings.
    let call = f.admin.contract().register_hospital(
        hospital_id("h3").unwrap(),
        other,
        Bytes::from(vec![1; 31]),
        Bytes::from(vec![1; 32]),
    );
    let error = call.call().await.unwrap_err();
    assert!(matches!(
        error.decode_contract_revert::<E>(),
        Some(E::InvalidPublicKey(e)) if e.length == U256::from(31)
    ));
    // Only the admin administers.
    for client in [&f.hospital, &f.relay, &f.patient_client] {
        assert!(matches!(
            refusal(client.register_hospital(hospital_id("h4").unwrap(), other, &keys([1; 32])).await),
            E::NotAdmin(e) if e.caller == client.sender()
        ));
        assert!(matches!(
            refusal(client.remove_hospital(f.hospital_id).await),
            E::NotAdmin(_)
        ));
        assert!(matches!(
            refusal(client.set_relay(client.sender()).await),
            E::NotAdmin(_)
        ));
    }
    assert_eq!(
        f.admin.hospital(f.hospital_id).await.unwrap().account,
        f.hospital.sender()
    );
}

#[tokio::test]
async fn issue_certificate_stores_it_for_the_patient() {
    let f = Fixture::new().await;
    let patient = Address::from(f.patient.address());
    assert!(f.admin.certificates_of(patient).await.unwrap().is_empty());

    let (authorization, signature) = f.authorization(1, 1);
    let issued = f
        .hospital
        .issue_certificate(&authorization, patient, &signature)
        .await
        .unwrap();
    let event: CertificateIssuedFilter = emitted(&issued.receipt);
    assert_eq!(event.certificate_id, U256::from(issued.certificate_id));
    assert_eq!((event.patient, event.hospital), (patient, f.hospital_id));
    assert_eq!(event.record_id, authorization.record_id);
    assert_eq!(event.cid, authorization.cid);
    assert_eq!(event.content_fingerprint, authorization.content_fingerprint);
    assert_eq!(
        event.watermark_fingerprint,
        authorization.watermark_fingerprint
    );
    let second = f.issue(2).await;
    let listed = f.admin.certificates_of(patient).await.unwrap();
    assert_eq!(
        listed.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![issued.certificate_id, second]
    );
    assert_eq!(
        f.admin
            .certificate_of_record(f.hospital_id, authorization.record_id)
            .await
            .unwrap()
            .map(|c| c.id),
        Some(issued.certificate_id)
    );
    assert_eq!(
        f.admin
            .certificate_of_record(f.hospital_id, [0xee; 32])
            .await
            .unwrap(),
        None
    );

    let certificate = f.admin.certificate(issued.certificate_id).await.unwrap();
    assert_eq!(certificate.patient, patient);
    assert_eq!(certificate.hospital, f.hospital_id);
    assert_eq!(certificate.record_id, authorization.record_id);
    assert_eq!(certificate.cid, authorization.cid);
    assert_eq!(
        certificate.content_fingerprint,
        authorization.content_fingerprint
    );
    assert_eq!(
        certificate.watermark_fingerprint,
        authorization.watermark_fingerprint
    );
    assert!(certificate.recoverable);
    assert!(certificate.issued_at > 0);
    assert_eq!(certificate, listed[0]);
    assert!(f.admin.nonce_used(patient, 1).await.unwrap());
    assert!(matches!(
        f.admin.certificate(999).await,
        Err(EthereumError::UnknownCertificate(999))
    ));
}

/// The certificate of `receipt`'s `CertificateIssued` event, as calls take it back.
fn issued_certificate(receipt: &TransactionReceipt) -> Certificate {
    let event: CertificateIssuedFilter = emitted(receipt);
    Certificate {
        id: event.certificate_id,
        patient: event.patient,
        hospital: event.hospital,
        record_id: event.record_id,
        cid: event.cid,
        content_fingerprint: event.content_fingerprint,
        watermark_fingerprint: event.watermark_fingerprint,
    }
}

/// The contract's refusal of a call made through the raw bindings.
async fn raw_refusal<D: medcert_ethereum::ethers::abi::Detokenize>(
    call: medcert_ethereum::ethers::contract::FunctionCall<
        std::sync::Arc<medcert_ethereum::Client>,
        medcert_ethereum::Client,
        D,
    >,
) -> E {
    call.call()
        .await
        .err()
        .and_then(|e| e.decode_contract_revert::<E>())
        .expect("a refusal by the contract")
}

#[tokio::test]
async fn a_certificate_with_any_field_changed_is_refused_against_its_commitment() {
    let f = Fixture::new().await;
    let (authorization, signature) = f.authorization(1, 1);
    let issued = f
        .hospital
        .issue_certificate(&authorization, f.patient.address().into(), &signature)
        .await
        .unwrap();
    let certificate = issued_certificate(&issued.receipt);
    let (consent, consent_sig) = f.consent(f.hospital_id, issued.certificate_id, 5);
    let consent_tuple = medcert_ethereum::bindings::Consent {
        hospital: consent.hospital,
        certificate_id: U256::from(consent.certificate_id),
        expiry: consent.expiry,
        nonce: U256::from(consent.nonce),
    };
    assert!(
        f.admin
            .contract()
            .is_recoverable(certificate.clone())
            .call()
            .await
            .unwrap()
    );
    let stranger = Address::from(PatientSigner::from_seed(&[0x67; 32]).address());
    let changed: Vec<(&str, Certificate)> = vec![
        (
            "patient",
            Certificate {
                patient: stranger,
                ..certificate.clone()
            },
        ),
        (
            "cid",
            Certificate {
                cid: format!("{}x", certificate.cid),
                ..certificate.clone()
            },
        ),
        (
            "content fingerprint",
            Certificate {
                content_fingerprint: [0xc1; 32],
                ..certificate.clone()
            },
        ),
        (
            "watermark fingerprint",
            Certificate {
                watermark_fingerprint: [0xc2; 32],
                ..certificate.clone()
            },
        ),
    ];
    for (field, altered) in changed {
        let serve = f.relay.contract().serve_recovery(
            [0x31; 32],
            deadline(),
            consent_tuple.clone(),
            Bytes::from(consent_sig.to_vec()),
            altered.clone(),
        );
        assert!(
            matches!(raw_refusal(serve).await, E::CertificateMismatch(_)),
            "serveRecovery with the {field} changed"
        );
        let revoke = f
            .patient_client
            .contract()
            .revoke_certificate(altered.clone());
        assert!(
            matches!(raw_refusal(revoke).await, E::CertificateMismatch(_)),
            "revokeCertificate with the {field} changed"
        );
    }
    // Another record id is another slot, with no commitment in it.
    let elsewhere = Certificate {
        record_id: [0xc3; 32],
        ..certificate.clone()
    };
    assert!(matches!(
        raw_refusal(f.patient_client.contract().revoke_certificate(elsewhere)).await,
        E::UnknownCertificate(_)
    ));
    // The certificate id is committed too: the consent must name the certificate given.
    let renumbered = Certificate {
        id: certificate.id + 1,
        ..certificate.clone()
    };
    let serve = f.relay.contract().serve_recovery(
        [0x31; 32],
        deadline(),
        consent_tuple.clone(),
        Bytes::from(consent_sig.to_vec()),
        renumbered.clone(),
    );
    assert!(matches!(
        raw_refusal(serve).await,
        E::CertificateMismatch(_)
    ));
    let revoke = f.patient_client.contract().revoke_certificate(renumbered);
    assert!(matches!(
        raw_refusal(revoke).await,
        E::CertificateMismatch(_)
    ));

    // Nothing changed: the certificate as issued is still served.
    assert!(
        f.admin
            .certificate(issued.certificate_id)
            .await
            .unwrap()
            .recoverable
    );
    f.relay
        .serve_recovery([0x31; 32], deadline(), &consent, &consent_sig)
        .await
        .unwrap();
}

#[tokio::test]
async fn nonces_share_words_but_each_is_spent_alone() {
    let f = Fixture::new().await;
    let patient = Address::from(f.patient.address());
    for nonce in [5, 261, 255] {
        f.patient_client
            .revoke_consent_nonce(patient, nonce)
            .await
            .unwrap();
    }
    for (nonce, spent) in [
        (5, true),
        (261, true),
        (255, true),
        (4, false),
        (6, false),
        (256, false),
        (517, false),
    ] {
        assert_eq!(
            f.admin.nonce_used(patient, nonce).await.unwrap(),
            spent,
            "nonce {nonce}"
        );
    }
    assert!(matches!(
        refusal(f.patient_client.revoke_consent_nonce(patient, 261).await),
        E::NonceUsed(e) if e.nonce == U256::from(261)
    ));
    // A fresh nonce is in the patient's lowest word, neither spent nor taken.
    let taken: Vec<u64> = (0..256).filter(|n| *n != 17 && *n != 5).collect();
    assert_eq!(f.admin.unused_nonce(patient, &taken).await.unwrap(), 17);
    let nonce = f.admin.unused_nonce(patient, &[]).await.unwrap();
    assert!(nonce < 256 && ![5, 255].contains(&nonce), "{nonce}");
}

#[tokio::test]
async fn issue_certificate_refusals_change_nothing() {
    let f = Fixture::new().await;
    let patient = Address::from(f.patient.address());
    f.issue(1).await;
    let hospital_txs = sent_transactions(&f.config, f.hospital.sender()).await;
    let (authorization, signature) = f.authorization(2, 2);

    // Bad signature: an invalid recovery byte.
    let mut bad = signature;
    bad[64] = 30;
    assert!(matches!(
        refusal(
            f.hospital
                .issue_certificate(&authorization, patient, &bad)
                .await
        ),
        E::InvalidSignature(_)
    ));
    // Someone else's signature.
    let stranger = PatientSigner::from_seed(&[0x55; 32]);
    let foreign = stranger.sign_certificate_authorization(&authorization, &f.admin.domain());
    assert!(matches!(
        refusal(f.hospital.issue_certificate(&authorization, patient, &foreign).await),
        E::NotPatient(e) if e.signer == Address::from(stranger.address()) && e.expected == patient
    ));
    // A signature over different content (another CID) is not the patient's for this one.
    let mut altered = authorization.clone();
    altered.cid.push('x');
    assert!(matches!(
        refusal(
            f.hospital
                .issue_certificate(&altered, patient, &signature)
                .await
        ),
        E::NotPatient(_)
    ));
    // Replayed nonce: nonce 1 was spent by the first issuance.
    let (replayed, replayed_sig) = f.authorization(3, 1);
    assert!(matches!(
        refusal(f.hospital.issue_certificate(&replayed, patient, &replayed_sig).await),
        E::NonceUsed(e) if e.nonce == U256::from(1)
    ));
    // Same record twice.
    let (again, again_sig) = f.authorization(1, 50);
    assert!(matches!(
        refusal(
            f.hospital
                .issue_certificate(&again, patient, &again_sig)
                .await
        ),
        E::CertificateExists(_)
    ));
    // Not a registered hospital.
    assert!(matches!(
        refusal(f.patient_client.issue_certificate(&authorization, patient, &signature).await),
        E::NotHospital(e) if e.caller == patient
    ));
    // Zero patient.
    assert!(matches!(
        refusal(
            f.hospital
                .issue_certificate(&authorization, Address::zero(), &signature)
                .await
        ),
        E::InvalidPatient(_)
    ));

    assert_eq!(
        sent_transactions(&f.config, f.hospital.sender()).await,
        hospital_txs
    );
    assert_eq!(f.admin.certificates_of(patient).await.unwrap().len(), 1);
    assert!(!f.admin.nonce_used(patient, 2).await.unwrap());
    // The untouched authorisation still works afterwards.
    f.hospital
        .issue_certificate(&authorization, patient, &signature)
        .await
        .unwrap();
}

#[tokio::test]
async fn removed_hospital_can_no_longer_issue() {
    let f = Fixture::new().await;
    f.admin.remove_hospital(f.hospital_id).await.unwrap();
    let (authorization, signature) = f.authorization(1, 1);
    assert!(matches!(
        refusal(
            f.hospital
                .issue_certificate(&authorization, f.patient.address().into(), &signature)
                .await
        ),
        E::NotHospital(_)
    ));
}

#[tokio::test]
async fn serve_recovery_emits_the_certificate_once() {
    let f = Fixture::new().await;
    let certificate_id = f.issue(1).await;
    let start = head(&f).await;
    // Recovery at another hospital than the issuer, as in the paper's flow.
    let other = hospital_id("hospital2").unwrap();
    register(&f.admin, other).await;
    let (consent, signature) = f.consent(other, certificate_id, 77);
    let served = f
        .relay
        .serve_recovery([1; 32], deadline(), &consent, &signature)
        .await
        .unwrap();

    let certificate = f.admin.certificate(certificate_id).await.unwrap();
    assert_eq!(served.event.request_id, [1; 32]);
    assert_eq!(served.event.certificate_id, certificate_id);
    assert_eq!(served.event.hospital, other);
    assert_eq!(served.event.cid, certificate.cid);
    assert_eq!(
        served.event.content_fingerprint,
        certificate.content_fingerprint
    );
    assert_eq!(
        served.event.watermark_fingerprint,
        certificate.watermark_fingerprint
    );
    assert_eq!(
        served.event.transaction_hash,
        served.receipt.transaction_hash
    );
    assert!(f.admin.served_certificate([1; 32]).await.unwrap().is_some());
    let deployed_in = f.deployment.block_number.unwrap().as_u64();
    let found = f.admin.served_recovery([1; 32], deployed_in).await.unwrap();
    assert_eq!(found, Some(served.event.clone()));
    assert_eq!(
        f.admin.served_recovery([9; 32], deployed_in).await.unwrap(),
        None
    );
    assert!(
        f.admin
            .nonce_used(f.patient.address().into(), 77)
            .await
            .unwrap()
    );

    // The same request id is never served twice, even with a fresh consent.
    let (fresh, fresh_sig) = f.consent(other, certificate_id, 78);
    assert!(matches!(
        refusal(f.relay.serve_recovery([1; 32], deadline(), &fresh, &fresh_sig).await),
        E::RequestAlreadyServed(e) if e.request_id == [1; 32]
    ));

    let mut events = Box::pin(f.admin.recovery_served_events(start));
    assert_eq!(next_event(&mut events).await, served.event);
}

#[tokio::test]
async fn serve_recovery_refusals_change_nothing() {
    let f = Fixture::new().await;
    let patient = Address::from(f.patient.address());
    let certificate_id = f.issue(1).await;
    let relay_txs = sent_transactions(&f.config, f.relay.sender()).await;
    let (consent, signature) = f.consent(f.hospital_id, certificate_id, 10);
    let domain = f.admin.domain();

    // Caller not the relay.
    for client in [&f.admin, &f.hospital, &f.patient_client] {
        assert!(matches!(
            refusal(client.serve_recovery([2; 32], deadline(), &consent, &signature).await),
            E::NotRelay(e) if e.caller == client.sender()
        ));
    }
    // Bad signature.
    let mut bad = signature;
    bad[..32].fill(0);
    assert!(matches!(
        refusal(
            f.relay
                .serve_recovery([2; 32], deadline(), &consent, &bad)
                .await
        ),
        E::InvalidSignature(_)
    ));
    // Someone else's signature.
    let stranger = PatientSigner::from_seed(&[0x66; 32]);
    let foreign = stranger.sign_consent(&consent, &domain);
    assert!(matches!(
        refusal(f.relay.serve_recovery([2; 32], deadline(), &consent, &foreign).await),
        E::NotPatient(e) if e.signer == Address::from(stranger.address())
    ));
    // The patient's signature over a different consent (e.g. a longer expiry).
    let stretched = Consent {
        expiry: consent.expiry + 1,
        ..consent
    };
    assert!(matches!(
        refusal(
            f.relay
                .serve_recovery([2; 32], deadline(), &stretched, &signature)
                .await
        ),
        E::NotPatient(_)
    ));
    // Expired consent.
    let expired = Consent {
        expiry: 1,
        ..consent
    };
    let expired_sig = f.patient.sign_consent(&expired, &domain);
    assert!(matches!(
        refusal(f.relay.serve_recovery([2; 32], deadline(), &expired, &expired_sig).await),
        E::ConsentExpired(e) if e.expiry == 1
    ));
    // Unregistered hospital.
    let (unknown, unknown_sig) = f.consent(hospital_id("nowhere").unwrap(), certificate_id, 10);
    assert!(matches!(
        refusal(
            f.relay
                .serve_recovery([2; 32], deadline(), &unknown, &unknown_sig)
                .await
        ),
        E::UnknownHospital(_)
    ));
    // Unknown certificate: none is issued to give the contract.
    let (missing, missing_sig) = f.consent(f.hospital_id, 999, 10);
    assert!(matches!(
        f.relay
            .serve_recovery([2; 32], deadline(), &missing, &missing_sig)
            .await,
        Err(EthereumError::UnknownCertificate(999))
    ));
    // Nonce already used (by the issuance, nonce 1).
    let (spent, spent_sig) = f.consent(f.hospital_id, certificate_id, 1);
    assert!(matches!(
        refusal(
            f.relay
                .serve_recovery([2; 32], deadline(), &spent, &spent_sig)
                .await
        ),
        E::NonceUsed(_)
    ));

    assert_eq!(
        sent_transactions(&f.config, f.relay.sender()).await,
        relay_txs
    );
    assert_eq!(f.admin.served_certificate([2; 32]).await.unwrap(), None);
    assert!(!f.admin.nonce_used(patient, 10).await.unwrap());

    // The valid consent is served; replaying it under a new request id is refused.
    f.relay
        .serve_recovery([2; 32], deadline(), &consent, &signature)
        .await
        .unwrap();
    assert!(matches!(
        refusal(f.relay.serve_recovery([3; 32], deadline(), &consent, &signature).await),
        E::NonceUsed(e) if e.patient == patient && e.nonce == U256::from(10)
    ));
}

#[tokio::test]
async fn relay_can_be_replaced_by_the_admin() {
    let f = Fixture::new().await;
    let certificate_id = f.issue(1).await;
    let new_relay = f.admin.with_signer(funded_wallet(&f.config).await).unwrap();
    let receipt = f.admin.set_relay(new_relay.sender()).await.unwrap();
    let event: RelaySetFilter = emitted(&receipt);
    assert_eq!(
        (event.previous, event.relay),
        (f.relay.sender(), new_relay.sender())
    );
    assert_eq!(f.admin.relay().await.unwrap(), new_relay.sender());

    let (consent, signature) = f.consent(f.hospital_id, certificate_id, 5);
    assert!(matches!(
        refusal(
            f.relay
                .serve_recovery([4; 32], deadline(), &consent, &signature)
                .await
        ),
        E::NotRelay(_)
    ));
    new_relay
        .serve_recovery([4; 32], deadline(), &consent, &signature)
        .await
        .unwrap();
}

#[tokio::test]
async fn patient_revokes_a_consent_nonce() {
    let f = Fixture::new().await;
    let patient = Address::from(f.patient.address());
    let certificate_id = f.issue(1).await;
    let (consent, signature) = f.consent(f.hospital_id, certificate_id, 20);

    let receipt = f
        .patient_client
        .revoke_consent_nonce(patient, 20)
        .await
        .unwrap();
    let event: ConsentNonceRevokedFilter = emitted(&receipt);
    assert_eq!((event.patient, event.nonce), (patient, U256::from(20)));
    assert!(f.admin.nonce_used(patient, 20).await.unwrap());
    assert!(matches!(
        refusal(
            f.relay
                .serve_recovery([5; 32], deadline(), &consent, &signature)
                .await
        ),
        E::NonceUsed(_)
    ));
    assert!(matches!(
        refusal(f.patient_client.revoke_consent_nonce(patient, 20).await),
        E::NonceUsed(_)
    ));
    // Nobody else burns the patient's nonces.
    assert!(matches!(
        refusal(f.hospital.revoke_consent_nonce(patient, 21).await),
        E::NotPatientOrAgent(e) if e.patient == patient && e.caller == f.hospital.sender()
    ));
    assert!(!f.admin.nonce_used(patient, 21).await.unwrap());
    // A nonce is per patient: another account's nonce 20 is its own.
    f.hospital
        .revoke_consent_nonce(f.hospital.sender(), 20)
        .await
        .unwrap();
}

#[tokio::test]
async fn patient_revokes_a_certificate_for_recovery() {
    let f = Fixture::new().await;
    let certificate_id = f.issue(1).await;
    let (consent, signature) = f.consent(f.hospital_id, certificate_id, 30);

    assert!(matches!(
        refusal(f.hospital.revoke_certificate(certificate_id).await),
        E::NotPatientOrAgent(e) if e.caller == f.hospital.sender()
    ));
    assert!(matches!(
        f.patient_client.revoke_certificate(999).await,
        Err(EthereumError::UnknownCertificate(999))
    ));
    let receipt = f
        .patient_client
        .revoke_certificate(certificate_id)
        .await
        .unwrap();
    let event: CertificateRecoveryRevokedFilter = emitted(&receipt);
    assert_eq!(event.certificate_id, U256::from(certificate_id));
    assert_eq!(event.patient, Address::from(f.patient.address()));
    assert!(
        !f.admin
            .certificate(certificate_id)
            .await
            .unwrap()
            .recoverable
    );
    assert!(matches!(
        refusal(f.relay.serve_recovery([6; 32], deadline(), &consent, &signature).await),
        E::CertificateRevoked(e) if e.certificate_id == U256::from(certificate_id)
    ));
    assert!(matches!(
        refusal(f.patient_client.revoke_certificate(certificate_id).await),
        E::CertificateRevoked(_)
    ));
    // The certificate itself stays listed: it is the patient's record of the visit.
    let listed = f
        .admin
        .certificates_of(f.patient.address().into())
        .await
        .unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|c| (c.id, c.recoverable))
            .collect::<Vec<_>>(),
        vec![(certificate_id, false)]
    );
}

#[tokio::test]
async fn event_stream_yields_every_served_recovery_in_order() {
    let f = Fixture::new().await;
    let start = head(&f).await;
    let mut events = Box::pin(f.admin.recovery_served_events(start));
    let mut expected = Vec::new();
    for record in 1..=3 {
        let certificate_id = f.issue(record).await;
        let (consent, signature) = f.consent(f.hospital_id, certificate_id, 100 + record);
        let served = f
            .relay
            .serve_recovery([record as u8; 32], deadline(), &consent, &signature)
            .await
            .unwrap();
        expected.push(served.event);
    }
    for want in expected {
        assert_eq!(next_event(&mut events).await, want);
    }
}

#[tokio::test]
async fn refusal_messages_name_the_error_and_its_fields() {
    let f = Fixture::new().await;
    let certificate_id = f.issue(1).await;
    let (consent, signature) = f.consent(f.hospital_id, certificate_id, 1);
    let error = f
        .relay
        .serve_recovery([7; 32], deadline(), &consent, &signature)
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("NonceUsed"), "{text}");
    assert!(text.contains("nonce 1"), "{text}");
}

#[tokio::test]
async fn transactions_wait_for_the_configured_confirmations() {
    let f = Fixture::new().await;
    let mut config = f.config.clone();
    config.confirmations = 3;
    let wallet = funded_wallet(&f.config).await;
    let id = hospital_id("hospital2").unwrap();
    f.admin
        .register_hospital(id, address_of(&wallet), &keys([2; 32]))
        .await
        .unwrap();
    let hospital =
        medcert_ethereum::MedicalCertificateClient::attach(&config, f.admin.address(), wallet)
            .unwrap();
    let authorization = support::authorization_for(id, 1, 1);
    let signature = f
        .patient
        .sign_certificate_authorization(&authorization, &f.admin.domain());
    let patient = f.patient.address().into();
    let issuing = tokio::spawn(async move {
        hospital
            .issue_certificate(&authorization, patient, &signature)
            .await
    });
    // anvil mines only on demand: build blocks until the issue has its confirmations.
    let provider = f.admin.contract().client();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !issuing.is_finished() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the issue never confirmed"
        );
        let _: serde_json::Value = provider.provider().request("evm_mine", ()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let issued = issuing.await.unwrap().unwrap();
    let mined_in = issued.receipt.block_number.unwrap().as_u64();
    let head = provider.get_block_number().await.unwrap().as_u64();
    assert!(head >= mined_in + 2, "block {mined_in}, head {head}");
}

#[tokio::test]
async fn waiting_longer_than_the_timeout_is_an_error() {
    let f = Fixture::new().await;
    let mut config = f.config.clone();
    config.confirmations = 1_000_000;
    config.timeout = Duration::from_millis(500);
    let impatient = medcert_ethereum::MedicalCertificateClient::attach(
        &config,
        f.admin.address(),
        f.patient_wallet(),
    )
    .unwrap();
    let error = impatient
        .revoke_consent_nonce(f.patient.address().into(), 1)
        .await
        .unwrap_err();
    assert!(matches!(error, EthereumError::Timeout { .. }), "{error:?}");
    assert!(error.to_string().contains("timed out"), "{error}");
}

#[tokio::test]
async fn the_patient_releases_a_served_recoverys_key_once() {
    let f = Fixture::new().await;
    let certificate_id = f.issue(1).await;
    let other = hospital_id("hospital2").unwrap();
    register(&f.admin, other).await;
    let (consent, signature) = f.consent(other, certificate_id, 91);
    let request = [2; 32];

    // Nothing can be released before the request is served.
    assert!(matches!(
        refusal(f.patient_client.release_key(request, &[7; 80]).await),
        E::RequestNotServed(e) if e.request_id == request
    ));
    f.relay
        .serve_recovery(request, deadline(), &consent, &signature)
        .await
        .unwrap();
    let served = f
        .admin
        .recoveries_served(&[certificate_id + 1_000, certificate_id], 0)
        .await
        .unwrap();
    assert_eq!(served.len(), 1);
    assert_eq!(served[0].consent_nonce, 91);
    assert_eq!(served[0].hospital, other);
    assert!(
        f.admin
            .recoveries_served(&[certificate_id + 1_000], 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        f.admin.served_certificate(request).await.unwrap(),
        Some(certificate_id)
    );

    // Only the certificate's patient releases, a key of a sane size, once.
    assert!(matches!(
        refusal(f.relay.release_key(request, &[7; 80]).await),
        E::NotPatientOrAgent(e) if e.caller == f.relay.sender()
            && e.patient == Address::from(f.patient.address())
    ));
    assert!(matches!(
        refusal(f.patient_client.release_key(request, &[]).await),
        E::InvalidWrappedKey(_)
    ));
    assert!(matches!(
        refusal(f.patient_client.release_key(request, &[7; 257]).await),
        E::InvalidWrappedKey(_)
    ));
    assert_eq!(f.admin.released_key(request, 0).await.unwrap(), None);
    f.patient_client
        .release_key(request, &[7; 80])
        .await
        .unwrap();
    assert!(f.admin.key_released(request).await.unwrap());
    assert_eq!(
        f.admin.released_key(request, 0).await.unwrap(),
        Some(vec![7; 80])
    );
    assert!(matches!(
        refusal(f.patient_client.release_key(request, &[8; 80]).await),
        E::KeyAlreadyReleased(e) if e.request_id == request
    ));
    assert_eq!(
        f.admin.released_key(request, 0).await.unwrap(),
        Some(vec![7; 80])
    );
}

#[tokio::test]
async fn hospitals_publish_their_keys_and_may_replace_them() {
    let f = Fixture::new().await;
    let published = f.admin.hospital(f.hospital_id).await.unwrap();
    assert_eq!(HospitalKeys::of(&published), Some(keys([0x25; 32])));

    // The hospital rotates its keys; the admin may too; nobody else.
    let rotated = HospitalKeys {
        public_key: [0x31; 32],
        watermark_key: [0x32; 32],
    };
    f.hospital
        .set_hospital_keys(f.hospital_id, &rotated)
        .await
        .unwrap();
    let published = f.admin.hospital(f.hospital_id).await.unwrap();
    assert_eq!(HospitalKeys::of(&published), Some(rotated));
    f.admin
        .set_hospital_keys(f.hospital_id, &keys([0x41; 32]))
        .await
        .unwrap();
    assert!(matches!(
        refusal(f.patient_client.set_hospital_keys(f.hospital_id, &rotated).await),
        E::NotAdmin(e) if e.caller == f.patient_client.sender()
    ));
    assert!(matches!(
        refusal(
            f.admin
                .set_hospital_keys(hospital_id("nobody").unwrap(), &rotated)
                .await
        ),
        E::UnknownHospital(_)
    ));
    // A watermark key that is not 32 bytes, through the raw bindings.
    let call = f.admin.contract().set_hospital_keys(
        f.hospital_id,
        Bytes::from(vec![1; 32]),
        Bytes::from(vec![1; 33]),
    );
    let error = call.call().await.unwrap_err();
    assert!(matches!(
        error.decode_contract_revert::<E>(),
        Some(E::InvalidPublicKey(e)) if e.length == U256::from(33)
    ));
    let published = f.admin.hospital(f.hospital_id).await.unwrap();
    assert_eq!(HospitalKeys::of(&published), Some(keys([0x41; 32])));
}

/// A client sending as a fresh funded account, meant to be the fixture patient's agent,
/// and the patient's signed authorisation of it with `nonce`.
async fn new_agent(
    f: &Fixture,
    nonce: u64,
) -> (MedicalCertificateClient, AgentAuthorization, [u8; 65]) {
    let client = f.admin.with_signer(funded_wallet(&f.config).await).unwrap();
    let authorization = AgentAuthorization {
        agent: client.sender().0,
        nonce,
    };
    let signature = f
        .patient
        .sign_agent_authorization(&authorization, &f.admin.domain());
    (client, authorization, signature)
}

#[tokio::test]
async fn a_patient_authorises_an_agent_by_signature_once() {
    let f = Fixture::new().await;
    let patient = Address::from(f.patient.address());
    assert_eq!(f.admin.agent_of(patient).await.unwrap(), None);

    // The agent submits the patient's signed authorisation itself.
    let (agent, authorization, signature) = new_agent(&f, 40).await;
    let receipt = agent
        .authorize_agent(patient, &authorization, &signature)
        .await
        .unwrap();
    let event: AgentAuthorizedFilter = emitted(&receipt);
    assert_eq!((event.patient, event.agent), (patient, agent.sender()));
    assert_eq!(
        f.admin.agent_of(patient).await.unwrap(),
        Some(agent.sender())
    );
    assert!(f.admin.nonce_used(patient, 40).await.unwrap());
    assert!(matches!(
        refusal(agent.authorize_agent(patient, &authorization, &signature).await),
        E::NonceUsed(e) if e.patient == patient && e.nonce == U256::from(40)
    ));

    // A newer authorisation replaces the agent.
    let (successor, authorization, signature) = new_agent(&f, 41).await;
    f.relay
        .authorize_agent(patient, &authorization, &signature)
        .await
        .unwrap();
    assert_eq!(
        f.admin.agent_of(patient).await.unwrap(),
        Some(successor.sender())
    );
}

#[tokio::test]
async fn an_agent_authorisation_not_signed_by_the_patient_changes_nothing() {
    let f = Fixture::new().await;
    let patient = Address::from(f.patient.address());
    let (agent, authorization, signature) = new_agent(&f, 50).await;
    let agent_txs = sent_transactions(&f.config, agent.sender()).await;

    // A stranger's signature, and the patient's for another agent or nonce.
    let stranger = PatientSigner::from_seed(&rand::random());
    let foreign = stranger.sign_agent_authorization(&authorization, &f.admin.domain());
    assert!(matches!(
        refusal(agent.authorize_agent(patient, &authorization, &foreign).await),
        E::NotPatient(e) if e.signer == Address::from(stranger.address()) && e.expected == patient
    ));
    for altered in [
        AgentAuthorization {
            agent: f.relay.sender().0,
            ..authorization
        },
        AgentAuthorization {
            nonce: 51,
            ..authorization
        },
    ] {
        assert!(matches!(
            refusal(agent.authorize_agent(patient, &altered, &signature).await),
            E::NotPatient(_)
        ));
    }
    // The patient's signature credited to another patient.
    assert!(matches!(
        refusal(agent.authorize_agent(f.relay.sender(), &authorization, &signature).await),
        E::NotPatient(e) if e.signer == patient
    ));
    let mut malformed = signature;
    malformed[64] = 30;
    assert!(matches!(
        refusal(
            agent
                .authorize_agent(patient, &authorization, &malformed)
                .await
        ),
        E::InvalidSignature(_)
    ));
    let nobody = AgentAuthorization {
        agent: [0; 20],
        ..authorization
    };
    let signed_nobody = f
        .patient
        .sign_agent_authorization(&nobody, &f.admin.domain());
    assert!(matches!(
        refusal(
            agent
                .authorize_agent(patient, &nobody, &signed_nobody)
                .await
        ),
        E::InvalidAgent(_)
    ));

    assert_eq!(
        sent_transactions(&f.config, agent.sender()).await,
        agent_txs
    );
    assert_eq!(f.admin.agent_of(patient).await.unwrap(), None);
    assert!(!f.admin.nonce_used(patient, 50).await.unwrap());
    // The untouched authorisation still works afterwards.
    agent
        .authorize_agent(patient, &authorization, &signature)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_agent_releases_and_revokes_for_its_patient_and_no_other() {
    let f = Fixture::new().await;
    let patient = Address::from(f.patient.address());
    let other_hospital = hospital_id("hospital2").unwrap();
    register(&f.admin, other_hospital).await;

    // Two patients, each with a certificate served to hospital2.
    let certificate = f.issue(1).await;
    let (consent, signature) = f.consent(other_hospital, certificate, 60);
    f.relay
        .serve_recovery([0x61; 32], deadline(), &consent, &signature)
        .await
        .unwrap();
    let neighbour = PatientSigner::from_seed(&rand::random());
    let neighbours_authorization = authorization_for(f.hospital_id, 2, 2);
    let neighbours_certificate = f
        .hospital
        .issue_certificate(
            &neighbours_authorization,
            neighbour.address().into(),
            &neighbour.sign_certificate_authorization(&neighbours_authorization, &f.admin.domain()),
        )
        .await
        .unwrap()
        .certificate_id;
    let neighbours_consent = Consent {
        hospital: other_hospital,
        certificate_id: neighbours_certificate,
        expiry: support::unix_now() + 3600,
        nonce: 3,
    };
    f.relay
        .serve_recovery(
            [0x62; 32],
            deadline(),
            &neighbours_consent,
            &neighbour.sign_consent(&neighbours_consent, &f.admin.domain()),
        )
        .await
        .unwrap();

    let (agent, authorization, signature) = new_agent(&f, 61).await;
    // Before its authorisation, the agent is nobody.
    assert!(matches!(
        refusal(agent.release_key([0x61; 32], &[7; 80]).await),
        E::NotPatientOrAgent(e) if e.patient == patient && e.caller == agent.sender()
    ));
    agent
        .authorize_agent(patient, &authorization, &signature)
        .await
        .unwrap();

    // The neighbour's request, consent nonces and certificate are out of its reach.
    let neighbour_address = Address::from(neighbour.address());
    assert!(matches!(
        refusal(agent.release_key([0x62; 32], &[7; 80]).await),
        E::NotPatientOrAgent(e) if e.patient == neighbour_address && e.caller == agent.sender()
    ));
    assert!(matches!(
        refusal(agent.revoke_consent_nonce(neighbour_address, 70).await),
        E::NotPatientOrAgent(_)
    ));
    assert!(matches!(
        refusal(agent.revoke_certificate(neighbours_certificate).await),
        E::NotPatientOrAgent(_)
    ));
    assert!(!f.admin.key_released([0x62; 32]).await.unwrap());
    assert!(!f.admin.nonce_used(neighbour_address, 70).await.unwrap());

    // Its own patient's: released and revoked, as the patient would.
    agent.release_key([0x61; 32], &[7; 80]).await.unwrap();
    assert_eq!(
        f.admin.released_key([0x61; 32], 0).await.unwrap(),
        Some(vec![7; 80])
    );
    let receipt = agent.revoke_consent_nonce(patient, 70).await.unwrap();
    let event: ConsentNonceRevokedFilter = emitted(&receipt);
    assert_eq!((event.patient, event.nonce), (patient, U256::from(70)));
    let receipt = agent.revoke_certificate(certificate).await.unwrap();
    let event: CertificateRecoveryRevokedFilter = emitted(&receipt);
    assert_eq!(event.patient, patient);
    assert!(!f.admin.certificate(certificate).await.unwrap().recoverable);
    // The patient keeps its own powers beside its agent.
    f.patient_client
        .revoke_consent_nonce(patient, 71)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_patient_or_the_agent_itself_ends_the_agents_authority() {
    let f = Fixture::new().await;
    let patient = Address::from(f.patient.address());
    let (agent, authorization, signature) = new_agent(&f, 80).await;
    assert!(matches!(
        refusal(agent.revoke_agent(patient).await),
        E::NoAgent(e) if e.patient == patient
    ));
    agent
        .authorize_agent(patient, &authorization, &signature)
        .await
        .unwrap();

    // Nobody else ends it.
    assert!(matches!(
        refusal(f.relay.revoke_agent(patient).await),
        E::NotPatientOrAgent(e) if e.caller == f.relay.sender()
    ));
    // The agent steps down: it can no longer act, and its old authorisation is spent.
    let receipt = agent.revoke_agent(patient).await.unwrap();
    let event: AgentRevokedFilter = emitted(&receipt);
    assert_eq!((event.patient, event.agent), (patient, agent.sender()));
    assert_eq!(f.admin.agent_of(patient).await.unwrap(), None);
    assert!(matches!(
        refusal(agent.revoke_consent_nonce(patient, 90).await),
        E::NotPatientOrAgent(_)
    ));
    assert!(matches!(
        refusal(
            agent
                .authorize_agent(patient, &authorization, &signature)
                .await
        ),
        E::NonceUsed(_)
    ));

    // Authorised again with a fresh nonce, then revoked by the patient.
    let authorization = AgentAuthorization {
        nonce: 81,
        ..authorization
    };
    let signature = f
        .patient
        .sign_agent_authorization(&authorization, &f.admin.domain());
    agent
        .authorize_agent(patient, &authorization, &signature)
        .await
        .unwrap();
    let receipt = f.patient_client.revoke_agent(patient).await.unwrap();
    let event: AgentRevokedFilter = emitted(&receipt);
    assert_eq!(event.agent, agent.sender());
    assert_eq!(f.admin.agent_of(patient).await.unwrap(), None);
    assert!(matches!(
        refusal(agent.revoke_consent_nonce(patient, 90).await),
        E::NotPatientOrAgent(_)
    ));
    assert!(matches!(
        refusal(f.patient_client.revoke_agent(patient).await),
        E::NoAgent(_)
    ));
}
