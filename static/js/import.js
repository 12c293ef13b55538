// Import page: show a "working" line and block a second click while a file is checked or imported.
(function () {
  "use strict";
  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    if (!form.matches || !form.matches("form[data-loading]")) { return; }
    var note = document.getElementById(form.getAttribute("data-loading"));
    if (note) { note.hidden = false; }
    var buttons = form.querySelectorAll("button[type=submit]");
    // Disable after the submit has been taken so the clicked button's own value still travels.
    window.setTimeout(function () {
      Array.prototype.forEach.call(buttons, function (button) { button.disabled = true; });
    }, 0);
  });
})();
