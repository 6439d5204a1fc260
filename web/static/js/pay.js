// The patient's payment page: what is asked, for what, by whom; pay online or another way.
import { api, dateFr, showError, ApiError } from "./api.js";

const $ = (id) => document.getElementById(id);
const requestId = location.pathname.split("/").pop();
const euros = (cents) => (cents / 100).toLocaleString("fr-FR", { style: "currency", currency: "EUR" });
const STATUS = {
  requested: ["En attente de paiement.", ""],
  paid: ["Payée — merci.", "ok"],
  cancelled: ["Cette demande a été annulée par le cabinet : rien à régler.", "ok"],
  expired: ["Cette demande a expiré. Contactez le cabinet si vous souhaitez encore la régler.", "error"],
};

async function load() {
  let request;
  try {
    request = await api("GET", `/api/payment-requests/${requestId}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      location.href = `/login?next=${encodeURIComponent(location.pathname)}`;
      return;
    }
    $("loading").hidden = true;
    showError($("problem"), error);
    return;
  }
  $("loading").hidden = true;
  $("request").hidden = false;
  $("payee").textContent = request.payee?.display_name || "Votre praticien";
  $("amount").textContent = euros(request.amount_cents);
  $("pay-amount").textContent = euros(request.amount_cents);
  $("label").textContent = request.label;
  $("created").textContent = dateFr(request.created_at);
  $("expires").textContent = dateFr(request.expires_at);
  const back = new URLSearchParams(location.search).get("retour");
  let [text, kind] = STATUS[request.status] || [request.status, ""];
  if (request.status === "requested" && back === "paye") {
    text = "Paiement en cours de confirmation par le prestataire : cette page se mettra à jour.";
    setTimeout(load, 3000);
  }
  $("status").textContent = text;
  $("status").className = `alert ${kind}`;
  $("status").dataset.status = request.status;
  const open = request.status === "requested";
  // A request no longer open does not still ask to pay (issue 26, item 7).
  $("asks").textContent = open ? "vous demande de régler" : "vous avait demandé";
  $("until").hidden = !open;
  $("ways").hidden = !open;
  $("online").hidden = !(open && request.online_payment);
  showDetails(request);
}

// The practice's own details, so a patient who does not pay online knows whom and how
// (issue 26, item 7). Each way shows only if the practice filled it in.
function showDetails(request) {
  const d = request.payee_details || {};
  $("transfer").hidden = !d.iban;
  if (d.iban) {
    $("holder").textContent = d.holder || request.payee?.display_name || "";
    $("iban").textContent = d.iban;
    $("bic").textContent = d.bic || "";
    $("bic").hidden = $("bic-label").hidden = !d.bic;
    // A reference the practice can match the transfer with: the request's short code and label.
    $("reference").textContent = `${request.id.slice(0, 8).toUpperCase()} ${request.label}`.slice(0, 140);
  }
  $("by-phone").hidden = !d.phone;
  if (d.phone) {
    $("phone").textContent = d.phone_display || d.phone;
    $("phone").href = `tel:${d.phone}`;
  }
  $("cheque").hidden = !(d.cheque_payee || d.address);
  if (d.cheque_payee || d.address) {
    $("cheque-payee").textContent = d.cheque_payee || d.holder || request.payee?.display_name || "";
    $("cheque-to").hidden = $("cheque-address").hidden = !d.address;
    $("cheque-address").textContent = d.address || "";
  }
  const any = d.iban || d.phone || d.cheque_payee || d.address;
  $("ways-note").textContent = any
    ? "Dès que le cabinet aura reçu votre règlement, il le confirmera et cette demande passera à « payée ». Vous n'êtes pas obligé(e) de payer en ligne."
    : "Vous pouvez aussi régler directement au cabinet (carte, chèque, espèces) ou par virement : votre praticien confirmera la réception, et cette demande passera alors à « payée ». Vous n'êtes pas obligé(e) de payer en ligne.";
}

$("pay-online").addEventListener("click", async () => {
  $("pay-online").disabled = true;
  $("pay-error").hidden = true;
  try {
    const { url } = await api("POST", `/api/payment-requests/${requestId}/checkout`);
    location.href = url;
  } catch (error) {
    showError($("pay-error"), error);
    $("pay-online").disabled = false;
  }
});

load();
