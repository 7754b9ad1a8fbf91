# Fabric: one orderer org with a single Raft orderer, one peer org per hospital, one
# channel per hospital, and the relay's own org (a member of every channel, no peers).
# shellcheck shell=bash

FABRIC_RUN=$MEDCERT_RUN/fabric
CRYPTO=$FABRIC_RUN/crypto
ORDERER_DIR=$CRYPTO/ordererOrganizations/$DOMAIN/orderers/orderer.$DOMAIN
ORDERER_ADMIN_DIR=$CRYPTO/ordererOrganizations/$DOMAIN/users/Admin@$DOMAIN
ORDERER_CA=$ORDERER_DIR/tls/ca.crt

# Block cutting, tuned for latency on one machine: a block is cut 20 ms after its first
# transaction or at 50 transactions, whichever comes first. A single Raft node commits in
# about a millisecond, so the timeout is what a lone transaction waits; 20 ms keeps that
# small while bursts (10 hospitals' recoveries) still share blocks.
BATCH_TIMEOUT=${BATCH_TIMEOUT:-20ms}
BATCH_MAX_MESSAGES=${BATCH_MAX_MESSAGES:-50}

# Users of each hospital org: User1 and User2 act as doctors; User$HOSPITAL_USERS is the
# key service's own identity, with which it reads its channel's blocks.
HOSPITAL_USERS=3

org_domain() { echo "hospital$1.$DOMAIN"; }
org_msp() { echo "Hospital$1MSP"; }
org_dir() { echo "$CRYPTO/peerOrganizations/$(org_domain "$1")"; }
relay_dir() { echo "$CRYPTO/peerOrganizations/relay.$DOMAIN"; }

fabric_crypto() {
  local n=$1 cfg=$FABRIC_RUN/crypto-config.yaml
  mkdir -p "$FABRIC_RUN"
  {
    cat <<YAML
OrdererOrgs:
  - Name: Orderer
    Domain: $DOMAIN
    EnableNodeOUs: true
    Specs:
      - Hostname: orderer
        SANS: [localhost, 127.0.0.1]
PeerOrgs:
  - Name: Relay
    Domain: relay.$DOMAIN
    EnableNodeOUs: true
    Template: {Count: 0}
    Users: {Count: 1}
YAML
    for i in $(seq "$n"); do
      cat <<YAML
  - Name: Hospital$i
    Domain: $(org_domain "$i")
    EnableNodeOUs: true
    Template:
      Count: 1
      SANS: [localhost, 127.0.0.1]
    Users: {Count: $HOSPITAL_USERS}
YAML
    done
  } >"$cfg"
  cryptogen generate --config="$cfg" --output="$CRYPTO" >/dev/null
}

# org_yaml NAME MSPID MSPDIR [ANCHOR]: one Organizations entry of configtx.yaml.
org_yaml() {
  cat <<YAML
  - &$1
    Name: $2
    ID: $2
    MSPDir: $3
    Policies:
      Readers: {Type: Signature, Rule: "OR('$2.member')"}
      Writers: {Type: Signature, Rule: "OR('$2.member')"}
      Admins: {Type: Signature, Rule: "OR('$2.admin')"}
      Endorsement: {Type: Signature, Rule: "OR('$2.peer')"}
YAML
}

