/* Unit tests of tasklog/static/tasklog/ansi.js, run by `node --test tests/js/` (and by
 * tests/test_js.py under pytest). The DOM part runs on a small fake document: element names,
 * attributes, classes, inline styles and text are what a user's browser would get. */
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");

const ansi = require(path.join(__dirname, "..", "..", "tasklog", "static", "tasklog", "ansi.js"));

const ESC = "\x1b";
const csi = (params) => ESC + "[" + params;
const sgr = (params) => csi(params + "m");
const link = (target, text) => ESC + "]8;;" + target + ESC + "\\" + text + ESC + "]8;;" + ESC + "\\";

/* The fake document ---------------------------------------------------------------------- */

class FakeText {
  constructor(text) {
    this.nodeType = 3;
    this.textContent = text;
  }
}

class FakeElement {
  constructor(document, tagName) {
    this.ownerDocument = document;
    this.tagName = tagName.toUpperCase();
    this.nodeType = 1;
    this.childNodes = [];
    this.attributes = {};
    this.style = {};
    const classes = new Set();
    this.classes = classes;
    this.classList = { add: (...names) => names.forEach((name) => classes.add(name)) };
  }

  set textContent(text) {
    this.childNodes = [new FakeText(String(text))];
  }

  get textContent() {
    return this.childNodes.map((node) => node.textContent).join("");
  }

  set className(value) {
    this.classes.clear();
    value.split(/\s+/).filter(Boolean).forEach((name) => this.classes.add(name));
  }

  set innerHTML(_value) {
    throw new Error("innerHTML must never be used");
  }

  setAttribute(name, value) {
    this.attributes[name] = String(value);
  }

  append(...nodes) {
    for (const node of nodes) {
      if (!(node instanceof FakeElement || node instanceof FakeText)) {
        throw new Error("append takes nodes only, got " + typeof node);
      }
      this.childNodes.push(node);
    }
  }
}

function fakeDocument() {
  const document = {
    createElement: (name) => new FakeElement(document, name),
    createTextNode: (text) => new FakeText(text),
  };
  return document;
}

function rendered(text) {
  const parent = fakeDocument().createElement("span");
  ansi.render(parent, text);
  return parent;
}

// The parts of a rendered line as plain data: text, tag, classes, inline style, attributes.
function describe(node) {
  if (node instanceof FakeText) return node.textContent;
  const description = { tag: node.tagName.toLowerCase(), text: node.textContent };
  if (node.classes.size) description.classes = [...node.classes].sort();
  if (Object.keys(node.style).length) description.style = { ...node.style };
  if (Object.keys(node.attributes).length) description.attributes = { ...node.attributes };
  const children = node.childNodes.filter((child) => child instanceof FakeElement);
  if (children.length) description.children = node.childNodes.map(describe);
  return description;
}

const parts = (text) => rendered(text).childNodes.map(describe);

// Each run as [text, its non-default style fields, href].
function runs(text) {
  return ansi.segments(text).map((run) => {
    const style = Object.fromEntries(
      Object.entries(run.style).filter(([, value]) => value !== null && value !== false),
    );
    return [run.text, style, run.href];
  });
}

/* Plain text ----------------------------------------------------------------------------- */

test("text without escapes is one plain run, and an empty line none", () => {
  assert.deepEqual(runs("hello world"), [["hello world", {}, null]]);
  assert.deepEqual(runs(""), []);
  assert.deepEqual(parts("hello <b>world</b> & co"), ["hello <b>world</b> & co"]);
});

test("markup in the log stays text, styled or not", () => {
  const line = rendered(sgr("31") + "<img src=x onerror=alert(1)>" + sgr("0") + "<script>");
  assert.deepEqual(line.childNodes.map(describe), [
    { tag: "span", text: "<img src=x onerror=alert(1)>", classes: ["tasklog-fg-1"] },
    "<script>",
  ]);
});

/* Colours -------------------------------------------------------------------------------- */

