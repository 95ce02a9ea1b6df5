// An independent client for tests/test_tokens_interop.py: node's `jose` signs the
// token, @grpc/grpc-js (with @grpc/proto-loader reading protos/) makes the calls.
//
//   node call.mjs <router host:port> <ES256|EdDSA> <tenant>
//
// Prints one JSON line: the key (public and private JWK), the thumbprint jose
// computed, the rows read back, and what the router said to a tampered token.
import { fileURLToPath } from "node:url";
import path from "node:path";
import * as jose from "jose";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

// Tables are closed until a filter and a rule open them (docs/access.md).
const SCHEMA = "CREATE TABLE notes (body TEXT); " +
  "INSERT INTO _filters VALUES ('notes', 'all', 'true'); " +
  "INSERT INTO _rules VALUES ('notes', 'write', 'all', 'true');";

const [address, alg, tenant] = process.argv.slice(2);
const protos = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../protos");
const definition = protoLoader.loadSync("loot/v1/database.proto", {
  includeDirs: [protos], keepCase: true, longs: String, defaults: true, oneofs: true,
});
const { Database } = grpc.loadPackageDefinition(definition).loot.v1;
const client = new Database(address, grpc.credentials.createInsecure());

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

function execute(bearer, sql, params = []) {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${bearer}`);
  const request = { statement: { sql, params: params.map((text) => ({ text })) } };
  return new Promise((resolve, reject) => {
    client.Execute(request, metadata, { deadline: Date.now() + 20000 }, (error, response) =>
      error ? reject(error) : resolve(response));
  });
}

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
  rows: read.result.rows.map((row) => row.values.map((value) => value[value.kind])),
  tampered: refusal,
}));
