import { ApiError, api, busy, clearFieldErrors, formData, showError } from "./api.js";

const $ = (id) => document.getElementById(id);
const token = location.pathname.split("/").pop();
const form = $("reset");

try {
  await api("GET", `/api/auth/password-reset/${encodeURIComponent(token)}`);
  form.hidden = false;
  $("password").focus();
} catch (e) {
  $("invalid").textContent = e.message;
  $("invalid").hidden = false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  $("error").hidden = true;
  const data = formData(form);
  if ((data.password || "") !== (data.again || "")) {
    clearFieldErrors(form);
    showError($("error"), new ApiError(422, {
      detail: "Les deux mots de passe ne sont pas identiques.",
      errors: [{ field: "again", detail: "pas identique au premier" }],
    }));
    return;
  }
  await busy(form, async () => {
    try {
      const answer = await api("POST", "/api/auth/password-reset/confirm", { token, password: data.password || "" });
      form.hidden = true;
      $("done-text").textContent = answer.detail;
      $("done").hidden = false;
    } catch (e) {
      if (e.status === 410) { form.hidden = true; $("invalid").textContent = e.message; $("invalid").hidden = false; return; }
      showError($("error"), e);
    }
  });
});
