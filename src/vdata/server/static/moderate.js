// Keyboard moderation for /moderate (the page works without it: every action is a plain form button).
// j/k move between records, x selects the current one, b selects its whole batch, a approves and r rejects
// the selection (or the current record when nothing is selected), / focuses the reason box. r with an empty
// reason focuses the reason box first; Enter there then rejects.
(function () {
  "use strict";
  var form = document.getElementById("queue");
  if (!form) { return; }
  var reason = document.getElementById("reason");
  var rows = Array.prototype.slice.call(form.querySelectorAll("tr.adm-rec"));
  var current = -1;
  var pendingReject = false;

  function focusRow(i) {
    if (!rows.length) { return; }
    i = Math.max(0, Math.min(rows.length - 1, i));
    if (current >= 0 && rows[current]) { rows[current].classList.remove("adm-current"); }
    current = i;
    rows[i].classList.add("adm-current");
    rows[i].focus({ preventScroll: true });
    rows[i].scrollIntoView({ block: "nearest" });
  }

  function selected() {
    return form.querySelectorAll("input[name=id]:checked").length;
  }

  function decide(action) {
    if (selected() > 0) {
      document.getElementById(action + "-selected").click();
    } else if (current >= 0) {
      rows[current].querySelector("button[name=one][value^='" + action + ":']").click();
    }
  }

  function typing(target) {
    return target && (target.tagName === "INPUT" && target.type !== "checkbox" || target.tagName === "SELECT" || target.tagName === "TEXTAREA");
  }

  reason.addEventListener("keydown", function (event) {
    if (event.key === "Enter") {
      event.preventDefault();
      decide(pendingReject ? "reject" : "approve");
    } else if (event.key === "Escape") {
      pendingReject = false;
      reason.blur();
      focusRow(current < 0 ? 0 : current);
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    var row = rows[current];
    switch (event.key) {
      case "j": focusRow(current + 1); break;
      case "k": focusRow(current - 1); break;
      case "x":
        if (row) { var box = row.querySelector("input[name=id]"); box.checked = !box.checked; }
        break;
      case "b":
        if (row) {
          var batch = row.closest("section.adm-batch");
          var boxes = batch.querySelectorAll("input[name=id]");
          var all = Array.prototype.every.call(boxes, function (b) { return b.checked; });
          Array.prototype.forEach.call(boxes, function (b) { b.checked = !all; });
        }
        break;
      case "a": decide("approve"); break;
      case "r":
        if (reason.value.trim()) { decide("reject"); } else { pendingReject = true; reason.focus(); }
        break;
      case "/": pendingReject = false; reason.focus(); break;
      default: return;
    }
    event.preventDefault();
  });

  if (rows.length) { focusRow(0); }
}());
