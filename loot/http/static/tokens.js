// Keys and tokens in the browser, with WebCrypto: the same self-issued tokens loot/tokens mints
// (docs/tokens.md). The header embeds the public JWK; the account is its RFC 7638 thumbprint.

export const ISSUER = "https://self-issued.me";
export const COMPAT = "2025-08-01"; // loot/tokens/claims.py COMPAT_DATES[-1] (tests/test_playground_files.py)

const ALGORITHMS = {
  ES256: { generate: { name: "ECDSA", namedCurve: "P-256" }, sign: { name: "ECDSA", hash: "SHA-256" } },
  EdDSA: { generate: { name: "Ed25519" }, sign: { name: "Ed25519" } },
};
const encoder = new TextEncoder();

export function b64url(data) {
  const bytes = typeof data === "string" ? encoder.encode(data) : new Uint8Array(data);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function b64urlDecode(text) {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** Whether this browser signs with `alg` (Ed25519 is newer in WebCrypto than P-256). */
export async function supports(alg) {
  try {
    await crypto.subtle.generateKey(ALGORITHMS[alg].generate, false, ["sign", "verify"]);
    return true;
  } catch {
    return false;
  }
}

/** A new key pair, as the stored form `{alg, jwk}` (the private JWK) that `load` reads. */
export async function generate(alg) {
  const pair = await crypto.subtle.generateKey(ALGORITHMS[alg].generate, true, ["sign", "verify"]);
  return { alg, jwk: await crypto.subtle.exportKey("jwk", pair.privateKey) };
}

/** A signing key from its stored form: {alg, account, publicJwk, privateKey}. */
export async function load({ alg, jwk }) {
  if (!ALGORITHMS[alg]) throw new Error(`unknown algorithm ${alg}`);
  const privateKey = await crypto.subtle.importKey("jwk", jwk, ALGORITHMS[alg].generate, false, ["sign"]);
  // Only the members RFC 7638 hashes: a private member in a token's header would be refused (and leak the key).
  const publicJwk = alg === "ES256"
    ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
    : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  return { alg, publicJwk, privateKey, account: await thumbprint(publicJwk) };
}

/** The RFC 7638 SHA-256 thumbprint: the required members in lexicographic order, no spaces. */
export async function thumbprint(publicJwk) {
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(JSON.stringify(publicJwk)));
  return b64url(digest);
}

/** A token for database (key.account, name, tenant), valid `ttl` seconds; `claims` are added last,
 * so they may override any claim the page sets (handy for seeing a router refuse one). */
export async function mint(key, { name, tenant, ttl, claims = {} }) {
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: key.alg, typ: "JWT", jwk: key.publicJwk };
  const payload = {
    iss: ISSUER, sub: key.account, compat: COMPAT, iat: now, exp: now + ttl,
    db: { name, tenant }, ...claims,
  };
  const signed = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  const signature = await crypto.subtle.sign(ALGORITHMS[key.alg].sign, key.privateKey, encoder.encode(signed));
  return `${signed}.${b64url(signature)}`;
}

/** The header and payload of a token, for showing (not verified). */
export function decode(token) {
  const [header, payload] = token.split(".").slice(0, 2).map((part) => {
    try {
      return JSON.parse(new TextDecoder().decode(b64urlDecode(part)));
    } catch {
      return null;
    }
  });
  return { header, payload };
}
