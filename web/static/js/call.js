// The call page: device check, then a peer-to-peer mesh (perfect negotiation) through our
// socket.io signaling. Each remote participant gets one RTCPeerConnection — or, in an SFU call,
// the page has one connection, to the server (the peer "sfu"), which carries every other
// participant's sound and picture, one stream each, named by their peer id.
import { io } from "/static/vendor/socket.io.esm.min.js";
import { ApiError, api, el, settle, watchSession } from "./api.js";
import { showAfterCall } from "./aftercall.js";
import { socketTransports } from "./early-socket.js";
import { LEVELS, LinkGovernor, READ_EVERY_MS, applyLevel, readLink } from "./link.js";

const $ = (id) => document.getElementById(id);
const callId = decodeURIComponent(location.pathname.split("/").pop());
const state = { me: null, call: null, stream: null, socket: null, peerId: null, iceServers: [],
  peers: new Map(), names: new Map(), waitingPeers: new Set(), sfu: false, tiles: new Map(), present: new Set(), outStream: null, facing: "user", statsTimer: null, joined: false, leaving: false };
window.__tc = state; // read by the browser tests (getStats of each connection)
// When each step of joining happened (ms since the page opened): read by bench/ and kept for
// troubleshooting a slow start.
state.timeline = [];
const step = (name) => state.timeline.push([name, Math.round(performance.now())]);
const SFU = "sfu";
// What the page's inline script started as the page began (call.html): the camera, and the
// requests the device check needs. Taken once; a retry asks anew.
const early = window.__early || {};
window.__early = null;
state.outStream = early.outStream || new MediaStream();
const CAMERA = early.constraints || { video: { facingMode: "user", width: { ideal: 1280 }, height: { ideal: 720 } }, audio: true };

const ERRORS = {
  NotAllowedError: "Vous avez refusé l'accès à la caméra ou au micro. Autorisez-les dans les réglages du navigateur (icône du cadenas dans la barre d'adresse), puis réessayez.",
  NotReadableError: "La caméra ou le micro est déjà utilisé par une autre application (visio, appareil photo). Fermez-la, puis réessayez.",
  NotFoundError: "Aucune caméra ou aucun micro n'a été trouvé sur cet appareil.",
  OverconstrainedError: "La caméra ne permet pas ce réglage. Réessayez.",
  SecurityError: "Le navigateur bloque la caméra sur cette page (connexion non sécurisée).",
};

function mark(id, level, text) {
  const li = $(id);
  li.className = level;
  li.querySelector(".result").textContent = text;
}

function showProblem(text) {
  $("problem").textContent = text;
  $("problem").hidden = false;
}

// Where "Retour à la conversation" goes: the person's space, that conversation open.
function conversationLinks() {
  const space = state.me?.role === "patient" ? "/patient" : "/pro";
  const cid = state.call?.conversation?.id || state.call?.conversation_id;
  for (const a of document.querySelectorAll(".conversation-link")) a.href = cid ? `${space}#c=${encodeURIComponent(cid)}` : space;
}

// The call has ended (the server marked the page): its record, never the camera.
async function loadEnded() {
  const [who, call] = await Promise.all([early.me.then(settle), early.call.then(settle)].map((p) => p.then((v) => ({ v }), (e) => ({ e }))));
  if (who.e?.status === 401) { location.href = `/login?next=${encodeURIComponent(location.pathname)}`; return; }
  if (who.e || call.e) { showProblem((who.e || call.e).message); return; }
  state.me = who.v;
  state.call = call.v;
  $("me").textContent = `${state.me.first_name} ${state.me.last_name}`;
  conversationLinks();
  $("ended").hidden = false;
  afterCall();
}

async function load() {
  if (early.ended) { await loadEnded(); return; }
  // The server only serves this page to a signed-in user (it redirects to the sign-in page
  // otherwise), so everything the device check needs starts at once: the wait before
  // "Rejoindre" is the slowest of them, not their sum.
  const started = (pending, path) => (pending ? pending.then(settle) : api("GET", path));
  const me = started(early.me, "/api/me").then((m) => ({ m }), (e) => ({ e }));
  const call = started(early.call, `/api/calls/${encodeURIComponent(callId)}`).then((c) => ({ c }), (e) => ({ e }));
  const camera = early.camera || openCamera();
  const network = checkNetwork(early);
  early.certificate?.then((c) => { state.certificate = c; });
  state.spare = early.spare || null; // its offer goes out with the join
  connectSocket(); // now, so that joining costs one round trip when the patient clicks
  const drop = () => { camera.then((r) => r.stream?.getTracks().forEach((t) => t.stop())); closeSpare(); early.socket?.ws.close(); };
  const who = await me;
  if (who.e) {
    drop();
    if (who.e instanceof ApiError && who.e.status === 401) { location.href = `/login?next=${encodeURIComponent(location.pathname)}`; return; }
    showProblem(who.e.message); return;
  }
  state.me = who.m;
  step("me-loaded");
  $("me").textContent = `${state.me.first_name} ${state.me.last_name}`;
  const loaded = await call;
  step("call-loaded");
  if (loaded.e) { drop(); state.socket.disconnect(); showProblem(loaded.e.message); return; }
  state.call = loaded.c;
  conversationLinks();
  const c = state.call.conversation;
  $("title").textContent = state.me.role === "patient"
    ? `Téléconsultation avec ${c.practitioner.display_name}` : `Téléconsultation avec ${c.patient.first_name} ${c.patient.last_name}`;
  if (state.call.status === "ended") {
    drop(); state.socket.disconnect();
    $("ended").hidden = false; afterCall(); return;
  }
  $("check").hidden = false;
  enterWaitingRoom(); // connections are made while the camera opens and the patient looks
  await check(camera, network);
}

