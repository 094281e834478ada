// Test tokens for P6: `node jwt.mjs <dir>` writes <dir>/public.pem (an Ed25519 public key)
// and prints a JSON object of EdDSA-signed JWTs: admin, prefixed (prefix "allowed-"), expired,
// and noPrefix (neither admin nor a prefix claim).
import { generateKeyPairSync, sign } from "node:crypto";
import { writeFileSync } from "node:fs";

const dir = process.argv[2];
const { publicKey, privateKey } = generateKeyPairSync("ed25519");
writeFileSync(`${dir}/public.pem`, publicKey.export({ type: "spki", format: "pem" }));

const b64url = (buffer) => Buffer.from(buffer).toString("base64url");
const now = Math.floor(Date.now() / 1000);
function token(claims) {
  const head = b64url(JSON.stringify({ alg: "EdDSA", typ: "JWT" }));
  const body = b64url(JSON.stringify(claims));
  const signature = sign(null, Buffer.from(`${head}.${body}`), privateKey);
  return `${head}.${body}.${b64url(signature)}`;
}
process.stdout.write(
  JSON.stringify({
    admin: token({ role: "admin", exp: now + 3600 }),
    prefixed: token({ role: "user", prefix: "allowed-", exp: now + 3600 }),
    expired: token({ role: "admin", exp: now - 3600 }),
    noPrefix: token({ role: "user", exp: now + 3600 }),
  }),
);
