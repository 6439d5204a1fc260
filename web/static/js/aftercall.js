// The panel a professional sees when the call is over: documents, payment request, billing
// coding. Each job is one form, done in a click or two; what is sent goes to the conversation.
import { ApiError, api, el, frDate, isoDate, showError } from "./api.js";
import { icon } from "./icons.js";

const $ = (id) => document.getElementById(id);
const euros = (cents) => (cents / 100).toLocaleString("fr-FR", { style: "currency", currency: "EUR" });

function parseEuros(text) {
  const clean = String(text).replace(/\s|€/g, "").replace(",", ".");
  if (!/^\d+(\.\d{1,2})?$/.test(clean)) return null;
  return Math.round(parseFloat(clean) * 100);
}

// A warning that asks for something of the practice's profile links to where it is set.
function warningItem(text) {
  if (!/profil/i.test(text)) return el("li", {}, text);
  return el("li", {}, text, " ", el("a", { href: "/profile#facturation", target: "_blank", rel: "noopener" }, "Ouvrir mon profil"));
}

function hideErrors(...ids) { ids.forEach((id) => { $(id).hidden = true; }); }

export async function showAfterCall(callId, me, call) {
  const panel = $("after");
  if (!panel || !["doctor", "nurse", "secretary"].includes(me.role)) return;
  panel.hidden = false;
  const doctor = me.role === "doctor" || me.role === "secretary";
  for (const form of panel.querySelectorAll("[data-pro=doctor]")) form.hidden = !doctor;
  if (me.role === "secretary") $("doc-form").hidden = true; // secretaries forward files from the thread
  const conversationId = call.conversation_id;
  const today = new Date().toLocaleDateString("fr-FR", { timeZone: "Europe/Paris" });

  // --- documents -------------------------------------------------------------------------
  const kind = $("doc-kind");
  const syncKind = () => {
    const leave = kind.value === "sick_leave";
    $("doc-leave-box").hidden = !leave;
    $("doc-lines-box").hidden = leave;
    $("doc-treating-box").hidden = !(leave && Number($("doc-days").value) > 3);
  };
  kind.addEventListener("change", syncKind);
  $("doc-days").addEventListener("input", syncKind);
  syncKind();
  const sent = (message) => {
    const file = message.attachments[0];
    $("doc-sent").append(el("li", {}, icon("check"), " ", message.body.replace(/^📄\s*/, ""), " — ",
      el("a", { href: file.url, target: "_blank", rel: "noopener" }, file.filename)));
  };
  // What the form says, or null (with the reason shown) when it says nothing yet.
  const documentBody = () => {
    const body = { kind: kind.value };
    if (kind.value === "sick_leave") {
      body.sick_leave_days = Number($("doc-days").value);
      body.treating_doctor = $("doc-treating").checked;
    } else {
      body.lines = $("doc-lines").value.split("\n").map((l) => l.trim()).filter(Boolean);
      if (!body.lines.length) { $("doc-error").textContent = "Écrivez au moins une ligne."; $("doc-error").hidden = false; return null; }
    }
    return body;
  };
  const documentFailed = (error) => {
    showError($("doc-error"), error);
    if (error.problem?.code === "sick_leave_limit") $("doc-treating-box").hidden = false;
  };
  const sendDocument = async () => {
    hideErrors("doc-error");
    const body = documentBody();
    if (!body) return;
    $("doc-send").disabled = $("doc-preview-send").disabled = true;
    try {
      sent(await api("POST", `/api/conversations/${conversationId}/documents`, { ...body, client_id: crypto.randomUUID() }));
      $("doc-lines").value = "";
      closePreview();
    } catch (error) {
      closePreview();
      documentFailed(error);
    } finally { $("doc-send").disabled = $("doc-preview-send").disabled = false; }
  };
  $("doc-form").addEventListener("submit", (event) => { event.preventDefault(); sendDocument(); });

  // The doctor reads the document as the patient will get it before sending it (issue 26,
  // item 10): the server draws the same PDF, marked as a preview, and stores nothing.
  let previewUrl = null;
  const closePreview = () => {
    if ($("doc-preview-box").open) $("doc-preview-box").close();
    $("doc-preview-frame").removeAttribute("src");
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = null;
  };
  $("doc-preview").addEventListener("click", async () => {
    hideErrors("doc-error");
    const body = documentBody();
    if (!body) return;
    $("doc-preview").disabled = true;
    try {
      const response = await fetch(`/api/conversations/${conversationId}/documents/preview`, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      if (!response.ok) {
        const problem = await response.json().catch(() => ({ detail: "Aperçu impossible." }));
        throw new ApiError(response.status, problem);
      }
      closePreview();
      previewUrl = URL.createObjectURL(await response.blob());
      $("doc-preview-frame").src = previewUrl;
      $("doc-preview-open").href = previewUrl;
      $("doc-preview-box").showModal();
    } catch (error) { documentFailed(error); } finally { $("doc-preview").disabled = false; }
  });
  $("doc-preview-close").addEventListener("click", () => { closePreview(); $("doc-lines").focus(); });
  $("doc-preview-box").addEventListener("cancel", closePreview);
  $("doc-preview-send").addEventListener("click", sendDocument);
  $("doc-file").addEventListener("change", async () => {
    const file = $("doc-file").files[0];
    if (!file) return;
    hideErrors("doc-error");
    const form = new FormData();
    form.append("file", file);
    try {
      const response = await fetch("/api/uploads", { method: "POST", body: form, credentials: "same-origin" });
      const uploaded = await response.json();
      if (!response.ok) throw Object.assign(new Error(uploaded.detail), { status: response.status });
      sent(await api("POST", `/api/conversations/${conversationId}/documents`,
        { kind: "other", attachment_id: uploaded.id, title: file.name.replace(/\.[^.]+$/, ""), client_id: crypto.randomUUID() }));
    } catch (error) {
      $("doc-error").textContent = error.message || "Envoi impossible.";
      $("doc-error").hidden = false;
    } finally { $("doc-file").value = ""; }
  });

  // --- payment request -----------------------------------------------------------------
  $("pay-label").value = `Téléconsultation du ${today}`;
  $("pay-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    hideErrors("pay-error", "pay-done");
    const cents = parseEuros($("pay-amount").value);
    if (!cents) { $("pay-error").textContent = "Montant : un nombre d'euros, par exemple 25 ou 25,50."; $("pay-error").hidden = false; return; }
    $("pay-send").disabled = true;
    try {
      const asked = await api("POST", `/api/conversations/${conversationId}/payment-requests`,
        { amount_cents: cents, currency: "EUR", label: $("pay-label").value.trim(), call_id: callId, client_id: crypto.randomUUID() });
      $("pay-done").textContent = `Demande de ${euros(asked.amount_cents)} envoyée au patient (en attente de paiement).`;
      $("pay-done").hidden = false;
    } catch (error) { showError($("pay-error"), error); } finally { $("pay-send").disabled = false; }
  });

  // --- billing ---------------------------------------------------------------------------
  const nurse = me.role === "nurse";
  $("bill-place-box").hidden = !nurse;
  $("bill-pathway-box").hidden = nurse;
  let proposal = null;
  const query = () => {
    const q = new URLSearchParams();
    if ($("bill-pathway").value && !nurse) q.set("pathway", $("bill-pathway").value);
    if ($("bill-report").checked) q.set("report_sent", "true");
    if (nurse && $("bill-place").value) q.set("place", $("bill-place").value);
    return q.toString();
  };
  const render = () => {
    $("bill-acts").replaceChildren(...proposal.acts.map((a) => el("li", {}, el("span", {}, `${a.code} — ${a.label}`), el("strong", {}, euros(a.amount_cents)))));
    if (!proposal.acts.length) $("bill-acts").append(el("li", {}, "Aucun acte proposé : voir les remarques."));
    $("bill-total").textContent = euros(proposal.total_cents);
    $("bill-warnings").replaceChildren(...proposal.warnings.map(warningItem));
    const seconds = Math.round(proposal.video_both_ways_seconds);
    $("bill-video").textContent = `Vidéo dans les deux sens : ${Math.floor(seconds / 60)} min ${seconds % 60} s.`;
    if (proposal.patient.birth_date && !$("bill-birth").value) $("bill-birth").value = frDate(proposal.patient.birth_date);
    if (nurse && proposal.place && !$("bill-place").value) $("bill-place").value = proposal.place;
    if (!proposal.record) $("bill-codes").value = proposal.acts.map((a) => a.code).join(" ");
    if (proposal.record) done(proposal.record);
    if (doctor && !$("pay-amount").value && proposal.total_cents) {
      $("pay-amount").value = (proposal.total_cents / 100).toFixed(2).replace(".", ",");
    }
  };
  const refresh = async () => {
    try {
      proposal = await api("GET", `/api/calls/${callId}/billing?${query()}`);
      render();
    } catch (error) {
      $("bill-form").replaceChildren(el("h3", {}, "Cotation Assurance Maladie"), el("p", { class: "hint" }, error.message));
    }
  };
  const done = (record) => {
    $("bill-done").replaceChildren(
      `Cotation enregistrée : ${record.acts.map((a) => a.code).join(" + ")}, ${euros(record.total_cents)}. `,
      el("a", { href: `/api/billing/records?from=${record.act_date}&to=${record.act_date}&format=csv` }, "Exporter pour le logiciel de facturation (CSV)"),
      " ",
      el("button", { type: "button", class: "link", onclick: async () => {
        if (!confirm("Annuler cette cotation pour la refaire ? (Si elle est déjà importée dans votre logiciel, corrigez-la aussi là-bas.)")) return;
        try {
          await api("DELETE", `/api/billing/records/${record.id}`);
          $("bill-done").hidden = true;
          $("bill-send").disabled = false;
          await refresh();
        } catch (error) { $("bill-errors").replaceChildren(el("li", {}, error.message)); $("bill-errors").hidden = false; }
      } }, "Annuler cette cotation"));
    $("bill-done").hidden = false;
    $("bill-send").disabled = true;
  };
  $("bill-pathway").addEventListener("change", () => { $("bill-report-box").hidden = $("bill-pathway").value !== "referred"; refresh(); });
  $("bill-report").addEventListener("change", refresh);
  $("bill-place").addEventListener("change", refresh);
  $("bill-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("bill-errors").hidden = true;
    const acts = $("bill-codes").value.toUpperCase().split(/[\s,+]+/).filter(Boolean).map((code) => ({ code }));
    const body = {
      acts,
      patient: {
        nir: $("bill-nir").value.trim() || null,
        birth_date: isoDate($("bill-birth").value) || null,
        birth_rank: Number($("bill-rank").value || 1),
        postcode: $("bill-postcode").value.trim() || null,
      },
    };
    if (nurse) { if ($("bill-place").value) body.place = $("bill-place").value; }
    else {
      if ($("bill-pathway").value) body.pathway = $("bill-pathway").value;
      body.report_sent = $("bill-report").checked;
    }
    $("bill-send").disabled = true;
    try {
      const record = await api("POST", `/api/calls/${callId}/billing`, body);
      $("bill-warnings").replaceChildren(...record.warnings.map(warningItem));
      done(record);
    } catch (error) {
      const errors = error.problem?.errors?.length ? error.problem.errors.map((e) => e.detail) : [error.message];
      $("bill-errors").replaceChildren(...errors.map((text) => el("li", {}, text)));
      $("bill-errors").hidden = false;
      $("bill-send").disabled = false;
    }
  });
  await refresh();
}
