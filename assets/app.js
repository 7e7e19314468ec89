// cocov web UI: progressive enhancement only. Every page works without this file; it adds
// auto-submitting selects, copy buttons, confirmations and live-updating regions.
(function () {
  "use strict";
  // Tells styles (and the browser tests) that the enhancements run.
  document.documentElement.dataset.js = "on";

  function each(selector, fn) {
    Array.prototype.forEach.call(document.querySelectorAll(selector), fn);
  }

  // A <select data-autosubmit> submits its form on change; its submit button is then redundant.
  each("select[data-autosubmit]", function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
  each("[data-hide-with-js]", function (el) { el.hidden = true; });

  // Read-only snippets select themselves on focus.
  each("[data-select-all]", function (el) {
    el.addEventListener("focus", function () { el.select(); });
  });

  // Copy buttons (hidden without JavaScript, where selecting the text is the way).
  each("[data-copy-target]", function (button) {
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    if (!target || !navigator.clipboard) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.value || target.textContent).then(function () {
        var label = button.textContent;
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = label; }, 2000);
      });
    });
  });

  // Destructive buttons ask first.
  each("[data-confirm]", function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });

  // The user menu (a <details>): Escape closes it and gives the focus back to its toggle, as
  // a menu button does; so does tabbing out of it, which would otherwise leave it open over
  // the field that now has the focus. (A click on nothing focusable leaves it open: Safari
  // does not focus the button clicked, so closing then would swallow the click.)
  each("details.user-menu", function (menu) {
    menu.addEventListener("keydown", function (event) {
      if (event.key !== "Escape" || !menu.open) { return; }
      menu.open = false;
      menu.querySelector("summary").focus();
    });
    menu.addEventListener("focusout", function (event) {
      if (menu.open && event.relatedTarget && !menu.contains(event.relatedTarget)) {
        menu.open = false;
      }
    });
  });

  // Live regions: an element with an id and data-live="<seconds>" is refreshed from the same
  // URL every so often, until the server renders it without data-live (work finished).
  each("[data-live][id]", function (region) {
    var seconds = Math.max(2, parseInt(region.getAttribute("data-live"), 10) || 5);
    function refresh() {
      fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (html === null) { return; }
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(region.id);
          if (!fresh) { return; }
          region.innerHTML = fresh.innerHTML;
          if (fresh.hasAttribute("data-live")) { setTimeout(refresh, seconds * 1000); }
          else { region.removeAttribute("data-live"); }
        })
        .catch(function () { setTimeout(refresh, seconds * 2000); });
    }
    setTimeout(refresh, seconds * 1000);
  });
})();
