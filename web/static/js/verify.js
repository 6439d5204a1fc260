import { api } from "./api.js";

const $ = (id) => document.getElementById(id);
const token = location.pathname.split("/").pop();
try {
  const me = await api("POST", "/api/auth/verify-email", { token });
  $("done").textContent = `Merci ${me.first_name} : votre adresse ${me.email} est confirmée. Nous vous y préviendrons des messages de vos praticiens.`;
  $("done").hidden = false;
  $("next").hidden = false;
} catch (e) {
  $("failed").textContent = e.message;
  $("failed").hidden = false;
  $("next").hidden = false;
} finally {
  $("working").hidden = true;
}
