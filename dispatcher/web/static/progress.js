// Live progress on the notice page: the server's events move the bar. Without JavaScript
// the page still shows the counts as of its loading.
(function () {
  var bar = document.getElementById("progress");
  if (!bar || !window.EventSource) { return; }
  var events = new EventSource(bar.getAttribute("data-source"));
  events.onmessage = function (event) {
    var progress = JSON.parse(event.data);
    bar.value = progress.percent;
    document.getElementById("percent").textContent = progress.percent;
    document.getElementById("done").textContent = progress.done;
    document.getElementById("total").textContent = progress.total;
    document.getElementById("left").textContent = progress.left;
    if (progress.total && progress.done === progress.total) { events.close(); }
  };
})();
