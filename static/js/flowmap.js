// Dyads page: draws the supplier → recipient flow map from its JSON block (#flow-data) on the vendored
// world map (world-atlas: Natural Earth 1:110m countries) with d3-geo and topojson-client. Width follows
// the pair's events, colour the highest stage it reached; each arrow opens the pair's ladder. The matrix
// under the map holds the same counts, so the page works without this file.
(function () {
  "use strict";

  var ATLAS = "/static/vendor/world-atlas-2.0.2/countries-110m.json";
  var SVG = "http://www.w3.org/2000/svg";
  // Stage 0 (context) to 6 (operational): grey through amber and green to the deep blue and purple of the
  // stage badges; "none" is a pair whose events are all denied or retracted (they reach no stage).
  var STAGE_COLOURS = {
    "0": "#98a2b3", "1": "#caa22a", "2": "#e8590c", "3": "#2f9e62", "4": "#1f7fbf", "5": "#1f4fa8",
    "6": "#6a3fb5", "none": "#c0c6cf"
  };
  var WIDTH = 960;
  var HEIGHT = 470;
  var atlas = null; // the parsed world map: fetched once per page load
  var loading = false;

  function readJson(id) {
    var el = document.getElementById(id);
    if (!el) { return null; }
    try { return JSON.parse(el.textContent); } catch (e) { return null; }
  }

  function svg(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) { parent.appendChild(node); }
    return node;
  }

  // Where a country's arrows start and end: the centre of its largest polygon, so France's arrows leave
  // from Europe, not from between Paris and French Guiana.
  function anchor(feature) {
    var geometry = feature.geometry;
    if (!geometry) { return null; }
    if (geometry.type !== "MultiPolygon") { return d3.geoCentroid(feature); }
    var best = null;
    var bestArea = -1;
    geometry.coordinates.forEach(function (rings) {
      var polygon = { type: "Polygon", coordinates: rings };
      var area = d3.geoArea(polygon);
      if (area > bestArea) { bestArea = area; best = polygon; }
    });
    return d3.geoCentroid(best);
  }

  function stageText(flow, stages) {
    return flow.stage === null ? "no stage reached (denied or retracted only)"
      : "highest stage " + flow.stage + " · " + stages[String(flow.stage)];
  }

  function render(box, data) {
    var world = topojson.feature(atlas, atlas.objects.countries);
    var byId = {};
    world.features.forEach(function (f) { byId[f.id] = f; });
    var projection = d3.geoEqualEarth().fitExtent([[6, 6], [WIDTH - 6, HEIGHT - 6]], { type: "Sphere" });
    var path = d3.geoPath(projection);
    var points = {};
    function point(code) {
      if (!(code in points)) {
        var feature = byId[data.numeric[code]];
        var at = feature ? anchor(feature) : null;
        points[code] = at ? projection(at) : null;
      }
      return points[code];
    }

    var map = svg("svg", {
      viewBox: "0 0 " + WIDTH + " " + HEIGHT, class: "flow-svg", role: "group",
      "aria-label": "Map of supplier to recipient flows; each arrow is a link to the pair's ladder"
    });
    var defs = svg("defs", {}, map);
    Object.keys(STAGE_COLOURS).forEach(function (stage) {
      var marker = svg("marker", {
        id: "flow-arrow-" + stage, viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "14",
        markerHeight: "14", markerUnits: "userSpaceOnUse", orient: "auto"
      }, defs);
      svg("path", { d: "M0,0L10,5L0,10z", fill: STAGE_COLOURS[stage] }, marker);
    });
    svg("path", { d: path({ type: "Sphere" }), class: "flow-sphere" }, map);
    svg("path", { d: path(world), class: "flow-land" }, map);
    svg("path", {
      d: path(topojson.mesh(atlas, atlas.objects.countries, function (a, b) { return a !== b; })),
      class: "flow-borders"
    }, map);

    var endLayer = svg("g", { class: "flow-ends" }, map); // under the arrows: their heads stay visible
    var flows = data.flows; // largest first (the server's order): smaller arrows lie on top, visible
    var most = Math.max.apply(null, flows.map(function (f) { return f.n; }).concat([1]));
    var missing = {};
    var ends = {};
    flows.forEach(function (flow) {
      var a = point(flow.s);
      var b = point(flow.r);
      if (!a) { missing[flow.s] = flow.sn; }
      if (!b) { missing[flow.r] = flow.rn; }
      if (!a || !b || flow.s === flow.r) { return; }
      ends[flow.s] = flow.sn;
      ends[flow.r] = flow.rn;
      var dx = b[0] - a[0];
      var dy = b[1] - a[1];
      // A curve bent to the left of the way it goes: A → B and B → A stay apart.
      var cx = (a[0] + b[0]) / 2 + dy * 0.22;
      var cy = (a[1] + b[1]) / 2 - dx * 0.22;
      var stage = flow.stage === null ? "none" : String(flow.stage);
      var label = flow.sn + " → " + flow.rn + ": " + flow.n.toLocaleString("en") + " event" +
        (flow.n === 1 ? "" : "s") + ", " + stageText(flow, data.stages);
      var link = svg("a", {
        href: flow.href, class: "flow-link", "aria-label": label + ". Open the ladder.",
        "hx-get": flow.href, "hx-target": "#dyad-results", "hx-swap": "outerHTML", "hx-push-url": "true"
      }, map);
      var d = "M" + a[0].toFixed(1) + "," + a[1].toFixed(1) + "Q" + cx.toFixed(1) + "," + cy.toFixed(1) + " " +
        b[0].toFixed(1) + "," + b[1].toFixed(1);
      var width = 1.2 + 7 * Math.sqrt(flow.n / most);
      // An invisible wider stroke under the arrow: a thin one would be hard to point at.
      svg("path", { d: d, class: "flow-hit", fill: "none", stroke: "transparent", "stroke-width": Math.max(width, 12).toFixed(1) }, link);
      var line = svg("path", {
        d: d, class: "flow flow-stage-" + stage, fill: "none", stroke: STAGE_COLOURS[stage],
        "stroke-width": width.toFixed(1), "marker-end": "url(#flow-arrow-" + stage + ")",
        "data-pair": flow.s + "-" + flow.r
      }, link);
      svg("title", {}, line).textContent = label;
    });
    Object.keys(ends).forEach(function (code) {
      var at = point(code);
      var dot = svg("circle", { cx: at[0].toFixed(1), cy: at[1].toFixed(1), r: "3", class: "flow-end" }, endLayer);
      svg("title", {}, dot).textContent = ends[code];
    });

    box.textContent = "";
    box.appendChild(map);
    box.appendChild(legend(data.stages));
    box.removeAttribute("aria-busy");
    var note = document.getElementById("flow-missing");
    var names = Object.keys(missing).map(function (k) { return missing[k]; }).sort();
    if (note) {
      note.hidden = names.length === 0;
      note.textContent = names.length ? "Too small for this map (their pairs are in the matrix): " + names.join(", ") + "." : "";
    }
    if (window.htmx) { window.htmx.process(box); }
  }

  function legend(stages) {
    var list = document.createElement("ul");
    list.className = "flow-legend";
    list.setAttribute("aria-label", "Colour of an arrow: the highest stage its pair reached");
    Object.keys(STAGE_COLOURS).forEach(function (stage) {
      var item = document.createElement("li");
      var swatch = svg("svg", { width: "22", height: "10", "aria-hidden": "true" }, item);
      svg("line", { x1: "1", y1: "5", x2: "21", y2: "5", stroke: STAGE_COLOURS[stage], "stroke-width": "4" }, swatch);
      item.appendChild(document.createTextNode(stage === "none" ? "no stage (denied or retracted)" : stage + " " + stages[stage]));
      list.appendChild(item);
    });
    return list;
  }

  function draw() {
    var box = document.getElementById("flow-map");
    var data = readJson("flow-data");
    if (!box || !data || !window.d3 || !window.topojson) { return; }
    if (atlas) { render(box, data); return; }
    if (loading) { return; }
    loading = true;
    box.setAttribute("aria-busy", "true");
    fetch(ATLAS).then(function (response) {
      if (!response.ok) { throw new Error(response.statusText); }
      return response.json();
    }).then(function (topology) {
      atlas = topology;
      loading = false;
      draw(); // the current page's data: the results may have changed while the map loaded
    }).catch(function () {
      loading = false;
      var current = document.getElementById("flow-map");
      if (current) { current.textContent = "The map could not be loaded; the matrix below has the same counts."; }
    });
  }

  document.addEventListener("htmx:afterSettle", draw);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
}());
