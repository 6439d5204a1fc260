// socket.io over the WebSocket that the page's inline script opened as the page began
// (call.html). Opening a WebSocket takes Chrome 100–150 ms even on loopback; started with the
// page rather than once the modules have arrived, it is open by the time they run, and joining
// the call is no longer behind it.
//
// This is the only place that reaches into engine.io-client's transport (createSocket,
// addEventListeners, onOpen, onData: socket.io-client 4.8, vendored in /static/vendor). If they
// change, the early socket is closed unused and socket.io opens its own, as it always did.
import { WebSocket as WebSocketTransport, XHR } from "/static/vendor/socket.io.esm.min.js";

const HOOKS = ["createSocket", "addEventListeners", "onOpen", "onData", "onClose"];
const OPEN = 1;

// ``early``: {ws, messages} from the inline script (messages: what arrived before the handover,
// the engine's handshake first). Taken by the first connection only: a reconnection opens anew.
export function socketTransports(early) {
  const usable = early && HOOKS.every((name) => typeof WebSocketTransport.prototype[name] === "function");
  if (!usable) {
    early?.ws.close();
    return [WebSocketTransport, XHR];
  }
  let unused = early;
  class EarlyWebSocket extends WebSocketTransport {
    createSocket(uri, protocols, opts) {
      const taken = unused;
      unused = null;
      if (taken && taken.ws.readyState <= OPEN) {
        this.early = taken;
        return taken.ws;
      }
      taken?.ws.close();
      return super.createSocket(uri, protocols, opts);
    }

    addEventListeners() {
      const taken = this.early;
      this.early = null;
      if (!taken) { super.addEventListeners(); return; }
      // The engine listens to its transport only after open() has returned: hand over then,
      // with what arrived meanwhile replayed first, in order (the inline script's handler keeps
      // queueing until this very moment).
      setTimeout(() => {
        super.addEventListeners();
        if (this.ws.readyState === OPEN) {
          this.onOpen();
          for (const data of taken.messages.splice(0)) this.onData(data);
        } else if (this.ws.readyState > OPEN) {
          this.onClose({ description: "websocket connection closed" });
        } // still connecting: its onopen, just set, opens as usual
      }, 0);
    }
  }
  return [EarlyWebSocket, XHR];
}
