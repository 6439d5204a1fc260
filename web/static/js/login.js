import { api, busy, formData, showError } from "./api.js";

const form = document.getElementById("login");
const error = document.getElementById("error");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  const data = formData(form);
  if (!data.email || !data.password) {
    showError(error, { message: "" });
    error.textContent = "Indiquez votre adresse e-mail et votre mot de passe.";
    return;
  }
  await busy(form, async () => {
    try {
      const user = await api("POST", "/api/auth/login", data);
      const next = new URLSearchParams(location.search).get("next");
      location.href = next && next.startsWith("/") && !next.startsWith("//") ? next
        : user.role === "patient" ? "/patient" : "/pro";
    } catch (e) {
      showError(error, e);
    }
  });
});
