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

  /* ANSI SGR ------------------------------------------------------------------------------ */

  var renderAnsi = window.tasklogAnsi.render; // ansi.js, loaded before this script

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
    if (task.queued) {  // in the reader's time zone, as "started" is, not the server's
      this.field("queued").textContent = localMoment(task.queued) + " (" + (task.queue || "?") + ")";
      this.field("waiting-since").textContent = localMoment(task.queued);
    }
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
