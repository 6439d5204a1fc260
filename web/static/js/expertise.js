// Tele-expertise: the line's inbox (open, mine, late), my requests, the request form (the
// line's instructions and questionnaire, the patient, consent, files), the request with its
// thread and the expert's actions (claim, answer with a template, refuse), the line's settings.
import { io } from "/static/vendor/socket.io.esm.min.js";
import { ApiError, api, busy, dateTimeFr, el, isoDate, showError, watchSession } from "./api.js";
import { Thread } from "./thread.js";

const $ = (id) => document.getElementById(id);
const TABS = ["received", "sent", "new", "lines"];
const STATUS = { open: "Ouverte", claimed: "Prise en charge", answered: "Répondue", rejected: "Refusée", closed: "Clôturée" };
let me = null;
let socket = null;
let thread = null;
let current = null; // the request shown
let chosenLine = null;
let askFiles = [];
let lineMembers = new Map(); // id → person, in the line form
let editingLine = null;

function age(hours) {
  if (hours < 1) return "il y a moins d'une heure";
  if (hours < 48) return `il y a ${Math.floor(hours)} h`;
  return `il y a ${Math.floor(hours / 24)} jours`;
}

function selectTab(name) {
  closeRequest();
  for (const tab of TABS) {
    $(`tab-${tab}`).setAttribute("aria-selected", String(tab === name));
    $(`panel-${tab}`).hidden = tab !== name;
  }
  if (name === "received") loadList("received");
  if (name === "sent") loadList("sent");
  if (name === "new") searchLines();
  if (name === "lines") loadMyLines();
}
for (const tab of TABS) $(`tab-${tab}`).addEventListener("click", () => selectTab(tab));

function requestItem(r) {
  const who = r.line ? r.line.name : r.expert?.display_name;
  const late = r.late ? el("strong", { class: "late" }, " · en retard") : "";
  return el("li", { class: "item", tabindex: "0", role: "button", "data-id": r.id, onclick: () => openRequest(r.id),
    onkeydown: (e) => { if (e.key === "Enter") openRequest(r.id); } },
  el("strong", {}, `${r.patient.first_name} ${r.patient.last_name}`),
  el("span", { class: "meta" }, ` · ${STATUS[r.status] || r.status} · ${age(r.age_hours)}`), late, el("br"),
  el("span", { class: "meta" }, `${r.requester.display_name} → ${who} · ${r.question.slice(0, 120)}`));
}

async function loadList(box) {
  const status = box === "received" ? $("filter").value : "";
  try {
    const { items } = await api("GET", `/api/expertise/requests?box=${box}${status ? `&status=${status}` : ""}`);
    $(box).replaceChildren(...items.map(requestItem));
    $(`${box}-empty`).hidden = items.length > 0;
  } catch (e) { showError($("problem"), e); }
}
$("filter").addEventListener("change", () => loadList("received"));

// --- the request and its thread -------------------------------------------------------------
function closeRequest() {
  thread?.close();
  thread = null;
  current = null;
  $("panel-request").hidden = true;
  if (location.hash) history.replaceState(null, "", location.pathname);
}

async function openRequest(id) {
  let r;
  try { r = await api("GET", `/api/expertise/requests/${id}`); } catch (e) { showError($("problem"), e); return; }
  // The tab it belongs to stays lit: the requester's "Mes demandes", the expert's inbox.
  const home = r.requester.id === me.id ? "sent" : "received";
  for (const tab of TABS) {
    $(`panel-${tab}`).hidden = true;
    $(`tab-${tab}`).setAttribute("aria-selected", String(tab === home));
  }
  $("panel-request").hidden = false;
  history.replaceState(null, "", `#r=${id}`);
  current = r;
  renderRequest(r);
  thread?.close();
  thread = new Thread({ root: $("request-thread"), me, socket, conversationId: r.conversation_id, between: "professionals", backLabel: null,
    onBack: () => selectTab(r.requester.id === me.id ? "sent" : "received") });
  thread.start();
}

