package portal

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"
)

// webauthnPageData fills the security key pages.
type webauthnPageData struct {
	Enroll   bool
	ReturnTo string
	User     string
	// Why are the reasons policy gives for asking (issue 15.4).
	Why    []string
	Begin  string
	Finish string
	Nonce  string
}

// renderWebAuthnPage writes the verification or enrollment page: a
// button, a status line, and a small script (allowed by a per-response
// nonce) that runs the ceremony against the begin/finish endpoints.
func renderWebAuthnPage(w http.ResponseWriter, d webauthnPageData) {
	d.Nonce = newCSPNonce()
	q := "?" + url.Values{"rd": {d.ReturnTo}}.Encode()
	title := "Verify it's you"
	if d.Enroll {
		title = "Add a security key"
		d.Begin, d.Finish = EnrollBeginPath+q, EnrollFinishPath+q
	} else {
		d.Begin, d.Finish = WebAuthnBeginPath+q, WebAuthnFinishPath+q
	}
	var body bytes.Buffer
	_ = webauthnBody.Execute(&body, d)
	renderPage(w, http.StatusOK, pageData{Title: title, Body: template.HTML(body.String()), Nonce: d.Nonce})
}

var webauthnBody = template.Must(template.New("webauthn").Parse(`
{{if .Enroll}}<p>Register a security key or passkey for <b>{{.User}}</b>. ztproxy will ask for it when an application
needs extra verification. You can remove keys on the <a href="/.ztp/whoami">Who am I</a> page.</p>
{{else}}<p>This page needs extra verification: use a security key or passkey registered for <b>{{.User}}</b>.</p>{{end}}
{{range .Why}}<p class="muted">Why: {{.}}.</p>{{end}}
<div id="ztp-webauthn" data-mode="{{if .Enroll}}enroll{{else}}verify{{end}}" data-begin="{{.Begin}}" data-finish="{{.Finish}}">
{{if .Enroll}}<label>Name <input id="ztp-name" maxlength="64" value="Security key" autocomplete="off"></label>{{end}}
<button id="ztp-go" type="button">{{if .Enroll}}Add security key{{else}}Verify with security key{{end}}</button>
<p id="ztp-status" class="muted" role="status"></p></div>
<p class="muted">{{if not .Enroll}}Lost your key? Ask your administrator to reset your security keys. · {{end}}<a href="/.ztp/whoami">Cancel and go to Who am I</a></p>
<script nonce="{{.Nonce}}">
(function () {
  "use strict";
  var el = document.getElementById("ztp-webauthn"), btn = document.getElementById("ztp-go"),
      status = document.getElementById("ztp-status"), enroll = el.dataset.mode === "enroll";
  function dec(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    return Uint8Array.from(atob(s), function (c) { return c.charCodeAt(0); });
  }
  function enc(b) {
    var s = "", a = new Uint8Array(b);
    for (var i = 0; i < a.length; i++) s += String.fromCharCode(a[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  async function post(url, body) {
    var r = await fetch(url, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      body: JSON.stringify(body || {})});
    var j = await r.json().catch(function () { return {}; });
    if (!r.ok) throw new Error(j.message || ("HTTP " + r.status));
    return j;
  }
  async function run() {
    btn.disabled = true;
    status.textContent = enroll ? "Follow your browser's prompt to create the key…" : "Touch your security key or confirm your passkey…";
    try {
      if (!window.PublicKeyCredential) throw new Error("this browser does not support security keys");
      var o = (await post(el.dataset.begin)).publicKey, cred, out;
      o.challenge = dec(o.challenge);
      if (enroll) {
        o.user.id = dec(o.user.id);
        (o.excludeCredentials || []).forEach(function (c) { c.id = dec(c.id); });
        cred = await navigator.credentials.create({publicKey: o});
        out = {id: cred.id, rawId: enc(cred.rawId), type: cred.type, response: {
          clientDataJSON: enc(cred.response.clientDataJSON), attestationObject: enc(cred.response.attestationObject),
          transports: cred.response.getTransports ? cred.response.getTransports() : []}};
      } else {
        (o.allowCredentials || []).forEach(function (c) { c.id = dec(c.id); });
        cred = await navigator.credentials.get({publicKey: o});
        var r = cred.response;
        out = {id: cred.id, rawId: enc(cred.rawId), type: cred.type, response: {
          clientDataJSON: enc(r.clientDataJSON), authenticatorData: enc(r.authenticatorData),
          signature: enc(r.signature), userHandle: r.userHandle ? enc(r.userHandle) : undefined}};
      }
      out.clientExtensionResults = cred.getClientExtensionResults();
      var finish = el.dataset.finish;
      if (enroll) finish += "&name=" + encodeURIComponent(document.getElementById("ztp-name").value);
      var done = await post(finish, out);
      status.textContent = enroll ? "Key added. Taking you on…" : "Verified. Taking you back…";
      location.assign(done.redirect);
    } catch (e) {
      status.textContent = "That did not work: " + explain(e) + " You can try again.";
      btn.disabled = false;
    }
  }
  // explain turns a failure into a plain sentence with what to do: the
  // browser's own DOMException texts are technical and end in a period.
  function explain(e) {
    var name = e && e.name, msg;
    if (name === "NotAllowedError") {
      msg = enroll ? "the browser did not create a key. The prompt was cancelled or timed out, or the key could not check your PIN or fingerprint. Touch the key when it blinks."
                   : "no registered key answered. The prompt was cancelled or timed out, this key is not registered for you, or it could not check your PIN or fingerprint. Use the key you added (Who am I lists them).";
    } else if (name === "InvalidStateError") {
      msg = "this key is already registered for your account. Use another key, or cancel.";
    } else if (name === "SecurityError") {
      msg = "the browser refused security keys on this page. Open the proxy at its usual address, with a trusted certificate.";
    } else if (name === "NotSupportedError") {
      msg = "this browser or key cannot make the kind of key ztproxy asks for. Try another key or browser.";
    } else if (name === "ConstraintError") {
      msg = "this key cannot check a PIN or fingerprint. Set one up on the key, or use another key.";
    } else if (name === "AbortError") {
      msg = "the request was cancelled.";
    } else {
      msg = String(e && e.message ? e.message : e);
    }
    msg = msg.replace(/\s+$/, "");
    return /[.!?]$/.test(msg) ? msg : msg + ".";
  }
  btn.addEventListener("click", run);
  if (!enroll) run();
})();
</script>`))
