# Fabric: an ordering organisation running a Raft cluster of $ORDERERS nodes, one peer
# organisation per hospital with $PEERS peers, one channel per hospital, and the relay's
# own org (a member of every channel, no peers). deploy/up sets HOSPITALS, PEERS and
# ORDERERS before calling these functions.
# shellcheck shell=bash

FABRIC_RUN=$MEDCERT_RUN/fabric
CRYPTO=$FABRIC_RUN/crypto
ORDERER_ORG_DIR=$CRYPTO/ordererOrganizations/$DOMAIN
ORDERER_ADMIN_DIR=$ORDERER_ORG_DIR/users/Admin@$DOMAIN
# The ordering organisation's TLS CA, which issued every orderer's TLS certificate.
ORDERER_CA=$ORDERER_ORG_DIR/tlsca/tlsca.$DOMAIN-cert.pem

# Block cutting, tuned for latency on one machine: a block is cut 20 ms after its first
# transaction or at 50 transactions, whichever comes first. Raft on loopback commits in a
# few milliseconds, so the timeout is what a lone transaction waits; 20 ms keeps that
# small while bursts (10 hospitals' recoveries) still share blocks.
BATCH_TIMEOUT=${BATCH_TIMEOUT:-20ms}
BATCH_MAX_MESSAGES=${BATCH_MAX_MESSAGES:-50}
# Raft timing: a follower that hears nothing for ELECTION_TICK ticks of RAFT_TICK starts
# an election, so losing the leader stops ordering for about 2.5 s (Fabric's default, 5 s,
# is meant for orderers across a wide-area network).
RAFT_TICK=${RAFT_TICK:-250ms}
RAFT_ELECTION_TICK=${RAFT_ELECTION_TICK:-10}

# Users of each hospital org: User1 and User2 act as doctors; User$HOSPITAL_USERS is the
# key service's own identity, with which it reads its channel's blocks.
HOSPITAL_USERS=3

org_domain() { echo "hospital$1.$DOMAIN"; }
org_msp() { echo "Hospital$1MSP"; }
org_dir() { echo "$CRYPTO/peerOrganizations/$(org_domain "$1")"; }
relay_dir() { echo "$CRYPTO/peerOrganizations/relay.$DOMAIN"; }
orderer_host() { echo "orderer$1.$DOMAIN"; }
orderer_dir() { echo "$ORDERER_ORG_DIR/orderers/$(orderer_host "$1")"; }
peer_host() { echo "peer$2.$(org_domain "$1")"; }
peer_dir() { echo "$(org_dir "$1")/peers/$(peer_host "$1" "$2")"; }
peer_address() { echo "$(org_host "$1"):$(peer_port "$2")"; }
# Hospital i's TLS CA, which issued its peers' TLS certificates.
org_tls_ca() { echo "$(org_dir "$1")/tlsca/tlsca.$(org_domain "$1")-cert.pem"; }

# endorsement_policy HOSPITAL: endorsements by a majority of the hospital's peers. A
# signature policy, because Fabric's ImplicitMeta MAJORITY counts organisations, not peers:
# OutOf(k, 'M.peer', ...) with one principal per peer is satisfied only by k distinct
# peer identities (each signature satisfies one principal at most).
endorsement_policy() {
  local msp principals=() p
  msp=$(org_msp "$1")
  for ((p = 0; p < PEERS; p++)); do principals+=("'$msp.peer'"); done
  local IFS=,
  echo "OutOf($((PEERS / 2 + 1)),${principals[*]})"
}

fabric_crypto() {
  local cfg=$FABRIC_RUN/crypto-config.yaml i k
  mkdir -p "$FABRIC_RUN"
  {
    cat <<YAML
OrdererOrgs:
  - Name: Orderer
    Domain: $DOMAIN
    EnableNodeOUs: true
    Specs:
YAML
    for ((k = 0; k < ORDERERS; k++)); do
      cat <<YAML
      - Hostname: orderer$k
        SANS: [localhost, $SHARED_HOST]
YAML
    done
    cat <<YAML
PeerOrgs:
  - Name: Relay
    Domain: relay.$DOMAIN
    EnableNodeOUs: true
    Template: {Count: 0}
    Users: {Count: 1}
YAML
    for i in $(seq "$HOSPITALS"); do
      cat <<YAML
  - Name: Hospital$i
    Domain: $(org_domain "$i")
    EnableNodeOUs: true
    Template:
      Count: $PEERS
      SANS: [localhost, $(org_host "$i")]
    Users: {Count: $HOSPITAL_USERS}
YAML
    done
  } >"$cfg"
  # Private keys among them: readable by their owner only from the start.
  (umask 077 && cryptogen generate --config="$cfg" --output="$CRYPTO" >/dev/null)
}