async function renderRequest(r) {
  const p = r.patient;
  $("r-title").textContent = `${p.first_name} ${p.last_name.toUpperCase()}, né(e) le ${p.birth_date.split("-").reverse().join("/")}`;
  const to = r.line ? `ligne « ${r.line.name} »` : r.expert.display_name;
  $("r-meta").textContent = `Demande de ${r.requester.display_name} à ${to}, ${dateTimeFr(r.created_at)} ; réponse attendue avant le ${dateTimeFr(r.due_at)}.`;
  let status = STATUS[r.status] || r.status;
  if (r.claimed_by && r.status === "claimed") status += ` par ${r.claimed_by.display_name}`;
  if (r.status === "rejected") status += ` : ${r.reject_reason}`;
  if (r.late) status += " — délai dépassé";
  $("r-status").textContent = status;
  $("r-status").className = `alert ${r.late ? "error" : r.status === "answered" || r.status === "closed" ? "ok" : ""}`;
  const expert = r.requester.id !== me.id;
  const open = r.status === "open" || r.status === "claimed";
  const actions = [];
  if (expert && r.status === "open") actions.push(el("button", { type: "button", onclick: () => act("claim") }, "Je prends la demande"));
  if (expert && open) {
    actions.push(el("button", { type: "button", class: "secondary", onclick: () => { $("answer-form").hidden = false; $("reject-form").hidden = true; $("answer-text").focus(); } }, "Répondre"));
    actions.push(el("button", { type: "button", class: "danger", onclick: () => { $("reject-form").hidden = false; $("answer-form").hidden = true; $("reject-reason").focus(); } }, "Refuser"));
  }
  if (r.status === "answered") actions.push(el("button", { type: "button", class: "secondary", onclick: () => act("close") }, "Clôturer"));
  $("r-actions").replaceChildren(...actions);
  $("answer-form").hidden = true;
  $("reject-form").hidden = true;
  if (expert && open) loadTemplates();
  loadBilling(r);
}

// RQD for the requester, TE2 for the expert who answered: proposed by the server's rules.
const euros = (cents) => (cents / 100).toLocaleString("fr-FR", { style: "currency", currency: "EUR" });
let billing = null;
async function loadBilling(r) {
  const mine = r.requester.id === me.id || r.answered_by?.id === me.id;
  $("bill").hidden = true;
  if (!mine || !["answered", "closed"].includes(r.status)) return;
  try { billing = await api("GET", `/api/expertise/requests/${r.id}/billing`); } catch { return; }
  $("bill").hidden = false;
  $("bill-error").hidden = true;
  const act = billing.acts[0];
  $("bill-proposal").textContent = billing.record
    ? `Cotation enregistrée : ${billing.record.acts.map((a) => a.code).join(" + ")}, ${euros(billing.record.total_cents)}.`
    : act ? `${act.code} — ${act.label} : ${euros(act.amount_cents)}.` : "Rien à facturer.";
  $("bill-warnings").replaceChildren(...[...billing.errors.map((e) => e.detail), ...billing.warnings].map((w) => el("li", {}, w)));
  $("bill-nir-box").hidden = Boolean(billing.record || billing.patient_nir);
  $("bill-send").hidden = Boolean(billing.record) || !act;
  $("bill-done").hidden = true;
}
$("bill").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("bill-error").hidden = true;
  await busy($("bill"), async () => {
    try {
      const record = await api("POST", `/api/expertise/requests/${current.id}/billing`, {
        acts: billing.acts.map((a) => ({ code: a.code })),
        patient: { nir: $("bill-nir").value.trim() || null },
      });
      $("bill-done").textContent = `Cotation enregistrée : ${record.acts.map((a) => a.code).join(" + ")}, ${euros(record.total_cents)}. Elle figure dans l'export mensuel (Mon cabinet).`;
      $("bill-done").hidden = false;
      $("bill-send").hidden = true;
      $("bill-nir-box").hidden = true;
    } catch (e) { showError($("bill-error"), e); }
  });
});

async function act(what, body) {
  try {
    current = await api("POST", `/api/expertise/requests/${current.id}/${what}`, body);
    renderRequest(current);
    return true;
  } catch (e) { showError($("problem"), e); return false; }
}

