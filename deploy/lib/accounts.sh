# The network's own Ethereum accounts: the certificate contract's admin, the relay and each
# hospital's issuer account, generated for each network and funded from a development
# account of anvil, which serves for nothing else. anvil's development accounts are
# unlocked (anvil signs for them whoever asks its RPC port) and their keys are published;
# these accounts' keys exist only in their files here and in the network description.
# shellcheck shell=bash

ETH_KEYS=$MEDCERT_RUN/keys/ethereum
# What each generated account starts with: 1000 ETH, in wei.
ETH_FUNDING=0x3635c9adc5dea00000

# The accounts, in the order of the description's list: admin, relay, then hospital k at
# index 1 + k.
account_names() {
  echo admin relay
  seq -f 'hospital%g' "$HOSPITALS"
}
eth_key_file() { echo "$ETH_KEYS/$1.key"; }
eth_address_file() { echo "$ETH_KEYS/$1.address"; }

# hex_to_bytes: stdin's hex digits as bytes.
hex_to_bytes() { printf '%b' "$(sed 's/../\\x&/g')"; }

# new_eth_account NAME: a fresh secp256k1 key in NAME's key file (0x hex, mode 0600 from
# the start) and its address in NAME's address file. The address is the last 20 bytes of
# the Keccak-256 hash of the public key, which Kubo computes (as a CID's multihash) from
# the repository deploy/up made.
new_eth_account() {
  local name=$1 der key public digest
  # openssl's DER encoding of a secp256k1 key: a fixed 7-byte prefix, the 32-byte private
  # key, the curve, and the uncompressed public key 04 || X || Y in its last 64 bytes.
  der=$(openssl ecparam -name secp256k1 -genkey -noout -outform DER | od -An -v -tx1 | tr -d ' \n')
  [[ ${#der} == 236 && $der == 30740201010420* ]] ||
    die "openssl wrote a secp256k1 key in an unexpected encoding"
  key=${der:14:64}
  public=${der:108:128}
  digest=$(hex_to_bytes <<<"$public" |
    ipfs add -Q --only-hash --hash keccak-256 --raw-leaves |
    xargs ipfs cid format -f '%D' -b base16)
  [[ ${#digest} == 64 ]] || die "Kubo did not compute a Keccak-256 digest ($digest)"
  (
    umask 077
    mkdir -p "$ETH_KEYS"
    echo "0x$key" >"$(eth_key_file "$name")"
  )
  echo "0x${digest:24}" >"$(eth_address_file "$name")"
}

# anvil_rpc METHOD PARAMS-JSON: the result of a JSON-RPC call to anvil.
anvil_rpc() {
  curl -fsS --max-time 10 -X POST -H 'content-type: application/json' \
    --data "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$1\",\"params\":$2}" \
    "http://$SHARED_HOST:$ANVIL_PORT" | jq -ce 'if .error then error(.error.message) else .result end'
}

# fund_accounts: ETH_FUNDING to every generated account from anvil's development account,
# which anvil signs for.
fund_accounts() {
  local dev name
  dev=$(anvil_rpc eth_accounts '[]' | jq -r '.[0]')
  for name in $(account_names); do
    anvil_rpc eth_sendTransaction "[{\"from\":\"$dev\",\"to\":\"$(cat "$(eth_address_file "$name")")\",\"value\":\"$ETH_FUNDING\"}]" >/dev/null
  done
}
