//! A patient whose key lives only in another wallet, on the shared network: ethers.js
//! (`tests/ethers-js`) holds it, as a hardware or browser wallet would. The patient is
//! registered with that wallet's address; medcert's wallet keeps the X25519 key and its
//! own account, which the patient authorises once as its agent. Every patient signature
//! (certification, agent authorisation, deletion, consent) is made by ethers.js from the
//! typed data a flow stopped at; the agent releases the key of a recovery at another
//! hospital, and revokes for the patient.

#![allow(unused_crate_dependencies)] // a test binary links every dependency of its package

#[path = "../../ethereum/tests/ethers_js/mod.rs"]
mod ethers_js;
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use medcert_eip712::{Deletion, PatientSigner, parse_signature};
use medcert_ethereum::ethers::types::Address;
use medcert_flows::recover::DEFAULT_SERVE_WITHIN;
use medcert_flows::register::RegisterReport;
use medcert_flows::wallet::{PatientWallet, WalletError};
use medcert_flows::{
    Actor, CertificatesRequest, CertifyRequest, ConsentFile, ConsentRequest, CreateRequest,
    DeleteRequest, FlowError, PatientAgent, Quiet, RecoverRequest, RegisterRequest,
    SignatureSource, Signed, ToSign, authorize_agent, certify_record_with, connect, create_record,
    delete_record_with, list_certificates, recover, register_patient_as, revoke_certificate,
    revoke_consent, sign_consent_with,
};
use medcert_network::Network;
use medcert_relay::{Relay, RelayConfig};
use support::{network, password, unique, visit};
use zeroize::Zeroizing;

const WAIT: Duration = Duration::from_secs(120);
const AGENT_INTERVAL: Duration = Duration::from_millis(50);

/// The typed data a flow stopped at.
fn to_sign<T: std::fmt::Debug>(outcome: Signed<T>) -> ToSign {
    match outcome {
        Signed::ToSign(to_sign) => to_sign,
        Signed::Done(report) => panic!("the flow ran to its end: {report:?}"),
    }
}

fn done<T>(outcome: Signed<T>) -> T {
    match outcome {
        Signed::Done(report) => report,
        Signed::ToSign(to_sign) => panic!("the flow asked for a signature: {to_sign:?}"),
    }
}

/// The other wallet: a key only ethers.js signs with.
struct OtherWallet {
    secret: [u8; 32],
    address: [u8; 20],
}

impl OtherWallet {
    fn new() -> Self {
        let secret: [u8; 32] = PatientSigner::from_seed(&rand::random())
            .signing_key()
            .to_bytes()
            .into();
        // Its address, as ethers.js's wallet tells it.
        let probe = Deletion {
            channel: "probe".into(),
            record_id: "probe".into(),
            nonce: 0,
        };
        let address = ethers_js::sign(&probe.typed_data(), &secret).signer;
        Self { secret, address }
    }

    /// ethers.js's signature of the typed data a flow stopped at, which must be asked of
    /// this wallet's account.
    fn sign(&self, to_sign: &ToSign) -> [u8; 65] {
        assert_eq!(to_sign.signer, self.hex());
        let answer = ethers_js::sign(&to_sign.typed_data, &self.secret);
        parse_signature(answer.signature.as_deref().unwrap()).unwrap()
    }

    fn hex(&self) -> String {
        format!("0x{}", hex::encode(self.address))
    }
}

