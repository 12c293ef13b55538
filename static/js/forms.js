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

  // A field's message goes once the user changes that field: it spoke of the value that was sent, and
  // staying beside a corrected field it would read as still wrong. The server checks again on save.
  function clearError(evt) {
    var el = evt.target;
    if (!el.form || !el.form.classList.contains("event-form") || el.getAttribute("aria-invalid") !== "true") { return; }
    var box = el.closest(".date-group") || el.closest(".field");
    if (!box) { return; }
    box.querySelectorAll(".field-error").forEach(function (msg) { msg.remove(); });
    [box].concat(Array.prototype.slice.call(box.querySelectorAll("[aria-invalid], [aria-describedby]")))
      .forEach(function (node) {
        if (node.hasAttribute("aria-invalid")) { node.setAttribute("aria-invalid", "false"); }
        var ids = (node.getAttribute("aria-describedby") || "").split(/\s+/).filter(function (id) {
          return id && !/-error$/.test(id);
        });
        if (ids.length) { node.setAttribute("aria-describedby", ids.join(" ")); } else { node.removeAttribute("aria-describedby"); }
      });
  }
  document.addEventListener("input", clearError);
  document.addEventListener("change", clearError);

  // On a page that came back with errors, a "did you mean" or a duplicate warning, start at the explanation.
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("error-summary") || document.getElementById("near-names") ||
      document.getElementById("duplicates");
    if (box) { box.focus(); }
  });
})();
