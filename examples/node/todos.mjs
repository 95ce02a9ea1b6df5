// Loot from Node.js, with nothing of Loot's installed: `jose` makes the key and
// signs the token, @grpc/grpc-js calls the router with protos/loot/v1/database.proto.
//
//   npm ci --prefix examples/node
//   node examples/node/todos.mjs 127.0.0.1:7070
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as jose from "jose";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const router = process.argv[2] ?? "127.0.0.1:7070";
const protos = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../protos");
const definition = protoLoader.loadSync("loot/v1/database.proto", { includeDirs: [protos], keepCase: true, oneofs: true });
const { Database } = grpc.loadPackageDefinition(definition).loot.v1;
const db = new Database(router, grpc.credentials.createInsecure());

// A key pair is an account: its RFC 7638 thumbprint is the token's `sub`.
const { publicKey, privateKey } = await jose.generateKeyPair("ES256");
const jwk = await jose.exportJWK(publicKey);
const account = await jose.calculateJwkThumbprint(jwk, "sha256");

const SCHEMA = `CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL);
INSERT INTO _filters VALUES ('todos', 'all', 'true');
INSERT INTO _rules VALUES ('todos', 'write', 'all', 'true');`;

const token = await new jose.SignJWT({ compat: "2025-08-01", db: { name: "node-app", tenant: "alice" }, schema: SCHEMA })
  .setProtectedHeader({ alg: "ES256", typ: "JWT", jwk })
  .setIssuer("https://self-issued.me")
  .setSubject(account)
  .setIssuedAt()
  .setExpirationTime("15m")
  .sign(privateKey);

function execute(sql, params = []) {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  const statement = { sql, params: params.map((text) => ({ text })) };
  return new Promise((resolve, reject) =>
    db.Execute({ statement }, metadata, (error, response) => (error ? reject(error) : resolve(response.result))));
}

await execute("INSERT INTO todos (title) VALUES (?)", ["try Loot from node"]);
const result = await execute("SELECT id, title FROM todos");
for (const row of result.rows) {
  console.log(row.values.map((value) => value[value.kind]).join(" | "));
}
db.close();