/// Registers `name` at `hospital`, for the account `outside` when given.
async fn register(
    network: &Network,
    patients: &Path,
    name: &str,
    hospital: &str,
    password: &Zeroizing<String>,
    outside: Option<[u8; 20]>,
) -> RegisterReport {
    let request = RegisterRequest {
        patient: name,
        hospital,
        doctor: 0,
        treatment_number: None,
        id_number: &format!("ID-{name}"),
        password,
    };
    register_patient_as(network, patients, &request, outside)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_patient_whose_key_is_in_another_wallet_certifies_deletes_and_recovers() {
    let network = network();
    let (h1, h2) = (
        network.fabric.hospitals[0].clone(),
        network.fabric.hospitals[2].clone(),
    );
    let patients = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut config = RelayConfig::new(network.clone(), scratch.path().join("relay"));
    config.only_hospitals = Some(vec![h2.id.clone()]);
    let relay = Relay::start(config).await.expect("relay starts");

    // Registered with the other wallet's address at H, then at H' (the wallet remembers it).
    let other = OtherWallet::new();
    let name = unique("outside");
    let password = password();
    let at_h1 = register(
        &network,
        patients.path(),
        &name,
        &h1.id,
        &password,
        Some(other.address),
    )
    .await;
    assert_eq!(at_h1.address, other.hex());
    let agent = at_h1
        .agent
        .clone()
        .expect("the wallet's account is the agent");
    assert_ne!(agent, other.hex());
    let at_h2 = register(&network, patients.path(), &name, &h2.id, &password, None).await;
    assert_eq!(at_h2.address, other.hex());
    let wallet = PatientWallet::open(patients.path(), &name).unwrap();
    assert_eq!(wallet.patient_address(), other.address);
    assert_eq!(
        wallet.agent_address().map(hex::encode),
        Some(agent[2..].to_owned())
    );

    let created = create_record(
        &network,
        patients.path(),
        &CreateRequest {
            certify_for: None,
            ..visit(&h1.id, &at_h1.treatment_number, &password, 20_000)
        },
        &Quiet,
    )
    .await
    .unwrap();
    let record_id = created.stored.record_id.clone();

    // medcert's wallet signs nothing for the patient: certification is asked of the other.
    let certify = CertifyRequest {
        hospital: &h1.id,
        doctor: 0,
        record_id: &record_id,
        patient: &name,
    };
    let certify_with =
        |source| certify_record_with(&network, patients.path(), &certify, source, &Quiet);
    let error = certify_with(SignatureSource::Wallet).await.unwrap_err();
    assert!(
        matches!(error, FlowError::Wallet(WalletError::SignsElsewhere { .. })),
        "{error}"
    );
    let asked = to_sign(certify_with(SignatureSource::TypedDataOnly).await.unwrap());
    let certified = done(
        certify_with(SignatureSource::Given {
            typed_data: &asked.typed_data,
            signature: other.sign(&asked),
        })
        .await
        .unwrap(),
    );
    assert_eq!(certified.patient_address, other.hex());
    let certificate = certified.certificate_id;
    let listed = list_certificates(
        &network,
        patients.path(),
        &CertificatesRequest { patient: &name },
    )
    .await
    .unwrap();
    assert_eq!(listed.address, other.hex());
    assert!(
        listed
            .certificates
            .iter()
            .any(|c| c.certificate_id == certificate)
    );

    // Until the patient authorises it, the wallet's account cannot act for the patient.
    let error = revoke_certificate(&network, patients.path(), &name, certificate)
        .await
        .unwrap_err();
    assert!(
        matches!(error, FlowError::AgentNotAuthorized { .. }),
        "{error}"
    );
    let authorize = |source| authorize_agent(&network, patients.path(), &name, source);
    let error = authorize(SignatureSource::Wallet).await.unwrap_err();
    assert!(
        matches!(error, FlowError::Wallet(WalletError::SignsElsewhere { .. })),
        "{error}"
    );
    let asked = to_sign(authorize(SignatureSource::TypedDataOnly).await.unwrap());
    assert_eq!(asked.typed_data["primaryType"], "AgentAuthorization");
    assert_eq!(
        asked.typed_data["message"]["agent"]
            .as_str()
            .unwrap()
            .to_lowercase(),
        agent
    );
    let stranger = OtherWallet::new();
    let forged = ethers_js::sign(&asked.typed_data, &stranger.secret);
    let error = authorize(SignatureSource::Given {
        typed_data: &asked.typed_data,
        signature: parse_signature(forged.signature.as_deref().unwrap()).unwrap(),
    })
    .await
    .unwrap_err();
    assert!(
        matches!(error, FlowError::NotPatientsSignature { .. }),
        "{error}"
    );
    let authorized = done(
        authorize(SignatureSource::Given {
            typed_data: &asked.typed_data,
            signature: other.sign(&asked),
        })
        .await
        .unwrap(),
    );
    assert!(authorized.tx.is_some());
    assert_eq!(authorized.agent, agent);
    let reader = connect::certificate_reader(&network).unwrap();
    let patient = Address::from(other.address);
    assert_eq!(
        reader.agent_of(patient).await.unwrap(),
        Some(agent.parse().unwrap())
    );
    // Once is enough: asked again, nothing is signed or sent.
    let again = done(authorize(SignatureSource::TypedDataOnly).await.unwrap());
    assert!(again.tx.is_none());

    // Deletion at H, signed by the other wallet.
    let deletion = DeleteRequest {
        patient: &name,
        hospital: &h1.id,
        record_id: &record_id,
        submitter: Actor::Doctor(0),
    };
    let delete_with = |source| delete_record_with(&network, patients.path(), &deletion, source);
    let asked = to_sign(delete_with(SignatureSource::TypedDataOnly).await.unwrap());
    let deleted = done(
        delete_with(SignatureSource::Given {
            typed_data: &asked.typed_data,
            signature: other.sign(&asked),
        })
        .await
        .unwrap(),
    );
    assert!(deleted.tx_id.is_some());
    assert_eq!(deleted.deleted_by, other.hex());

    // Consent for H', signed by the other wallet.
    let consent_for = |out: PathBuf| {
        let (network, patients, name, hospital) = (&network, patients.path(), &name, &h2.id);
        let other = &other;
        async move {
            let request = ConsentRequest {
                patient: name,
                hospital,
                certificate_id: certificate,
                valid_for: Duration::from_secs(600),
                out: &out,
            };
            let asked = to_sign(
                sign_consent_with(network, patients, &request, SignatureSource::TypedDataOnly)
                    .await
                    .unwrap(),
            );
            let given = SignatureSource::Given {
                typed_data: &asked.typed_data,
                signature: other.sign(&asked),
            };
            let report = done(
                sign_consent_with(network, patients, &request, given)
                    .await
                    .unwrap(),
            );
            ConsentFile::read(&report.path).unwrap()
        }
    };
    let consent = scratch.path().join("consent.json");
    consent_for(consent.clone()).await;

    // Recovery at H' while the agent runs beside it: the agent's release opens the record.
    let request = RecoverRequest {
        hospital: &h2.id,
        doctor: 0,
        treatment_number: &at_h2.treatment_number,
        password: &password,
        consent: &consent,
        record_id: None,
        resume: None,
        wait: WAIT,
        serve_within: DEFAULT_SERVE_WITHIN,
        out: None,
    };
    let report = PatientAgent::open(&network, patients.path(), &name)
        .await
        .unwrap()
        .beside(AGENT_INTERVAL, recover(&network, &request, &Quiet))
        .await
        .unwrap();
    assert_eq!(report.certificate_id, certificate);
    assert_eq!(report.source_hospital, h1.id);
    assert_eq!(report.source_record_id, record_id);

    // The agent revokes for the patient: an unused consent's nonce, then the certificate.
    let unused = consent_for(scratch.path().join("unused.json")).await;
    let revoked = revoke_consent(&network, patients.path(), &name, unused.nonce)
        .await
        .unwrap();
    assert!(revoked.tx.is_some());
    assert!(reader.nonce_used(patient, unused.nonce).await.unwrap());
    revoke_certificate(&network, patients.path(), &name, certificate)
        .await
        .unwrap();
    assert!(!reader.certificate(certificate).await.unwrap().recoverable);
    relay.shutdown().await;
}
