/* qmail's contact form for another site's pages, in one tag:

     <script src="https://qmail.example.com/static/widget.js" data-title="Write to us" async></script>

   It draws the form where the tag is (or in the element named by data-target="#id"), in a
   shadow root so the page's styles and ours leave each other alone, and posts it to
   qmail's /intake form-encoded with Accept: application/json (a CORS "simple" request:
   no preflight, no cookies).  qmail answers only sites listed in intake.allowed_origins.
   Every text from the server is set as text, never as markup. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.src) return;
  var endpoint = new URL("../intake", script.src).href;
  var title = script.getAttribute("data-title") || "Write to us";
  var count = (window.__qmailWidgets = (window.__qmailWidgets || 0) + 1);

  var STYLE = [
    ":host { all: initial; display: block; }",
    ".qm { font: 15px/1.5 -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif;",
    "  color: #1f2328; background: #ffffff; border: 1px solid #d0d7de; border-radius: 8px;",
    "  padding: 1rem 1.2rem; max-width: 28rem; box-sizing: border-box; }",
    "h2 { font-size: 1.15rem; margin: 0 0 .6rem; }",
    "label { display: block; font-weight: 600; font-size: .9rem; margin: .6rem 0 .3rem; }",
    "input, textarea { font: inherit; color: inherit; width: 100%; box-sizing: border-box;",
    "  border: 1px solid #8c959f; border-radius: 6px; padding: .4rem .5rem; }",
    "textarea { resize: vertical; }",
    "input:focus, textarea:focus, button:focus-visible { outline: 2px solid #0969da;",
    "  outline-offset: 1px; }",
    "button { font: inherit; margin-top: .8rem; padding: .4rem 1rem; border: 0;",
    "  border-radius: 6px; background: #0969da; color: #ffffff; cursor: pointer; }",
    "button[disabled] { background: #57606a; }",
    ".status { margin: .6rem 0 0; }",
    ".status.problem { color: #a4231a; }",
    ".trap { position: absolute; left: -10000px; width: 1px; height: 1px; overflow: hidden; }",
  ].join("\n");

  function element(name, attributes, text) {
    var node = document.createElement(name);
    Object.keys(attributes || {}).forEach(function (key) {
      node.setAttribute(key, attributes[key]);
    });
    if (text) node.textContent = text;
    return node;
  }

  function field(form, name, label, attributes, multiline) {
    var id = "qmail-" + count + "-" + name;
    form.appendChild(element("label", { for: id }, label));
    var input = element(multiline ? "textarea" : "input", attributes);
    input.id = id;
    input.name = name;
    form.appendChild(input);
  }

  var host = element("div", { class: "qmail-widget" });
  var target = script.getAttribute("data-target");
  var place = target ? document.querySelector(target) : null;
  if (place) place.appendChild(host);
  else script.parentNode.insertBefore(host, script.nextSibling);
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  root.appendChild(element("style", {}, STYLE));

  var box = element("section", { class: "qm", "aria-labelledby": "qmail-" + count + "-title" });
  box.appendChild(element("h2", { id: "qmail-" + count + "-title" }, title));
  var form = element("form", { novalidate: "" });
  field(form, "email", "Your email address", { type: "email", required: "", autocomplete: "email", maxlength: "254" });
  field(form, "name", "Your name (optional)", { type: "text", autocomplete: "name", maxlength: "200" });
  field(form, "subject", "Subject", { type: "text", maxlength: "200" });
  field(form, "message", "Message", { rows: "6", required: "", maxlength: "20000" }, true);
  var trap = element("div", { class: "trap", "aria-hidden": "true" });
  form.appendChild(trap);
  field(trap, "website", "Leave this empty", { type: "text", tabindex: "-1", autocomplete: "off" });
  var button = element("button", { type: "submit" }, "Send");
  form.appendChild(button);
  var status = element("p", { class: "status", role: "status", "aria-live": "polite" });
  box.appendChild(form);
  box.appendChild(status);
  root.appendChild(box);

  function show(text, problem) {
    status.textContent = text;
    status.className = problem ? "status problem" : "status";
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!form.checkValidity()) {
      form.reportValidity();
      return;
    }
    button.disabled = true;
    show("Sending…", false);
    fetch(endpoint, {
      method: "POST",
      mode: "cors",
      credentials: "omit",
      headers: { Accept: "application/json" },
      body: new URLSearchParams(new FormData(form)),
    })
      .then(function (response) {
        return response.json().then(function (answer) {
          return { ok: response.ok, answer: answer };
        });
      })
      .then(function (result) {
        if (result.ok) {
          form.remove();
          show(String(result.answer.message || "Thank you."), false);
        } else {
          button.disabled = false;
          show(String(result.answer.error || "Your message could not be sent."), true);
        }
      })
      .catch(function () {
        button.disabled = false;
        show("Your message could not be sent. Please try again later.", true);
      });
  });
})();