function openCamera() {
  state.stream?.getTracks().forEach((t) => t.stop());
  return navigator.mediaDevices.getUserMedia({ ...CAMERA, video: { ...CAMERA.video, facingMode: state.facing } })
    .then((stream) => ({ stream }), (error) => ({ error }));
}

async function check(camera = openCamera(), network = checkNetwork()) {
  $("advice").hidden = true;
  $("retry").hidden = true;
  $("join").disabled = true;
  const opened = await camera;
  step("camera-opened");
  const cameraOk = Boolean(opened.stream);
  if (cameraOk) {
    state.stream = opened.stream;
    $("preview").srcObject = state.stream;
    mark("check-camera", "ok", "OK");
    mark("check-mic", "ok", "OK — parlez pour voir le niveau bouger");
    meter(state.stream);
  } else {
    const e = opened.error || {};
    const text = ERRORS[e.name] || `Impossible d'ouvrir la caméra (${e.name || e}).`;
    mark("check-camera", "bad", "indisponible");
    mark("check-mic", "bad", "indisponible");
    $("advice").textContent = text;
    $("advice").hidden = false;
    $("retry").hidden = false;
  }
  state.check = { camera: deviceState(opened), microphone: deviceState(opened), network: await network,
    browser: navigator.userAgent.slice(0, 200) };
  sendCheck();
  step("network-checked");
  // Joining without a camera is allowed (the other side will hear and be heard if the micro works).
  $("join").disabled = !navigator.onLine;
  if (!cameraOk) $("join").textContent = "Rejoindre quand même";
}

// What the device check found, in the words of the contract (call:check).
function deviceState(opened) {
  if (opened.stream) return "ok";
  const name = opened.error?.name;
  if (name === "NotAllowedError" || name === "SecurityError") return "denied";
  if (name === "NotReadableError" || name === "AbortError") return "busy";
  return "missing";
}

// The professionals see the patient's device check on their tile: sent once the page is in
// the call (waiting or not), again after a retry.
function sendCheck() {
  if (!state.check || !state.peerId || !state.socket?.connected) return;
  state.socket.emit("call:check", { call_id: callId, check: state.check });
}

function meter(stream) {
  try {
    const ctx = new AudioContext();
    const analyser = ctx.createAnalyser();
    ctx.createMediaStreamSource(stream).connect(analyser);
    const data = new Uint8Array(analyser.fftSize);
    const tick = () => {
      analyser.getByteTimeDomainData(data);
      let peak = 0;
      for (const v of data) peak = Math.max(peak, Math.abs(v - 128) / 128);
      $("mic-level").value = peak;
      if (!state.joined) requestAnimationFrame(tick);
    };
    tick();
  } catch { /* no Web Audio: the level is only a help */ }
}

// ``pending``: the requests the page's inline script already made (the first check).
async function checkNetwork(pending = {}) {
  const servers = pending.iceServers ? pending.iceServers.then((list) => list || [])
    : api("GET", `/api/calls/${encodeURIComponent(callId)}/ice-servers`).then((r) => r.iceServers, () => []);
  state.iceServersKnown = servers.then((list) => { state.iceServers = list; });
  if (!navigator.onLine) { mark("check-network", "bad", "pas de connexion internet"); return { relay: "untested" }; }
  const started = performance.now();
  try {
    await (pending.health ? pending.health.then(settle) : api("GET", "/healthz"));
  } catch { mark("check-network", "bad", "le serveur ne répond pas"); return { relay: "untested" }; }
  // The request's own round trip, as the browser timed it: the one made as the page began
  // waited for a connection among the page's other requests, which says nothing of the network.
  const timed = performance.getEntriesByName(new URL("/healthz", location.href).href).pop();
  const rtt = Math.round(timed?.requestStart ? timed.responseStart - timed.requestStart : performance.now() - started);
  await state.iceServersKnown;
  const hasTurn = state.iceServers.some((s) => (Array.isArray(s.urls) ? s.urls : [s.urls]).some((u) => u.startsWith("turn")));
  if (!hasTurn) { mark("check-network", "ok", `serveur joignable (${rtt} ms)`); return { rtt_ms: rtt, relay: "untested" }; }
  const relay = await gathersRelay(state.iceServers);
  mark("check-network", relay ? "ok" : "warn", relay ? `serveur joignable (${rtt} ms), relais disponible`
    : `serveur joignable (${rtt} ms) ; relais TURN injoignable : l'appel peut échouer sur certains réseaux`);
  return { rtt_ms: rtt, relay: relay ? "ok" : "failed" };
}

