import { io } from "/static/vendor/socket.io.esm.min.js";
import { ApiError, api, busy, dateFr, dateTimeFr, el, formData, isoDate, logout, showError, watchSession } from "./api.js";
import { iconText } from "./icons.js";
import { listenForCalls } from "./ring.js";
import { showVerifyBanner } from "./verify-banner.js";
import { Thread } from "./thread.js";

const $ = (id) => document.getElementById(id);
const STATUS = { pending: "En attente", accepted: "Acceptée", expired: "Expirée", cancelled: "Annulée", declined: "Déclinée" };
const DELIVERY = { queued: "envoi en cours", sending: "envoi en cours", sent: "envoyée", retrying: "échec, nouvel essai prévu", failed: "échec de l'envoi" };
let me = null;
let socket = null;
let thread = null;
let conversations = [];
const TABS = ["conversations", "invitations", "requests", "messaging"];

function selectTab(name) {
  closeThread();
  for (const tab of TABS) {
    $(`tab-${tab}`).setAttribute("aria-selected", String(tab === name));
    $(`panel-${tab}`).hidden = tab !== name;
  }
  if (name === "invitations") loadInvitations();
  if (name === "requests") loadRequests();
  if (name === "conversations") { loadConversations(); loadCalls(); }
  if (name === "messaging") loadMessaging();
}
for (const tab of TABS) $(`tab-${tab}`).addEventListener("click", () => selectTab(tab));

function openThread(id) {
  closeThread();
  for (const tab of TABS) $(`panel-${tab}`).hidden = true;
  $("panel-thread").hidden = false;
  history.replaceState(null, "", `#c=${id}`);
  thread = new Thread({ root: $("panel-thread"), me, socket, conversationId: id, onBack: () => selectTab("conversations") });
  thread.start();
}
function closeThread() {
  if (!thread) return;
  thread.close();
  thread = null;
  $("panel-thread").hidden = true;
  history.replaceState(null, "", location.pathname);
}
$("requests-banner-open").addEventListener("click", () => selectTab("requests"));
$("logout").addEventListener("click", logout);

const CALL_STATUS = { ringing: "En attente", active: "En cours", ended: "Terminé" };
async function loadCalls() {
  try {
    const data = await api("GET", "/api/calls");
    $("calls-card").hidden = data.items.length === 0;
    $("calls").replaceChildren(...data.items.map((c) => el("li", { "data-id": c.id },
      el("span", {}, el("span", { class: "who" }, `${c.patient.first_name} ${c.patient.last_name}`),
        el("span", { class: "meta" }, ` · ${c.practitioner.display_name} · ${dateTimeFr(c.created_at)}`), el("br"),
        el("span", { class: `badge ${{ ringing: "pending", active: "accepted" }[c.status] || "expired"}` }, CALL_STATUS[c.status] || c.status),
        c.nurse_id === me.id ? el("span", { class: "meta" }, c.assistance === "in_room" ? " · avec le patient" : " · à distance") : null),
      c.status !== "ended" ? el("a", { class: "button", href: new URL(c.join_url, location.href).pathname }, "Rejoindre")
        : el("a", { class: "button secondary", href: new URL(c.join_url, location.href).pathname }, "Documents et cotation"))));
  } catch { /* the list is a help; the conversations still work */ }
}

const euros = (cents) => (cents / 100).toLocaleString("fr-FR", { style: "currency", currency: "EUR" });
const PAID_METHODS = { card_terminal: "Carte au cabinet", transfer: "Virement", cheque: "Chèque", cash: "Espèces", other: "Autre" };
async function loadOwed() {
  if (me.role !== "doctor" && me.role !== "secretary") return;
  try {
    const data = await api("GET", "/api/payment-requests?status=requested");
    $("owed-card").hidden = data.items.length === 0;
    $("owed-total").textContent = `(${euros(data.owed_cents)})`;
    $("owed").replaceChildren(...data.items.map((r) => {
      const method = el("select", { "aria-label": "Moyen de paiement" },
        ...Object.entries(PAID_METHODS).map(([value, label]) => el("option", { value }, label)));
      const act = async (path, body) => {
        try { await api("POST", `/api/payment-requests/${r.id}/${path}`, body); loadOwed(); }
        catch (e) { alert(e.message); }
      };
      return el("li", { "data-id": r.id },
        el("span", {}, el("span", { class: "who" }, `${r.patient.first_name} ${r.patient.last_name}`),
          el("span", { class: "meta" }, ` · ${euros(r.amount_cents)} · ${r.label} · ${dateTimeFr(r.created_at)}`)),
        el("span", { class: "actions" }, method,
          el("button", { type: "button", onclick: () => act("mark-paid", { method: method.value }) }, "Marquer payé"),
          el("button", { type: "button", class: "secondary", onclick: () => { if (confirm("Annuler cette demande de paiement ?")) act("cancel"); } }, "Annuler")));
    }));
  } catch { /* a help, not the page */ }
}

