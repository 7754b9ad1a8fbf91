//! Fabric's protobuf messages and gRPC services as medcert uses them.
//!
//! Generated from the project's own `proto/fabric` definitions (a subset of Fabric v3.1's
//! protos with the same packages and field numbers). The integration tests of
//! `medcert-chaincode` and `medcert-fabric` prove the wire format against a live peer.

/// `common`: envelopes, headers, blocks.
pub mod common {
    tonic::include_proto!("common");
}

/// `msp`: serialized identities.
pub mod msp {
    tonic::include_proto!("msp");
}

/// `orderer`: block seek positions.
pub mod orderer {
    tonic::include_proto!("orderer");
}

/// `protos`: chaincode shim, proposals, transactions, the deliver service.
pub mod protos {
    tonic::include_proto!("protos");
}

/// `gateway`: the Fabric Gateway service.
pub mod gateway {
    tonic::include_proto!("gateway");
}

/// `queryresult`: range and history query entries.
pub mod queryresult {
    tonic::include_proto!("queryresult");
}

/// `google.rpc`: the detailed status of a gRPC error.
pub mod rpc {
    tonic::include_proto!("google.rpc");
}