function gathersRelay(iceServers) {
  return new Promise((resolve) => {
    const pc = new RTCPeerConnection({ iceServers });
    const done = (v) => { clearTimeout(timer); pc.close(); resolve(v); };
    const timer = setTimeout(() => done(false), 4000);
    pc.onicecandidate = (e) => { if (e.candidate?.type === "relay" || e.candidate?.candidate?.includes(" relay ")) done(true); if (!e.candidate) done(false); };
    pc.createDataChannel("probe");
    pc.createOffer().then((o) => pc.setLocalDescription(o)).catch(() => done(false));
  });
}

// ---- the call ------------------------------------------------------------------------------

// The device check is a waiting room: as soon as the call is known to be open, the page joins
// it "waiting" and makes its connections while the camera opens and the patient looks at their
// preview, with nothing of theirs sent (the senders carry no track). "Rejoindre" then only attaches the camera and microphone, and
// the doctor's picture, already arriving, shows at once. The others see who is about to come in.
function enterWaitingRoom() {
  state.waitingRoom = true;
  if (state.socket?.connected && !state.peerId && !state.joining) joinCall();
}

// The patient clicked "Rejoindre" after joining from the waiting room.
function comeIn() {
  for (const peer of state.peers.values()) sendOwnTracks(peer);
  state.socket.emit("call:ready", { call_id: callId });
}

function sendOwnTracks(peer) {
  for (const { sender, kind } of peer.held.splice(0)) {
    const track = state.stream?.getTracks().find((t) => t.kind === kind);
    if (track) sender.replaceTrack(track).catch((e) => console.warn("send", e));
  }
}

// One transport for audio and video (max-bundle): half the candidates to gather and check,
// where the default would first open one per kind of media.
const newConnection = () => new RTCPeerConnection({ iceServers: state.iceServers, bundlePolicy: "max-bundle",
  ...(state.certificate ? { certificates: [state.certificate] } : {}) });

// Video starts at half size, then goes to full size once the link is up: the first picture is
// a quarter of the bytes to encode, send and decode, so it shows sooner.
const START_SCALE = 2;
const FULL_SIZE_AFTER_MS = 1500;
// Our media go out on transceivers of our own making (when we offer) or on those of the
// other's offer (when we answer), all under one stream id so that the other end plays our sound
// and picture together. Tracks are attached once we are in the call, not in the waiting room.
function offerMedia(pc, peer) {
  for (const kind of ["audio", "video"]) attach(peer, pc.addTransceiver(kind, sending(kind)), kind);
}

const sending = (kind) => ({ direction: "sendrecv", streams: [state.outStream],
  sendEncodings: kind === "video" ? [{ scaleResolutionDownBy: START_SCALE }] : undefined });

// The prepared connection, unless a participant took it.
function closeSpare(spare = state.spare) {
  if (!spare) return;
  if (state.spare === spare) state.spare = null;
  spare.closed = true;
  spare.pc?.close();
}

function answerMedia(pc, peer) {
  for (const transceiver of pc.getTransceivers()) {
    if (peer.mine.has(transceiver) || transceiver.currentDirection === "stopped") continue;
    transceiver.direction = "sendrecv";
    transceiver.sender.setStreams?.(state.outStream);
    attach(peer, transceiver, transceiver.receiver.track.kind, true);
  }
}

// The server's offer asks for our microphone and camera on the sections where it only receives
// ("recvonly"); its other sections bring the others' tracks.
function uplinkMedia(pc, peer, sdp) {
  const uplink = new Set(sdp.split("\r\nm=").filter((section) => /\r\na=recvonly/.test(section))
    .map((section) => (section.match(/\r\na=mid:(\S+)/) || [])[1]));
  for (const transceiver of pc.getTransceivers()) {
    if (!uplink.has(transceiver.mid) || peer.mine.has(transceiver)) continue;
    transceiver.direction = "sendonly";
    transceiver.sender.setStreams?.(state.outStream);
    attach(peer, transceiver, transceiver.receiver.track.kind);
  }
}

// ``afterAnswer``: attached once our answer is out, so that starting the encoder does not hold
// the answer back (sendOwnTracks, in handleSignal).
function attach(peer, transceiver, kind, afterAnswer = false) {
  peer.mine.add(transceiver);
  if (!state.joined || afterAnswer) { peer.held.push({ sender: transceiver.sender, kind }); return; }
  const track = state.stream?.getTracks().find((t) => t.kind === kind);
  if (track) transceiver.sender.replaceTrack(track).catch((e) => console.warn("send", e));
}

async function scaleVideo(pc, scale) {
  // By the transceiver's kind: a sender held in the waiting room has no track yet.
  for (const { sender, receiver } of pc.getTransceivers()) {
    if (receiver.track.kind !== "video") continue;
    const params = sender.getParameters();
    if (!params.encodings?.length || params.encodings.every((e) => (e.scaleResolutionDownBy || 1) === scale)) continue;
    params.encodings.forEach((e) => { e.scaleResolutionDownBy = scale; });
    await sender.setParameters(params).catch((e) => console.warn("video scale", e));
  }
}

function status(text) {
  $("status").textContent = text || "";
  $("status").hidden = !text;
}

function layout() {
  const n = state.sfu ? state.tiles.size : state.peers.size;
  $("remotes").className = `remotes${n >= 2 ? " two" : ""}`;
  $("waiting").hidden = n > 0;
  present();
}

