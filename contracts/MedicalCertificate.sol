// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title MedicalCertificate: the patient-owned Medical Certificate Blockchain of medcert.
/// @notice Registered hospitals issue certificates (the IPFS CID of an encrypted record and
/// its fingerprints) with the patient's EIP-712 authorisation; the relay serves a recovery
/// only against the patient's EIP-712 consent. Every refusal is a custom error and reverts,
/// so a refused call leaves no state behind.
contract MedicalCertificate {
    struct Hospital {
        address account;
        bytes publicKey; // X25519, receives wrapped record keys
    }

    struct Certificate {
        address patient;
        uint64 issuedAt;
        bool recoverable;
        bytes32 hospital;
        bytes32 recordId;
        string cid;
        bytes32 contentFingerprint;
        bytes32 watermarkFingerprint;
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
    // Upper bound of a canonical (low) s value, secp256k1n / 2; a larger s is the
    // malleable twin of another signature and is refused.
    uint256 private constant MAX_S = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;
    uint256 private constant PUBLIC_KEY_LENGTH = 32;

    address public immutable admin;
    address public relay;

    mapping(bytes32 id => Hospital) private hospitals;
    mapping(address account => bytes32 id) public hospitalOf;

    uint256 public certificateCount;
    mapping(uint256 id => Certificate) private certificates;
    mapping(address patient => uint256[] ids) private patientCertificates;
    /// Certificate id of a (hospital, record id) pair; a record is certified once.
    mapping(bytes32 hospital => mapping(bytes32 recordId => uint256 id)) public certificateOfRecord;

    /// One nonce space per patient, shared by issuance authorisations and consents.
    mapping(address patient => mapping(uint256 nonce => bool)) public nonceUsed;
    mapping(bytes32 requestId => bool) public requestServed;

    event HospitalRegistered(bytes32 indexed hospital, address indexed account, bytes publicKey);
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
        bytes32 watermarkFingerprint
    );

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
    error CertificateExists(uint256 certificateId);
    error RequestAlreadyServed(bytes32 requestId);

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

    function registerHospital(bytes32 id, address account, bytes calldata publicKey) external onlyAdmin {
        if (id == bytes32(0) || account == address(0)) revert InvalidHospital();
        if (publicKey.length != PUBLIC_KEY_LENGTH) revert InvalidPublicKey(publicKey.length);
        if (hospitals[id].account != address(0)) revert HospitalAlreadyRegistered(id);
        if (hospitalOf[account] != bytes32(0)) revert AccountAlreadyRegistered(account);
        hospitals[id] = Hospital(account, publicKey);
        hospitalOf[account] = id;
        emit HospitalRegistered(id, account, publicKey);
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
        uint256 existing = certificateOfRecord[hospitalId][recordId];
        if (existing != 0) revert CertificateExists(existing);
        bytes32 digest =
            hashCertificateAuthorization(hospitalId, recordId, cid, contentFingerprint, watermarkFingerprint, nonce);
        address signer = _recover(digest, signature);
        if (signer != patient) revert NotPatient(patient, signer);
        if (nonceUsed[patient][nonce]) revert NonceUsed(patient, nonce);

        nonceUsed[patient][nonce] = true;
        certificateId = ++certificateCount;
        certificates[certificateId] = Certificate({
            patient: patient,
            issuedAt: uint64(block.timestamp),
            recoverable: true,
            hospital: hospitalId,
            recordId: recordId,
            cid: cid,
            contentFingerprint: contentFingerprint,
            watermarkFingerprint: watermarkFingerprint
        });
        patientCertificates[patient].push(certificateId);
        certificateOfRecord[hospitalId][recordId] = certificateId;
        emit CertificateIssued(
            certificateId, patient, hospitalId, recordId, cid, contentFingerprint, watermarkFingerprint
        );
    }

    /// Called by the relay with a hospital's recovery request and the patient's consent.
    /// A request id is served at most once, which the relay relies on for exactly-once delivery.
    function serveRecovery(bytes32 requestId, Consent calldata consent, bytes calldata signature) external {
        if (msg.sender != relay) revert NotRelay(msg.sender);
        if (requestServed[requestId]) revert RequestAlreadyServed(requestId);
        Certificate storage cert = certificates[consent.certificateId];
        address patient = cert.patient;
        if (patient == address(0)) revert UnknownCertificate(consent.certificateId);
        if (!cert.recoverable) revert CertificateRevoked(consent.certificateId);
        if (hospitals[consent.hospital].account == address(0)) revert UnknownHospital(consent.hospital);
        if (consent.expiry < block.timestamp) revert ConsentExpired(consent.expiry, block.timestamp);
        address signer = _recover(hashConsent(consent), signature);
        if (signer != patient) revert NotPatient(patient, signer);
        if (nonceUsed[patient][consent.nonce]) revert NonceUsed(patient, consent.nonce);

        nonceUsed[patient][consent.nonce] = true;
        requestServed[requestId] = true;
        emit RecoveryServed(
            requestId,
            consent.certificateId,
            consent.hospital,
            cert.cid,
            cert.contentFingerprint,
            cert.watermarkFingerprint
        );
    }

    // ---- patient revocations ----

    /// Burns a nonce so that a consent (or authorisation) signed with it can never be used.
    function revokeConsentNonce(uint256 nonce) external {
        if (nonceUsed[msg.sender][nonce]) revert NonceUsed(msg.sender, nonce);
        nonceUsed[msg.sender][nonce] = true;
        emit ConsentNonceRevoked(msg.sender, nonce);
    }

    /// Withdraws a certificate from recovery for good; only its patient may.
    function revokeCertificate(uint256 certificateId) external {
        Certificate storage cert = certificates[certificateId];
        address patient = cert.patient;
        if (patient == address(0)) revert UnknownCertificate(certificateId);
        if (patient != msg.sender) revert NotPatient(patient, msg.sender);
        if (!cert.recoverable) revert CertificateRevoked(certificateId);
        cert.recoverable = false;
        emit CertificateRecoveryRevoked(certificateId, patient);
    }

    // ---- views ----

    function hospital(bytes32 id) external view returns (Hospital memory) {
        Hospital memory h = hospitals[id];
        if (h.account == address(0)) revert UnknownHospital(id);
        return h;
    }

    function certificate(uint256 certificateId) external view returns (Certificate memory) {
        Certificate memory c = certificates[certificateId];
        if (c.patient == address(0)) revert UnknownCertificate(certificateId);
        return c;
    }

    function certificatesOf(address patient) external view returns (uint256[] memory) {
        return patientCertificates[patient];
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
    ) public view returns (bytes32) {
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
