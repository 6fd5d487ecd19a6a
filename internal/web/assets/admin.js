// Custos administration pages: a confirmation before a destructive action.
// Buttons marked data-confirm ask first; without this script the forms
// simply submit (every action is still a POST with its CSRF token).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-confirm]").forEach(function (b) {
    var form = b.form;
    if (!form) {
      return;
    }
    form.addEventListener("submit", function (e) {
      if (!window.confirm(b.getAttribute("data-confirm"))) {
        e.preventDefault();
      }
    });
  });
});
