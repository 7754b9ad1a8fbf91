# The hospitals' key services (medcert-key-service): one per hospital, on loopback, over
# TLS, holding the hospital's keys and patients' password verifiers in $MEDCERT_KEYS.
# shellcheck shell=bash

# Password checks each service allows a minute, per patient and per doctor; unset, the
# service's own defaults (10 and 60, for people at a desk). The test command raises them:
# its suites and benchmark act as one doctor making hundreds of accesses a minute.
KEY_SERVICE_LIMITS=()
[[ -z ${KEY_SERVICE_PATIENT_CHECKS:-} ]] ||
  KEY_SERVICE_LIMITS+=(--patient-checks-per-minute "$KEY_SERVICE_PATIENT_CHECKS")
[[ -z ${KEY_SERVICE_DOCTOR_CHECKS:-} ]] ||
  KEY_SERVICE_LIMITS+=(--doctor-checks-per-minute "$KEY_SERVICE_DOCTOR_CHECKS")

key_service_ca() { echo "$MEDCERT_RUN/keys/hospital$1-ca.pem"; }
key_service_host() { echo "keys.$(org_domain "$1")"; }

# start_key_service HOSPITAL: start the service; it makes its TLS CA on first start and
# writes the CA certificate where clients read it (key_service_ca). It reads blocks from
# any of the hospital's peers.
start_key_service() {
  local i=$1 dir domain user state p peer_flags=()
  dir=$(org_dir "$i")
  domain=$(org_domain "$i")
  user=$dir/users/User$HOSPITAL_USERS@$domain/msp
  state=$MEDCERT_KEYS/hospital$i
  for ((p = 0; p < PEERS; p++)); do
    peer_flags+=(--peer-endpoint "$(peer_address "$i" "$p")" --peer-host "$(peer_host "$i" "$p")"
      --peer-tls-ca "$(org_tls_ca "$i")")
  done
  mkdir -p "$MEDCERT_RUN/keys"
  (umask 077 && mkdir -p "$state")
  start_network_service "keys$i" medcert-key-service \
    --listen "$(org_host "$i"):$KEY_SERVICE_BASE_PORT" \
    --state-dir "$state" \
    --tls-host "$(key_service_host "$i")" \
    --tls-ca-out "$(key_service_ca "$i")" \
    --hospital-id "hospital$i" \
    --msp-id "$(org_msp "$i")" \
    --msp-ca "$(the_one "$dir"/msp/cacerts/*.pem)" \
    --channel "hospital$i" \
    --chaincode "$CHAINCODE_NAME" \
    "${peer_flags[@]}" \
    --identity-cert "$(the_one "$user"/signcerts/*.pem)" \
    --identity-key "$user/keystore/priv_sk" \
    "${KEY_SERVICE_LIMITS[@]}"
}

key_service_ready() {
  [[ -s $(key_service_ca "$1") ]] && port_in_use "$(org_host "$1")" "$KEY_SERVICE_BASE_PORT"
}
