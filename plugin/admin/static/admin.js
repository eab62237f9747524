// Aftercare admin: progressive enhancement. Pages work as plain HTML; this adds fresh App Bridge session
// tokens to navigation and form posts (embedded), the live template preview, and the SLA countdown.
// Embedded navigation never puts the session token in a URL (URLs end up in logs, history and Referer): the
// page is fetched with the token in an Authorization header and swapped in, and the address bar is updated
// with the History API (https://shopify.dev/docs/apps/build/authentication-authorization/session-tokens).
(function () {
  "use strict";
  var tokenMeta = document.querySelector('meta[name="aftercare-token"]');
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var currentToken = tokenMeta ? tokenMeta.content : null;
  var navigation = 0;
  var countdown = null;

  function mode() { return document.body.getAttribute("data-mode"); }

  function hasBridge() { return !!(window.shopify && typeof window.shopify.idToken === "function"); }

  function tokenExpiry(token) {
    try {
      var part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part)).exp * 1000;
    } catch (e) { return 0; }
  }

  function showExpired() {
    var banner = document.getElementById("session-banner");
    if (banner) { banner.hidden = false; banner.scrollIntoView({ block: "start" }); }
  }

  // A fresh token from App Bridge; without it (CDN unreachable) the page's token until it expires.
  async function freshToken() {
    if (hasBridge()) {
      try { currentToken = await window.shopify.idToken(); return currentToken; } catch (e) { /* fall back */ }
    }
    if (currentToken && tokenExpiry(currentToken) > Date.now() + 2000) { return currentToken; }
    showExpired();
    throw new Error("session expired");
  }

  function isInternal(url) { return url.origin === location.origin && url.pathname.indexOf("/admin") === 0; }

  function withoutToken(url) {
    var clean = new URL(url, location.href);
    clean.searchParams.delete("id_token");
    return clean;
  }

  // GET an admin URL with the session token in a header; one retry with a new token when Shopify's retry
  // header says the token was refused.
  async function fetchWithToken(url, accept) {
    var headers = { "Accept": accept, "Authorization": "Bearer " + await freshToken() };
    var response = await fetch(url, { headers: headers, credentials: "same-origin" });
    if (response.status === 401 && response.headers.get("X-Shopify-Retry-Invalid-Session-Request") === "1"
        && hasBridge()) {
      headers["Authorization"] = "Bearer " + await freshToken();
      response = await fetch(url, { headers: headers, credentials: "same-origin" });
    }
    return response;
  }

  async function download(response, url) {
    var disposition = response.headers.get("Content-Disposition") || "";
    var name = (disposition.match(/filename="?([^";]+)"?/) || [])[1] || url.pathname.split("/").pop();
    var link = document.createElement("a");
    link.href = URL.createObjectURL(await response.blob());
    link.download = name;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(link.href); }, 60000);
  }

  // Show an admin page: fetched with the token in a header, swapped into this document. history is
  // "push" (a link), "replace" (the bounce page) or "none" (back/forward).
  async function visit(url, history) {
    var target = withoutToken(url);
    var mine = ++navigation;
    var response = await fetchWithToken(target, "text/html");
    if (mine !== navigation) { return; }  // a later click won
    var type = response.headers.get("Content-Type") || "";
    if (type.indexOf("text/html") !== 0) {
      if (response.ok && type.indexOf("application/json") !== 0) { return download(response, target); }
      var result = await response.json().catch(function () { return {}; });
      if (response.status === 401) { showExpired(); return; }
      showError(result.error || result.reason || "Something went wrong (" + response.status + ").");
      return;
    }
    var doc = new DOMParser().parseFromString(await response.text(), "text/html");
    var shown = withoutToken(response.url || target);
    shown.hash = target.hash;
    if (history === "push") { window.history.pushState({ aftercare: true }, "", shown.toString()); }
    if (history === "replace") { window.history.replaceState({ aftercare: true }, "", shown.toString()); }
    document.title = doc.title;
    var pageToken = doc.querySelector('meta[name="aftercare-token"]');
    if (pageToken) { currentToken = pageToken.content; }
    document.body.replaceWith(doc.body);
    initPage();
    var anchor = shown.hash && document.getElementById(shown.hash.slice(1));
    if (anchor) { anchor.scrollIntoView(); } else { window.scrollTo(0, 0); }
  }

  async function go(url) {
    var target = new URL(url, location.href);
    if (mode() === "embedded" && isInternal(target) && target.pathname.indexOf("/admin/static/") !== 0) {
      return visit(target, "push");
    }
    location.assign(target.toString());
  }

  function authHeaders() {
    var headers = { "Accept": "application/json", "X-Requested-With": "fetch" };
    if (mode() === "standalone" && csrfMeta) { headers["X-CSRF-Token"] = csrfMeta.content; }
    return headers;
  }

  async function post(url, data) {
    var headers = authHeaders();
    if (mode() === "embedded") { headers["Authorization"] = "Bearer " + await freshToken(); }
    var response = await fetch(url, { method: "POST", headers: headers, body: data, credentials: "same-origin" });
    if (response.status === 401 && response.headers.get("X-Shopify-Retry-Invalid-Session-Request") === "1") {
      if (hasBridge()) {
        headers["Authorization"] = "Bearer " + await freshToken();
        response = await fetch(url, { method: "POST", headers: headers, body: data, credentials: "same-origin" });
      } else { showExpired(); }
    }
    return response;
  }

  function showError(message) {
    var box = document.getElementById("form-error");
    if (box) { box.textContent = message; box.hidden = false; box.scrollIntoView({ block: "center" }); }
  }

  document.addEventListener("click", function (event) {
    if (mode() !== "embedded") { return; }
    var link = event.target.closest("a[href]");
    if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey) { return; }
    var url = new URL(link.getAttribute("href"), location.href);
    if (!isInternal(url) || url.hash && url.pathname === location.pathname) { return; }
    event.preventDefault();
    // App Bridge there but its token call failed: still go, the server's bounce page recovers a session.
    // No App Bridge and the token expired: stay, the session banner explains how to reload.
    go(url).catch(function () { if (hasBridge()) { location.assign(url.toString()); } });
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var method = (form.getAttribute("method") || "get").toLowerCase();
    if (method === "get") {
      if (mode() !== "embedded") { return; }
      event.preventDefault();
      var url = new URL(form.getAttribute("action") || location.pathname, location.href);
      new FormData(form).forEach(function (value, key) { if (value !== "") { url.searchParams.set(key, value); } });
      go(url).catch(function () {});
      return;
    }
    if (mode() !== "embedded" && mode() !== "standalone") { return; }
    event.preventDefault();
    var data = new FormData(form, event.submitter || undefined);
    data.delete("id_token");
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; b.classList.add("busy"); });
    post(form.action, data).then(function (response) {
      return response.json().catch(function () { return { error: "Unexpected answer (" + response.status + ")." }; });
    }).then(function (result) {
      if (result.redirect) { return go(result.redirect); }
      showError(result.error || result.reason || "Something went wrong; nothing was changed.");
    }).catch(function () {
      showError("The request did not go through; check your connection and try again.");
    }).finally(function () {
      buttons.forEach(function (b) { b.disabled = false; b.classList.remove("busy"); });
    });
  });

  // Back and forward between swapped pages: fetch the page of that address again.
  window.addEventListener("popstate", function (event) {
    if (event.state && event.state.aftercare && mode() === "embedded") {
      visit(location.href, "none").catch(function () { location.reload(); });
    }
  });

  function initAutosubmit() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.requestSubmit(); });
    });
  }

  // Live previews (debounced): the template being edited, and the email brand being typed.
  function livePreview(form, prefix) {
    if (!form) { return; }
    var timer = null;
    var sequence = 0;
    var refresh = function () {
      var mine = ++sequence;
      var data = new FormData(form);
      data.delete("id_token");
      post(form.getAttribute("data-preview-url"), data).then(function (r) { return r.json(); }).then(function (result) {
        if (mine !== sequence) { return; }
        var error = document.getElementById(prefix + "preview-error");
        if (result.ok) {
          error.hidden = true;
          document.getElementById(prefix + "preview-subject").textContent = result.subject;
          document.getElementById(prefix + "preview-frame").srcdoc = result.html;
        } else {
          error.textContent = result.error || "The preview cannot be rendered.";
          error.hidden = false;
        }
      }).catch(function () {});
    };
    form.querySelectorAll("[data-preview]").forEach(function (field) {
      field.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(refresh, 350); });
    });
  }

  function initPreview() {
    livePreview(document.getElementById("template-form"), "");
    livePreview(document.getElementById("brand-form"), "brand-");
  }

  // SLA countdown: the server computed the remaining seconds; tick them down locally.
  function initCountdown() {
    clearInterval(countdown);
    var slas = document.querySelectorAll("[data-sla-remaining]");
    if (!slas.length) { return; }
    var started = Date.now();
    var render = function () {
      var elapsed = Math.floor((Date.now() - started) / 1000);
      slas.forEach(function (el) {
        var left = parseInt(el.getAttribute("data-sla-remaining"), 10) - elapsed;
        var abs = Math.abs(left);
        var d = Math.floor(abs / 86400), h = Math.floor(abs % 86400 / 3600), m = Math.floor(abs % 3600 / 60), s = abs % 60;
        var text = (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m " + (d ? "" : s + "s");
        el.textContent = left < 0 ? "Overdue by " + text : text.trim() + " left";
        el.classList.toggle("overdue", left < 0);
      });
    };
    render();
    countdown = setInterval(render, 1000);
  }

  function initPage() {
    initAutosubmit();
    initPreview();
    initCountdown();
  }

  initPage();
  if (mode() === "embedded") {
    // Shopify opens the app with the token in the URL: drop it from the address bar (reloads and the
    // history then go through the bounce below with a fresh one).
    window.history.replaceState({ aftercare: true }, "", withoutToken(location.href).toString());
  }

  // Friendly page without a valid token: with App Bridge, fetch the page again with a fresh token.
  if (document.body.hasAttribute("data-bounce") && hasBridge()) {
    visit(location.href, "replace").catch(function () {});
  }
})();
