//! Measures the gas of every state-changing function of MedicalCertificate from real
//! receipts on the running anvil, and prints the gas table of the top-level README, with
//! what each transaction costs at a gas price of [`GAS_PRICE_GWEI`]:
//!     cargo run -p medcert-ethereum --example gas_table

#![allow(unused_crate_dependencies)] // an example links every dependency of its package

#[path = "../tests/support/mod.rs"]
mod support;

use medcert_ethereum::ethers::types::TransactionReceipt;
use medcert_ethereum::{AgentAuthorization, HospitalKeys, PatientSigner, hospital_id};
use support::{Fixture, authorization_for, deadline, funded_wallet, register};

/// The gas price the table's costs assume, in gwei.
const GAS_PRICE_GWEI: u64 = 20;

fn gas(receipt: &TransactionReceipt) -> u64 {
    receipt.gas_used.expect("anvil reports gas used").as_u64()
}

#[tokio::main]
async fn main() {
    let f = Fixture::new().await;
    let mut rows: Vec<(&str, &str, u64)> = vec![("constructor", "deployment", gas(&f.deployment))];

    let spare = funded_wallet(&f.config).await;
    let spare_account = support::address_of(&spare);
    let id = hospital_id("hospital9").unwrap();
    let receipt = f
        .admin
        .register_hospital(
            id,
            spare_account,
            &HospitalKeys {
                public_key: [9; 32],
                watermark_key: [9; 32],
            },
        )
        .await
        .unwrap();
    rows.push(("registerHospital", "32-byte X25519 key", gas(&receipt)));
    let receipt = f.admin.remove_hospital(id).await.unwrap();
    rows.push(("removeHospital", "", gas(&receipt)));
    let receipt = f.admin.set_relay(spare_account).await.unwrap();
    rows.push(("setRelay", "", gas(&receipt)));
    f.admin.set_relay(f.relay.sender()).await.unwrap();

    let patient = f.patient.address().into();
    let mut issued = Vec::new();
    for (record, case) in [
        (1, "first certificate of the contract and of the patient"),
        (2, "patient's second certificate"),
        (3, "patient's third certificate"),
    ] {
        let (authorization, signature) = f.authorization(record, record);
        let result = f
            .hospital
            .issue_certificate(&authorization, patient, &signature)
            .await
            .unwrap();
        rows.push(("issueCertificate", case, gas(&result.receipt)));
        issued.push(result.certificate_id);
    }
    // A new patient: its first nonce takes a fresh slot of the nonce bitmap.
    let newcomer = PatientSigner::from_seed(&rand::random());
    let authorization = authorization_for(f.hospital_id, 4, 4);
    let signature = newcomer.sign_certificate_authorization(&authorization, &f.admin.domain());
    let result = f
        .hospital
        .issue_certificate(&authorization, newcomer.address().into(), &signature)
        .await
        .unwrap();
    rows.push((
        "issueCertificate",
        "another patient's first certificate",
        gas(&result.receipt),
    ));

    let other = hospital_id("hospital2").unwrap();
    register(&f.admin, other).await;
    for (i, (certificate_id, case)) in [
        (issued[0], "consent to the issuing hospital"),
        (issued[1], "consent to another hospital"),
    ]
    .into_iter()
    .enumerate()
    {
        let hospital = if i == 0 { f.hospital_id } else { other };
        let (consent, signature) = f.consent(hospital, certificate_id, 100 + i as u64);
        let served = f
            .relay
            .serve_recovery([i as u8 + 1; 32], deadline(), &consent, &signature)
            .await
            .unwrap();
        rows.push(("serveRecovery", case, gas(&served.receipt)));
    }
    let receipt = f
        .patient_client
        .release_key([1; 32], &[7; 80])
        .await
        .unwrap();
    rows.push((
        "releaseKey",
        "by the patient, 80-byte wrapped key",
        gas(&receipt),
    ));

    let receipt = f
        .patient_client
        .revoke_consent_nonce(patient, 500)
        .await
        .unwrap();
    rows.push(("revokeConsentNonce", "by the patient", gas(&receipt)));
    let receipt = f
        .patient_client
        .revoke_certificate(issued[2])
        .await
        .unwrap();
    rows.push(("revokeCertificate", "by the patient", gas(&receipt)));

    // A patient whose key is in another wallet acts through the agent it authorised.
    let agent = f.admin.with_signer(funded_wallet(&f.config).await).unwrap();
    let authorization = AgentAuthorization {
        agent: agent.sender().0,
        nonce: 600,
    };
    let signature = f
        .patient
        .sign_agent_authorization(&authorization, &f.admin.domain());
    let receipt = agent
        .authorize_agent(patient, &authorization, &signature)
        .await
        .unwrap();
    rows.push(("authorizeAgent", "the patient's first agent", gas(&receipt)));
    let receipt = agent.revoke_consent_nonce(patient, 501).await.unwrap();
    rows.push((
        "revokeConsentNonce",
        "by the patient's agent",
        gas(&receipt),
    ));
    let receipt = agent.revoke_certificate(issued[1]).await.unwrap();
    rows.push(("revokeCertificate", "by the patient's agent", gas(&receipt)));
    let receipt = agent.revoke_agent(patient).await.unwrap();
    rows.push(("revokeAgent", "by the agent", gas(&receipt)));

    println!("| function | case | gas used | ETH at {GAS_PRICE_GWEI} gwei |");
    println!("|---|---|---:|---:|");
    for (function, case, gas) in rows {
        // gas × gwei is in units of 1e-9 ETH.
        let nano_eth = gas * GAS_PRICE_GWEI;
        println!(
            "| `{function}` | {case} | {gas} | {}.{:09} |",
            nano_eth / 1_000_000_000,
            nano_eth % 1_000_000_000
        );
    }
}
