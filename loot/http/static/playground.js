// The playground (docs/playground.md): a key pair made here, a token signed per request, and
// loot.v1.Database called over Connect on the page's own origin.

import * as tokens from "./tokens.js";
import { LootError, call, field, fromValue, toValue } from "./connect.js";

const KEY_STORE = "loot.playground.key";
const FORM_STORE = "loot.playground.form";
// The README's notes, with the filter and rule of docs/access.md: each user sees and writes their own.
const SEED_SCHEMA = `CREATE TABLE notes (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, body TEXT);
INSERT INTO _filters VALUES ('notes', 'own', 'owner = claim(''user.id'')');
INSERT INTO _rules VALUES ('notes', 'write', 'own', 'owner = claim(''user.id'')');`;
const USERS = [
  { label: "User 1", claims: '{"user": {"id": "alice"}}',
    sql: "INSERT INTO notes (owner, body) VALUES (claim('user.id'), ?)", params: '["hello"]' },
  { label: "User 2", claims: '{"user": {"id": "bob"}}', sql: "SELECT * FROM notes", params: "" },
];

const $ = (id) => document.getElementById(id);
let key = null;

async function main() {
  if (!globalThis.crypto?.subtle) {
    $("insecure").hidden = false;
    $("playground").hidden = true;
    return;
  }
  USERS.forEach(addUser);
  restoreForm();
  document.addEventListener("input", saveForm);
  $("new-es256").onclick = () => newKey("ES256");
  $("new-eddsa").onclick = () => newKey("EdDSA");
  if (!(await tokens.supports("EdDSA"))) {
    $("new-eddsa").disabled = true;
    $("new-eddsa").title = "this browser's WebCrypto has no Ed25519";
  }
  try {
    await useKey(JSON.parse(localStorage.getItem(KEY_STORE)));
  } catch {
    await newKey("ES256"); // none yet, or one this page cannot read: a fresh one
  }
  select(0);
  document.body.dataset.ready = "true"; // for tests and scripts: the key is loaded
}

async function newKey(alg) {
  const stored = await tokens.generate(alg);
  localStorage.setItem(KEY_STORE, JSON.stringify(stored));
  await useKey(stored);
}

async function useKey(stored) {
  key = await tokens.load(stored);
  $("account").textContent = key.account;
  $("alg").textContent = `(${key.alg})`;
}

// ---- user tabs --------------------------------------------------------------------------------

function addUser(user, index) {
  const panel = $("user-template").content.firstElementChild.cloneNode(true);
  panel.id = `user-${index + 1}`;
  panel.querySelector(".claims").value = user.claims;
  panel.querySelector(".sql").value = user.sql;
  panel.querySelector(".params").value = user.params;
  panel.querySelector(".run").onclick = () => send(panel, "Execute");
  panel.querySelector(".describe").onclick = () => send(panel, "Describe");
  $("user-panels").append(panel);
  const tab = element("button", user.label, "tab");
  Object.assign(tab, { id: `tab-user-${index + 1}`, type: "button", onclick: () => select(index) });
  tab.setAttribute("role", "tab");
  $("tabs").append(tab);
}

function select(index) {
  [...$("tabs").children].forEach((tab, i) => tab.setAttribute("aria-selected", String(i === index)));
  [...$("user-panels").children].forEach((panel, i) => { panel.hidden = i !== index; });
}

// ---- one request --------------------------------------------------------------------------------

async function send(panel, method) {
  const output = panel.querySelector(".output");
  const status = panel.querySelector(".status");
  status.textContent = "…";
  output.replaceChildren();
  try {
    const request = method === "Execute" ? { statement: statement(panel) } : {};
    const token = await tokenFor(panel);
    panel.querySelector(".sent pre").textContent = `${token}\n\n${JSON.stringify(tokens.decode(token), null, 2)}`;
    const reply = await call(location.origin, method, request, token);
    output.append(...(method === "Execute" ? executed(reply) : described(reply)));
    status.textContent = "";
  } catch (error) {
    output.append(failure(error));
    status.textContent = "";
  }
}

async function tokenFor(panel) {
  const pasted = panel.querySelector(".token").value.trim();
  if (pasted) return pasted;
  const claims = parsed(panel.querySelector(".claims").value || "{}", "Claims");
  if (!claims || typeof claims !== "object" || Array.isArray(claims)) {
    throw new Error("Claims must be a JSON object, e.g. {\"user\": {\"id\": \"alice\"}}");
  }
  const schema = $("schema").value.trim();
  return tokens.mint(key, {
    name: $("db-name").value, tenant: $("db-tenant").value, ttl: Number($("ttl").value),
    claims: $("send-schema").checked && schema ? { schema, ...claims } : claims,
  });
}

