// Small fetch wrapper: JSON in and out, problem+json errors turned into readable exceptions.

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || `Erreur ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

// ``key``: the Idempotency-Key of a creating action (see busy): the server creates once per key.
export async function api(method, path, body, { key } = {}) {
  const options = { method, headers: {}, credentials: "same-origin" };
  if (key) options.headers["Idempotency-Key"] = key;
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const outcome = await fetch(path, options).then((response) => ({ response }), (error) => ({ error }));
  if (key) { if (outcome.response) unanswered.delete(key); else unanswered.add(key); }
  return settle(outcome);
}

// Keys whose request got no answer: the server may have done it, so a retry sends the same key.
const unanswered = new Set();
const newKey = () => globalThis.crypto?.randomUUID?.() || `${Date.now()}-${Math.random().toString(16).slice(2)}`;

// The outcome of a fetch already made ({response} or {error}), read as api() reads its own: for
// the requests a page starts before its modules have arrived.
export async function settle({ response, error }) {
  if (error || !response) {
    throw new ApiError(0, { detail: "Le serveur ne répond pas. Vérifiez votre connexion internet puis réessayez." });
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export function showError(element, error, form = element.closest("form")) {
  clearFieldErrors(form);
  const placed = form ? showFieldErrors(form, error) : 0;
  element.textContent = placed ? (placed > 1 ? "Vérifiez les champs signalés en rouge." : "Vérifiez le champ signalé en rouge.")
    : error instanceof ApiError ? error.message : "Une erreur inattendue est survenue.";
  element.hidden = false;
}

// Each field's error beside the field, in words, the field marked for screen readers, and the
// focus on the first one (on a phone, the message at the top is often out of sight). Returns how
// many were placed; the others stay in the message at the top.
const FIELD_ERROR = "field-error";
export function showFieldErrors(form, error) {
  const errors = error instanceof ApiError ? error.problem?.errors || [] : [];
  let first = null;
  let placed = 0;
  for (const { field, detail } of errors) {
    const input = form.querySelector(`[name="${CSS.escape(String(field).split(".")[0])}"]`);
    if (!input || input.closest("[hidden]")) continue;
    const note = el("p", { class: FIELD_ERROR, id: `${input.id || input.name}-error` }, capitalize(detail));
    (input.closest("label:not([for])") || input).insertAdjacentElement("afterend", note);
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", note.id);
    // The first in the form's order, not in the server's.
    if (!first || first.compareDocumentPosition(input) & Node.DOCUMENT_POSITION_PRECEDING) first = input;
    placed += 1;
  }
  first?.focus();
  return placed;
}

export function clearFieldErrors(form) {
  if (!form) return;
  form.querySelectorAll(`.${FIELD_ERROR}`).forEach((n) => n.remove());
  form.querySelectorAll("[aria-invalid]").forEach((i) => { i.removeAttribute("aria-invalid"); i.removeAttribute("aria-describedby"); });
}

const capitalize = (text) => (text ? `${text[0].toUpperCase()}${text.slice(1)}${/[.!?]$/.test(text) ? "" : "."}` : "");

export function formData(form) {
  const data = {};
  for (const [key, value] of new FormData(form).entries()) {
    const text = String(value).trim();
    if (text !== "") data[key] = text;
  }
  return data;
}

// One action from a form: its buttons are disabled while it runs (a double click sends once),
// and ``work`` gets an Idempotency-Key for its creating request, the same again if the last
// attempt got no answer (a retry after a lost connection creates nothing more). The marks of
// the previous answer go: a field corrected and saved is no longer shown in red.
export async function busy(form, work) {
  clearFieldErrors(form);
  const buttons = form.querySelectorAll("button");
  buttons.forEach((b) => (b.disabled = true));
  form.actionKey ??= newKey();
  try {
    return await work(form.actionKey);
  } finally {
    if (!unanswered.has(form.actionKey)) form.actionKey = null;
    buttons.forEach((b) => (b.disabled = false));
  }
}

const PARIS = { timeZone: "Europe/Paris" };
export function dateFr(iso) {
  return iso ? new Date(iso).toLocaleDateString("fr-FR", PARIS) : "";
}
export function dateTimeFr(iso) {
  return iso ? new Date(iso).toLocaleString("fr-FR", { ...PARIS, dateStyle: "short", timeStyle: "short" }) : "";
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export async function logout() {
  try { await api("POST", "/api/auth/logout"); } catch { /* already signed out */ }
  location.href = "/login";
}

// Where to go after signing in: a path of this site only. `/\evil.example` and `//evil.example`
// are other sites to a browser; the URL parser says so, a prefix test did not.
export function sameSitePath(next) {
  if (!next) return null;
  try {
    const url = new URL(next, location.origin);
    return url.origin === location.origin ? url.pathname + url.search + url.hash : null;
  } catch {
    return null;
  }
}

