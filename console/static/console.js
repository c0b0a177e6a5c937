// The statistics chart: ECharts (served by the console from static/vendor), data from the page.
(function () {
  var holder = document.getElementById("chart");
  var data = document.getElementById("chart-data");
  if (!holder || !data || typeof echarts === "undefined") return;
  var d = JSON.parse(data.textContent);
  var chart = echarts.init(holder, null, { renderer: "svg" });
  chart.setOption({
    animation: false,
    textStyle: { fontFamily: "Noto Sans CJK SC, sans-serif" },
    tooltip: { trigger: "axis" },
    legend: { data: ["入库件数", "澄清件数", "指数"] },
    grid: { left: 48, right: 48, bottom: 64 },
    xAxis: { type: "category", data: d.names, axisLabel: { interval: 0, rotate: 30 } },
    yAxis: [{ type: "value", name: "件" }, { type: "value", name: "指数", min: 0, max: 100 }],
    series: [
      { name: "入库件数", type: "bar", data: d.candidates },
      { name: "澄清件数", type: "bar", data: d.clarifications },
      { name: "指数", type: "line", yAxisIndex: 1, data: d.indicator }
    ]
  });
  window.addEventListener("resize", function () { chart.resize(); });
  holder.setAttribute("data-rendered", "true");
})();
