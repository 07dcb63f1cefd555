// The night board, live: every second the server sends every panel, and each panel's
// state, next notice and last notice's progress are rewritten from it (as text, never as
// markup). When what the forms carry back is out of date, the page says so rather than
// send a form the server would refuse as stale. Without JavaScript the page still shows
// the board as of its loading.
(function () {
  var board = document.getElementById("board");
  if (!board || !window.EventSource) { return; }
  var layout = board.getAttribute("data-layout");

  function element(tag, text, attributes) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    Object.keys(attributes || {}).forEach(function (name) {
      node.setAttribute(name, attributes[name]);
    });
    return node;
  }

  function channelRow(row) {
    var line = element("tr");
    line.appendChild(element("td", row.label));
    var cell = element("td");
    cell.appendChild(element("progress", row.percent + "%", {max: "100", value: row.percent}));
    line.appendChild(cell);
    line.appendChild(element("td", row.done + " / " + row.total));
    line.appendChild(element("td", row.left || "完了"));
    return line;
  }

  function noticeBlock(panel) {
    var block = element("div", null, {"class": "notice", "data-field": "notice"});
    var notice = panel.notice;
    if (!notice) {
      block.appendChild(element("p", "まだ連絡していません。"));
      return block;
    }
    var page = "/windows/" + panel.number + "/notices/" + encodeURIComponent(notice.tag);
    var head = element("p", "最新の連絡: ");
    head.appendChild(element("a", notice.tag, {href: page, "data-field": "tag"}));
    head.appendChild(document.createTextNode("（"));
    head.appendChild(element("span", notice.state, {"data-field": "notice-state"}));
    head.appendChild(document.createTextNode("） "));
    head.appendChild(element("span", notice.percent, {"data-field": "percent"}));
    head.appendChild(document.createTextNode("% "));
    head.appendChild(element("span", notice.left, {"data-field": "left"}));
    block.appendChild(head);
    var table = element("table", null, {"class": "counts"});
    var title = element("tr");
    ["チャネル", "進み具合", "完了 / 全体", "残り時間"].forEach(function (name) {
      title.appendChild(element("th", name));
    });
    table.appendChild(element("thead")).appendChild(title);
    var rows = table.appendChild(element("tbody", null, {"data-field": "channels"}));
    notice.channels.forEach(function (row) { rows.appendChild(channelRow(row)); });
    block.appendChild(table);
    var reach = element("p", "配達確認 ");
    reach.appendChild(element("span", notice.delivered, {"data-field": "delivered"}));
    reach.appendChild(document.createTextNode(" 件 ／ 受領確認 "));
    reach.appendChild(element("span", notice.confirmed, {"data-field": "confirmed"}));
    reach.appendChild(document.createTextNode(" 件 ／ 未達 "));
    reach.appendChild(element("span", notice.unreached, {"data-field": "unreached"}));
    reach.appendChild(document.createTextNode(" 件（送信から " + board.getAttribute("data-grace") +
      " 分以内の分を含む）"));
    if (notice.unreached) {
      reach.appendChild(document.createTextNode(" "));
      reach.appendChild(element("a", "CSV", {href: page + "/unreached.csv"}));
    }
    block.appendChild(reach);
    return block;
  }

  function show(panel) {
    var section = document.getElementById("night-" + panel.number);
    if (!section) { return; }
    section.className = "panel state-" + panel.state;
    ["time", "label"].forEach(function (name) {
      var field = section.querySelector("[data-field=" + name + "]");
      if (field) { field.textContent = panel[name]; }
    });
    section.querySelector("[data-field=next]").textContent = panel.next || "なし";
    var old = section.querySelector("[data-field=notice]");
    old.parentNode.replaceChild(noticeBlock(panel), old);
  }

  var events = new EventSource(board.getAttribute("data-source"));
  events.onmessage = function (event) {
    var update = JSON.parse(event.data);
    update.panels.forEach(show);
    document.getElementById("board-stale").hidden = JSON.stringify(update.layout) === layout;
  };
})();
