//! An organisation's MSP as a trust anchor: which certificates are its members', with
//! which NodeOU role, and whether an endorsement is one of its members' signatures.
//!
//! A member certificate is issued by the MSP's root CA (ECDSA P-256 with SHA-256 over its
//! TBS part, the issuer name the CA's subject) and is inside its validity period. Its role
//! is the NodeOU in its subject's OU (by default `client`, `admin`, `peer`, `orderer`;
//! a channel configuration may name others, [`NodeOus`]), and its `cert_id` is SHA3-256
//! of its DER encoding, as the hospital chaincode names actors.

use std::time::SystemTime;

use medcert_fabric_protos::msp::SerializedIdentity;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use prost::Message;
use sha3::{Digest, Sha3_256};
use x509_cert::Certificate;
use x509_cert::der::asn1::{PrintableStringRef, Utf8StringRef};
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::oid::db::rfc4519::{COMMON_NAME, ORGANIZATIONAL_UNIT_NAME};
use x509_cert::der::{DateTime, Decode, DecodePem, Encode};
use x509_cert::name::Name;

const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

/// Why an MSP's CA certificate is not a usable trust anchor.
#[derive(Debug, thiserror::Error)]
#[error("MSP CA certificate of {msp_id}")]
pub struct CaError {
    /// The MSP.
    pub msp_id: String,
    /// Why.
    #[source]
    pub source: CertificateError,
}

