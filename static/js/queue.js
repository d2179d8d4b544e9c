// The approval queue from the keyboard: arrows move between requests, Enter opens one, Space
// selects it; after a decision the focus moves to the next request (or the previous one).
(function () {
  "use strict";

  function rows() {
    return Array.from(document.querySelectorAll("#queue-table .queue-row"));
  }

  function focusRow(row) {
    if (row) {
      row.focus();
    }
  }

  document.addEventListener("keydown", function (event) {
    var row = event.target.closest && event.target.closest(".queue-row");
    if (!row || event.target !== row) {
      return;
    }
    var all = rows();
    var index = all.indexOf(row);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      focusRow(all[index + (event.key === "ArrowDown" ? 1 : -1)]);
    } else if (event.key === "Enter") {
      event.preventDefault();
      row.querySelector(".open-request").click();
    } else if (event.key === " ") {
      event.preventDefault();
      row.querySelector("input[type=checkbox]").click();
    }
  });

  // Where the focus goes once a request leaves the table.
  var next = null;

  document.addEventListener("htmx:beforeSwap", function (event) {
    var item = event.detail.target.closest && event.detail.target.closest(".queue-item");
    if (item && event.detail.target === item && event.detail.xhr.status === 200) {
      var all = rows();
      var index = all.indexOf(item.querySelector(".queue-row"));
      next = all[index + 1] || all[index - 1] || null;
    }
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.target && event.detail.target.id && event.detail.target.id.indexOf("detail-") === 0) {
      var first = event.detail.target.querySelector("input, textarea");
      if (first) {
        first.focus();
      }
      return;
    }
    if (next) {
      focusRow(next);
      next = null;
    }
  });

  // A decision in bulk: the selected requests that left the table take their selection along.
  document.addEventListener("htmx:oobAfterSwap", function () {
    if (!document.activeElement || document.activeElement === document.body) {
      focusRow(rows()[0]);
    }
  });
})();
