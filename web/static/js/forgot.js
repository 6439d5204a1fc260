import { api, busy, formData, showError } from "./api.js";

const $ = (id) => document.getElementById(id);
const ask = $("ask");
let phone = null;

function choose() {
  const byPhone = ask.elements.by.value === "phone";
  $("by-email").hidden = byPhone;
  $("by-phone").hidden = !byPhone;
}
ask.addEventListener("change", choose);
choose();

ask.addEventListener("submit", async (event) => {
  event.preventDefault();
  $("ask-error").hidden = true;
  const data = formData(ask);
  const body = data.by === "phone" ? { phone: data.phone || "" } : { email: data.email || "" };
  await busy(ask, async () => {
    try {
      const answer = await api("POST", "/api/auth/password-reset", body);
      $("asked").textContent = answer.detail;
      $("asked").hidden = false;
      if (data.by === "phone") {
        phone = body.phone;
        ask.hidden = true;
        $("code-form").hidden = false;
        $("code").focus();
      }
    } catch (e) {
      showError($("ask-error"), e);
    }
  });
});

$("code-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  $("code-error").hidden = true;
  const data = formData(form);
  await busy(form, async () => {
    try {
      const answer = await api("POST", "/api/auth/password-reset/confirm", {
        phone, code: data.code || "", password: data.password || "",
      });
      form.hidden = true;
      $("asked").hidden = true;
      $("done").textContent = answer.detail;
      $("done").hidden = false;
    } catch (e) {
      showError($("code-error"), e);
    }
  });
});
