#!/usr/bin/env bash
# Prints the network description (JSON) of a network started by deploy/up.
#   S3_SECRET_KEY=... describe.sh HOSPITALS PEERS ORDERERS
# Secrets come from the environment and from files, never from arguments (which every
# local user can read with ps): the S3 key from S3_SECRET_KEY, the accounts' keys from
# their files (lib/accounts.sh).
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=fabric.sh
source "$DEPLOY_DIR/lib/fabric.sh"
# shellcheck source=keys.sh
source "$DEPLOY_DIR/lib/keys.sh"
# shellcheck source=accounts.sh
source "$DEPLOY_DIR/lib/accounts.sh"
HOSPITALS=$1
PEERS=$2
ORDERERS=$3
: "${S3_SECRET_KEY:?describe.sh reads the S3 secret key from S3_SECRET_KEY}"

identity() { # MSPID USERDIR
  local signcert
  signcert=$(the_one "$2"/msp/signcerts/*.pem)
  jq -n --arg msp "$1" --arg cert "$signcert" --arg key "$2/msp/keystore/priv_sk" \
    '{msp_id: $msp, cert: $cert, key: $key}'
}

orderer() {
  local k=$1
  jq -n --arg endpoint "$SHARED_HOST:$(orderer_port "$k")" --arg host "$(orderer_host "$k")" \
    --arg tls_ca "$ORDERER_CA" --arg admin "$SHARED_HOST:$(orderer_admin_port "$k")" \
    --arg ops "http://$SHARED_HOST:$(orderer_ops_port "$k")" \
    '{endpoint: $endpoint, host: $host, tls_ca: $tls_ca, admin_endpoint: $admin,
      operations_url: $ops}'
}

peer() {
  local i=$1 p=$2
  jq -n --arg endpoint "$(peer_address "$i" "$p")" --arg host "$(peer_host "$i" "$p")" \
    --arg tls_ca "$(org_tls_ca "$i")" \
    --arg ops "http://$(org_host "$i"):$(peer_ops_port "$p")" \
    '{endpoint: $endpoint, host: $host, tls_ca: $tls_ca, operations_url: $ops}'
}

hospital() {
  local i=$1 dir domain msp_ca host peers p
  dir=$(org_dir "$i")
  domain=$(org_domain "$i")
  host=$(org_host "$i")
  msp_ca=$(the_one "$dir"/msp/cacerts/*.pem)
  peers=$(for ((p = 0; p < PEERS; p++)); do peer "$i" "$p"; done | jq -s .)
  jq -n \
    --arg id "hospital$i" --arg msp "$(org_msp "$i")" \
    --argjson peers "$peers" \
    --arg msp_ca "$msp_ca" \
    --arg cc "$host:$CHAINCODE_BASE_PORT" \
    --argjson eth $((1 + i)) \
    --argjson admin "$(identity "$(org_msp "$i")" "$dir/users/Admin@$domain")" \
    --argjson d1 "$(identity "$(org_msp "$i")" "$dir/users/User1@$domain")" \
    --argjson d2 "$(identity "$(org_msp "$i")" "$dir/users/User2@$domain")" \
    --arg keys "$host:$KEY_SERVICE_BASE_PORT" --arg keys_host "$(key_service_host "$i")" \
    --arg keys_ca "$(key_service_ca "$i")" \
    '{id: $id, msp_id: $msp, msp_ca: $msp_ca, channel: $id, peers: $peers,
      chaincode_address: $cc, eth_account: $eth, admin: $admin, doctors: [$d1, $d2],
      key_service: {endpoint: $keys, host: $keys_host, tls_ca: $keys_ca}}'
}

# account NAME: the account deploy/up generated under NAME; its key is read from its file.
account() {
  jq -n --arg address "$(cat "$(eth_address_file "$1")")" --rawfile key "$(eth_key_file "$1")" \
    '{address: $address, private_key: ($key | rtrimstr("\n"))}'
}

accounts=$(for name in $(account_names); do account "$name"; done | jq -s .)
orderer_list=$(for ((k = 0; k < ORDERERS; k++)); do orderer "$k"; done | jq -s .)
hospital_list=$(for i in $(seq "$HOSPITALS"); do hospital "$i"; done | jq -s .)

# The accounts' keys and the S3 secret reach jq through its input and environment.
jq -n \
  --arg bin_dir "$BIN_DIR" --arg run_dir "$MEDCERT_RUN" \
  --arg rpc "http://$SHARED_HOST:$ANVIL_PORT" --argjson chain_id "$ANVIL_CHAIN_ID" \
  --arg ipfs "http://$SHARED_HOST:$KUBO_API_PORT" \
  --arg s3 "http://$SHARED_HOST:$S3_PORT" --arg region "$S3_REGION" --arg bucket "$S3_BUCKET" \
  --arg access "$S3_ACCESS_KEY" \
  --argjson orderers "$orderer_list" \
  --arg cc "$CHAINCODE_NAME" \
  --argjson relay "$(identity RelayMSP "$(relay_dir)/users/User1@relay.$DOMAIN")" \
  --argjson hospitals "$hospital_list" \
  --slurpfile accounts /dev/stdin \
  '{bin_dir: $bin_dir, run_dir: $run_dir,
    ethereum: {rpc_url: $rpc, chain_id: $chain_id, accounts: $accounts[0], contract_address: null},
    ipfs: {api_url: $ipfs},
    s3: {endpoint: $s3, region: $region, bucket: $bucket, access_key_id: $access,
         secret_access_key: env.S3_SECRET_KEY},
    fabric: {orderers: $orderers, chaincode_name: $cc, relay: $relay, hospitals: $hospitals}}' \
  <<<"$accounts"
