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
  // The referral form's offices (issue 20): without JavaScript "Show the offices" asks the server again;
  // with it, the list follows the institution, the services and the province as they are chosen — the
  // chosen institution's offices offering every chosen service, those in the province first. The server
  // checks the choice anyway.
  var officeList = document.getElementById("office-choices");
  var referralForm = document.getElementById("referral-form");
  if (officeList && referralForm) {
    var items = Array.prototype.slice.call(officeList.querySelectorAll("li[data-office]"));
    items.forEach(function (item, index) { item.setAttribute("data-order", String(index)); });
    var updateOffices = function () {
      var institution = referralForm.querySelector("[name=to_institution]");
      var province = referralForm.querySelector("[name=province]");
      var wanted = Array.prototype.map.call(
        referralForm.querySelectorAll("[name=services]:checked"), function (box) { return box.value; });
      var code = institution ? institution.value : "";
      var where = province ? province.value : "";
      items.forEach(function (item) {
        var offered = (item.getAttribute("data-services") || "").split(" ");
        var fits = item.getAttribute("data-institution") === code && wanted.every(function (service) {
          return offered.indexOf(service) !== -1;
        });
        item.hidden = !fits;
        var near = item.querySelector(".near");
        if (near) { near.hidden = !(where && item.getAttribute("data-province") === where); }
        var radio = item.querySelector("input[type=radio]");
        if (!fits && radio && radio.checked) {
          radio.checked = false;
          document.getElementById("office-auto").checked = true;
        }
      });
      items.slice().sort(function (a, b) {
        var nearA = where && a.getAttribute("data-province") === where ? 0 : 1;
        var nearB = where && b.getAttribute("data-province") === where ? 0 : 1;
        return nearA - nearB || Number(a.getAttribute("data-order")) - Number(b.getAttribute("data-order"));
      }).forEach(function (item) { officeList.appendChild(item); });
    };
    referralForm.addEventListener("change", function (event) {
      var name = event.target && event.target.name;
      if (name === "to_institution" || name === "services" || name === "province") { updateOffices(); }
    });
    var showButton = document.getElementById("show-offices");
    if (showButton) { showButton.hidden = true; }
  }
  // Marks the current page in the main menu for screen readers and sighted users.
  var here = window.location.pathname;
  document.querySelectorAll(".main-nav a").forEach(function (link) {
    var target = link.getAttribute("href");
    if (target === here || (target !== "/" && here.indexOf(target) === 0)) {
      link.setAttribute("aria-current", "page");
    }
  });
})();
