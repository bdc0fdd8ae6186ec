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
    queue.hidden = !on;
    forget.hidden = !on;
    if (on) transcript.focus();
  }
  function signOut(message) {
    store.removeItem(KEY);
    stopQueue();
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
    startQueue();
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

  // The hand-off queue: customers the widget handed to a person, oldest
  // first, kept live by the server's event stream. EventSource cannot send
  // the key, so the stream is read with fetch and parsed here.
  var queue = $("queue"), waitingList = $("queue-waiting"), claimedList = $("queue-claimed");
  var queueStatus = $("queue-status"), live = $("queue-live"), pageTitle = document.title;
  var handoffs = {}, nodes = {}, stream = null, retry = 0, retryTimer = 0, lastEventId = "", ticker = 0;
  var RESOLUTIONS = [["solved", "Solved"], ["not_solved", "Not solved"], ["duplicate", "Duplicate"], ["spam", "Spam"]];

  function api(method, path, body) {
    return fetch(path, { method: method, headers: auth(), body: body ? JSON.stringify(body) : undefined }).then(function (r) {
      if (r.status === 401) { signOut("That key was not accepted. Check it and try again."); throw { name: "AbortError" }; }
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (r.ok) return data;
        var e = new Error((data.error && data.error.message) || "HTTP " + r.status);
        e.status = r.status;
        throw e;
      });
    });
  }
  function handoffPath(h, action) { return "/api/v1/handoffs/" + encodeURIComponent(h.handoff_id) + "/" + action; }
  function who(h) { return (h.contact && (h.contact.name || h.contact.email)) || "Anonymous customer"; }
  function duration(seconds) {
    var m = Math.floor(seconds / 60);
    return m < 1 ? "under a minute" : m < 60 ? m + " min" : Math.floor(m / 60) + " h " + (m % 60) + " min";
  }
  // Closed ones leave the queue; `seen` dates `waiting_seconds` on this clock.
  function keep(h) {
    h.seen = Date.now();
    if (h.status === "waiting" || h.status === "claimed") handoffs[h.handoff_id] = h;
    else delete handoffs[h.handoff_id];
  }
  function refreshQueue() {
    return Promise.all(["waiting", "claimed"].map(function (s) { return api("GET", "/api/v1/handoffs?status=" + s); }))
      .then(function (lists) {
        handoffs = {};
        lists.forEach(function (l) { l.handoffs.forEach(keep); });
        drawQueue();
      }).catch(function (e) {
        if (e.name !== "AbortError") queueStatus.textContent = "The queue is not available right now.";
      });
  }

  function handoffItem(h) {
    var li = el("li", "handoff");
    li.dataset.id = h.handoff_id;
    var row = li.appendChild(el("div", "row"));
    var name = row.appendChild(el("div"));
    name.appendChild(el("strong", null, who(h)));
    if (h.contact && h.contact.email) {
      var mail = name.appendChild(el("a", "mail", h.contact.email));
      mail.href = "mailto:" + h.contact.email;
    }
    var since = row.appendChild(el("span", "pill since"));
    var signals = li.appendChild(el("div", "signals"));
    (h.reasons || []).forEach(function (r) { signals.appendChild(pill(r.replace(/_/g, " "), "warn")); });
    if (h.message) li.appendChild(el("p", "message", h.message));
    if (h.questions && h.questions.length) {
      var asked = li.appendChild(el("ul", "questions"));
      asked.setAttribute("aria-label", "Questions asked");
      h.questions.forEach(function (q) { asked.appendChild(el("li", null, q)); });
    }
    if (h.brief) li.appendChild(el("p", "hint", h.brief));
    if (h.status === "waiting") {
      var claim = li.appendChild(el("button", "claim", "Claim"));
      claim.type = "button";
      claim.addEventListener("click", function () { claimHandoff(h, claim); });
    } else {
      var open = li.appendChild(el("button", "ghost", "Open in panel"));
      open.type = "button";
      open.addEventListener("click", function () { openSession(h.session_id); });
      li.appendChild(closeForm(h));
    }
    return { li: li, since: since, status: h.status };
  }
  function closeForm(h) {
    var f = el("form", "close-form"), id = "close-" + h.handoff_id;
    var label = f.appendChild(el("label", null, "Resolution"));
    label.htmlFor = id + "-resolution";
    var select = f.appendChild(el("select"));
    select.id = label.htmlFor;
    RESOLUTIONS.forEach(function (r) { select.appendChild(el("option", null, r[1])).value = r[0]; });
    var noteLabel = f.appendChild(el("label", null, "Note (optional)"));
    noteLabel.htmlFor = id + "-note";
    var note = f.appendChild(el("textarea"));
    note.id = noteLabel.htmlFor;
    note.rows = 2;
    note.maxLength = 2000;
    var button = f.appendChild(el("button", null, "Close hand-off"));
    f.addEventListener("submit", function (e) {
      e.preventDefault();
      var body = { resolution: select.value };
      if (note.value.trim()) body.note = note.value.trim();
      button.disabled = true;
      api("POST", handoffPath(h, "close"), body).then(function (closed) {
        keep(closed);
        drawQueue();
        queueStatus.textContent = "Closed the hand-off with " + who(h) + ".";
      }, function (e) {
        button.disabled = false;
        if (e.name !== "AbortError") queueStatus.textContent = "Could not close: " + e.message;
      });
    });
    return f;
  }
  function claimHandoff(h, button) {
    button.disabled = true;
    api("POST", handoffPath(h, "claim")).then(function (claimed) {
      keep(claimed);
      drawQueue();
      queueStatus.textContent = "You claimed the hand-off with " + who(h) + ".";
      openSession(claimed.session_id);
      var node = nodes[claimed.handoff_id];
      if (node) node.li.querySelector("select").focus(); // the Claim button is gone
    }, function (e) {
      button.disabled = false;
      if (e.name === "AbortError") return;
      // 409: someone was quicker; the server names them.
      queueStatus.textContent = e.status === 409 ? e.message : "Could not claim: " + e.message;
      if (e.status === 409) refreshQueue();
    });
  }
  // The customer's bot session in the panel below: brief and suggestions.
  function openSession(id) {
    if (!id) return;
    session.value = id;
    history.replaceState(null, "", "/agent?session=" + encodeURIComponent(id));
    loadBrief();
    run(0);
  }

  // Moves only what changed, so a half-typed close note survives an update.
  function drawQueue() {
    var all = Object.keys(handoffs).map(function (k) { return handoffs[k]; })
      .sort(function (a, b) { return a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : 0; });
    Object.keys(nodes).forEach(function (id) {
      if (!handoffs[id] || handoffs[id].status !== nodes[id].status) { nodes[id].li.remove(); delete nodes[id]; }
    });
    var count = { waiting: 0, claimed: 0 };
    all.forEach(function (h) {
      var node = nodes[h.handoff_id] || (nodes[h.handoff_id] = handoffItem(h));
      node.h = h;
      var list = h.status === "waiting" ? waitingList : claimedList, at = list.children[count[h.status]++];
      if (at !== node.li) list.insertBefore(node.li, at || null);
    });
    $("waiting-empty").hidden = count.waiting > 0;
    $("claimed-empty").hidden = count.claimed > 0;
    document.title = (count.waiting ? "(" + count.waiting + ") " : "") + pageTitle;
    tick();
  }
  function tick() {
    Object.keys(nodes).forEach(function (id) {
      var h = nodes[id].h, position = Array.prototype.indexOf.call(waitingList.children, nodes[id].li) + 1;
      nodes[id].since.textContent = h.status === "waiting"
        ? "#" + position + " · waiting " + duration((h.waiting_seconds || 0) + (Date.now() - h.seen) / 1000)
        : "Claimed by " + (h.claimed_by || "an agent");
    });
  }

  // One line of text/event-stream: fields gather until a blank line
  // dispatches the event; lines starting with ":" are keep-alives.
  function sseLine(ev, line) {
    if (line === "") {
      if (ev.data.length) onEvent(ev.event || "message", ev.data.join("\n"));
      return { data: [] };
    }
    if (line[0] === ":") return ev;
    var i = line.indexOf(":"), field = i < 0 ? line : line.slice(0, i), value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
    if (field === "data") ev.data.push(value);
    else if (field === "event") ev.event = value;
    else if (field === "id") lastEventId = value;
    return ev;
  }
  function onEvent(type, data) {
    var d;
    try { d = JSON.parse(data); } catch (e) { return; }
    if (!/^handoff\./.test(type) || !d || !d.handoff) return;
    var isNew = type === "handoff.created" && !handoffs[d.handoff.handoff_id];
    keep(d.handoff);
    drawQueue();
    if (isNew) queueStatus.textContent = "New customer waiting: " + who(d.handoff) + ".";
  }
  function listen() {
    clearTimeout(retryTimer);
    if (stream) stream.abort();
    if (!store.getItem(KEY)) return;
    var ctrl = stream = new AbortController(), headers = auth();
    headers.Accept = "text/event-stream";
    if (lastEventId) headers["Last-Event-ID"] = lastEventId;
    fetch("/api/v1/handoffs/events", { headers: headers, signal: ctrl.signal, cache: "no-store" }).then(function (r) {
      if (r.status === 401) { signOut("That key was not accepted. Check it and try again."); return; }
      if (!r.ok || !r.body) throw new Error("events: " + r.status);
      live.textContent = "Live";
      live.className = "pill ok";
      retry = 0;
      refreshQueue(); // whatever happened while not connected
      var reader = r.body.getReader(), decoder = new TextDecoder(), buffer = "", ev = { data: [] };
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) throw new Error("the event stream ended");
          buffer += decoder.decode(chunk.value, { stream: true });
          var lines = buffer.split("\n");
          buffer = lines.pop();
          lines.forEach(function (line) { ev = sseLine(ev, line.replace(/\r$/, "")); });
          return pump();
        });
      }
      return pump();
    }).catch(function () {
      if (stream !== ctrl || ctrl.signal.aborted) return;
      live.textContent = "Reconnecting…";
      live.className = "pill warn";
      // 1 s, 2 s, 4 s … up to 30 s, jittered so a restart isn't stampeded.
      var delay = Math.min(30000, 1000 * Math.pow(2, retry++)) * (0.75 + Math.random() / 2);
      retryTimer = setTimeout(listen, delay);
    });
  }
  function startQueue() {
    refreshQueue();
    listen();
    clearInterval(ticker);
    ticker = setInterval(tick, 15000);
  }
  function stopQueue() {
    clearTimeout(retryTimer);
    clearInterval(ticker);
    if (stream) stream.abort();
    stream = null;
    handoffs = {};
    drawQueue();
    live.textContent = "Connecting…";
    live.className = "pill";
    queueStatus.textContent = "";
  }

  showPanel(!!store.getItem(KEY));
  if (store.getItem(KEY)) { loadBrief(); run(0); startQueue(); }
})();
