//! The key service's client, for doctors' and admins' tools: every call signed with the
//! caller's Fabric identity.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ed25519_dalek::VerifyingKey;
use medcert_crypto::{CryptoError, Dek, HpkeKeyPair, PublicKey, WrappedKey, unwrap_key, wrap_key};
use medcert_fabric::Identity;
use medcert_hospital_api::Function;
use medcert_hospital_api::ticket::SignedTicket;
use medcert_watermark::UnsignedPayload;
use prost::Message;
use rand::RngCore;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Response, Status};
use zeroize::Zeroize;

use crate::auth::{millis, sign_request};
use crate::proto::key_service_client::KeyServiceClient as Rpc;
use crate::proto::release_key_request::Access as WireAccess;
use crate::proto::*;
use crate::service::{release_binding, store_binding};

/// Why a call to the key service failed. A wrong password is not an error: it is a
/// rejected ticket, which the client submits to the chain.
#[derive(Debug, thiserror::Error)]
pub enum KeyServiceError {
    /// The service's TLS CA certificate cannot be read.
    #[error("cannot read the key service's CA certificate {path}")]
    ReadCa {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The service cannot be reached, or the connection failed.
    #[error("cannot reach the key service at {endpoint}")]
    Unreachable {
        /// `host:port`.
        endpoint: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The service does not serve this caller or request (certificate, MSP, role,
    /// signature, timestamp, replayed nonce, another hospital's watermark).
    #[error("{reason}")]
    Refused {
        /// The service's reason.
        reason: String,
    },
    /// The chain does not record the access the key was asked for.
    #[error("{reason}")]
    Denied {
        /// The service's reason.
        reason: String,
    },
    /// The patient is locked after too many wrong passwords.
    #[error(
        "patient {treatment_number} is locked after too many wrong passwords; the hospital's \
         admin unlocks"
    )]
    Locked {
        /// The patient.
        treatment_number: String,
    },
    /// Too many password checks for the patient or by the doctor.
    #[error("too many attempts, retry in {}s", retry_after.as_secs_f64().ceil())]
    RateLimited {
        /// When to retry.
        retry_after: Duration,
    },
    /// The transaction is in no block of the channel: an evaluated or endorsed proposal
    /// that was never submitted, or one not yet committed.
    #[error("transaction {tx_id} is not committed on channel {channel}")]
    NotCommitted {
        /// The transaction.
        tx_id: String,
        /// The hospital's channel.
        channel: String,
    },
    /// No such patient or record key.
    #[error("{reason}")]
    NotFound {
        /// The service's reason.
        reason: String,
    },
    /// The request is malformed.
    #[error("{reason}")]
    Malformed {
        /// The service's reason.
        reason: String,
    },
    /// The request contradicts what the service holds (a patient already enrolled, a
    /// record holding another key, a record that is on the chain).
    #[error("{reason}")]
    Conflict {
        /// The service's reason.
        reason: String,
    },
    /// The service cannot reach its peer, or the peer failed the query.
    #[error("{reason}")]
    PeerFailed {
        /// The service's reason.
        reason: String,
    },
    /// The service failed.
    #[error("{reason}")]
    Service {
        /// The service's words.
        reason: String,
    },
    /// The service answered something this client cannot use.
    #[error("the key service's answer is malformed: {0}")]
    BadAnswer(&'static str),
    /// The released key does not open with the one-time key.
    #[error("the released key does not open")]
    Unwrap(#[source] CryptoError),
}

impl KeyServiceError {
    fn from_status(endpoint: &str, status: Status) -> Self {
        let detail = ErrorDetail::decode(status.details()).unwrap_or_default();
        let reason = status.message().to_owned();
        match ErrorKind::try_from(detail.kind).unwrap_or(ErrorKind::Unspecified) {
            ErrorKind::Refused => Self::Refused { reason },
            ErrorKind::Denied => Self::Denied { reason },
            ErrorKind::Locked => Self::Locked {
                treatment_number: detail.treatment_number,
            },
            ErrorKind::RateLimited => Self::RateLimited {
                retry_after: Duration::from_millis(detail.retry_after_ms),
            },
            ErrorKind::NotCommitted => Self::NotCommitted {
                tx_id: detail.tx_id,
                channel: detail.channel,
            },
            ErrorKind::NotFound => Self::NotFound { reason },
            ErrorKind::Malformed => Self::Malformed { reason },
            ErrorKind::Conflict => Self::Conflict { reason },
            ErrorKind::PeerFailed => Self::PeerFailed { reason },
            ErrorKind::Internal => Self::Service { reason },
            // No detail: the status comes from the transport, not from the service.
            ErrorKind::Unspecified => match status.code() {
                Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
                    Self::Unreachable {
                        endpoint: endpoint.to_owned(),
                        source: Box::new(status),
                    }
                }
                _ => Self::Service { reason },
            },
        }
    }
}

/// The service's public keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeys {
    /// The hospital's id.
    pub hospital_id: String,
    /// The hospital's channel.
    pub channel: String,
    /// The hospital's X25519 key: record keys are wrapped to it.
    pub hospital_key: PublicKey,
    /// Verifies the hospital's watermarks.
    pub watermark_key: VerifyingKey,
    /// Verifies the service's password tickets (registered on the channel).
    pub ticket_key: VerifyingKey,
}

impl PublicKeys {
    fn from_reply(reply: PublicKeysReply) -> Result<Self, KeyServiceError> {
        let key32 = |bytes: &[u8], what| -> Result<[u8; 32], KeyServiceError> {
            bytes
                .try_into()
                .map_err(|_| KeyServiceError::BadAnswer(what))
        };
        let ed25519 = |bytes: &[u8], what| {
            VerifyingKey::from_bytes(&key32(bytes, what)?)
                .map_err(|_| KeyServiceError::BadAnswer(what))
        };
        Ok(Self {
            hospital_id: reply.hospital_id,
            channel: reply.channel,
            hospital_key: PublicKey::from_bytes(key32(&reply.hospital_key, "hospital key")?),
            watermark_key: ed25519(&reply.watermark_key, "watermark key")?,
            ticket_key: ed25519(&reply.ticket_key, "ticket key")?,
        })
    }
}

/// Which committed access a key is released for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// The caller's audited `QueryRecord` transaction.
    Query {
        /// The transaction.
        tx_id: String,
    },
    /// The caller's `CreateRecord` transaction.
    Create {
        /// The transaction.
        tx_id: String,
    },
    /// The relay's `CompleteRecovery` transaction of a recovery the caller asked for,
    /// with the key the patient wrapped to the hospital for it.
    Recovery {
        /// The transaction.
        tx_id: String,
        /// The record key wrapped to the hospital's key ([`WrapPurpose::Recovery`](medcert_crypto::WrapPurpose::Recovery)).
        wrapped_key: WrappedKey,
    },
}