function connectSocket() {
  step("socket-opening");
  // A WebSocket refused (some hospital proxies do): long-polling over plain HTTP instead.
  const socket = io({ transports: socketTransports(early.socket), tryAllTransports: true });
  early.socket = null;
  state.socket = socket;
  watchSession(socket);
  socket.io.on("open", () => step("socket-open"));
  socket.on("connect", () => { step("socket-connected"); if (state.joined || state.waitingRoom) joinCall(); });
  socket.on("disconnect", () => { if (!state.leaving) status("Connexion perdue, reconnexion…"); });
  // The newcomer offers to those already here; they answer. Creating our side now would make
  // both ends offer at once, and candidates can be lost in that glare.
  socket.on("call:peer-joined", ({ peer_id, user, waiting }) => {
    state.names.set(peer_id, user); state.present.add(peer_id); setWaiting(peer_id, waiting);
    if (state.joined && !waiting) announce(`${nameWithRole(user)} rejoint l'appel.`);
  });
  socket.on("call:peer-ready", ({ peer_id }) => {
    setWaiting(peer_id, false);
    if (!state.joined) return;
    announceMedia();
    const user = state.names.get(peer_id);
    if (user) announce(`${nameWithRole(user)} rejoint l'appel.`);
  });
  socket.on("call:peer-media", ({ peer_id, camera, microphone, video_paused }) => note(peer_id, "media", [
    ...(video_paused ? ["Vidéo suspendue : connexion faible, le son continue."] : camera ? [] : ["Caméra coupée"]),
    ...(microphone ? [] : ["Micro coupé"]),
  ], "weak", video_paused));
  socket.on("call:peer-left", ({ peer_id, replaced }) => {
    state.present.delete(peer_id);
    if (state.sfu) dropTile(peer_id); else dropPeer(peer_id);
    // A reload or a network change comes back at once: only a real departure is said.
    const user = state.names.get(peer_id);
    if (user && !replaced && state.joined && !state.leaving) announce(`${user.display_name} a quitté l'appel.`, false);
  });
  socket.on("call:signal", onSignal);
  socket.on("call:ended", () => finish());
  // The same person joined from another tab or device: this page steps aside.
  socket.on("call:replaced", ({ call_id }) => { if (call_id === callId) replaced(); });
  // Professionals: a participant's device check and connection, on their tile.
  socket.on("call:peer-check", ({ peer_id, check }) => note(peer_id, "check", check.problems || []));
  socket.on("call:peer-quality", ({ peer_id, quality }) => note(peer_id, "quality",
    quality.level === "good" ? [] : [quality.words], quality.level));
  // The server's media side of this SFU call was lost (a media node stopped): join again, and
  // the server offers a new connection from wherever the call now runs.
  socket.on("call:sfu-restart", ({ call_id }) => {
    if (call_id !== callId || !state.sfu || state.leaving || !(state.joined || state.waitingRoom)) return;
    status("Reconnexion au serveur vidéo…");
    joinCall();
  });
  // React to the browser's own network events instead of waiting for the socket's ping timeout.
  window.addEventListener("online", () => {
    if (!socket.active) socket.connect();
    // Our network came back (possibly with a new address): a restart made while it was down
    // carried no usable candidates. The impolite end restarts now; the polite one leaves it to
    // the other end (or to the watchdog), so two restarts do not cross.
    for (const peer of state.peers.values()) {
      if (!peer.polite && !iceUp(peer.pc)) restart(peer, "online");
    }
  });
  navigator.connection?.addEventListener?.("change", () => { if (!socket.active) socket.connect(); });
}

const PREPARED_WITHIN_MS = 1500;

async function joinCall() {
  const waiting = !state.joined;
  state.joining = true;
  const spare = state.spare; // the first join only
  state.spare = null;
  // The connection the page's inline script prepared (call.html), whose offer is taken as it is
  // now: with the candidates gathered since, so that the other end can start its checks as
  // soon as it has answered (those candidates are not sent again).
  // Not held up by a connection slow to prepare (the ICE servers late to come): it then goes
  // the usual way, offered once the join is answered.
  const prepared = spare && (await Promise.race([spare.offer, new Promise((r) => setTimeout(() => r(null), PREPARED_WITHIN_MS))]));
  const offer = prepared && !spare.closed ? spare.pc.localDescription.toJSON() : null;
  if (offer) spare.candidates = spare.candidates.filter((c) => c === null);
  step(offer ? "offer-sent" : "join-sent");
  state.socket.emit("call:join", { call_id: callId, waiting, ...(offer ? { offer } : {}) }, (reply) => {
    state.joining = false;
    step("join-ack");
    if (!reply?.ok) {
      closeSpare(spare);
      if (reply?.status === 409) finish(); else status(reply?.detail || "Impossible de rejoindre l'appel.");
      return;
    }
    status("");
    for (const old of [...state.peers.keys()]) dropPeer(old); // a rejoin starts every link anew
    for (const old of [...state.tiles.keys()]) dropTile(old);
    state.peerId = reply.peer_id;
    state.sfu = reply.mode === "sfu";
    if (reply.ice_servers?.length) state.iceServers = reply.ice_servers;
    state.present = new Set(reply.peers.map((p) => p.peer_id));
    const offeredTo = offer && spare.pc && !spare.closed ? reply.offered_to : null;
    for (const p of reply.peers) {
      setWaiting(p.peer_id, p.waiting);
      if (state.sfu) state.names.set(p.peer_id, p.user);
      else if (p.peer_id === offeredTo) ensurePeer(p.peer_id, p.user, false, spare);
      else ensurePeer(p.peer_id, p.user, true);
    }
    if (!offeredTo || !state.peers.has(offeredTo)) closeSpare(spare);
    if (state.sfu) ensurePeer(SFU, null); // one connection, to the server, which offers it
    if (waiting && state.joined) comeIn(); // "Rejoindre" was clicked while this join was on its way
    sendCheck();
  });
}

