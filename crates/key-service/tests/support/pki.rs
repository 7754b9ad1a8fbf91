//! A test MSP made with rcgen: a self-signed P-256 root CA and members whose subject OU
//! is their NodeOU role, as cryptogen makes them with `EnableNodeOUs`. Shared by the
//! integration tests and the library's unit tests.

// Each test binary uses a different part of it.
#![allow(dead_code)]

use medcert_fabric::Identity;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};

/// A test organisation's MSP.
pub(crate) struct Msp {
    /// Its id, e.g. `Hospital1MSP`.
    pub(crate) msp_id: String,
    /// Its root CA certificate, PEM.
    pub(crate) ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A member's certificate and key.
pub(crate) struct Member {
    /// The MSP id the member signs as.
    pub(crate) msp_id: String,
    /// The certificate, PEM.
    pub(crate) cert_pem: String,
    /// The certificate, DER.
    pub(crate) cert_der: Vec<u8>,
    /// The PKCS#8 private key, PEM.
    pub(crate) key_pem: String,
}

impl Member {
    /// The member as a Fabric identity.
    pub(crate) fn identity(&self) -> Identity {
        Identity::new(
            &self.msp_id,
            self.cert_pem.clone().into_bytes(),
            &self.key_pem,
        )
        .expect("an rcgen P-256 key is PKCS#8")
    }
}

impl Msp {
    /// A fresh MSP `msp_id` whose CA is `ca.<domain>`.
    pub(crate) fn new(msp_id: &str, domain: &str) -> Self {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("ca.{domain}"));
        params
            .distinguished_name
            .push(DnType::OrganizationName, domain);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_pem = params.self_signed(&key).unwrap().pem();
        Self {
            msp_id: msp_id.to_owned(),
            ca_pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A member named `name` with NodeOU `role` (`client`, `admin`, `peer`…).
    pub(crate) fn member(&self, name: &str, role: &str) -> Member {
        self.member_as(&self.msp_id, name, role)
    }

    /// A member certificate of this CA that claims MSP `msp_id`.
    pub(crate) fn member_as(&self, msp_id: &str, name: &str, role: &str) -> Member {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, role);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Member {
            msp_id: msp_id.to_owned(),
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
        }
    }
}