test("the 16 colours, foreground and background, are palette indexes shown as classes", () => {
  assert.deepEqual(runs(sgr("31") + "a" + sgr("97") + "b" + sgr("44") + "c" + sgr("103") + "d"), [
    ["a", { fg: 1 }, null],
    ["b", { fg: 15 }, null],
    ["c", { fg: 15, bg: 4 }, null],
    ["d", { fg: 15, bg: 11 }, null],
  ]);
  assert.deepEqual(parts(sgr("32;41") + "ok"), [
    { tag: "span", text: "ok", classes: ["tasklog-bg-1", "tasklog-fg-2"] },
  ]);
});

test("256 colours: 0-15 stay classes, the cube and the greys become inline rgb", () => {
  assert.deepEqual(runs(sgr("38;5;9") + "a" + sgr("38;5;208") + "b" + sgr("48;5;16") + "c" + sgr("38;5;255") + "d"), [
    ["a", { fg: 9 }, null],
    ["b", { fg: [255, 135, 0] }, null],
    ["c", { fg: [255, 135, 0], bg: [0, 0, 0] }, null],
    ["d", { fg: [238, 238, 238], bg: [0, 0, 0] }, null],
  ]);
  assert.deepEqual(parts(sgr("38;5;196") + "red"), [
    { tag: "span", text: "red", style: { color: "rgb(255, 0, 0)" } },
  ]);
  assert.deepEqual(parts(sgr("48;5;232") + "grey"), [
    { tag: "span", text: "grey", style: { backgroundColor: "rgb(8, 8, 8)" } },
  ]);
});

test("24-bit colours, with semicolons or colons (with or without a colour space id)", () => {
  assert.deepEqual(runs(sgr("38;2;1;2;3") + "a" + sgr("48:2::9:8:7") + "b" + sgr("38:2:10:20:30") + "c"), [
    ["a", { fg: [1, 2, 3] }, null],
    ["b", { fg: [1, 2, 3], bg: [9, 8, 7] }, null],
    ["c", { fg: [10, 20, 30], bg: [9, 8, 7] }, null],
  ]);
  assert.deepEqual(parts(sgr("38;2;255;128;0;48;2;0;0;64") + "x"), [
    { tag: "span", text: "x", style: { color: "rgb(255, 128, 0)", backgroundColor: "rgb(0, 0, 64)" } },
  ]);
});

test("codes after an extended colour still apply", () => {
  assert.deepEqual(runs(sgr("38;5;100;1;4") + "x"), [["x", { fg: [135, 135, 0], bold: true, underline: true }, null]]);
  assert.deepEqual(runs(sgr("48;2;1;2;3;31") + "x"), [["x", { fg: 1, bg: [1, 2, 3] }, null]]);
});

test("39 and 49 reset one colour each, 0 and an empty SGR everything", () => {
  assert.deepEqual(runs(sgr("31;42") + "a" + sgr("39") + "b" + sgr("49") + "c"), [
    ["a", { fg: 1, bg: 2 }, null],
    ["b", { bg: 2 }, null],
    ["c", {}, null],
  ]);
  assert.deepEqual(runs(sgr("1;3;4;7;31;42") + "a" + sgr("") + "b" + sgr("1") + "c" + sgr("0") + "d"), [
    ["a", { fg: 1, bg: 2, bold: true, italic: true, underline: true, inverse: true }, null],
    ["b", {}, null],
    ["c", { bold: true }, null],
    ["d", {}, null],
  ]);
  assert.deepEqual(runs(sgr(";1") + "x"), [["x", { bold: true }, null]]);
});

/* Attributes ----------------------------------------------------------------------------- */

test("bold, dim, italic, underline, strike and overline, each with its reset", () => {
  const text = sgr("1") + "b" + sgr("2") + "bd" + sgr("22") + "n" + sgr("3") + "i" + sgr("23") +
    sgr("4") + "u" + sgr("24") + sgr("9") + "s" + sgr("29") + sgr("53") + "o" + sgr("55") + "end";
  assert.deepEqual(runs(text), [
    ["b", { bold: true }, null],
    ["bd", { bold: true, dim: true }, null],
    ["n", {}, null],
    ["i", { italic: true }, null],
    ["u", { underline: true }, null],
    ["s", { strike: true }, null],
    ["o", { overline: true }, null],
    ["end", {}, null],
  ]);
  assert.deepEqual(parts(sgr("1;2;3;4;9;53") + "all"), [{
    tag: "span",
    text: "all",
    classes: ["tasklog-bold", "tasklog-dim", "tasklog-italic", "tasklog-overline", "tasklog-strike", "tasklog-underline"],
  }]);
});

