import { io } from "/static/vendor/socket.io.esm.min.js";
import { ApiError, api, busy, dateFr, dateTimeFr, el, logout, showError, watchSession } from "./api.js";
import { iconText } from "./icons.js";
import { offerPush } from "./push-offer.js";
import { showVerifyBanner } from "./verify-banner.js";
import { listenForCalls } from "./ring.js";
import { Thread } from "./thread.js";

const $ = (id) => document.getElementById(id);
const STATUS = { pending: "En attente de réponse", accepted: "Acceptée", declined: "Déclinée" };
const SPECIALTY = { general_practice: "Médecine générale", pediatrics: "Pédiatrie", gynecology: "Gynécologie",
  ophthalmology: "Ophtalmologie", psychiatry: "Psychiatrie", dermatology: "Dermatologie", cardiology: "Cardiologie" };
$("logout").addEventListener("click", logout);

const nameOf = (p) => p.display_name;
let me = null;
let socket = null;
let thread = null;

function openThread(id) {
  closeThread();
  $("home").hidden = true;
  $("panel-thread").hidden = false;
  history.replaceState(null, "", `#c=${id}`);
  thread = new Thread({ root: $("panel-thread"), me, socket, conversationId: id, onBack: closeThread });
  thread.start();
}
function closeThread() {
  if (thread) { thread.close(); thread = null; }
  $("panel-thread").hidden = true;
  $("home").hidden = false;
  history.replaceState(null, "", location.pathname);
  loadConversations();
}

async function loadConversations() {
  const data = await api("GET", "/api/conversations");
  $("conversations").replaceChildren(...data.items.map((c) => el("li", { "data-id": c.id, class: "clickable", tabindex: 0,
    onclick: () => openThread(c.id), onkeydown: (e) => { if (e.key === "Enter") openThread(c.id); } },
    el("span", {}, el("span", { class: "who" }, nameOf(c.practitioner)), el("br"),
      el("span", { class: "meta" }, ...(c.last_message
        ? [c.last_message.author.id === me.id ? "Vous : " : "", ...iconText((c.last_message.body || "📎 pièce jointe").slice(0, 90))]
        : [`Depuis le ${dateFr(c.created_at)}`]))),
    c.unread ? el("span", { class: "unread", "aria-label": `${c.unread} non lus` }, String(c.unread)) : null)));
  $("conversations-empty").hidden = data.items.length > 0;
}

const KIND = { prescription: "Ordonnance", sick_leave: "Arrêt de travail" };
const PAYMENT = { requested: "À régler", paid: "Réglé", cancelled: "Annulée", expired: "Expirée" };
const euros = (cents, currency) => new Intl.NumberFormat("fr-FR", { style: "currency", currency: currency || "EUR" }).format(cents / 100);

// Every document and payment request of every conversation, newest first: an ordonnance is found
// without scrolling a thread.
async function loadPapers() {
  const [documents, payments] = await Promise.all([api("GET", "/api/documents"), api("GET", "/api/payment-requests")]);
  const items = [
    ...documents.items.map((d) => ({ at: d.created_at, node: el("li", { "data-document": d.id },
      el("span", {}, el("span", { class: "who" }, KIND[d.kind] || d.filename), el("br"),
        el("span", { class: "meta" }, `${d.author.display_name} · ${dateFr(d.created_at)}`)),
      el("a", { class: "button secondary", href: d.url, target: "_blank", rel: "noopener" }, "Ouvrir")) })),
    ...payments.items.map((p) => ({ at: p.created_at, node: el("li", { "data-payment": p.id },
      el("span", {}, el("span", { class: "who" }, `${p.label} · ${euros(p.amount_cents, p.currency)}`), el("br"),
        el("span", { class: "meta" }, `${p.payee ? p.payee.display_name : ""} · ${dateFr(p.created_at)}`), el("br"),
        el("span", { class: `badge ${p.status}` }, PAYMENT[p.status] || p.status)),
      p.status === "requested" ? el("a", { class: "button", href: `/p/${p.id}` }, "Payer") : null) })),
  ].sort((a, b) => (a.at < b.at ? 1 : -1));
  $("papers").replaceChildren(...items.map((i) => i.node));
  $("papers-empty").hidden = items.length > 0;
}

