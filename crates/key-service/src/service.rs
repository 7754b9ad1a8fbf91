//! The gRPC service: each call admitted by the [`Gate`], then served from the store and,
//! for key releases, the chain; refusals are [`ServiceError`]s.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use medcert_crypto::{Dek, KeyBinding, PasswordParams, PasswordVerifier, WrapPurpose, wrap_key};
use medcert_fabric::msp::Role;
use medcert_hospital_api::Function;
use medcert_hospital_api::ticket::{NONCE_LEN, SignedTicket, Ticket, Verdict};
use medcert_watermark::{UnsignedPayload, sign_payload};
use prost::Message;
use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use crate::auth::{Caller, Gate, error_chain, millis};
use crate::error::ServiceError;
use crate::evidence::{self, Chain};
use crate::fields::{identifier, password, public_key, tx_id, wrapped_key};
use crate::limits::RateLimits;
use crate::proto::key_service_server::KeyService;
use crate::proto::release_key_request::Access;
use crate::proto::*;
use crate::store::{Attempt, Deposit, IssuedTicket, PatientStatus, Store};

/// What the service is configured with, besides its store and chain.
pub(crate) struct Settings {
    pub(crate) hospital_id: String,
    pub(crate) channel: String,
    pub(crate) max_password_failures: u32,
    pub(crate) patient_checks_per_minute: u32,
    pub(crate) doctor_checks_per_minute: u32,
}

struct Inner {
    settings: Settings,
    gate: Gate,
    store: Arc<Store>,
    limits: RateLimits,
    chain: Chain,
}

/// The service; cheap to clone.
#[derive(Clone)]
pub(crate) struct Service {
    inner: Arc<Inner>,
}

type Reply<T> = Result<Response<T>, Status>;

impl Service {
    pub(crate) fn new(settings: Settings, gate: Gate, store: Arc<Store>, chain: Chain) -> Self {
        let limits = RateLimits::new(
            settings.patient_checks_per_minute,
            settings.doctor_checks_per_minute,
        );
        Self {
            inner: Arc::new(Inner {
                settings,
                gate,
                store,
                limits,
                chain,
            }),
        }
    }

