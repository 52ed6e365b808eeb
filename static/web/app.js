/* Progressive enhancement only: every page works without JavaScript. No inline scripts (CSP). */
(function () {
  "use strict";
  // A form with data-confirm asks before submitting (irreversible actions: reject, cancel, void, revoke).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });
  // Opening an action's panel moves the focus to its first text box.
  document.querySelectorAll("details.action").forEach(function (details) {
    details.addEventListener("toggle", function () {
      if (details.open) {
        var input = details.querySelector("textarea, input:not([type=hidden])");
        if (input) { input.focus(); }
      }
    });
  });
  // The printable referral sheet's "Print" button (the page prints from the browser's menu too).
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
  // Marks the current page in the main menu for screen readers and sighted users.
  var here = window.location.pathname;
  document.querySelectorAll(".main-nav a").forEach(function (link) {
    var target = link.getAttribute("href");
    if (target === here || (target !== "/" && here.indexOf(target) === 0)) {
      link.setAttribute("aria-current", "page");
    }
  });
})();
