//! A channel built in memory, for tests of what checks blocks (feature `testing`): an
//! ordering organisation whose orderers are the Raft consenters, one application
//! organisation with peers and a client, the channel's configuration block, endorser
//! transactions and blocks sealed by an orderer. Every part can be built wrong on
//! purpose: another signing key, another previous hash, any certificate validity.

use std::collections::HashMap;
use std::ops::Range;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use medcert_fabric_protos::common::{
    Block, BlockData, BlockHeader, BlockMetadata, ChannelHeader, Config, ConfigEnvelope,
    ConfigGroup, ConfigPolicy, ConfigValue, Envelope, Header, HeaderType, ImplicitMetaPolicy,
    LastConfig, Metadata, MetadataSignature, MspPrincipal, MspRole, OrdererBlockMetadata, Payload,
    Policy, SignatureHeader, SignaturePolicy, SignaturePolicyEnvelope, implicit_meta_policy,
    msp_role, policy, signature_policy,
};
use medcert_fabric_protos::etcdraft::{ConfigMetadata, Consenter};
use medcert_fabric_protos::msp::{
    FabricMspConfig, FabricNodeOUs, FabricOuIdentifier, MspConfig, SerializedIdentity,
};
use medcert_fabric_protos::orderer::ConsensusType;
use medcert_fabric_protos::protos::{
    ApplicationPolicy, ChaincodeAction, ChaincodeActionPayload, ChaincodeEndorsedAction,
    ChaincodeEvent, ChaincodeHeaderExtension, ChaincodeId, ChaincodeProposalPayload, Endorsement,
    ProposalResponsePayload, Response, Transaction, TransactionAction, application_policy,
};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{DerSignature, SigningKey};
use prost::Message;
use rand::RngCore;
use sha2::{Digest, Sha256};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::EncodePem;
use x509_cert::der::pem::LineEnding;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

use super::header::header_bytes;
use super::{block_hash, data_hash};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// A validity from a day ago to a day from now.
pub fn valid_today() -> Range<SystemTime> {
    let now = SystemTime::now();
    now - DAY..now + DAY
}

/// An organisation's root CA.
pub struct TestOrg {
    /// Its MSP id.
    pub msp_id: String,
    /// Its CA certificate, PEM.
    pub ca_pem: String,
    name: Name,
    key: SigningKey,
}

/// A member of a [`TestOrg`]: its certificate and signing key.
#[derive(Clone)]
pub struct TestIdentity {
    /// Its MSP id.
    pub msp_id: String,
    /// Its common name.
    pub name: String,
    /// Its certificate, PEM.
    pub cert_pem: Vec<u8>,
    key: SigningKey,
}

fn validity(range: &Range<SystemTime>) -> Validity {
    Validity {
        not_before: Time::try_from(range.start).expect("a representable time"),
        not_after: Time::try_from(range.end).expect("a representable time"),
    }
}

