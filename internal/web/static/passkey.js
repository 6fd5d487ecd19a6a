// passkey.js: register passkeys and log in with them (WebAuthn).
//
// Loaded as a file (<script src="/static/passkey.js"></script>), never
// inline, so pages keep a strict Content-Security-Policy. It defines
// window.custosPasskey:
//
//   custosPasskey.supported()                    -> boolean
//   custosPasskey.register({begin, finish, name, csrf})
//   custosPasskey.login({begin, finish, csrf})
//
// begin and finish are the URLs of the two steps of a ceremony. register
// creates a credential with navigator.credentials.create and posts it to
// finish?name=NAME; login gets an assertion with navigator.credentials.get
// (a passwordless login, or a second factor when the server lists the
// allowed credentials). csrf, when given, is sent as X-CSRF-Token.
//
// Both return a Promise of {ok, status, body}: the server's answer to the
// step that ended the ceremony (body is its parsed JSON, or null). They reject
// only when the browser or the authenticator refuses (a DOMException such as
// NotAllowedError or InvalidStateError) or the network fails.
(function () {
  "use strict";

  function toBase64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let s = "";
    for (let i = 0; i < bytes.length; i++) {
      s += String.fromCharCode(bytes[i]);
    }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function fromBase64url(s) {
    const b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) {
      bytes[i] = bin.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function decodeDescriptors(list) {
    return (list || []).map(function (c) {
      return Object.assign({}, c, { id: fromBase64url(c.id) });
    });
  }

  async function call(method, url, csrf, body) {
    const headers = { Accept: "application/json" };
    if (csrf) {
      headers["X-CSRF-Token"] = csrf;
    }
    const init = { method: method, headers: headers, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(url, init);
    let parsed = null;
    const text = await resp.text();
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        parsed = null;
      }
    }
    return { ok: resp.ok, status: resp.status, body: parsed };
  }

  // The fields every PublicKeyCredential has, as go-webauthn reads them.
  function credentialJSON(cred, response) {
    const out = {
      id: cred.id,
      rawId: toBase64url(cred.rawId),
      type: cred.type,
      response: response,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
    };
    if (cred.authenticatorAttachment) {
      out.authenticatorAttachment = cred.authenticatorAttachment;
    }
    return out;
  }

  async function register(opts) {
    const begun = await call("POST", opts.begin, opts.csrf);
    if (!begun.ok) {
      return begun;
    }
    const pk = begun.body.publicKey;
    pk.challenge = fromBase64url(pk.challenge);
    pk.user = Object.assign({}, pk.user, { id: fromBase64url(pk.user.id) });
    pk.excludeCredentials = decodeDescriptors(pk.excludeCredentials);
    const cred = await navigator.credentials.create({ publicKey: pk });
    const response = {
      clientDataJSON: toBase64url(cred.response.clientDataJSON),
      attestationObject: toBase64url(cred.response.attestationObject),
    };
    if (cred.response.getTransports) {
      response.transports = cred.response.getTransports();
    }
    let url = opts.finish;
    if (opts.name) {
      url += (url.indexOf("?") < 0 ? "?" : "&") + "name=" + encodeURIComponent(opts.name);
    }
    return call("POST", url, opts.csrf, credentialJSON(cred, response));
  }

  async function login(opts) {
    const begun = await call("POST", opts.begin, opts.csrf);
    if (!begun.ok) {
      return begun;
    }
    const pk = begun.body.publicKey;
    pk.challenge = fromBase64url(pk.challenge);
    if (pk.allowCredentials) {
      pk.allowCredentials = decodeDescriptors(pk.allowCredentials);
    }
    const cred = await navigator.credentials.get({ publicKey: pk });
    const response = {
      clientDataJSON: toBase64url(cred.response.clientDataJSON),
      authenticatorData: toBase64url(cred.response.authenticatorData),
      signature: toBase64url(cred.response.signature),
    };
    if (cred.response.userHandle && cred.response.userHandle.byteLength > 0) {
      response.userHandle = toBase64url(cred.response.userHandle);
    }
    return call("POST", opts.finish, opts.csrf, credentialJSON(cred, response));
  }

  function supported() {
    return typeof window.PublicKeyCredential === "function" && !!navigator.credentials;
  }

  window.custosPasskey = Object.freeze({ supported: supported, register: register, login: login });
})();
