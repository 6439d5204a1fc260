// The service worker: shows the notifications the server pushes (the push service only carried
// ciphertext; the browser decrypted it for us) and opens the right page when one is tapped.
// It caches nothing: every page is read fresh from the server.

const ICON = "/static/icon-192.png";

const sameOrigin = (url) => {
  try {
    const target = new URL(url, self.location.origin);
    return target.origin === self.location.origin ? target.href : self.location.origin + "/";
  } catch {
    return self.location.origin + "/";
  }
};

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { body: event.data ? event.data.text() : "" };
  }
  const title = data.title || "Téléconsult";
  const url = sameOrigin(data.url || "/");
  const call = String(data.tag || "").startsWith("call-");
  event.waitUntil((async () => {
    await self.registration.showNotification(title, {
      body: data.body || "",
      tag: data.tag || undefined,
      data: { url },
      icon: ICON,
      badge: ICON,
      lang: "fr",
      // A waiting doctor stays on the screen until the patient answers or dismisses it.
      requireInteraction: call,
      renotify: call,
    });
    const pages = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const page of pages) page.postMessage({ type: "push", title, body: data.body || "", url, tag: data.tag });
  })());
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = sameOrigin(event.notification.data?.url || "/");
  event.waitUntil((async () => {
    const pages = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const page of pages) {
      if (page.url === url && "focus" in page) return page.focus();
    }
    return self.clients.openWindow(url);
  })());
});