    /// The caller and the decoded body of a signed request, or the refusal.
    fn admit<M: Message + Default>(
        &self,
        request: Request<Signed>,
        method: &str,
        role: Role,
    ) -> Result<(Caller, M), Status> {
        let mut signed = request.into_inner();
        let admitted = self
            .inner
            .gate
            .admit(&signed, method, role, SystemTime::now());
        // The body may hold a password: wiped once decoded.
        let body = Zeroizing::new(std::mem::take(&mut signed.body));
        let caller = admitted.map_err(|reason| {
            tracing::warn!(method, "refused: {reason}");
            Status::from(ServiceError::Refused(reason))
        })?;
        let message = M::decode(body.as_slice()).map_err(|e| {
            Status::from(ServiceError::Malformed(format!("the {method} body: {e}")))
        })?;
        Ok((caller, message))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Store) -> Result<T, ServiceError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let store = Arc::clone(&self.inner.store);
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .map_err(|e| {
                tracing::error!("a store task failed: {e}");
                ServiceError::Internal
            })?
    }

    fn public_keys(&self) -> PublicKeysReply {
        let store = &self.inner.store;
        PublicKeysReply {
            hospital_id: self.inner.settings.hospital_id.clone(),
            channel: self.inner.settings.channel.clone(),
            hospital_key: store.hospital_key().to_bytes().to_vec(),
            watermark_key: store.watermark_key().verifying_key().to_bytes().to_vec(),
            ticket_key: store.ticket_key().verifying_key().to_bytes().to_vec(),
        }
    }

    async fn enroll_patient(
        &self,
        caller: Caller,
        request: EnrollPatientRequest,
    ) -> Result<EnrollPatientReply, ServiceError> {
        let treatment_number = identifier("treatment number", request.treatment_number)?;
        let password = password(request.password)?;
        let patient = treatment_number.clone();
        let enrolled = self
            .blocking(move |store| {
                if !matches!(store.patient(&patient), PatientStatus::Unknown) {
                    return Ok(false);
                }
                let verifier = PasswordVerifier::hash(&password, &PasswordParams::default())
                    .map_err(|e| {
                        tracing::error!("{}", error_chain("hashing a password", &e));
                        ServiceError::Internal
                    })?;
                Ok(store.enroll(&patient, verifier)?)
            })
            .await?;
        if !enrolled {
            return Err(ServiceError::Conflict(format!(
                "patient {treatment_number} is already enrolled at this key service"
            )));
        }
        tracing::info!(doctor = %caller.name, "enrolled patient {treatment_number}");
        Ok(EnrollPatientReply {})
    }

    async fn check_password(
        &self,
        caller: Caller,
        request: CheckPasswordRequest,
    ) -> Result<CheckPasswordReply, ServiceError> {
        let function = Function::from_name(&request.function)
            .filter(|f| {
                matches!(
                    f,
                    Function::CreateRecord | Function::QueryRecord | Function::RequestRecovery
                )
            })
            .ok_or_else(|| {
                ServiceError::Malformed(format!(
                    "{} is not a password-gated function (CreateRecord, QueryRecord, \
                     RequestRecovery)",
                    request.function
                ))
            })?;
        let treatment_number = identifier("treatment number", request.treatment_number)?;
        let record_id = identifier("record id", request.record_id)?;
        let stored_as = match request.stored_as.is_empty() {
            true => None,
            false if function == Function::RequestRecovery => {
                Some(identifier("stored-as record id", request.stored_as)?)
            }
            false => {
                return Err(ServiceError::Malformed(
                    "only a RequestRecovery check names the record it will be stored as".into(),
                ));
            }
        };
        let password = password(request.password)?;
        let locked = || ServiceError::Locked {
            treatment_number: treatment_number.clone(),
        };
        let verifier = match self.inner.store.patient(&treatment_number) {
            PatientStatus::Unknown => return Err(not_enrolled(&treatment_number)),
            PatientStatus::Locked => return Err(locked()),
            PatientStatus::Open(verifier) => verifier,
        };
        self.inner
            .limits
            .take(&treatment_number, caller.cert_id, Instant::now())
            .map_err(|retry_after| ServiceError::RateLimited { retry_after })?;
        let limit = self.inner.settings.max_password_failures;
        let patient = treatment_number.clone();
        let attempt = self
            .blocking(move |store| {
                let right = verifier.verify(&password).is_ok();
                Ok(store.record_attempt(&patient, right, limit)?)
            })
            .await?;
        let verdict = match attempt {
            Some(Attempt::Accepted) => Verdict::Accepted,
            Some(Attempt::Rejected { attempt, limit }) => Verdict::Rejected { attempt, limit },
            Some(Attempt::Locked) => return Err(locked()),
            None => return Err(not_enrolled(&treatment_number)),
        };
        if let Verdict::Rejected { attempt, limit } = verdict {
            tracing::info!(
                doctor = %caller.name,
                "wrong password for patient {treatment_number}: attempt {attempt} of {limit}",
            );
        }
        let store_ticket = match stored_as {
            Some(stored_as) if verdict == Verdict::Accepted => {
                let ticket = self
                    .issue_ticket(
                        &caller,
                        Function::CreateRecord,
                        &treatment_number,
                        stored_as,
                        verdict,
                    )
                    .await?;
                ticket.encode()
            }
            _ => Vec::new(),
        };
        let ticket = self
            .issue_ticket(&caller, function, &treatment_number, record_id, verdict)
            .await?;
        Ok(CheckPasswordReply {
            ticket: ticket.encode(),
            store_ticket,
        })
    }

    /// Records and signs a ticket carrying `verdict` for one gated call.
    async fn issue_ticket(
        &self,
        caller: &Caller,
        function: Function,
        treatment_number: &str,
        record_id: String,
        verdict: Verdict,
    ) -> Result<SignedTicket, ServiceError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        let now_ms = millis(SystemTime::now());
        let ticket = Ticket {
            channel: self.inner.settings.channel.clone(),
            function,
            treatment_number: treatment_number.to_owned(),
            record_id,
            doctor_cert_id: caller.cert_id,
            nonce,
            issued_at_ms: now_ms,
            verdict,
        };
        let issued = IssuedTicket {
            function: function.name().to_owned(),
            treatment_number: ticket.treatment_number.clone(),
            record_id: ticket.record_id.clone(),
            doctor_cert_id: caller.cert_id_hex(),
            issued_at_ms: now_ms,
            accepted: verdict == Verdict::Accepted,
            redeemed: false,
        };
        self.blocking(move |store| Ok(store.issue(&nonce, issued, now_ms)?))
            .await?;
        Ok(ticket.sign(self.inner.store.ticket_key()))
    }

    async fn unlock_patient(
        &self,
        caller: Caller,
        request: UnlockPatientRequest,
    ) -> Result<UnlockPatientReply, ServiceError> {
        let treatment_number = identifier("treatment number", request.treatment_number)?;
        let patient = treatment_number.clone();
        if !self
            .blocking(move |store| Ok(store.unlock(&patient)?))
            .await?
        {
            return Err(not_enrolled(&treatment_number));
        }
        tracing::info!(admin = %caller.name, "unlocked patient {treatment_number}");
        Ok(UnlockPatientReply {})
    }

    async fn deposit_key(
        &self,
        caller: Caller,
        request: DepositKeyRequest,
    ) -> Result<DepositKeyReply, ServiceError> {
        let record_id = identifier("record id", request.record_id)?;
        let treatment_number = identifier("treatment number", request.treatment_number)?;
        let wrapped = wrapped_key(&request.wrapped_key)?;
        let dek = self
            .inner
            .store
            .unwrap(&wrapped, &store_binding(&record_id))
            .map_err(|_| {
                ServiceError::Malformed(format!(
                    "the deposited key is not wrapped to this service for record {record_id}"
                ))
            })?;
        let record = record_id.clone();
        let depositor = caller.cert_id_hex();
        let outcome = self
            .blocking(move |store| {
                Ok(store.deposit(&record, &treatment_number, &depositor, &dek)?)
            })
            .await?;
        match outcome {
            Deposit::Stored => {
                tracing::info!(doctor = %caller.name, "holding the key of record {record_id}");
                Ok(DepositKeyReply {})
            }
            Deposit::AlreadyHeld => Ok(DepositKeyReply {}),
            Deposit::Conflict(reason) => Err(ServiceError::Conflict(reason)),
        }
    }

    async fn abandon_key(
        &self,
        caller: Caller,
        request: AbandonKeyRequest,
    ) -> Result<AbandonKeyReply, ServiceError> {
        let record_id = identifier("record id", request.record_id)?;
        if self.inner.chain.record_is_active(&record_id).await? {
            return Err(ServiceError::Conflict(format!(
                "record {record_id} is on channel {}: its key stays",
                self.inner.settings.channel
            )));
        }
        let record = record_id.clone();
        if self
            .blocking(move |store| Ok(store.drop_key(&record)?))
            .await?
        {
            tracing::info!(doctor = %caller.name, "dropped the key of record {record_id}, never created");
        }
        Ok(AbandonKeyReply {})
    }

    async fn release_key(
        &self,
        caller: Caller,
        request: ReleaseKeyRequest,
    ) -> Result<ReleaseKeyReply, ServiceError> {
        let one_time = public_key("one-time public key", &request.one_time_public_key)?;
        let access = request
            .access
            .ok_or_else(|| ServiceError::Malformed("no access named".to_owned()))?;
        let (record_id, dek, ticket) = match access {
            Access::QueryTxId(tx_id) => {
                self.audited(&caller, Function::QueryRecord, &tx_id).await?
            }
            Access::CreateTxId(tx_id) => {
                self.audited(&caller, Function::CreateRecord, &tx_id)
                    .await?
            }
            Access::Recovery(recovery) => {
                let tx_id = tx_id(&recovery.tx_id)?;
                let wrapped = wrapped_key(&recovery.wrapped_key)?;
                let event = self.inner.chain.committed_event(&tx_id).await?;
                let recovery =
                    evidence::completed_recovery(&event, &caller, &self.inner.settings.channel)?;
                let binding = KeyBinding {
                    record_id: &recovery.record_id,
                    purpose: WrapPurpose::Recovery,
                };
                let dek = self.inner.store.unwrap(&wrapped, &binding).map_err(|_| {
                    ServiceError::Malformed(format!(
                        "the recovery key is not wrapped to this service for record {}",
                        recovery.record_id
                    ))
                })?;
                (recovery.record_id, dek, None)
            }
        };
        let wrapped = wrap_key(&dek, &one_time, &release_binding(&record_id))
            .map_err(|e| ServiceError::Malformed(error_chain("the one-time public key", &e)))?;
        if let Some(nonce) = ticket {
            // Persisted before the key leaves: each ticket releases one key.
            let redeemed = self
                .blocking(move |store| Ok(store.redeem(&nonce)?))
                .await?;
            if !redeemed {
                return Err(ServiceError::Denied(
                    "the access's password ticket already released its key".to_owned(),
                ));
            }
        }
        tracing::info!(doctor = %caller.name, "released the key of record {record_id}");
        Ok(ReleaseKeyReply {
            record_id,
            wrapped_key: wrapped.as_bytes().to_vec(),
        })
    }

    /// The record and key of an audited access by `caller`, and its ticket to redeem.
    async fn audited(
        &self,
        caller: &Caller,
        function: Function,
        tx_id: &str,
    ) -> Result<(String, Dek, Option<String>), ServiceError> {
        let tx_id = self::tx_id(tx_id)?;
        let event = self.inner.chain.committed_event(&tx_id).await?;
        let access = evidence::audited_access(&event, function, caller)?;
        let ticket = self.inner.store.ticket(&access.ticket).ok_or_else(|| {
            ServiceError::Denied(format!(
                "transaction {tx_id} carries ticket {}, which this service did not issue or \
                 no longer keeps",
                access.ticket
            ))
        })?;
        evidence::ticket_fits(&ticket, function, &access, caller)?;
        if ticket.redeemed {
            return Err(ServiceError::Denied(
                "the access's password ticket already released its key".to_owned(),
            ));
        }
        let record = access.record_id.clone();
        let (owner, dek) = self
            .blocking(move |store| Ok((store.record_owner(&record)?, store.record_key(&record)?)))
            .await?;
        let dek = dek.ok_or_else(|| no_key(&access.record_id))?;
        if owner.is_some_and(|owner| owner.treatment_number != access.treatment_number) {
            return Err(ServiceError::Denied(format!(
                "record {} was deposited for another patient",
                access.record_id
            )));
        }
        Ok((access.record_id, dek, Some(access.ticket)))
    }

    /// Served only to the doctor who deposited the key, who made it: to anyone else, a key
    /// wrapped to a public key of their choosing would be a key without an audited access.
    async fn wrap_for_patient(
        &self,
        caller: Caller,
        request: WrapForPatientRequest,
    ) -> Result<WrapForPatientReply, ServiceError> {
        let record_id = identifier("record id", request.record_id)?;
        let patient = public_key("patient public key", &request.patient_public_key)?;
        let record = record_id.clone();
        let (owner, dek) = self
            .blocking(move |store| Ok((store.record_owner(&record)?, store.record_key(&record)?)))
            .await?;
        let dek = dek.ok_or_else(|| no_key(&record_id))?;
        if owner.is_none_or(|owner| owner.depositor != caller.cert_id_hex()) {
            return Err(ServiceError::Denied(format!(
                "only the doctor who deposited record {record_id}'s key has it wrapped to its \
                 patient"
            )));
        }
        let binding = KeyBinding {
            record_id: &record_id,
            purpose: WrapPurpose::PatientEnvelope,
        };
        let wrapped = wrap_key(&dek, &patient, &binding)
            .map_err(|e| ServiceError::Malformed(error_chain("the patient public key", &e)))?;
        Ok(WrapForPatientReply {
            wrapped_key: wrapped.as_bytes().to_vec(),
        })
    }

    async fn shred_key(
        &self,
        caller: Caller,
        request: ShredKeyRequest,
    ) -> Result<ShredKeyReply, ServiceError> {
        let record_id = identifier("record id", request.record_id)?;
        let tx_id = tx_id(&request.delete_tx_id)?;
        let event = self.inner.chain.committed_event(&tx_id).await?;
        evidence::deleted_record(&event, &record_id)?;
        let record = record_id.clone();
        let destroyed = self
            .blocking(move |store| Ok(store.drop_key(&record)?))
            .await?;
        tracing::info!(doctor = %caller.name, destroyed, "shredded the key of deleted record {record_id}");
        Ok(ShredKeyReply { destroyed })
    }

    fn sign_watermark(
        &self,
        request: SignWatermarkRequest,
    ) -> Result<SignWatermarkReply, ServiceError> {
        let hospital_id = &self.inner.settings.hospital_id;
        if request.hospital_id != *hospital_id {
            return Err(ServiceError::Refused(format!(
                "this key service signs only hospital {hospital_id}'s watermarks, not {}'s",
                request.hospital_id
            )));
        }
        let fingerprint: [u8; 32] =
            request
                .content_fingerprint
                .as_slice()
                .try_into()
                .map_err(|_| {
                    ServiceError::Malformed("the content fingerprint is not 32 bytes".to_owned())
                })?;
        let unsigned = UnsignedPayload::new(
            &request.hospital_id,
            &request.record_id,
            request.issued_at,
            fingerprint,
        )
        .map_err(|e| ServiceError::Malformed(e.to_string()))?;
        let signature = sign_payload(&unsigned, self.inner.store.watermark_key());
        Ok(SignWatermarkReply {
            signature: signature.to_vec(),
        })
    }
}

