// Compressed GS1 Digital Link test vectors from digital-link.js's compressWebUri (the npm reference).
// Usage: node dl_vectors.js < uris.json > vectors.json   (uris.json: a JSON array of uncompressed URIs)
'use strict';
const path = require('path');
const root = process.env.NODE_MODULES || path.resolve(__dirname, '..', '..', 'node_modules');
const { compressWebUri } = require(path.join(root, 'digital-link.js', 'src', 'compression.js'));

let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const uris = JSON.parse(input);
  const out = uris.map((uri) => {
    try {
      return { uri, compressed: compressWebUri(uri) };
    } catch (err) {
      return { uri, error: String(err && err.message ? err.message : err) };
    }
  });
  process.stdout.write(JSON.stringify(out));
});