impl TestOrg {
    /// A new organisation with a fresh P-256 root CA `ca.<domain>`.
    pub fn new(msp_id: &str, domain: &str) -> Self {
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let name = Name::from_str(&format!("CN=ca.{domain},O={domain}")).expect("a CA name");
        let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).expect("a P-256 key");
        let ca = CertificateBuilder::new(
            Profile::Root,
            SerialNumber::from(1u32),
            validity(&(SystemTime::now() - 3650 * DAY..SystemTime::now() + 3650 * DAY)),
            name.clone(),
            spki,
            &key,
        )
        .expect("a root CA")
        .build::<DerSignature>()
        .expect("a signed root CA");
        Self {
            msp_id: msp_id.to_owned(),
            ca_pem: ca.to_pem(LineEnding::LF).expect("PEM"),
            name,
            key,
        }
    }

    /// A member `name` with NodeOU `ou` (`peer`, `client`, `orderer`, `admin`), valid
    /// over `valid`.
    pub fn identity(&self, name: &str, ou: &str, valid: Range<SystemTime>) -> TestIdentity {
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).expect("a P-256 key");
        let serial = rand::thread_rng().next_u32();
        let cert = CertificateBuilder::new(
            Profile::Leaf {
                issuer: self.name.clone(),
                enable_key_agreement: false,
                enable_key_encipherment: false,
            },
            SerialNumber::from(serial),
            validity(&valid),
            Name::from_str(&format!("CN={name},OU={ou}")).expect("a subject"),
            spki,
            &self.key,
        )
        .expect("a member certificate")
        .build::<DerSignature>()
        .expect("a signed member certificate");
        TestIdentity {
            msp_id: self.msp_id.clone(),
            name: name.to_owned(),
            cert_pem: cert.to_pem(LineEnding::LF).expect("PEM").into_bytes(),
            key,
        }
    }

    fn msp_value(&self) -> ConfigValue {
        let ou = |name: &str| {
            Some(FabricOuIdentifier {
                certificate: self.ca_pem.clone().into_bytes(),
                organizational_unit_identifier: name.to_owned(),
            })
        };
        let msp = FabricMspConfig {
            name: self.msp_id.clone(),
            root_certs: vec![self.ca_pem.clone().into_bytes()],
            fabric_node_ous: Some(FabricNodeOUs {
                enable: true,
                client_ou_identifier: ou("client"),
                peer_ou_identifier: ou("peer"),
                admin_ou_identifier: ou("admin"),
                orderer_ou_identifier: ou("orderer"),
            }),
            ..Default::default()
        };
        value(MspConfig {
            r#type: 0,
            config: msp.encode_to_vec(),
        })
    }
}

impl TestIdentity {
    /// Its `msp.SerializedIdentity`.
    pub fn serialized(&self) -> Vec<u8> {
        SerializedIdentity {
            mspid: self.msp_id.clone(),
            id_bytes: self.cert_pem.clone(),
        }
        .encode_to_vec()
    }

    /// Its DER ECDSA signature over SHA-256 of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signature: DerSignature = self.key.sign(message);
        signature.as_bytes().to_vec()
    }
}

fn value(message: impl Message) -> ConfigValue {
    ConfigValue {
        value: message.encode_to_vec(),
        ..Default::default()
    }
}

fn role(msp_id: &str, role: msp_role::MspRoleType) -> MspPrincipal {
    MspPrincipal {
        principal_classification: 0,
        principal: MspRole {
            msp_identifier: msp_id.to_owned(),
            role: role as i32,
        }
        .encode_to_vec(),
    }
}

/// `OutOf(n, principal × count)`.
fn out_of(n: usize, principal: MspPrincipal, count: usize) -> SignaturePolicyEnvelope {
    SignaturePolicyEnvelope {
        version: 0,
        rule: Some(SignaturePolicy {
            r#type: Some(signature_policy::Type::NOutOf(signature_policy::NOutOf {
                n: n as i32,
                rules: vec![
                    SignaturePolicy {
                        r#type: Some(signature_policy::Type::SignedBy(0)),
                    };
                    count
                ],
            })),
        }),
        identities: vec![principal],
    }
}

fn signature_policy(envelope: SignaturePolicyEnvelope) -> ConfigPolicy {
    ConfigPolicy {
        policy: Some(Policy {
            r#type: policy::PolicyType::Signature as i32,
            value: envelope.encode_to_vec(),
        }),
        ..Default::default()
    }
}

fn implicit_meta(rule: implicit_meta_policy::Rule, sub_policy: &str) -> ConfigPolicy {
    ConfigPolicy {
        policy: Some(Policy {
            r#type: policy::PolicyType::ImplicitMeta as i32,
            value: ImplicitMetaPolicy {
                sub_policy: sub_policy.to_owned(),
                rule: rule as i32,
            }
            .encode_to_vec(),
        }),
        ..Default::default()
    }
}

fn timestamp(time: SystemTime) -> prost_types::Timestamp {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("a time after 1970");
    prost_types::Timestamp {
        seconds: since.as_secs() as i64,
        nanos: since.subsec_nanos() as i32,
    }
}

