// Signalboard's small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // Phones: "More filters" unfolds the filter panel below the search box (CSS folds it only with script).
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest && evt.target.closest(".panel-toggle");
    if (!button) { return; }
    var open = button.closest(".panel").classList.toggle("open");
    button.setAttribute("aria-expanded", open ? "true" : "false");
    button.textContent = open ? "Fewer filters" : "More filters";
  });

  // Keyboard users keep their place after an HTMX swap of the results: the pager moves focus to the
  // results' head; removing a filter chip moves it to the chip now in its place (or the head when none
  // is left), instead of dropping it to the top of the page with the link that was removed.
  var removedChip = -1;  // the position of the chip whose removal was asked for
  document.addEventListener("htmx:beforeRequest", function (evt) {
    var elt = evt.detail && evt.detail.elt;
    if (!elt || !elt.classList || !elt.classList.contains("chip-remove")) { removedChip = -1; return; }
    removedChip = Array.prototype.indexOf.call(document.querySelectorAll(".chip-remove"), elt);
  });
  document.addEventListener("htmx:afterSwap", function (evt) {
    var d = evt.detail || {};
    var id = d.target && d.target.id;
    var elt = d.requestConfig && d.requestConfig.elt;
    if ((id !== "results" && id !== "dyad-results") || !elt || !elt.closest) { return; }
    var results = document.getElementById(id);
    if (!results) { return; }
    var spot = null;
    if (elt.closest(".pager")) {
      spot = results.querySelector(".results-head");
    } else if (elt.closest(".chips")) {
      var chips = results.querySelectorAll(".chip-remove");
      spot = chips.length ? chips[Math.min(Math.max(removedChip, 0), chips.length - 1)]
        : (results.querySelector(".results-head") || results);
    }
    if (!spot) { return; }
    if (!spot.matches("a[href], button, input")) { spot.setAttribute("tabindex", "-1"); }
    spot.focus();
  });

  // Announce the new total (a short polite status) rather than making the whole list a live region.
  document.addEventListener("htmx:afterSettle", function (evt) {
    var id = evt.detail && evt.detail.target && evt.detail.target.id;
    var status = document.getElementById("results-status");
    if (!status || (id !== "results" && id !== "results-total" && id !== "dyad-results")) { return; }
    var total = document.querySelector("#results-total .total:not(.loading)");
    var dyads = document.getElementById("dyad-results");
    var text = total ? total.textContent : (dyads && dyads.getAttribute("data-status"));
    if (text) { status.textContent = text.replace(/\s+/g, " ").trim(); }
  });
})();