// Who is waiting in the device check, on the tiles of the others.
function setWaiting(peerId, waiting) {
  if (waiting) state.waitingPeers.add(peerId); else state.waitingPeers.delete(peerId);
  const tile = state.peers.get(peerId)?.tile || state.tiles.get(peerId)?.tile;
  if (tile) tile.classList.toggle("waiting", Boolean(waiting));
  present();
}

// On the check screen: who is already in the call.
function present() {
  const here = (state.sfu ? [...state.present] : [...state.peers.keys()]).filter((id) => !state.waitingPeers.has(id)).map((id) => state.names.get(id)).filter(Boolean);
  $("present").textContent = here.length
    ? `Déjà dans l'appel : ${here.map((u) => u.display_name).join(", ")}.` : "";
  $("present").hidden = !here.length;
}

// ``spare``: the prepared connection whose offer the server handed to this participant.
function ensurePeer(peerId, user, offering = false, spare = null) {
  if (state.peers.has(peerId)) return state.peers.get(peerId);
  if (user) state.names.set(peerId, user);
  const pc = spare?.pc || newConnection();
  // The server's connection has no tile of its own: each stream it brings gets one (sfuTile).
  const { tile, video } = peerId === SFU ? { tile: null, video: null } : makeTile(peerId);
  // Perfect negotiation: the peer with the larger id yields on glare, so two offers never deadlock.
  // With the server, the page yields: the server never rolls back an offer of its own.
  const peer = { pc, tile, video, polite: peerId === SFU || state.peerId > peerId, makingOffer: false, ignoreOffer: false,
    restartTimer: null, queue: Promise.resolve(), earlyCandidates: [], downSince: null, lastRestart: 0, held: [], mine: new Set() };
  state.peers.set(peerId, peer);
  if (offering) offerMedia(pc, peer);
  for (const [kind, transceiver] of spare?.kinds || []) attach(peer, transceiver, kind);
  pc.ontrack = ({ track, streams }) => {
    if (peerId === SFU) {
      if (!streams[0]) return;
      const shown = sfuTile(streams[0].id);
      if (shown.video.srcObject !== streams[0]) shown.video.srcObject = streams[0];
      return;
    }
    // A browser that does not say the stream (no setStreams) still gets sound and picture.
    const stream = streams[0] || peer.inStream || (peer.inStream = new MediaStream());
    if (!streams[0]) stream.addTrack(track);
    if (video.srcObject !== stream) video.srcObject = stream;
  };
  const sendCandidate = (candidate) => state.socket.emit("call:signal", { call_id: callId, to: peerId, candidate });
  for (const candidate of spare?.candidates.splice(0) || []) sendCandidate(candidate);
  pc.onicecandidate = ({ candidate }) => sendCandidate(candidate ? candidate.toJSON() : null);
  pc.onnegotiationneeded = async () => {
    try {
      peer.makingOffer = true;
      await pc.setLocalDescription();
      step("offer-sent");
      state.socket.emit("call:signal", { call_id: callId, to: peerId, description: pc.localDescription.toJSON() });
    } catch (e) { console.warn(e); } finally { peer.makingOffer = false; }
  };
  pc.onconnectionstatechange = () => step(`link-${pc.connectionState}`); // ICE and DTLS
  pc.oniceconnectionstatechange = () => {
    const s = pc.iceConnectionState;
    step(`ice-${s}`);
    note(peerId, "ice", s === "disconnected" || s === "failed" ? ["Reconnexion…"] : [], "weak");
    if (s === "disconnected" || s === "failed") {
      status("Connexion instable, rétablissement…");
      peer.downSince ??= Date.now();
      clearTimeout(peer.restartTimer);
      // An ICE restart after a network change (Wi-Fi → 4G); wait briefly in case it recovers.
      // One end restarts (the impolite one) and the other answers its offer: restarts from both
      // ends at once cross, and the crossed answers can leave one end checking forever.
      if (!peer.polite) {
        peer.restartTimer = setTimeout(() => { if (!iceUp(pc)) restart(peer, s); }, s === "failed" ? 0 : 2000);
      }
      if (!state.socket.active) state.socket.connect();
    } else if (iceUp(pc)) {
      if (!peer.fullSizeTimer) peer.fullSizeTimer = setTimeout(() => scaleVideo(pc, 1), FULL_SIZE_AFTER_MS);
      clearTimeout(peer.restartTimer);
      peer.downSince = null;
      status("");
    }
  };
  layout();
  return peer;
}

// A line or two on a participant's tile (kept per peer: the tile may come after the note).
function note(peerId, kind, lines, level = "bad", paused = false) {
  const notes = state.notes || (state.notes = new Map());
  const mine = notes.get(peerId) || {};
  mine[kind] = { lines, level, paused };
  notes.set(peerId, mine);
  showNotes(peerId);
}

