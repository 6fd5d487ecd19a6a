// Custos identity pages: the only script. It makes [data-print] buttons
// print the page; without it they stay hidden and the browser's own print
// command still works.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-print]").forEach(function (b) {
    b.hidden = false;
    b.addEventListener("click", function () { window.print(); });
  });
});