async function loadTemplates() {
  try {
    const { items } = await api("GET", "/api/expertise/templates");
    $("template").replaceChildren(el("option", { value: "" }, items.length ? "— choisir —" : "Aucun modèle"),
      ...items.map((t) => el("option", { value: t.body }, `${t.title}${t.scope === "line" ? " (équipe)" : ""}`)));
  } catch { /* templates are a help, not a need */ }
}
$("insert").addEventListener("click", () => {
  const text = $("template").value;
  if (!text) return;
  const area = $("answer-text");
  const at = area.selectionStart ?? area.value.length;
  area.value = `${area.value.slice(0, at)}${text}${area.value.slice(at)}`;
  area.focus();
});
$("answer-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("answer-error").hidden = true;
  if (!$("answer-text").value.trim()) {
    showError($("answer-error"), new ApiError(422, { detail: "Écrivez votre avis.", errors: [{ field: "body", detail: "écrivez votre avis" }] }));
    return;
  }
  await busy($("answer-form"), async () => {
    try {
      current = await api("POST", `/api/expertise/requests/${current.id}/answer`, { body: $("answer-text").value.trim() });
      $("answer-text").value = "";
      renderRequest(current);
    } catch (e) { showError($("answer-error"), e); }
  });
});
$("template-save").addEventListener("click", async () => {
  $("answer-error").hidden = $("template-ok").hidden = true;
  const body = { title: $("template-title").value.trim(), body: $("answer-text").value.trim(), scope: $("template-scope").value };
  if (body.scope === "line") body.line_id = current.line?.id;
  try {
    const saved = await api("POST", "/api/expertise/templates", body);
    $("template-ok").textContent = `Modèle « ${saved.title} » enregistré.`;
    $("template-ok").hidden = false;
    loadTemplates();
  } catch (e) { showError($("answer-error"), e); }
});

let participantTimer;
$("participant-search").addEventListener("input", () => {
  clearTimeout(participantTimer);
  participantTimer = setTimeout(async () => {
    const q = $("participant-search").value.trim();
    if (q.length < 2) { $("participant-results").replaceChildren(); return; }
    try {
      const { items } = await api("GET", `/api/practitioners?q=${encodeURIComponent(q)}`);
      $("participant-results").replaceChildren(...items.filter((p) => p.id !== me.id).map((p) => el("li", { class: "item" },
        p.display_name, " ", el("button", { type: "button", class: "link", onclick: () => addParticipant(p) }, "Ajouter"))));
    } catch { $("participant-results").replaceChildren(); }
  }, 250);
});
async function addParticipant(person) {
  $("participant-ok").hidden = $("participant-error").hidden = true;
  try {
    await api("POST", `/api/expertise/requests/${current.id}/participants`, { user_id: person.id });
    $("participant-ok").textContent = `${person.display_name} suit désormais l'échange.`;
    $("participant-ok").hidden = false;
    $("participant-results").replaceChildren();
    $("participant-search").value = "";
    thread?.loadDetails();
  } catch (e) { showError($("participant-error"), e); }
}

$("reject-preset").addEventListener("change", () => { if ($("reject-preset").value) $("reject-reason").value = $("reject-preset").value; });
$("reject-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("reject-error").hidden = true;
  await busy($("reject-form"), async () => {
    try {
      current = await api("POST", `/api/expertise/requests/${current.id}/reject`, { reason: $("reject-reason").value.trim() });
      renderRequest(current);
    } catch (e) { showError($("reject-error"), e); }
  });
});
$("request-back").addEventListener("click", () => selectTab(current && current.requester.id === me.id ? "sent" : "received"));

// --- asking -----------------------------------------------------------------------------------
let searchTimer;
$("line-search").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(searchLines, 250); });
async function searchLines() {
  const q = $("line-search").value.trim();
  try {
    const { items } = await api("GET", `/api/expertise/lines${q ? `?q=${encodeURIComponent(q)}` : ""}`);
    $("directory").replaceChildren(...items.filter((l) => !l.is_member).map((line) => el("li", { class: "item" },
      el("strong", {}, line.name), el("span", { class: "meta" }, ` · ${line.specialty} · réponse sous ${line.delay_hours} h`), el("br"),
      el("span", { class: "meta" }, line.description),
      el("div", { class: "actions" }, el("button", { type: "button", class: "secondary", onclick: () => chooseLine(line) }, "Demander un avis à cette ligne")))));
  } catch (e) { showError($("problem"), e); }
}