test("underline styles in the colon form: 4:3 is underlined, 4:0 is not", () => {
  assert.deepEqual(runs(sgr("4:3") + "curly" + sgr("4:0") + "plain"), [
    ["curly", { underline: true }, null],
    ["plain", {}, null],
  ]);
});

test("inverse swaps the colours, the log's own colours standing in for defaults; 27 ends it", () => {
  assert.deepEqual(parts(sgr("31;44;7") + "a" + sgr("27") + "b"), [
    { tag: "span", text: "a", classes: ["tasklog-bg-1", "tasklog-fg-4"] },
    { tag: "span", text: "b", classes: ["tasklog-bg-4", "tasklog-fg-1"] },
  ]);
  assert.deepEqual(parts(sgr("7") + "plain inverse"), [
    { tag: "span", text: "plain inverse", classes: ["tasklog-bg-inverse", "tasklog-fg-inverse"] },
  ]);
  assert.deepEqual(parts(sgr("38;2;1;2;3;7") + "x"), [
    { tag: "span", text: "x", classes: ["tasklog-fg-inverse"], style: { backgroundColor: "rgb(1, 2, 3)" } },
  ]);
  assert.deepEqual(ansi.shownColours({ fg: 3, bg: null, inverse: true }), { fg: "inverse", bg: 3 });
});

test("codes that change nothing visible (blink, conceal, fonts) leave the text as it is", () => {
  assert.deepEqual(runs(sgr("5") + "a" + sgr("8") + "b" + sgr("11") + "c" + sgr("25;28;10") + "d"), [["abcd", {}, null]]);
});

test("runs are merged where a sequence changed nothing", () => {
  assert.deepEqual(runs("a" + sgr("0") + "b" + sgr("31") + sgr("31") + "c" + sgr("31") + "d"), [
    ["ab", {}, null],
    ["cd", { fg: 1 }, null],
  ]);
});

test("each run owns its style: later codes do not change an earlier run", () => {
  const result = ansi.segments(sgr("38;2;1;2;3") + "a" + sgr("38;2;4;5;6") + "b");
  assert.deepEqual(result[0].style.fg, [1, 2, 3]);
  result[1].style.fg[0] = 99;
  assert.deepEqual(ansi.segments(sgr("38;2;4;5;6") + "b")[0].style.fg, [4, 5, 6]);
});

/* Every other escape is dropped ---------------------------------------------------------- */

test("cursor moves, erases, modes and scroll regions are dropped, their text kept", () => {
  const text = csi("2J") + csi("H") + "a" + csi("10;20H") + "b" + csi("?25l") + csi("K") + "c" +
    csi("3A") + csi("1;24r") + csi("?1049h") + "d" + csi("6n");
  assert.deepEqual(runs(text), [["abcd", {}, null]]);
});

test("a CSI ending in m that is not SGR (private marker, intermediates) changes no style", () => {
  assert.deepEqual(runs(csi(">4;1m") + "a" + csi("?1m") + "b" + csi("1 m") + "c"), [["abc", {}, null]]);
});

test("OSC titles and other strings (DCS, SOS, PM, APC) are dropped, whichever terminator", () => {
  const text = ESC + "]0;my title" + "\x07" + "a" + ESC + "]2;title" + ESC + "\\" + "b" +
    ESC + "P1$r0m" + ESC + "\\" + "c" + ESC + "X sos" + ESC + "\\" + ESC + "^pm\x07" +
    ESC + "_apc" + ESC + "\\" + "d" + ESC + "]52;c;aGVsbG8=\x9c" + "e";
  assert.deepEqual(runs(text), [["abcde", {}, null]]);
});