function showNotes(peerId) {
  const tile = state.peers.get(peerId)?.tile || state.tiles.get(peerId)?.tile;
  if (!tile) return;
  const box = tile.querySelector(".notes");
  box.replaceChildren();
  const notes = state.notes?.get(peerId) || {};
  for (const [kind, { lines, level }] of Object.entries(notes)) {
    // A paused video is said once: by the page that paused it, rather than by its quality.
    if (kind === "quality" && notes.media?.paused) continue;
    for (const line of lines) box.append(el("p", { class: level, role: "status" }, line));
  }
}

const ROLE_LABEL = { patient: "patient", doctor: "médecin", nurse: "infirmier·e", secretary: "secrétaire" };
const nameWithRole = (user) => `${user.display_name}${ROLE_LABEL[user.role] ? ` (${ROLE_LABEL[user.role]})` : ""}`;

// A sentence everyone in the call should notice (who comes, who leaves), read out by screen
// readers; an arrival fades after a few seconds, a departure stays until someone comes.
function announce(text, fades = true) {
  clearTimeout(state.announceTimer);
  $("announce").textContent = text;
  $("announce").hidden = false;
  if (fades) state.announceTimer = setTimeout(() => { $("announce").hidden = true; }, 6000);
}

function makeTile(peerId) {
  const user = state.names.get(peerId);
  const video = el("video", { autoplay: true, playsinline: true });
  const tile = el("div", { class: `remote${state.waitingPeers.has(peerId) ? " waiting" : ""}`, "data-peer": peerId }, video,
    el("span", { class: "name" }, user ? user.display_name : "", user ? el("span", { class: "role" }, ` · ${ROLE_LABEL[user.role] || ""}`) : ""),
    el("span", { class: "arriving" }, "vérifie sa caméra et son micro…"),
    el("div", { class: "notes" }));
  $("remotes").append(tile);
  queueMicrotask(() => showNotes(peerId));
  return { tile, video };
}

// SFU calls: one tile per participant whose stream the server forwards.
function sfuTile(peerId) {
  if (!state.tiles.has(peerId)) {
    state.tiles.set(peerId, makeTile(peerId));
    if (state.joined) state.tiles.get(peerId).video.play().catch(() => {});
    layout();
  }
  return state.tiles.get(peerId);
}

function dropTile(peerId) {
  const shown = state.tiles.get(peerId);
  if (!shown) return;
  shown.tile.remove();
  state.tiles.delete(peerId);
  layout();
}

function onSignal(message) {
  const peer = state.peers.get(message.from) || ensurePeer(message.from, state.names.get(message.from));
  // One message at a time per peer, in arrival order: a candidate must not overtake the
  // description it belongs to while that description is still being applied.
  peer.queue = peer.queue.then(() => handleSignal(peer, message));
}

async function handleSignal(peer, { from, description, candidate }) {
  const pc = peer.pc;
  try {
    if (description) {
      step(`${description.type}-arrived`);
      if (description.type === "answer" && pc.signalingState === "stable") {
        // The answer to an offer we rolled back in a glare: the other end now holds our stale
        // ICE credentials and would check forever. Renegotiate from here, now that it is stable.
        console.warn("stale answer; restarting ICE");
        restart(peer, "stale-answer");
        return;
      }
      const collision = description.type === "offer" && (peer.makingOffer || pc.signalingState !== "stable");
      peer.ignoreOffer = !peer.polite && collision;
      if (peer.ignoreOffer) return;
      await pc.setRemoteDescription(description);
      step(`${description.type}-received`);
      if (description.type === "offer") {
        if (from === SFU) uplinkMedia(pc, peer, description.sdp); else answerMedia(pc, peer);
        await pc.setLocalDescription();
        state.socket.emit("call:signal", { call_id: callId, to: from, description: pc.localDescription.toJSON() });
        step("answer-sent");
        if (state.joined) sendOwnTracks(peer);
        // After the answer is on its way (the encoder starts once the link is up, later).
        if (!peer.fullSizeTimer) scaleVideo(pc, START_SCALE);
      }
      for (const early of peer.earlyCandidates.splice(0)) await pc.addIceCandidate(early).catch(() => {});
    } else if (candidate !== undefined) {
      if (!pc.remoteDescription) { peer.earlyCandidates.push(candidate); return; }
      try { await pc.addIceCandidate(candidate); } catch (e) { if (!peer.ignoreOffer) throw e; }
    }
  } catch (e) { console.warn("signal", e); }
}

function iceUp(pc) {
  return pc.iceConnectionState === "connected" || pc.iceConnectionState === "completed";
}

function restart(peer, why) {
  peer.lastRestart = Date.now();
  state.restarts = (state.restarts || 0) + 1;
  console.info("ICE restart", why);
  peer.pc.restartIce();
}

// The last resort: a link still down long after a restart gets another one (the impolite end
// first; the polite end later, in case the other page is the one that is stuck).
const WATCHDOG_MS = { impolite: 8000, polite: 16000 };
function watchdog() {
  const now = Date.now();
  for (const peer of state.peers.values()) {
    if (iceUp(peer.pc) || peer.downSince === null || !state.socket?.connected) continue;
    if (peer.pc.signalingState !== "stable") continue;
    const wait = peer.polite ? WATCHDOG_MS.polite : WATCHDOG_MS.impolite;
    if (now - peer.downSince > wait && now - peer.lastRestart > wait) restart(peer, "watchdog");
  }
}

