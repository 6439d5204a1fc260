import { api, busy, formData, sameSitePath, showError } from "./api.js";

const form = document.getElementById("login");
const error = document.getElementById("error");
const ended = sessionStorage.getItem("tc-session-ended");
if (ended) {
  sessionStorage.removeItem("tc-session-ended");
  const notice = document.getElementById("notice");
  notice.textContent = ended;
  notice.hidden = false;
}

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
      const next = sameSitePath(new URLSearchParams(location.search).get("next"));
      location.href = next || (user.role === "patient" ? "/patient" : "/pro");
    } catch (e) {
      showError(error, e);
    }
  });
});
