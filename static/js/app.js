// Signalboard's small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  // Move focus to the results after an HTMX swap triggered from the pager, for keyboard users.
  document.addEventListener("htmx:afterSwap", function (evt) {
    if (evt.detail && evt.detail.target && evt.detail.target.id === "results" && evt.detail.requestConfig
        && evt.detail.requestConfig.elt && evt.detail.requestConfig.elt.closest(".pager")) {
      var head = document.querySelector("#results .results-head");
      if (head) { head.setAttribute("tabindex", "-1"); head.focus(); }
    }
  });
})();
