//! The gateway's failover, against stand-in gateway services over TLS: a call goes to the
//! next peer when one is down or answers UNAVAILABLE, stays with the peer that answered,
//! and a refusal is never asked again elsewhere.

use std::net::SocketAddr;

use medcert_fabric_protos::gateway::gateway_server::{Gateway as GatewayService, GatewayServer};
use medcert_fabric_protos::gateway::{
    ChaincodeEventsResponse, CommitStatusResponse, EndorseRequest, EndorseResponse,
    EvaluateRequest, EvaluateResponse, SignedChaincodeEventsRequest, SignedCommitStatusRequest,
    SubmitRequest, SubmitResponse,
};
use medcert_fabric_protos::protos::Response;
use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};
use tonic::transport::{Server, ServerTlsConfig};
use tonic::{Code, Request, Status};

use crate::{Error, Gateway, Identity, PeerEndpoint};

const SERVER_NAME: &str = "peer.test.local";

/// How a stand-in peer answers an evaluation.
#[derive(Clone, Copy)]
enum Answer {
    /// With this payload.
    Payload(&'static str),
    /// With this gRPC status.
    Fails(Code),
}

struct StandIn(Answer);

#[tonic::async_trait]
impl GatewayService for StandIn {
    async fn endorse(
        &self,
        _: Request<EndorseRequest>,
    ) -> Result<tonic::Response<EndorseResponse>, Status> {
        Err(Status::unimplemented("endorse"))
    }

    async fn submit(
        &self,
        _: Request<SubmitRequest>,
    ) -> Result<tonic::Response<SubmitResponse>, Status> {
        Err(Status::unimplemented("submit"))
    }

    async fn commit_status(
        &self,
        _: Request<SignedCommitStatusRequest>,
    ) -> Result<tonic::Response<CommitStatusResponse>, Status> {
        Err(Status::unimplemented("commit status"))
    }

    async fn evaluate(
        &self,
        _: Request<EvaluateRequest>,
    ) -> Result<tonic::Response<EvaluateResponse>, Status> {
        match self.0 {
            Answer::Payload(payload) => Ok(tonic::Response::new(EvaluateResponse {
                result: Some(Response {
                    status: 200,
                    message: String::new(),
                    payload: payload.as_bytes().to_vec(),
                }),
            })),
            Answer::Fails(code) => Err(Status::new(code, "the stand-in fails")),
        }
    }

    type ChaincodeEventsStream = tokio_stream::Empty<Result<ChaincodeEventsResponse, Status>>;

