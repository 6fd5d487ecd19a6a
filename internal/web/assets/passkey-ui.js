// Custos identity pages: passkeys. It wires up, with window.custosPasskey
// (/static/passkey.js, loaded first), the elements marked data-passkey:
//
//   data-passkey="login"     a button that signs in without a password
//   data-passkey="mfa"       a button that confirms a pending sign-in
//   data-passkey="register"  the form that creates a passkey
//
// They stay hidden without this script or without WebAuthn, and elements
// marked data-passkey-unsupported are shown instead. Each element names its
// two steps (data-begin, data-finish), where to go when it worked
// (data-next, or the "next" the server answers), the page's CSRF token when
// the steps need one (data-csrf) and its messages in the page's language
// (data-msg-*), shown in its [data-passkey-error] box.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  const pk = window.custosPasskey;
  const supported = !!pk && pk.supported();
  document.querySelectorAll("[data-passkey-unsupported]").forEach(function (el) {
    el.hidden = supported;
  });
  if (!supported) {
    return;
  }

  // A path of this site, never another origin.
  function local(url) {
    return typeof url === "string" && url.charAt(0) === "/" && url.charAt(1) !== "/" && url.charAt(1) !== "\\";
  }

  document.querySelectorAll("[data-passkey]").forEach(function (el) {
    const kind = el.dataset.passkey;
    const form = kind === "register" ? el : null;
    const button = form ? form.querySelector("button[type=submit]") : el.querySelector("[data-passkey-start]");
    const errorBox = el.querySelector("[data-passkey-error]");
    if (!button || !errorBox) {
      return;
    }
    // The status of a passkey the server did not accept.
    const rejected = form ? 400 : 401;
    const statusMessages = { 422: "msgInvalid", 429: "msgLocked" };
    statusMessages[rejected] = "msgRejected";

    function fail(name) {
      errorBox.textContent = el.dataset[name] || el.dataset.msgFailed;
      errorBox.hidden = false;
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }

    async function start() {
      errorBox.hidden = true;
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      const opts = { begin: el.dataset.begin, finish: el.dataset.finish, csrf: el.dataset.csrf };
      let res;
      try {
        if (form) {
          opts.name = form.elements.namedItem("name").value.trim();
          res = await pk.register(opts);
        } else {
          res = await pk.login(opts);
        }
      } catch (e) {
        const name = e && e.name;
        fail(name === "NotAllowedError" || name === "AbortError" ? "msgCancelled" : name === "InvalidStateError" ? "msgExists" : "msgFailed");
        return;
      }
      if (res.body && local(res.body.next)) {
        window.location.assign(res.body.next);
        return;
      }
      if (res.ok && local(el.dataset.next)) {
        window.location.assign(el.dataset.next);
        return;
      }
      if (res.status === 401 && local(el.dataset.unauthorized)) {
        window.location.assign(el.dataset.unauthorized);
        return;
      }
      fail(statusMessages[res.status] || "msgFailed");
    }

    if (form) {
      form.addEventListener("submit", function (e) {
        e.preventDefault();
        start();
      });
    } else {
      button.addEventListener("click", start);
    }
    el.hidden = false;
  });
});