fn not_enrolled(treatment_number: &str) -> ServiceError {
    ServiceError::NotFound(format!(
        "patient {treatment_number} is not enrolled at this key service"
    ))
}

fn no_key(record_id: &str) -> ServiceError {
    ServiceError::NotFound(format!(
        "this key service holds no key for record {record_id} (never deposited, or shredded)"
    ))
}

/// How a depositing client wraps a record key to the service.
pub(crate) fn store_binding(record_id: &str) -> KeyBinding<'_> {
    KeyBinding {
        record_id,
        purpose: WrapPurpose::HospitalKeyStore,
    }
}

/// How the service wraps a released key to a doctor's one-time key.
pub(crate) fn release_binding(record_id: &str) -> KeyBinding<'_> {
    KeyBinding {
        record_id,
        purpose: WrapPurpose::Release,
    }
}

#[tonic::async_trait]
impl KeyService for Service {
    async fn public_keys(&self, _: Request<PublicKeysRequest>) -> Reply<PublicKeysReply> {
        Ok(Response::new(Service::public_keys(self)))
    }

    async fn enroll_patient(&self, request: Request<Signed>) -> Reply<EnrollPatientReply> {
        let (caller, body) = self.admit(request, "EnrollPatient", Role::Client)?;
        answer(Service::enroll_patient(self, caller, body).await)
    }