fn envelope(channel_header: ChannelHeader, signature_header: Vec<u8>, data: Vec<u8>) -> Envelope {
    Envelope {
        payload: Payload {
            header: Some(Header {
                channel_header: channel_header.encode_to_vec(),
                signature_header,
            }),
            data,
        }
        .encode_to_vec(),
        signature: Vec::new(),
    }
}

/// A channel: its organisations, members and blocks (block 0 its configuration).
pub struct TestChannel {
    /// The channel's name.
    pub channel: String,
    /// The ordering organisation.
    pub orderer_org: TestOrg,
    /// Its orderers, the Raft consenters.
    pub orderers: Vec<TestIdentity>,
    /// The application organisation.
    pub org: TestOrg,
    /// Its peers.
    pub peers: Vec<TestIdentity>,
    /// Its client.
    pub client: TestIdentity,
    /// The chaincode the transactions invoke.
    pub chaincode: String,
    blocks: Vec<Block>,
    /// The last configuration block's number.
    last_config: u64,
}

impl TestChannel {
    /// Channel `channel` of organisation `msp_id` with `peers` peers and three orderers,
    /// every certificate valid today, chaincode `hospital`.
    pub fn new(channel: &str, msp_id: &str, peers: usize) -> Self {
        let orderer_org = TestOrg::new("OrdererMSP", "medcert.local");
        let orderers = (0..3)
            .map(|i| {
                orderer_org.identity(
                    &format!("orderer{i}.medcert.local"),
                    "orderer",
                    valid_today(),
                )
            })
            .collect();
        let domain = format!("{channel}.medcert.local");
        let org = TestOrg::new(msp_id, &domain);
        let peers = (0..peers)
            .map(|i| org.identity(&format!("peer{i}.{domain}"), "peer", valid_today()))
            .collect();
        let client = org.identity(&format!("User1@{domain}"), "client", valid_today());
        let mut test = Self {
            channel: channel.to_owned(),
            orderer_org,
            orderers,
            org,
            peers,
            client,
            chaincode: "hospital".into(),
            blocks: Vec::new(),
            last_config: 0,
        };
        let data = test.config_data();
        test.blocks.push(Block {
            header: Some(BlockHeader {
                number: 0,
                previous_hash: Vec::new(),
                data_hash: data_hash(&data).to_vec(),
            }),
            data: Some(data),
            metadata: Some(BlockMetadata {
                metadata: vec![Vec::new(); 5],
            }),
        });
        test
    }

    /// Orders a configuration block whose consenters are `consenters` (sealed by the
    /// first orderer of the configuration before it); they order the blocks after it.
    pub fn reconfigure(&mut self, consenters: Vec<TestIdentity>) -> &Block {
        let sealer = self.orderers[0].clone();
        self.orderers = consenters;
        let data = self.config_data();
        let mut block = self.next_block(data.data);
        self.last_config = block.header.as_ref().expect("a header").number;
        Self::seal_as(&mut block, self.last_config, &sealer, &sealer);
        self.push(block)
    }

