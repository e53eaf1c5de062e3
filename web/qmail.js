/* qmail: keyboard shortcuts.  Plain JavaScript, no build step, loaded with `defer` by
   templates/pages/base.html.  Progressive: every page works without it; it only moves
   focus and follows links that are already on the page.

   Keys (ignored while typing in a field, or with Ctrl, Alt or Meta held):
     j / k      next / previous row of a list ([data-row]; focus goes to its [data-open] link)
     o, Enter   open the current row (its [data-open] link)
     /          focus the search box (input[type=search])
     r          on a task page: focus the reply box, #reply-text (else the first
                textarea of a form.reply)
*/
(function () {
  "use strict";

  function typing(target) {
    return Boolean(target && (target.isContentEditable ||
      (target.closest && target.closest("input, textarea, select"))));
  }

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-row]"));
  }

  function current(list) {
    var active = document.activeElement;
    for (var i = 0; i < list.length; i++) {
      if (list[i].classList.contains("current") || list[i].contains(active)) return i;
    }
    return -1;
  }

  function move(step) {
    var list = rows();
    if (!list.length) return false;
    var index = current(list);
    index = index < 0 ? (step > 0 ? 0 : list.length - 1)
                      : Math.min(list.length - 1, Math.max(0, index + step));
    list.forEach(function (row) { row.classList.remove("current"); });
    var row = list[index];
    row.classList.add("current");
    var link = row.querySelector("[data-open]");
    if (link) link.focus();
    row.scrollIntoView({ block: "nearest" });
    return true;
  }

  function open() {
    var list = rows();
    var index = current(list);
    var link = index < 0 ? null : list[index].querySelector("[data-open]");
    if (!link) return false;
    window.location.assign(link.href);
    return true;
  }

  function focus(element) {
    if (!element) return false;
    element.focus();
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) return;
    var done = false;
    switch (event.key) {
      case "j": done = move(1); break;
      case "k": done = move(-1); break;
      case "o": done = open(); break;
      case "Enter":  // on a link or a button the browser follows it already
        if (!(event.target.closest && event.target.closest("a, button"))) done = open();
        break;
      case "/": done = focus(document.querySelector("input[type=search]")); break;
      case "r":
        done = focus(document.getElementById("reply-text") ||
                     document.querySelector("form.reply textarea"));
        break;
    }
    if (done) event.preventDefault();
  });

  var hint = document.querySelector("[data-keys]");
  if (hint) hint.hidden = false;
})();