function chooseLine(line) {
  chosenLine = line;
  $("ask").hidden = false;
  $("ask-title").textContent = `Demande à : ${line.name}`;
  $("ask-description").textContent = line.description;
  $("ask-instructions").textContent = line.instructions || "Pas de consigne particulière.";
  $("ask-delay").textContent = `Réponse promise sous ${line.delay_hours} heures.`
    + `${line.accepts.length ? ` Demandes acceptées : ${line.accepts.join(" ; ")}.` : ""}`
    + `${line.excludes.length ? ` Hors du champ : ${line.excludes.join(" ; ")}.` : ""}`;
  const fields = line.questionnaire.map((q) => {
    const id = `qa-${q.key}`;
    const label = el("label", { for: id }, q.label, q.required ? "" : el("span", { class: "hint" }, " (facultatif)"));
    if (q.type === "yes_no") {
      return el("div", {}, label, el("select", { id, name: `answers.${q.key}` },
        el("option", { value: "" }, "—"), el("option", { value: "true" }, "Oui"), el("option", { value: "false" }, "Non")));
    }
    if (q.type === "choice") {
      return el("div", {}, label, el("select", { id, name: `answers.${q.key}` }, el("option", { value: "" }, "—"),
        ...q.choices.map((c) => el("option", { value: c }, c))));
    }
    return el("div", {}, label, el("input", { id, name: `answers.${q.key}`, maxlength: 2000 }));
  });
  $("questionnaire").replaceChildren(el("legend", {}, "Les questions de la ligne"), ...fields);
  $("questionnaire").hidden = !fields.length;
  $("ask").scrollIntoView({ behavior: "smooth" });
  $("p-first").focus();
}

$("ask-files").addEventListener("change", () => {
  askFiles = [...$("ask-files").files];
  $("ask-file-list").replaceChildren(...askFiles.map((f) => el("li", {}, f.name)));
});

$("ask").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("ask-error").hidden = true;
  const form = $("ask");
  const birth = isoDate($("p-birth").value);
  if (!birth) {
    showError($("ask-error"), new ApiError(422, { detail: "Vérifiez la date.", errors: [{ field: "patient.birth_date", detail: "écrivez la date comme 23/11/1950 (jour, mois, année)" }] }), form);
    return;
  }
  if (!$("consent").checked) {
    showError($("ask-error"), new ApiError(422, { detail: "Cochez la case de l'accord du patient.", errors: [{ field: "consent", detail: "confirmez que le patient a été informé et a donné son accord" }] }), form);
    return;
  }
  const answers = {};
  for (const q of chosenLine.questionnaire) {
    const value = form.elements[`answers.${q.key}`]?.value ?? "";
    if (value === "") continue;
    answers[q.key] = q.type === "yes_no" ? value === "true" : value;
  }
  await busy(form, async () => {
    try {
      const attachment_ids = [];
      for (const file of askFiles) {
        const data = new FormData();
        data.append("file", file);
        const response = await fetch("/api/uploads", { method: "POST", body: data, credentials: "same-origin" });
        const uploaded = await response.json();
        if (!response.ok) throw new ApiError(response.status, uploaded);
        attachment_ids.push(uploaded.id);
      }
      const created = await api("POST", "/api/expertise/requests", {
        line_id: chosenLine.id,
        patient: { first_name: $("p-first").value.trim(), last_name: $("p-last").value.trim(), birth_date: birth, nir: $("p-nir").value.trim() || null },
        consent: true, answers, question: $("question").value.trim(), attachment_ids, mode: "async",
        client_id: form.dataset.clientId ||= crypto.randomUUID(),
      });
      delete form.dataset.clientId;
      form.reset();
      askFiles = [];
      $("ask-file-list").replaceChildren();
      form.hidden = true;
      openRequest(created.id);
    } catch (e) { showError($("ask-error"), e, form); }
  });
});

