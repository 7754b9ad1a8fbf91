fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time: a build script binary may be reused for another checkout.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")?;
    let root = std::path::Path::new(&manifest_dir).join("../../proto/fabric");
    let files: Vec<_> = [
        "common/common.proto",
        "common/configtx.proto",
        "common/policies.proto",
        "msp/identities.proto",
        "msp/msp_config.proto",
        "msp/msp_principal.proto",
        "orderer/ab.proto",
        "orderer/configuration.proto",
        "orderer/etcdraft/configuration.proto",
        "peer/chaincode.proto",
        "peer/chaincode_event.proto",
        "peer/chaincode_shim.proto",
        "peer/proposal.proto",
        "peer/proposal_response.proto",
        "peer/transaction.proto",
        "peer/events.proto",
        "peer/lifecycle/lifecycle.proto",
        "peer/policy.proto",
        "gateway/gateway.proto",
        "ledger/kv_query_result.proto",
        "google/rpc/status.proto",
    ]
    .iter()
    .map(|f| root.join(f))
    .collect();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(false)
        .compile_protos(&files, &[root])?;
    Ok(())
}
