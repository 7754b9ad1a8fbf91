// Compiles MedicalCertificate.sol with solc-js through its standard-JSON interface and
// writes the ABI and creation bytecode. Called by contracts/build, which pins the compiler.
// Usage: node compile.js <solc package dir> <source.sol> <output dir>
'use strict';
const fs = require('fs');
const path = require('path');

const [solcDir, sourcePath, outDir] = process.argv.slice(2);
if (!solcDir || !sourcePath || !outDir) {
  console.error('usage: node compile.js <solc package dir> <source.sol> <output dir>');
  process.exit(2);
}
const solc = require(solcDir);
const contract = path.basename(sourcePath, '.sol');
// The source unit name is the bare file name so the metadata hash, and with it the
// bytecode, does not depend on where the repository is checked out.
const unit = path.basename(sourcePath);

const input = {
  language: 'Solidity',
  sources: { [unit]: { content: fs.readFileSync(sourcePath, 'utf8') } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    // issueCertificate has more live values than the legacy pipeline's stack allows.
    viaIR: true,
    // Pinned rather than left to the compiler's default, which moves between releases.
    evmVersion: 'cancun',
    outputSelection: { [unit]: { [contract]: ['abi', 'evm.bytecode.object', 'storageLayout'] } },
  },
};

const output = JSON.parse(solc.compile(JSON.stringify(input)));
let failed = false;
for (const diagnostic of output.errors || []) {
  console.error(diagnostic.formattedMessage.trimEnd());
  if (diagnostic.severity === 'error') failed = true;
}
if (failed) process.exit(1);

const compiled = output.contracts[unit][contract];
fs.mkdirSync(outDir, { recursive: true });
fs.writeFileSync(path.join(outDir, `${contract}.abi.json`), JSON.stringify(compiled.abi, null, 2) + '\n');
fs.writeFileSync(path.join(outDir, `${contract}.bin`), compiled.evm.bytecode.object + '\n');
// The slots of the state variables: a relay proves storage values (eth_getProof) at them.
const layout = compiled.storageLayout.storage.map(({ label, slot, offset }) => ({ label, slot, offset }));
fs.writeFileSync(path.join(outDir, `${contract}.storage.json`), JSON.stringify(layout, null, 2) + '\n');
console.error(`compiled ${unit} with solc ${solc.version()} into ${outDir}`);