async function loadConversations() {
  const q = $("search").value.trim();
  const data = await api("GET", `/api/conversations${q ? `?q=${encodeURIComponent(q)}` : ""}`);
  if (!q) conversations = data.items;
  const list = $("conversations");
  list.replaceChildren(...data.items.map((c) => el("li", { "data-id": c.id, class: "clickable", tabindex: 0,
    onclick: () => openThread(c.id), onkeydown: (e) => { if (e.key === "Enter") openThread(c.id); } },
    el("span", {}, el("span", { class: "who" }, `${c.patient.first_name} ${c.patient.last_name}`),
      el("br"), el("span", { class: "meta" }, ...(c.last_message
        ? [c.last_message.author.id === me.id ? "Vous : " : "", ...iconText((c.last_message.body || "📎 pièce jointe").slice(0, 90))]
        : [`Depuis le ${dateFr(c.created_at)}`]))),
    c.unread ? el("span", { class: "unread", "aria-label": `${c.unread} non lus` }, String(c.unread)) : null,
  )));
  $("conversations-empty").hidden = data.items.length > 0;
  $("conversations-empty").textContent = q ? `Aucun patient ne correspond à « ${q} ».`
    : "Aucune conversation pour le moment. Invitez un patient depuis l'onglet « Invitations ».";
}
let searchTimer;
$("search").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(loadConversations, 200); });

function invitationItem(inv) {
  const contact = inv.email || inv.phone;
  const badge = el("span", { class: `badge ${inv.status}` }, STATUS[inv.status] || inv.status);
  const since = el("span", { class: "meta" }, ` depuis le ${dateTimeFr(inv.status_changed_at)}`);
  const lines = [
    el("span", { class: "who" }, `${inv.first_name} ${inv.last_name}`), el("br"),
    el("span", { class: "meta" }, `${inv.channel === "sms" ? "SMS" : "E-mail"} · ${contact}`), el("br"),
    badge, since,
  ];
  if (inv.status === "pending" && inv.delivery) {
    const d = inv.delivery;
    const cls = d.status === "failed" ? "failed" : d.status === "retrying" ? "retrying" : "";
    lines.push(el("br"), el("span", { class: `meta ${cls ? `badge ${cls}` : ""}`, "data-delivery": d.status },
      `Message : ${DELIVERY[d.status] || d.status}${d.status === "sent" ? ` le ${dateTimeFr(d.sent_at)}` : ""}`));
  }
  if (inv.status === "pending") lines.push(el("br"), el("span", { class: "meta" }, `Valable jusqu'au ${dateFr(inv.expires_at)}`));
  const error = el("p", { class: "alert error", role: "alert", hidden: true });
  const actions = el("div", { class: "actions" });
  const item = el("li", { "data-id": inv.id, "data-status": inv.status }, el("span", {}, ...lines), actions, error);
  const act = async (work) => {
    error.hidden = true;
    await busy(item, async () => {
      try { await work(); await loadInvitations(); } catch (e) { showError(error, e); }
    });
  };
  if (inv.status === "pending") {
    actions.append(
      el("button", { class: "secondary", type: "button", onclick: () => act(() => api("POST", `/api/invitations/${inv.id}/resend`)) }, "Renvoyer"),
      el("button", { class: "secondary", type: "button", onclick: () => editInvitation(item, inv) }, "Corriger"),
      el("button", { class: "danger", type: "button", onclick: () => {
        if (confirm(`Annuler l'invitation de ${inv.first_name} ${inv.last_name} ?`)) act(() => api("POST", `/api/invitations/${inv.id}/cancel`));
      } }, "Annuler"),
    );
  }
  return item;
}

function editInvitation(item, inv) {
  const field = (name, label, value, type = "text") => [
    el("label", { for: `edit-${name}-${inv.id}` }, label),
    el("input", { id: `edit-${name}-${inv.id}`, name, type, value: value || "" }),
  ];
  const error = el("p", { class: "alert error", role: "alert", hidden: true });
  const form = el("form", { class: "card", novalidate: true },
    ...field("first_name", "Prénom", inv.first_name), ...field("last_name", "Nom", inv.last_name),
    ...field("email", "Adresse e-mail", inv.email, "email"), ...field("phone", "Téléphone mobile", inv.phone, "tel"),
    error,
    el("div", { class: "actions" },
      el("button", { type: "submit" }, "Corriger et renvoyer"),
      el("button", { class: "secondary", type: "button", onclick: () => loadInvitations() }, "Fermer")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const data = formData(form);
    const body = {
      first_name: data.first_name, last_name: data.last_name,
      email: data.email ?? null, phone: data.phone ?? null,
    };
    await busy(form, async () => {
      try { await api("PATCH", `/api/invitations/${inv.id}`, body); await loadInvitations(); } catch (e) { showError(error, e); }
    });
  });
  item.replaceChildren(form);
}

