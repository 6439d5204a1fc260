// One conversation: history (scroll back), live messages, composer that never loses text.
//
// Sending: each message gets a client_id and is kept in localStorage until the server
// acknowledges it, so a network cut or a reload never loses it and a retry never doubles it
// (the server deduplicates by client_id). The draft being typed is kept too.
import { ApiError, api, dateTimeFr, el } from "./api.js";
import { icon, iconText } from "./icons.js";

const REASONS = [
  ["question", "Question après une consultation"],
  ["test_result", "Résultat d'examen"],
  ["appointment", "Rendez-vous"],
  ["administrative", "Administratif ou paiement"],
  ["other", "Autre"],
];
const REASON_LABEL = Object.fromEntries(REASONS);
const store = {
  get(key, fallback) { try { return JSON.parse(localStorage.getItem(key)) ?? fallback; } catch { return fallback; } },
  set(key, value) { try { localStorage.setItem(key, JSON.stringify(value)); } catch { /* private mode */ } },
  drop(key) { try { localStorage.removeItem(key); } catch { /* private mode */ } },
};
const newId = () => (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`);
// Web addresses in a message become links (a call's join link must be one tap on a phone). Text
// nodes and <a> elements only: a message can never inject markup.
const URL_PATTERN = /https?:\/\/[^\s<>"]+/g;
// A link of this site to a call or a payment is an action, not an address to read: a big button
// that says what it does ("Rejoindre la vidéo", "Payer 25,00 €"), opened in the same tab. Links
// of other sites stay plain links (a message cannot dress a stranger's page as our button).
const AMOUNT = /(\d[\d\s\u202f\u00a0]*,\d{2})\s?€/;
function action(url, text, mine) {
  let target;
  try { target = new URL(url); } catch { return null; }
  if (target.origin !== location.origin) return null;
  if (/^\/c\/[A-Za-z0-9]+$/.test(target.pathname)) {
    return el("a", { class: "button action", href: target.pathname }, "Rejoindre la vidéo");
  }
  if (/^\/p\/[A-Za-z0-9]+$/.test(target.pathname)) {
    const amount = text.match(AMOUNT);
    // The practice sent it: it follows the request, it does not pay it.
    if (mine) return el("a", { class: "button action secondary", href: target.pathname }, "Voir la demande");
    return el("a", { class: "button action", href: target.pathname }, amount ? `Payer ${amount[1]} €` : "Voir et payer");
  }
  return null;
}
function linkify(text, mine = false) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    const url = match[0].replace(/[.,;:!?)]+$/, "");
    parts.push(text.slice(last, match.index));
    parts.push(action(url, text, mine) || el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, url));
    last = match.index + url.length;
  }
  parts.push(text.slice(last));
  return parts;
}
// Checked before a byte leaves the phone: a 25 Mo photo refused after a minute of upload on a
// weak network is a patient who gives up.
let limitsOnce = null;
const uploadLimits = () => (limitsOnce ??= api("GET", "/api/uploads/limits").catch(() => { limitsOnce = null; return null; }));
const TYPE_NAMES = "PDF, JPEG, PNG ou HEIC (photo d'iPhone)";
const byExtension = { pdf: "application/pdf", jpg: "image/jpeg", jpeg: "image/jpeg", png: "image/png", heic: "image/heic", heif: "image/heif" };
function refusal(file, allowed) {
  if (!allowed) return null; // unknown limits: the server still checks
  const type = file.type || byExtension[file.name.split(".").pop().toLowerCase()] || "";
  if (!allowed.types.includes(type)) return `« ${file.name} » n'est pas d'un format accepté. Formats acceptés : ${TYPE_NAMES}.`;
  if (file.size > allowed.max_bytes) {
    return `« ${file.name} » est trop lourd (${formatSize(file.size)}) : ${formatSize(allowed.max_bytes)} au plus. Envoyez une photo moins grande ou un PDF.`;
  }
  if (file.size === 0) return `« ${file.name} » est vide.`;
  return null;
}
// XMLHttpRequest, not fetch: only it reports how far an upload has gone.
function sendFile(file, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", "/api/uploads");
    request.withCredentials = true;
    request.upload.onprogress = (event) => { if (event.lengthComputable) onProgress(Math.round((event.loaded / event.total) * 100)); };
    request.onload = () => {
      let data = null;
      try { data = JSON.parse(request.responseText); } catch { /* not JSON */ }
      if (request.status >= 200 && request.status < 300) resolve(data);
      else reject(new ApiError(request.status, data));
    };
    request.onerror = () => reject(new ApiError(0, { detail: "Le fichier n'a pas pu partir : vérifiez votre connexion internet puis réessayez." }));
    const form = new FormData();
    form.append("file", file, file.name);
    request.send(form);
  });
}
const formatSize = (n) => (n > 1024 * 1024 ? `${(n / 1024 / 1024).toLocaleString("fr-FR", { maximumFractionDigits: 1 })} Mo` : `${Math.ceil(n / 1024)} Ko`);

export class Thread {
  // ``between``: "professionals" for a tele-expertise exchange (no patient in it: no rule on
  // who may write, no "le patient peut répondre", the other side named by the page).
  constructor({ root, me, socket, conversationId, onBack, between = "patient", backLabel = "← Conversations" }) {
    this.between = between;
    this.backLabel = backLabel;
    this.root = root;
    this.me = me;
    this.socket = socket;
    this.id = conversationId;
    this.onBack = onBack;
    this.messages = new Map(); // seq → message
    this.lastSeq = 0;
    this.firstSeq = null;
    this.readSent = 0;
    this.pro = me.role !== "patient";
    this.outboxKey = `tc:outbox:${me.id}`;
    this.draftKey = `tc:draft:${me.id}:${conversationId}`;
    this.pendingFiles = [];
    this.retryTimer = null;
    this.closed = false;
    this.build();
    this.handlers = {
      "message:new": (m) => {
        if (m.conversation_id !== this.id) return;
        this.received([m]);
        this.markRead();
      },
      "message:read": (r) => { if (r.conversation_id === this.id) this.applyRead(r); },
      "conversation:state": (s) => { if (s.conversation_id === this.id) this.loadDetails(); },
      connect: () => this.subscribe(),
    };
    for (const [event, fn] of Object.entries(this.handlers)) socket.on(event, fn);
    // Not while it is connecting: connect() would open the namespace a second time.
    this.onOnline = () => { if (!socket.active) socket.connect(); this.flush(); };
    window.addEventListener("online", this.onOnline);
    this.onVisible = () => { if (document.visibilityState === "visible") this.markRead(); };
    document.addEventListener("visibilitychange", this.onVisible);
  }

  build() {
    const $ = (tag, attrs, ...kids) => el(tag, attrs, ...kids);
    this.title = $("h2", { class: "thread-title" });
    this.subtitle = $("p", { class: "meta" });
    this.controls = $("div", { class: "thread-controls", hidden: true });
    this.older = $("button", { class: "link", type: "button", hidden: true, onclick: () => this.loadOlder() }, "Messages précédents");
    this.list = $("ul", { class: "messages", "aria-live": "polite" });
    this.blocked = $("p", { class: "alert info", role: "status", hidden: true, "data-testid": "blocked" });
    this.error = $("p", { class: "alert error", role: "alert", hidden: true });
    this.text = $("textarea", { rows: 3, maxlength: 10000, "aria-label": "Votre message", placeholder: "Écrire un message…" });
    this.text.value = store.get(this.draftKey, "");
    this.text.addEventListener("input", () => store.set(this.draftKey, this.text.value));
    this.file = $("input", { type: "file", accept: "application/pdf,image/jpeg,image/png,image/heic,image/heif,.heic,.heif", "aria-label": "Joindre un fichier", multiple: true });
    this.file.addEventListener("change", () => this.upload());
    this.files = $("ul", { class: "files" });
    this.replyAllowed = $("input", { type: "checkbox", id: `reply-${this.id}`, checked: true });
    this.reason = $("select", { id: `reason-${this.id}` }, ...REASONS.map(([v, l]) => $("option", { value: v }, l)));
    this.send = $("button", { type: "submit" }, "Envoyer");
    // Patients say why they write first (domain.md §2), then write; professionals choose
    // whether the patient may answer, next to the send button.
    const reasonField = this.pro ? null
      : $("div", { class: "reason" }, $("label", { for: `reason-${this.id}` }, "Motif"), this.reason);
    const replyOption = this.pro && this.between === "patient"
      ? $("label", { class: "inline", for: `reply-${this.id}` }, this.replyAllowed, " Le patient peut répondre")
      : null;
    this.form = $("form", { class: "composer", novalidate: true }, reasonField, this.text, this.files,
      $("div", { class: "composer-row" }, $("label", { class: "button secondary attach" }, "Joindre", this.file), replyOption, this.send));
    this.form.addEventListener("submit", (e) => { e.preventDefault(); this.submit(); });
    this.text.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) this.submit(); });
    const back = this.backLabel
      ? $("button", { class: "secondary back", type: "button", onclick: () => this.onBack?.() }, this.backLabel)
      : null;
    this.root.replaceChildren($("div", { class: "card thread" }, back, this.title, this.subtitle, this.controls,
      this.older, this.list, this.blocked, this.error, this.form));
  }

  async start() {
    // The messages first, then who may write: the rule is then at least as recent as the last
    // message shown, and anything later arrives through received().
    try {
      const page = await api("GET", `/api/conversations/${this.id}/messages?limit=50`);
      this.add(page.items);
      this.older.hidden = !page.items.length || page.items[0].seq <= 1;
    } catch (e) { this.showError(e); }
    await this.loadDetails();
    this.renderPending();
    if (this.socket.connected) this.subscribe();
    this.flush();
    this.markRead();
    this.list.lastElementChild?.scrollIntoView({ block: "end" });
  }

  close() {
    this.closed = true;
    for (const [event, fn] of Object.entries(this.handlers)) this.socket.off(event, fn);
    this.socket.emit("conversation:unsubscribe", { conversation_id: this.id });
    window.removeEventListener("online", this.onOnline);
    document.removeEventListener("visibilitychange", this.onVisible);
    clearTimeout(this.retryTimer);
  }

  async loadDetails() {
    try {
      const c = await api("GET", `/api/conversations/${this.id}`);
      this.details = c;
      const others = c.participants.filter((p) => p.id !== this.me.id);
      if (this.between === "professionals") {
        const people = [...new Map([c.practitioner, ...c.participants].filter((p) => p.id !== this.me.id).map((p) => [p.id, p])).values()];
        this.title.textContent = "Échanges";
        this.subtitle.textContent = `Avec : ${people.map((p) => p.display_name).join(", ")}`;
      } else {
        this.title.textContent = this.pro ? `${c.patient.first_name} ${c.patient.last_name}` : c.practitioner.display_name;
      }
      // Worth saying only when more than the one person of the title takes part.
      if (this.between === "patient") {
        this.subtitle.textContent = others.length > 1
          ? `Participants : ${others.map((p) => `${p.first_name} ${p.last_name}`).join(", ")}` : "";
      }
      this.renderControls(c);
      const can = c.permissions.can_write;
      this.blocked.hidden = can;
      this.blocked.textContent = can ? "" : c.permissions.reason;
      this.text.disabled = !can;
      this.send.disabled = !can;
      this.file.disabled = !can;
      this.reason.disabled = !can;
    } catch (e) { this.showError(e); }
  }

  renderControls(c) {
    if (!this.pro) return;
    const value = c.patient_can_write === null ? "default" : String(c.patient_can_write);
    const select = el("select", { "aria-label": "Le patient peut écrire" },
      el("option", { value: "default" }, "Selon mon réglage de messagerie"),
      el("option", { value: "true" }, "Oui, à tout moment"),
      el("option", { value: "false" }, "Seulement pour répondre"));
    select.value = value;
    select.addEventListener("change", async () => {
      const v = select.value === "default" ? null : select.value === "true";
      try { await api("PATCH", `/api/conversations/${this.id}`, { patient_can_write: v }); } catch (e) { this.showError(e); }
    });
    const video = el("button", { type: "button", class: "video-button" }, icon("video"), " Lancer la vidéo");
    video.addEventListener("click", async () => {
      video.disabled = true;
      try {
        const call = await api("POST", `/api/conversations/${this.id}/calls`, { mode: "p2p" });
        location.href = new URL(call.join_url, location.href).pathname;
      } catch (e) { this.showError(e); video.disabled = false; }
    });
    // Video between professionals (a "sync" tele-expertise) is not offered yet: the call page
    // is built around a patient.
    const canCall = (this.me.role === "doctor" || this.me.role === "nurse") && this.between === "patient";
    this.controls.replaceChildren(canCall ? video : "",
      this.between === "patient" ? el("label", { class: "inline" }, "Le patient peut écrire : ", select) : "");
    this.controls.hidden = false;
  }

  subscribe() {
    if (this.closed) return;
    // Subscribing again means the socket was cut: the events that said who may write now (a
    // message, the doctor's settings) may have been missed, so that is read again too.
    const again = this.subscribed;
    this.subscribed = true;
    this.socket.emit("conversation:subscribe", { conversation_id: this.id, after_seq: this.lastSeq }, (reply) => {
      if (!reply?.ok) return;
      if (again) { this.add(reply.items); this.loadDetails(); } else this.received(reply.items);
      this.markRead();
      this.flush();
    });
  }

  // Messages that arrived live or on catching up after a reconnection. A professional's message
  // may open or close the patient's right to answer, however it arrived.
  received(items) {
    const fresh = this.add(items);
    if (!this.pro && fresh.some((m) => m.author.id !== this.me.id)) this.loadDetails();
  }

  // Returns the messages it had not shown yet.
  add(items) {
    const fresh = [];
    for (const m of items) {
      if (this.messages.has(m.seq)) { this.messages.set(m.seq, m); continue; }
      this.messages.set(m.seq, m);
      fresh.push(m);
      this.lastSeq = Math.max(this.lastSeq, m.seq);
      this.firstSeq = this.firstSeq === null ? m.seq : Math.min(this.firstSeq, m.seq);
      this.dropPending(m.client_id, m.author.id);
    }
    this.render();
    return fresh;
  }

  render() {
    const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    const seqs = [...this.messages.keys()].sort((a, b) => a - b);
    const items = seqs.map((seq) => this.item(this.messages.get(seq)));
    const pending = this.outbox().filter((p) => p.conversation_id === this.id).map((p) => this.pendingItem(p));
    this.list.replaceChildren(...items, ...pending);
    if (atBottom || pending.length) this.list.lastElementChild?.scrollIntoView({ block: "end" });
  }

  item(m) {
    const mine = m.author.id === this.me.id;
    const others = m.read_by.filter((id) => id !== this.me.id);
    return el("li", { class: `msg ${mine ? "mine" : "theirs"}`, "data-seq": m.seq },
      el("div", { class: "msg-head" }, el("span", { class: "who" }, mine ? "Vous" : m.author.display_name),
        el("span", { class: "meta" }, ` · ${dateTimeFr(m.created_at)}`),
        m.reason ? el("span", { class: "badge pending" }, REASON_LABEL[m.reason] || m.reason) : null),
      m.body ? el("p", { class: "msg-body" }, ...iconText(m.body, (t) => linkify(t, mine))) : null,
      m.attachments.length ? el("ul", { class: "files" }, ...m.attachments.map((a) => el("li", {},
        el("a", { href: a.url, target: "_blank", rel: "noopener" }, icon("clip"), ` ${a.filename}`), el("span", { class: "meta" }, ` (${formatSize(a.size)})`)))) : null,
      !m.reply_allowed && !mine ? el("p", { class: "meta" }, "Pas de réponse attendue à ce message.") : null,
      mine && others.length ? el("span", { class: "meta read-mark" }, "Lu") : null);
  }

  pendingItem(p) {
    const actions = p.failed
      ? el("span", {}, " ", el("button", { class: "link", type: "button", onclick: () => { p.failed = false; this.saveOutboxItem(p); this.flush(); } }, "Réessayer"),
        " ", el("button", { class: "link", type: "button", onclick: () => { this.dropPending(p.client_id, this.me.id); this.render(); } }, "Supprimer"))
      : null;
    return el("li", { class: "msg mine pending", "data-client-id": p.client_id },
      el("p", { class: "msg-body" }, p.body),
      el("span", { class: "meta sending" }, p.failed ? `Non envoyé : ${p.error}` : "Envoi…"), actions);
  }

  outbox() { return store.get(this.outboxKey, []); }
  saveOutboxItem(item) {
    const box = this.outbox().filter((p) => p.client_id !== item.client_id);
    box.push(item);
    store.set(this.outboxKey, box);
  }
  dropPending(clientId, authorId) {
    if (authorId !== this.me.id) return;
    store.set(this.outboxKey, this.outbox().filter((p) => p.client_id !== clientId));
  }
  renderPending() { this.render(); }

  async upload() {
    const allowed = await uploadLimits();
    for (const file of this.file.files) {
      const refused = refusal(file, allowed);
      if (refused) {
        this.files.append(el("li", {}, el("p", { class: "alert error", role: "alert" }, refused)));
        continue;
      }
      const progress = el("progress", { max: 100, value: 0, "aria-label": `Envoi de ${file.name}` });
      const row = el("li", {}, `${file.name} — envoi… `, progress);
      this.files.append(row);
      try {
        const data = await sendFile(file, (percent) => { progress.value = percent; });
        this.pendingFiles.push(data);
        row.replaceChildren(icon("clip"), ` ${data.filename} (${formatSize(data.size)}) `,
          el("button", { class: "link", type: "button", onclick: () => { this.pendingFiles = this.pendingFiles.filter((f) => f.id !== data.id); row.remove(); } }, "Retirer"));
      } catch (e) {
        row.replaceChildren(el("p", { class: "alert error", role: "alert" }, `${file.name} : ${e.message}`));
      }
    }
    this.file.value = "";
  }

  submit() {
    const body = this.text.value.trim();
    if (!body && !this.pendingFiles.length) return;
    const item = {
      client_id: newId(), conversation_id: this.id, body,
      attachment_ids: this.pendingFiles.map((f) => f.id),
      ...(this.pro ? { reply_allowed: this.replyAllowed.checked } : { reason: this.reason.value }),
    };
    this.saveOutboxItem(item);
    this.text.value = "";
    store.drop(this.draftKey);
    this.pendingFiles = [];
    this.files.replaceChildren();
    this.replyAllowed.checked = true;
    this.render();
    this.flush();
  }

  async flush() {
    if (this.flushing || this.closed) return;
    this.flushing = true;
    clearTimeout(this.retryTimer);
    let retry = false;
    try {
      for (const item of this.outbox().filter((p) => p.conversation_id === this.id && !p.failed)) {
        const { failed, error, ...payload } = item;
        delete payload.conversation_id;
        try {
          const m = await api("POST", `/api/conversations/${this.id}/messages`, payload);
          this.dropPending(item.client_id, this.me.id);
          this.add([m]);
          this.error.hidden = true;
        } catch (e) {
          if (e instanceof ApiError && e.status === 403) {
            // Not allowed now: give the text back to the composer, with the reason.
            this.dropPending(item.client_id, this.me.id);
            if (!this.text.value) { this.text.value = item.body; store.set(this.draftKey, item.body); }
            this.showError(e);
            await this.loadDetails();
          } else if (e instanceof ApiError && e.status >= 400 && e.status < 500 && e.status !== 429) {
            this.saveOutboxItem({ ...item, failed: true, error: e.message });
          } else {
            retry = true; // offline or server busy: keep it and try again shortly
            break;
          }
        }
      }
    } finally {
      this.flushing = false;
      this.render();
    }
    if (retry) this.retryTimer = setTimeout(() => this.flush(), 3000);
  }

  async loadOlder() {
    if (this.firstSeq === null || this.firstSeq <= 1) return;
    try {
      const page = await api("GET", `/api/conversations/${this.id}/messages?before_seq=${this.firstSeq}&limit=50`);
      const anchor = this.list.firstElementChild;
      this.add(page.items);
      anchor?.scrollIntoView({ block: "start" });
      this.older.hidden = !page.items.length || page.items[0].seq <= 1;
    } catch (e) { this.showError(e); }
  }

  applyRead(r) {
    for (const m of this.messages.values()) {
      if (m.seq <= r.up_to_seq && !m.read_by.includes(r.user_id) && m.author.id !== r.user_id) m.read_by.push(r.user_id);
    }
    this.render();
  }

  async markRead() {
    if (document.visibilityState !== "visible" || this.lastSeq <= this.readSent) return;
    const seq = this.lastSeq;
    this.readSent = seq;
    try { await api("POST", `/api/conversations/${this.id}/read`, { up_to_seq: seq }); } catch { this.readSent = 0; }
  }

  showError(e) {
    this.error.textContent = e.message || "Une erreur est survenue.";
    this.error.hidden = false;
  }
}
