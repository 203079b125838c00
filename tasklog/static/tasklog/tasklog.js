/* celery-tasklog: the live log component, on the task page and wherever {% tasklog_live %} puts it.
 *
 * Mounts on every [data-tasklog] element, each with its own JSON config (a child
 * <script type="application/json">), so several logs may share a page: renders the lines the
 * config ships (replacing the plain copy the server rendered), loads earlier pages on demand,
 * appends new lines from Server-Sent Events and keeps the header (state, progress, timings)
 * current.
 * Log text only ever reaches the DOM through textContent: ANSI colour codes become classes on
 * spans built here, never markup parsed from the log.
 */
(function () {
  "use strict";

  if (window.tasklog) return; // the script is included once per component: run it once

  const MAX_DOM_LINES = 5000;
  const BOTTOM_SLACK = 8;
  const RECONNECT_MS = 5000; // after a refused stream (server restarting, task not known yet)
  // CSI sequences (colours, cursor moves, erase), OSC sequences (titles, links), lone ESCs.
  const ESCAPES = /\x1b\[([0-?]*)[ -\/]*([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b/g;

  /* ANSI SGR ------------------------------------------------------------------------------ */

  function freshStyle() {
    return { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false, inverse: false };
  }

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

  // Reads an extended colour (38;5;n or 38;2;r;g;b) from codes[i...]; returns [colour, next i].
  function extendedColour(codes, i) {
    if (codes[i] === 5 && codes.length > i + 1) {
      return [colour256(Math.min(Math.max(codes[i + 1], 0), 255)), i + 2];
    }
    if (codes[i] === 2 && codes.length > i + 3) {
      const rgb = codes.slice(i + 1, i + 4).map((v) => Math.min(Math.max(v, 0), 255));
      return [rgb, i + 4];
    }
    return [null, codes.length];
  }

  function applySgr(style, params) {
    const codes = params === "" ? [0] : params.split(/[;:]/).map((p) => parseInt(p || "0", 10));
    for (let i = 0; i < codes.length; i++) {
      const code = codes[i];
      if (code === 0) Object.assign(style, freshStyle());
      else if (code === 1) style.bold = true;
      else if (code === 2) style.dim = true;
      else if (code === 3) style.italic = true;
      else if (code === 4) style.underline = true;
      else if (code === 7) style.inverse = true;
      else if (code === 22) style.bold = style.dim = false;
      else if (code === 23) style.italic = false;
      else if (code === 24) style.underline = false;
      else if (code === 27) style.inverse = false;
      else if (code >= 30 && code <= 37) style.fg = code - 30;
      else if (code >= 90 && code <= 97) style.fg = code - 90 + 8;
      else if (code === 39) style.fg = null;
      else if (code >= 40 && code <= 47) style.bg = code - 40;
      else if (code >= 100 && code <= 107) style.bg = code - 100 + 8;
      else if (code === 49) style.bg = null;
      else if (code === 38 || code === 48) {
        const [colour, next] = extendedColour(codes, i + 1);
        if (colour !== null) style[code === 38 ? "fg" : "bg"] = colour;
        i = next - 1;
      }
    }
  }

  function isPlain(style) {
    return style.fg === null && style.bg === null && !style.bold && !style.dim &&
      !style.italic && !style.underline && !style.inverse;
  }

  function paint(span, property, colour, prefix) {
    if (Array.isArray(colour)) span.style[property] = "rgb(" + colour.join(",") + ")";
    else if (colour !== null) span.classList.add(prefix + colour);
  }

  function styledSpan(text, style) {
    const span = document.createElement("span");
    span.textContent = text;
    const [fg, bg] = style.inverse ? [style.bg === null ? 7 : style.bg, style.fg === null ? 0 : style.fg] : [style.fg, style.bg];
    paint(span, "color", fg, "tasklog-fg-");
    paint(span, "backgroundColor", bg, "tasklog-bg-");
    for (const flag of ["bold", "dim", "italic", "underline"]) {
      if (style[flag]) span.classList.add("tasklog-" + flag);
    }
    return span;
  }

  // Appends the message to parent as text, split into styled spans at SGR codes.
  function renderAnsi(parent, message) {
    const style = freshStyle();
    let start = 0;
    const emit = (text) => {
      if (!text) return;
      parent.append(isPlain(style) ? document.createTextNode(text) : styledSpan(text, style));
    };
    for (const match of message.matchAll(ESCAPES)) {
      emit(message.slice(start, match.index));
      if (match[2] === "m") applySgr(style, match[1]);
      start = match.index + match[0].length;
    }
    emit(message.slice(start));
  }

  /* Lines --------------------------------------------------------------------------------- */

  function clock(timestamp) {
    const moment = new Date(timestamp);
    return isNaN(moment) ? "" : moment.toLocaleTimeString([], { hour12: false }) + "." +
      String(moment.getMilliseconds()).padStart(3, "0");
  }

  function lineElement(line) {
    const row = document.createElement("div");
    row.className = "tasklog-line tasklog-stream-" + line.stream;
    row.dataset.seq = line.seq;
    const seq = document.createElement("span");
    seq.className = "tasklog-seq";
    seq.textContent = line.seq;
    const time = document.createElement("time");
    time.className = "tasklog-time";
    time.dateTime = line.timestamp || "";
    time.textContent = clock(line.timestamp);
    time.title = line.timestamp || "";
    const message = document.createElement("span");
    message.className = "tasklog-message";
    if (line.level) {
      const level = document.createElement("span");
      level.className = "tasklog-level tasklog-level-" + line.level.toLowerCase();
      level.textContent = line.level;
      message.append(level, " ");
    }
    renderAnsi(message, line.message);
    row.append(seq, time, message);
    return row;
  }

  function localMoment(timestamp) {
    const moment = new Date(timestamp);
    return isNaN(moment) ? "" : moment.toLocaleString();
  }

  /* The component ------------------------------------------------------------------------- */

  function LiveLog(root, data) {
    this.root = root;
    this.data = data;
    this.box = root.querySelector(".tasklog-lines");
    this.earlier = root.querySelector(".tasklog-earlier");
    this.jump = root.querySelector(".tasklog-jump");
    this.empty = root.querySelector(".tasklog-empty");
    this.firstSeq = null;
    this.lastSeq = 0;
    this.stick = true;
    this.ended = false;
    this.hasEarlier = data.has_earlier;
  }

  LiveLog.prototype.start = function () {
    // The server rendered the last lines as plain text (for a page without its script):
    // replace them with the same lines, coloured.
    for (const row of this.box.querySelectorAll(".tasklog-line")) row.remove();
    this.append(this.data.lines);
    this.scrollToBottom();
    this.showEarlierButton();
    this.box.addEventListener("scroll", () => this.onScroll());
    this.earlier.addEventListener("click", () => this.loadEarlier());
    this.jump.addEventListener("click", () => this.scrollToBottom());
    this.updateTask(this.data.task);
    if (!this.data.task.complete) this.listen();
  };

  LiveLog.prototype.atBottom = function () {
    const box = this.box;
    return box.scrollTop + box.clientHeight >= box.scrollHeight - BOTTOM_SLACK;
  };

  LiveLog.prototype.onScroll = function () {
    this.stick = this.atBottom();
    this.jump.hidden = this.stick;
  };

  LiveLog.prototype.scrollToBottom = function () {
    this.box.scrollTop = this.box.scrollHeight;
    this.stick = true;
    this.jump.hidden = true;
  };

  LiveLog.prototype.append = function (lines) {
    const fresh = lines.filter((line) => line.seq > this.lastSeq);
    if (!fresh.length) {
      this.empty.hidden = this.lastSeq > 0;
      return;
    }
    const fragment = document.createDocumentFragment();
    for (const line of fresh) fragment.append(lineElement(line));
    this.box.append(fragment);
    this.lastSeq = fresh[fresh.length - 1].seq;
    if (this.firstSeq === null) this.firstSeq = fresh[0].seq;
    this.empty.hidden = true;
    if (this.stick) {
      this.trim();
      this.scrollToBottom();
    }
  };

  // A reader following a long live log keeps at most MAX_DOM_LINES rows; earlier ones reload.
  LiveLog.prototype.trim = function () {
    const rows = this.box.querySelectorAll(".tasklog-line");
    const excess = rows.length - MAX_DOM_LINES;
    if (excess <= 0) return;
    for (let i = 0; i < excess; i++) rows[i].remove();
    this.firstSeq = Number(rows[excess].dataset.seq);
    this.hasEarlier = true;
    this.showEarlierButton();
  };

  LiveLog.prototype.prepend = function (lines) {
    const older = lines.filter((line) => this.firstSeq === null || line.seq < this.firstSeq);
    if (!older.length) return;
    const fragment = document.createDocumentFragment();
    for (const line of older) fragment.append(lineElement(line));
    const fromBottom = this.box.scrollHeight - this.box.scrollTop;
    this.box.insertBefore(fragment, this.box.querySelector(".tasklog-line"));
    this.box.scrollTop = this.box.scrollHeight - fromBottom;
    this.firstSeq = older[0].seq;
    if (this.lastSeq === 0) this.lastSeq = older[older.length - 1].seq;
  };

  LiveLog.prototype.showEarlierButton = function () {
    this.earlier.hidden = !this.hasEarlier;
  };

  LiveLog.prototype.loadEarlier = async function () {
    this.earlier.disabled = true;
    try {
      const url = new URL(this.data.lines_url, window.location.href);
      url.searchParams.set("before", this.firstSeq);
      url.searchParams.set("limit", this.data.page_size);
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) throw new Error(response.status + " " + response.statusText);
      const page = await response.json();
      this.prepend(page.lines);
      this.hasEarlier = page.next_before !== null;
    } catch (error) {
      this.earlier.title = String(error);
    } finally {
      this.earlier.disabled = false;
      this.showEarlierButton();
    }
  };

  LiveLog.prototype.field = function (name) {
    return this.root.querySelector('[data-field="' + name + '"]');
  };

  LiveLog.prototype.updateTask = function (task) {
    const state = this.field("state");
    state.textContent = task.state;
    state.dataset.state = task.state;
    const bar = this.root.querySelector(".tasklog-progress");
    bar.hidden = task.progress === null;
    if (task.progress !== null) bar.value = task.progress;
    this.field("progress").textContent = task.progress === null ? "—" : task.progress + "%";
    if (task.duration !== null) this.field("duration").textContent = task.duration.toFixed(1) + " s";
    if (task.started) this.field("started").textContent = localMoment(task.started);
    if (task.queue_wait !== null) this.field("queue-wait").textContent = task.queue_wait.toFixed(1) + " s";
    this.field("waiting").hidden = task.state !== "QUEUED";
    this.field("attempts").textContent = task.attempts;
    this.field("worker").textContent = task.worker || "—";
    this.field("finished").hidden = !task.complete;
    this.field("final-state").textContent = task.state;
    this.root.dataset.state = task.state;
  };

  LiveLog.prototype.listen = function () {
    const url = new URL(this.data.events_url, window.location.href);
    url.searchParams.set("after", this.lastSeq);
    const source = new EventSource(url);
    const live = this.field("live");
    source.addEventListener("open", () => { live.hidden = false; });
    source.addEventListener("error", () => {
      live.hidden = true;
      // The browser retries a dropped stream itself, but not one refused (an error status).
      if (source.readyState === EventSource.CLOSED && !this.ended) {
        setTimeout(() => this.listen(), RECONNECT_MS);
      }
    });
    source.addEventListener("line", (event) => this.append([JSON.parse(event.data)]));
    source.addEventListener("state", (event) => this.updateTask(JSON.parse(event.data)));
    source.addEventListener("end", (event) => {
      this.ended = true;
      source.close();
      live.hidden = true;
      this.updateTask(JSON.parse(event.data));
    });
  };

  // "Copy share link": the server put a fresh signed link on the button; copy it, or show it
  // for copying by hand where the clipboard is not available (plain HTTP, denied permission).
  document.addEventListener("click", async function (event) {
    const button = event.target.closest(".tasklog-share");
    if (!button) return;
    const link = button.dataset.shareUrl;
    try {
      await navigator.clipboard.writeText(link);
      const copied = button.parentElement.querySelector(".tasklog-share-copied");
      if (copied) copied.hidden = false;
    } catch (error) {
      window.prompt(button.textContent, link);
    }
  });

  // Starts every component under root not started yet; returns how many it started.
  function mountAll(root) {
    let mounted = 0;
    for (const element of (root || document).querySelectorAll("[data-tasklog]")) {
      const config = element.querySelector(':scope > script[type="application/json"]');
      if (element.dataset.tasklogMounted || !config) continue;
      element.dataset.tasklogMounted = "1";
      new LiveLog(element, JSON.parse(config.textContent)).start();
      mounted++;
    }
    return mounted;
  }

  window.tasklog = { mountAll: mountAll };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => mountAll(document));
  } else {
    mountAll(document);
  }
})();