async function loadInvitations() {
  try {
    const data = await api("GET", "/api/invitations");
    $("invitations").replaceChildren(...data.items.map(invitationItem));
    $("invitations-empty").hidden = data.items.length > 0;
  } catch (e) { showError($("invitations-error"), e); }
}

$("invite").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = $("invite");
  $("invite-error").hidden = true;
  $("invite-ok").hidden = true;
  const data = formData(form);
  if (!data.email && !data.phone) {
    $("invite-error").textContent = "Indiquez l'adresse e-mail ou le numéro de mobile du patient.";
    $("invite-error").hidden = false;
    return;
  }
  await busy(form, async (key) => {
    try {
      const inv = await api("POST", "/api/invitations", data, { key });
      form.reset();
      $("invite-ok").textContent = inv.delivery_status === "sent"
        ? `Invitation envoyée à ${inv.first_name} ${inv.last_name} par ${inv.channel === "sms" ? "SMS" : "e-mail"}.`
        : `Invitation enregistrée ; l'envoi a échoué et sera réessayé automatiquement.`;
      $("invite-ok").hidden = false;
      await loadInvitations();
    } catch (e) { showError($("invite-error"), e); }
  });
});

function requestItem(r) {
  const error = el("p", { class: "alert error", role: "alert", hidden: true });
  const actions = el("div", { class: "actions" });
  const item = el("li", { "data-id": r.id, "data-status": r.status },
    el("span", {}, el("span", { class: "who" }, `${r.patient.first_name} ${r.patient.last_name}`), el("br"),
      el("span", { class: "meta" }, `Le ${dateTimeFr(r.created_at)}`),
      r.message ? [el("br"), el("span", {}, `« ${r.message} »`)] : null, el("br"),
      el("span", { class: `badge ${r.status}` }, STATUS[r.status] || r.status)),
    actions, error);
  const decide = (what) => busy(item, async () => {
    try { await api("POST", `/api/contact-requests/${r.id}/${what}`); await loadRequests(); } catch (e) { showError(error, e); }
  });
  if (r.status === "pending") {
    actions.append(
      el("button", { type: "button", onclick: () => decide("accept") }, "Accepter"),
      el("button", { class: "danger", type: "button", onclick: () => decide("decline") }, "Décliner"));
  }
  return item;
}

async function loadRequests() {
  try {
    const data = await api("GET", "/api/contact-requests");
    $("requests").replaceChildren(...data.items.map(requestItem));
    $("requests-empty").hidden = data.items.length > 0;
    const pending = data.items.filter((r) => r.status === "pending").length;
    $("requests-banner").hidden = pending === 0;
    $("requests-banner-text").textContent = pending === 1 ? "1 demande de mise en relation en attente"
      : `${pending} demandes de mise en relation en attente`;
  } catch (e) { showError($("requests-error"), e); }
}

// Away dates are whole days typed JJ/MM/AAAA: from the first day's midnight to the end of the
// last day ("au 03/01 inclus"), whatever the browser's language.
const dayText = (date) => date.toLocaleDateString("fr-FR", { day: "2-digit", month: "2-digit", year: "numeric" });
const fromInput = (iso) => (iso ? dayText(new Date(iso)) : "");
const untilInput = (iso) => (iso ? dayText(new Date(new Date(iso).getTime() - 1)) : "");
function dayStart(text, next = 0) {
  const iso = isoDate(text);
  if (!iso) return null;
  const [y, m, d] = iso.split("-").map(Number);
  return new Date(y, m - 1, d + next).toISOString();
}

