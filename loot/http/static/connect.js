// loot.v1.Database over the Connect protocol: a unary call is a JSON POST to /loot.v1.Database/<Method>
// with the token as `Authorization: Bearer`; an error is {code, message, details}, and Loot's
// google.rpc.ErrorInfo (reason, metadata) is one of the details (docs/errors.md).

import { b64urlDecode } from "./tokens.js";

const ERROR_INFO = "google.rpc.ErrorInfo";
const KINDS = ["null", "integer", "real", "text", "blob"];

export class LootError extends Error {
  constructor(code, message, reason = "", metadata = {}) {
    super(message);
    Object.assign(this, { code, reason, metadata });
  }
}

/** Calls `method` of loot.v1.Database at `base` (an origin, e.g. http://127.0.0.1:7080). */
export async function call(base, method, request, token) {
  let response;
  try {
    response = await fetch(`${base}/loot.v1.Database/${method}`, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "Connect-Protocol-Version": "1",
        Authorization: `Bearer ${token}`,
      },
      body: JSON.stringify(request),
    });
  } catch (error) {
    throw new LootError("unavailable", `no answer from ${base}: ${error.message}`);
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    // Not JSON: a proxy's page, say. Shown as it came, below.
  }
  if (response.ok && body) return body;
  throw errorOf(response, body, text);
}

function errorOf(response, body, text) {
  if (!body || typeof body.code !== "string") {
    return new LootError(`http ${response.status}`, text.slice(0, 500) || response.statusText);
  }
  const details = Array.isArray(body.details) ? body.details : [];
  const info = details.find((detail) => detail.type === ERROR_INFO);
  const { reason = "", metadata = {} } = info ? errorInfo(info) : {};
  return new LootError(body.code, body.message || "", reason, metadata);
}

/** A detail's ErrorInfo: its `debug` JSON when the server sends one, else the protobuf `value` decoded. */
function errorInfo(detail) {
  if (detail.debug && typeof detail.debug === "object") {
    return { reason: detail.debug.reason || "", metadata: detail.debug.metadata || {} };
  }
  return decodeErrorInfo(b64urlDecode(detail.value || ""));
}

// ErrorInfo {string reason = 1; string domain = 2; map<string, string> metadata = 3;}: three
// length-delimited fields, the map's entries each {string key = 1; string value = 2;}.
function decodeErrorInfo(bytes) {
  const info = { reason: "", metadata: {} };
  for (const [field, value] of fields(bytes)) {
    if (field === 1) info.reason = text(value);
    if (field === 3) {
      const entry = Object.fromEntries(fields(value));
      info.metadata[text(entry[1] || [])] = text(entry[2] || []);
    }
  }
  return info;
}

function* fields(bytes) {
  let at = 0;
  const varint = () => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = bytes[at++];
      if (byte === undefined) throw new Error("truncated ErrorInfo");
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
  };
  while (at < bytes.length) {
    const tag = varint();
    const wire = tag % 8;
    if (wire === 2) {
      const length = varint();
      yield [Math.floor(tag / 8), bytes.subarray(at, at + length)];
      at += length;
    } else if (wire === 0) varint();
    else at += wire === 1 ? 8 : wire === 5 ? 4 : bytes.length; // a field ErrorInfo does not have: skipped
  }
}

const text = (bytes) => new TextDecoder().decode(bytes);

/** A proto3-JSON loot.v1.Value from a JSON value: whole numbers are integers (sent as decimal text so that
 * 64 bits survive), other numbers reals, strings text, booleans 1/0; {"blob": "<base64>"} and the other
 * one-member forms pass as they are. */
export function toValue(value) {
  if (value === null) return { null: null };
  if (typeof value === "boolean") return { integer: value ? "1" : "0" };
  if (typeof value === "number") return Number.isInteger(value) ? { integer: String(value) } : { real: value };
  if (typeof value === "string") return { text: value };
  const keys = value && typeof value === "object" ? Object.keys(value) : [];
  if (keys.length === 1 && KINDS.includes(keys[0])) return value;
  throw new Error(`cannot send ${JSON.stringify(value)}: use a number, string, null or {"blob": "<base64>"}`);
}

/** A Value's kind and shown text: integers stay decimal text (exact beyond 2^53). */
export function fromValue(value) {
  const kind = KINDS.find((name) => value && name in value) || "null";
  if (kind === "null") return { kind, text: "NULL" };
  if (kind === "blob") return { kind, text: `x'${[...b64urlDecode(value.blob.replace(/=+$/, ""))]
    .map((byte) => byte.toString(16).padStart(2, "0")).join("")}'` };
  return { kind, text: String(value[kind]) };
}

/** A message field by its proto name: proto3 JSON writes lowerCamelCase, and readers accept both. */
export function field(message, name) {
  if (!message) return undefined;
  const camel = name.replace(/_([a-z])/g, (_, letter) => letter.toUpperCase());
  return message[camel] ?? message[name];
}
