// Loaded by the call page before its modules (a classic script): the camera is the
// slowest part of the device check, so it is asked for as soon as the page starts, while the
// modules are still on their way. The server serves the page only to a signed-in user.
"use strict";
window.__cameraConstraints = {
  video: { facingMode: "user", width: { ideal: 1280 }, height: { ideal: 720 } }, audio: true,
};
window.__earlyCamera = navigator.mediaDevices?.getUserMedia
  ? navigator.mediaDevices.getUserMedia(window.__cameraConstraints).then((stream) => ({ stream }), (error) => ({ error }))
  : Promise.resolve({ error: { name: "NotFoundError" } });
