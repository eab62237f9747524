// The sandbox's "Shopify admin" around an embedded app: it draws what the app declares through App Bridge
// (sandbox/shopify/static/app-bridge.js) — the sidebar items from <s-app-nav>, the title bar from <s-page>, the
// contextual save bar, toasts and the leave confirmation — as the Shopify admin does.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("frame-config").textContent);
  var frame = document.getElementById("app-frame");
  var nav = document.getElementById("app-nav-items");
  var titleBar = document.getElementById("title-bar");
  var title = document.getElementById("title-bar-heading");
  var breadcrumb = document.getElementById("title-bar-breadcrumb");
  var buttons = document.getElementById("title-bar-actions");
  var saveBar = document.getElementById("save-bar");
  var toasts = document.getElementById("toasts");
  var dialog = document.getElementById("confirm");
  var saveBarShown = false;
  var discardConfirmation = false;

  function post(message) { frame.contentWindow.postMessage(message, config.appOrigin); }

  function confirmDialog(heading, text, leave, stay) {
    document.getElementById("confirm-heading").textContent = heading;
    document.getElementById("confirm-text").textContent = text;
    document.getElementById("confirm-leave").textContent = leave;
    document.getElementById("confirm-stay").textContent = stay;
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise(function (resolve) {
      dialog.addEventListener("close", function () { resolve(dialog.returnValue === "leave"); }, { once: true });
    });
  }

  function leaveAllowed() {
    if (!saveBarShown) { return Promise.resolve(true); }
    return confirmDialog("Leave page with unsaved changes?", "Leaving this page will delete all unsaved changes.",
                         "Leave page", "Stay");
  }

  function button(item, className) {
    var el = document.createElement(item.href !== undefined ? "a" : "button");
    el.textContent = item.label;
    el.className = className + (item.variant === "primary" ? " primary" : "") + (item.tone === "critical" ? " critical" : "");
    if (el.tagName === "A") { el.href = config.framePath + item.href.replace(/^\/admin\/?/, "/"); } else { el.type = "button"; }
    if (item.disabled) { el.disabled = true; }
    if (item.current) { el.setAttribute("aria-current", "page"); }
    el.addEventListener("click", function (event) {
      event.preventDefault();
      var leaving = el.tagName === "A";
      (leaving ? leaveAllowed() : Promise.resolve(true)).then(function (ok) {
        if (ok) { post({ type: "click", id: item.id, confirmedLeave: leaving && saveBarShown }); }
      });
    });
    return el;
  }

  function declare(data) {
    nav.replaceChildren();
    data.nav.filter(function (item) { return !item.home; }).forEach(function (item) {
      var li = document.createElement("li");
      li.appendChild(button(item, "nav-item"));
      nav.appendChild(li);
    });
    var home = data.nav.find(function (item) { return item.home; });
    document.getElementById("app-home").onclick = function (event) {
      event.preventDefault();
      if (home) { leaveAllowed().then(function (ok) { if (ok) { post({ type: "click", id: home.id, confirmedLeave: saveBarShown }); } }); }
    };
    title.textContent = data.title;
    document.title = data.title + " · " + config.appName + " · " + config.shopName;
    breadcrumb.replaceChildren.apply(breadcrumb, data.breadcrumb.map(function (item) { return button(item, "tb-breadcrumb"); }));
    buttons.replaceChildren.apply(buttons, data.secondary.map(function (item) { return button(item, "tb-button"); })
      .concat(data.primary.map(function (item) { return button(item, "tb-button primary"); })));
    titleBar.hidden = false;
    var path = data.location.replace(/^\/admin\/?/, "/");
    var query = new URLSearchParams(path.split("?")[1] || "");
    ["shop", "host", "embedded", "id_token", "notice"].forEach(function (k) { query.delete(k); });
    var shown = config.framePath + path.split("?")[0] + (query.toString() ? "?" + query : "");
    if (shown !== location.pathname + location.search) { history.replaceState(null, "", shown); }
  }

  function toast(message, isError) {
    var el = document.createElement("div");
    el.className = "toast" + (isError ? " error" : "");
    el.textContent = message;
    toasts.appendChild(el);
    setTimeout(function () { el.remove(); }, 5000);
  }

  window.addEventListener("message", function (event) {
    if (event.origin !== config.appOrigin || event.source !== frame.contentWindow || !event.data) { return; }
    var data = event.data;
    if (data.type === "declare") { declare(data); }
    if (data.type === "toast") { toast(data.message, data.isError); }
    if (data.type === "saveBar") {
      saveBarShown = data.visible;
      discardConfirmation = data.discardConfirmation;
      saveBar.hidden = !data.visible;
      document.body.classList.toggle("saving", data.visible);
    }
    if (data.type === "leaveConfirmation") {
      leaveAllowed().then(function (leave) { post({ type: "answer", requestId: data.requestId, value: leave }); });
    }
  });

  document.getElementById("save-bar-save").addEventListener("click", function () { post({ type: "save" }); });
  document.getElementById("save-bar-discard").addEventListener("click", function () {
    (discardConfirmation ? confirmDialog("Discard all unsaved changes?", "If you discard changes, you'll delete any edits you made since you last saved.",
                                         "Discard changes", "Continue editing") : Promise.resolve(true))
      .then(function (ok) { if (ok) { post({ type: "discard" }); } });
  });
})();
