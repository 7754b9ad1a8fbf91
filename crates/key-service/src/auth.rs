//! Who is asking: the signed request envelope, made by the client and checked by the
//! service (see the crate docs for the digest).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use medcert_fabric::Identity;
use medcert_fabric::msp::{MspTrust, Role};
use sha2::{Digest, Sha256};

use crate::REQUEST_WINDOW;
use crate::proto::Signed;

const DOMAIN: &[u8] = b"medcert key service request v1\0";
/// Nonce lengths accepted: enough randomness, and a bound on what the service remembers.
const NONCE_LENS: std::ops::RangeInclusive<usize> = 16..=64;

/// Signs a request for `method` (the RPC's name, e.g. `"CheckPassword"`) whose encoded
/// message is `body`, as `identity`, at `timestamp_ms` (milliseconds since the Unix
/// epoch) with `nonce` (16 to 64 fresh random bytes). [`crate::KeyServiceClient`] does
/// this for every call; it is public so that any client can speak the protocol.
pub fn sign_request(
    identity: &Identity,
    method: &str,
    body: Vec<u8>,
    timestamp_ms: i64,
    nonce: Vec<u8>,
) -> Signed {
    let cert = identity.certificate_pem().to_vec();
    let digest = digest(
        method,
        &body,
        identity.msp_id(),
        &cert,
        timestamp_ms,
        &nonce,
    );
    Signed {
        method: method.to_owned(),
        body,
        msp_id: identity.msp_id().to_owned(),
        creator_cert: cert,
        timestamp_ms,
        nonce,
        signature: identity.sign(&digest),
    }
}

fn digest(
    method: &str,
    body: &[u8],
    msp_id: &str,
    cert: &[u8],
    timestamp_ms: i64,
    nonce: &[u8],
) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(DOMAIN);
    let timestamp = timestamp_ms.to_be_bytes();
    for part in [
        method.as_bytes(),
        body,
        msp_id.as_bytes(),
        cert,
        &timestamp,
        nonce,
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().into()
}

/// Milliseconds since the Unix epoch.
pub(crate) fn millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// An admitted caller.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// SHA3-256 of the caller's DER certificate.
    pub(crate) cert_id: [u8; 32],
    /// The certificate's common name, for the log.
    pub(crate) name: String,
}

impl Caller {
    /// The cert id as the chaincode writes it in actors: lowercase hex.
    pub(crate) fn cert_id_hex(&self) -> String {
        hex::encode(self.cert_id)
    }
}

/// The service's door: the MSP it serves and the nonces seen in the window.
pub(crate) struct Gate {
    trust: MspTrust,
    started_at_ms: i64,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// (cert id, nonce) → the request's timestamp.
    nonces: HashMap<([u8; 32], Vec<u8>), i64>,
    pruned_at_ms: i64,
}

impl Gate {
    pub(crate) fn new(trust: MspTrust, now: SystemTime) -> Self {
        Self {
            trust,
            started_at_ms: millis(now),
            seen: Mutex::default(),
        }
    }

    /// The caller of `signed`, if it may call `method` with `role`; else why not. The
    /// reasons name what was wrong with the request, never a secret.
    pub(crate) fn admit(
        &self,
        signed: &Signed,
        method: &str,
        role: Role,
        now: SystemTime,
    ) -> Result<Caller, String> {
        if signed.method != method {
            return Err(format!(
                "the request is signed for {}, not {method}",
                signed.method
            ));
        }
        if signed.msp_id != self.trust.msp_id() {
            return Err(format!(
                "the caller belongs to {}, not {}",
                signed.msp_id,
                self.trust.msp_id()
            ));
        }
        let member = self
            .trust
            .verify_member(&signed.creator_cert, now)
            .map_err(|e| error_chain("the caller's certificate", &e))?;
        if member.role != role {
            return Err(format!(
                "{method} is for {} members; {} is {}",
                role_name(role),
                member.name,
                role_name(member.role)
            ));
        }
        let now_ms = millis(now);
        let window = REQUEST_WINDOW.as_millis() as i64;
        if (signed.timestamp_ms - now_ms).abs() > window {
            return Err(format!(
                "the request's timestamp is {} s from the service's clock (at most {} s)",
                (signed.timestamp_ms - now_ms).abs() / 1000,
                REQUEST_WINDOW.as_secs()
            ));
        }
        // Nonces are remembered in memory only: a request signed before this start could
        // be a replay the service no longer remembers.
        if signed.timestamp_ms < self.started_at_ms {
            return Err("the request was signed before the key service started".to_owned());
        }
        if !NONCE_LENS.contains(&signed.nonce.len()) {
            return Err(format!(
                "the request's nonce is {} bytes, not {} to {}",
                signed.nonce.len(),
                NONCE_LENS.start(),
                NONCE_LENS.end()
            ));
        }
        let digest = digest(
            &signed.method,
            &signed.body,
            &signed.msp_id,
            &signed.creator_cert,
            signed.timestamp_ms,
            &signed.nonce,
        );
        member
            .verify(&digest, &signed.signature)
            .map_err(|e| error_chain("the request's signature", &e))?;
        self.remember(member.cert_id, &signed.nonce, signed.timestamp_ms, now_ms)?;
        Ok(Caller {
            cert_id: member.cert_id,
            name: member.name,
        })
    }

    fn remember(
        &self,
        cert_id: [u8; 32],
        nonce: &[u8],
        timestamp_ms: i64,
        now_ms: i64,
    ) -> Result<(), String> {
        let window = REQUEST_WINDOW.as_millis() as i64;
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        // Past the window a timestamp is refused anyway, so its nonce can be forgotten.
        if now_ms - seen.pruned_at_ms > 1000 {
            seen.nonces.retain(|_, at| now_ms - *at <= window);
            seen.pruned_at_ms = now_ms;
        }
        if seen
            .nonces
            .insert((cert_id, nonce.to_vec()), timestamp_ms)
            .is_some()
        {
            return Err("the request's nonce was already used: a replay".to_owned());
        }
        Ok(())
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Client => "client (doctor)",
        Role::Admin => "admin",
        Role::Peer => "peer",
        Role::Orderer => "orderer",
        Role::Member => "plain (no NodeOU)",
    }
}

/// `what: error: source: …` on one line.
pub(crate) fn error_chain(what: &str, error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = format!("{what}: {error}");
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(&format!(": {e}"));
        source = e.source();
    }
    text
}
