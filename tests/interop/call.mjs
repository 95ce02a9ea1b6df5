// An independent client for tests/test_tokens_interop.py: node's `jose` signs the
// token, @grpc/grpc-js (with @grpc/proto-loader reading protos/) makes the calls.
//
//   node call.mjs <router host:port> <ES256|EdDSA> <tenant>
//
// Prints one JSON line: the key (public and private JWK), the thumbprint jose
// computed, the rows read back, and what the router said to a tampered token.
import * as jose from "jose";
import { SCHEMA, connect, execute as call, values } from "./database.mjs";

const [address, alg, tenant] = process.argv.slice(2);
const client = connect(address);

const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
const jwk = await jose.exportJWK(publicKey);
const account = await jose.calculateJwkThumbprint(jwk, "sha256");

async function token() {
  return new jose.SignJWT({ compat: "2025-08-01", db: { name: "interop", tenant }, schema: SCHEMA })
    .setProtectedHeader({ alg, typ: "JWT", jwk })
    .setIssuer("https://self-issued.me")
    .setSubject(account)
    .setIssuedAt()
    .setExpirationTime("5m")
    .sign(privateKey);
}

const execute = (bearer, sql, params) => call(client, bearer, sql, params);

function tampered(bearer) {
  const [header, payload, signature] = bearer.split(".");
  const claims = JSON.parse(Buffer.from(payload, "base64url"));
  claims.db.tenant += "-stolen";
  return [header, Buffer.from(JSON.stringify(claims)).toString("base64url"), signature].join(".");
}

const first = await token();
await execute(first, "INSERT INTO notes (body) VALUES (?)", [`written by node ${alg}`]);
const read = await execute(await token(), "SELECT body FROM notes");
const refusal = await execute(tampered(first), "SELECT 1").then(() => null, (error) => ({ code: error.code, details: error.details }));
client.close();
console.log(JSON.stringify({
  account, jwk, privateJwk: await jose.exportJWK(privateKey),
  rows: values(read),
  tampered: refusal,
}));
