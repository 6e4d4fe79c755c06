"use strict";
// Shared by the pages: messages, API calls with the bearer token, problem display.
const VRS = (() => {
  const messages = JSON.parse(document.getElementById("messages").textContent);
  function t(key, values) {
    let text = messages[key] || key;
    for (const [name, value] of Object.entries(values || {})) {
      text = text.replace("{" + name + "}", String(value));
    }
    return text;
  }
  class ApiError extends Error {
    constructor(status, body) {
      super((body && (body.code + ": " + body.detail)) || String(status));
      this.status = status;
      this.body = body || {};
    }
  }
  async function api(method, path, { token, json, body, contentType, accept } = {}) {
    const headers = {};
    if (token) headers["Authorization"] = "Bearer " + token;
    if (json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(json); }
    else if (contentType) headers["Content-Type"] = contentType;
    headers["Accept"] = accept || "application/json";
    let response;
    try {
      response = await fetch(path, { method, headers, body, credentials: "omit", cache: "no-store" });
    } catch (err) {
      throw new ApiError(0, { code: "NETWORK", detail: t("error.network") });
    }
    if (!response.ok) {
      let problem = null;
      try { problem = await response.json(); } catch (err) { problem = null; }
      throw new ApiError(response.status, problem || { code: "HTTP_" + response.status, detail: response.statusText });
    }
    if (accept && accept !== "application/json") return response.blob();
    return response.status === 204 ? null : response.json();
  }
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child);
    return node;
  }
  function showError(err) {
    const box = document.getElementById("error");
    box.textContent = t("error.prefix") + ": " + (err.message || String(err));
    box.hidden = false;
  }
  function clearError() {
    const box = document.getElementById("error");
    box.hidden = true;
    box.textContent = "";
  }
  function status(text) { document.getElementById("status").textContent = text; }
  return { t, api, el, showError, clearError, status, ApiError };
})();