/// What [`KeyServiceClient::shred_key`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shredded {
    /// The record's key was destroyed now.
    Destroyed,
    /// The service held no key for the record any more.
    AlreadyGone,
}

/// A connection to one hospital's key service as one Fabric identity.
#[derive(Clone)]
pub struct KeyServiceClient {
    rpc: Rpc<Channel>,
    endpoint: String,
    identity: Identity,
    keys: PublicKeys,
}

impl std::fmt::Debug for KeyServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyServiceClient")
            .field("endpoint", &self.endpoint)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

async fn connect_rpc(
    endpoint: &str,
    tls_host: &str,
    tls_ca: &Path,
) -> Result<Rpc<Channel>, KeyServiceError> {
    let ca = std::fs::read(tls_ca).map_err(|source| KeyServiceError::ReadCa {
        path: tls_ca.to_owned(),
        source,
    })?;
    let unreachable = |source: tonic::transport::Error| KeyServiceError::Unreachable {
        endpoint: endpoint.to_owned(),
        source: Box::new(source),
    };
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name(tls_host);
    let channel = Endpoint::from_shared(format!("https://{endpoint}"))
        .map_err(unreachable)?
        .tls_config(tls)
        .map_err(unreachable)?
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(unreachable)?;
    Ok(Rpc::new(channel))
}