    async fn chaincode_events(
        &self,
        _: Request<SignedChaincodeEventsRequest>,
    ) -> Result<tonic::Response<Self::ChaincodeEventsStream>, Status> {
        Err(Status::unimplemented("chaincode events"))
    }
}

/// A self-signed TLS certificate for [`SERVER_NAME`]: its PEM and its key's.
fn tls_material() -> (String, String) {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = CertificateParams::new(vec![SERVER_NAME.to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

/// A running stand-in peer, on its own runtime; dropping it stops it at once, its open
/// connections included, as a killed peer would stop.
struct Peer {
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn serve(answer: Answer, (cert, key): &(String, String)) -> Peer {
    // tonic's TLS server takes rustls's process-wide provider, which is ambiguous when
    // the build also enables aws-lc-rs for another crate: choose ring, as the clients do.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = ServerTlsConfig::new().identity(tonic::transport::Identity::from_pem(cert, key));
    let router = Server::builder()
        .tls_config(tls)
        .unwrap()
        .add_service(GatewayServer::new(StandIn(answer)));
    runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        router
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
    });
    Peer {
        addr,
        runtime: Some(runtime),
    }
}

/// A port nothing listens on.
async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

fn endpoint(addr: SocketAddr, (cert, _): &(String, String)) -> PeerEndpoint {
    PeerEndpoint {
        endpoint: addr.to_string(),
        server_name: SERVER_NAME.to_owned(),
        tls_ca_pem: cert.as_bytes().to_vec(),
    }
}

fn client_identity() -> Identity {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = CertificateParams::new(vec!["doctor".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    Identity::new("TestMSP", cert.pem().into_bytes(), &key.serialize_pem()).unwrap()
}

async fn evaluate(gateway: &Gateway) -> Result<String, Error> {
    let payload = gateway
        .network("channel")
        .contract("chaincode")
        .evaluate("Version", &[])
        .await?;
    Ok(String::from_utf8(payload).unwrap())
}

#[tokio::test]
async fn a_peer_that_is_down_at_connect_time_is_passed_over() {
    let tls = tls_material();
    let second = serve(Answer::Payload("second"), &tls);
    let peers = [
        endpoint(closed_port().await, &tls),
        endpoint(second.addr, &tls),
    ];
    let gateway = Gateway::connect_any(&peers, client_identity())
        .await
        .unwrap();
    assert_eq!(evaluate(&gateway).await.unwrap(), "second");
}

#[tokio::test]
async fn calls_go_to_the_next_peer_once_the_first_stops_and_stay_there() {
    let tls = tls_material();
    let first = serve(Answer::Payload("first"), &tls);
    let second = serve(Answer::Payload("second"), &tls);
    let peers = [endpoint(first.addr, &tls), endpoint(second.addr, &tls)];
    let gateway = Gateway::connect_any(&peers, client_identity())
        .await
        .unwrap();
    assert_eq!(evaluate(&gateway).await.unwrap(), "first");

    drop(first);
    assert_eq!(evaluate(&gateway).await.unwrap(), "second");
    assert_eq!(gateway.current_peer(), second.addr.to_string());
    assert_eq!(evaluate(&gateway).await.unwrap(), "second");
}

#[tokio::test]
async fn a_peer_answering_unavailable_is_passed_over() {
    let tls = tls_material();
    let busy = serve(Answer::Fails(Code::Unavailable), &tls);
    let second = serve(Answer::Payload("second"), &tls);
    let peers = [endpoint(busy.addr, &tls), endpoint(second.addr, &tls)];
    let gateway = Gateway::connect_any(&peers, client_identity())
        .await
        .unwrap();
    assert_eq!(evaluate(&gateway).await.unwrap(), "second");
}

#[tokio::test]
async fn a_refusal_is_not_asked_again_of_another_peer() {
    let tls = tls_material();
    let refusing = serve(Answer::Fails(Code::PermissionDenied), &tls);
    let second = serve(Answer::Payload("second"), &tls);
    let peers = [endpoint(refusing.addr, &tls), endpoint(second.addr, &tls)];
    let gateway = Gateway::connect_any(&peers, client_identity())
        .await
        .unwrap();
    let err = evaluate(&gateway).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Gateway {
                code: Code::PermissionDenied,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn every_peer_down_is_unavailable_naming_the_operation() {
    let tls = tls_material();
    let only = serve(Answer::Payload("only"), &tls);
    let peers = [
        endpoint(only.addr, &tls),
        endpoint(closed_port().await, &tls),
    ];
    let gateway = Gateway::connect_any(&peers, client_identity())
        .await
        .unwrap();
    drop(only);
    let err = evaluate(&gateway).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Gateway {
                operation: "evaluation",
                code: Code::Unavailable,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn no_peer_answering_at_connect_time_names_every_one_tried() {
    let tls = tls_material();
    let peers = [
        endpoint(closed_port().await, &tls),
        endpoint(closed_port().await, &tls),
    ];
    let err = Gateway::connect_any(&peers, client_identity())
        .await
        .err()
        .unwrap();
    let shown = err.to_string();
    assert!(
        shown.contains(&peers[0].endpoint) && shown.contains(&peers[1].endpoint),
        "{shown}"
    );
    assert!(matches!(
        Gateway::connect_any(&[], client_identity()).await,
        Err(Error::NoPeers)
    ));
}
