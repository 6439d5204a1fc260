import { api, busy, dateField, formData, privacyConsent, showError } from "./api.js";

const form = document.getElementById("register");
const error = document.getElementById("error");
const role = document.getElementById("role");

function toggleFields() {
  const pro = role.value !== "patient";
  document.getElementById("pro-fields").hidden = !pro;
  document.getElementById("patient-fields").hidden = pro;
}
role.addEventListener("change", toggleFields);
toggleFields();

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  const data = formData(form);
  if (data.role === "patient") {
    delete data.rpps; delete data.practice_name; delete data.practice_address;
  } else {
    delete data.birth_date;
  }
  if (data.birth_date !== undefined) {
    const birth = dateField(form, "birth_date", error);
    if (birth === null) return;
    data.birth_date = birth;
  }
  data.accept_privacy = privacyConsent(form, error);
  if (!data.accept_privacy) return;
  await busy(form, async () => {
    try {
      const user = await api("POST", "/api/auth/register", data);
      location.href = user.role === "patient" ? "/patient" : "/pro";
    } catch (e) {
      showError(error, e);
    }
  });
});
