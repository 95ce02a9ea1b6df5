// What the interop scripts share: @grpc/grpc-js (with @grpc/proto-loader reading protos/) calling
// loot.v1.Database, and the schema that opens a notes table (tables are closed until a filter and
// a rule open them).
import { fileURLToPath } from "node:url";
import path from "node:path";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

export const SCHEMA = "CREATE TABLE notes (body TEXT); " +
  "INSERT INTO _filters VALUES ('notes', 'all', 'true'); " +
  "INSERT INTO _rules VALUES ('notes', 'write', 'all', 'true');";

export function connect(address) {
  const protos = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../protos");
  const definition = protoLoader.loadSync("loot/v1/database.proto", {
    includeDirs: [protos], keepCase: true, longs: String, defaults: true, oneofs: true,
  });
  const { Database } = grpc.loadPackageDefinition(definition).loot.v1;
  return new Database(address, grpc.credentials.createInsecure());
}

export function execute(client, bearer, sql, params = []) {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${bearer}`);
  const request = { statement: { sql, params: params.map((text) => ({ text })) } };
  return new Promise((resolve, reject) => {
    client.Execute(request, metadata, { deadline: Date.now() + 20000 }, (error, response) =>
      error ? reject(error) : resolve(response));
  });
}

export function values(response) {
  return response.result.rows.map((row) => row.values.map((value) => value[value.kind]));
}