function dropPeer(peerId) {
  const peer = state.peers.get(peerId);
  if (!peer) return;
  peer.pc.close();
  peer.tile?.remove();
  state.peers.delete(peerId);
  layout();
}

async function sampleStats() {
  // One sample per connection, saying whom it is about: the proof of video is per pair of people.
  for (const [peerId, peer] of state.peers) {
    const sample = { video_in: {}, audio_in: {} };
    const report = await peer.pc.getStats();
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") Object.assign(sample.video_in, { frames_decoded: s.framesDecoded, fps: s.framesPerSecond, width: s.frameWidth, height: s.frameHeight, packets_lost: s.packetsLost, jitter_ms: s.jitter != null ? s.jitter * 1000 : undefined });
      if (s.type === "inbound-rtp" && s.kind === "audio") Object.assign(sample.audio_in, { packets: s.packetsReceived, packets_lost: s.packetsLost, jitter_ms: s.jitter != null ? s.jitter * 1000 : undefined });
      if (s.type === "outbound-rtp" && s.kind === "video") sample.video_out = { frames_sent: s.framesSent };
      if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime != null) sample.rtt_ms = s.currentRoundTripTime * 1000;
    });
    const level = peer.governor?.level ?? 0;
    Object.assign(sample, { link: LEVELS[level], video_paused: level === 2 });
    state.socket.emit("call:stats", { call_id: callId, about: peerId, stats: sample });
  }
}

// Our sending, per connection, at the level its link allows (link.js); what we show and tell.
async function watchLinks() {
  let changed = false;
  for (const peer of state.peers.values()) {
    if (!iceUp(peer.pc)) continue;
    peer.governor ??= new LinkGovernor();
    const before = peer.governor.level;
    const level = peer.governor.next(await readLink(peer.pc), Date.now());
    if (level !== before) { changed = true; await applyLevel(peer.pc, level); }
  }
  if (!changed) return;
  const worst = Math.max(0, ...[...state.peers.values()].map((p) => p.governor?.level ?? 0));
  $("link").textContent = worst === 2 ? "Connexion faible : votre vidéo est suspendue, le son est gardé."
    : worst === 1 ? "Connexion faible : votre vidéo est réduite pour garder le son." : "";
  $("link").hidden = worst === 0;
  announceMedia();
}

// Tell the others what they will not see or hear of us, and why (camera or micro off, video
// paused by a poor link): their tile says it instead of showing a black picture.
function announceMedia() {
  if (!state.socket?.connected || !state.peerId) return;
  // Off means turned off here; a camera the browser refused is told by the device check.
  const on = (tracks) => !tracks?.length || (tracks[0].enabled && tracks[0].readyState === "live");
  const paused = [...state.peers.values()].some((p) => p.governor?.level === 2);
  state.socket.emit("call:media", { call_id: callId, camera: on(state.stream?.getVideoTracks()),
    microphone: on(state.stream?.getAudioTracks()), video_paused: paused });
}

function start() {
  step("join-clicked");
  state.joined = true;
  $("check-screen").hidden = true;
  $("call-screen").hidden = false;
  $("local").srcObject = state.stream;
  const pro = state.me.role !== "patient";
  $("end").hidden = !pro;
  $("add-nurse").hidden = !pro;
  navigator.mediaDevices.enumerateDevices().then((d) => { $("switch").hidden = d.filter((x) => x.kind === "videoinput").length < 2; });
  // Not connected yet: its "connect" handler joins. connect() only on a socket that is not
  // already connecting: on one that is, it would open the namespace a second time, and the
  // join then waited for an answer that never came.
  if (!state.socket) connectSocket();
  else if (state.joining) { /* its answer brings us in */ }
  else if (state.socket.connected && state.peerId) comeIn();
  else if (state.socket.connected) joinCall();
  else if (!state.socket.active) state.socket.connect();
  // Their picture may have been arriving since the waiting room: play it now (a click allows sound).
  for (const peer of state.peers.values()) peer.video?.play().catch(() => {});
  for (const shown of state.tiles.values()) shown.video.play().catch(() => {});
  layout();
  state.statsTimer = setInterval(sampleStats, 5000);
  state.linkTimer = setInterval(() => watchLinks().catch((e) => console.warn("link", e)), READ_EVERY_MS);
  announceMedia();
  state.watchdogTimer = setInterval(watchdog, 2000);
}

// Joined again elsewhere: stop sending and receiving here, and offer to take the call back.
function replaced() {
  stopCall();
  $("replaced").hidden = false;
  $("take-back").focus();
}
$("take-back").addEventListener("click", () => location.reload());

// Professionals get the post-call panel (documents, payment, coding), once.
function afterCall() {
  if (state.me.role === "patient" || state.afterShown) return;
  state.afterShown = true;
  $("ended").querySelector("p").textContent = "Envoyez maintenant les documents, la demande de paiement et la cotation.";
  showAfterCall(callId, state.me, state.call).catch((e) => status(e.message));
}

