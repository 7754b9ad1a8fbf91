#!/usr/bin/env bash
# Prints the network description (JSON) of a network started by deploy/up.
#   describe.sh HOSPITALS S3_SECRET_KEY
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=fabric.sh
source "$DEPLOY_DIR/lib/fabric.sh"
# shellcheck source=keys.sh
source "$DEPLOY_DIR/lib/keys.sh"
hospitals=$1
s3_secret=$2

identity() { # MSPID USERDIR
  local signcert
  signcert=$(the_one "$2"/msp/signcerts/*.pem)
  jq -n --arg msp "$1" --arg cert "$signcert" --arg key "$2/msp/keystore/priv_sk" \
    '{msp_id: $msp, cert: $cert, key: $key}'
}

hospital() {
  local i=$1 dir domain peer_dir msp_ca
  dir=$(org_dir "$i")
  domain=$(org_domain "$i")
  peer_dir=$dir/peers/peer0.$domain
  msp_ca=$(the_one "$dir"/msp/cacerts/*.pem)
  jq -n \
    --arg id "hospital$i" --arg msp "$(org_msp "$i")" \
    --arg endpoint "127.0.0.1:$(peer_port "$i")" --arg host "peer0.$domain" \
    --arg tls_ca "$peer_dir/tls/ca.crt" \
    --arg msp_ca "$msp_ca" \
    --arg ops "http://127.0.0.1:$(peer_ops_port "$i")" \
    --arg cc "127.0.0.1:$(chaincode_port "$i")" \
    --argjson eth $((1 + i)) \
    --argjson admin "$(identity "$(org_msp "$i")" "$dir/users/Admin@$domain")" \
    --argjson d1 "$(identity "$(org_msp "$i")" "$dir/users/User1@$domain")" \
    --argjson d2 "$(identity "$(org_msp "$i")" "$dir/users/User2@$domain")" \
    --arg keys "127.0.0.1:$(key_service_port "$i")" --arg keys_host "$(key_service_host "$i")" \
    --arg keys_ca "$(key_service_ca "$i")" \
    '{id: $id, msp_id: $msp, msp_ca: $msp_ca, channel: $id,
      peer: {endpoint: $endpoint, host: $host, tls_ca: $tls_ca, operations_url: $ops},
      chaincode_address: $cc, eth_account: $eth, admin: $admin, doctors: [$d1, $d2],
      key_service: {endpoint: $keys, host: $keys_host, tls_ca: $keys_ca}}'
}

accounts=$(jq '[.available_accounts as $a | .private_keys | to_entries[]
  | {address: $a[.key], private_key: .value}]' "$MEDCERT_RUN/anvil/accounts.json")
hospital_list=$(for i in $(seq "$hospitals"); do hospital "$i"; done | jq -s .)

jq -n \
  --arg bin_dir "$BIN_DIR" --arg run_dir "$MEDCERT_RUN" \
  --arg rpc "http://127.0.0.1:$ANVIL_PORT" --argjson chain_id "$ANVIL_CHAIN_ID" \
  --argjson accounts "$accounts" \
  --arg ipfs "http://127.0.0.1:$KUBO_API_PORT" \
  --arg s3 "http://127.0.0.1:$S3_PORT" --arg region "$S3_REGION" --arg bucket "$S3_BUCKET" \
  --arg access "$S3_ACCESS_KEY" --arg secret "$s3_secret" \
  --arg orderer "127.0.0.1:$ORDERER_PORT" --arg orderer_host "orderer.$DOMAIN" \
  --arg orderer_ca "$ORDERER_CA" --arg orderer_admin "127.0.0.1:$ORDERER_ADMIN_PORT" \
  --arg cc "$CHAINCODE_NAME" \
  --argjson relay "$(identity RelayMSP "$(relay_dir)/users/User1@relay.$DOMAIN")" \
  --argjson hospitals "$hospital_list" \
  '{bin_dir: $bin_dir, run_dir: $run_dir,
    ethereum: {rpc_url: $rpc, chain_id: $chain_id, accounts: $accounts, contract_address: null},
    ipfs: {api_url: $ipfs},
    s3: {endpoint: $s3, region: $region, bucket: $bucket, access_key_id: $access, secret_access_key: $secret},
    fabric: {orderer: {endpoint: $orderer, host: $orderer_host, tls_ca: $orderer_ca, admin_endpoint: $orderer_admin},
             chaincode_name: $cc, relay: $relay, hospitals: $hospitals}}'
