// Web Push on this browser: the service worker, the permission, and the subscription the server
// sends to. Each step says in French what went wrong, for a person, not a developer.
import { api } from "./api.js";

export const pushSupported = () => "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;

export async function currentSubscription() {
  if (!pushSupported()) return null;
  const registration = await navigator.serviceWorker.getRegistration("/");
  return registration ? registration.pushManager.getSubscription() : null;
}

export async function enablePush() {
  if (!pushSupported()) {
    throw new Error("Ce navigateur ne sait pas afficher de notifications. Sur iPhone, ajoutez d'abord Téléconsult à l'écran d'accueil (bouton Partager, puis « Sur l'écran d'accueil »).");
  }
  const permission = await Notification.requestPermission();
  if (permission !== "granted") {
    throw new Error("Les notifications sont bloquées pour ce site. Autorisez-les dans les réglages du navigateur (le cadenas à gauche de l'adresse), puis réessayez.");
  }
  const registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
  await navigator.serviceWorker.ready;
  const { public_key: key } = await api("GET", "/api/push/key");
  let subscription = await registration.pushManager.getSubscription();
  if (!subscription) {
    try {
      subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
    } catch {
      throw new Error("Le service de notifications de ce navigateur ne répond pas. Vous recevrez vos alertes par e-mail ou SMS.");
    }
  }
  await api("POST", "/api/push/subscriptions", subscription.toJSON());
  return subscription;
}

export async function disablePush() {
  const subscription = await currentSubscription();
  if (!subscription) return;
  await api("DELETE", "/api/push/subscriptions", { endpoint: subscription.endpoint });
  await subscription.unsubscribe();
}
