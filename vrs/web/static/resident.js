"use strict";
// The resident's page: sign in with a development card (the card key signs the service's
// challenge here, in the browser, with WebCrypto), see one's doses, get a certificate.
(() => {
  const { t, api, el, showError, clearError, status } = VRS;
  const CONTEXT = new TextEncoder().encode("VRS resident sign-in challenge v1\u0000");
  const TOKEN_KEY = "vrs.resident.token";
  let me = null;
  let objectUrls = [];

  function b64uDecode(text) {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
    return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  }
  function b64uEncode(bytes) {
    let bin = "";
    for (const b of bytes) bin += String.fromCharCode(b);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function pemToDer(pem) {
    const body = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
    return Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
  }
  // WebCrypto gives r||s; the service (like X.509 tooling) expects a DER ECDSA-Sig-Value.
  function derInteger(bytes) {
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0) i++;
    let value = bytes.slice(i);
    if (value[0] & 0x80) value = Uint8Array.of(0, ...value);
    return Uint8Array.of(0x02, value.length, ...value);
  }
  function rawToDer(raw) {
    const half = raw.length / 2;
    const r = derInteger(raw.slice(0, half));
    const s = derInteger(raw.slice(half));
    return Uint8Array.of(0x30, r.length + s.length, ...r, ...s);
  }

  async function signIn(file) {
    let card;
    try {
      card = JSON.parse(await file.text());
      if (card.format !== "vrs-dev-card") throw new Error("format");
    } catch (err) {
      throw new Error(t("error.card"));
    }
    let key;
    try {
      key = await crypto.subtle.importKey(
        "pkcs8", pemToDer(card.card_private_key), { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
    } catch (err) {
      throw new Error(t("error.card"));
    }
    const made = await api("POST", "/v1/auth/challenge");
    const challenge = b64uDecode(made.challenge);
    const message = new Uint8Array(CONTEXT.length + challenge.length);
    message.set(CONTEXT);
    message.set(challenge, CONTEXT.length);
    const raw = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, message));
    const session = await api("POST", "/v1/auth/card", {
      json: {
        challenge: made.challenge,
        holder: card.holder,
        issuer_signature: card.issuer_signature,
        signature: b64uEncode(rawToDer(raw)),
      },
    });
    sessionStorage.setItem(TOKEN_KEY, session.token);
  }

  function token() { return sessionStorage.getItem(TOKEN_KEY); }

  async function load() {
    me = await api("GET", "/v1/me", { token: token() });
    document.getElementById("signin").hidden = true;
    document.getElementById("me").hidden = false;
    document.getElementById("me-name").textContent = me.family_name + " " + me.given_name;
    document.getElementById("me-kana").textContent = me.family_name_kana + " " + me.given_name_kana;
    document.getElementById("me-birth").textContent = me.birth_date;
    const rows = document.getElementById("doses");
    rows.replaceChildren();
    const select = document.getElementById("dose");
    select.replaceChildren(el("option", { value: "", text: t("resident.latest") }));
    if (!me.doses.length) {
      rows.append(el("tr", {}, el("td", { colspan: "5", text: t("resident.nodoses") })));
    }
    for (const dose of me.doses) {
      const state = dose.open_flags ? t("resident.flagged") : dose.status;
      rows.append(el("tr", {},
        el("td", { text: String(dose.dose_number) }), el("td", { text: dose.vaccinated_on }),
        el("td", { text: dose.product_name }), el("td", { text: dose.lot }), el("td", { text: state })));
      select.append(el("option", { value: String(dose.dose_number), text: t("resident.dose") + " " + dose.dose_number }));
    }
    document.getElementById("protected").hidden = !me.protected;
    document.getElementById("issue-form").hidden = me.protected;
    document.getElementById("suggestion").textContent =
      t("resident.suggestion") + " " + [me.suggested_family, me.suggested_given].filter(Boolean).join(" / ");
    document.getElementById("passport-family").value = me.suggested_family;
    document.getElementById("passport-given").value = me.suggested_given;
    const list = document.getElementById("certificates");
    list.replaceChildren();
    for (const cert of me.certificates) {
      const state = cert.status === "revoked" ? t("resident.revoked") : t("resident.active");
      const item = el("li", {}, el("span", { class: "uvci", text: cert.uvci }),
        " — " + t("resident.dose") + " " + cert.dose_number + ", " + cert.kind + ", " + state + " ");
      if (cert.status !== "revoked") {
        const button = el("button", { type: "button", class: "secondary", text: t("resident.show") });
        button.addEventListener("click", () => showCertificate(cert).catch(showError));
        item.append(button);
      }
      list.append(item);
    }
  }

  function certificatePath(uvci) {
    return "/v1/certificates/" + encodeURI(uvci).replace(/#/g, "%23");
  }

  async function showCertificate(cert) {
    for (const url of objectUrls) URL.revokeObjectURL(url);
    objectUrls = [];
    const base = certificatePath(cert.uvci);
    const png = await api("GET", base + "/qr.png", { token: token(), accept: "image/png" });
    const pdf = await api("GET", base + "/certificate.pdf", { token: token(), accept: "application/pdf" });
    const pngUrl = URL.createObjectURL(png);
    const pdfUrl = URL.createObjectURL(pdf);
    objectUrls.push(pngUrl, pdfUrl);
    const img = document.getElementById("qr");
    img.src = pngUrl;
    img.alt = t("resident.qr.alt", { dose: cert.dose_number, uvci: cert.uvci });
    document.getElementById("cert-expires").textContent = cert.expires_at;
    document.getElementById("cert-uvci").textContent = cert.uvci;
    const stem = "certificate-dose" + cert.dose_number;
    const pngLink = document.getElementById("download-png");
    pngLink.href = pngUrl;
    pngLink.download = stem + "-qr.png";
    const pdfLink = document.getElementById("download-pdf");
    pdfLink.href = pdfUrl;
    pdfLink.download = stem + ".pdf";
    document.getElementById("certificate").hidden = false;
    document.getElementById("cert-h").focus();
  }

  function passportVisible() {
    const overseas = document.querySelector("input[name=kind]:checked").value === "overseas";
    document.getElementById("passport").hidden = !overseas;
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("signin-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      clearError();
      const file = document.getElementById("card-file").files[0];
      if (!file) return;
      try {
        await signIn(file);
        await load();
        status(t("resident.signedin"));
      } catch (err) {
        showError(err);
      }
    });
    document.getElementById("signout").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      location.reload();
    });
    for (const radio of document.querySelectorAll("input[name=kind]")) {
      radio.addEventListener("change", passportVisible);
    }
    document.getElementById("issue-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      clearError();
      const form = event.target;
      const kind = form.querySelector("input[name=kind]:checked").value;
      const body = { kind };
      if (form.dose.value) body.dose = Number(form.dose.value);
      if (kind === "overseas") {
        body.passport_name = { family: form.family.value.trim().toUpperCase(), given: form.given.value.trim().toUpperCase() };
      }
      try {
        const cert = await api("POST", "/v1/certificates", { token: token(), json: body });
        await load();
        await showCertificate(cert);
      } catch (err) {
        showError(err);
      }
    });
    if (token()) load().catch(() => sessionStorage.removeItem(TOKEN_KEY));
  });
})();
