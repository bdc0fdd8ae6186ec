// rapport agent panel: live suggestions for the conversation beside it.
(function () {
  "use strict";
  var KEY = "rapport.agentKey";
  var store = window.sessionStorage;
  var $ = function (id) { return document.getElementById(id); };
  var keyForm = $("key-form"), panel = $("panel"), forget = $("forget");
  var transcript = $("transcript"), list = $("suggestions"), signals = $("signals"), status = $("status");
  var session = $("session"), brief = $("brief"), briefText = $("brief-text");
  // `/agent?session=…` opens the panel on the bot session the agent took over.
  session.value = new URLSearchParams(location.search).get("session") || "";
  var briefSeq = 0;
  var hosts = (document.body.dataset.hostOrigins || "").split(" ").filter(Boolean);
  var latest = 0, shown = 0, timer = 0, inflight = null, queryId = null;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text != null) node.textContent = text;
    return node;
  }
  function auth() { return { "Authorization": "Bearer " + store.getItem(KEY), "content-type": "application/json" }; }
  function showPanel(on) {
    keyForm.hidden = on;
    panel.hidden = !on;
    forget.hidden = !on;
    if (on) transcript.focus();
  }
  function signOut(message) {
    store.removeItem(KEY);
    brief.hidden = true;
    list.textContent = "";
    signals.textContent = "";
    $("key-error").textContent = message || "";
    showPanel(false);
  }

  keyForm.addEventListener("submit", function (e) {
    e.preventDefault();
    var key = $("key").value.trim();
    if (!key) return;
    store.setItem(KEY, key);
    $("key").value = "";
    $("key-error").textContent = "";
    showPanel(true);
    loadBrief();
    run(0);
  });
  forget.addEventListener("click", function () { signOut(""); });

  // "Customer: …" / "Agent: …" lines; unprefixed lines belong to the customer.
  function turns(text) {
    return text.split("\n").map(function (line) {
      var m = /^\s*(customer|agent)\s*:\s*(.*)$/i.exec(line);
      return m ? { role: m[1].toLowerCase(), text: m[2] } : { role: "customer", text: line.trim() };
    }).filter(function (t) { return t.text; });
  }

  function pill(text, cls) { return el("span", "pill" + (cls ? " " + cls : ""), text); }
  function render(data) {
    queryId = data.query_id;
    signals.textContent = "";
    var tone = data.tone;
    signals.appendChild(pill("Frustration " + Math.round(tone.frustration * 100) + "%", tone.frustration >= 0.5 ? "warn" : ""));
    signals.appendChild(pill("Urgency " + Math.round(tone.urgency * 100) + "%", tone.urgency >= 0.5 ? "warn" : ""));
    tone.cues.forEach(function (c) { signals.appendChild(pill(c)); });
    if (data.handoff.recommended) {
      data.handoff.reasons.forEach(function (r) { signals.appendChild(pill("Hand-off: " + r.replace(/_/g, " "), "warn")); });
      (data.handoff.topics || []).forEach(function (t) { signals.appendChild(pill("Topic: " + t, "warn")); });
    } else {
      signals.appendChild(pill("No hand-off needed", "ok"));
    }
    list.textContent = "";
    var empty = !turns(transcript.value).length;
    if (empty) signals.textContent = "";
    status.textContent = data.suggestions.length ? "" : empty ? "Paste the conversation to see suggestions." : "No suggestions for this conversation yet.";
    data.suggestions.forEach(function (s) {
      var li = el("li", s.audience === "internal" ? "is-internal" : "");
      li.dataset.id = s.id;
      var row = li.appendChild(el("div", "row"));
      var title = row.appendChild(el("div"));
      var a = title.appendChild(el("a", null, s.title));
      a.href = s.url;
      a.target = "_blank";
      a.rel = "noopener";
      if (s.audience === "internal") title.appendChild(pill("Internal", "internal"));
      if (s.shown_to_customer) title.appendChild(pill("Shown to customer"));
      if (s.customer_feedback === "not_helpful") title.appendChild(pill("Customer: not helpful", "warn"));
      if (s.customer_feedback === "helpful") title.appendChild(pill("Customer: helpful", "ok"));
      var copy = row.appendChild(el("button", "copy", "Copy section"));
      copy.type = "button";
      copy.addEventListener("click", function () { copySection(s, copy); });
      li.appendChild(el("div", "hint", s.section.heading));
      li.appendChild(el("p", null, plain(s.snippet)));
      list.appendChild(li);
    });
  }
  function plain(html) {
    var t = document.createElement("template");
    t.innerHTML = html;
    return t.content.textContent;
  }

  // The section's text: its heading's following siblings up to the next
  // heading of the same or a higher level, parsed inertly from the article.
  function sectionText(html, anchor) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var body = doc.body;
    var start = anchor ? doc.getElementById(anchor) : null;
    if (!start) {
      var parts = [];
      for (var n = body.firstElementChild; n && !/^H[1-6]$/.test(n.tagName); n = n.nextElementSibling) parts.push(n.textContent.trim());
      return parts.join("\n\n") || body.textContent.trim();
    }
    var level = +start.tagName[1], out = [start.textContent.trim()];
    for (var m = start.nextElementSibling; m; m = m.nextElementSibling) {
      if (/^H[1-6]$/.test(m.tagName) && +m.tagName[1] <= level) break;
      out.push(m.textContent.trim());
    }
    return out.filter(Boolean).join("\n\n");
  }
  function copySection(s, button) {
    var path = s.id.split("/").map(encodeURIComponent).join("/");
    fetch("/api/v1/articles/" + path, { headers: auth() }).then(function (r) {
      if (!r.ok) throw new Error(r.status);
      return r.json();
    }).then(function (article) {
      return navigator.clipboard.writeText(sectionText(article.html, s.section.anchor));
    }).then(function () {
      button.textContent = "Copied ✓";
      if (queryId) {
        fetch("/api/v1/feedback", { method: "POST", headers: auth(),
          body: JSON.stringify({ query_id: queryId, article_id: s.id, event: "used_in_reply" }) }).catch(function () {});
      }
    }).catch(function () { button.textContent = "Copy failed"; });
  }

  function run(delay) {
    clearTimeout(timer);
    timer = setTimeout(function () {
      if (!store.getItem(KEY)) return;
      var body = { transcript: turns(transcript.value), limit: 5 };
      if (session.value.trim()) body.session_id = session.value.trim();
      var seq = ++latest;
      if (inflight) inflight.abort();
      inflight = new AbortController();
      fetch("/api/v1/suggest", { method: "POST", headers: auth(), body: JSON.stringify(body), signal: inflight.signal })
        .then(function (r) {
          if (r.status === 401) { signOut("That key was not accepted. Check it and try again."); throw { name: "AbortError" }; }
          if (!r.ok) throw new Error("suggest failed: " + r.status);
          return r.json();
        }).then(function (data) {
          if (seq < shown) return;
          shown = seq;
          render(data);
        }).catch(function (err) {
          if (err.name !== "AbortError" && seq >= shown) status.textContent = "Suggestions are not available right now.";
        });
    }, delay);
  }
  transcript.addEventListener("input", function () { run(250); });

  // What the bot already asked, showed and heard back, in five seconds.
  function loadBrief() {
    var id = session.value.trim(), seq = ++briefSeq;
    if (!id || !store.getItem(KEY)) { brief.hidden = true; return; }
    fetch("/api/v1/sessions/" + encodeURIComponent(id), { headers: auth() }).then(function (r) {
      if (r.status === 404) return { brief: "No bot session with this id (it may have expired)." };
      if (!r.ok) throw new Error("session failed: " + r.status);
      return r.json();
    }).then(function (data) {
      if (seq !== briefSeq) return;
      briefText.textContent = data.brief;
      brief.hidden = false;
    }).catch(function () {
      if (seq === briefSeq) { briefText.textContent = "The bot session is not available right now."; brief.hidden = false; }
    });
  }
  var sessionTimer = 0;
  session.addEventListener("input", function () {
    clearTimeout(sessionTimer);
    sessionTimer = setTimeout(function () { loadBrief(); run(0); }, 250);
  });

  // A host app (a configured origin) may send the transcript:
  // postMessage({type: "rapport:transcript", transcript: [{role, text}]}, origin)
  window.addEventListener("message", function (e) {
    if (hosts.indexOf(e.origin) < 0 && e.origin !== location.origin) return;
    var d = e.data;
    if (!d || d.type !== "rapport:transcript" || !Array.isArray(d.transcript)) return;
    if (typeof d.session_id === "string" && d.session_id !== session.value) {
      session.value = d.session_id;
      loadBrief();
    }
    transcript.value = d.transcript.map(function (t) {
      return (t.role === "agent" ? "Agent: " : "Customer: ") + String(t.text).replace(/\n/g, " ");
    }).join("\n");
    run(0);
  });

  showPanel(!!store.getItem(KEY));
  if (store.getItem(KEY)) { loadBrief(); run(0); }
})();
