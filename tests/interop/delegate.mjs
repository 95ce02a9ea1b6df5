// Delegated keys from JavaScript, for tests/test_tokens_interop.py, following only docs/tokens.md
// ("Delegated keys"): node's `jose` makes a root key and an app key, signs the certificate with the
// root and tokens with the app key, and @grpc/grpc-js sends them.
//
//   node delegate.mjs <router host:port> <ES256|EdDSA> <tenant>
//
// Prints one JSON line: the root's private JWK and account, the app key's account, the rows read
// back, and what the router said to a token for a database the certificate does not cover.
import * as jose from "jose";
import { SCHEMA, connect, execute as call, values } from "./database.mjs";

const [address, alg, tenant] = process.argv.slice(2);
const client = connect(address);

async function keyPair() {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = await jose.exportJWK(publicKey);
  return { privateKey, jwk, account: await jose.calculateJwkThumbprint(jwk, "sha256") };
}

const root = await keyPair();
const app = await keyPair();
const now = Math.floor(Date.now() / 1000);
const certificate = await new jose.CompactSign(new TextEncoder().encode(JSON.stringify({
  sub: root.account, cnf: { jkt: app.account }, iat: now, exp: now + 3600, prefixes: ["interop"],
}))).setProtectedHeader({ alg, typ: "loot-cert", jwk: root.jwk }).sign(root.privateKey);

async function token(name, claims = {}) {
  return new jose.SignJWT({ compat: "2025-08-01", db: { name, tenant }, ...claims })
    .setProtectedHeader({ alg, typ: "JWT", jwk: app.jwk, cert: certificate })
    .setIssuer("https://self-issued.me")
    .setSubject(root.account)
    .setIssuedAt()
    .setExpirationTime("5m")
    .sign(app.privateKey);
}

const execute = (bearer, sql, params) => call(client, bearer, sql, params);

await execute(await token("interop-delegated", { schema: SCHEMA }), "INSERT INTO notes (body) VALUES (?)",
  [`written by a node ${alg} app key`]);
const read = await execute(await token("interop-delegated"), "SELECT body FROM notes");
const outside = await execute(await token("elsewhere"), "SELECT 1")
  .then(() => null, (error) => ({ code: error.code, details: error.details }));
client.close();
console.log(JSON.stringify({
  rootAccount: root.account, rootPrivateJwk: await jose.exportJWK(root.privateKey), appAccount: app.account,
  rows: values(read),
  outside,
}));
