// Event form enhancements; without this file every button still works by re-posting the form.
(function () {
  "use strict";

  // "Remove" buttons delete their row in place instead of re-posting the whole form.
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest && evt.target.closest("[data-remove-row]");
    if (!button) { return; }
    var row = button.closest(".form-row");
    if (!row) { return; }
    evt.preventDefault();
    var section = row.closest("section");
    row.remove();
    // Keep keyboard users in the same section: focus the section's "add" button.
    var add = section && section.querySelector(".add-row");
    if (add) { add.focus(); }
  });

  // After HTMX appends a new row, put the cursor in its first field.
  document.addEventListener("htmx:afterSwap", function (evt) {
    var target = evt.detail && evt.detail.target;
    if (!target || !target.classList || !target.classList.contains("rows")) { return; }
    var rows = target.querySelectorAll(".form-row");
    var last = rows[rows.length - 1];
    var first = last && last.querySelector("input, select, textarea");
    if (first) { first.focus(); }
  });

  // On a page that came back with errors or a duplicate warning, start at the explanation.
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("error-summary") || document.getElementById("duplicates");
    if (box) { box.focus(); }
  });
})();
