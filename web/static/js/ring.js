// An incoming call: a banner on whatever page the person has open, with a button to join.
import { el } from "./api.js";
import { icon } from "./icons.js";

export function listenForCalls(socket) {
  socket.on("call:ring", (ring) => {
    document.querySelector(`[data-ring="${ring.call_id}"]`)?.remove();
    const path = new URL(ring.join_url, location.href).pathname;
    const banner = el("div", { class: "banner ring", role: "alert", "data-ring": ring.call_id },
      el("span", {}, icon("video"), ` ${ring.from.display_name} vous invite en téléconsultation vidéo`),
      el("a", { class: "button", href: path }, "Rejoindre"));
    document.querySelector("main")?.prepend(banner);
  });
}
