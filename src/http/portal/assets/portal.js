// rapport help portal: enhances the server-rendered pages. Plain JS, no build.
(function () {
  "use strict";
  var input = document.getElementById("q");
  var area = document.getElementById("results");
  var store = window.sessionStorage;
  var session = store.getItem("rapport.session");
  if (!session) {
    // Unguessable: the chat widget shares it, and it guards a hand-off.
    session = Array.prototype.map.call(crypto.getRandomValues(new Uint8Array(16)), function (b) {
      return (b + 256).toString(16).slice(1);
    }).join("");
    store.setItem("rapport.session", session);
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text != null) node.textContent = text;
    return node;
  }
  function enc(v) { return encodeURIComponent(v); }
  function post(body) {
    return fetch("/api/v1/feedback", {
      method: "POST", keepalive: true,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body)
    });
  }
  // Snippets are escaped by the server with <mark> around matches; keep only
  // text and <mark> anyway. Template content is inert (nothing runs or loads).
  function snippet(html) {
    var t = document.createElement("template");
    t.innerHTML = html;
    var out = document.createDocumentFragment();
    t.content.childNodes.forEach(function (n) {
      out.appendChild(n.nodeName === "MARK" ? el("mark", null, n.textContent) : document.createTextNode(n.textContent));
    });
    return out;
  }

  // "/" focuses the search box from anywhere but a text field.
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (e.key === "/" && input && !/^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName) && !t.isContentEditable) {
      e.preventDefault();
      input.focus();
      input.select();
    }
  });

  if (input && area) {
    var params = new URLSearchParams(location.search);
    var state = { q: input.value, category: params.get("category") || "", tag: params.get("tag") || "" };
    var latest = 0, shown = 0, timer = 0, inflight = null;
    var onSearchPage = document.body.classList.contains("search-page");

    function url(s) {
      var u = "/search?q=" + enc(s.q);
      if (s.category) u += "&category=" + enc(s.category);
      if (s.tag) u += "&tag=" + enc(s.tag);
      return u;
    }
    function stuck() {
      var t = document.getElementById("stuck-template");
      return t ? t.content.cloneNode(true) : document.createDocumentFragment();
    }
    function facetList(title, kind, counts) {
      var frag = document.createDocumentFragment();
      var names = Object.keys(counts).sort(function (a, b) { return counts[b] - counts[a] || (a < b ? -1 : 1); }).slice(0, 12);
      if (!names.length) return frag;
      frag.appendChild(el("h2", null, title));
      var ul = el("ul", "facets");
      ul.dataset.facet = kind;
      var active = state[kind];
      if (active) {
        var clear = el("a", "facet clear", "× " + active);
        clear.dataset.value = "";
        clear.href = url(Object.assign({}, state, kind === "category" ? { category: "" } : { tag: "" }));
        ul.appendChild(el("li")).appendChild(clear);
      }
      names.forEach(function (name) {
        var a = el("a", "facet" + (name === active ? " on" : ""));
        a.dataset.value = name;
        if (name === active) a.setAttribute("aria-current", "true");
        var next = Object.assign({}, state);
        next[kind] = name;
        a.href = url(next);
        a.appendChild(el("span", null, name));
        a.appendChild(el("span", "n", String(counts[name])));
        ul.appendChild(el("li")).appendChild(a);
      });
      frag.appendChild(ul);
      return frag;
    }
    function render(data) {
      area.textContent = "";
      area.hidden = false;
      area.dataset.qid = data.query_id;
      if (!data.total) {
        area.appendChild(el("p", "count", "No articles match “" + state.q + "”."));
        area.appendChild(el("p", null, "Try fewer or different words, or browse the articles below."));
        area.appendChild(stuck());
        return;
      }
      var layout = el("div", "layout");
      var filters = el("aside", "filters");
      filters.setAttribute("aria-label", "Filters");
      filters.appendChild(facetList("Category", "category", data.facets.category));
      filters.appendChild(facetList("Tags", "tag", data.facets.tags));
      var main = el("section");
      var exact = data.total_relation !== "gte";
      var counted = data.total + (exact ? "" : "+");
      main.appendChild(el("p", "count", counted + (exact && data.total === 1 ? " result" : " results") + " for “" + state.q + "”"));
      var ol = el("ol", "hits");
      data.hits.forEach(function (hit) {
        var a = el("a", "hit");
        a.href = hit.url;
        a.dataset.id = hit.id;
        a.appendChild(el("span", "crumb", (hit.category ? hit.category + " › " : "") + hit.section.heading));
        a.appendChild(el("strong", "title", hit.title));
        a.appendChild(el("span", "snippet")).appendChild(snippet(hit.snippet));
        ol.appendChild(el("li")).appendChild(a);
      });
      main.appendChild(ol);
      if (data.total > data.hits.length) {
        var more = el("a", null, "All " + counted + " results →");
        more.href = url(state);
        main.appendChild(el("p")).appendChild(more);
      }
      layout.appendChild(filters);
      layout.appendChild(main);
      area.appendChild(layout);
    }
    function clearResults() {
      document.body.classList.remove("searching");
      if (onSearchPage) {
        area.textContent = "";
        area.appendChild(el("p", "count", "Type what you're looking for above."));
        area.appendChild(stuck());
      } else {
        area.textContent = "";
        area.hidden = true;
      }
    }
    // Debounced; a newer query aborts the older request, and a response is
    // only shown if no newer one has been shown already.
    function run(delay) {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var q = state.q.trim();
        var seq = ++latest;
        if (inflight) inflight.abort();
        if (!q) {
          shown = seq;
          clearResults();
          if (document.body.classList.contains("home")) history.replaceState(null, "", "/");
          return;
        }
        inflight = new AbortController();
        var api = "/api/v1/search?limit=10&session_id=" + enc(session) + "&q=" + enc(q) +
          (state.category ? "&category=" + enc(state.category) : "") + (state.tag ? "&tag=" + enc(state.tag) : "");
        fetch(api, { signal: inflight.signal }).then(function (r) {
          if (!r.ok) throw new Error("search failed: " + r.status);
          return r.json();
        }).then(function (data) {
          if (seq < shown) return;
          shown = seq;
          document.body.classList.add("searching");
          render(data);
          history.replaceState(null, "", onSearchPage || document.body.classList.contains("home") ? url(state) : location.href);
        }).catch(function (err) {
          if (err.name === "AbortError" || seq < shown) return;
          area.hidden = false;
          area.textContent = "";
          area.appendChild(el("p", "error", "Search is not available right now. Please try again in a moment."));
        });
      }, delay);
    }
    input.addEventListener("input", function () {
      state.q = input.value;
      run(150);
    });
    input.form.addEventListener("submit", function (e) {
      if (!onSearchPage) return; // other pages: go to the results page
      e.preventDefault();
      state.q = input.value;
      run(0);
    });
    area.addEventListener("click", function (e) {
      var facet = e.target.closest("a.facet");
      if (facet) {
        e.preventDefault();
        state[facet.closest("ul").dataset.facet] = facet.dataset.value;
        run(0);
        return;
      }
      var hit = e.target.closest("a.hit");
      if (hit && area.dataset.qid) {
        store.setItem("rapport.qid." + hit.dataset.id, area.dataset.qid);
        post({ query_id: area.dataset.qid, article_id: hit.dataset.id, event: "click" }).catch(function () {});
      }
    });
    // Arrow keys move through the results; Enter opens the focused one.
    function hits() { return Array.prototype.slice.call(area.querySelectorAll("a.hit")); }
    input.addEventListener("keydown", function (e) {
      if (e.key === "ArrowDown" && hits().length) { e.preventDefault(); hits()[0].focus(); }
    });
    area.addEventListener("keydown", function (e) {
      var list = hits(), i = list.indexOf(document.activeElement);
      if (i < 0) return;
      if (e.key === "ArrowDown" && i < list.length - 1) { e.preventDefault(); list[i + 1].focus(); }
      if (e.key === "ArrowUp") { e.preventDefault(); (i ? list[i - 1] : input).focus(); }
    });
  }

  // "Was this helpful?" on an article reached from a search (feedback is
  // tied to the search that found the article).
  var vote = document.getElementById("vote");
  var article = document.querySelector("article[data-article]");
  if (vote && article) {
    var id = article.dataset.article;
    var qid = store.getItem("rapport.qid." + id);
    var thanks = document.getElementById("vote-thanks");
    var form = document.getElementById("vote-comment");
    var done = function (ok) {
      vote.querySelector(".vote-buttons").hidden = true;
      form.hidden = true;
      thanks.textContent = ok ? "Thanks for your feedback!" : "Sorry, we couldn't record that. Please try again later.";
    };
    var send = function (event, comment) {
      var body = { query_id: qid, article_id: id, event: event };
      if (comment) body.comment = comment;
      post(body).then(function (r) { done(r.ok); }, function () { done(false); });
    };
    if (qid) {
      vote.hidden = false;
      vote.addEventListener("click", function (e) {
        var b = e.target.closest("button[data-vote]");
        if (!b) return;
        if (b.dataset.vote === "helpful") send("helpful");
        else { form.hidden = false; form.querySelector("textarea").focus(); }
      });
      form.addEventListener("submit", function (e) {
        e.preventDefault();
        send("not_helpful", form.querySelector("textarea").value.trim());
      });
    }
  }
})();