    async fn check_password(&self, request: Request<Signed>) -> Reply<CheckPasswordReply> {
        let (caller, body) = self.admit(request, "CheckPassword", Role::Client)?;
        answer(Service::check_password(self, caller, body).await)
    }

    async fn unlock_patient(&self, request: Request<Signed>) -> Reply<UnlockPatientReply> {
        let (caller, body) = self.admit(request, "UnlockPatient", Role::Admin)?;
        answer(Service::unlock_patient(self, caller, body).await)
    }

    async fn deposit_key(&self, request: Request<Signed>) -> Reply<DepositKeyReply> {
        let (caller, body) = self.admit(request, "DepositKey", Role::Client)?;
        answer(Service::deposit_key(self, caller, body).await)
    }

    async fn abandon_key(&self, request: Request<Signed>) -> Reply<AbandonKeyReply> {
        let (caller, body) = self.admit(request, "AbandonKey", Role::Client)?;
        answer(Service::abandon_key(self, caller, body).await)
    }

    async fn release_key(&self, request: Request<Signed>) -> Reply<ReleaseKeyReply> {
        let (caller, body) = self.admit(request, "ReleaseKey", Role::Client)?;
        answer(Service::release_key(self, caller, body).await)
    }

    async fn wrap_for_patient(&self, request: Request<Signed>) -> Reply<WrapForPatientReply> {
        let (caller, body) = self.admit(request, "WrapForPatient", Role::Client)?;
        answer(Service::wrap_for_patient(self, caller, body).await)
    }

    async fn shred_key(&self, request: Request<Signed>) -> Reply<ShredKeyReply> {
        let (caller, body) = self.admit(request, "ShredKey", Role::Client)?;
        answer(Service::shred_key(self, caller, body).await)
    }

    async fn sign_watermark(&self, request: Request<Signed>) -> Reply<SignWatermarkReply> {
        let (_, body) = self.admit(request, "SignWatermark", Role::Client)?;
        answer(Service::sign_watermark(self, body))
    }
}

fn answer<T>(result: Result<T, ServiceError>) -> Reply<T> {
    result.map(Response::new).map_err(Status::from)
}
