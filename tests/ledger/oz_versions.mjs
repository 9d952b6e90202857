// An independent check of a passport version, with public JavaScript libraries only: npm `canonicalize` (JCS,
// RFC 8785), node's SHA-256, `ethereum-cryptography`'s Keccak-256 and OpenZeppelin's @openzeppelin/merkle-tree.
//
// Reads one JSON request per line and answers each with one JSON line:
//   {"document": "<the version's text>", "sha256": "0x…", "root": "0x…", "proof": ["0x…", …]}
//   -> {canonical, hashMatches, leaf, verified}
// `canonical`: the text is its own JCS form; `hashMatches`: its SHA-256 is `sha256`; `leaf`: the leaf value
// keccak256(keccak256("circular-ledger/document-version/1") ‖ sha256); `verified`: StandardMerkleTree.verify of the
// leaf against `root` with `proof` (bytes32 leaves, as the anchoring worker builds them).
//
// Usage: echo '{"document": …}' | node tests/ledger/oz_versions.mjs
import { createHash } from "node:crypto";
import { createInterface } from "node:readline";
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import canonicalize from "canonicalize";
import { keccak256 } from "ethereum-cryptography/keccak.js";

const TAG = keccak256(new TextEncoder().encode("circular-ledger/document-version/1"));

function hex(bytes) {
  return "0x" + Buffer.from(bytes).toString("hex");
}

function answer(request) {
  const text = request.document;
  const canonical = canonicalize(JSON.parse(text)) === text;
  const digest = createHash("sha256").update(Buffer.from(text, "utf8")).digest();
  const leaf = hex(keccak256(Buffer.concat([Buffer.from(TAG), digest])));
  const verified = StandardMerkleTree.verify(request.root, ["bytes32"], [leaf], request.proof);
  return { canonical, hashMatches: hex(digest) === request.sha256, leaf, verified };
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