// Stop sending and receiving, and go back to the page's cards.
function stopCall() {
  state.leaving = true;
  clearInterval(state.statsTimer);
  clearInterval(state.watchdogTimer);
  clearInterval(state.linkTimer);
  for (const id of [...state.peers.keys()]) dropPeer(id);
  for (const id of [...state.tiles.keys()]) dropTile(id);
  state.stream?.getTracks().forEach((t) => t.stop());
  state.socket?.disconnect();
  $("call-screen").hidden = true;
  $("check-screen").hidden = false;
  $("check").hidden = true;
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
}

function finish() {
  stopCall();
  $("left").hidden = true;
  $("ended").hidden = false;
  afterCall();
}

function toggleTrack(kind, button) {
  const tracks = kind === "audio" ? state.stream?.getAudioTracks() : state.stream?.getVideoTracks();
  if (!tracks?.length) return;
  const off = tracks[0].enabled;
  tracks.forEach((t) => (t.enabled = !off));
  button.setAttribute("aria-pressed", String(off));
  button.textContent = kind === "audio" ? (off ? "Micro coupé" : "Micro") : (off ? "Caméra coupée" : "Caméra");
  announceMedia();
}

$("join").addEventListener("click", start);
$("retry").addEventListener("click", () => check());
$("mute").addEventListener("click", (e) => toggleTrack("audio", e.currentTarget));
$("camera").addEventListener("click", (e) => toggleTrack("video", e.currentTarget));
$("fullscreen").addEventListener("click", async () => {
  try {
    if (document.fullscreenElement) await document.exitFullscreen(); else await $("call-screen").requestFullscreen();
  } catch { /* not allowed on this device */ }
});
document.addEventListener("fullscreenchange", () => { $("fullscreen").textContent = document.fullscreenElement ? "Quitter le plein écran" : "Plein écran"; });
$("switch").addEventListener("click", async () => {
  state.facing = state.facing === "user" ? "environment" : "user";
  try {
    const fresh = await navigator.mediaDevices.getUserMedia({ video: { facingMode: state.facing } });
    const track = fresh.getVideoTracks()[0];
    for (const peer of state.peers.values()) {
      const sender = peer.pc.getSenders().find((s) => s.track?.kind === "video");
      await sender?.replaceTrack(track);
    }
    state.stream.getVideoTracks().forEach((t) => { t.stop(); state.stream.removeTrack(t); });
    state.stream.addTrack(track);
  } catch (e) { status(ERRORS[e.name] || "Impossible de changer de caméra."); }
});
// Leaving is not ending: the others stay in the call, and the one who left may come back.
$("hangup").addEventListener("click", () => {
  const others = othersPresent();
  $("leave-who").textContent = others.length
    ? `${others.join(", ")} ${others.length > 1 ? "restent" : "reste"} dans l'appel ; vous pourrez revenir.`
    : "Vous pourrez revenir tant que la consultation n'est pas terminée.";
  $("leave-dialog").showModal();
});
$("leave-no").addEventListener("click", () => $("leave-dialog").close());
$("leave-yes").addEventListener("click", () => {
  $("leave-dialog").close();
  state.socket?.emit("call:leave", { call_id: callId });
  const others = othersPresent();
  if (state.me.role !== "patient") { finish(); return; }
  stopCall();
  $("left-others").textContent = others.length
    ? `${others.join(", ")} ${others.length > 1 ? "sont" : "est"} toujours dans la consultation.`
    : "La consultation n'est pas terminée.";
  $("left").hidden = false;
  $("come-back").focus();
});
$("come-back").addEventListener("click", () => location.reload());

// The names of those in the call now (not in their device check).
function othersPresent() {
  return [...state.present].filter((id) => !state.waitingPeers.has(id))
    .map((id) => state.names.get(id)?.display_name).filter(Boolean);
}
$("end").addEventListener("click", async () => {
  if (!confirm("Terminer la consultation pour tous les participants ?")) return;
  try { await api("POST", `/api/calls/${encodeURIComponent(callId)}/end`); } catch (e) { status(e.message); }
  finish();
});
$("add-nurse").addEventListener("click", () => { $("nurse-form").hidden = !$("nurse-form").hidden; $("nurse-q").focus(); });
$("nurse-form").addEventListener("submit", (e) => e.preventDefault());
let nurseTimer;
$("nurse-q").addEventListener("input", () => {
  clearTimeout(nurseTimer);
  nurseTimer = setTimeout(async () => {
    const q = $("nurse-q").value.trim();
    if (q.length < 2) return;
    try {
      const found = (await api("GET", `/api/practitioners?q=${encodeURIComponent(q)}`)).items.filter((p) => p.role === "nurse");
      $("nurse-results").replaceChildren(...found.map((n) => el("li", {}, `${n.first_name} ${n.last_name}`,
        el("button", { type: "button", onclick: async () => {
          try {
            await api("POST", `/api/calls/${encodeURIComponent(callId)}/invite-nurse`, { nurse_id: n.id, assistance: $("nurse-in-room").checked ? "in_room" : "remote" });
            $("nurse-form").hidden = true;
            status(`${n.first_name} ${n.last_name} est invité·e à rejoindre l'appel.`);
          } catch (err) { $("nurse-error").textContent = err.message; $("nurse-error").hidden = false; }
        } }, "Inviter"))));
    } catch (err) { $("nurse-error").textContent = err.message; $("nurse-error").hidden = false; }
  }, 250);
});

load();
