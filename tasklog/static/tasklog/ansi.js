/* celery-tasklog: ANSI escape sequences in a log line, turned into styled text and safe links.
 *
 * `segments(text)` is a pure parser: it splits a line into runs of text, each with the SGR style
 * in force (16, 256 and 24-bit colours, bold, dim, italic, underline, inverse, strike, overline)
 * and the OSC 8 hyperlink it sits in, if that link's target is http(s). Every other escape (cursor
 * moves, erases, titles, DCS/SOS/PM/APC strings, lone ESCs, C1 controls) is dropped, and so is any
 * malformed or unterminated sequence, as a terminal would: what remains is the text a terminal
 * would show. `render(parent, text)` appends those runs to `parent` as text nodes, spans and
 * links built with createElement/createTextNode and textContent only: log text is never parsed as
 * markup.
 *
 * Loads in the browser (as `window.tasklogAnsi`, before tasklog.js) and in node (module.exports)
 * for the unit tests (tests/js/).
 */
(function (root, factory) {
  "use strict";
  const api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.tasklogAnsi = api;
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  const ESC = "\x1b";
  const BEL = "\x07";
  // Where an escape may start: ESC, or a C1 control (U+0080-U+009F, the 8-bit forms of ESC x).
  const SPECIAL = /[\x1b\x80-\x9f]/g;
  // The C1 controls that open a sequence, by the character that follows ESC in their 7-bit form.
  const C1_INTRODUCERS = {
    "\x9b": "[", "\x9d": "]", "\x90": "P", "\x98": "X", "\x9e": "^", "\x9f": "_",
  };
  const STRING_INTRODUCERS = "]PX^_"; // OSC, DCS, SOS, PM, APC: a string up to ST (or BEL)
  const MAX_LINK_LENGTH = 8192;
  const LINK_SCHEMES = ["http:", "https:"];
  const FLAGS = ["bold", "dim", "italic", "underline", "inverse", "strike", "overline"];

  /* Styles -------------------------------------------------------------------------------- */

  function plainStyle() {
    return {
      fg: null, bg: null, bold: false, dim: false, italic: false, underline: false,
      inverse: false, strike: false, overline: false,
    };
  }

  function sameStyle(a, b) {
    return sameColour(a.fg, b.fg) && sameColour(a.bg, b.bg) &&
      FLAGS.every((flag) => a[flag] === b[flag]);
  }

  function sameColour(a, b) {
    return Array.isArray(a) && Array.isArray(b) ? a.join() === b.join() : a === b;
  }

  function copyStyle(style) {
    const copy = Object.assign(plainStyle(), style);
    for (const key of ["fg", "bg"]) if (Array.isArray(copy[key])) copy[key] = copy[key].slice();
    return copy;
  }

  function isPlain(style) {
    return sameStyle(style, plainStyle());
  }

  // A colour of the 256-colour palette: 0-15 stay palette indexes (CSS classes), the 6x6x6 cube
  // and the grey ramp become [r, g, b] as xterm draws them.
  function colour256(n) {
    if (n < 16) return n;
    if (n < 232) {
      const c = n - 16;
      const level = (v) => (v === 0 ? 0 : 55 + v * 40);
      return [level(Math.floor(c / 36)), level(Math.floor(c / 6) % 6), level(c % 6)];
    }
    const grey = 8 + (n - 232) * 10;
    return [grey, grey, grey];
  }

  const isByte = (n) => Number.isInteger(n) && n >= 0 && n <= 255;

  // An extended colour from its arguments after 38/48 (`5;n`, `2;r;g;b`, or in the colon form
  // `2:colourspace:r:g:b`): [colour or null when out of range, arguments used].
  function extendedColour(args, colonForm) {
    if (args[0] === 5) return [args.length > 1 && isByte(args[1]) ? colour256(args[1]) : null, 2];
    if (args[0] === 2) {
      const rgb = colonForm && args.length >= 5 ? args.slice(2, 5) : args.slice(1, 4);
      return [rgb.length === 3 && rgb.every(isByte) ? rgb : null, 4];
    }
    return [null, args.length]; // an unknown kind: its arguments cannot be told apart, skip them all
  }

  const SIMPLE_CODES = {
    0: (s) => Object.assign(s, plainStyle()),
    1: (s) => { s.bold = true; },
    2: (s) => { s.dim = true; },
    3: (s) => { s.italic = true; },
    4: (s) => { s.underline = true; },
    7: (s) => { s.inverse = true; },
    9: (s) => { s.strike = true; },
    21: (s) => { s.underline = true; }, // doubly underlined: shown as underlined
    22: (s) => { s.bold = s.dim = false; },
    23: (s) => { s.italic = false; },
    24: (s) => { s.underline = false; },
    27: (s) => { s.inverse = false; },
    29: (s) => { s.strike = false; },
    39: (s) => { s.fg = null; },
    49: (s) => { s.bg = null; },
    53: (s) => { s.overline = true; },
    55: (s) => { s.overline = false; },
  };

  function applyCode(style, code) {
    if (SIMPLE_CODES[code]) SIMPLE_CODES[code](style);
    else if (code >= 30 && code <= 37) style.fg = code - 30;
    else if (code >= 90 && code <= 97) style.fg = code - 90 + 8;
    else if (code >= 40 && code <= 47) style.bg = code - 40;
    else if (code >= 100 && code <= 107) style.bg = code - 100 + 8;
    // anything else (blink, conceal, fonts, codes out of range) changes nothing
  }

  // Applies an SGR parameter string ("1;31", "38;5;208", "38:2::255:0:0", "") to style.
  function applySgr(style, params) {
    const number = (p) => (p === "" ? 0 : Number(p)); // an empty parameter is a 0
    const groups = params.split(";").map((group) => group.split(":").map(number));
    for (let i = 0; i < groups.length; i++) {
      const [code, ...sub] = groups[i];
      if (code === 38 || code === 48) {
        let colour;
        if (sub.length) {
          [colour] = extendedColour(sub, true);
        } else {
          const rest = groups.slice(i + 1, i + 6).map((group) => group[0]);
          let used;
          [colour, used] = extendedColour(rest, false);
          i += used;
        }
        if (colour !== null) style[code === 38 ? "fg" : "bg"] = colour;
      } else if (code === 4 && sub.length) {
        style.underline = sub[0] !== 0; // 4:0 is "not underlined", 4:1-5 are underline styles
      } else {
        applyCode(style, code);
      }
    }
  }

  /* Links --------------------------------------------------------------------------------- */

  // The href of an OSC 8 target, or null: only absolute http(s) URLs become links.
  function safeHref(target) {
    if (!target || target.length > MAX_LINK_LENGTH || typeof URL !== "function") return null;
    let url;
    try {
      url = new URL(target);
    } catch (error) {
      return null;
    }
    return LINK_SCHEMES.includes(url.protocol) ? url.href : null;
  }

  /* The parser ---------------------------------------------------------------------------- */

  const inRange = (text, i, low, high) =>
    i < text.length && text.charCodeAt(i) >= low && text.charCodeAt(i) <= high;

  /**
   * Splits text into [{text, style, href}] runs: style as plainStyle() lists it, href a safe
   * http(s) URL or null. Adjacent runs never share both style and href.
   */
  function segments(text) {
    const runs = [];
    const style = plainStyle();
    let href = null;

    const emit = (piece) => {
      if (!piece) return;
      const last = runs[runs.length - 1];
      if (last && last.href === href && sameStyle(last.style, style)) last.text += piece;
      else runs.push({ text: piece, style: copyStyle(style), href });
    };

    // A CSI whose parameters start at `from`: applies it if it is SGR; returns where text resumes.
    // A byte out of the CSI ranges aborts it (that byte is text again); the text's end drops it.
    const csi = (from) => {
      let i = from;
      while (inRange(text, i, 0x30, 0x3f)) i++; // parameters (and private markers)
      const params = text.slice(from, i);
      const parametersEnd = i;
      while (inRange(text, i, 0x20, 0x2f)) i++; // intermediates
      if (i >= text.length) return text.length;
      if (!inRange(text, i, 0x40, 0x7e)) return i;
      if (text[i] === "m" && parametersEnd === i && /^[0-9;:]*$/.test(params)) applySgr(style, params);
      return i + 1;
    };

    // A string (OSC, DCS, SOS, PM, APC) whose payload starts at `from`, ended by BEL or ST
    // (ESC \ or U+009C); returns where text resumes. Another escape aborts it (dropped, that
    // escape is read next); unterminated, it is dropped to the end, as a terminal would swallow it.
    const string = (kind, from) => {
      for (let i = from; i < text.length; i++) {
        const c = text[i];
        if (c === ESC && text[i + 1] !== "\\") return i;
        if (c === BEL || c === "\x9c" || c === ESC) {
          if (kind === "]") osc(text.slice(from, i));
          return c === ESC ? i + 2 : i + 1;
        }
      }
      return text.length;
    };

    const osc = (payload) => {
      const link = /^8;[^;]*;(.*)$/s.exec(payload); // OSC 8 ; params ; target
      if (link) href = safeHref(link[1]);
    };

    // What follows ESC at `from`; returns where text resumes.
    const escape = (from) => {
      const kind = text[from];
      if (kind === "[") return csi(from + 1);
      if (kind !== undefined && STRING_INTRODUCERS.includes(kind)) return string(kind, from + 1);
      let i = from;
      while (inRange(text, i, 0x20, 0x2f)) i++; // nF escapes: intermediates, then a final byte
      return inRange(text, i, 0x30, 0x7e) ? i + 1 : i; // else a lone ESC: dropped alone
    };

    let i = 0;
    while (i < text.length) {
      SPECIAL.lastIndex = i;
      const found = SPECIAL.exec(text);
      if (!found) break;
      emit(text.slice(i, found.index));
      const c = found[0];
      const kind = C1_INTRODUCERS[c];
      if (c === ESC) i = escape(found.index + 1);
      else if (kind === "[") i = csi(found.index + 1);
      else if (kind) i = string(kind, found.index + 1);
      else i = found.index + 1; // any other C1 control
    }
    emit(text.slice(i));
    return runs;
  }

  /* Rendering ----------------------------------------------------------------------------- */

  // The colours a run shows: inverse swaps them; a default swapped in is named "inverse".
  function shownColours(style) {
    if (!style.inverse) return { fg: style.fg, bg: style.bg };
    return {
      fg: style.bg === null ? "inverse" : style.bg,
      bg: style.fg === null ? "inverse" : style.fg,
    };
  }

  function paint(element, property, colour, prefix) {
    if (Array.isArray(colour)) element.style[property] = "rgb(" + colour.join(", ") + ")";
    else if (colour !== null) element.classList.add(prefix + colour);
  }

  // A run's text: a text node when plain, else a span with its classes and inline colours.
  function styledText(document, style, text) {
    if (isPlain(style)) return document.createTextNode(text);
    const span = document.createElement("span");
    span.textContent = text;
    const colours = shownColours(style);
    paint(span, "color", colours.fg, "tasklog-fg-");
    paint(span, "backgroundColor", colours.bg, "tasklog-bg-");
    for (const flag of FLAGS) {
      if (flag !== "inverse" && style[flag]) span.classList.add("tasklog-" + flag);
    }
    return span;
  }

  // A link to a safe target; the title shows the real target, whatever the text says.
  function link(document, href, content) {
    const anchor = document.createElement("a");
    anchor.setAttribute("href", href);
    anchor.setAttribute("rel", "noopener noreferrer");
    anchor.setAttribute("target", "_blank");
    anchor.setAttribute("title", href);
    anchor.className = "tasklog-link";
    anchor.append(content);
    return anchor;
  }

  /** Appends text to parent: plain runs as text nodes, styled runs as spans, links as <a>. */
  function render(parent, text) {
    const document = parent.ownerDocument;
    for (const run of segments(text)) {
      const content = styledText(document, run.style, run.text);
      parent.append(run.href === null ? content : link(document, run.href, content));
    }
  }

  return { segments, render, shownColours };
});
