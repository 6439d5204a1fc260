import { ApiError, api, busy, showError } from "./api.js";
import { currentSubscription, enablePush, pushSupported } from "./push.js";

const $ = (id) => document.getElementById(id);
const form = $("prefs");
let me = null;

function showQuiet() { $("quiet-hours").hidden = !$("quiet").checked; }
$("quiet").addEventListener("change", showQuiet);

const french = (phone) => (phone || "").replace(/^\+33(\d)(\d{2})(\d{2})(\d{2})(\d{2})$/, "0$1 $2 $3 $4 $5");
let savedPhone = "";
$("phone").addEventListener("input", () => {
  $("confirm-phone").hidden = $("phone").value.replace(/\s/g, "") === savedPhone.replace(/\s/g, "");
});

function fill(prefs) {
  savedPhone = french(prefs.phone);
  $("phone").value = savedPhone;
  $("current_password").value = "";
  $("confirm-phone").hidden = true;
  $("email").checked = prefs.email;
  $("sms").checked = prefs.sms && Boolean(prefs.phone);
  $("sms").disabled = !prefs.phone;
  $("sms-to").textContent = prefs.phone ? `(au ${french(prefs.phone)})` : "(aucun numéro de portable dans votre compte)";
  $("push").checked = prefs.push;
  const n = prefs.push_devices;
  $("devices").textContent = n ? `(${n} appareil${n > 1 ? "s" : ""})` : "(aucun appareil pour l'instant)";
  $("quiet").checked = Boolean(prefs.quiet_hours);
  if (prefs.quiet_hours) {
    $("quiet_from").value = prefs.quiet_hours.from;
    $("quiet_until").value = prefs.quiet_hours.until;
  }
  showQuiet();
}

async function deviceState() {
  if (!pushSupported()) {
    $("device-state").textContent = "Ce navigateur ne peut pas afficher de notifications : vous serez prévenu par e-mail ou SMS.";
    $("enable").hidden = true;
    return;
  }
  const subscription = await currentSubscription().catch(() => null);
  const on = subscription && Notification.permission === "granted";
  $("email-to").textContent = me ? `(à ${me.email})` : "";
  $("device-state").textContent = on
    ? "Cet appareil reçoit vos notifications."
    : "Cet appareil ne reçoit pas encore vos notifications.";
  $("enable").hidden = Boolean(on);
}

try {
  me = await api("GET", "/api/me");
  $("me").textContent = me.display_name;
  $("back").href = me.role === "patient" ? "/patient" : "/pro";
  fill(await api("GET", "/api/me/notifications"));
  await deviceState();
} catch (e) {
  if (e instanceof ApiError && e.status === 401) location.href = `/login?next=${encodeURIComponent(location.pathname)}`;
  else showError($("prefs-error"), e);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  $("prefs-error").hidden = true;
  $("prefs-saved").hidden = true;
  const body = {
    email: $("email").checked,
    sms: $("sms").checked,
    push: $("push").checked,
    quiet_hours: $("quiet").checked ? { from: $("quiet_from").value, until: $("quiet_until").value } : null,
  };
  if (!$("confirm-phone").hidden) {
    body.phone = $("phone").value.trim();
    body.current_password = $("current_password").value;
  }
  await busy(form, async () => {
    try {
      fill(await api("PUT", "/api/me/notifications", body));
      $("prefs-saved").textContent = "Vos choix sont enregistrés.";
      $("prefs-saved").hidden = false;
    } catch (e) {
      showError($("prefs-error"), e);
    }
  });
});

$("enable").addEventListener("click", async () => {
  $("device-error").hidden = true;
  $("enable").disabled = true;
  try {
    await enablePush();
    fill(await api("GET", "/api/me/notifications"));
  } catch (e) {
    $("device-error").textContent = e.message;
    $("device-error").hidden = false;
  } finally {
    $("enable").disabled = false;
    await deviceState();
  }
});

$("test").addEventListener("click", async () => {
  $("device-error").hidden = true;
  $("test").disabled = true;
  try {
    const answer = await api("POST", "/api/me/notifications/test");
    $("test-sent").textContent = answer.detail;
    $("test-sent").hidden = false;
  } catch (e) {
    $("device-error").textContent = e.message;
    $("device-error").hidden = false;
  } finally {
    $("test").disabled = false;
  }
});

$("password-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  await busy(event.currentTarget, async () => {
    const answer = await api("POST", "/api/auth/password-reset", { email: me.email });
    $("password-sent").textContent = answer.detail;
    $("password-sent").hidden = false;
  });
});
