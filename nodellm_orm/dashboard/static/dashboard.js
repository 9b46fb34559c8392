// Draws the overview's charts from the JSON the server embedded in the page.
(function () {
  "use strict";
  var data = document.getElementById("charts-data");
  if (!data || typeof Plotly === "undefined") {
    return;
  }
  var charts = JSON.parse(data.textContent);
  Object.keys(charts).forEach(function (name) {
    var el = document.getElementById("chart-" + name);
    if (el) {
      Plotly.newPlot(el, charts[name].data, charts[name].layout, {
        displaylogo: false,
        responsive: true,
      });
    }
  });
  document.querySelectorAll("form.filters select").forEach(function (select) {
    if (select.form && select.form.getAttribute("action").slice(-1) === "/") {
      select.addEventListener("change", function () { select.form.submit(); });
    }
  });
})();