async function loadRequests() {
  const data = await api("GET", "/api/contact-requests");
  $("requests").replaceChildren(...data.items.map((r) => el("li", { "data-id": r.id },
    el("span", {}, el("span", { class: "who" }, nameOf(r.practitioner)), el("br"),
      el("span", { class: "meta" }, `Envoyée le ${dateTimeFr(r.created_at)}`), el("br"),
      el("span", { class: `badge ${r.status}` }, STATUS[r.status] || r.status)))));
  $("requests-empty").hidden = data.items.length > 0;
}

function practitionerItem(p) {
  const error = el("p", { class: "alert error", role: "alert", hidden: true });
  const message = el("textarea", { rows: 2, maxlength: 1000, placeholder: "Message (facultatif) : motif, date du rendez-vous…", "aria-label": "Message" });
  const form = el("form", { novalidate: true }, message, error,
    el("div", { class: "actions" }, el("button", { type: "submit" }, "Demander une mise en relation")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    await busy(form, async (key) => {
      try {
        await api("POST", "/api/contact-requests", { practitioner_id: p.id, message: message.value.trim() || null }, { key });
        form.replaceChildren(el("p", { class: "alert ok", role: "status" }, "Demande envoyée. Vous serez en relation dès que le praticien l'aura acceptée."));
        await loadRequests();
      } catch (e) { showError(error, e); }
    });
  });
  const where = p.practice ? ` · ${p.practice.name}${p.practice.address ? `, ${p.practice.address}` : ""}` : "";
  return el("li", { "data-id": p.id },
    el("span", {}, el("span", { class: "who" }, nameOf(p)), el("br"),
      el("span", { class: "meta" }, `${SPECIALTY[p.specialty] || (p.role === "nurse" ? "Infirmier·e" : "")}${where}`)),
    form);
}

$("find").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("find-error").hidden = true;
  const q = $("q").value.trim();
  try {
    const data = await api("GET", `/api/practitioners?q=${encodeURIComponent(q)}`);
    $("results").hidden = false;
    $("practitioners").replaceChildren(...data.items.map(practitionerItem));
    if (!data.items.length) $("practitioners").replaceChildren(el("li", { class: "empty" }, `Aucun praticien ne correspond à « ${q} ».`));
  } catch (e) { showError($("find-error"), e); }
});

async function start() {
  try {
    me = await api("GET", "/api/me");
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { location.href = "/login?next=/patient"; return; }
    throw e;
  }
  if (me.role !== "patient") { location.href = "/pro"; return; }
  $("me").textContent = `${me.first_name} ${me.last_name}`;
  showVerifyBanner(me, document.querySelector("main").firstElementChild);
  offerPush($("find")).catch(() => {});
  // A WebSocket refused (some hospital proxies do): long-polling over plain HTTP instead.
  socket = io({ transports: ["websocket", "polling"], tryAllTransports: true });
  listenForCalls(socket, me);
  watchSession(socket);
  let refreshTimer;
  const refreshSoon = () => {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => { if (!$("home").hidden) { loadConversations(); loadPapers(); } }, 300);
  };
  // A page with a conversation open gets its messages instead of their activity.
  socket.on("conversation:activity", refreshSoon);
  socket.on("message:new", refreshSoon);
  // The link's conversation, read before the lists load: a tap on the list meanwhile sets the
  // same hash, and opening it a second time would drop what the person started there.
  const opened = new URLSearchParams(location.hash.slice(1)).get("c");
  await Promise.all([loadConversations(), loadRequests(), loadPapers()]);
  if (opened && !thread) openThread(opened);
}
start();
