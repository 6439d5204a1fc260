// An incoming call: a banner on whatever page the person has open, with a button to join.
import { api, el } from "./api.js";
import { icon } from "./icons.js";

function showRing(ring) {
  document.querySelector(`[data-ring="${ring.call_id}"]`)?.remove();
  const path = new URL(ring.join_url, location.href).pathname;
  const banner = el("div", { class: "banner ring", role: "alert", "data-ring": ring.call_id },
    el("span", {}, icon("video"), ` ${ring.from.display_name} vous invite en téléconsultation vidéo`),
    el("a", { class: "button", href: path }, "Rejoindre"));
  document.querySelector("main")?.prepend(banner);
}

// ``me``: a patient's page also asks, each time its socket (re)connects, for calls under way in
// its conversations: a ring sent while the page was loading or offline is not lost (the doctor
// is waiting).
export function listenForCalls(socket, me = null) {
  socket.on("call:ring", showRing);
  if (me?.role !== "patient") return;
  socket.on("connect", async () => {
    try {
      const { items } = await api("GET", "/api/calls");
      for (const call of items) {
        if (call.status === "ended" || document.querySelector(`[data-ring="${call.id}"]`)) continue;
        showRing({ call_id: call.id, join_url: call.join_url, from: call.practitioner });
      }
    } catch { /* the live ring still comes */ }
  });
}
