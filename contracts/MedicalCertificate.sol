// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title MedicalCertificate: the patient-owned Medical Certificate Blockchain of medcert.
/// @notice Registered hospitals issue certificates (the IPFS CID of an encrypted record and
/// its fingerprints) with the patient's EIP-712 authorisation. The contract keeps only a
/// commitment to each certificate (a keccak256 over its fields): the fields travel in the
/// `CertificateIssued` event and come back as calldata to the calls that check them
/// against the commitment, since a storage slot costs far more than calldata. The relay serves a recovery
/// only against the patient's EIP-712 consent; after a served recovery only the patient
/// (or the agent it authorised) releases the record's key to the recovering hospital
/// (`releaseKey`), so the release is on the record. A patient whose key lives in another
/// wallet authorises one agent account by an EIP-712 signature (`authorizeAgent`); the
/// agent may release keys and revoke, which only ever reduces what others can do, and
/// signs nothing for the patient. Each hospital's public keys (X25519 for wrapped keys, Ed25519 for
/// watermarks) are published here: verifiers read no other source. Every refusal is a
/// custom error and reverts, so a refused call leaves no state behind.
contract MedicalCertificate {
    struct Hospital {
        address account;
        bytes publicKey; // X25519, receives wrapped record keys
        bytes watermarkKey; // Ed25519, verifies the hospital's watermarks
    }

    /// A certificate as `CertificateIssued` carries it; calls that act on one take it back
    /// as calldata and check it against the stored commitment.
    struct Certificate {
        uint256 id;
        address patient;
        bytes32 hospital;
        bytes32 recordId;
        string cid;
        bytes32 contentFingerprint;
        bytes32 watermarkFingerprint;
    }

    /// A recovery request once served: one slot, written once by `serveRecovery` and
    /// flipped once by `releaseKey`.
    struct Served {
        address patient;
        uint64 certificateId;
        bool keyReleased;
    }

    /// The patient's consent to serve one certificate to one hospital, once, until `expiry`.
    struct Consent {
        bytes32 hospital;
        uint256 certificateId;
        uint64 expiry;
        uint256 nonce;
    }

    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant AUTHORIZATION_TYPEHASH = keccak256(
        "CertificateAuthorization(bytes32 hospital,bytes32 recordId,string cid,bytes32 contentFingerprint,bytes32 watermarkFingerprint,uint256 nonce)"
    );
    bytes32 private constant CONSENT_TYPEHASH =
        keccak256("Consent(bytes32 hospital,uint256 certificateId,uint64 expiry,uint256 nonce)");
    bytes32 private constant AGENT_AUTHORIZATION_TYPEHASH = keccak256("AgentAuthorization(address agent,uint256 nonce)");
    // Upper bound of a canonical (low) s value, secp256k1n / 2; a larger s is the
    // malleable twin of another signature and is refused.
    uint256 private constant MAX_S = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;
    uint256 private constant PUBLIC_KEY_LENGTH = 32;
    // An HPKE-wrapped 32-byte key with its encapsulated key and tag is well under this.
    uint256 private constant MAX_WRAPPED_KEY_LENGTH = 256;
    /// The bit of a certificate's commitment that marks it revoked for recovery.
    bytes32 private constant REVOKED = bytes32(uint256(1));

    address public immutable admin;
    address public relay;
    /// Packed in `relay`'s slot, which is never zero, so that counting the first
    /// certificate does not pay for a fresh slot.
    uint64 public certificateCount;

    mapping(bytes32 id => Hospital) private hospitals;
    mapping(address account => bytes32 id) public hospitalOf;

    /// The commitment to the certificate of a (hospital, record id) pair, keyed by
    /// `recordKey`, so that a record is certified once; its lowest bit is set once the
    /// patient revoked the certificate for recovery (see `_commitment`).
    mapping(bytes32 recordKey => bytes32 commitment) public certificateCommitment;

    /// One nonce space per patient, shared by issuance authorisations and consents: nonce
    /// n is bit n % 256 of word n / 256, so nonces taken close together share a slot.
    mapping(address patient => mapping(uint256 word => uint256 bits)) public nonceBitmap;
    /// A recovery request once served; all zero while it is not (a relay proves a timeout
    /// with a storage proof of this slot).
    mapping(bytes32 requestId => Served) public served;
    /// The one account a patient authorised to release keys and revoke for it; zero for none.
    mapping(address patient => address agent) public agentOf;

    event HospitalRegistered(bytes32 indexed hospital, address indexed account, bytes publicKey, bytes watermarkKey);
    event HospitalKeysSet(bytes32 indexed hospital, bytes publicKey, bytes watermarkKey);
    event HospitalRemoved(bytes32 indexed hospital, address indexed account);
    event RelaySet(address indexed previous, address indexed relay);
    event CertificateIssued(
        uint256 indexed certificateId,
        address indexed patient,
        bytes32 indexed hospital,
        bytes32 recordId,
        string cid,
        bytes32 contentFingerprint,
        bytes32 watermarkFingerprint
    );
    event ConsentNonceRevoked(address indexed patient, uint256 nonce);
    event CertificateRecoveryRevoked(uint256 indexed certificateId, address indexed patient);
    event RecoveryServed(
        bytes32 indexed requestId,
        uint256 indexed certificateId,
        bytes32 indexed hospital,
        string cid,
        bytes32 contentFingerprint,
        bytes32 watermarkFingerprint,
        uint256 consentNonce
    );
    /// The patient's release of a served recovery's record key, wrapped (HPKE) to the
    /// recovering hospital's published X25519 key: only that hospital's key service opens it.
    event KeyReleased(bytes32 indexed requestId, uint256 indexed certificateId, bytes wrappedKey);
    event AgentAuthorized(address indexed patient, address indexed agent);
    event AgentRevoked(address indexed patient, address indexed agent);

    error NotAdmin(address caller);
    error NotRelay(address caller);
    error NotHospital(address caller);
    error UnknownHospital(bytes32 hospital);
    error HospitalAlreadyRegistered(bytes32 hospital);
    error AccountAlreadyRegistered(address account);
    error InvalidHospital();
    error InvalidPublicKey(uint256 length);
    error InvalidPatient();
    error InvalidSignature();
    error NotPatient(address expected, address signer);
    error NonceUsed(address patient, uint256 nonce);
    error ConsentExpired(uint64 expiry, uint256 timestamp);
    error UnknownCertificate(uint256 certificateId);
    error CertificateRevoked(uint256 certificateId);
    error CertificateExists(bytes32 hospital, bytes32 recordId);
    error CertificateMismatch(uint256 certificateId);
    error RequestAlreadyServed(bytes32 requestId);
    error RequestNotServed(bytes32 requestId);
    error DeadlinePassed(uint64 deadline, uint256 timestamp);
    error KeyAlreadyReleased(bytes32 requestId);
    error InvalidWrappedKey();
    error InvalidAgent();
    error NoAgent(address patient);
    error NotPatientOrAgent(address patient, address caller);

    modifier onlyAdmin() {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        _;
    }

    constructor(address relay_) {
        admin = msg.sender;
        relay = relay_;
        emit RelaySet(address(0), relay_);
    }

    // ---- administration ----

    function setRelay(address relay_) external onlyAdmin {
        emit RelaySet(relay, relay_);
        relay = relay_;
    }

    function registerHospital(bytes32 id, address account, bytes calldata publicKey, bytes calldata watermarkKey)
        external
        onlyAdmin
    {
        if (id == bytes32(0) || account == address(0)) revert InvalidHospital();
        _checkKeys(publicKey, watermarkKey);
        if (hospitals[id].account != address(0)) revert HospitalAlreadyRegistered(id);
        if (hospitalOf[account] != bytes32(0)) revert AccountAlreadyRegistered(account);
        hospitals[id] = Hospital(account, publicKey, watermarkKey);
        hospitalOf[account] = id;
        emit HospitalRegistered(id, account, publicKey, watermarkKey);
    }

    /// Replaces a hospital's published keys (key rotation); records marked with the old
    /// watermark key no longer verify. The admin or the hospital itself may.
    function setHospitalKeys(bytes32 id, bytes calldata publicKey, bytes calldata watermarkKey) external {
        Hospital storage h = hospitals[id];
        if (h.account == address(0)) revert UnknownHospital(id);
        if (msg.sender != admin && msg.sender != h.account) revert NotAdmin(msg.sender);
        _checkKeys(publicKey, watermarkKey);
        h.publicKey = publicKey;
        h.watermarkKey = watermarkKey;
        emit HospitalKeysSet(id, publicKey, watermarkKey);
    }

    /// Removing a hospital stops it issuing and receiving recoveries; its certificates stay.
    function removeHospital(bytes32 id) external onlyAdmin {
        address account = hospitals[id].account;
        if (account == address(0)) revert UnknownHospital(id);
        delete hospitals[id];
        delete hospitalOf[account];
        emit HospitalRemoved(id, account);
    }

    // ---- certificates ----

    /// Issued by a registered hospital's account, authorised by the patient's signature.
    function issueCertificate(
        bytes32 recordId,
        string calldata cid,
        bytes32 contentFingerprint,
        bytes32 watermarkFingerprint,
        address patient,
        uint256 nonce,
        bytes calldata signature
    ) external returns (uint256 certificateId) {
        bytes32 hospitalId = hospitalOf[msg.sender];
        if (hospitalId == bytes32(0)) revert NotHospital(msg.sender);
        if (patient == address(0)) revert InvalidPatient();
        bytes32 key = recordKey(hospitalId, recordId);
        if (certificateCommitment[key] != 0) revert CertificateExists(hospitalId, recordId);
        bytes32 cidHash = keccak256(bytes(cid));
        bytes32 digest = _typedDataHash(
            keccak256(
                abi.encode(
                    AUTHORIZATION_TYPEHASH,
                    hospitalId,
                    recordId,
                    cidHash,
                    contentFingerprint,
                    watermarkFingerprint,
                    nonce
                )
            )
        );
        address signer = _recover(digest, signature);
        if (signer != patient) revert NotPatient(patient, signer);
        _useNonce(patient, nonce);

        certificateId = ++certificateCount;
        certificateCommitment[key] = _commitment(
            certificateId, patient, hospitalId, recordId, cidHash, contentFingerprint, watermarkFingerprint
        );
        emit CertificateIssued(
            certificateId, patient, hospitalId, recordId, cid, contentFingerprint, watermarkFingerprint
        );
    }

    /// Called by the relay with a hospital's recovery request and the patient's consent.
    /// A request id is served at most once, which the relay relies on for exactly-once delivery.
    /// `deadline` (Unix seconds, block time) is the hospital's: after it the request can no
    /// longer be served, so a relay that proves it unserved in a block past the deadline
    /// may fail it on the hospital's chain without any pending transaction contradicting it.
    /// `cert` is the consented certificate as `CertificateIssued` carried it.
    function serveRecovery(
        bytes32 requestId,
        uint64 deadline,
        Consent calldata consent,
        bytes calldata signature,
        Certificate calldata cert
    ) external {
        if (msg.sender != relay) revert NotRelay(msg.sender);
        Served storage slot = served[requestId];
        if (slot.patient != address(0)) revert RequestAlreadyServed(requestId);
        if (block.timestamp > deadline) revert DeadlinePassed(deadline, block.timestamp);
        if (cert.id != consent.certificateId) revert CertificateMismatch(consent.certificateId);
        if (!_recoverable(cert)) revert CertificateRevoked(cert.id);
        address patient = cert.patient;
        if (hospitals[consent.hospital].account == address(0)) revert UnknownHospital(consent.hospital);
        if (consent.expiry < block.timestamp) revert ConsentExpired(consent.expiry, block.timestamp);
        address signer = _recover(hashConsent(consent), signature);
        if (signer != patient) revert NotPatient(patient, signer);
        _useNonce(patient, consent.nonce);

        slot.patient = patient;
        slot.certificateId = uint64(cert.id);
        emit RecoveryServed(
            requestId,
            consent.certificateId,
            consent.hospital,
            cert.cid,
            cert.contentFingerprint,
            cert.watermarkFingerprint,
            consent.nonce
        );
    }

    /// The patient, or its authorised agent, releases the record key of a served recovery,
    /// wrapped to the recovering hospital's published X25519 key, once. The patient's agent
    /// calls it only after it has verified the `RecoveryServed` of its own consent against
    /// the block.
    function releaseKey(bytes32 requestId, bytes calldata wrappedKey) external {
        Served storage slot = served[requestId];
        address patient = slot.patient;
        if (patient == address(0)) revert RequestNotServed(requestId);
        _onlyPatientOrAgent(patient);
        if (slot.keyReleased) revert KeyAlreadyReleased(requestId);
        if (wrappedKey.length == 0 || wrappedKey.length > MAX_WRAPPED_KEY_LENGTH) revert InvalidWrappedKey();
        slot.keyReleased = true;
        emit KeyReleased(requestId, slot.certificateId, wrappedKey);
    }

    // ---- the patient's agent ----

    /// Makes `agent` the patient's agent (replacing any earlier one), on the patient's
    /// EIP-712 `AgentAuthorization`; anyone may submit it, usually the agent itself.
    function authorizeAgent(address patient, address agent, uint256 nonce, bytes calldata signature) external {
        if (agent == address(0)) revert InvalidAgent();
        address signer = _recover(hashAgentAuthorization(agent, nonce), signature);
        if (signer != patient) revert NotPatient(patient, signer);
        _useNonce(patient, nonce);
        agentOf[patient] = agent;
        emit AgentAuthorized(patient, agent);
    }

    /// Ends the patient's agent's authority; the patient or the agent itself may.
    function revokeAgent(address patient) external {
        address agent = agentOf[patient];
        if (agent == address(0)) revert NoAgent(patient);
        if (msg.sender != patient && msg.sender != agent) revert NotPatientOrAgent(patient, msg.sender);
        delete agentOf[patient];
        emit AgentRevoked(patient, agent);
    }

    // ---- patient revocations (the patient or its agent) ----

    /// Burns the patient's nonce so that a consent (or authorisation) signed with it can
    /// never be used.
    function revokeConsentNonce(address patient, uint256 nonce) external {
        _onlyPatientOrAgent(patient);
        _useNonce(patient, nonce);
        emit ConsentNonceRevoked(patient, nonce);
    }

    /// Withdraws a certificate from recovery for good; only its patient (or agent) may.
    /// `cert` is the certificate as `CertificateIssued` carried it.
    function revokeCertificate(Certificate calldata cert) external {
        if (!_recoverable(cert)) revert CertificateRevoked(cert.id);
        _onlyPatientOrAgent(cert.patient);
        certificateCommitment[recordKey(cert.hospital, cert.recordId)] |= REVOKED;
        emit CertificateRecoveryRevoked(cert.id, cert.patient);
    }

    // ---- views ----

    function hospital(bytes32 id) external view returns (Hospital memory) {
        Hospital memory h = hospitals[id];
        if (h.account == address(0)) revert UnknownHospital(id);
        return h;
    }

    /// Whether `cert` may still be recovered; refused if it is not the certificate the
    /// contract committed to.
    function isRecoverable(Certificate calldata cert) external view returns (bool) {
        return _recoverable(cert);
    }

    function nonceUsed(address patient, uint256 nonce) external view returns (bool) {
        return nonceBitmap[patient][nonce >> 8] & (1 << (nonce & 0xff)) != 0;
    }

    /// Where the commitment to a record's certificate is kept.
    function recordKey(bytes32 hospitalId, bytes32 recordId) public pure returns (bytes32) {
        return keccak256(abi.encode(hospitalId, recordId));
    }

    function domainSeparator() public view returns (bytes32) {
        return keccak256(
            abi.encode(DOMAIN_TYPEHASH, keccak256("MedicalCertificate"), keccak256("1"), block.chainid, address(this))
        );
    }

    function hashCertificateAuthorization(
        bytes32 hospitalId,
        bytes32 recordId,
        string calldata cid,
        bytes32 contentFingerprint,
        bytes32 watermarkFingerprint,
        uint256 nonce
    ) external view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                AUTHORIZATION_TYPEHASH,
                hospitalId,
                recordId,
                keccak256(bytes(cid)),
                contentFingerprint,
                watermarkFingerprint,
                nonce
            )
        );
        return _typedDataHash(structHash);
    }

    function hashConsent(Consent calldata consent) public view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(CONSENT_TYPEHASH, consent.hospital, consent.certificateId, consent.expiry, consent.nonce)
        );
        return _typedDataHash(structHash);
    }

    function hashAgentAuthorization(address agent, uint256 nonce) public view returns (bytes32) {
        return _typedDataHash(keccak256(abi.encode(AGENT_AUTHORIZATION_TYPEHASH, agent, nonce)));
    }

    /// Spends the patient's nonce, refused if it is spent already.
    function _useNonce(address patient, uint256 nonce) private {
        uint256 bit = 1 << (nonce & 0xff);
        mapping(uint256 => uint256) storage words = nonceBitmap[patient];
        uint256 bits = words[nonce >> 8];
        if (bits & bit != 0) revert NonceUsed(patient, nonce);
        words[nonce >> 8] = bits | bit;
    }

    /// The commitment to a certificate, with its lowest bit clear: that bit marks a
    /// revoked certificate in `certificateCommitment`.
    function _commitment(
        uint256 id,
        address patient,
        bytes32 hospitalId,
        bytes32 recordId,
        bytes32 cidHash,
        bytes32 contentFingerprint,
        bytes32 watermarkFingerprint
    ) private pure returns (bytes32) {
        return keccak256(
            abi.encode(id, patient, hospitalId, recordId, cidHash, contentFingerprint, watermarkFingerprint)
        ) & ~REVOKED;
    }

    /// Whether `cert` is the committed certificate and not revoked; refuses a certificate
    /// the contract never committed to, or one with any field changed.
    function _recoverable(Certificate calldata cert) private view returns (bool) {
        bytes32 stored = certificateCommitment[recordKey(cert.hospital, cert.recordId)];
        if (stored == 0) revert UnknownCertificate(cert.id);
        bytes32 expected = _commitment(
            cert.id,
            cert.patient,
            cert.hospital,
            cert.recordId,
            keccak256(bytes(cert.cid)),
            cert.contentFingerprint,
            cert.watermarkFingerprint
        );
        if (stored == expected) return true;
        if (stored == expected | REVOKED) return false;
        revert CertificateMismatch(cert.id);
    }

    /// The sender must be `patient` or its agent; the agent's slot is read only for another
    /// sender. (No account sends as the zero address, so an unset agent matches no one.)
    function _onlyPatientOrAgent(address patient) private view {
        if (msg.sender != patient && msg.sender != agentOf[patient]) {
            revert NotPatientOrAgent(patient, msg.sender);
        }
    }

    function _checkKeys(bytes calldata publicKey, bytes calldata watermarkKey) private pure {
        if (publicKey.length != PUBLIC_KEY_LENGTH) revert InvalidPublicKey(publicKey.length);
        if (watermarkKey.length != PUBLIC_KEY_LENGTH) revert InvalidPublicKey(watermarkKey.length);
    }

    function _typedDataHash(bytes32 structHash) private view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
    }

    /// ecrecover over a 65-byte (r, s, v) signature; refuses malformed and malleable ones
    /// instead of returning address(0).
    function _recover(bytes32 digest, bytes calldata signature) private pure returns (address signer) {
        if (signature.length != 65) revert InvalidSignature();
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (v < 27) v += 27;
        if ((v != 27 && v != 28) || uint256(s) > MAX_S) revert InvalidSignature();
        signer = ecrecover(digest, v, r, s);
        if (signer == address(0)) revert InvalidSignature();
    }
}
