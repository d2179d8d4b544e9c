// The approval queue from the keyboard: arrows move between requests, Enter opens one, Space
// selects it; after a decision the focus moves to the next request (or the previous one).
(function () {
  "use strict";

  function rows() {
    return Array.from(document.querySelectorAll("#queue-table .queue-row"));
  }

  function focusRow(row) {
    if (row && row.isConnected) {
      row.focus();
    }
  }

  document.addEventListener("keydown", function (event) {
    var row = event.target;
    if (!row.classList || !row.classList.contains("queue-row")) {
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

  // A decision swaps its request's tbody away: the focus goes to the neighbouring request once
  // the swap is done (the form that asked is gone by then, so its own events cannot be used).
  document.addEventListener("htmx:beforeSwap", function (event) {
    var item = event.detail.target;
    if (!item.classList || !item.classList.contains("queue-item") || event.detail.isError) {
      return;
    }
    var all = rows();
    var index = all.indexOf(item.querySelector(".queue-row"));
    var next = all[index + 1] || all[index - 1] || null;
    window.setTimeout(function () {
      focusRow(next);
    }, 0);
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.target;
    if (target.id && target.id.indexOf("detail-") === 0) {
      var first = target.querySelector("input:not([type=hidden]), textarea");
      if (first) {
        first.focus();
      }
    } else if (target.id === "queue-messages" && !document.activeElement.closest(".queue-row")) {
      focusRow(rows()[0]);  // after a decision in bulk
    }
  });
})();