# org_yaml NAME MSPID MSPDIR: one Organizations entry of configtx.yaml.
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
  local i=$1 msp dir k endpoints=() policy
  msp=$(org_msp "$i")
  policy=$(endorsement_policy "$i")
  dir=$FABRIC_RUN/configtx/hospital$i
  mkdir -p "$dir"
  for ((k = 0; k < ORDERERS; k++)); do endpoints+=("\"$SHARED_HOST:$(orderer_port "$k")\""); done
  endpoints=("$(IFS=,; echo "${endpoints[*]}")")
  {
    echo "Organizations:"
    cat <<YAML
  - &OrdererOrg
    Name: OrdererMSP
    ID: OrdererMSP
    MSPDir: $ORDERER_ORG_DIR/msp
    OrdererEndpoints: [${endpoints[0]}]
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
        Options:
          TickInterval: $RAFT_TICK
          ElectionTick: $RAFT_ELECTION_TICK
          HeartbeatTick: 1
          MaxInflightBlocks: 5
          SnapshotIntervalSize: 16 MB
        Consenters:
YAML
    for ((k = 0; k < ORDERERS; k++)); do
      cat <<YAML
          - Host: $SHARED_HOST
            Port: $(orderer_port "$k")
            ClientTLSCert: $(orderer_dir "$k")/tls/server.crt
            ServerTLSCert: $(orderer_dir "$k")/tls/server.crt
YAML
    done
    cat <<YAML
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
        Endorsement: {Type: Signature, Rule: "$policy"}
      Capabilities: {V2_5: true}
YAML
  } >"$dir/configtx.yaml"
  configtxgen -configPath "$dir" -profile Channel -channelID "hospital$i" \
    -outputBlock "$dir/genesis.block" 2>>"$MEDCERT_RUN/logs/configtxgen.log"
}