// The doctor sees at once that patients meet the away message (issue 26, item 10).
function showAway(away) {
  const now = Date.now();
  const from = away?.from ? new Date(away.from) : null;
  const until = away?.until ? new Date(away.until) : null;
  if (!away || (until && until <= now)) { $("away-banner").hidden = true; return; }
  const last = until ? untilInput(away.until) : null;
  $("away-banner-text").textContent = away.active ?? (!from || from <= now)
    ? `Mode absence en cours${last ? ` jusqu'au ${last} inclus` : ""} : vos patients voient votre message d'absence et ne peuvent pas vous écrire, sauf ceux que vous avez choisis.`
    : `Absence prévue du ${fromInput(away.from)}${last ? ` au ${last} inclus` : ""}.`;
  $("away-banner").hidden = false;
}
$("away-banner-open").addEventListener("click", () => selectTab("messaging"));

async function loadMessaging() {
  $("messaging-error").hidden = true;
  $("messaging-ok").hidden = true;
  try {
    const [settings, list] = await Promise.all([api("GET", "/api/me/messaging"), api("GET", "/api/conversations")]);
    $("msg-open").checked = settings.open;
    $("away-on").checked = Boolean(settings.away);
    $("away-fields").hidden = !settings.away;
    $("away-from").value = fromInput(settings.away?.from);
    $("away-until").value = untilInput(settings.away?.until);
    showAway(settings.away);
    $("away-message").value = settings.away?.message || "";
    const chosen = new Set(settings.away?.exceptions || []);
    $("away-exceptions").replaceChildren(...list.items.map((c) => el("label", { class: "inline" },
      el("input", { type: "checkbox", value: c.patient.id, checked: chosen.has(c.patient.id) }),
      ` ${c.patient.first_name} ${c.patient.last_name}`)));
    if (!list.items.length) $("away-exceptions").replaceChildren(el("p", { class: "empty" }, "Aucun patient suivi."));
  } catch (e) { showError($("messaging-error"), e); }
}
$("away-on").addEventListener("change", () => { $("away-fields").hidden = !$("away-on").checked; });
$("messaging").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("messaging-error").hidden = true;
  $("messaging-ok").hidden = true;
  const body = { open: $("msg-open").checked, away: null };
  if ($("away-on").checked) {
    const from = $("away-from").value.trim(), until = $("away-until").value.trim();
    const start = from ? dayStart(from) : null, end = until ? dayStart(until, 1) : null;
    const unreadable = [[from, start, "away_from"], [until, end, "away_until"]].filter(([text, value]) => text && !value);
    if (unreadable.length) {
      showError($("messaging-error"), new ApiError(422, { detail: "Vérifiez la date.",
        errors: unreadable.map(([, , field]) => ({ field, detail: "écrivez la date comme 20/12/2026 (jour, mois, année)" })) }));
      return;
    }
    body.away = {
      from: start,
      until: end,
      message: $("away-message").value.trim() || null,
      exceptions: [...$("away-exceptions").querySelectorAll("input:checked")].map((i) => i.value),
    };
  }
  await busy($("messaging"), async () => {
    try {
      const saved = await api("PUT", "/api/me/messaging", body);
      showAway(saved.away);
      $("messaging-ok").textContent = "Réglages enregistrés.";
      $("messaging-ok").hidden = false;
    } catch (e) { showError($("messaging-error"), e); }
  });
});

let refreshTimer;
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => { if (!$("panel-conversations").hidden) loadConversations(); }, 300);
}

async function start() {
  try {
    me = await api("GET", "/api/me");
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { location.href = "/login?next=/pro"; return; }
    throw e;
  }
  if (me.role === "patient") { location.href = "/patient"; return; }
  $("me").textContent = me.display_name;
  if (me.pending_approval) {
    // Nothing else works before the administrator's approval: say so instead of failing.
    document.querySelectorAll("main > :not(#pending)").forEach((node) => { node.hidden = true; });
    $("pending").hidden = false;
    return;
  }
  showVerifyBanner(me, document.querySelector("main").firstElementChild);
  const practitioner = me.role === "doctor" || me.role === "nurse";
  $("tab-invitations").hidden = !practitioner;
  $("tab-requests").hidden = !practitioner;
  $("tab-messaging").hidden = !practitioner;
  // A WebSocket refused (some hospital proxies do): long-polling over plain HTTP instead.
  socket = io({ transports: ["websocket", "polling"], tryAllTransports: true });
  listenForCalls(socket);
  watchSession(socket);
  // A page with a conversation open gets its messages instead of their activity.
  socket.on("conversation:activity", refreshSoon);
  socket.on("message:new", refreshSoon);
  socket.on("call:ring", () => loadCalls());
  socket.on("payment:updated", () => loadOwed());
  // Read before the lists load: a click on the list meanwhile must not be opened twice.
  const opened = new URLSearchParams(location.hash.slice(1)).get("c");
  await Promise.all([loadConversations(), loadCalls(), loadOwed()]);
  if (practitioner) {
    await loadRequests();
    api("GET", "/api/me/messaging").then((settings) => showAway(settings.away), () => {});
  }
  if (opened && !thread) openThread(opened);
}
start();