    /// The blocks so far.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// The validation parameter (`protos.ApplicationPolicy`) of a chaincode definition
    /// that needs `n` distinct peers of the organisation.
    pub fn peers_policy(&self, n: usize) -> Vec<u8> {
        let principal = role(&self.org.msp_id, msp_role::MspRoleType::Peer);
        ApplicationPolicy {
            r#type: Some(application_policy::Type::SignaturePolicy(out_of(
                n, principal, n,
            ))),
        }
        .encode_to_vec()
    }

    /// The validation parameter of a chaincode definition that takes the channel's
    /// default, `/Channel/Application/Endorsement`.
    pub fn channel_policy(&self) -> Vec<u8> {
        ApplicationPolicy {
            r#type: Some(application_policy::Type::ChannelConfigPolicyReference(
                "/Channel/Application/Endorsement".into(),
            )),
        }
        .encode_to_vec()
    }

    /// The data of a configuration block: the channel's configuration with the present
    /// orderers as consenters.
    fn config_data(&self) -> BlockData {
        let orderer_msp = &self.orderer_org.msp_id;
        let consenters = self
            .orderers
            .iter()
            .map(|o| Consenter {
                host: "127.0.0.1".into(),
                port: 7050,
                client_tls_cert: o.cert_pem.clone(),
                server_tls_cert: o.cert_pem.clone(),
            })
            .collect();
        let orderer_org = ConfigGroup {
            values: HashMap::from([("MSP".into(), self.orderer_org.msp_value())]),
            policies: HashMap::from([(
                "Writers".into(),
                signature_policy(out_of(
                    1,
                    role(orderer_msp, msp_role::MspRoleType::Member),
                    1,
                )),
            )]),
            ..Default::default()
        };
        let orderer = ConfigGroup {
            groups: HashMap::from([(orderer_msp.clone(), orderer_org)]),
            values: HashMap::from([(
                "ConsensusType".into(),
                value(ConsensusType {
                    r#type: "etcdraft".into(),
                    metadata: ConfigMetadata { consenters }.encode_to_vec(),
                }),
            )]),
            policies: HashMap::from([(
                "BlockValidation".into(),
                implicit_meta(implicit_meta_policy::Rule::Any, "Writers"),
            )]),
            ..Default::default()
        };
        let msp = &self.org.msp_id;
        let application_org = ConfigGroup {
            values: HashMap::from([("MSP".into(), self.org.msp_value())]),
            policies: HashMap::from([(
                "Endorsement".into(),
                signature_policy(out_of(1, role(msp, msp_role::MspRoleType::Peer), 1)),
            )]),
            ..Default::default()
        };
        let application = ConfigGroup {
            groups: HashMap::from([(msp.clone(), application_org)]),
            policies: HashMap::from([(
                "Endorsement".into(),
                implicit_meta(implicit_meta_policy::Rule::Majority, "Endorsement"),
            )]),
            ..Default::default()
        };
        let config = ConfigEnvelope {
            config: Some(Config {
                sequence: 0,
                channel_group: Some(ConfigGroup {
                    groups: HashMap::from([
                        ("Orderer".into(), orderer),
                        ("Application".into(), application),
                    ]),
                    ..Default::default()
                }),
            }),
        };
        let header = ChannelHeader {
            r#type: HeaderType::Config as i32,
            channel_id: self.channel.clone(),
            timestamp: Some(timestamp(SystemTime::now() - DAY / 2)),
            ..Default::default()
        };
        BlockData {
            data: vec![envelope(header, Vec::new(), config.encode_to_vec()).encode_to_vec()],
        }
    }

    /// An endorser transaction of the chaincode, created by `creator` at `time`,
    /// endorsed by `endorsers`, emitting event `name` with `payload`: its id and envelope.
    pub fn transaction(
        &self,
        creator: &TestIdentity,
        endorsers: &[&TestIdentity],
        time: SystemTime,
        (name, payload): (&str, &[u8]),
    ) -> (String, Vec<u8>) {
        let mut nonce = vec![0; 24];
        rand::thread_rng().fill_bytes(&mut nonce);
        let creator_bytes = creator.serialized();
        let tx_id = hex::encode(
            Sha256::new()
                .chain_update(&nonce)
                .chain_update(&creator_bytes)
                .finalize(),
        );
        let chaincode_id = Some(ChaincodeId {
            name: self.chaincode.clone(),
            ..Default::default()
        });
        let channel_header = ChannelHeader {
            r#type: HeaderType::EndorserTransaction as i32,
            channel_id: self.channel.clone(),
            tx_id: tx_id.clone(),
            timestamp: Some(timestamp(time)),
            extension: ChaincodeHeaderExtension {
                chaincode_id: chaincode_id.clone(),
            }
            .encode_to_vec(),
            ..Default::default()
        }
        .encode_to_vec();
        let signature_header = SignatureHeader {
            creator: creator_bytes,
            nonce,
        }
        .encode_to_vec();
        let proposal = ChaincodeProposalPayload {
            input: name.as_bytes().to_vec(),
            transient_map: HashMap::new(),
        }
        .encode_to_vec();
        let action = ChaincodeAction {
            events: ChaincodeEvent {
                chaincode_id: self.chaincode.clone(),
                tx_id: tx_id.clone(),
                event_name: name.to_owned(),
                payload: payload.to_vec(),
            }
            .encode_to_vec(),
            response: Some(Response {
                status: 200,
                ..Default::default()
            }),
            chaincode_id,
        };
        let response_payload = ProposalResponsePayload {
            proposal_hash: Sha256::new()
                .chain_update(&channel_header)
                .chain_update(&signature_header)
                .chain_update(&proposal)
                .finalize()
                .to_vec(),
            extension: action.encode_to_vec(),
        }
        .encode_to_vec();
        let endorsements = endorsers
            .iter()
            .map(|endorser| {
                let identity = endorser.serialized();
                Endorsement {
                    signature: endorser.sign(&[response_payload.as_slice(), &identity].concat()),
                    endorser: identity,
                }
            })
            .collect();
        let transaction = Transaction {
            actions: vec![TransactionAction {
                header: signature_header.clone(),
                payload: ChaincodeActionPayload {
                    chaincode_proposal_payload: proposal,
                    action: Some(ChaincodeEndorsedAction {
                        proposal_response_payload: response_payload,
                        endorsements,
                    }),
                }
                .encode_to_vec(),
            }],
        };
        let payload = Payload {
            header: Some(Header {
                channel_header,
                signature_header,
            }),
            data: transaction.encode_to_vec(),
        }
        .encode_to_vec();
        let envelope = Envelope {
            signature: creator.sign(&payload),
            payload,
        };
        (tx_id, envelope.encode_to_vec())
    }

    /// The next block holding `envelopes`, linked to the last one, every transaction
    /// marked VALID, not yet sealed ([`TestChannel::seal`]).
    pub fn next_block(&self, envelopes: Vec<Vec<u8>>) -> Block {
        let last = self
            .blocks
            .last()
            .and_then(|b| b.header.as_ref())
            .expect("block 0");
        let filter = vec![0; envelopes.len()];
        let data = BlockData { data: envelopes };
        Block {
            header: Some(BlockHeader {
                number: last.number + 1,
                previous_hash: block_hash(last).to_vec(),
                data_hash: data_hash(&data).to_vec(),
            }),
            data: Some(data),
            metadata: Some(BlockMetadata {
                metadata: vec![Vec::new(), Vec::new(), filter, Vec::new(), Vec::new()],
            }),
        }
    }

    /// Signs `block` (its header as it is now, naming the channel's last configuration
    /// block) as `signer` claims, with `key`'s key: the same identity for a genuine
    /// signature, another for a forged one.
    pub fn seal(&self, block: &mut Block, signer: &TestIdentity, key: &TestIdentity) {
        Self::seal_as(block, self.last_config, signer, key);
    }

    fn seal_as(block: &mut Block, last_config: u64, signer: &TestIdentity, key: &TestIdentity) {
        let value = OrdererBlockMetadata {
            last_config: Some(LastConfig { index: last_config }),
            consenter_metadata: Vec::new(),
        }
        .encode_to_vec();
        let signature_header = SignatureHeader {
            creator: signer.serialized(),
            nonce: vec![7; 24],
        }
        .encode_to_vec();
        let header = header_bytes(block.header.as_ref().expect("a header"));
        let signature = key.sign(&[value.as_slice(), &signature_header, &header].concat());
        let metadata = Metadata {
            value,
            signatures: vec![MetadataSignature {
                signature_header,
                signature,
                identifier_header: Vec::new(),
            }],
        };
        block.metadata.get_or_insert_with(Default::default).metadata[0] = metadata.encode_to_vec();
    }

    /// Appends `block` as the channel's next one.
    pub fn push(&mut self, block: Block) -> &Block {
        self.blocks.push(block);
        self.blocks.last().expect("just pushed")
    }

    /// Orders `envelopes` into the next block, sealed by the first orderer.
    pub fn order(&mut self, envelopes: Vec<Vec<u8>>) -> &Block {
        let mut block = self.next_block(envelopes);
        let orderer = &self.orderers[0];
        self.seal(&mut block, orderer, orderer);
        self.push(block)
    }
}