function statement(panel) {
  const text = panel.querySelector(".params").value.trim();
  const params = text ? parsed(text, "Parameters") : [];
  const sql = panel.querySelector(".sql").value;
  if (Array.isArray(params)) return { sql, params: params.map(toValue) };
  if (params && typeof params === "object") {
    return { sql, namedParams: Object.fromEntries(Object.entries(params).map(([k, v]) => [k, toValue(v)])) };
  }
  throw new Error("Parameters must be a JSON array (for ?) or object (for :name)");
}

function parsed(text, what) {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${what} are not JSON: ${error.message}`);
  }
}

// ---- what came back -------------------------------------------------------------------------------

function executed(reply) {
  const result = field(reply, "result") || {};
  const parts = [...schemaChanges(reply)];
  const columns = field(result, "columns") || [];
  if (columns.length) parts.push(table(columns, field(result, "rows") || []));
  const counts = [`${field(result, "rows_read") || 0} rows read`, `${field(result, "rows_written") || 0} written`];
  const rowid = field(result, "last_insert_rowid");
  if (rowid !== undefined) counts.push(`last insert rowid ${rowid}`);
  if (field(reply, "destroyed")) counts.push("database destroyed");
  parts.push(element("p", counts.join(", "), "counts"));
  return parts;
}

function schemaChanges(reply) {
  const changes = field(reply, "schema_changes") || [];
  if (!changes.length) return [];
  const box = element("div", "", "schema-changes");
  box.append(element("h3", "Schema changes"), list(changes));
  return [box];
}

function table(columns, rows) {
  const head = element("tr");
  for (const column of columns) {
    const cell = element("th", column.name);
    cell.title = column.decltype || "expression";
    head.append(cell);
  }
  const body = rows.map((row) => {
    const line = element("tr");
    for (const value of field(row, "values") || []) {
      const { kind, text } = fromValue(value);
      line.append(element("td", text, kind));
    }
    return line;
  });
  const result = element("table", "", "result");
  result.append(element("thead"), element("tbody"));
  result.tHead.append(head);
  result.tBodies[0].append(...body);
  return result;
}

function described(reply) {
  const parts = [...schemaChanges(reply)];
  for (const item of field(reply, "tables") || []) {
    const title = element("h3", `table ${item.name}`);
    if (field(item, "no_filter")) title.append(element("span", " no filter: reads as empty", "warning"));
    parts.push(title, records(item.columns || [], ["name", "type", "pk", "not_null", "default"]));
  }
  const sections = [["filters", ["table", "name", "predicate"]], ["rules", ["table", "operation", "name", "predicate"]],
    ["indexes", ["name", "table", "columns", "unique"]], ["views", ["name", "sql"]], ["triggers", ["name", "table", "sql"]]];
  for (const [name, keys] of sections) {
    const items = field(reply, name) || [];
    if (items.length) parts.push(element("h3", name), records(items, keys));
  }
  parts.push(element("p", `schema hash ${field(reply, "schema_hash") || "(empty database)"}`, "counts"));
  return parts;
}

function records(items, keys) {
  const result = element("table", "", "result");
  const head = element("tr");
  head.append(...keys.map((name) => element("th", name)));
  result.append(head);
  for (const item of items) {
    const line = element("tr");
    line.append(...keys.map((name) => element("td", shown(field(item, name)))));
    result.append(line);
  }
  return result;
}

const shown = (value) => (value === undefined ? "" : Array.isArray(value) ? value.join(", ") : String(value));

function failure(error) {
  const box = element("div", "", "error");
  if (!(error instanceof LootError)) {
    box.append(element("strong", "Not sent: "), document.createTextNode(error.message));
    return box;
  }
  const title = element("strong", error.code);
  if (error.reason) title.append(" ", element("code", error.reason, "reason"));
  box.append(title, element("p", error.message, "message"));
  const metadata = Object.entries(error.metadata);
  if (metadata.length) box.append(list(metadata.map(([k, v]) => `${k} = ${v}`)));
  return box;
}

function list(items) {
  const result = element("ul");
  result.append(...items.map((item) => element("li", item)));
  return result;
}

function element(tag, text = "", className = "") {
  const result = document.createElement(tag);
  if (text) result.textContent = text;
  if (className) result.className = className;
  return result;
}

// ---- the form survives a reload -----------------------------------------------------------------

function formFields() {
  return [...document.querySelectorAll("#playground input, #playground textarea")].filter((input) => input.id
    || input.closest(".user"));
}

function fieldName(input) {
  return input.id || `${input.closest(".user").id}.${input.className}`;
}

function saveForm() {
  const values = Object.fromEntries(formFields().map((input) => [fieldName(input),
    input.type === "checkbox" ? input.checked : input.value]));
  localStorage.setItem(FORM_STORE, JSON.stringify(values));
}

function restoreForm() {
  $("schema").value = SEED_SCHEMA;
  const values = JSON.parse(localStorage.getItem(FORM_STORE) || "{}");
  for (const input of formFields()) {
    const value = values[fieldName(input)];
    if (value === undefined) continue;
    if (input.type === "checkbox") input.checked = value;
    else input.value = value;
  }
}

main().catch((error) => {
  document.body.prepend(failure(error));
});