// --- my lines ---------------------------------------------------------------------------------
function monthFigures(month) {
  if (!month) return "Aucune demande ces douze derniers mois.";
  const [year, number] = month.month.split("-");
  const name = new Date(Number(year), Number(number) - 1, 1).toLocaleDateString("fr-FR", { month: "long", year: "numeric" });
  const delay = month.median_hours_to_answer === null ? "" : `, réponse en ${String(month.median_hours_to_answer).replace(".", ",")} h (médiane)`;
  return `${name} : ${month.requests} demande${month.requests > 1 ? "s" : ""}, ${month.answered} répondue${month.answered > 1 ? "s" : ""}${delay}, ${month.rejected} refus${month.late ? `, ${month.late} en retard` : ""}.`;
}

async function loadMyLines() {
  try {
    const { items } = await api("GET", "/api/expertise/lines");
    const mine = items.filter((l) => l.is_member);
    const figures = await Promise.all(mine.map((line) => api("GET", `/api/expertise/lines/${line.id}/figures`).then((f) => f.months[0], () => null)));
    $("my-lines").replaceChildren(...mine.map((line, i) => el("li", { class: "item" },
      el("strong", {}, line.name), el("span", { class: "meta" }, ` · ${line.members.length} membre${line.members.length > 1 ? "s" : ""} · ${line.delay_hours} h`),
      el("br"), el("span", { class: "meta figures" }, monthFigures(figures[i])),
      line.is_manager ? el("div", { class: "actions" }, el("button", { type: "button", class: "secondary", onclick: () => editLine(line) }, "Modifier")) : "")));
    $("my-lines-empty").hidden = mine.length > 0;
  } catch (e) { showError($("problem"), e); }
}

const DAYS = [["mon", "Lundi"], ["tue", "Mardi"], ["wed", "Mercredi"], ["thu", "Jeudi"], ["fri", "Vendredi"], ["sat", "Samedi"], ["sun", "Dimanche"]];
let questions = [];
let rota = {};

function renderRota() {
  $("l-rota-days").replaceChildren(...DAYS.map(([day, name]) => {
    const select = el("select", { id: `rota-${day}`, "data-day": day }, el("option", { value: "" }, "— personne —"),
      ...[...lineMembers.values()].map((m) => el("option", { value: m.id }, m.display_name)));
    select.value = rota[day] && lineMembers.has(rota[day]) ? rota[day] : "";
    select.addEventListener("change", () => { rota[day] = select.value || null; });
    return el("div", {}, el("label", { for: `rota-${day}` }, name), select);
  }));
}

function renderQuestions() {
  $("l-questions").replaceChildren(...questions.map((q, i) => el("li", { class: "item" },
    q.label, el("span", { class: "meta" }, ` · ${q.type === "yes_no" ? "oui / non" : "texte"}${q.required ? " · obligatoire" : ""}`), " ",
    el("button", { type: "button", class: "link", onclick: () => { questions.splice(i, 1); renderQuestions(); } }, "Retirer"))));
}
$("q-add").addEventListener("click", () => {
  const label = $("q-label").value.trim();
  if (!label) return;
  let key = label.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^_|_$/g, "").slice(0, 40) || "question";
  while (questions.some((q) => q.key === key)) key = `${key.slice(0, 37)}_${questions.length}`;
  questions.push({ key, label, type: $("q-type").value, required: $("q-required").checked });
  $("q-label").value = "";
  $("q-required").checked = false;
  renderQuestions();
});

function renderMembers() {
  renderRota();
  $("l-members").replaceChildren(...[...lineMembers.values()].map((m) => el("li", { class: "item" }, m.display_name,
    m.id === me.id ? el("span", { class: "meta" }, " (vous)") : el("button", { type: "button", class: "link", onclick: () => { lineMembers.delete(m.id); renderMembers(); } }, " Retirer"))));
}