impl KeyServiceClient {
    /// Connects over TLS to the service at `endpoint` (`host:port`), checking its
    /// certificate against the CA certificate in `tls_ca` and the name `tls_host`, and
    /// reads its public keys. Every request is signed with `identity`.
    pub async fn connect(
        endpoint: &str,
        tls_host: &str,
        tls_ca: &Path,
        identity: Identity,
    ) -> Result<Self, KeyServiceError> {
        let mut rpc = connect_rpc(endpoint, tls_host, tls_ca).await?;
        let keys = fetch_keys(&mut rpc, endpoint).await?;
        Ok(Self {
            rpc,
            endpoint: endpoint.to_owned(),
            identity,
            keys,
        })
    }

    /// The public keys of the service at `endpoint`; no identity needed.
    pub async fn public_keys(
        endpoint: &str,
        tls_host: &str,
        tls_ca: &Path,
    ) -> Result<PublicKeys, KeyServiceError> {
        let mut rpc = connect_rpc(endpoint, tls_host, tls_ca).await?;
        fetch_keys(&mut rpc, endpoint).await
    }

    /// The service's public keys, as read at [`KeyServiceClient::connect`].
    pub fn keys(&self) -> &PublicKeys {
        &self.keys
    }

    fn signed<M: Message>(&self, method: &str, message: &M) -> Request<Signed> {
        let mut nonce = vec![0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        Request::new(sign_request(
            &self.identity,
            method,
            message.encode_to_vec(),
            millis(SystemTime::now()),
            nonce,
        ))
    }

    /// Sends `request` with `call` (one of the generated client's methods) over the
    /// shared channel; answers the reply, or the service's status as a typed error.
    async fn send<T, F, Fut>(&self, request: Request<Signed>, call: F) -> Result<T, KeyServiceError>
    where
        F: FnOnce(Rpc<Channel>, Request<Signed>) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        call(self.rpc.clone(), request)
            .await
            .map(Response::into_inner)
            .map_err(|status| KeyServiceError::from_status(&self.endpoint, status))
    }

    /// Enrolls a patient's password (a doctor, at registration). Refused for a patient
    /// already enrolled ([`KeyServiceError::Conflict`]).
    pub async fn enroll_patient(
        &self,
        treatment_number: &str,
        password: &[u8],
    ) -> Result<(), KeyServiceError> {
        let mut message = EnrollPatientRequest {
            treatment_number: treatment_number.to_owned(),
            password: password.to_vec(),
        };
        let request = self.signed("EnrollPatient", &message);
        message.password.zeroize();
        self.send(request, |mut rpc, request| async move {
            rpc.enroll_patient(request).await
        })
        .await?;
        Ok(())
    }

    /// Has the service check the patient's password for `function` (`CreateRecord`,
    /// `QueryRecord` or `RequestRecovery`) on `record_id`, and answers its ticket,
    /// accepted or rejected (checked against the service's ticket key): the chaincode
    /// takes the ticket either way and records a rejection.
    pub async fn check_password(
        &self,
        function: Function,
        treatment_number: &str,
        record_id: &str,
        password: &[u8],
    ) -> Result<SignedTicket, KeyServiceError> {
        let (ticket, _) = self
            .check(function, treatment_number, record_id, "", password)
            .await?;
        Ok(ticket)
    }

    /// [`check_password`](Self::check_password) for `RequestRecovery` of `record_id`,
    /// which also answers, when the password was right, the `CreateRecord` ticket for
    /// storing the recovered record again as `stored_as`: one check for the one action.
    pub async fn check_recovery_password(
        &self,
        treatment_number: &str,
        record_id: &str,
        stored_as: &str,
        password: &[u8],
    ) -> Result<(SignedTicket, Option<SignedTicket>), KeyServiceError> {
        self.check(
            Function::RequestRecovery,
            treatment_number,
            record_id,
            stored_as,
            password,
        )
        .await
    }

