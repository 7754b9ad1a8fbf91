// An independent EIP-712 check of medcert's typed data, with ethers.js.
//
//   node typed-data.mjs sign    reads {"typedData": …, "privateKey": "0x…"} on stdin
//   node typed-data.mjs verify  reads {"typedData": …, "signature": "0x…"} on stdin
//
// and writes one JSON object on stdout: the digest ethers.js computes
// (TypedDataEncoder.hash), the signature (sign: Wallet.signTypedData) and the signer
// (sign: the wallet's address; verify: verifyTypedData). typedData is the object
// eth_signTypedData_v4 takes, as medcert prints it.
//
// ethers.js is installed by deploy/install outside the repository; MEDCERT_ETHERS_JS names
// that directory (the one holding node_modules/ethers).

import { createRequire } from "node:module";
import { join } from "node:path";
import { text } from "node:stream/consumers";

function fail(message) {
  process.stderr.write(`typed-data.mjs: ${message}\n`);
  process.exit(2);
}

const home = process.env.MEDCERT_ETHERS_JS;
if (!home) fail("MEDCERT_ETHERS_JS is not set: point it at ethers.js as deploy/install installs it");
const { TypedDataEncoder, Wallet, verifyTypedData } = createRequire(join(home, "package.json"))("ethers");

const command = process.argv[2];
if (command !== "sign" && command !== "verify") fail("usage: typed-data.mjs sign|verify < input.json");
const input = JSON.parse(await text(process.stdin));
const { domain, message } = input.typedData;
// ethers derives the domain's type from the domain object itself and refuses it among
// the message's types.
const { EIP712Domain: _domainType, ...types } = input.typedData.types;

const digest = TypedDataEncoder.hash(domain, types, message);
let output;
if (command === "sign") {
  const wallet = new Wallet(input.privateKey);
  const signature = await wallet.signTypedData(domain, types, message);
  output = { digest, signature, signer: wallet.address };
} else {
  output = { digest, signer: verifyTypedData(domain, types, message, input.signature) };
}
process.stdout.write(`${JSON.stringify(output)}\n`);
