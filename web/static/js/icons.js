// Icons drawn in SVG, not emoji: many practice and hospital computers have no emoji font and
// showed empty boxes. Decorative (aria-hidden): the words beside them say what they mean.
const SVG = "http://www.w3.org/2000/svg";
const PATHS = {
  video: ["M3 7h11a2 2 0 0 1 2 2v6a2 2 0 0 1-2 2H3a2 2 0 0 1-2-2V9a2 2 0 0 1 2-2z", "M16 11l6-4v10l-6-4"],
  clip: ["M21 11.5l-8.5 8.5a5 5 0 0 1-7-7L14 4.5a3.5 3.5 0 0 1 5 5l-8.5 8.5a2 2 0 0 1-3-3L15 7.5"],
  document: ["M6 2h8l5 5v15H6z", "M14 2v5h5", "M9 13h7", "M9 17h7"],
  card: ["M2 6h20v12H2z", "M2 10h20", "M6 15h4"],
  check: ["M4 12l5 5L20 6"],
};
// Emoji our own texts begin with, and the icon each stands for.
const EMOJI = { "📹": "video", "📎": "clip", "📄": "document", "💳": "card", "💶": "card" };
const LEADING = /^(📹|📎|📄|💳|💶)\uFE0F?\s*/u;

export function icon(name) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", `icon icon-${name}`);
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  for (const d of PATHS[name] || []) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

// A text that may begin with one of our emoji: [icon, rest] instead, for el(...children).
// ``rest``: how to render the text after the icon (linkify for a message), as a list of nodes.
export function iconText(text, rest = (t) => [t]) {
  const value = String(text ?? "");
  const match = value.match(LEADING);
  if (!match) return rest(value);
  return [icon(EMOJI[match[1]]), " ", ...rest(value.slice(match[0].length))];
}
