// A professional's practice page: payment details shown to patients, the billing profile the
// coding rules need, and a month's export for the billing software.
import { ApiError, api, busy, el, showError } from "./api.js";

const $ = (id) => document.getElementById(id);
const euros = (cents) => (cents / 100).toLocaleString("fr-FR", { style: "currency", currency: "EUR" });
const MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
  "septembre", "octobre", "novembre", "décembre"];
const pad = (n) => String(n).padStart(2, "0");

function saved(box) {
  box.textContent = "Enregistré.";
  box.hidden = false;
}

function fillPayment(details) {
  for (const name of ["holder", "iban", "bic", "cheque_payee", "address"]) $(name).value = details[name] || "";
  $("pay-phone").value = details.phone_display || "";
}

function fillBilling(profile) {
  $("am_number").value = profile.am_number || "";
  $("practice_postcode").value = profile.practice_postcode || "";
  $("yearly_acts").value = profile.yearly_acts ?? "";
  $("overseas").checked = profile.overseas;
}

$("payment").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("payment-error").hidden = $("payment-ok").hidden = true;
  const body = {};
  for (const name of ["holder", "iban", "bic", "phone", "cheque_payee", "address"]) {
    body[name] = $("payment").elements[name].value.trim() || null;
  }
  await busy($("payment"), async () => {
    try {
      fillPayment(await api("PUT", "/api/me/payment-details", body));
      saved($("payment-ok"));
    } catch (error) { showError($("payment-error"), error); }
  });
});

$("billing").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("billing-error").hidden = $("billing-ok").hidden = true;
  const acts = $("yearly_acts").value.replace(/\s/g, "");
  if (acts && !/^\d+$/.test(acts)) {
    showError($("billing-error"), new ApiError(422, { detail: "Vérifiez le champ signalé en rouge.",
      errors: [{ field: "yearly_acts", detail: "un nombre entier, par exemple 4500" }] }));
    return;
  }
  const body = {
    am_number: $("am_number").value.trim() || null,
    practice_postcode: $("practice_postcode").value.trim() || null,
    yearly_acts: acts ? Number(acts) : null,
    overseas: $("overseas").checked,
  };
  await busy($("billing"), async () => {
    try {
      fillBilling(await api("PUT", "/api/me/billing-profile", body));
      saved($("billing-ok"));
    } catch (error) { showError($("billing-error"), error); }
  });
});

// --- monthly export ---------------------------------------------------------------------
function monthRange() {
  const year = Number($("year").value);
  const month = Number($("month").value);
  const last = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return { from: `${year}-${pad(month)}-01`, to: `${year}-${pad(month)}-${pad(last)}` };
}

async function summarize() {
  const { from, to } = monthRange();
  $("download").href = `/api/billing/records?from=${from}&to=${to}&format=csv`;
  $("export-error").hidden = true;
  try {
    const { items } = await api("GET", `/api/billing/records?from=${from}&to=${to}&format=json`);
    const acts = items.reduce((n, r) => n + r.acts.length, 0);
    const total = items.reduce((n, r) => n + r.total_cents, 0);
    const month = `${MONTHS[Number($("month").value) - 1]} ${$("year").value}`;
    $("export-summary").textContent = items.length
      ? `${month} : ${items.length} consultation${items.length > 1 ? "s" : ""} cotée${items.length > 1 ? "s" : ""}, ${acts} acte${acts > 1 ? "s" : ""}, ${euros(total)}.`
      : `${month} : aucune cotation enregistrée.`;
  } catch (error) { showError($("export-error"), error); }
}

function setUpExport() {
  const now = new Date();
  const thisYear = Number(now.toLocaleDateString("fr-FR", { year: "numeric", timeZone: "Europe/Paris" }));
  const thisMonth = Number(now.toLocaleDateString("fr-FR", { month: "numeric", timeZone: "Europe/Paris" }));
  $("month").replaceChildren(...MONTHS.map((name, i) => el("option", { value: String(i + 1) }, name)));
  $("year").replaceChildren(...[0, 1, 2, 3].map((back) => el("option", { value: String(thisYear - back) }, String(thisYear - back))));
  $("month").value = String(thisMonth);
  $("month").addEventListener("change", summarize);
  $("year").addEventListener("change", summarize);
  summarize();
}

async function load() {
  let me;
  try {
    me = await api("GET", "/api/me");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      location.href = `/login?next=${encodeURIComponent(location.pathname)}`;
      return;
    }
    showError($("problem"), error);
    return;
  }
  $("me").textContent = me.display_name;
  if (me.role === "patient") { location.href = "/patient"; return; }
  setUpExport();
  if (!["doctor", "nurse"].includes(me.role)) return; // a secretary exports for her doctors
  const [details, profile] = await Promise.all([
    api("GET", "/api/me/payment-details"), api("GET", "/api/me/billing-profile")]);
  fillPayment(details);
  fillBilling(profile);
  $("payment").hidden = $("billing").hidden = false;
  if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
}

load();
