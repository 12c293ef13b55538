// Timeline and dyads pages: draws the Chart.js charts from their JSON blocks and keeps the filter panel's
// free-text inputs in line with the results after an HTMX swap. The pages work without this file.
(function () {
  "use strict";

  // Kind colours follow the badge palette of app.css, darker so bars read on white.
  var KIND_COLOURS = {
    statement: "#8a94a6", denial: "#b0b7c3", offer: "#d99a00", request: "#f0c24b",
    agreement: "#2f9e62", financing: "#6cc391", economic: "#a7d8b9", transfer: "#1f5fbf",
    maintenance: "#6f9ae0", training: "#a9c2ee", deployment: "#6a3fb5", exercise: "#a988dd",
    strike: "#c0392b", assessment: "#5b6573"
  };
  var charts = {};

  function readJson(id) {
    var el = document.getElementById(id);
    if (!el) { return null; }
    try { return JSON.parse(el.textContent); } catch (e) { return null; }
  }

  // Both charts put time on a linear scale of epoch milliseconds (UTC) with their own month/year ticks:
  // Chart.js's "time" scale would need a date adapter library, and these charts only ever step by whole
  // months or years. So a gap of two years looks like two years, and a month without events stays empty.
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  var MONTH_STEPS = [1, 2, 3, 6, 12, 24, 60, 120, 240, 600];

  // "2025-10" -> [start of Oct 2025, start of Nov 2025]; "2025" -> the whole year.
  function bucketSpan(iso) {
    var parts = iso.split("-");
    var year = parseInt(parts[0], 10);
    if (parts.length === 1) { return [Date.UTC(year, 0, 1), Date.UTC(year + 1, 0, 1)]; }
    var month = parseInt(parts[1], 10) - 1;
    return [Date.UTC(year, month, 1), Date.UTC(year, month + 1, 1)];
  }

  // "2025-10" -> "Oct 2025"; "2025" stays.
  function bucketLabel(iso) {
    var parts = iso.split("-");
    return parts.length > 1 ? MONTHS[parseInt(parts[1], 10) - 1] + " " + parts[0] : parts[0];
  }

  // An x scale from `min` to `max` (ms) with a tick every few months or years (at least `minStep` months),
  // as few as keep the labels apart at the chart's width. centred: a tick sits in the middle of the month
  // (or year) it names, under its bar; else at its start.
  function timeScale(min, max, centred, minStep) {
    var stepMonths = minStep;
    return {
      // offset: false, min and max already hold the first and last buckets whole (bars would add a margin).
      type: "linear", min: min, max: max, offset: false, grid: { display: !centred },
      ticks: {
        autoSkip: false, maxRotation: 0,
        callback: function (value) {
          var d = new Date(value);
          return stepMonths >= 12 ? String(d.getUTCFullYear()) : MONTHS[d.getUTCMonth()] + " " + d.getUTCFullYear();
        }
      },
      afterBuildTicks: function (scale) {
        var spanMonths = (max - min) / (30.44 * 864e5);
        stepMonths = MONTH_STEPS[MONTH_STEPS.length - 1];
        for (var i = 0; i < MONTH_STEPS.length; i++) {
          var labelPx = MONTH_STEPS[i] >= 12 ? 48 : 78;  // "2025" or "Oct 2025" at 12px, and a gap
          if (MONTH_STEPS[i] >= minStep && spanMonths / MONTH_STEPS[i] * labelPx <= (scale.width || 300)) {
            stepMonths = MONTH_STEPS[i];
            break;
          }
        }
        var first = new Date(min);
        var months = first.getUTCFullYear() * 12 + first.getUTCMonth();
        months -= months % stepMonths;  // ticks on round months and years: Jan, Apr, Jul, Oct; 2020, 2025
        var ticks = [];
        for (; ; months += stepMonths) {
          var y = Math.floor(months / 12), m = months % 12;
          var start = Date.UTC(y, m, 1);
          if (start > max) { break; }
          var at = centred ? (start + (stepMonths >= 12 ? Date.UTC(y + 1, 0, 1) : Date.UTC(y, m + 1, 1))) / 2 : start;
          if (at >= min && at <= max) { ticks.push({ value: at }); }
        }
        scale.ticks = ticks;
      }
    };
  }

  function titleOf(items) { return items.length ? items[0].raw.label : ""; }

  function drawTimeline() {
    var canvas = document.querySelector("canvas.timeline-chart");
    var data = readJson("chart-data");
    if (!canvas || !data || !window.Chart || !data.buckets.length) { return; }
    if (charts.timeline && charts.timeline.canvas === canvas) { return; }
    if (charts.timeline) { charts.timeline.destroy(); }
    // A bar stands over its whole month (or year): x is the bucket's middle.
    var spans = data.buckets.map(bucketSpan);
    var points = function (counts) {
      return counts.map(function (n, i) {
        return { x: (spans[i][0] + spans[i][1]) / 2, y: n, label: bucketLabel(data.buckets[i]) };
      });
    };
    charts.timeline = new window.Chart(canvas, {
      type: "bar",
      data: {
        datasets: data.series.map(function (s) {
          return { label: s.kind, data: points(s.data), backgroundColor: KIND_COLOURS[s.kind] || "#888", borderWidth: 0,
                   maxBarThickness: 56, barPercentage: 0.9, categoryPercentage: 1 };
        })
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12, boxHeight: 12 } },
                   tooltip: { callbacks: { title: titleOf } } },
        scales: {
          x: Object.assign(timeScale(spans[0][0], spans[spans.length - 1][1], true, data.granularity === "year" ? 12 : 1),
                           { stacked: true }),
          y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } }
        }
      }
    });
  }

  function drawLadder() {
    var canvas = document.querySelector("canvas.ladder-chart");
    var data = readJson("ladder-data");
    if (!canvas || !data || !window.Chart || !data.months.length) { return; }
    if (charts.ladder && charts.ladder.canvas === canvas) { return; }
    if (charts.ladder) { charts.ladder.destroy(); }
    // A point sits at the start of its month (of its year for events known only to the year).
    var spans = data.months.map(bucketSpan);
    var points = function (values) {
      return values.map(function (v, i) { return { x: spans[i][0], y: v, label: data.labels[i] }; });
    };
    charts.ladder = new window.Chart(canvas, {
      type: "line",
      data: {
        datasets: [{ label: "highest stage reached", data: points(data.reached), stepped: true, borderColor: "#1f5fbf",
                     backgroundColor: "rgba(31,95,191,.12)", fill: true, pointRadius: 3 },
                   { label: "highest stage that month", data: points(data.highest), showLine: false, borderColor: "#d99a00",
                     backgroundColor: "#d99a00", pointRadius: 4 }]
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { legend: { position: "bottom" },
                   tooltip: { callbacks: { title: titleOf, label: function (ctx) {
                     return ctx.dataset.label + ": " + ctx.parsed.y + " · " + (data.stages[ctx.parsed.y] || "");
                   } } } },
        scales: {
          x: timeScale(spans[0][0], spans[spans.length - 1][1], false, 1),
          y: { min: 0, max: 6, ticks: { stepSize: 1, callback: function (v) { return v + " " + (data.stages[v] || ""); } } }
        }
      }
    });
  }

  function drawAll() { drawTimeline(); drawLadder(); }

  // Values typed into "add" inputs when a request left, kept with that request, so its response clears
  // only what it took in (and not what was typed since).
  document.addEventListener("htmx:beforeRequest", function (evt) {
    var form = document.getElementById("filters");
    if (!form || evt.detail.elt !== form || !evt.detail.xhr) { return; }
    var sent = {};
    form.querySelectorAll("input.add-value").forEach(function (input) { sent[input.id] = input.value; });
    evt.detail.xhr.signalboardSent = sent;
  });

  function syncPanel(sent) {
    var state = readJson("filter-state");
    var form = document.getElementById("filters");
    if (!state || !form) { return; }
    var active = document.activeElement;
    [["q", "q"], ["f-from", "from"], ["f-to", "to"], ["f-rel", "reliability_max"]].forEach(function (pair) {
      var el = document.getElementById(pair[0]);
      if (el && el !== active && el.value !== state[pair[1]]) { el.value = state[pair[1]]; }
    });
    // The date boxes keep a refused value as typed (the server sends it back) and say it is wrong.
    [["f-from", "from"], ["f-to", "to"]].forEach(function (pair) {
      var el = document.getElementById(pair[0]);
      if (!el) { return; }
      var bad = state.errors.indexOf(pair[1]) !== -1;
      el.setAttribute("aria-invalid", bad ? "true" : "false");
      el.setAttribute("aria-describedby", bad ? "filter-errors date-help" : "date-help");
    });
    form.querySelectorAll("input.add-value").forEach(function (input) {
      var bad = state.errors.indexOf(input.name) !== -1;
      input.setAttribute("aria-invalid", bad ? "true" : "false");
      if (bad) { input.setAttribute("aria-describedby", "filter-errors"); } else { input.removeAttribute("aria-describedby"); }
      // The response took the value in (it now shows as a ticked box): empty the box for the next one.
      if (!bad && input.value && sent[input.id] === input.value) { input.value = ""; }
    });
  }

  // A text box commits once: Enter fires "change" and then "submit", and two requests would leave two
  // identical history entries (Back would seem to do nothing). So a text box's "change" never reaches the
  // form's hx-trigger; it asks for a submit on the next tick instead, which a real submit cancels.
  var deferred = null;
  function isTextBox(el) {
    return el.tagName === "INPUT" && (el.type === "text" || el.type === "search");
  }
  document.addEventListener("change", function (evt) {
    var el = evt.target;
    if (!el.form || el.form.id !== "filters" || !isTextBox(el)) { return; }
    evt.stopPropagation();
    if (el.id === "q") { return; }  // the search box updates as one types
    clearTimeout(deferred);
    deferred = setTimeout(function () { el.form.requestSubmit(); }, 0);
  }, true);
  document.addEventListener("submit", function (evt) {
    if (evt.target.id === "filters") { clearTimeout(deferred); }
  }, true);

  // A refused filter box stops looking wrong as soon as it is edited; the next answer marks it again if the
  // new value is refused too.
  document.addEventListener("input", function (evt) {
    var el = evt.target;
    if (el.form && el.form.id === "filters" && el.getAttribute("aria-invalid") === "true") {
      el.setAttribute("aria-invalid", "false");
    }
  });

  // Picking a datalist suggestion applies it at once (typing alone waits for Enter or leaving the box).
  document.addEventListener("input", function (evt) {
    var el = evt.target;
    if (!el.classList || !el.classList.contains("add-value")) { return; }
    if (evt.inputType === "insertReplacementText" || evt.inputType === undefined) {
      el.dispatchEvent(new Event("change", { bubbles: true }));
    }
  });

  // Totals, facet counts and the chart load in their own requests after the rows. A newer filter replaces
  // their placeholders; an answer for a placeholder no longer on the page is for an older filter: drop it.
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var elt = evt.detail.elt;
    if (elt && elt.classList && elt.classList.contains("lazy-aggregate") && !document.body.contains(elt)) {
      evt.detail.shouldSwap = false;
    }
  });

  document.addEventListener("htmx:afterSettle", function (evt) {
    var id = evt.detail && evt.detail.target && evt.detail.target.id;
    if (id === "results" || id === "dyad-results") {
      syncPanel((evt.detail.xhr && evt.detail.xhr.signalboardSent) || {});
    }
    drawAll();
  });
  document.addEventListener("htmx:historyRestore", drawAll);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
