// Aftercare admin: progressive enhancement over server-rendered pages written with Polaris web components.
//  - Embedded in the Shopify admin, App Bridge carries the page's navigation (s-app-nav), title bar (s-page),
//    save bar (form[data-save-bar]) and toasts to the admin, and its fetch adds a fresh session token to every
//    request to our origin. Navigation never puts the token in a URL (URLs end up in logs, history and Referer):
//    pages are fetched and swapped in, and the address bar is updated with the History API
//    (https://shopify.dev/docs/apps/build/authentication-authorization/session-tokens).
//  - Standalone, or when App Bridge / Polaris cannot be loaded from Shopify's CDN, this file does the same work
//    itself: the app's own tab bar, save bar, toasts and leave confirmation, and it gives the undefined s-*
//    elements the roles and keyboard behaviour the real components have (admin.css gives them their look).
// It also runs the live template previews and the SLA countdown.
(function () {
  "use strict";
  var tokenMeta = document.querySelector('meta[name="aftercare-token"]');
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var currentToken = tokenMeta ? tokenMeta.content : null;
  var navigation = 0;
  var countdown = null;
  var baselines = new WeakMap();
  var root = document.documentElement;

  function mode() { return document.body.getAttribute("data-mode"); }
  function hasBridge() { return !!(window.shopify && typeof window.shopify.idToken === "function"); }
  // App Home: App Bridge runs inside the Shopify admin and draws navigation, title bar, save bar and toasts.
  function appHome() { return hasBridge() && !!(window.shopify.environment && window.shopify.environment.embedded); }
  function polarisLoaded() { return !!(window.customElements && customElements.get("s-page")); }

  root.classList.toggle("app-home", mode() === "embedded" && appHome());
  root.classList.toggle("polaris-fallback", !polarisLoaded());

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

  // Without App Bridge (CDN unreachable): the page's token until it expires.
  function pageToken() {
    if (currentToken && tokenExpiry(currentToken) > Date.now() + 2000) { return currentToken; }
    showExpired();
    throw new Error("session expired");
  }

  // fetch with the session: App Bridge's fetch adds a fresh token (and retries once on Shopify's retry header);
  // without it the page's token goes in the header; standalone, the cookie and the CSRF header.
  async function appFetch(url, options) {
    options = Object.assign({ credentials: "same-origin" }, options || {});
    options.headers = Object.assign({}, options.headers || {});
    if (mode() === "embedded" && !hasBridge()) { options.headers["Authorization"] = "Bearer " + pageToken(); }
    if (mode() === "standalone" && csrfMeta && options.method === "POST") { options.headers["X-CSRF-Token"] = csrfMeta.content; }
    var response = await fetch(url, options);
    if (response.status === 401 && mode() === "embedded") { showExpired(); }
    return response;
  }

  function isInternal(url) { return url.origin === location.origin && url.pathname.indexOf("/admin") === 0; }

  function withoutParams(url) {
    var clean = new URL(url, location.href);
    clean.searchParams.delete("id_token");
    clean.searchParams.delete("notice");
    return clean;
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

  // Show an admin page: fetched with the session, swapped into this document. history is "push" (a link),
  // "replace" (the bounce page) or "none" (back/forward).
  async function visit(url, history) {
    var target = new URL(url, location.href);
    target.searchParams.delete("id_token");
    var mine = ++navigation;
    var response = await appFetch(target, { headers: { "Accept": "text/html" } });
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
    var shown = withoutParams(response.url || target);
    shown.hash = target.hash;
    if (history === "push") { window.history.pushState({ aftercare: true }, "", shown.toString()); }
    if (history === "replace") { window.history.replaceState({ aftercare: true }, "", shown.toString()); }
    document.title = doc.title;
    var fresh = doc.querySelector('meta[name="aftercare-token"]');
    if (fresh) { currentToken = fresh.content; }
    document.body.replaceWith(document.adoptNode(doc.body));
    initPage();
    var anchor = shown.hash && document.getElementById(shown.hash.slice(1));
    if (anchor) { anchor.scrollIntoView(); } else { window.scrollTo(0, 0); }
    var main = document.getElementById("main");
    if (main && history !== "replace") { main.focus({ preventScroll: true }); }
  }

  async function go(url) {
    var target = new URL(url, location.href);
    if (mode() === "embedded" && isInternal(target) && target.pathname.indexOf("/admin/static/") !== 0) {
      return visit(target, "push");
    }
    location.assign(target.toString());
  }

  async function post(url, data) {
    return appFetch(url, { method: "POST", body: data, headers: { "Accept": "application/json", "X-Requested-With": "fetch" } });
  }

  function showError(message) {
    var box = document.getElementById("form-error");
    if (box) { box.textContent = message; box.hidden = false; box.scrollIntoView({ block: "center" }); }
    toast(message, true);
  }

  // -- toasts ------------------------------------------------------------------------------------------------
  function toast(message, isError) {
    if (appHome() && window.shopify.toast) { window.shopify.toast.show(message, { isError: !!isError }); return; }
    var region = document.getElementById("toasts");
    if (!region) { return; }
    var el = document.createElement("div");
    el.className = "toast" + (isError ? " toast-error" : "");
    el.textContent = message;
    region.appendChild(el);
    setTimeout(function () { el.remove(); }, 6000);
  }

  function initToasts() {
    document.querySelectorAll("[data-toast]").forEach(function (el) { toast(el.getAttribute("data-toast")); el.remove(); });
    var clean = withoutParams(location.href);
    if (clean.toString() !== location.href) { window.history.replaceState(window.history.state, "", clean.toString()); }
  }

  // -- save bar and leave confirmation (ours when App Bridge does not draw them) ------------------------------
  function snapshot(form) {
    var parts = [];
    new FormData(form).forEach(function (value, key) {
      if (key !== "id_token" && key !== "csrf_token") { parts.push(key + "=" + value); }
    });
    return parts.join("&");
  }
  function dirtyForm() {
    var forms = document.querySelectorAll("form[data-save-bar]");
    for (var i = 0; i < forms.length; i++) {
      if (baselines.has(forms[i]) && baselines.get(forms[i]) !== snapshot(forms[i])) { return forms[i]; }
    }
    return null;
  }
  function renderSaveBar() {
    var bar = document.getElementById("app-save-bar");
    var form = dirtyForm();
    if (!form) { if (bar) { bar.remove(); } return; }
    if (bar) { return; }
    bar = document.createElement("div");
    bar.id = "app-save-bar";
    bar.className = "app-save-bar";
    bar.setAttribute("role", "region");
    bar.setAttribute("aria-label", "Unsaved changes");
    bar.innerHTML = '<span class="app-save-bar-text">Unsaved changes</span>' +
      '<button type="button" class="btn" data-save-bar-discard>Discard</button>' +
      '<button type="button" class="btn btn-primary" data-save-bar-save>Save</button>';
    bar.querySelector("[data-save-bar-discard]").addEventListener("click", function () {
      var changed = dirtyForm();
      if (changed && (!changed.hasAttribute("data-discard-confirmation") || window.confirm("Discard all unsaved changes?"))) { changed.reset(); }
    });
    bar.querySelector("[data-save-bar-save]").addEventListener("click", function () {
      var changed = dirtyForm();
      if (changed) { changed.requestSubmit(); }
    });
    document.body.prepend(bar);
  }
  function initSaveBars() {
    document.querySelectorAll("form[data-save-bar]").forEach(function (form) {
      baselines.set(form, snapshot(form));
      if (appHome()) { return; }  // App Bridge's own save bar
      form.addEventListener("input", renderSaveBar);
      form.addEventListener("change", renderSaveBar);
      form.addEventListener("reset", function () { setTimeout(function () { baselines.set(form, snapshot(form)); renderSaveBar(); }, 0); });
    });
    renderSaveBar();
  }
  // Resolve when the merchant may leave the page: at once without unsaved changes, else after they agree.
  function leaveAllowed() {
    if (appHome()) { return window.shopify.saveBar && window.shopify.saveBar.leaveConfirmation ? window.shopify.saveBar.leaveConfirmation() : Promise.resolve(); }
    if (!dirtyForm() || window.confirm("Leave page with unsaved changes?\nLeaving this page will delete all unsaved changes.")) {
      document.querySelectorAll("form[data-save-bar]").forEach(function (f) { baselines.set(f, snapshot(f)); });
      renderSaveBar();
      return Promise.resolve();
    }
    return new Promise(function () {});
  }
  window.addEventListener("beforeunload", function (event) {
    if (!appHome() && dirtyForm()) { event.preventDefault(); event.returnValue = ""; }
  });

  // -- Polaris elements without the CDN: roles, headings and keyboard -----------------------------------------
  var ROLES = { "s-table": "table", "s-table-header-row": "row", "s-table-row": "row", "s-table-body": "rowgroup",
                "s-table-header": "columnheader", "s-table-cell": "cell" };
  function depth(el) { var n = 0; for (var e = el.parentElement; e; e = e.parentElement) { if (e.localName === "s-section") { n++; } } return n; }
  function upgradeFallback(scope) {
    if (polarisLoaded()) { return; }
    Object.keys(ROLES).forEach(function (name) {
      scope.querySelectorAll(name + ":not([role])").forEach(function (el) { el.setAttribute("role", ROLES[name]); });
    });
    scope.querySelectorAll("s-section[heading]:not([data-upgraded])").forEach(function (el) {
      var h = document.createElement("h" + Math.min(6, depth(el) + 2));
      h.className = "s-section-heading";
      h.textContent = el.getAttribute("heading");
      el.prepend(h);
      el.setAttribute("data-upgraded", "");
    });
    scope.querySelectorAll("s-heading:not([role])").forEach(function (el) {
      el.setAttribute("role", "heading");
      el.setAttribute("aria-level", String(Math.min(6, depth(el) + 2)));
    });
    scope.querySelectorAll("s-banner:not([data-upgraded])").forEach(function (el) {
      var tone = el.getAttribute("tone");
      if ((tone === "critical" || tone === "warning") && !el.hasAttribute("role")) { el.setAttribute("role", "alert"); }
      if (el.getAttribute("heading")) {
        var strong = document.createElement("strong");
        strong.className = "s-banner-heading";
        strong.textContent = el.getAttribute("heading");
        el.prepend(strong, " ");
      }
      el.setAttribute("data-upgraded", "");
    });
    scope.querySelectorAll("s-button:not([role]), s-link:not([role]), s-clickable:not([role])").forEach(function (el) {
      el.setAttribute("role", el.localName === "s-link" || el.hasAttribute("href") ? "link" : "button");
      if (el.hasAttribute("disabled")) { el.setAttribute("aria-disabled", "true"); } else { el.tabIndex = 0; }
      if (el.getAttribute("accessibilityLabel")) { el.setAttribute("aria-label", el.getAttribute("accessibilityLabel")); }
    });
    root.classList.add("polaris-upgraded");
  }

  document.addEventListener("keydown", function (event) {
    var el = event.target;
    if (!el.localName || el.localName.indexOf("s-") !== 0 || !el.hasAttribute("role")) { return; }
    if (event.key === "Enter" || (event.key === " " && el.getAttribute("role") === "button")) {
      event.preventDefault();
      el.click();
    }
  });

  // Links (a, s-link, s-button with href) and buttons that act without the CDN (s-button type=submit or data-submit).
  document.addEventListener("click", function (event) {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) { return; }
    var actor = event.target.closest("s-button:not([href]), s-clickable:not([href])");
    if (actor && !polarisLoaded()) {
      if (actor.hasAttribute("disabled")) { event.preventDefault(); return; }
      var form = actor.getAttribute("data-submit") ? document.getElementById(actor.getAttribute("data-submit"))
        : (actor.getAttribute("type") === "submit" ? actor.closest("form") : null);
      if (form) { event.preventDefault(); form.requestSubmit(); }
      return;
    }
    if (actor && actor.getAttribute("data-submit")) {
      event.preventDefault();
      document.getElementById(actor.getAttribute("data-submit")).requestSubmit();
      return;
    }
    var link = event.target.closest("a[href], s-link[href], s-button[href], s-clickable[href]");
    if (!link || link.hasAttribute("download") && mode() !== "embedded" || link.getAttribute("target") === "_blank") { return; }
    var url = new URL(link.getAttribute("href"), location.href);
    if (url.hash && url.pathname === location.pathname && url.search === location.search) {
      if (link.localName !== "a") { event.preventDefault(); location.hash = url.hash; }
      return;
    }
    var internal = isInternal(url) && url.pathname.indexOf("/admin/static/") !== 0;
    if (!internal && link.localName === "a") { return; }
    event.preventDefault();
    leaveAllowed().then(function () {
      if (mode() !== "embedded" || !internal) { location.assign(url.toString()); return; }
      // App Bridge there but the request failed: still go, the server's bounce page recovers a session.
      // No App Bridge and the token expired: stay, the session banner explains how to reload.
      go(url).catch(function () { if (hasBridge()) { location.assign(url.toString()); } });
    });
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
    var data = new FormData(form, event.submitter && event.submitter.form === form ? event.submitter : undefined);
    data.delete("id_token");
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; b.classList.add("busy"); });
    post(form.action, data).then(function (response) {
      return response.json().catch(function () { return { error: "Unexpected answer (" + response.status + ")." }; });
    }).then(function (result) {
      if (result.redirect) {
        baselines.set(form, snapshot(form));
        var target = new URL(result.redirect, location.href);
        target.searchParams.delete("notice");
        return go(mode() === "embedded" ? target : result.redirect).then(function () {
          if (mode() === "embedded" && result.message) { toast(result.message); }
        });
      }
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
    upgradeFallback(document);
    initAutosubmit();
    initPreview();
    initCountdown();
    initSaveBars();
    initToasts();
  }

  if (mode() === "embedded") {
    // Shopify opens the app with the token in the URL: drop it from the address bar (reloads and the
    // history then go through the bounce below with a fresh one).
    window.history.replaceState({ aftercare: true }, "", withoutParams(location.href).toString());
  }
  initPage();

  // Friendly page without a valid token: with App Bridge, fetch the page again with a fresh token.
  if (document.body.hasAttribute("data-bounce") && hasBridge()) {
    visit(location.href, "replace").catch(function () {});
  }
})();
