// The page: asks its own server for a token (the one thing the server is for), then reads and
// writes its database directly on the router's HTTP port with plain fetch (the Connect protocol:
// a JSON POST per call, docs/http.md).

const $ = (id) => document.getElementById(id);
let grant = null; // {user, token, expires_at, endpoint, database} from /api/db-token

async function currentGrant() {
  if (!grant || grant.expires_at - 60 < Date.now() / 1000) {
    const response = await fetch("/api/db-token");
    grant = response.ok ? await response.json() : null;
  }
  return grant;
}

/** Runs one statement on the signed-in user's database; the rows come back as arrays of values. */
async function sql(statement, params = []) {
  const { endpoint, token } = await currentGrant();
  const response = await fetch(`${endpoint}/loot.v1.Database/Execute`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ statement: { sql: statement, params: params.map(value) } }),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(`${body.code}: ${body.message}`);
  // Each value is {"text": ...}, {"integer": "<digits>"}, ...: one member named by its kind.
  return (body.result.rows || []).map((row) => row.values.map((cell) => Object.values(cell)[0]));
}

const value = (v) => (typeof v === "number" ? { integer: String(v) } : { text: v });

async function show() {
  const signedIn = await currentGrant();
  $("login").hidden = Boolean(signedIn);
  $("app").hidden = !signedIn;
  if (!signedIn) return;
  $("who").textContent = grant.user;
  $("database").textContent = grant.database;
  const rows = await sql("SELECT id, title, done FROM todos ORDER BY id");
  $("todos").replaceChildren(...rows.map(([id, title, done]) => {
    const item = document.createElement("li");
    const box = Object.assign(document.createElement("input"), { type: "checkbox", checked: done === "1" });
    box.onchange = () => act(() => sql("UPDATE todos SET done = ? WHERE id = ?", [box.checked ? 1 : 0, Number(id)]));
    const text = Object.assign(document.createElement("span"), { textContent: ` ${title}` });
    item.className = done === "1" ? "done" : "";
    item.append(box, text);
    return item;
  }));
  document.body.dataset.todos = String(rows.length); // for tests: the list is drawn
}

/** Does something, then redraws; an error is shown, not thrown. */
async function act(work) {
  try {
    $("error").textContent = "";
    await work();
    await show();
  } catch (error) {
    $("error").textContent = error.message;
  }
}

$("login").onsubmit = (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  act(() => fetch("/login", { method: "POST", body: new URLSearchParams(form) }));
};
$("add").onsubmit = (event) => {
  event.preventDefault();
  const title = event.target.elements.title;
  act(async () => {
    await sql("INSERT INTO todos (title) VALUES (?)", [title.value]);
    title.value = "";
  });
};
$("logout").onclick = () => act(async () => {
  await fetch("/logout", { method: "POST" });
  grant = null;
  document.body.dataset.todos = "";
});
act(async () => {});