# configtx_for HOSPITAL: the channel profile of hospital i's own channel.
configtx_for() {
  local i=$1 msp dir
  msp=$(org_msp "$i")
  dir=$FABRIC_RUN/configtx/hospital$i
  mkdir -p "$dir"
  {
    echo "Organizations:"
    cat <<YAML
  - &OrdererOrg
    Name: OrdererMSP
    ID: OrdererMSP
    MSPDir: $CRYPTO/ordererOrganizations/$DOMAIN/msp
    OrdererEndpoints: ["127.0.0.1:$ORDERER_PORT"]
    Policies:
      Readers: {Type: Signature, Rule: "OR('OrdererMSP.member')"}
      Writers: {Type: Signature, Rule: "OR('OrdererMSP.member')"}
      Admins: {Type: Signature, Rule: "OR('OrdererMSP.admin')"}
YAML
    org_yaml Hospital "$msp" "$(org_dir "$i")/msp"
    org_yaml Relay RelayMSP "$(relay_dir)/msp"
    cat <<YAML
Profiles:
  Channel:
    Policies:
      Readers: {Type: ImplicitMeta, Rule: "ANY Readers"}
      Writers: {Type: ImplicitMeta, Rule: "ANY Writers"}
      Admins: {Type: ImplicitMeta, Rule: "MAJORITY Admins"}
    Capabilities: {V3_0: true}
    Orderer:
      OrdererType: etcdraft
      BatchTimeout: $BATCH_TIMEOUT
      BatchSize:
        MaxMessageCount: $BATCH_MAX_MESSAGES
        AbsoluteMaxBytes: 16 MB
        PreferredMaxBytes: 2 MB
      EtcdRaft:
        Consenters:
          - Host: 127.0.0.1
            Port: $ORDERER_PORT
            ClientTLSCert: $ORDERER_DIR/tls/server.crt
            ServerTLSCert: $ORDERER_DIR/tls/server.crt
      Organizations: [*OrdererOrg]
      Policies:
        Readers: {Type: ImplicitMeta, Rule: "ANY Readers"}
        Writers: {Type: ImplicitMeta, Rule: "ANY Writers"}
        Admins: {Type: ImplicitMeta, Rule: "MAJORITY Admins"}
        BlockValidation: {Type: ImplicitMeta, Rule: "ANY Writers"}
      Capabilities: {V2_0: true}
    Application:
      Organizations: [*Hospital, *Relay]
      # The hospital alone governs its ledger's chaincode: the relay org has no peers.
      Policies:
        Readers: {Type: ImplicitMeta, Rule: "ANY Readers"}
        Writers: {Type: ImplicitMeta, Rule: "ANY Writers"}
        Admins: {Type: Signature, Rule: "OR('$msp.admin')"}
        LifecycleEndorsement: {Type: Signature, Rule: "OR('$msp.peer')"}
        Endorsement: {Type: Signature, Rule: "OR('$msp.peer')"}
      Capabilities: {V2_5: true}
YAML
  } >"$dir/configtx.yaml"
  configtxgen -configPath "$dir" -profile Channel -channelID "hospital$i" \
    -outputBlock "$dir/genesis.block" 2>>"$MEDCERT_RUN/logs/configtxgen.log"
}

start_orderer() {
  local data=$FABRIC_RUN/orderer
  mkdir -p "$data"
  start_network_service orderer env \
    FABRIC_CFG_PATH="$FABRIC_HOME/config" \
    ORDERER_GENERAL_LISTENADDRESS=127.0.0.1 \
    ORDERER_GENERAL_LISTENPORT="$ORDERER_PORT" \
    ORDERER_GENERAL_LOCALMSPID=OrdererMSP \
    ORDERER_GENERAL_LOCALMSPDIR="$ORDERER_DIR/msp" \
    ORDERER_GENERAL_TLS_ENABLED=true \
    ORDERER_GENERAL_TLS_PRIVATEKEY="$ORDERER_DIR/tls/server.key" \
    ORDERER_GENERAL_TLS_CERTIFICATE="$ORDERER_DIR/tls/server.crt" \
    ORDERER_GENERAL_TLS_ROOTCAS="[$ORDERER_CA]" \
    ORDERER_GENERAL_CLUSTER_CLIENTCERTIFICATE="$ORDERER_DIR/tls/server.crt" \
    ORDERER_GENERAL_CLUSTER_CLIENTPRIVATEKEY="$ORDERER_DIR/tls/server.key" \
    ORDERER_GENERAL_CLUSTER_ROOTCAS="[$ORDERER_CA]" \
    ORDERER_GENERAL_BOOTSTRAPMETHOD=none \
    ORDERER_CHANNELPARTICIPATION_ENABLED=true \
    ORDERER_ADMIN_LISTENADDRESS="127.0.0.1:$ORDERER_ADMIN_PORT" \
    ORDERER_ADMIN_TLS_ENABLED=true \
    ORDERER_ADMIN_TLS_PRIVATEKEY="$ORDERER_DIR/tls/server.key" \
    ORDERER_ADMIN_TLS_CERTIFICATE="$ORDERER_DIR/tls/server.crt" \
    ORDERER_ADMIN_TLS_ROOTCAS="[$ORDERER_CA]" \
    ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED=true \
    ORDERER_ADMIN_TLS_CLIENTROOTCAS="[$ORDERER_CA]" \
    ORDERER_OPERATIONS_LISTENADDRESS="127.0.0.1:$ORDERER_OPS_PORT" \
    ORDERER_FILELEDGER_LOCATION="$data/ledger" \
    ORDERER_CONSENSUS_WALDIR="$data/etcdraft/wal" \
    ORDERER_CONSENSUS_SNAPDIR="$data/etcdraft/snapshot" \
    orderer
}

