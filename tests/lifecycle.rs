//! The record lifecycle on a network whose every service runs from the images that
//! deploy/images built, started with testcontainers (see support/).

mod support;

use medcert_fabric::{Gateway, Identity};
use support::ContainerNetwork;

#[tokio::test(flavor = "multi_thread")]
async fn network_of_containers_serves_the_hospital_chaincode() {
    let net = ContainerNetwork::start(2).await;
    let network = &net.network;
    for hospital in &network.fabric.hospitals {
        let doctor = &hospital.doctors[0];
        let identity = Identity::from_files(&doctor.msp_id, &doctor.cert, &doctor.key).unwrap();
        let ca = std::fs::read(&hospital.peer.tls_ca).unwrap();
        let contract =
            Gateway::connect(&hospital.peer.endpoint, &hospital.peer.host, &ca, identity)
                .await
                .unwrap()
                .network(&hospital.channel)
                .contract(&network.fabric.chaincode_name);
        let committed = contract.submit("Version", &[]).await.unwrap();
        assert_eq!(committed.result, b"0.1.0");
    }
}