function editLine(line) {
  editingLine = line;
  $("line-form-title").textContent = `Modifier : ${line.name}`;
  $("l-name").value = line.name;
  $("l-specialty").value = line.specialty;
  $("l-description").value = line.description;
  $("l-instructions").value = line.instructions;
  $("l-delay").value = line.delay_hours;
  $("l-accepts").value = line.accepts.join("\n");
  $("l-excludes").value = line.excludes.join("\n");
  $("l-perimeter").value = line.perimeter.postcodes.join(", ");
  lineMembers = new Map(line.members.map((m) => [m.id, m]));
  questions = [...line.questionnaire];
  rota = { ...(line.rota || {}) };
  renderQuestions();
  renderMembers();
  $("line-form").scrollIntoView({ behavior: "smooth" });
}

let memberTimer;
$("l-member-search").addEventListener("input", () => {
  clearTimeout(memberTimer);
  memberTimer = setTimeout(async () => {
    const q = $("l-member-search").value.trim();
    if (q.length < 2) { $("l-member-results").replaceChildren(); return; }
    try {
      const { items } = await api("GET", `/api/practitioners?q=${encodeURIComponent(q)}`);
      $("l-member-results").replaceChildren(...items.filter((p) => !lineMembers.has(p.id)).map((p) => el("li", { class: "item" },
        p.display_name, " ", el("button", { type: "button", class: "link", onclick: () => { lineMembers.set(p.id, p); renderMembers(); $("l-member-results").replaceChildren(); $("l-member-search").value = ""; } }, "Ajouter"))));
    } catch { $("l-member-results").replaceChildren(); }
  }, 250);
});

// A textarea's non-empty lines (each at most 200 characters, as the server keeps them).
const lines$ = (id) => $(id).value.split("\n").map((l) => l.trim().slice(0, 200)).filter(Boolean);

$("line-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("line-error").hidden = $("line-ok").hidden = true;
  const body = {
    name: $("l-name").value.trim(),
    specialty: $("l-specialty").value.trim(),
    description: $("l-description").value.trim(),
    instructions: $("l-instructions").value.trim(),
    delay_hours: Number($("l-delay").value) || 72,
    perimeter: { postcodes: $("l-perimeter").value.split(/[,;\s]+/).filter(Boolean) },
    questionnaire: questions,
    accepts: lines$("l-accepts"),
    excludes: lines$("l-excludes"),
    members: [...lineMembers.keys()].filter((id) => id !== me.id),
  };
  await busy($("line-form"), async () => {
    try {
      const saved = editingLine
        ? await api("PUT", `/api/expertise/lines/${editingLine.id}`, body)
        : await api("POST", "/api/expertise/lines", body);
      const weekdays = Object.fromEntries(DAYS.map(([day]) => [day, rota[day] && lineMembers.has(rota[day]) ? rota[day] : null]));
      saved.rota = (await api("PUT", `/api/expertise/lines/${saved.id}/rota`, { weekdays })).weekdays;
      editingLine = saved;
      $("line-form-title").textContent = `Modifier : ${saved.name}`;
      $("line-ok").textContent = "Ligne enregistrée.";
      $("line-ok").hidden = false;
      loadMyLines();
    } catch (e) { showError($("line-error"), e); }
  });
});

async function start() {
  try {
    me = await api("GET", "/api/me");
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { location.href = "/login?next=/expertise"; return; }
    showError($("problem"), e);
    return;
  }
  if (me.role === "patient") { location.href = "/patient"; return; }
  $("me").textContent = me.display_name;
  lineMembers = new Map([[me.id, me]]);
  renderMembers();
  socket = io({ transports: ["websocket", "polling"], tryAllTransports: true });
  watchSession(socket);
  // A new request or a message in one: the lists follow.
  socket.on("conversation:activity", () => { if (!current) { if (!$("panel-received").hidden) loadList("received"); if (!$("panel-sent").hidden) loadList("sent"); } });
  socket.on("message:new", () => { if (current) api("GET", `/api/expertise/requests/${current.id}`).then((r) => { current = r; renderRequest(r); }, () => {}); });
  const opened = new URLSearchParams(location.hash.slice(1)).get("r");
  if (opened) openRequest(opened);
  else loadList("received");
}
start();
