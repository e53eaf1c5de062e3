/* qmail: the people map (/map).  Plain JavaScript, no build step.

   Reads the page's figure#people-map, fetches its data-source (/map.json, with the session
   cookie) and draws the graph as SVG: a circle per person (its area grows with the number
   of people who write to them), coloured by company, a line per pair of people who share
   tasks (wider for more).  Each circle but the reader's own is a link to the contact.
   d3-force (web/vendor/, from npm) lays the graph out; the layout is computed before it
   is drawn, so nothing moves on screen.  Without JavaScript the table below the figure
   lists the same people.
*/
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  // d3's category10, darkened where white text or a white page needs more contrast
  var PALETTE = ["#1f63a8", "#c85a00", "#23802e", "#b8262b", "#7b52a6",
                 "#7a4c40", "#b43d8f", "#5f5f5f", "#7d7e12", "#117b87"];
  var NO_COMPANY = "#9aa1ad";

  function element(name, attributes, parent) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attributes).forEach(function (key) { node.setAttribute(key, attributes[key]); });
    if (parent) parent.appendChild(node);
    return node;
  }

  function radius(node) { return 7 + 4 * Math.sqrt(node.writers); }

  function colours(nodes) {
    var found = {};
    var keys = [];
    nodes.forEach(function (node) {
      if (node.company_domain && !(node.company_domain in found)) {
        found[node.company_domain] = PALETTE[keys.length % PALETTE.length];
        keys.push(node.company_domain);
      }
    });
    return found;
  }

  function layout(map, width, height) {
    var links = map.edges.map(function (edge) {
      return { source: edge.source, target: edge.target, tasks: edge.tasks };
    });
    var simulation = window.d3.forceSimulation(map.nodes)
      .force("link", window.d3.forceLink(links).id(function (node) { return node.email; })
        .distance(Math.min(width, height) / 3))
      .force("charge", window.d3.forceManyBody().strength(-400))
      .force("x", window.d3.forceX(width / 2).strength(0.06))
      .force("y", window.d3.forceY(height / 2).strength(0.1))
      .force("collide", window.d3.forceCollide(function (node) { return radius(node) + 14; }))
      .stop();
    simulation.tick(300);
    map.nodes.forEach(function (node) {
      var r = radius(node) + 2;
      node.x = Math.max(r, Math.min(width - r, node.x));
      node.y = Math.max(r, Math.min(height - r - 14, node.y));
    });
    return links;
  }

  function legend(figure, map, colour) {
    var list = document.createElement("ul");
    list.className = "map-legend";
    var seen = {};
    map.nodes.forEach(function (node) {
      var key = node.company_domain || "";
      if (key in seen) return;
      seen[key] = true;
      var item = document.createElement("li");
      var swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = key ? colour[key] : NO_COMPANY;
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(key ? node.company : "No company"));
      list.appendChild(item);
    });
    figure.appendChild(list);
  }

  function draw(figure, map) {
    var status = figure.querySelector(".map-status");
    if (!map.nodes.length) return;
    var width = Math.max(300, figure.clientWidth - 24);
    var height = Math.round(Math.max(300, Math.min(620, width * 0.7, 220 + 30 * map.nodes.length)));
    var links = layout(map, width, height);
    var colour = colours(map.nodes);
    var svg = element("svg", {
      viewBox: "0 0 " + width + " " + height, width: "100%", class: "map",
      role: "group", "aria-labelledby": "map-title"
    });
    var lines = element("g", { class: "edges" }, svg);
    links.forEach(function (link) {
      element("line", {
        x1: link.source.x, y1: link.source.y, x2: link.target.x, y2: link.target.y,
        "stroke-width": Math.min(8, 1 + Math.log2(link.tasks) * 1.5)
      }, lines);
    });
    var people = element("g", { class: "nodes" }, svg);
    map.nodes.forEach(function (node) {
      var who = node.name || node.email;
      var label = who + (node.company ? ", " + node.company : "") + ": " + node.writers +
        (node.writers === 1 ? " person writes" : " people write") + " to them";
      var holder = node.you ? element("g", { class: "you" }, people)
        : element("a", { href: "/contacts/" + encodeURIComponent(node.email),
                         "aria-label": label, class: "person" }, people);
      holder.setAttribute("data-email", node.email);
      element("circle", {
        cx: node.x, cy: node.y, r: radius(node),
        fill: node.company_domain ? colour[node.company_domain] : NO_COMPANY
      }, holder);
      element("title", {}, holder).textContent = node.you ? who + " (you)" : label;
      var text = element("text", { x: node.x, y: node.y + radius(node) + 13 }, holder);
      text.textContent = node.you ? "you" : who;
    });
    figure.insertBefore(svg, status);
    legend(figure, map, colour);
    status.textContent = map.nodes.length + (map.nodes.length === 1 ? " person" : " people") +
      ", " + map.edges.length + (map.edges.length === 1 ? " link" : " links") + ".";
    figure.setAttribute("data-drawn", "true");
  }

  function start() {
    var figure = document.getElementById("people-map");
    if (!figure || !window.d3 || !window.d3.forceSimulation) return;
    fetch(figure.getAttribute("data-source"), {
      credentials: "same-origin", headers: { Accept: "application/json" }
    }).then(function (answer) {
      if (!answer.ok) throw new Error("HTTP " + answer.status);
      return answer.json();
    }).then(function (map) {
      draw(figure, map);
    }).catch(function () {
      figure.querySelector(".map-status").textContent =
        "The map could not be drawn; the list below has the same people.";
    });
  }

  start();
})();
