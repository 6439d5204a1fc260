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
