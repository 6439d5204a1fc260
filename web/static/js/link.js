// Keep the sound on a poor link. Per connection, every 2 s, read how our own sending fares
// (loss, smoothed, and round trip from the other end's receiver reports, the bitrate the browser thinks
// the path carries) and choose a level: "good" (full video), "weak" (half size, 15 images/s),
// "bad" (video paused, sound kept). Worse readings act after two in a row; better ones only
// after the link has held for a while, one step at a time, and longer after a return that
// failed, so that the picture does not flap.

export const LEVELS = ["good", "weak", "bad"];
const WEAK = { loss: 0.04, rtt: 450, kbps: 300 };
const BAD = { loss: 0.10, rtt: 1200, kbps: 100 };
export const READ_EVERY_MS = 2000;
const FIRST_HOLD_MS = 8000;
const LONGEST_HOLD_MS = 60000;

// What the browser knows of our sending on this connection.
export async function readLink(pc) {
  const reading = { loss: null, rtt: null, kbps: null };
  (await pc.getStats()).forEach((s) => {
    if (s.type === "remote-inbound-rtp" && typeof s.fractionLost === "number") {
      reading.loss = Math.max(reading.loss ?? 0, s.fractionLost);
    }
    if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
      if (s.currentRoundTripTime != null) reading.rtt = s.currentRoundTripTime * 1000;
      if (s.availableOutgoingBitrate != null) reading.kbps = s.availableOutgoingBitrate / 1000;
    }
  });
  return reading;
}

// The level a reading calls for. With video lowered or paused, the estimated bitrate says
// little (nothing probes the path any more): only loss and round trip count then.
export function levelOf({ loss, rtt, kbps }, current = 0) {
  const trustRate = current === 0;
  if ((loss ?? 0) >= BAD.loss || (rtt ?? 0) >= BAD.rtt || (trustRate && kbps != null && kbps < BAD.kbps)) return 2;
  if ((loss ?? 0) >= WEAK.loss || (rtt ?? 0) >= WEAK.rtt || (trustRate && kbps != null && kbps < WEAK.kbps)) return 1;
  return 0;
}

export class LinkGovernor {
  constructor() {
    this.level = 0;
    this.worse = 0;
    this.betterSince = null;
    this.hold = FIRST_HOLD_MS;
    this.raisedAt = -Infinity;
    this.loss = null; // smoothed: one report's share lost jumps from 0 to 0.16 and back
  }

  // The level to apply after this reading.
  next(reading, now) {
    if (reading.loss != null) this.loss = this.loss == null ? reading.loss : (this.loss + reading.loss) / 2;
    const wanted = levelOf({ ...reading, loss: this.loss }, this.level);
    if (wanted > this.level) {
      this.betterSince = null;
      if (++this.worse >= 2) {
        // A return that did not last: wait longer before the next one.
        if (now - this.raisedAt < this.hold * 2) this.hold = Math.min(this.hold * 2, LONGEST_HOLD_MS);
        this.level = wanted;
        this.worse = 0;
      }
    } else if (wanted < this.level) {
      this.worse = 0;
      this.betterSince ??= now;
      if (now - this.betterSince >= this.hold) {
        this.level -= 1;
        this.betterSince = null;
        this.raisedAt = now;
      }
    } else {
      this.worse = 0;
      this.betterSince = null;
    }
    return this.level;
  }
}

// Our video senders on this connection, at the level's size, rate, or paused.
export async function applyLevel(pc, level, fullScale = 1) {
  for (const { sender, receiver } of pc.getTransceivers()) {
    if (receiver.track.kind !== "video" || !sender.track) continue;
    const params = sender.getParameters();
    if (!params.encodings?.length) continue;
    for (const e of params.encodings) {
      e.active = level < 2;
      e.scaleResolutionDownBy = level === 1 ? Math.max(2, fullScale) : fullScale;
      e.maxFramerate = level === 1 ? 15 : undefined;
      if (e.maxFramerate === undefined) delete e.maxFramerate;
    }
    await sender.setParameters(params).catch((err) => console.warn("video level", err));
  }
}