test("other escapes (charsets, keypad, save/restore cursor, reset) are dropped", () => {
  const text = ESC + "(B" + "a" + ESC + ")0" + ESC + "=" + "b" + ESC + "7" + ESC + "8" + ESC + "c" + "c" + ESC + "#8" + "d";
  assert.deepEqual(runs(text), [["abcd", {}, null]]);
});

test("a lone ESC is dropped, the text after it kept", () => {
  assert.deepEqual(runs("a" + ESC), [["a", {}, null]]);
  assert.deepEqual(runs(ESC + "é" + ESC + "\n" + ESC + ESC + "ü"), [["é\nü", {}, null]]);
  // ESC and a printable byte is a complete escape (ESC z, ESC 7): both go
  assert.deepEqual(runs("a" + ESC + "zb"), [["ab", {}, null]]);
});

test("C1 controls: 8-bit CSI and OSC act as their ESC forms, the others are dropped", () => {
  assert.deepEqual(runs("a\x9b31mb\x9b2Jc\x9d0;title\x9cd\x85\x84\x8d\x9ce"), [
    ["a", {}, null],
    ["bcde", { fg: 1 }, null],
  ]);
  assert.deepEqual(runs("\x9d8;;https://example.com/\x9clink\x9d8;;\x9c"), [
    ["link", {}, "https://example.com/"],
  ]);
});

/* Malformed and partial sequences -------------------------------------------------------- */

test("a sequence cut by the end of the line is dropped", () => {
  assert.deepEqual(runs("a" + ESC + "["), [["a", {}, null]]);
  assert.deepEqual(runs("a" + csi("31")), [["a", {}, null]]);
  assert.deepEqual(runs("a" + csi("38;2;1")), [["a", {}, null]]);
  assert.deepEqual(runs("a" + ESC + "(" ), [["a", {}, null]]);
});

test("a CSI broken by a byte outside its ranges is dropped and that byte is text again", () => {
  assert.deepEqual(runs(csi("31") + "\nnext"), [["\nnext", {}, null]]);
  assert.deepEqual(runs(csi("3") + "é" + sgr("1") + "x"), [
    ["é", {}, null],
    ["x", { bold: true }, null],
  ]);
});

test("an unterminated OSC swallows the rest of the line, as in a terminal", () => {
  assert.deepEqual(runs("a" + ESC + "]0;title without end"), [["a", {}, null]]);
  assert.deepEqual(runs("a" + ESC + "]8;;https://example.com/ click"), [["a", {}, null]]);
});

test("an OSC cut by another escape is dropped and that escape still applies", () => {
  assert.deepEqual(runs(ESC + "]0;title" + sgr("31") + "red"), [["red", { fg: 1 }, null]]);
});

test("incomplete or unknown extended colours change nothing", () => {
  assert.deepEqual(runs(sgr("38;5") + "a" + sgr("38;2;1;2") + "b" + sgr("38;9;1") + "c" + sgr("38:2") + "d"), [
    ["abcd", {}, null],
  ]);
  // an empty parameter is a 0, as everywhere in SGR: palette colour 0
  assert.deepEqual(runs(sgr("48;5;") + "e"), [["e", { bg: 0 }, null]]);
});

/* OSC 8 hyperlinks ----------------------------------------------------------------------- */

test("an OSC 8 link to http(s) becomes a link that opens apart, without the opener or referrer", () => {
  assert.deepEqual(parts("see " + link("https://example.com/build/42?a=1&b=2#x", "build 42") + " now"), [
    "see ",
    {
      tag: "a",
      text: "build 42",
      classes: ["tasklog-link"],
      attributes: {
        href: "https://example.com/build/42?a=1&b=2#x",
        rel: "noopener noreferrer",
        target: "_blank",
        title: "https://example.com/build/42?a=1&b=2#x",
      },
    },
    " now",
  ]);
  assert.deepEqual(runs(link("http://localhost:8000/x", "local")), [["local", {}, "http://localhost:8000/x"]]);
  assert.deepEqual(runs(link("HTTPS://Example.COM", "upper")), [["upper", {}, "https://example.com/"]]);
});

