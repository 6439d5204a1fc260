import { ApiError, api, busy, dateField, dateFr, formData, privacyConsent, showError } from "./api.js";

const token = decodeURIComponent(location.pathname.split("/").pop());
const $ = (id) => document.getElementById(id);
let doctorName = "";

function show(id) {
  for (const section of ["loading", "problem", "accepted", "invite", "done"]) $(section).hidden = section !== id;
}

function practitionerName(doctor) {
  return doctor.display_name;
}

async function accept(body) {
  const result = await api("POST", `/api/invitations/token/${encodeURIComponent(token)}/accept`, body);
  $("done-text").textContent = `Vous êtes maintenant en relation avec ${doctorName}. `
    + "Votre conversation vous attend.";
  show("done");
  return result;
}

async function load() {
  let invitation;
  try {
    invitation = await api("GET", `/api/invitations/token/${encodeURIComponent(token)}`);
  } catch (e) {
    $("problem-text").textContent = e instanceof ApiError ? e.message : "Impossible de charger l'invitation.";
    show("problem");
    return;
  }
  if (invitation.status === "accepted") { show("accepted"); return; }
  doctorName = practitionerName(invitation.doctor);
  $("invite-title").textContent = `${doctorName} vous invite`;
  $("invite-text").textContent = `Bonjour ${invitation.first_name}, ${doctorName} vous propose d'échanger `
    + `sur Téléconsult : messages sécurisés et téléconsultations vidéo, depuis votre téléphone ou votre `
    + `ordinateur, sans rien installer. Cette invitation est valable jusqu'au ${dateFr(invitation.expires_at)}.`;
  $("su-first").value = invitation.first_name || "";
  $("su-last").value = invitation.last_name || "";
  $("su-email").value = invitation.email || "";
  $("si-email").value = invitation.email || "";
  const me = invitation.signed_in_as;
  if (me) {
    $("signed-in").hidden = false;
    if (me.role === "patient") {
      $("signed-in-text").textContent = `Vous êtes connecté·e en tant que ${me.first_name}.`;
    } else {
      $("signed-in-text").textContent = "Vous êtes connecté·e avec un compte professionnel : "
        + "une invitation s'accepte avec un compte patient.";
      $("accept-now").hidden = true;
    }
  } else {
    $("anonymous").hidden = false;
  }
  show("invite");
}

function selectTab(signup) {
  $("tab-signup").setAttribute("aria-selected", String(signup));
  $("tab-signin").setAttribute("aria-selected", String(!signup));
  $("signup").hidden = !signup;
  $("signin").hidden = signup;
}
$("tab-signup").addEventListener("click", () => selectTab(true));
$("tab-signin").addEventListener("click", () => selectTab(false));

$("accept-now").addEventListener("click", async () => {
  $("accept-error").hidden = true;
  await busy($("signed-in"), async () => {
    try { await accept({}); } catch (e) { showError($("accept-error"), e); }
  });
});

$("switch-account").addEventListener("click", async () => {
  try { await api("POST", "/api/auth/logout"); } catch { /* already signed out */ }
  location.reload();
});

$("signup").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("signup-error").hidden = true;
  await busy($("signup"), async () => {
    const data = formData($("signup"));
    if (data.birth_date !== undefined) {
      const birth = dateField($("signup"), "birth_date", $("signup-error"));
      if (birth === null) return;
      data.birth_date = birth;
    }
    data.accept_privacy = privacyConsent($("signup"), $("signup-error"));
    if (!data.accept_privacy) return;
    try { await accept(data); } catch (e) { showError($("signup-error"), e); }
  });
});

$("signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("signin-error").hidden = true;
  await busy($("signin"), async () => {
    try {
      await api("POST", "/api/auth/login", formData($("signin")));
      await accept({});
    } catch (e) {
      showError($("signin-error"), e);
    }
  });
});

load();