# The peer configuration: the release's core.yaml with the chaincode-as-a-service builder
# pointed at deploy/ccaas; everything else is set per peer through the environment.
write_peer_config() {
  mkdir -p "$FABRIC_RUN/config"
  # No Docker endpoint: chaincode runs as a service, and an endpoint would register a
  # Docker health check that keeps the peer unhealthy.
  sed -e "s#/opt/hyperledger/ccaas_builder#$DEPLOY_DIR/ccaas#" \
    -e "s#^  endpoint: unix:///var/run/docker.sock#  endpoint:#" "$FABRIC_HOME/config/core.yaml" \
    >"$FABRIC_RUN/config/core.yaml"
}

# peer_as HOSPITAL IDENTITY ARGS...: the peer CLI acting as IDENTITY (Admin, User1, ...)
# of hospital i, against its peer. The environment is an array, so a path with spaces
# stays one value.
peer_as() {
  local i=$1 who=$2 dir org_host
  shift 2
  dir=$(org_dir "$i")
  org_host=$(org_domain "$i")
  local vars=(
    FABRIC_CFG_PATH="$FABRIC_RUN/config"
    CORE_PEER_LOCALMSPID="$(org_msp "$i")"
    CORE_PEER_MSPCONFIGPATH="$dir/users/$who@$org_host/msp"
    CORE_PEER_ADDRESS="127.0.0.1:$(peer_port "$i")"
    CORE_PEER_TLS_ENABLED=true
    CORE_PEER_TLS_ROOTCERT_FILE="$dir/peers/peer0.$org_host/tls/ca.crt"
    CORE_PEER_TLS_SERVERHOSTOVERRIDE="peer0.$org_host"
  )
  env "${vars[@]}" peer "$@"
}

start_peer() {
  local i=$1 dir port peer_dir data
  dir=$(org_dir "$i")
  port=$(peer_port "$i")
  peer_dir=$dir/peers/peer0.$(org_domain "$i")
  data=$FABRIC_RUN/peer$i
  mkdir -p "$data"
  start_network_service "peer$i" env \
    FABRIC_CFG_PATH="$FABRIC_RUN/config" \
    CORE_PEER_ID="peer0.$(org_domain "$i")" \
    CORE_PEER_ADDRESS="127.0.0.1:$port" \
    CORE_PEER_LISTENADDRESS="127.0.0.1:$port" \
    CORE_PEER_CHAINCODEADDRESS="127.0.0.1:$((port + 1))" \
    CORE_PEER_CHAINCODELISTENADDRESS="127.0.0.1:$((port + 1))" \
    CORE_PEER_GOSSIP_BOOTSTRAP="127.0.0.1:$port" \
    CORE_PEER_GOSSIP_EXTERNALENDPOINT="127.0.0.1:$port" \
    CORE_PEER_GOSSIP_USELEADERELECTION=false \
    CORE_PEER_GOSSIP_ORGLEADER=true \
    CORE_PEER_LOCALMSPID="$(org_msp "$i")" \
    CORE_PEER_MSPCONFIGPATH="$peer_dir/msp" \
    CORE_PEER_TLS_ENABLED=true \
    CORE_PEER_TLS_CERT_FILE="$peer_dir/tls/server.crt" \
    CORE_PEER_TLS_KEY_FILE="$peer_dir/tls/server.key" \
    CORE_PEER_TLS_ROOTCERT_FILE="$peer_dir/tls/ca.crt" \
    CORE_PEER_FILESYSTEMPATH="$data/ledger" \
    CORE_LEDGER_SNAPSHOTS_ROOTDIR="$data/snapshots" \
    CORE_OPERATIONS_LISTENADDRESS="127.0.0.1:$(peer_ops_port "$i")" \
    peer node start
}