test("a link keeps its text's style inside it", () => {
  assert.deepEqual(parts(sgr("1;32") + link("https://example.com/", "green")), [{
    tag: "a",
    text: "green",
    classes: ["tasklog-link"],
    attributes: {
      href: "https://example.com/", rel: "noopener noreferrer", target: "_blank", title: "https://example.com/",
    },
    children: [{ tag: "span", text: "green", classes: ["tasklog-bold", "tasklog-fg-2"] }],
  }]);
});

test("OSC 8 with parameters (id=...) and either terminator", () => {
  const text = ESC + "]8;id=7:x=y;https://example.com/a\x07one" + ESC + "]8;;\x07 two";
  assert.deepEqual(runs(text), [["one", {}, "https://example.com/a"], [" two", {}, null]]);
});

test("a second OSC 8 replaces the first link; an empty target ends it", () => {
  const text = ESC + "]8;;https://a.example/\x07a" + ESC + "]8;;https://b.example/\x07b" + ESC + "]8;;\x07c";
  assert.deepEqual(runs(text), [["a", {}, "https://a.example/"], ["b", {}, "https://b.example/"], ["c", {}, null]]);
});

test("links to any scheme but http(s) keep their text and are no links", () => {
  const targets = [
    "javascript:alert(document.cookie)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "\x01javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "file:///etc/passwd",
    "vbscript:msgbox(1)",
    "ftp://example.com/",
    "mailto:someone@example.com",
    "//evil.example/",
    "/relative/path",
    "https:",
    "http://",
    "https://exa mple.com:99999/",
    "",
  ];
  for (const target of targets) {
    const line = rendered("before " + link(target, "click me") + " after");
    assert.deepEqual(line.childNodes.map(describe), ["before click me after"], JSON.stringify(target));
  }
});

test("a link to a target longer than 8 KiB is no link, its text stays", () => {
  const target = "https://example.com/" + "a".repeat(9000);
  assert.deepEqual(runs(link(target, "long")), [["long", {}, null]]);
});

test("a link's href is the parsed URL: quotes and markup in it are escaped by the URL parser", () => {
  const [run] = ansi.segments(link('https://example.com/"><img src=x onerror=alert(1)>', "x"));
  assert.equal(run.href, "https://example.com/%22%3E%3Cimg%20src=x%20onerror=alert(1)%3E");
});

/* Hostile input -------------------------------------------------------------------------- */

test("huge parameters are codes out of range: no style, no crash", () => {
  assert.deepEqual(runs(sgr("99999999") + "a"), [["a", {}, null]]);
  assert.deepEqual(runs(sgr("9".repeat(100000)) + "b"), [["b", {}, null]]);
  assert.deepEqual(runs(sgr("38;5;99999999") + "c" + sgr("38;2;256;0;0") + "d" + sgr("48;5;" + "9".repeat(400)) + "e"), [
    ["cde", {}, null],
  ]);
  // "-" is a CSI intermediate byte: the sequence breaks at the digit after it, shown as text
  assert.deepEqual(runs(sgr("38;2;-1;0;0") + "f"), [["1;0;0mf", {}, null]]);
  assert.deepEqual(runs(csi("99999999;99999999H") + "h"), [["h", {}, null]]);
});

test("10,000 nested codes: linear, the last style wins", () => {
  const opened = (sgr("1") + sgr("31") + sgr("4")).repeat(10000) + "deep" + sgr("0").repeat(10000) + "flat";
  const started = process.hrtime.bigint();
  assert.deepEqual(runs(opened), [["deep", { fg: 1, bold: true, underline: true }, null], ["flat", {}, null]]);
  const manyParams = sgr(Array(10000).fill("1;31;4;0").join(";") + ";7") + "x";
  assert.deepEqual(runs(manyParams), [["x", { inverse: true }, null]]);
  const alternating = (sgr("31") + "r" + sgr("32") + "g").repeat(10000);
  const line = rendered(alternating);
  assert.equal(line.childNodes.length, 20000);
  assert.equal(line.textContent, "rg".repeat(10000));
  assert.ok(Number(process.hrtime.bigint() - started) / 1e6 < 2000, "took too long");
});