// The server closes a socket whose session ended (signed out, elsewhere too; expired; account
// closed): go to the sign-in page, which says why, and come back here after.
export function watchSession(socket) {
  const toSignIn = (detail) => {
    sessionStorage.setItem("tc-session-ended", detail || "");
    location.href = `/login?next=${encodeURIComponent(location.pathname + location.search)}`;
  };
  socket.on("session:ended", ({ detail }) => toSignIn(detail));
  // The session ended before the socket could connect (signed out elsewhere at that moment):
  // the server refuses it, and no reconnection with this cookie will do better.
  socket.on("connect_error", async (error) => {
    if (error?.message !== "session expired" && error?.message !== "not signed in") return;
    socket.disconnect();
    const me = await fetch("/api/me", { credentials: "same-origin" }).catch(() => null);
    if (me && me.status === 401) toSignIn("Votre session a pris fin. Reconnectez-vous.");
  });
}

// Dates are typed the French way (JJ/MM/AAAA), whatever the browser's language: a date input
// shows mm/dd/yyyy on an English-language browser and a patient types her birthday backwards.
// Returns the ISO date the API takes, "" for an empty field, or null when it cannot be read.
export function isoDate(text) {
  const value = String(text ?? "").trim();
  if (!value) return "";
  const iso = value.match(/^(\d{4})-(\d{2})-(\d{2})$/);
  const fr = value.match(/^(\d{1,2})[\/.\- ](\d{1,2})[\/.\- ](\d{4})$/) || value.match(/^(\d{2})(\d{2})(\d{4})$/);
  const [y, m, d] = iso ? [iso[1], iso[2], iso[3]] : fr ? [fr[3], fr[2], fr[1]] : [];
  if (!y) return null;
  const date = new Date(Date.UTC(Number(y), Number(m) - 1, Number(d)));
  if (date.getUTCFullYear() !== Number(y) || date.getUTCMonth() !== Number(m) - 1 || date.getUTCDate() !== Number(d)) return null;
  return `${y}-${String(m).padStart(2, "0")}-${String(d).padStart(2, "0")}`;
}
export const frDate = (iso) => (iso ? iso.split("-").reverse().join("/") : "");
// A date field's value for the API, or a field error shown beside it (and null returned).
// The privacy notice box of a sign-up form: ticked, or its error beside it (the server records
// the consent with its time). Returns the value to send, or null when the box is not ticked.
export function privacyConsent(form, errorBox) {
  if (form.elements.accept_privacy?.checked) return true;
  showError(errorBox, new ApiError(422, {
    detail: "Cochez la case de la notice sur vos données.",
    errors: [{ field: "accept_privacy", detail: "cochez cette case pour créer votre compte (lisez la notice si vous le souhaitez)" }],
  }), form);
  return null;
}

export function dateField(form, name, errorBox) {
  const value = isoDate(form.elements[name]?.value);
  if (value !== null) return value;
  showError(errorBox, new ApiError(422, {
    detail: "Vérifiez la date.",
    errors: [{ field: name, detail: "écrivez la date comme 23/11/1950 (jour, mois, année)" }],
  }), form);
  return null;
}
