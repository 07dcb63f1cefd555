// The 経過報告 box's live SMS count: the update SMS is the template's text (for the
// audience's longest merchant name, worked out by the server) plus what is typed. The
// server checks again when the form is sent; this only tells the operator beforehand.
(function () {
  var GSM7 = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var GSM7_EXTENSION = "\f^{}\\[~]|€";

  function septets(text) {  // null: a character GSM-7 lacks
    var count = 0;
    for (var i = 0; i < text.length; i++) {
      if (GSM7.indexOf(text[i]) >= 0) { count += 1; }
      else if (GSM7_EXTENSION.indexOf(text[i]) >= 0) { count += 2; }
      else { return null; }
    }
    return count;
  }

  function segments(units, single, part) {
    return units <= single ? 1 : Math.ceil(units / part);
  }

  function count(box, output) {
    var text = box.value.trim();
    var base = Number(box.getAttribute("data-sms-units"));
    var most = Number(box.getAttribute("data-sms-max"));
    var gsm = box.getAttribute("data-sms-gsm7") === "yes" ? septets(text) : null;
    // JavaScript strings count UTF-16 units, as UCS-2 does
    var total = gsm === null ? base + text.length : base + gsm;
    var taken = gsm === null ? segments(total, 70, 67) : segments(total, 160, 153);
    var over = taken > most;
    output.textContent = "SMS: " + taken + " 通分（" + total + (gsm === null ? " 文字" : " 字") +
      "、上限 " + most + " 通）" + (over ? " 上限を超えています。短くしてください。" : "");
    output.className = over ? "sms-count over" : "sms-count";
  }

  Array.prototype.forEach.call(document.querySelectorAll("textarea[data-sms-units]"),
    function (box) {
      var output = box.parentNode.parentNode.querySelector("output.sms-count");
      if (!output) { return; }
      box.addEventListener("input", function () { count(box, output); });
      if (box.value) { count(box, output); }
    });
})();
