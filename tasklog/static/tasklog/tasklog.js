/* celery-tasklog: the log reader, on the task page and wherever {% tasklog_live %} puts it.
 *
 * Mounts on every [data-tasklog] element, each with its own JSON config (a child
 * <script type="application/json">), so several logs may share a page. The lines box is a
 * virtual list: only the rows on screen (plus a margin) are in the DOM, and lines come from the
 * JSON endpoint a block at a time as the reader scrolls or jumps (line link, search hit,
 * scrollbar), so a log of millions of lines costs what its visible rows cost. New lines come
 * from Server-Sent Events. Search, filters, groups, line links and timestamp modes are here too.
 * Log text only ever reaches the DOM through textContent: ANSI colour codes become classes on
 * spans built here, never markup parsed from the log.
 */
(function () {
  "use strict";

  if (window.tasklog) return; // the script is included once per component: run it once

  const BLOCK = 500; // lines fetched at a time (unfiltered view: seq k*BLOCK+1 .. (k+1)*BLOCK)
  const MAX_BLOCKS = 24; // blocks kept in memory; the least recently used go first
  const OVERSCAN = 20; // rows rendered above and below the visible ones
  const MAX_SCROLL_PX = 8000000; // browsers cap element heights (~17M px in Firefox, ~33M in Chromium)
  const MAX_SHOWN_CHARS = 20000; // a longer message is cut on screen (the download has it whole)
  const WINDOW_CONTEXT = 1000; // filtered view: lines fetched on each side of a jump
  const MAX_WINDOW = 10000; // filtered view: lines kept in memory
  const BOTTOM_SLACK = 8;
  const RECONNECT_MS = 5000; // after a refused stream (server restarting, task not known yet)
  const LEVELS = { DEBUG: 10, INFO: 20, WARN: 30, WARNING: 30, ERROR: 40, CRITICAL: 50, FATAL: 50 };
  const STREAMS = ["stdout", "stderr", "log", "marker"];
  const TIMESTAMP_MODES = ["absolute", "elapsed", "hidden"];
  const TIMESTAMP_KEY = "tasklog.timestamps";
  const LINK = /^#L(\d{1,10})(?:-L(\d{1,10}))?$/;
  const ATTEMPT_ENDED = "Attempt ended: "; // the marker a retried attempt ends with (capture)
  const UNFINISHED = "The previous attempt did not finish."; // in the next attempt's marker

  /* ANSI -------------------------------------------------------------------------------- */

  const renderAnsi = window.tasklogAnsi.render; // ansi.js, loaded before this script

  /* Lines --------------------------------------------------------------------------------- */

  function clock(timestamp) {
    const moment = new Date(timestamp);
    return isNaN(moment) ? "" : moment.toLocaleTimeString([], { hour12: false }) + "." +
      String(moment.getMilliseconds()).padStart(3, "0");
  }

  // "+1:02:03.456" or "+02:03.456" since the task started.
  function elapsed(timestamp, since) {
    const ms = Date.parse(timestamp) - since;
    if (isNaN(ms)) return "";
    const sign = ms < 0 ? "-" : "+";
    const total = Math.abs(ms);
    const hours = Math.floor(total / 3600000);
    const minutes = String(Math.floor(total / 60000) % 60).padStart(2, "0");
    const seconds = String(Math.floor(total / 1000) % 60).padStart(2, "0");
    const millis = String(total % 1000).padStart(3, "0");
    return sign + (hours ? hours + ":" : "") + minutes + ":" + seconds + "." + millis;
  }

  function localMoment(timestamp) {
    const moment = new Date(timestamp);
    return isNaN(moment) ? "" : moment.toLocaleString();
  }

  function span(className, text) {
    const element = document.createElement("span");
    element.className = className;
    element.textContent = text;
    return element;
  }

  // key=value pairs of a record's extra fields, as the download writes them (portable.py):
  // a key or value that is not a single word is JSON-quoted.
  const WORD = /^[\w.:\/@+-]+$/;
  function wordOrJson(value) {
    return typeof value === "string" && WORD.test(value) ? value : JSON.stringify(value);
  }

  function extraText(extra) {
    if (!extra || typeof extra !== "object") return "";
    return Object.entries(extra).map(([key, value]) => wordOrJson(key) + "=" + wordOrJson(value)).join(" ");
  }

  function shortened(message) {
    if (message.length <= MAX_SHOWN_CHARS) return [message, 0];
    return [message.slice(0, MAX_SHOWN_CHARS), message.length - MAX_SHOWN_CHARS];
  }

  /* Groups: which seqs folded groups hide ------------------------------------------------- */

  // Sorted, disjoint [first, last] seq ranges hidden by folded sections (groups and attempts),
  // with the count of hidden seqs before each, so that seq <-> row index is a binary search.
  // Rows start at seq `first`: 0 when attempt 1's header (a row of no line) leads the log, else 1.
  function HiddenRanges(sections, lastSeq, first) {
    const ranges = [];
    this.first = first;
    this.growing = false; // a folded section still open: it grows with the log
    for (const group of sections) {
      if (!group.folded) continue;
      this.growing = this.growing || group.end === null;
      const last = Math.min(group.end === null ? lastSeq : group.end - 1, lastSeq);
      if (last > group.seq) ranges.push([group.seq + 1, last]);
    }
    ranges.sort((a, b) => a[0] - b[0]);
    this.ranges = [];
    this.before = [];
    let hidden = 0;
    for (const [first, last] of ranges) {
      const previous = this.ranges[this.ranges.length - 1];
      if (previous && first <= previous[1] + 1) {
        if (last > previous[1]) {
          hidden += last - previous[1];
          previous[1] = last;
        }
        continue;
      }
      this.before.push(hidden);
      this.ranges.push([first, last]);
      hidden += last - first + 1;
    }
    this.total = hidden;
  }

  // The last range starting at or before seq, or -1.
  HiddenRanges.prototype.find = function (seq) {
    let low = 0, high = this.ranges.length - 1, found = -1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      if (this.ranges[middle][0] <= seq) { found = middle; low = middle + 1; } else high = middle - 1;
    }
    return found;
  };

  // The row of seq (a hidden seq: the row of the group header that hides it).
  HiddenRanges.prototype.indexOf = function (seq) {
    const i = this.find(seq);
    if (i < 0) return seq - this.first;
    const [first, last] = this.ranges[i];
    if (seq <= last) return first - 1 - this.first - this.before[i];
    return seq - this.first - this.before[i] - (last - first + 1);
  };

  HiddenRanges.prototype.seqAt = function (index) {
    let low = 0, high = this.ranges.length - 1, found = -1;
    while (low <= high) {  // the last range whose first seq's row is at or before index
      const middle = (low + high) >> 1;
      if (this.ranges[middle][0] - this.first - this.before[middle] <= index) { found = middle; low = middle + 1; } else high = middle - 1;
    }
    if (found < 0) return index + this.first;
    const [first, last] = this.ranges[found];
    return index + this.first + this.before[found] + (last - first + 1);
  };

  HiddenRanges.prototype.nextVisible = function (seq) {
    const i = this.find(seq + 1);
    if (i >= 0 && seq + 1 <= this.ranges[i][1]) return this.ranges[i][1] + 1;
    return seq + 1;
  };

  /* The component ------------------------------------------------------------------------- */

  function LiveLog(root, data) {
    this.root = root;
    this.data = data;
    this.urlState = root.hasAttribute("data-tasklog-url");
    this.box = root.querySelector(".tasklog-lines");
    this.jump = root.querySelector(".tasklog-jump");
    this.empty = root.querySelector(".tasklog-empty");
    this.lastSeq = 0;
    this.blocks = new Map(); // block number -> {lines: Map seq -> line, complete, used}
    this.loading = new Set();
    this.groups = new Map(); // group_start seq -> {seq, title, end, lines, duration, error, parent, folded, toggled}
    // Attempts of a retried task, each a section: marker seq (0 for attempt 1, which has no
    // marker line) -> {seq, title, end, endedAt, started, folded, toggled}. Empty until
    // a second attempt's marker is known: a task run once shows no attempt sections.
    this.attempts = new Map();
    this.endings = new Map(); // seq -> line of each "Attempt ended: …" marker (one per attempt at most)
    this.hidden = null; // HiddenRanges, rebuilt when groups or attempts change
    this.items = []; // filtered view: the window of lines the filters keep, in seq order
    this.atStart = this.atEnd = false;
    this.jumps = 0; // filtered view: jumps made, so that a superseded window load is dropped
    this.generation = 0; // bumped when search or filters change: older answers are dropped
    this.filters = { q: "", regex: false, streams: [], level: "", logger: "" };
    this.hit = null; // seq of the current search hit
    this.selection = null; // [first, last] seq of the linked lines
    this.pinned = null; // a seq a jump went to: the groups around it stay open
    this.stick = true;
    this.ended = false;
    this.tick = 0;
    this.frame = null;
    this.started = Date.parse(data.task.started);
  }

  LiveLog.prototype.start = function () {
    // The server rendered the last lines as plain text (for a page without its script):
    // the virtual list replaces them.
    for (const row of this.box.querySelectorAll(".tasklog-line")) row.remove();
    this.viewport = document.createElement("div");
    this.viewport.className = "tasklog-viewport";
    this.spacer = document.createElement("div");
    this.spacer.className = "tasklog-spacer";
    this.box.append(this.viewport, this.spacer);
    this.rowHeight = parseFloat(getComputedStyle(this.root).getPropertyValue("--tl-row")) || 18;
    this.setupControls();
    this.control("reader").hidden = false;
    this.readUrl();
    for (const line of this.data.lines) this.store(line, false);  // shown until fetched
    for (const line of this.data.attempt_markers) this.learnGroups(line);  // every attempt folds from the start
    this.empty.hidden = this.lastSeq > 0;
    this.box.addEventListener("scroll", () => this.onScroll());
    this.viewport.addEventListener("click", (event) => this.onClick(event));
    this.jump.addEventListener("click", () => this.scrollToBottom());
    window.addEventListener("resize", () => this.schedule());
    if (this.urlState) window.addEventListener("hashchange", () => this.followHash());
    this.updateTask(this.data.task);
    this.applyFilters(false);
    if (!this.data.task.complete) this.listen();
  };

  /* Controls and the URL */

  LiveLog.prototype.control = function (name) {
    return this.root.querySelector(".tasklog-" + name);
  };

  LiveLog.prototype.setupControls = function () {
    const query = this.control("query");
    query.addEventListener("keydown", (event) => {
      if (event.key !== "Enter") return;
      event.preventDefault();
      this.searchStep(event.shiftKey ? -1 : 1);
    });
    this.control("search").addEventListener("submit", (event) => event.preventDefault());
    this.control("regex").addEventListener("change", () => this.searchStep(1, true));
    this.control("next").addEventListener("click", () => this.searchStep(1));
    this.control("previous").addEventListener("click", () => this.searchStep(-1));
    for (const box of this.root.querySelectorAll(".tasklog-stream-filter")) {
      box.addEventListener("change", () => this.applyFilters(true));
    }
    this.control("filter-level").addEventListener("change", () => this.applyFilters(true));
    this.control("filter-logger").addEventListener("change", () => this.applyFilters(true));
    const stamps = this.control("timestamps");
    let mode = null;
    try { mode = window.localStorage.getItem(TIMESTAMP_KEY); } catch (error) { /* storage off */ }
    stamps.value = TIMESTAMP_MODES.includes(mode) ? mode : "absolute";
    this.timestamps = stamps.value;
    stamps.addEventListener("change", () => {
      this.timestamps = stamps.value;
      try { window.localStorage.setItem(TIMESTAMP_KEY, stamps.value); } catch (error) { /* storage off */ }
      this.root.dataset.timestamps = stamps.value;
      this.schedule();
    });
    this.root.dataset.timestamps = this.timestamps;
  };

  LiveLog.prototype.readUrl = function () {
    if (!this.urlState) return;
    const params = new URLSearchParams(window.location.search);
    const streams = params.getAll("stream").flatMap((value) => value.split(",")).filter((s) => STREAMS.includes(s));
    this.control("query").value = (params.get("q") || "").slice(0, 1000);
    this.control("regex").checked = params.get("regex") === "1";
    for (const box of this.root.querySelectorAll(".tasklog-stream-filter")) {
      box.checked = !streams.length || streams.includes(box.value);
    }
    const level = (params.get("level") || "").toUpperCase();
    this.control("filter-level").value = level in LEVELS ? level : "";
    this.control("filter-logger").value = (params.get("logger") || "").slice(0, 200);
  };

  // The search and filters as the JSON endpoint and the page's URL both take them.
  LiveLog.prototype.setFilterParams = function (params) {
    const f = this.filters;
    if (f.q) params.set("q", f.q);
    if (f.q && f.regex) params.set("regex", "1");
    if (f.streams.length) params.set("stream", f.streams.join(","));
    if (f.level) params.set("level", f.level);
    if (f.logger) params.set("logger", f.logger);
  };

  LiveLog.prototype.writeUrl = function () {
    if (!this.urlState) return;
    const url = new URL(window.location.href);
    for (const name of ["q", "regex", "stream", "level", "logger"]) url.searchParams.delete(name);
    this.setFilterParams(url.searchParams);
    window.history.replaceState(null, "", url);
  };

  LiveLog.prototype.readFilters = function () {
    const checked = [...this.root.querySelectorAll(".tasklog-stream-filter")].filter((box) => box.checked);
    return {
      q: this.control("query").value,
      regex: this.control("regex").checked,
      streams: checked.length === STREAMS.length ? [] : checked.map((box) => box.value),
      level: this.control("filter-level").value,
      logger: this.control("filter-logger").value.trim(),
    };
  };

  Object.defineProperty(LiveLog.prototype, "filtered", {
    get: function () {
      const f = this.filters;
      return f.streams.length > 0 || f.level !== "" || f.logger !== "";
    },
  });

  // Takes the search and filters from the controls: resets what was loaded, counts the hits,
  // then goes to the linked line, the first hit, or the end.
  LiveLog.prototype.applyFilters = async function (userAction) {
    this.filters = this.readFilters();
    this.writeUrl();
    this.generation++;
    if (userAction || this.filters.q) this.blocks.clear(); // to load them with the search's marks
    this.items = [];
    this.hit = null;
    this.showMessage("");
    this.control("matches").textContent = "";
    const link = this.urlState && !userAction ? window.location.hash.match(LINK) : null;
    if (this.filters.q) {
      // The count and the first hit are asked apart: a rare word's count reads the whole log,
      // its first hit only up to it.
      const counted = this.countHits();
      if (link) {
        this.goto(Number(link[1]), Number(link[2] || link[1]));
        return;
      }
      const first = await this.firstHit();
      if (first !== null) this.goto(first, first, true);
      else if ((await counted) === null) this.showEnd();
    } else if (this.filtered) {
      this.atEnd = false;
      this.goto(link ? Number(link[1]) : this.lastSeq + 1, link ? Number(link[2] || link[1]) : null);
    } else if (link) {
      this.goto(Number(link[1]), Number(link[2] || link[1]));
    } else {
      this.showEnd();
    }
  };

  LiveLog.prototype.showEnd = function () {
    this.stick = true;
    if (this.filtered) this.goto(this.lastSeq + 1, null);
    else this.scrollToBottom();
  };

  LiveLog.prototype.showMessage = function (text) {
    const message = this.control("error");
    message.textContent = text;
    message.hidden = !text;
  };

  /* Search */

  // Shows the match count (or a 400's reason); the first hit's seq, or null.
  LiveLog.prototype.countHits = async function () {
    const generation = this.generation;
    try {
      // A first page holding every hit is its own count: a rare word costs one read of the log.
      const page = await this.request({ count: 1 });
      if (generation !== this.generation) return null;
      const count = page.matches.toLocaleString("en");
      this.control("matches").textContent = page.matches === 0 ? "No matches" :
        page.matches_exact ? count + (page.matches === 1 ? " match" : " matches") : "at least " + count + " matches";
      return page.lines.length ? page.lines[0].seq : null;
    } catch (error) {
      if (generation === this.generation) this.showMessage(error.message);
      return null;
    }
  };

  LiveLog.prototype.firstHit = async function () {
    const generation = this.generation;
    try {
      const page = await this.request({ limit: 1, count: 0 });
      return generation === this.generation && page.lines.length ? page.lines[0].seq : null;
    } catch (error) {
      return null; // countHits says why
    }
  };

  // Enter, Shift+Enter, the arrows: the next (1) or previous (-1) hit, wrapping around; a
  // changed search starts over.
  LiveLog.prototype.searchStep = async function (direction, restart) {
    const wanted = this.readFilters();
    if (restart || JSON.stringify(wanted) !== JSON.stringify(this.filters)) {
      await this.applyFilters(true);
      return;
    }
    if (!this.filters.q) return;
    const generation = this.generation;
    const from = this.hit === null ? (direction > 0 ? 0 : this.lastSeq + 1) : this.hit;
    try {
      const step = (params) => this.request(Object.assign({ limit: 1, count: 0 }, params));
      let page = await step(direction > 0 ? { after: from } : { before: from });
      if (!page.lines.length) page = await step(direction > 0 ? { after: 0 } : { before: 2147483647 });  // wrap around
      if (generation !== this.generation || !page.lines.length) return;
      const seq = page.lines[0].seq;
      this.goto(seq, seq, true);
    } catch (error) {
      if (generation === this.generation) this.showMessage(error.message);
    }
  };

  /* Loading lines */

  LiveLog.prototype.request = async function (params) {
    const url = new URL(this.data.lines_url, window.location.href);
    this.setFilterParams(url.searchParams);
    for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
    const response = await fetch(url, { credentials: "same-origin" });
    let body = null;
    try { body = await response.json(); } catch (error) { /* not JSON */ }
    if (!response.ok) throw new Error((body && body.error) || response.status + " " + response.statusText);
    return body;
  };

  LiveLog.prototype.block = function (seq) {
    return Math.floor((seq - 1) / BLOCK);
  };

  LiveLog.prototype.lineAt = function (seq) {
    const block = this.blocks.get(this.block(seq));
    if (!block) return undefined;
    block.used = ++this.tick;
    return block.lines.get(seq);
  };

  // Keeps a line (unfiltered view) and what it says about groups. A block is complete once
  // fetched whole, or when a live line starts it; the first page the server ships is not (its
  // lines carry no group summaries).
  LiveLog.prototype.store = function (line, complete) {
    const number = this.block(line.seq);
    let block = this.blocks.get(number);
    if (!block) {
      block = { lines: new Map(), complete: complete, used: ++this.tick };
      this.blocks.set(number, block);
    }
    block.lines.set(line.seq, line);
    if (line.seq > this.lastSeq) {
      this.lastSeq = line.seq;
      if (this.hidden && this.hidden.growing) this.hidden = null;
    }
    this.learnGroups(line);
  };

  LiveLog.prototype.evict = function () {
    if (this.blocks.size <= MAX_BLOCKS) return;
    const byAge = [...this.blocks.entries()].sort((a, b) => a[1].used - b[1].used);
    for (const [number] of byAge.slice(0, this.blocks.size - MAX_BLOCKS)) this.blocks.delete(number);
  };

  LiveLog.prototype.learnGroups = function (line) {
    if (line.kind === "group_start") {
      const known = this.groups.get(line.seq);
      const section = line.section || {};
      const group = known || { seq: line.seq, toggled: false };
      group.title = line.message.slice("::group::".length).trim();
      group.parent = line.group || 0;
      group.started = line.timestamp;
      if (line.section) {
        group.end = section.end;
        group.lines = section.lines;
        group.duration = section.duration;
        group.error = group.error || section.error;
      } else if (!known) {
        group.end = null;
        group.error = false;
      }
      this.groups.set(line.seq, group);
      this.refold(group);
    } else if (line.kind === "group_end" && line.group !== null) {
      let closed = null;
      for (const group of this.groups.values()) {
        if (group.end === null && group.parent === line.group && group.seq < line.seq && (!closed || group.seq > closed.seq)) closed = group;
      }
      if (closed) this.close(closed, line);
    } else if (line.kind === "attempt") {
      for (const group of this.groups.values()) {
        if (group.end === null && group.seq < line.seq) this.close(group, line);
      }
      this.learnAttempt(line);
    }
    if (line.seq === 1) this.firstTimestamp = line.timestamp;  // when attempt 1 started
    if (line.stream === "marker" && line.message.startsWith(ATTEMPT_ENDED)) {
      this.endings.set(line.seq, line);  // kept apart: the block holding it may be evicted
    }
    if (line.error && line.group) this.openForError(line.group);
  };

  // A retry's marker line starts an attempt and ends the one before it (the attempt with the
  // nearest lower seq known; attempt 1 starts the log). Markers may come in any order (blocks
  // load where the reader scrolls), so each new one finds its place among those known.
  LiveLog.prototype.learnAttempt = function (line) {
    if (!this.attempts.size) {
      this.attempts.set(0, { seq: 0, title: "Attempt 1", end: null, toggled: false, folded: false });
    }
    if (this.attempts.has(line.seq)) return;
    let previous = null, next = null;
    for (const attempt of this.attempts.values()) {
      if (attempt.seq < line.seq && (!previous || attempt.seq > previous.seq)) previous = attempt;
      if (attempt.seq > line.seq && (!next || attempt.seq < next.seq)) next = attempt;
    }
    const attempt = { seq: line.seq, title: line.message, started: line.timestamp, toggled: false };
    attempt.end = next ? next.seq : null;
    attempt.endedAt = next ? next.started : null;
    this.attempts.set(line.seq, attempt);
    previous.end = line.seq;
    previous.endedAt = line.timestamp;
    this.hidden = null;
    this.refold(previous);
    this.refold(attempt);
  };

  LiveLog.prototype.close = function (group, line) {
    group.end = line.seq;
    group.lines = line.seq - group.seq - 1;
    const duration = (Date.parse(line.timestamp) - Date.parse(group.started)) / 1000;
    group.duration = isNaN(duration) ? null : duration;
    this.refold(group);
  };

  LiveLog.prototype.openForError = function (seq) {
    for (let group = this.groups.get(seq); group; group = this.groups.get(group.parent)) {
      if (group.error) break;
      group.error = true;
      this.refold(group);
    }
  };

  // A closed group is folded unless it holds an error, the reader opened it, or a jump went inside;
  // so is an attempt once the next one starts (the last attempt stays open, error or not).
  LiveLog.prototype.refold = function (group) {
    if (group.toggled) return;
    const pinnedInside = this.pinned !== null && this.pinned > group.seq &&
      (group.end === null || this.pinned < group.end);
    const folded = group.end !== null && !group.error && !pinnedInside;
    if (folded !== group.folded) {
      group.folded = folded;
      this.hidden = null;
    }
  };

  LiveLog.prototype.ranges = function () {
    if (!this.hidden) {
      const sections = [...this.attempts.values(), ...this.groups.values()];
      this.hidden = new HiddenRanges(sections, this.lastSeq, this.attempts.size ? 0 : 1);
    }
    return this.hidden;
  };

  // Unfiltered: fetches the blocks of the rows on screen that are not in memory, nearest first.
  LiveLog.prototype.loadBlocks = function (seqs) {
    const wanted = [...new Set(seqs.map((seq) => this.block(seq)))].filter((number) => {
      const block = this.blocks.get(number);
      return !(block && block.complete) && !this.loading.has(number);
    });
    for (const number of wanted.slice(0, 3)) this.loadBlock(number);
  };

  LiveLog.prototype.loadBlock = async function (number) {
    const generation = this.generation;
    this.loading.add(number);
    try {
      const half = BLOCK / 2;
      const page = await this.request({ around: number * BLOCK + half, context: half, count: 0 });
      if (generation !== this.generation) return;
      const anchor = this.anchor();
      for (const line of page.lines) this.store(line, false);  // a neighbour's edge is not all of it
      const block = this.blocks.get(number);
      if (block) block.complete = true;
      else this.blocks.set(number, { lines: new Map(), complete: true, used: ++this.tick });
      this.evict();
      this.restore(anchor);
    } catch (error) {
      if (generation === this.generation) this.showMessage(error.message);
    } finally {
      this.loading.delete(number);
    }
  };

  // Filtered: the window of kept lines around seq (WINDOW_CONTEXT on each side).
  // A jump (replace) supersedes a load at the window's edge still on its way.
  LiveLog.prototype.loadWindow = async function (seq, replace) {
    const generation = this.generation;
    if (!replace && this.loading.has("window")) return;
    const jump = replace ? ++this.jumps : this.jumps;
    this.loading.add("window");
    try {
      const counting = replace && !this.filters.q; // a search counts its hits instead
      const page = await this.request({ around: Math.max(seq, 0), context: WINDOW_CONTEXT, count: counting ? 1 : 0 });
      if (generation !== this.generation || jump !== this.jumps) return;
      if (counting) this.control("matches").textContent = this.kept(page);
      const anchor = replace ? null : this.anchor();
      const before = page.lines.filter((line) => line.seq <= seq).length;
      const after = page.lines.length - before;
      if (replace) {
        this.items = page.lines;
        this.atStart = before < WINDOW_CONTEXT + 1;
        this.atEnd = after < WINDOW_CONTEXT;
      } else {
        const first = this.items.length ? this.items[0].seq : Infinity;
        const last = this.items.length ? this.items[this.items.length - 1].seq : -Infinity;
        const older = page.lines.filter((line) => line.seq < first);
        const newer = page.lines.filter((line) => line.seq > last);
        if (older.length) this.atStart = before < WINDOW_CONTEXT + 1;
        if (newer.length || seq >= last) this.atEnd = after < WINDOW_CONTEXT;
        this.items = older.concat(this.items, newer);
      }
      this.trimWindow(anchor ? anchor.seq : seq);
      for (const line of page.lines) this.learnGroups(line);
      if (anchor) this.restore(anchor);
      else this.schedule();
    } catch (error) {
      if (generation === this.generation) this.showMessage(error.message);
    } finally {
      if (jump === this.jumps) this.loading.delete("window");
    }
  };

  // "1,234 lines kept" by the filters (without a search, which counts its hits instead).
  LiveLog.prototype.kept = function (page) {
    if (page.matches === 0) return "No line passes the filters";
    const count = page.matches.toLocaleString("en") + (page.matches === 1 ? " line" : " lines");
    return (page.matches_exact ? "" : "at least ") + count + " kept";
  };

  // At most MAX_WINDOW lines: drops from the end farther from the seq in view.
  LiveLog.prototype.trimWindow = function (seq) {
    const excess = this.items.length - MAX_WINDOW;
    if (excess <= 0) return;
    const at = this.indexOf(seq);
    if (at > this.items.length / 2) {
      this.items = this.items.slice(excess);
      this.atStart = false;
    } else {
      this.items = this.items.slice(0, MAX_WINDOW);
      this.atEnd = false;
    }
  };

  // Whether a live line passes the filters (the server's rules: stream, minimum level, logger tree).
  LiveLog.prototype.keeps = function (line) {
    const f = this.filters;
    if (f.streams.length && !f.streams.includes(line.stream)) return false;
    if (f.level && !(line.level && (LEVELS[line.level] || 0) >= LEVELS[f.level])) return false;
    if (f.logger && !(line.logger === f.logger || (line.logger || "").startsWith(f.logger + "."))) return false;
    return true;
  };

  /* Rows and scrolling */

  LiveLog.prototype.count = function () {
    return this.filtered ? this.items.length : this.lastSeq + 1 - this.ranges().first - this.ranges().total;
  };

  LiveLog.prototype.indexOf = function (seq) {
    if (!this.filtered) return this.ranges().indexOf(seq);
    let low = 0, high = this.items.length - 1;
    while (low <= high) {  // the first item at or after seq
      const middle = (low + high) >> 1;
      if (this.items[middle].seq < seq) low = middle + 1; else high = middle - 1;
    }
    return low;
  };

  LiveLog.prototype.geometry = function () {
    const count = this.count();
    const height = this.box.clientHeight;
    const rows = height / this.rowHeight;
    const total = count * this.rowHeight;
    const scrollable = Math.max(Math.min(total, MAX_SCROLL_PX), height);
    return { count, height, rows, total, scrollable, scaled: total > MAX_SCROLL_PX };
  };

  // The row index (fractional) at the top of the box.
  LiveLog.prototype.topIndex = function () {
    const g = this.geometry();
    if (!g.scaled) return this.box.scrollTop / this.rowHeight;
    const fraction = this.box.scrollTop / Math.max(g.scrollable - g.height, 1);
    return fraction * Math.max(g.count - g.rows, 0);
  };

  LiveLog.prototype.setTopIndex = function (index) {
    const g = this.geometry();
    this.sizeSpacer(g);
    index = Math.max(0, Math.min(index, Math.max(g.count - g.rows, 0)));
    this.box.scrollTop = g.scaled ? index / Math.max(g.count - g.rows, 1) * (g.scrollable - g.height) : index * this.rowHeight;
    this.render();
  };

  LiveLog.prototype.sizeSpacer = function (g) {
    this.spacer.style.height = Math.max(g.scrollable - g.height, 0) + "px";
  };

  // The seq at the top of the box and how far into it, to keep it in place when rows change.
  LiveLog.prototype.anchor = function () {
    if (this.stick) return { bottom: true };
    const top = this.topIndex();
    const index = Math.floor(top);
    const seq = this.filtered ? (this.items[index] || {}).seq : this.ranges().seqAt(index);
    return { seq: seq ?? 1, offset: top - index };  // seq 0: attempt 1's header
  };

  LiveLog.prototype.restore = function (anchor) {
    if (anchor.bottom) this.scrollToBottom();
    else this.setTopIndex(this.indexOf(anchor.seq) + anchor.offset);
  };

  LiveLog.prototype.atBottom = function () {
    const box = this.box;
    return box.scrollTop + box.clientHeight >= box.scrollHeight - BOTTOM_SLACK;
  };

  LiveLog.prototype.onScroll = function () {
    this.stick = this.atBottom() && (!this.filtered || this.atEnd);
    this.jump.hidden = this.stick;
    this.schedule();
  };

  LiveLog.prototype.scrollToBottom = function () {
    this.sizeSpacer(this.geometry());
    this.box.scrollTop = this.box.scrollHeight;
    this.stick = true;
    this.jump.hidden = true;
    this.render();
  };

  LiveLog.prototype.schedule = function () {
    if (this.frame === null) this.frame = requestAnimationFrame(() => { this.frame = null; this.render(); });
  };

  // Builds the rows on screen (plus OVERSCAN each side) and asks for the lines it lacks.
  LiveLog.prototype.render = function () {
    const g = this.geometry();
    this.sizeSpacer(g);
    const top = this.topIndex();
    const first = Math.max(Math.floor(top) - OVERSCAN, 0);
    const last = Math.min(Math.ceil(top + g.rows) + OVERSCAN, g.count);
    const fragment = document.createDocumentFragment();
    const missing = [];
    let seq = this.filtered ? null : this.ranges().seqAt(first);
    for (let index = first; index < last; index++) {
      let line;
      if (this.filtered) {
        line = this.items[index];
        seq = line.seq;
      } else {
        line = seq === 0 ? this.firstAttemptLine() : this.lineAt(seq);
        if (seq !== 0 && !(this.blocks.get(this.block(seq)) || {}).complete) missing.push(seq);
      }
      const row = line ? this.row(line) : this.pendingRow(seq, missing[missing.length - 1] === seq);
      row.style.top = ((index - top) * this.rowHeight) + "px";
      fragment.append(row);
      if (!this.filtered) seq = this.ranges().nextVisible(seq);
    }
    this.viewport.replaceChildren(fragment);
    this.empty.hidden = this.lastSeq > 0;
    if (missing.length) this.loadBlocks(missing);
    if (this.filtered && !this.loading.has("window") && this.items.length) {
      if (first <= OVERSCAN && !this.atStart) this.loadWindow(this.items[0].seq - 1, false);
      else if (last >= g.count - OVERSCAN && !this.atEnd) this.loadWindow(this.items[this.items.length - 1].seq, false);
    }
  };

  // A row whose line is on its way, or was never stored (a truncated log's dropped range,
  // which a marker line explains).
  LiveLog.prototype.pendingRow = function (seq, loading) {
    const row = document.createElement("div");
    row.className = "tasklog-line " + (loading ? "tasklog-pending" : "tasklog-absent");
    row.dataset.seq = seq;
    row.append(span("tasklog-seq", seq), span("tasklog-message", loading ? "…" : "(not stored)"));
    return row;
  };

  LiveLog.prototype.row = function (line) {
    const row = document.createElement("div");
    row.className = "tasklog-line tasklog-stream-" + line.stream + " tasklog-kind-" + line.kind;
    row.dataset.seq = line.seq;
    if (line.match) row.classList.add("tasklog-match");
    if (line.seq === this.hit) row.classList.add("tasklog-hit");
    if (this.selection && line.seq >= this.selection[0] && line.seq <= this.selection[1]) {
      row.classList.add("tasklog-selected");
    }
    const number = document.createElement(line.seq ? "a" : "span");  // attempt 1's header has no line
    number.className = "tasklog-seq";
    if (line.seq) number.href = "#L" + line.seq;
    number.textContent = line.seq || "";
    const time = document.createElement("time");
    time.className = "tasklog-time";
    time.dateTime = line.timestamp || "";
    time.title = line.timestamp || "";
    time.textContent = this.timestamps === "elapsed" ? elapsed(line.timestamp, this.since(line)) :
      this.timestamps === "hidden" ? "" : clock(line.timestamp);
    time.hidden = this.timestamps === "hidden";
    const message = document.createElement("span");
    message.className = "tasklog-message";
    message.style.paddingLeft = (line.depth || 0) * 1.5 + "em";
    row.append(number, time, message);
    const group = this.filtered ? null : line.kind === "group_start" ? this.groups.get(line.seq) :
      line.kind === "attempt" ? this.attempts.get(line.seq) : null;
    if (group) {
      const toggle = document.createElement("button");
      toggle.type = "button";
      toggle.className = "tasklog-toggle";
      toggle.setAttribute("aria-expanded", String(!group.folded));
      toggle.textContent = group.folded ? "▸" : "▾";
      message.append(toggle, span("tasklog-group-title", group.title));
      const summary = line.kind === "attempt" ? this.attemptSummary(group) : this.groupSummary(group);
      message.append(" ", span("tasklog-group-meta", summary));
      if (group.error) row.classList.add("tasklog-group-error");
      return row;
    }
    if (line.level) message.append(span("tasklog-level tasklog-level-" + line.level.toLowerCase(), line.level), " ");
    if (line.logger) message.append(span("tasklog-logger", line.logger), " ");
    const [text, cut] = shortened(line.message);
    renderAnsi(message, text);
    if (cut) message.append(span("tasklog-cut", " … " + cut.toLocaleString("en") + " more characters (see the download)"));
    const extra = extraText(line.extra);
    if (extra) row.append(span("tasklog-extra", extra));
    return row;
  };

  LiveLog.prototype.since = function (line) {
    return isNaN(this.started) ? Date.parse(line.timestamp) : this.started;
  };

  LiveLog.prototype.groupSummary = function (group) {
    const lines = group.end === null ? this.lastSeq - group.seq : group.lines;
    const count = lines.toLocaleString("en") + (lines === 1 ? " line" : " lines");
    if (group.end === null) return "(running, " + count + ")";
    const duration = group.duration === null || group.duration === undefined ? "" : ", " + group.duration.toFixed(1) + " s";
    return "(" + count + duration + ")";
  };

  // Attempt 1 has no marker line: its header is a row of its own before line 1.
  LiveLog.prototype.firstAttemptLine = function () {
    return { seq: 0, kind: "attempt", stream: "marker", message: "Attempt 1", depth: 0, timestamp: this.firstTimestamp || this.data.task.started };
  };

  // "(3 lines, 1.2 s, Retry in 5s)": its lines, how long it ran and how it ended (the "Attempt
  // ended: …" marker a retry writes last, "error" after a traceback, or the next attempt's word
  // that it did not finish), as far as the lines in memory tell.
  LiveLog.prototype.attemptSummary = function (attempt) {
    const lines = (attempt.end === null ? this.lastSeq + 1 : attempt.end) - attempt.seq - 1;
    const count = lines.toLocaleString("en") + (lines === 1 ? " line" : " lines");
    if (attempt.end === null) return this.ended || this.data.task.complete ? "(" + count + ")" : "(running, " + count + ")";
    const ending = this.endings.get(attempt.end - 1);
    const last = ending || this.lineAt(attempt.end - 1);
    const started = attempt.seq ? attempt.started : this.firstTimestamp || this.data.task.started;
    const duration = (Date.parse(last ? last.timestamp : attempt.endedAt) - Date.parse(started)) / 1000;
    const parts = [count];
    if (!isNaN(duration)) parts.push(duration.toFixed(1) + " s");
    if (ending) parts.push(ending.message.slice(ATTEMPT_ENDED.length));
    else if (last && last.error) parts.push("error");
    else if ((this.attempts.get(attempt.end) || { title: "" }).title.endsWith(UNFINISHED)) parts.push("did not finish");
    return "(" + parts.join(", ") + ")";
  };

  /* Line links, jumps and folding */

  LiveLog.prototype.onClick = function (event) {
    const toggle = event.target.closest(".tasklog-toggle, .tasklog-group-title");
    if (toggle) {
      const seq = Number(toggle.closest(".tasklog-line").dataset.seq);
      this.toggleGroup(seq);
      return;
    }
    const number = event.target.closest("a.tasklog-seq");
    if (!number) return;
    event.preventDefault();
    const seq = Number(number.closest(".tasklog-line").dataset.seq);
    const anchor = this.selection && event.shiftKey ? this.selection[0] : seq;
    this.selection = [Math.min(anchor, seq), Math.max(anchor, seq)];
    if (this.urlState) {
      const [a, b] = this.selection;
      window.history.replaceState(null, "", "#L" + a + (b !== a ? "-L" + b : ""));
    }
    this.render();
  };

  LiveLog.prototype.toggleGroup = function (seq) {
    const group = this.groups.get(seq) || this.attempts.get(seq);
    if (!group) return;
    const anchor = this.anchor();
    group.toggled = true;
    group.folded = !group.folded;
    this.hidden = null;
    this.restore(anchor);
  };

  LiveLog.prototype.followHash = function () {
    const link = window.location.hash.match(LINK);
    if (link) this.goto(Number(link[1]), Number(link[2] || link[1]));
  };

  // Shows seq (a third down the box), selecting first..last or marking it the current hit.
  LiveLog.prototype.goto = function (seq, last, isHit) {
    if (isHit) this.hit = seq;
    else if (last !== null) this.selection = [Math.min(seq, last), Math.max(seq, last)];
    this.pinned = seq;
    this.stick = false;
    for (const group of this.groups.values()) this.refold(group);
    for (const attempt of this.attempts.values()) this.refold(attempt);
    if (this.filtered) {
      this.items = [];
      const loaded = this.loadWindow(seq, true);
      const jump = this.jumps;
      loaded.then(() => { if (jump === this.jumps) this.place(seq); });
      return;
    }
    this.place(seq);
  };

  LiveLog.prototype.place = function (seq) {
    const g = this.geometry();
    if (this.filtered && this.atEnd && seq > (this.items[this.items.length - 1] || { seq: 0 }).seq) {
      this.scrollToBottom();
      return;
    }
    this.setTopIndex(this.indexOf(seq) - Math.floor(g.rows / 3));
    this.jump.hidden = this.atBottom();
  };

  /* Header and live lines */

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
    if (task.started) {
      this.field("started").textContent = localMoment(task.started);
      this.started = Date.parse(task.started);
    }
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

  LiveLog.prototype.receive = function (line) {
    if (line.seq <= this.lastSeq) return;
    this.store(line, (line.seq - 1) % BLOCK === 0);
    this.evict();
    if (this.filtered) {
      if (this.atEnd && this.keeps(line)) {
        this.items.push(line);
        this.trimWindow(this.stick ? line.seq : (this.anchor().seq || line.seq));
      }
    }
    if (this.stick) this.scrollToBottomSoon();
    else this.schedule();
  };

  LiveLog.prototype.scrollToBottomSoon = function () {
    if (this.frame !== null) cancelAnimationFrame(this.frame);
    this.frame = requestAnimationFrame(() => { this.frame = null; this.scrollToBottom(); });
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
    source.addEventListener("line", (event) => this.receive(JSON.parse(event.data)));
    source.addEventListener("state", (event) => this.updateTask(JSON.parse(event.data)));
    source.addEventListener("end", (event) => {
      this.ended = true;
      source.close();
      live.hidden = true;
      this.updateTask(JSON.parse(event.data));
    });
    // An archived log whose object cannot be read: retrying would not help, say why.
    source.addEventListener("archive_error", (event) => {
      this.ended = true;
      source.close();
      live.hidden = true;
      this.showMessage(JSON.parse(event.data).error);
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

  // "/" focuses the first search box, unless the reader is typing somewhere.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target.closest && target.closest("input, textarea, select, [contenteditable]")) return;
    const box = document.querySelector("[data-tasklog] .tasklog-query");
    if (!box) return;
    event.preventDefault();
    box.focus();
    box.select();
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
