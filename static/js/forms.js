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

  // Evidence files: say at once when a chosen file is empty or over the limit (the server checks again,
  // and also checks that the content is what the name says), and warn before a save too large to send.
  function fileMessage(input, text) {
    var box = input.closest(".field");
    var id = input.id + "-error";
    var old = document.getElementById(id);
    if (old) { old.remove(); }
    input.setAttribute("aria-invalid", text ? "true" : "false");
    if (!text || !box) { return; }
    var p = document.createElement("p");
    p.className = "field-error";
    p.id = id;
    p.textContent = text;
    box.appendChild(p);
    input.setAttribute("aria-describedby", input.id + "-hint " + id);
  }
  document.addEventListener("change", function (evt) {
    var input = evt.target;
    if (!input.matches || !input.matches("input[type=file][data-max-bytes]")) { return; }
    var max = parseInt(input.getAttribute("data-max-bytes"), 10);
    var problems = [];
    Array.prototype.forEach.call(input.files, function (f) {
      if (f.size === 0) { problems.push("“" + f.name + "” is empty (0 bytes): choose another file."); }
      else if (f.size > max) {
        problems.push("“" + f.name + "” is over " + input.getAttribute("data-limit") + ": each file can be at most that.");
      }
    });
    var form = input.form;
    var cap = form && parseInt(form.getAttribute("data-max-request") || "0", 10);
    if (!problems.length && cap) {
      var total = 0;
      form.querySelectorAll("input[type=file]").forEach(function (el) {
        Array.prototype.forEach.call(el.files, function (f) { total += f.size; });
      });
      if (total > cap) { problems.push("These files are too large to send in one save: attach some, save, then edit to add the rest."); }
    }
    fileMessage(input, problems.join(" "));
  });

  // On a page that came back with errors, a "did you mean" or a duplicate warning, start at the explanation.
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("error-summary") || document.getElementById("near-names") ||
      document.getElementById("duplicates");
    if (box) { box.focus(); }
  });
})();
