//! The service's TLS identity: its own small CA (P-256) and a server certificate signed
//! by it for the service's host name and 127.0.0.1, made on first start and kept in
//! `tls/` of the state directory. The CA's key signs once and is then dropped: a new host
//! name makes a new CA, and clients always read the CA certificate the service wrote out
//! at its start.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use zeroize::Zeroizing;

use crate::store::{StoreError, private_dir, read_optional, write_atomic};

const HOST: &str = "host";
const CA: &str = "ca.pem";
const CERT: &str = "server.pem";
const KEY: &str = "server.key";
/// Long enough that nobody operates a renewal for a loopback service; the CA is pinned
/// by its clients, not trusted by name.
const VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The PEM certificates and key the server presents.
pub(crate) struct TlsMaterial {
    /// The CA certificate clients trust.
    pub(crate) ca_pem: String,
    /// The server certificate.
    pub(crate) cert_pem: String,
    /// The server's private key, PKCS#8.
    pub(crate) key_pem: Zeroizing<String>,
}

/// The material in `state_dir/tls` made for `host`, or new material (replacing any made
/// for another host).
pub(crate) fn load_or_create(state_dir: &Path, host: &str) -> Result<TlsMaterial, StoreError> {
    let dir = state_dir.join("tls");
    private_dir(&dir)?;
    if let Some(made_for) = read_optional(&dir.join(HOST))?
        && made_for.as_slice() == host.as_bytes()
    {
        let read = |name: &str| -> Result<String, StoreError> {
            let path = dir.join(name);
            let bytes = read_optional(&path)?.ok_or_else(|| StoreError::Invalid {
                path: path.clone(),
                reason: "missing beside the TLS host file",
            })?;
            String::from_utf8(bytes.to_vec()).map_err(|_| StoreError::Invalid {
                path,
                reason: "not PEM text",
            })
        };
        return Ok(TlsMaterial {
            ca_pem: read(CA)?,
            cert_pem: read(CERT)?,
            key_pem: Zeroizing::new(read(KEY)?),
        });
    }
    let material = create(host, SystemTime::now())?;
    write_atomic(&dir, CA, material.ca_pem.as_bytes(), 0o600)?;
    write_atomic(&dir, CERT, material.cert_pem.as_bytes(), 0o600)?;
    write_atomic(&dir, KEY, material.key_pem.as_bytes(), 0o600)?;
    // Last: the host file says the other three are complete.
    write_atomic(&dir, HOST, host.as_bytes(), 0o600)?;
    Ok(material)
}

fn create(host: &str, now: SystemTime) -> Result<TlsMaterial, rcgen::Error> {
    let validity = |params: &mut CertificateParams| {
        // An hour back: tolerates a client clock slightly behind.
        params.not_before = (now - Duration::from_secs(3600)).into();
        params.not_after = (now + VALIDITY).into();
    };
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name.push(
        DnType::CommonName,
        format!("medcert key service CA for {host}"),
    );
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut ca);
    let ca_pem = ca.self_signed(&ca_key)?.pem();
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut server = CertificateParams::new(vec![host.to_owned()])?;
    server
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    server.distinguished_name.push(DnType::CommonName, host);
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    validity(&mut server);
    let cert_pem = server.signed_by(&key, &issuer)?.pem();
    Ok(TlsMaterial {
        ca_pem,
        cert_pem,
        key_pem: Zeroizing::new(key.serialize_pem()),
    })
}