osnadmin_join() {
  local i=$1
  osnadmin channel join --channelID "hospital$i" \
    --config-block "$FABRIC_RUN/configtx/hospital$i/genesis.block" \
    -o "127.0.0.1:$ORDERER_ADMIN_PORT" --ca-file "$ORDERER_CA" \
    --client-cert "$ORDERER_ADMIN_DIR/tls/client.crt" \
    --client-key "$ORDERER_ADMIN_DIR/tls/client.key" >/dev/null
}

peer_join() {
  local i=$1
  # The orderer needs a moment to elect itself leader of a new channel; retry until
  # the peer can fetch the genesis block's successor stream.
  peer_as "$i" Admin channel join \
    -b "$FABRIC_RUN/configtx/hospital$i/genesis.block" >/dev/null 2>&1
}

# package_chaincode HOSPITAL: a ccaas package whose connection.json points the peer at
# that hospital's chaincode server; prints the package file.
package_chaincode() {
  local i=$1 dir
  dir=$FABRIC_RUN/chaincode/hospital$i
  mkdir -p "$dir/src"
  cat >"$dir/src/connection.json" <<JSON
{"address": "127.0.0.1:$(chaincode_port "$i")", "dial_timeout": "10s", "tls_required": false}
JSON
  echo "{\"type\": \"ccaas\", \"label\": \"$CHAINCODE_NAME\"}" >"$dir/metadata.json"
  tar -C "$dir/src" -czf "$dir/code.tar.gz" connection.json
  tar -C "$dir" -czf "$dir/$CHAINCODE_NAME.tar.gz" metadata.json code.tar.gz
  echo "$dir/$CHAINCODE_NAME.tar.gz"
}

# deploy_chaincode HOSPITAL: install, start the chaincode server, approve and commit.
deploy_chaincode() {
  local i=$1 pkg package_id policy
  pkg=$(package_chaincode "$i")
  package_id=$(peer_as "$i" Admin lifecycle chaincode calculatepackageid "$pkg")
  peer_as "$i" Admin lifecycle chaincode install "$pkg" \
    >>"$MEDCERT_RUN/logs/lifecycle.log" 2>&1
  echo "$package_id" >"$FABRIC_RUN/chaincode/hospital$i/package_id"
  start_chaincode "$i"
  policy="OR('$(org_msp "$i").peer')"
  local common=(-o "127.0.0.1:$ORDERER_PORT" --ordererTLSHostnameOverride "orderer.$DOMAIN"
    --tls --cafile "$ORDERER_CA" --channelID "hospital$i" --name "$CHAINCODE_NAME"
    --version 1.0 --sequence 1 --signature-policy "$policy")
  # A new channel's Raft leader is elected about a second after the join; until then
  # the orderer answers SERVICE_UNAVAILABLE, so the first transaction is retried.
  wait_until 60 "hospital$i's chaincode approval" \
    logged_to lifecycle peer_as "$i" Admin lifecycle chaincode approveformyorg "${common[@]}" \
    --package-id "$package_id" --waitForEvent
  peer_as "$i" Admin lifecycle chaincode commit "${common[@]}" \
    --peerAddresses "127.0.0.1:$(peer_port "$i")" \
    --tlsRootCertFiles "$(org_dir "$i")/peers/peer0.$(org_domain "$i")/tls/ca.crt" \
    --waitForEvent >>"$MEDCERT_RUN/logs/lifecycle.log" 2>&1
}

start_chaincode() {
  local i=$1
  is_running "chaincode$i" && return 0
  start_service "chaincode$i" env \
    CHAINCODE_SERVER_ADDRESS="127.0.0.1:$(chaincode_port "$i")" \
    CHAINCODE_ID="$(cat "$FABRIC_RUN/chaincode/hospital$i/package_id")" \
    MEDCERT_RELAY_MSP_ID=RelayMSP \
    RUST_LOG="${RUST_LOG:-info}" \
    "$CHAINCODE_BIN"
}
