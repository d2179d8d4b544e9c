// Every page: the header search (/ or Ctrl+K, an ARIA combobox over htmx's results), toasts
// announced from HX-Trigger, focus after htmx swaps, and Escape to cancel an inline editor.
(function () {
  "use strict";

  var TYPING = "input, textarea, select, [contenteditable]";

  // --- search from anywhere ----------------------------------------------------------------

  function searchBox() {
    return document.getElementById("quick-q");
  }

  function results() {
    return document.getElementById("quick-results");
  }

  function options() {
    return Array.from(document.querySelectorAll("#quick-results [role=option]"));
  }

  function activeOption() {
    return document.querySelector("#quick-results [role=option][aria-selected=true]");
  }

  function setActive(option) {
    var box = searchBox();
    options().forEach(function (each) {
      each.setAttribute("aria-selected", each === option ? "true" : "false");
    });
    if (option) {
      box.setAttribute("aria-activedescendant", option.id);
      option.scrollIntoView({ block: "nearest" });
    } else {
      box.removeAttribute("aria-activedescendant");
    }
  }

  function setOpen(open) {
    var box = searchBox();
    results().hidden = !open;
    // Expanded only over a list: "no results" is a message, announced by #quick-status.
    var expanded = open && Boolean(document.getElementById("quick-listbox"));
    box.setAttribute("aria-expanded", expanded ? "true" : "false");
    if (!open) {
      setActive(null);
    }
  }

  function moveActive(step) {
    var all = options();
    if (!all.length) {
      return;
    }
    if (results().hidden) {
      setOpen(true);
    }
    var index = all.indexOf(activeOption()) + step;
    if (index < 0) {
      index = all.length - 1;
    } else if (index >= all.length) {
      index = 0;
    }
    setActive(all[index]);
  }

  function onSearchKey(event) {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      moveActive(event.key === "ArrowDown" ? 1 : -1);
    } else if (event.key === "Enter") {
      var option = !results().hidden && activeOption();
      if (option) {
        event.preventDefault();
        window.location.assign(option.href);
      } else if (!event.target.value.trim()) {
        event.preventDefault(); // an empty search would only list everyone
      }
    } else if (event.key === "Escape") {
      event.preventDefault();
      if (!results().hidden) {
        htmx.trigger(event.target, "htmx:abort");
        setOpen(false);
      } else {
        event.target.value = "";
      }
    }
  }

  document.addEventListener("keydown", function (event) {
    var box = searchBox();
    if (!box) {
      return;
    }
    var chord = (event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "k";
    var slash = event.key === "/" && !event.ctrlKey && !event.metaKey && !event.altKey;
    if (event.target === box) {
      if (chord) {
        event.preventDefault();
        box.select();
      } else {
        onSearchKey(event);
      }
    } else if (chord || (slash && !event.target.closest(TYPING))) {
      event.preventDefault();
      box.focus();
      box.select();
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target !== results()) {
      return;
    }
    var count = options().filter(function (option) {
      return !option.classList.contains("quick-all");
    }).length;
    document.getElementById("quick-status").textContent = count
      ? count + (count === 1 ? " cliente" : " clientes")
      : "Sin resultados";
    setOpen(document.activeElement === searchBox());
  });

  // A click on a result must not blur the box first (the list would close under the pointer).
  document.addEventListener("pointerdown", function (event) {
    if (event.target.closest && event.target.closest("#quick-results")) {
      event.preventDefault();
    }
  });

  document.addEventListener("focusout", function (event) {
    var box = searchBox();
    if (event.target === box && !(event.relatedTarget && results().contains(event.relatedTarget))) {
      setOpen(false);
    }
  });

  // --- feedback: toasts named by the server (HX-Trigger: {"portal:toast": {"message": …}}) ---

  var TOAST_SECONDS = 6;

  document.addEventListener("portal:toast", function (event) {
    var region = document.getElementById("toasts");
    if (!region || !event.detail || !event.detail.message) {
      return;
    }
    var toast = document.createElement("p");
    toast.className = "toast";
    toast.textContent = event.detail.message;
    region.appendChild(toast);
    window.setTimeout(function () {
      toast.remove();
    }, TOAST_SECONDS * 1000);
  });

  // --- inline editors (forms marked data-inline-editor) -------------------------------------
  // Opening one focuses its first field (its first invalid field after an error); Escape
  // cancels it; closing it (saved or cancelled) gives the focus back to what opened it, found
  // again by its hx-get because the list it lives in was swapped too.

  var requestedBy = null;
  var opener = null;

  function editorIn(element) {
    if (!element.matches) {
      return null;
    }
    return element.matches("[data-inline-editor]")
      ? element
      : element.querySelector("[data-inline-editor]");
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    requestedBy = elt.matches("[hx-get]") && !elt.closest("[data-inline-editor]")
      ? elt.getAttribute("hx-get")
      : null;
  });

  // The page's htmx-config sets no settle delay, so the swap, htmx's processing of the new
  // content and this focus move happen in one task: no keystroke can land in between.
  document.addEventListener("htmx:afterSwap", function (event) {
    var swapped = event.target;
    var editor = editorIn(swapped);
    if (editor) {
      opener = opener || requestedBy;
    }
    // Any form refused in place (422): the focus goes to its first invalid field.
    var refused = event.detail.xhr && event.detail.xhr.status === 422;
    var field = refused && swapped.querySelector("[aria-invalid=true]");
    if (!field && editor) {
      field = editor.querySelector("input:not([type=hidden]), select, textarea");
    }
    if (field) {
      field.focus();
    } else if (!editor && opener && !document.querySelector("[data-inline-editor]")) {
      var back = Array.from(document.querySelectorAll("[hx-get]")).find(function (element) {
        return element.getAttribute("hx-get") === opener;
      });
      opener = null;
      if (back) {
        back.focus();
      }
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || !event.target.closest) {
      return;
    }
    var editor = event.target.closest("[data-inline-editor]");
    var cancel = editor && editor.querySelector("[data-cancel]");
    if (cancel) {
      event.preventDefault();
      cancel.click();
    }
  });

  // A table that scrolls sideways (on a phone) takes the keyboard focus, so the arrow keys can
  // scroll it; one that fits gives it back.
  function scrollersFocusable() {
    document.querySelectorAll("main table, main .table-scroll").forEach(function (element) {
      var scrolls = element.scrollWidth > element.clientWidth + 1;
      if (scrolls && !element.hasAttribute("tabindex")) {
        element.setAttribute("tabindex", "0");
        element.dataset.scroller = "";
      } else if (!scrolls && "scroller" in element.dataset) {
        element.removeAttribute("tabindex");
        delete element.dataset.scroller;
      }
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", scrollersFocusable);
  } else {
    scrollersFocusable();
  }
  document.addEventListener("htmx:afterSettle", scrollersFocusable);
  window.addEventListener("resize", scrollersFocusable);
})();
