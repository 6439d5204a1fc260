// On a patient's home: offer once to be alerted on this device when the doctor calls or writes
// (most people never open a settings page). Not shown where pushes cannot work, nor after a
// "non merci", nor once subscribed.
import { el } from "./api.js";
import { currentSubscription, enablePush, pushSupported } from "./push.js";

const DECLINED = "tc-push-declined";

export async function offerPush(before) {
  if (!pushSupported() || Notification.permission === "denied" || localStorage.getItem(DECLINED)) return;
  if (await currentSubscription().catch(() => null)) return;
  const status = el("p", { "aria-live": "polite" });
  const yes = el("button", { type: "button" }, "Activer les alertes");
  const no = el("button", { type: "button", class: "secondary" }, "Non merci");
  const card = el("div", { class: "card", id: "push-offer" },
    el("h2", {}, "Être prévenu sur cet appareil"),
    el("p", {}, "Recevez une alerte quand votre praticien vous attend en vidéo ou vous a écrit, même page fermée."),
    el("div", { class: "actions" }, yes, no), status);
  yes.addEventListener("click", async () => {
    yes.disabled = true;
    try {
      await enablePush();
      card.replaceChildren(el("p", { class: "alert ok", role: "status" }, "C'est fait : cet appareil recevra vos alertes."));
    } catch (e) {
      status.textContent = e.message;
      yes.disabled = false;
    }
  });
  no.addEventListener("click", () => {
    localStorage.setItem(DECLINED, "1");
    card.remove();
  });
  before.insertAdjacentElement("beforebegin", card);
}
