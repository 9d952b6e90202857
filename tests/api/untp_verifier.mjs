// An independent verifier of a UNTP passport credential (application/vc+jwt), with npm's `jose` (pinned in
// package.json) and nothing of the project: it resolves the issuer's did:web to the URL of its DID document, takes
// the verification method the JWS header's `kid` names (it must be one of the document's assertion methods), verifies
// the signature with its publicKeyJwk, checks the header's typ and that the payload's issuer is the DID, and, given
// the brand's status list credential, verifies that too and reads the credential's bit.
//
// Usage: node untp_verifier.mjs <input.json>, where input.json is
//   {"jwt": "<compact JWS>", "documents": {"<url>": <the JSON served there>}, "statusList": "<compact JWS>" | null}
// `documents` stands for the web: the verifier fetches nothing, it looks up the URL did:web resolution gives.
// Prints {"ok": true, "payload": ..., "kid": ..., "revoked": true|false|null}; on failure {"ok": false, "error": ...}
// and exit code 1.
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import * as jose from 'jose';

function didWebUrl(did) {
  // did:web method specification: the method-specific id's segments, ':'-separated, percent-decoded; one segment
  // is <host>/.well-known/did.json, more are <host>/<path>/did.json.
  const parts = did.split(':');
  if (parts[0] !== 'did' || parts[1] !== 'web' || parts.length < 3) throw new Error(`not a did:web: ${did}`);
  const segments = parts.slice(2).map(decodeURIComponent);
  const path = segments.length === 1 ? '/.well-known' : '/' + segments.slice(1).join('/');
  return `https://${segments[0]}${path}/did.json`;
}

async function verify(jwt, documents, expectTyp) {
  const header = jose.decodeProtectedHeader(jwt);
  if (header.typ !== expectTyp) throw new Error(`typ ${header.typ}, not ${expectTyp}`);
  if (!header.kid || !header.kid.includes('#')) throw new Error('no kid naming a verification method');
  const did = header.kid.split('#')[0];
  const url = didWebUrl(did);
  const doc = documents[url];
  if (!doc) throw new Error(`no DID document at ${url}`);
  if (doc.id !== did) throw new Error(`the document at ${url} is ${doc.id}, not ${did}`);
  if (!(doc.assertionMethod || []).includes(header.kid)) throw new Error(`${header.kid} is not an assertion method`);
  const method = (doc.verificationMethod || []).find((m) => m.id === header.kid);
  if (!method || !method.publicKeyJwk) throw new Error(`no publicKeyJwk for ${header.kid}`);
  const key = await jose.importJWK(method.publicKeyJwk, header.alg);
  const { payload } = await jose.compactVerify(jwt, key, { algorithms: ['Ed25519', 'EdDSA', 'ES256'] });
  const credential = JSON.parse(new TextDecoder().decode(payload));
  const issuer = typeof credential.issuer === 'string' ? credential.issuer : credential.issuer?.id;
  if (issuer !== did) throw new Error(`issuer ${issuer} did not sign this (${did} did)`);
  return { credential, kid: header.kid };
}

const input = JSON.parse(readFileSync(process.argv[2], 'utf8'));
try {
  const { credential, kid } = await verify(input.jwt, input.documents, 'vc+jwt');
  let revoked = null;
  if (input.statusList) {
    const status = credential.credentialStatus;
    const list = await verify(input.statusList, input.documents, 'vc+jwt');
    if (list.credential.id !== status.statusListCredential) throw new Error('not the credential\'s status list');
    if (list.credential.issuer?.id !== credential.issuer.id) throw new Error('a status list of another issuer');
    const encoded = list.credential.credentialSubject.encodedList;
    if (!encoded.startsWith('u')) throw new Error('encodedList is not multibase base64url');
    const bits = gunzipSync(Buffer.from(encoded.slice(1), 'base64url'));
    const index = Number(status.statusListIndex);
    revoked = ((bits[index >> 3] >> (7 - (index % 8))) & 1) === 1;
  }
  console.log(JSON.stringify({ ok: true, payload: credential, kid, revoked }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: String(error?.message || error), code: error?.code || null }));
  process.exit(1);
}