# start_orderer K: ordering node k (0-based), a consenter of every channel it joins. Its
# operations service also serves Prometheus metrics (among them which channels it leads).
start_orderer() {
  local k=$1 data dir
  data=$FABRIC_RUN/$(orderer_name "$k")
  dir=$(orderer_dir "$k")
  mkdir -p "$data"
  start_network_service "$(orderer_name "$k")" env \
    FABRIC_CFG_PATH="$FABRIC_HOME/config" \
    ORDERER_GENERAL_LISTENADDRESS="$SHARED_HOST" \
    ORDERER_GENERAL_LISTENPORT="$(orderer_port "$k")" \
    ORDERER_GENERAL_LOCALMSPID=OrdererMSP \
    ORDERER_GENERAL_LOCALMSPDIR="$dir/msp" \
    ORDERER_GENERAL_TLS_ENABLED=true \
    ORDERER_GENERAL_TLS_PRIVATEKEY="$dir/tls/server.key" \
    ORDERER_GENERAL_TLS_CERTIFICATE="$dir/tls/server.crt" \
    ORDERER_GENERAL_TLS_ROOTCAS="[$ORDERER_CA]" \
    ORDERER_GENERAL_CLUSTER_CLIENTCERTIFICATE="$dir/tls/server.crt" \
    ORDERER_GENERAL_CLUSTER_CLIENTPRIVATEKEY="$dir/tls/server.key" \
    ORDERER_GENERAL_CLUSTER_ROOTCAS="[$ORDERER_CA]" \
    ORDERER_GENERAL_BOOTSTRAPMETHOD=none \
    ORDERER_CHANNELPARTICIPATION_ENABLED=true \
    ORDERER_ADMIN_LISTENADDRESS="$SHARED_HOST:$(orderer_admin_port "$k")" \
    ORDERER_ADMIN_TLS_ENABLED=true \
    ORDERER_ADMIN_TLS_PRIVATEKEY="$dir/tls/server.key" \
    ORDERER_ADMIN_TLS_CERTIFICATE="$dir/tls/server.crt" \
    ORDERER_ADMIN_TLS_ROOTCAS="[$ORDERER_CA]" \
    ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED=true \
    ORDERER_ADMIN_TLS_CLIENTROOTCAS="[$ORDERER_CA]" \
    ORDERER_OPERATIONS_LISTENADDRESS="$SHARED_HOST:$(orderer_ops_port "$k")" \
    ORDERER_METRICS_PROVIDER=prometheus \
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

# peer_as HOSPITAL PEER IDENTITY ARGS...: the peer CLI acting as IDENTITY (Admin, User1,
# ...) of hospital i, against its peer p. The environment is an array, so a path with
# spaces stays one value.
peer_as() {
  local i=$1 p=$2 who=$3 dir
  shift 3
  dir=$(org_dir "$i")
  local vars=(
    FABRIC_CFG_PATH="$FABRIC_RUN/config"
    CORE_PEER_LOCALMSPID="$(org_msp "$i")"
    CORE_PEER_MSPCONFIGPATH="$dir/users/$who@$(org_domain "$i")/msp"
    CORE_PEER_ADDRESS="$(peer_address "$i" "$p")"
    CORE_PEER_TLS_ENABLED=true
    CORE_PEER_TLS_ROOTCERT_FILE="$(org_tls_ca "$i")"
    CORE_PEER_TLS_SERVERHOSTOVERRIDE="$(peer_host "$i" "$p")"
  )
  env "${vars[@]}" peer "$@"
}

# start_peer HOSPITAL PEER: peer p (0-based) of hospital i. Every peer takes its blocks
# from the ordering service itself (each is an org leader), so no peer depends on another
# to stay current; gossip only lets them find each other, which the Gateway needs to
# gather a majority's endorsements.
start_peer() {
  local i=$1 p=$2 dir address host data q others=()
  dir=$(peer_dir "$i" "$p")
  address=$(peer_address "$i" "$p")
  host=$(org_host "$i")
  data=$FABRIC_RUN/$(peer_name "$i" "$p")
  for ((q = 0; q < PEERS; q++)); do
    ((q == p)) || others+=("$(peer_address "$i" "$q")")
  done
  ((${#others[@]})) || others=("$address")
  mkdir -p "$data"
  start_network_service "$(peer_name "$i" "$p")" env \
    FABRIC_CFG_PATH="$FABRIC_RUN/config" \
    CORE_PEER_ID="$(peer_host "$i" "$p")" \
    CORE_PEER_ADDRESS="$address" \
    CORE_PEER_LISTENADDRESS="$address" \
    CORE_PEER_CHAINCODEADDRESS="$host:$(($(peer_port "$p") + 1))" \
    CORE_PEER_CHAINCODELISTENADDRESS="$host:$(($(peer_port "$p") + 1))" \
    CORE_PEER_GOSSIP_BOOTSTRAP="${others[*]}" \
    CORE_PEER_GOSSIP_EXTERNALENDPOINT="$address" \
    CORE_PEER_GOSSIP_USELEADERELECTION=false \
    CORE_PEER_GOSSIP_ORGLEADER=true \
    CORE_PEER_LOCALMSPID="$(org_msp "$i")" \
    CORE_PEER_MSPCONFIGPATH="$dir/msp" \
    CORE_PEER_TLS_ENABLED=true \
    CORE_PEER_TLS_CERT_FILE="$dir/tls/server.crt" \
    CORE_PEER_TLS_KEY_FILE="$dir/tls/server.key" \
    CORE_PEER_TLS_ROOTCERT_FILE="$dir/tls/ca.crt" \
    CORE_PEER_FILESYSTEMPATH="$data/ledger" \
    CORE_LEDGER_SNAPSHOTS_ROOTDIR="$data/snapshots" \
    CORE_OPERATIONS_LISTENADDRESS="$host:$(peer_ops_port "$p")" \
    CORE_METRICS_PROVIDER=prometheus \
    peer node start
}

# osnadmin_join HOSPITAL ORDERER: orderer k joins hospital i's channel.
osnadmin_join() {
  local i=$1 k=$2
  osnadmin channel join --channelID "hospital$i" \
    --config-block "$FABRIC_RUN/configtx/hospital$i/genesis.block" \
    -o "$SHARED_HOST:$(orderer_admin_port "$k")" --ca-file "$ORDERER_CA" \
    --client-cert "$ORDERER_ADMIN_DIR/tls/client.crt" \
    --client-key "$ORDERER_ADMIN_DIR/tls/client.key" >/dev/null
}

# peer_join HOSPITAL PEER: peer p of hospital i joins its channel.
peer_join() {
  # The orderers need a moment to elect a leader of a new channel; retried until the
  # peer can fetch the genesis block's successor stream.
  peer_as "$1" "$2" Admin channel join \
    -b "$FABRIC_RUN/configtx/hospital$1/genesis.block" >/dev/null 2>&1
}

# chaincode_tls HOSPITAL: the TLS certificate of hospital i's chaincode server, from a CA
# made for it alone whose key is deleted once it has signed: the peers trust that CA only,
# and nobody can issue another certificate they would accept. Written 0600 from the start.
chaincode_tls() {
  local i=$1 dir host
  dir=$FABRIC_RUN/chaincode/hospital$i/tls
  host=$(org_host "$i")
  (
    umask 077
    mkdir -p "$dir"
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout "$dir/ca.key" -out "$dir/ca.crt" -days 3650 \
      -subj "/CN=chaincode CA of $(org_domain "$i")" \
      -addext basicConstraints=critical,CA:TRUE,pathlen:0 \
      -addext keyUsage=critical,keyCertSign 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout "$dir/server.key" -out "$dir/server.csr" \
      -subj "/CN=chaincode.$(org_domain "$i")" 2>/dev/null
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
      -days 3650 -out "$dir/server.crt" -extfile <(printf '%s\n' \
        "subjectAltName=IP:$host,DNS:chaincode.$(org_domain "$i")" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth") 2>/dev/null
    rm -f "$dir/ca.key" "$dir/server.csr"
  )
}

# package_chaincode HOSPITAL: a ccaas package whose connection.json points the peer at
# that hospital's chaincode server over TLS, trusting its CA only; prints the package.
package_chaincode() {
  local i=$1 dir
  dir=$FABRIC_RUN/chaincode/hospital$i
  mkdir -p "$dir/src"
  jq -n --arg address "$(org_host "$i"):$CHAINCODE_BASE_PORT" \
    --rawfile root "$dir/tls/ca.crt" \
    '{address: $address, dial_timeout: "10s", tls_required: true,
      client_auth_required: false, root_cert: $root}' >"$dir/src/connection.json"
  echo "{\"type\": \"ccaas\", \"label\": \"$CHAINCODE_NAME\"}" >"$dir/metadata.json"
  tar -C "$dir/src" -czf "$dir/code.tar.gz" connection.json
  tar -C "$dir" -czf "$dir/$CHAINCODE_NAME.tar.gz" metadata.json code.tar.gz
  echo "$dir/$CHAINCODE_NAME.tar.gz"
}

# deploy_chaincode HOSPITAL: install on every peer, start the chaincode server, approve
# and commit with the majority endorsement policy.
deploy_chaincode() {
  local i=$1 pkg package_id p
  chaincode_tls "$i"
  pkg=$(package_chaincode "$i")
  package_id=$(peer_as "$i" 0 Admin lifecycle chaincode calculatepackageid "$pkg")
  for ((p = 0; p < PEERS; p++)); do
    peer_as "$i" "$p" Admin lifecycle chaincode install "$pkg" \
      >>"$MEDCERT_RUN/logs/lifecycle.log" 2>&1
  done
  echo "$package_id" >"$FABRIC_RUN/chaincode/hospital$i/package_id"
  start_chaincode "$i"
  local common=(-o "$SHARED_HOST:$(orderer_port 0)" --ordererTLSHostnameOverride "$(orderer_host 0)"
    --tls --cafile "$ORDERER_CA" --channelID "hospital$i" --name "$CHAINCODE_NAME"
    --version 1.0 --sequence 1 --signature-policy "$(endorsement_policy "$i")")
  # A new channel's Raft leader is elected a few seconds after the joins; until then the
  # orderers answer SERVICE_UNAVAILABLE, so the first transaction is retried.
  wait_until 60 "hospital$i's chaincode approval" \
    logged_to lifecycle peer_as "$i" 0 Admin lifecycle chaincode approveformyorg "${common[@]}" \
    --package-id "$package_id" --waitForEvent
  peer_as "$i" 0 Admin lifecycle chaincode commit "${common[@]}" \
    --peerAddresses "$(peer_address "$i" 0)" --tlsRootCertFiles "$(org_tls_ca "$i")" \
    --waitForEvent >>"$MEDCERT_RUN/logs/lifecycle.log" 2>&1
  # The commit was awaited on peer 0; endorsing needs the definition on a majority.
  for ((p = 1; p < PEERS; p++)); do
    wait_until 60 "hospital$i's chaincode definition on its peer $p" \
      peer_as "$i" "$p" Admin lifecycle chaincode querycommitted \
      --channelID "hospital$i" --name "$CHAINCODE_NAME"
  done
}

start_chaincode() {
  local i=$1 tls=$FABRIC_RUN/chaincode/hospital$1/tls
  is_running "chaincode$i" && return 0
  start_service "chaincode$i" env \
    CHAINCODE_SERVER_ADDRESS="$(org_host "$i"):$CHAINCODE_BASE_PORT" \
    CHAINCODE_ID="$(cat "$FABRIC_RUN/chaincode/hospital$i/package_id")" \
    CHAINCODE_TLS_CERT="$tls/server.crt" \
    CHAINCODE_TLS_KEY="$tls/server.key" \
    MEDCERT_RELAY_MSP_ID=RelayMSP \
    RUST_LOG="${RUST_LOG:-info}" \
    "$CHAINCODE_BIN"
}
