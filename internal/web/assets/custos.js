// Custos pages: our only script, progressive enhancement. It makes
// [data-print] buttons print the page (without it they stay hidden and the
// browser's own print command still works) and asks before forms marked
// data-confirm are sent.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-print]").forEach(function (b) {
    b.hidden = false;
    b.addEventListener("click", function () { window.print(); });
  });
  // Forms marked data-confirm ask before they are sent (a delete); without
  // the script they are sent at once, as any form.
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.dataset.confirm)) { e.preventDefault(); }
    });
  });
});
