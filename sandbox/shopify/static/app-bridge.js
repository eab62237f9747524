// The sandbox's stand-in for App Bridge (https://shopify.dev/docs/api/app-home), loaded by the app's pages instead
// of cdn.shopify.com/shopifycloud/app-bridge.js. It offers what the app uses, with the real one's contract:
//   shopify.idToken()            a session token minted by the sandbox for this shop and app
//   fetch(...)                   requests to the app's own origin carry "Authorization: Bearer <token>" and are
//                                retried once with a new token on X-Shopify-Retry-Invalid-Session-Request
//   shopify.toast.show(m, opts)  a toast in the admin
//   <s-app-nav>                  the links become the admin's sidebar items for the app
//   <s-page heading> + slots     the admin's title bar (breadcrumb-actions, primary-action, secondary-actions)
//   <form data-save-bar>         the contextual save bar while the form differs from its first state;
//                                Save submits the form, Discard resets it (data-discard-confirmation asks first)
//   shopify.saveBar.leaveConfirmation()  resolves once leaving is allowed (asks while a save bar shows)
//   shopify.environment.embedded whether the page runs inside the (sandbox) admin
// Inside the admin frame it talks to the frame page (sandbox/shopify/static/admin-frame.js) with postMessage.
(function () {
  "use strict";
  var adminOrigin = "__ADMIN_ORIGIN__";
  var framed = window.parent !== window;
  var nativeFetch = window.fetch.bind(window);
  var seq = 0;
  var pending = {};
  var actions = {};
  var baselines = new WeakMap();
  var lastDeclared = "";

  function apiKey() { var m = document.querySelector('meta[name="shopify-api-key"]'); return m ? m.content : ""; }
  function shop() {
    var params = new URLSearchParams(location.search);
    if (params.get("shop")) { return params.get("shop"); }
    var m = document.querySelector('meta[name="aftercare-shop"]');
    return m ? m.content : "";
  }
  function send(message) { if (framed) { window.parent.postMessage(message, adminOrigin); } }
  function ask(message) {
    var id = ++seq;
    message.requestId = id;
    return new Promise(function (resolve) { pending[id] = resolve; send(message); });
  }

  var shopify = window.shopify = window.shopify || {};
  shopify.config = { apiKey: apiKey(), shop: shop() };
  shopify.environment = { embedded: framed, mobile: false, pos: false };
  shopify.idToken = function () {
    var url = adminOrigin + "/__sandbox/session-token?client_id=" + encodeURIComponent(apiKey()) +
      "&shop=" + encodeURIComponent(shop());
    return nativeFetch(url).then(function (r) {
      if (!r.ok) { throw new Error("sandbox refused a session token: " + r.status); }
      return r.json();
    }).then(function (j) { return j.token; });
  };

  // Authenticated fetch: like App Bridge, only for the app's own origin and only without an Authorization header.
  window.fetch = async function (input, init) {
    var url = new URL(typeof input === "string" || input instanceof URL ? input : input.url, location.href);
    if (url.origin !== location.origin) { return nativeFetch(input, init); }
    var options = Object.assign({}, init || {});
    var headers = new Headers(options.headers || (input instanceof Request ? input.headers : undefined));
    if (headers.has("Authorization")) { return nativeFetch(input, init); }
    headers.set("Authorization", "Bearer " + await shopify.idToken());
    options.headers = headers;
    var response = await nativeFetch(input, options);
    if (response.status === 401 && response.headers.get("X-Shopify-Retry-Invalid-Session-Request") === "1") {
      headers.set("Authorization", "Bearer " + await shopify.idToken());
      response = await nativeFetch(input, options);
    }
    return response;
  };

  shopify.toast = {
    show: function (message, opts) {
      send({ type: "toast", message: String(message), isError: !!(opts && opts.isError) });
      if (!framed) { console.info("toast:", message); }
      return String(++seq);
    },
    hide: function () {},
  };

  // -- save bar ------------------------------------------------------------------------------------------------
  function snapshot(form) {
    var parts = [];
    new FormData(form).forEach(function (value, key) {
      if (key !== "id_token" && key !== "csrf_token") { parts.push(key + "=" + value); }
    });
    return parts.join("&");
  }
  function saveBarForms() { return Array.prototype.slice.call(document.querySelectorAll("form[data-save-bar]")); }
  function dirtyForm() {
    return saveBarForms().find(function (f) { return baselines.has(f) && baselines.get(f) !== snapshot(f); }) || null;
  }
  function showSaveBar() {
    var form = dirtyForm();
    send({ type: "saveBar", visible: !!form, discardConfirmation: !!(form && form.hasAttribute("data-discard-confirmation")) });
  }
  function watchForms() {
    saveBarForms().forEach(function (form) {
      if (baselines.has(form)) { return; }
      baselines.set(form, snapshot(form));
      form.addEventListener("input", showSaveBar);
      form.addEventListener("change", showSaveBar);
      form.addEventListener("submit", function () { baselines.set(form, snapshot(form)); showSaveBar(); });
      form.addEventListener("reset", function () { setTimeout(function () { baselines.set(form, snapshot(form)); showSaveBar(); }, 0); });
    });
  }
  function forgetChanges() { saveBarForms().forEach(function (f) { baselines.set(f, snapshot(f)); }); showSaveBar(); }
  shopify.saveBar = {
    leaveConfirmation: function () {
      if (!framed || !dirtyForm()) { return Promise.resolve(); }
      return ask({ type: "leaveConfirmation" }).then(function (leave) {
        if (!leave) { return new Promise(function () {}); }  // the merchant stayed: never resolves
        forgetChanges();
      });
    },
  };

  // -- what the page declares: navigation and title bar -------------------------------------------------------
  function label(el) { return (el.textContent || "").replace(/\s+/g, " ").trim(); }
  function action(el) {
    var id = el.getAttribute("data-ab-action") || String(++seq);
    el.setAttribute("data-ab-action", id);
    actions[id] = el;
    return { id: id, label: label(el) || el.getAttribute("accessibilityLabel") || "",
             variant: el.getAttribute("variant") || "", tone: el.getAttribute("tone") || "",
             disabled: el.hasAttribute("disabled") };
  }
  function declare() {
    watchForms();
    var nav = Array.prototype.slice.call(document.querySelectorAll("s-app-nav > s-link[href], s-app-nav > a[href], ui-nav-menu > a[href]"));
    var page = document.querySelector("s-page");
    var declared = {
      type: "declare",
      location: location.pathname + location.search,
      nav: nav.map(function (el) {
        var item = action(el);
        item.href = new URL(el.getAttribute("href"), location.href).pathname;
        item.home = el.getAttribute("rel") === "home";
        item.current = el.getAttribute("aria-current") === "page";
        return item;
      }),
      title: page ? page.getAttribute("heading") || "" : document.title,
      breadcrumb: page ? Array.prototype.map.call(page.querySelectorAll(':scope > [slot="breadcrumb-actions"]'), action) : [],
      primary: page ? Array.prototype.map.call(page.querySelectorAll(':scope > [slot="primary-action"]'), action) : [],
      secondary: page ? Array.prototype.map.call(page.querySelectorAll(':scope > [slot="secondary-actions"]'), action) : [],
    };
    var text = JSON.stringify(declared);
    if (text !== lastDeclared) { lastDeclared = text; send(declared); showSaveBar(); }
  }

  // -- what the admin asks -------------------------------------------------------------------------------------
  window.addEventListener("message", function (event) {
    if (event.origin !== adminOrigin || event.source !== window.parent || !event.data) { return; }
    var data = event.data;
    if (data.type === "answer" && pending[data.requestId]) {
      pending[data.requestId](data.value);
      delete pending[data.requestId];
    } else if (data.type === "click" && actions[data.id]) {
      if (data.confirmedLeave) { forgetChanges(); }
      var el = actions[data.id];
      var clicked = el.dispatchEvent(new MouseEvent("click", { bubbles: true, cancelable: true, composed: true }));
      // Nobody handled a link: App Bridge's default is to load it in the frame.
      if (clicked && el.hasAttribute("href")) { location.assign(new URL(el.getAttribute("href"), location.href).toString()); }
    } else if (data.type === "save") {
      var form = dirtyForm();
      if (form) { form.requestSubmit(); }
    } else if (data.type === "discard") {
      var changed = dirtyForm();
      if (changed) { changed.reset(); }
    }
  });

  ["pushState", "replaceState"].forEach(function (name) {
    var original = history[name].bind(history);
    history[name] = function () { var result = original.apply(null, arguments); declare(); return result; };
  });
  window.addEventListener("popstate", declare);

  function start() {
    declare();
    new MutationObserver(function () { declare(); }).observe(document.documentElement, { childList: true, subtree: true, attributes: true, attributeFilter: ["heading", "href", "aria-current", "disabled"] });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
