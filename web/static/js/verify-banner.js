// A self-registered account whose address nobody confirmed: say so at the top of the page and
// offer to send the link again (a typo in the address would send every notice to a stranger).
import { api, el } from "./api.js";

export function showVerifyBanner(me, before) {
  if (!me || me.email_verified) return;
  const status = el("span", { "aria-live": "polite" });
  const again = el("button", { type: "button", class: "secondary" }, "Nouveau lien de confirmation");
  const banner = el("div", { class: "alert info", id: "verify-banner" },
    el("p", {}, `Confirmez votre adresse e-mail : nous avons envoyé un lien à ${me.email}. `,
      "Si elle est fausse, vous ne recevrez pas nos alertes."),
    el("div", { class: "actions" }, again), status);
  again.addEventListener("click", async () => {
    again.disabled = true;
    try {
      status.textContent = (await api("POST", "/api/me/verify-email")).detail;
    } catch (e) {
      status.textContent = e.message;
    } finally {
      again.disabled = false;
    }
  });
  before.insertAdjacentElement("beforebegin", banner);
}
