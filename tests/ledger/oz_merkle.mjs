// The reference for ledger/merkle.py: OpenZeppelin's @openzeppelin/merkle-tree, driven over stdin/stdout.
//
// Reads one JSON request per line and answers each with one JSON line (so one process can serve a whole test run):
//   ["0x<64 hex>", ...]                    -> {root, proofs, proofsByValue, dump}
//       the StandardMerkleTree.of(values, ["bytes32"]) of the values: `proofs[i]` is getProof(i) (by position),
//       `proofsByValue[i]` is getProof([values[i]]) (by value, as a caller holding only the value asks)
//   {"load": <dump>}                       -> {root, dump}  (StandardMerkleTree.load, which validates the dump)
//   {"verify": [root, value, proof]}       -> {verified}    (StandardMerkleTree.verify)
// A failing request answers {"error": "<message>"}.
//
// Usage: echo '["0x..."]' | node tests/ledger/oz_merkle.mjs
import { createInterface } from "node:readline";
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";

const ENCODING = ["bytes32"];

function answer(request) {
  if (Array.isArray(request)) {
    const tree = StandardMerkleTree.of(request.map((v) => [v]), ENCODING);
    return {
      root: tree.root,
      proofs: request.map((_, i) => tree.getProof(i)),
      proofsByValue: request.map((v) => tree.getProof([v])),
      dump: tree.dump(),
    };
  }
  if (request.load !== undefined) {
    const tree = StandardMerkleTree.load(request.load);
    return { root: tree.root, dump: tree.dump() };
  }
  if (request.verify !== undefined) {
    const [root, value, proof] = request.verify;
    return { verified: StandardMerkleTree.verify(root, ENCODING, [value], proof) };
  }
  throw new Error("unknown request");
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  let reply;
  try {
    reply = answer(JSON.parse(line));
  } catch (error) {
    reply = { error: String(error && error.message ? error.message : error) };
  }
  process.stdout.write(JSON.stringify(reply) + "\n");
}