test("a million characters of unterminated sequences and lone ESCs: linear, nothing left", () => {
  const started = process.hrtime.bigint();
  assert.deepEqual(runs(ESC.repeat(1000000)), []);
  assert.deepEqual(runs((ESC + "[").repeat(300000)), []);
  assert.deepEqual(runs(ESC + "]" + "x".repeat(1000000)), []);
  assert.deepEqual(runs((ESC + "]0;t" + ESC + "x").repeat(100000) + "end"), [["end", {}, null]]);
  assert.deepEqual(runs((csi("1") + "\n").repeat(100000)), [["\n".repeat(100000), {}, null]]);
  assert.ok(Number(process.hrtime.bigint() - started) / 1e6 < 3000, "took too long");
});

test("bidi controls stay text, inside styles and links, and never reorder the markup", () => {
  const rlo = "\u202e";
  const isolate = "\u2067";
  const text = sgr("31") + "a" + rlo + "gpj.exe" + sgr("0") + isolate + link("https://example.com/" + rlo, rlo + "txt.exe");
  assert.deepEqual(runs(text), [
    ["a" + rlo + "gpj.exe", { fg: 1 }, null],
    [isolate, {}, null],
    [rlo + "txt.exe", {}, "https://example.com/%E2%80%AE"],
  ]);
  const [, , anchor] = rendered(text).childNodes;
  assert.equal(anchor.attributes.title, "https://example.com/%E2%80%AE"); // the real target shows
});

test("unicode, NUL and other C0 controls stay text; surrogate pairs are not split", () => {
  const text = "emoji 🎉 " + sgr("31") + "日本語\0\t\r\b" + sgr("0") + "𝔘";
  assert.deepEqual(runs(text), [["emoji 🎉 ", {}, null], ["日本語\0\t\r\b", { fg: 1 }, null], ["𝔘", {}, null]]);
});

test("arbitrary input never throws and keeps every character that is not part of an escape", () => {
  // a small deterministic fuzz: random mixes of escapes' pieces and text
  const pieces = [ESC, "[", "]", "8;;", "m", ";", ":", "38", "5", "2", "\x07", "\\", "\x9b", "\x9d", "\x9c",
    "https://x.example/", "javascript:", "a", "é", "\u202e", "\n", "?", "P", "(", "0"];
  let seed = 42;
  const random = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  for (let round = 0; round < 3000; round++) {
    const length = random(40);
    let text = "";
    for (let i = 0; i < length; i++) text += pieces[random(pieces.length)];
    const result = ansi.segments(text);
    const joined = result.map((run) => run.text).join("");
    assert.ok(!/[\x1b\x80-\x9f]/.test(joined), "an escape byte survived in " + JSON.stringify(text));
    for (const run of result) {
      assert.ok(run.href === null || /^https?:\/\//.test(run.href), JSON.stringify(text));
    }
    const line = rendered(text);
    assert.equal(line.textContent, joined);
    const withoutEscapes = text.replace(/[\x1b\x80-\x9f]/g, "");
    assert.ok(withoutEscapes.length >= joined.length);
  }
});

/* Rendering ------------------------------------------------------------------------------ */

test("render appends to what the parent holds, plain runs as text nodes", () => {
  const parent = fakeDocument().createElement("span");
  parent.append(new FakeText("INFO "));
  ansi.render(parent, "plain " + sgr("1") + "bold");
  assert.deepEqual(parent.childNodes.map(describe), ["INFO ", "plain ", { tag: "span", text: "bold", classes: ["tasklog-bold"] }]);
});

test("render uses the parent's own document, and never innerHTML", () => {
  const document = fakeDocument();
  let created = 0;
  const createElement = document.createElement;
  document.createElement = (name) => {
    created++;
    return createElement(name);
  };
  const parent = createElement("div");
  ansi.render(parent, sgr("31") + "<b>x</b>" + link("https://example.com/", "y"));
  assert.equal(created, 3); // the red span, the link, the red span inside it
  assert.equal(parent.textContent, "<b>x</b>y");
});