    async fn check(
        &self,
        function: Function,
        treatment_number: &str,
        record_id: &str,
        stored_as: &str,
        password: &[u8],
    ) -> Result<(SignedTicket, Option<SignedTicket>), KeyServiceError> {
        let mut message = CheckPasswordRequest {
            function: function.name().to_owned(),
            treatment_number: treatment_number.to_owned(),
            record_id: record_id.to_owned(),
            password: password.to_vec(),
            stored_as: stored_as.to_owned(),
        };
        let request = self.signed("CheckPassword", &message);
        message.password.zeroize();
        let reply = self
            .send(request, |mut rpc, request| async move {
                rpc.check_password(request).await
            })
            .await?;
        let ticket = self.verified_ticket(&reply.ticket)?;
        let store_ticket = match reply.store_ticket.is_empty() {
            true => None,
            false => Some(self.verified_ticket(&reply.store_ticket)?),
        };
        Ok((ticket, store_ticket))
    }

    /// A ticket from the service's answer, checked against its ticket key.
    fn verified_ticket(&self, encoded: &[u8]) -> Result<SignedTicket, KeyServiceError> {
        let ticket = SignedTicket::decode(encoded)
            .map_err(|_| KeyServiceError::BadAnswer("the ticket does not decode"))?;
        ticket.verify(&self.keys.ticket_key).map_err(|_| {
            KeyServiceError::BadAnswer("the ticket is not signed by the ticket key")
        })?;
        Ok(ticket)
    }

    /// Lifts a patient's lock-out (the hospital's admin only).
    pub async fn unlock_patient(&self, treatment_number: &str) -> Result<(), KeyServiceError> {
        let request = self.signed(
            "UnlockPatient",
            &UnlockPatientRequest {
                treatment_number: treatment_number.to_owned(),
            },
        );
        self.send(request, |mut rpc, request| async move {
            rpc.unlock_patient(request).await
        })
        .await?;
        Ok(())
    }

    /// Hands a new record's key to the service before `CreateRecord`; persisted when it
    /// returns. Repeating it with the same key is harmless; another key for the same
    /// record is refused ([`KeyServiceError::Conflict`]).
    pub async fn deposit_key(
        &self,
        record_id: &str,
        treatment_number: &str,
        dek: &Dek,
    ) -> Result<(), KeyServiceError> {
        let wrapped = wrap_key(dek, &self.keys.hospital_key, &store_binding(record_id))
            .map_err(|_| KeyServiceError::BadAnswer("the hospital key is not an X25519 key"))?;
        let request = self.signed(
            "DepositKey",
            &DepositKeyRequest {
                record_id: record_id.to_owned(),
                treatment_number: treatment_number.to_owned(),
                wrapped_key: wrapped.as_bytes().to_vec(),
            },
        );
        self.send(request, |mut rpc, request| async move {
            rpc.deposit_key(request).await
        })
        .await?;
        Ok(())
    }

    /// Drops a deposited key whose `CreateRecord` did not commit; refused while the
    /// channel holds the record ([`KeyServiceError::Conflict`]).
    pub async fn abandon_key(&self, record_id: &str) -> Result<(), KeyServiceError> {
        let request = self.signed(
            "AbandonKey",
            &AbandonKeyRequest {
                record_id: record_id.to_owned(),
            },
        );
        self.send(request, |mut rpc, request| async move {
            rpc.abandon_key(request).await
        })
        .await?;
        Ok(())
    }