/// Why a certificate is not a usable P-256 one.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// Not a certificate.
    #[error("not an X.509 certificate")]
    Parse(#[source] x509_cert::der::Error),
    /// Its key is not an EC key.
    #[error("public key algorithm {0} is not EC")]
    NotEc(ObjectIdentifier),
    /// Its key is not on P-256.
    #[error("public key is not a P-256 point")]
    NotP256,
    /// It is not signed with ECDSA over SHA-256.
    #[error("signature algorithm {0} is not ecdsa-with-SHA256")]
    SignatureAlgorithm(ObjectIdentifier),
    /// Its signed part cannot be re-encoded.
    #[error("re-encoding the certificate")]
    Encode(#[source] x509_cert::der::Error),
    /// Its signature is not DER ECDSA.
    #[error("certificate signature is not DER ECDSA")]
    SignatureEncoding(#[source] p256::ecdsa::Error),
    /// Its signature does not verify.
    #[error("certificate signature does not verify")]
    Signature,
    /// A CA certificate that does not sign itself.
    #[error("not a self-signed CA")]
    NotSelfSigned(#[source] Box<CertificateError>),
}

/// Why a certificate is not a member's of the MSP.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    /// The certificate is unusable.
    #[error("member certificate")]
    Certificate(#[source] CertificateError),
    /// The certificate is issued by another CA.
    #[error("certificate is issued by {issuer}, not by the {msp_id} CA {ca}")]
    OtherIssuer {
        /// The certificate's issuer.
        issuer: String,
        /// The MSP.
        msp_id: String,
        /// The MSP's CA.
        ca: String,
    },
    /// The certificate names the CA but is not signed by it.
    #[error("certificate is not signed by the {msp_id} CA")]
    NotSignedByCa {
        /// The MSP.
        msp_id: String,
        /// Why.
        #[source]
        source: CertificateError,
    },
    /// The certificate is expired or not yet valid at the time it is judged at.
    #[error("certificate {name} is valid from {not_before} to {not_after}, not at {}", show_time(.at))]
    OutsideValidity {
        /// The subject's common name.
        name: String,
        /// Start of its validity.
        not_before: DateTime,
        /// End of its validity.
        not_after: DateTime,
        /// The time it was judged at.
        at: SystemTime,
    },
}

fn show_time(time: &SystemTime) -> String {
    DateTime::from_system_time(*time)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("{time:?}"))
}

/// Why a signature is not a member's.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// The signature is not DER ECDSA.
    #[error("signature is not DER ECDSA")]
    Encoding(#[source] p256::ecdsa::Error),
    /// The signature does not verify.
    #[error("signature does not verify under the member's certificate")]
    Mismatch,
}

/// Why an endorsement does not count.
#[derive(Debug, thiserror::Error)]
pub enum EndorsementError {
    /// The endorser is not a serialized identity.
    #[error("endorser is not a serialized identity")]
    Identity(#[source] prost::DecodeError),
    /// The endorser is of another MSP.
    #[error("endorser belongs to {found}, not {expected}")]
    OtherMsp {
        /// The endorser's MSP.
        found: String,
        /// The expected one.
        expected: String,
    },
    /// The endorser's certificate is not a member's.
    #[error("endorser")]
    Member(#[source] MemberError),
    /// The endorsement's signature is not the endorser's.
    #[error("endorsement")]
    Signature(#[source] SignatureError),
}

/// A member's NodeOU role, from its certificate's OU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A client (at a hospital, a doctor).
    Client,
    /// An MSP admin.
    Admin,
    /// A peer.
    Peer,
    /// An orderer.
    Orderer,
    /// No NodeOU in the certificate.
    Member,
}

/// The OU that marks each NodeOU role in a member's subject, as an MSP configures them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeOus {
    /// The client OU.
    pub client: String,
    /// The peer OU.
    pub peer: String,
    /// The admin OU, if admins are marked by one.
    pub admin: Option<String>,
    /// The orderer OU; without one, an MSP's orderers carry the peer OU.
    pub orderer: Option<String>,
}

impl Default for NodeOus {
    /// What Fabric's tools write: `client`, `peer`, `admin` and `orderer`.
    fn default() -> Self {
        Self {
            client: "client".into(),
            peer: "peer".into(),
            admin: Some("admin".into()),
            orderer: Some("orderer".into()),
        }
    }
}

impl NodeOus {
    fn role(&self, ou: &str) -> Option<Role> {
        if ou == self.client {
            Some(Role::Client)
        } else if ou == self.peer {
            Some(Role::Peer)
        } else if self.admin.as_deref() == Some(ou) {
            Some(Role::Admin)
        } else if self.orderer.as_deref() == Some(ou) {
            Some(Role::Orderer)
        } else {
            None
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Client => "client",
            Self::Admin => "admin",
            Self::Peer => "peer",
            Self::Orderer => "orderer",
            Self::Member => "member without a NodeOU role",
        })
    }
}

/// A verified member certificate.
#[derive(Debug, Clone)]
pub struct Member {
    /// The subject's common name, e.g. `User1@hospital1.medcert.local`.
    pub name: String,
    /// The NodeOU role.
    pub role: Role,
    /// SHA3-256 of the DER certificate: names one certificate exactly.
    pub cert_id: [u8; 32],
    key: VerifyingKey,
}

impl Member {
    /// Checks a DER ECDSA signature over SHA-256 of `message` by this member's key.
    pub fn verify(&self, message: &[u8], signature_der: &[u8]) -> Result<(), SignatureError> {
        let signature = Signature::from_der(signature_der).map_err(SignatureError::Encoding)?;
        self.key
            .verify(message, &signature)
            .map_err(|_| SignatureError::Mismatch)
    }
}

/// An organisation's MSP root CA, the trust anchor of its members and endorsements.
#[derive(Debug, Clone)]
pub struct MspTrust {
    msp_id: String,
    subject: Name,
    key: VerifyingKey,
    /// `None`: NodeOUs are off, every member is a [`Role::Member`].
    node_ous: Option<NodeOus>,
}

impl MspTrust {
    /// The trust anchor of `msp_id`: its self-signed P-256 root CA, PEM.
    pub fn from_pem(msp_id: &str, ca_pem: &[u8]) -> Result<Self, CaError> {
        let bad = |source| CaError {
            msp_id: msp_id.to_owned(),
            source,
        };
        let ca = Certificate::from_pem(ca_pem)
            .map_err(CertificateError::Parse)
            .map_err(bad)?;
        let key = p256_key(&ca).map_err(bad)?;
        // A root CA signs itself: checking it here catches a file that is not one.
        verify_issued(&ca, &key).map_err(|e| bad(CertificateError::NotSelfSigned(Box::new(e))))?;
        Ok(Self {
            msp_id: msp_id.to_owned(),
            subject: ca.tbs_certificate.subject,
            key,
            node_ous: Some(NodeOus::default()),
        })
    }

    /// The same trust anchor with the MSP's own NodeOU configuration (`None`: NodeOUs
    /// disabled, so no member has a role beyond [`Role::Member`]).
    pub fn with_node_ous(self, node_ous: Option<NodeOus>) -> Self {
        Self { node_ous, ..self }
    }

    /// The MSP's NodeOU configuration, if NodeOUs are enabled.
    pub fn node_ous(&self) -> Option<&NodeOus> {
        self.node_ous.as_ref()
    }

    /// The MSP this CA anchors.
    pub fn msp_id(&self) -> &str {
        &self.msp_id
    }

    /// Whether `other` is anchored in the same CA (subject and key), whatever its MSP id.
    pub fn same_ca(&self, other: &MspTrust) -> bool {
        self.subject == other.subject && self.key == other.key
    }

    /// The member whose certificate (PEM or DER) this is: issued by the CA and valid at
    /// `now`.
    pub fn verify_member(&self, cert: &[u8], now: SystemTime) -> Result<Member, MemberError> {
        let cert = parse_certificate(cert).map_err(MemberError::Certificate)?;
        if cert.tbs_certificate.issuer != self.subject {
            return Err(MemberError::OtherIssuer {
                issuer: cert.tbs_certificate.issuer.to_string(),
                msp_id: self.msp_id.clone(),
                ca: self.subject.to_string(),
            });
        }
        verify_issued(&cert, &self.key).map_err(|source| MemberError::NotSignedByCa {
            msp_id: self.msp_id.clone(),
            source,
        })?;
        let (name, role) =
            subject_name_and_role(&cert.tbs_certificate.subject, self.node_ous.as_ref());
        let validity = &cert.tbs_certificate.validity;
        if now < validity.not_before.to_system_time() || now > validity.not_after.to_system_time() {
            return Err(MemberError::OutsideValidity {
                name,
                not_before: validity.not_before.to_date_time(),
                not_after: validity.not_after.to_date_time(),
                at: now,
            });
        }
        let key = p256_key(&cert).map_err(MemberError::Certificate)?;
        let der = cert
            .to_der()
            .map_err(|e| MemberError::Certificate(CertificateError::Encode(e)))?;
        Ok(Member {
            name,
            role,
            cert_id: Sha3_256::digest(&der).into(),
            key,
        })
    }

    /// Checks one endorsement of a proposal response payload: the endorser (an
    /// `msp.SerializedIdentity`) is a member of this MSP valid at `now`, and `signature`
    /// is its signature over the payload followed by the endorser bytes. Answers the
    /// endorsing member, whose role the caller may require to be [`Role::Peer`].
    pub fn verify_endorsement(
        &self,
        proposal_response_payload: &[u8],
        endorser: &[u8],
        signature: &[u8],
        now: SystemTime,
    ) -> Result<Member, EndorsementError> {
        let identity = SerializedIdentity::decode(endorser).map_err(EndorsementError::Identity)?;
        if identity.mspid != self.msp_id {
            return Err(EndorsementError::OtherMsp {
                found: identity.mspid,
                expected: self.msp_id.clone(),
            });
        }
        let member = self
            .verify_member(&identity.id_bytes, now)
            .map_err(EndorsementError::Member)?;
        let message = [proposal_response_payload, endorser].concat();
        member
            .verify(&message, signature)
            .map_err(EndorsementError::Signature)?;
        Ok(member)
    }
}

/// SHA3-256 of a certificate's DER encoding (given PEM or DER): the `cert_id` of
/// [`Member`].
pub fn cert_id(cert: &[u8]) -> Result<[u8; 32], CertificateError> {
    let cert = parse_certificate(cert)?;
    let der = cert.to_der().map_err(CertificateError::Encode)?;
    Ok(Sha3_256::digest(&der).into())
}

/// The subject common name of a certificate (PEM or DER).
pub fn common_name(cert: &[u8]) -> Result<String, CertificateError> {
    let cert = parse_certificate(cert)?;
    Ok(subject_name_and_role(&cert.tbs_certificate.subject, None).0)
}

fn parse_certificate(cert: &[u8]) -> Result<Certificate, CertificateError> {
    Certificate::from_pem(cert)
        .or_else(|_| Certificate::from_der(cert))
        .map_err(CertificateError::Parse)
}

/// The subject's common name and its NodeOU role under `node_ous`.
fn subject_name_and_role(subject: &Name, node_ous: Option<&NodeOus>) -> (String, Role) {
    let mut name = String::new();
    let mut role = Role::Member;
    for attribute in subject.0.iter().flat_map(|rdn| rdn.0.iter()) {
        let Some(value) = attribute_text(&attribute.value) else {
            continue;
        };
        if attribute.oid == COMMON_NAME {
            name = value;
        } else if attribute.oid == ORGANIZATIONAL_UNIT_NAME
            && let Some(found) = node_ous.and_then(|ous| ous.role(&value))
        {
            role = found;
        }
    }
    (name, role)
}

fn attribute_text(value: &x509_cert::der::Any) -> Option<String> {
    if let Ok(s) = value.decode_as::<PrintableStringRef<'_>>() {
        return Some(s.as_str().to_owned());
    }
    value
        .decode_as::<Utf8StringRef<'_>>()
        .ok()
        .map(|s| s.as_str().to_owned())
}

fn p256_key(cert: &Certificate) -> Result<VerifyingKey, CertificateError> {
    let spki = &cert.tbs_certificate.subject_public_key_info;
    if spki.algorithm.oid != EC_PUBLIC_KEY {
        return Err(CertificateError::NotEc(spki.algorithm.oid));
    }
    VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes())
        .map_err(|_| CertificateError::NotP256)
}

/// Checks `cert`'s signature (ECDSA P-256 with SHA-256) under `issuer_key`.
fn verify_issued(cert: &Certificate, issuer_key: &VerifyingKey) -> Result<(), CertificateError> {
    if cert.signature_algorithm.oid != ECDSA_WITH_SHA256 {
        return Err(CertificateError::SignatureAlgorithm(
            cert.signature_algorithm.oid,
        ));
    }
    let tbs = cert
        .tbs_certificate
        .to_der()
        .map_err(CertificateError::Encode)?;
    let signature = Signature::from_der(cert.signature.raw_bytes())
        .map_err(CertificateError::SignatureEncoding)?;
    issuer_key
        .verify(&tbs, &signature)
        .map_err(|_| CertificateError::Signature)
}
