// rapport chat widget (docs/portal.md#chat-widget). Plain ES2017, no build.
// DOM from createElement/textContent only, the look in /widget.css: it runs
// under a strict Content-Security-Policy.
(() => {
  "use strict";
  if (document.querySelector(".rapport-widget")) return; // embedded twice
  var me = document.currentScript;
  var base = ((me && me.dataset.rapportUrl) || (me && me.src ? new URL(me.src, location.href).origin : location.origin)).replace(/\/+$/, "");
  // The server writes the stylesheet's content hash here: cached for good.
  var CSS = base + "/widget.css?v=RAPPORT_CSS_VERSION";
  var POLL_MS = 3000, SORRY = "Sorry, something went wrong. Please try again.";

  // Storage may be off or throw (privacy modes, sandboxed frames).
  var mem = {};
  function load(k) { try { return sessionStorage.getItem(k); } catch (e) { return mem[k] || null; } }
  function save(k, v) { try { sessionStorage.setItem(k, v); } catch (e) { mem[k] = v; } }
  // Shared with the portal's search (the agent sees that too). Unguessable:
  // it is all that guards the session's hand-off and rating.
  var session = load("rapport.session");
  if (!session) {
    session = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => (b + 256).toString(16).slice(1)).join("");
    save("rapport.session", session);
  }
  // The conversation survives moving between the site's pages.
  var state = {};
  try { state = JSON.parse(load("rapport.widget")) || {}; } catch (e) { /* start afresh */ }
  state.log = state.log || [];
  function persist() { save("rapport.widget", JSON.stringify(state)); }

  function el(tag, cls, text, attrs) {
    var n = document.createElement(tag);
    if (cls) n.className = cls.replace(/\S+/g, "rapport-$&");
    if (text != null) n.textContent = text;
    Object.keys(attrs || {}).forEach((k) => n.setAttribute(k, attrs[k]));
    return n;
  }
  function button(cls, text, type) { return el("button", cls, text, { type: type || "button" }); }
  // Only http(s) links; relative ones are rapport's.
  function safeUrl(u) {
    try {
      var x = new URL(u, base + "/");
      return /^https?:$/.test(x.protocol) ? x.href : null;
    } catch (e) { return null; }
  }
  function api(method, path, body) {
    var init = { method: method };
    if (body) { init.headers = { "content-type": "application/json" }; init.body = JSON.stringify(body); }
    return fetch(base + path, init).then((r) => r.json().catch(() => ({})).then((data) => {
      if (r.ok) return data;
      var e = new Error((data.error && data.error.message) || "HTTP " + r.status);
      e.status = r.status;
      throw e;
    }));
  }
  function sessionApi(method, what, body) {
    return api(method, "/api/v1/sessions/" + encodeURIComponent(session) + "/" + what, body);
  }

  var root = el("div", "widget");
  root.hidden = true; // until its stylesheet has loaded
  var launcher = root.appendChild(el("button", "launcher", "Ask us", { type: "button", "aria-expanded": "false", "aria-controls": "rapport-panel" }));
  var panel = root.appendChild(el("div", "panel", null, { id: "rapport-panel", role: "dialog", "aria-modal": "true", "aria-labelledby": "rapport-title" }));
  panel.hidden = true;
  var head = panel.appendChild(el("div", "head"));
  head.appendChild(el("h2", "title", "How can we help?", { id: "rapport-title" }));
  var closer = head.appendChild(el("button", "close", "×", { type: "button", "aria-label": "Close" }));
  var log = panel.appendChild(el("div", "log", null, { role: "log", "aria-live": "polite" }));
  var human = panel.appendChild(button("human", "Talk to a person"));
  var ask = panel.appendChild(el("form", "ask"));
  ask.appendChild(el("label", "sr", "Your question", { for: "rapport-q" }));
  var q = ask.appendChild(el("input", "input", null, { id: "rapport-q", type: "text", autocomplete: "off", maxlength: "500", placeholder: "Ask a question…" }));
  ask.appendChild(button("send", "Send", "submit"));

  function scroll() { log.scrollTop = log.scrollHeight; }
  // A message: {w: "me" | "bot" | "note", t: text, u: link, l: link text}.
  function render(m) {
    var div = log.appendChild(el("div", "msg " + m.w));
    if (m.w !== "note") div.appendChild(el("span", "sr", m.w === "me" ? "You: " : "Help: "));
    div.appendChild(el("p", null, m.t));
    var href = m.u && safeUrl(m.u);
    if (href) div.appendChild(el("p")).appendChild(el("a", "link", m.l || "Read the article", { href: href, target: "_blank", rel: "noopener" }));
    scroll();
    return div;
  }
  function say(w, t, u, l) {
    var m = { w: w, t: t, u: u, l: l };
    state.log = state.log.concat(m).slice(-40);
    persist();
    return render(m);
  }
  function showHuman() { human.hidden = !state.asked || state.handoff || !!document.getElementById("rapport-contact"); }

  // A form in the conversation. `send` returns its request (or null); the
  // server's reason is shown for a 400, else an apology.
  function card(id, intro, label, send) {
    var old = document.getElementById(id);
    if (old) old.remove();
    var f = log.appendChild(el("form", "card", null, { id: id, novalidate: "" }));
    if (intro) f.appendChild(el("p", null, intro));
    f.err = el("p", "error", null, { id: id + "-error", role: "alert" });
    f.go = button("send", label, "submit");
    f.addEventListener("submit", (e) => {
      e.preventDefault();
      f.err.textContent = "";
      var request = send();
      if (!request) return;
      f.go.disabled = true;
      request.then(() => { f.remove(); q.focus(); }, (e) => {
        f.go.disabled = false;
        f.err.textContent = e.status === 400 ? e.message : SORRY;
      });
    });
    return f;
  }
  function field(f, id, label, tag, attrs) {
    f.appendChild(el("label", null, label, { for: id }));
    attrs.id = id;
    return f.appendChild(el(tag, "input", null, attrs));
  }
  function finish(f) {
    f.appendChild(f.err);
    f.appendChild(f.go);
    scroll();
    showHuman();
  }

  ask.addEventListener("submit", (e) => {
    e.preventDefault();
    var text = q.value.trim();
    if (!text || ask.busy) return;
    q.value = "";
    var mine = say("me", text);
    ask.busy = true;
    var wait = log.appendChild(el("div", "msg note typing", "Looking for an answer…"));
    scroll();
    var done = () => { wait.remove(); ask.busy = false; };
    api("POST", "/api/v1/answer", { question: text, session_id: session }).then((a) => {
      done();
      answered(a, mine);
    }, () => {
      done();
      say("note", SORRY);
    });
  });
  function answered(a, question) {
    state.asked = true;
    var ans = a.answer;
    if (ans) say("bot", ans.text, ans.url, ans.title).appendChild(vote(a.query_id, ans.article_id));
    else say("bot", "Sorry, I couldn't find an answer to that.");
    // Read from the question down, however long the answer.
    log.scrollTop = question.offsetTop - 12;
    if (a.handoff && a.handoff.recommended && !state.handoff) contact("A person from our support team can help with this.");
    showHuman();
  }
  function vote(queryId, articleId) {
    var box = el("div", "vote", null, { role: "group", "aria-label": "Did this answer your question?" });
    box.appendChild(el("span", null, "Did this answer your question?"));
    [["helpful", "Yes"], ["not_helpful", "No"]].forEach((v) => {
      box.appendChild(el("button", "chip", v[1], { type: "button", "data-vote": v[0] })).addEventListener("click", () => {
        box.remove();
        api("POST", "/api/v1/feedback", { query_id: queryId, article_id: articleId, event: v[0] }).catch(() => {});
        if (v[0] === "not_helpful") {
          say("bot", "Sorry about that. Try asking another way, or talk to a person.");
          (human.hidden ? q : human).focus();
        } else {
          say("bot", "Glad it helped!");
          if (state.rated) q.focus();
          else rate(true);
        }
      });
    });
    return box;
  }

  // An optional name and e-mail, then the queue.
  function contact(intro) {
    var f = card("rapport-contact", intro + " Leave your name and e-mail so they can reach you (both optional).", "Ask for a person", () => {
      var who = {}, n = name.value.trim(), m = email.value.trim();
      if (m && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(m)) {
        f.err.textContent = "Please check the e-mail address, or leave it empty.";
        email.setAttribute("aria-invalid", "true");
        email.focus();
        return null;
      }
      if (n) who.name = n;
      if (m) who.email = m;
      return sessionApi("POST", "handoff", n || m ? { contact: who } : {}).then((h) => {
        state.handoff = true;
        say("me", "I'd like to talk to a person.");
        show(h);
        poll();
      });
    });
    var name = field(f, "rapport-name", "Name (optional)", "input", { type: "text", autocomplete: "name" });
    var email = field(f, "rapport-email", "E-mail (optional)", "input", { type: "email", autocomplete: "email", "aria-describedby": "rapport-contact-error" });
    finish(f);
    name.focus();
  }
  human.addEventListener("click", () => contact("Our support team is happy to help."));

  // Where the customer stands; each change is said once.
  function status(text) {
    if (state.status !== text) say("note", (state.status = text));
  }
  function show(h) {
    var s = h.expected_wait_seconds;
    if (h.status === "waiting") {
      status((s != null ? "An agent will be with you — usually within " + Math.max(1, Math.round(s / 60)) + " min." : "An agent will be with you soon.") +
        (h.position ? " You are number " + h.position + " in the queue." : ""));
    } else if (h.status === "claimed") {
      status((h.agent || "An agent") + " has picked up your request.");
    } else if (h.status === "closed") {
      state.handoff = false;
      status("Your conversation with our support team is closed.");
      rate(false); // no focus jump: the customer may be typing
    }
    persist();
    showHuman();
  }
  var timer = 0, polling = false;
  // Every few seconds while the panel is open and the page visible.
  function poll() {
    clearTimeout(timer);
    if (polling || !state.handoff || panel.hidden || document.hidden) return;
    polling = true;
    sessionApi("GET", "handoff").then(show, (e) => {
      if (e.status === 404) { state.handoff = false; persist(); showHuman(); }
    }).then(() => {
      polling = false;
      timer = setTimeout(poll, POLL_MS);
    });
  }
  document.addEventListener("visibilitychange", poll);

  // 1–5 stars: a radio group, so arrow keys choose.
  function rate(focus) {
    var f = card("rapport-rate", null, "Send rating", () => {
      var picked = f.querySelector("input:checked");
      if (!picked) {
        f.err.textContent = "Please choose from 1 to 5 stars.";
        stars.querySelector("input").focus();
        return null;
      }
      var body = { score: +picked.value };
      if (comment.value.trim()) body.comment = comment.value.trim();
      return sessionApi("POST", "rating", body).then(() => {
        state.rated = true;
        say("bot", "Thank you for your feedback!");
      });
    });
    var stars = f.appendChild(el("fieldset", "stars"));
    stars.appendChild(el("legend", null, "How would you rate this conversation?"));
    for (var i = 1; i <= 5; i++) {
      stars.appendChild(el("input", "sr", null, { type: "radio", name: "rapport-score", value: i, id: "rapport-star-" + i }));
      var label = stars.appendChild(el("label", "star", null, { for: "rapport-star-" + i }));
      label.appendChild(el("span", null, "★", { "aria-hidden": "true" }));
      label.appendChild(el("span", "sr", i + (i > 1 ? " stars" : " star")));
    }
    var comment = field(f, "rapport-comment", "Comment (optional)", "textarea", { rows: "2", maxlength: "2000" });
    finish(f);
    if (focus) stars.querySelector("input").focus();
  }

  function setOpen(open) {
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    if (open) {
      scroll();
      q.focus();
      poll();
    } else {
      clearTimeout(timer);
      launcher.focus();
    }
  }
  launcher.addEventListener("click", () => setOpen(panel.hidden));
  closer.addEventListener("click", () => setOpen(false));
  // Escape closes; Tab and Shift+Tab cycle inside the open panel.
  panel.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.preventDefault();
      setOpen(false);
    } else if (e.key === "Tab") {
      var all = Array.from(panel.querySelectorAll("button,[href],input,textarea")).filter((n) => !n.disabled && n.getClientRects().length);
      var first = all[0], last = all[all.length - 1], at = document.activeElement;
      if (e.shiftKey ? at === first : at === last) {
        e.preventDefault();
        (e.shiftKey ? last : first).focus();
      }
    }
  });

  function start() {
    render({ w: "bot", t: "Hi! Ask a question and we'll look for the answer in our help center." });
    state.log.forEach(render);
    showHuman();
    var link = el("link", null, null, { rel: "stylesheet", href: CSS });
    link.onload = () => { root.hidden = false; };
    link.onerror = () => console.warn("rapport: " + CSS + " did not load; does the page's CSP allow it in style-src?");
    document.head.appendChild(link);
    document.body.appendChild(root);
  }
  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