    /// The record key of a committed access by this identity, wrapped by the service to
    /// a one-time key made for this call and opened here.
    pub async fn release_key(&self, access: Access) -> Result<Dek, KeyServiceError> {
        let one_time = HpkeKeyPair::generate();
        let access = match access {
            Access::Query { tx_id } => WireAccess::QueryTxId(tx_id),
            Access::Create { tx_id } => WireAccess::CreateTxId(tx_id),
            Access::Recovery { tx_id, wrapped_key } => WireAccess::Recovery(Recovery {
                tx_id,
                wrapped_key: wrapped_key.as_bytes().to_vec(),
            }),
        };
        let request = self.signed(
            "ReleaseKey",
            &ReleaseKeyRequest {
                access: Some(access),
                one_time_public_key: one_time.public_key().to_bytes().to_vec(),
            },
        );
        let reply = self
            .send(request, |mut rpc, request| async move {
                rpc.release_key(request).await
            })
            .await?;
        let wrapped = WrappedKey::from_bytes(&reply.wrapped_key)
            .map_err(|_| KeyServiceError::BadAnswer("the released key is not a wrapped key"))?;
        unwrap_key(&wrapped, &one_time, &release_binding(&reply.record_id))
            .map_err(KeyServiceError::Unwrap)
    }

    /// The record's key wrapped to the patient's X25519 key for the patient's envelope
    /// ([`WrapPurpose::PatientEnvelope`](medcert_crypto::WrapPurpose::PatientEnvelope)):
    /// only the patient opens it. Served only to the doctor who deposited the key
    /// ([`KeyServiceError::Denied`] for anyone else).
    pub async fn wrap_for_patient(
        &self,
        record_id: &str,
        patient: &PublicKey,
    ) -> Result<WrappedKey, KeyServiceError> {
        let request = self.signed(
            "WrapForPatient",
            &WrapForPatientRequest {
                record_id: record_id.to_owned(),
                patient_public_key: patient.to_bytes().to_vec(),
            },
        );
        let reply = self
            .send(request, |mut rpc, request| async move {
                rpc.wrap_for_patient(request).await
            })
            .await?;
        WrappedKey::from_bytes(&reply.wrapped_key)
            .map_err(|_| KeyServiceError::BadAnswer("the patient's key is not a wrapped key"))
    }

    /// Destroys a record's key once its deletion (`delete_tx_id`) has committed.
    pub async fn shred_key(
        &self,
        record_id: &str,
        delete_tx_id: &str,
    ) -> Result<Shredded, KeyServiceError> {
        let request = self.signed(
            "ShredKey",
            &ShredKeyRequest {
                record_id: record_id.to_owned(),
                delete_tx_id: delete_tx_id.to_owned(),
            },
        );
        let reply = self
            .send(request, |mut rpc, request| async move {
                rpc.shred_key(request).await
            })
            .await?;
        Ok(if reply.destroyed {
            Shredded::Destroyed
        } else {
            Shredded::AlreadyGone
        })
    }

    /// The hospital's watermark signature over `unsigned`
    /// ([`medcert_watermark::Prepared::embed`] writes it), for this service's hospital
    /// only.
    pub async fn sign_watermark(
        &self,
        unsigned: &UnsignedPayload,
    ) -> Result<[u8; 64], KeyServiceError> {
        let request = self.signed(
            "SignWatermark",
            &SignWatermarkRequest {
                hospital_id: unsigned.hospital_id().to_owned(),
                record_id: unsigned.record_id().to_owned(),
                issued_at: unsigned.issued_at(),
                content_fingerprint: unsigned.content_fingerprint().to_vec(),
            },
        );
        let reply = self
            .send(request, |mut rpc, request| async move {
                rpc.sign_watermark(request).await
            })
            .await?;
        reply
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| KeyServiceError::BadAnswer("the signature is not 64 bytes"))
    }
}

async fn fetch_keys(rpc: &mut Rpc<Channel>, endpoint: &str) -> Result<PublicKeys, KeyServiceError> {
    let reply = rpc
        .public_keys(PublicKeysRequest {})
        .await
        .map_err(|s| KeyServiceError::from_status(endpoint, s))?
        .into_inner();
    PublicKeys::from_reply(reply)
}
