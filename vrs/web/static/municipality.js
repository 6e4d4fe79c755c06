"use strict";
// The municipality console: CSV imports with the row-by-row result, the review queue,
// corrections / verify / void with a reason, a record's history, coupons, charts.
(() => {
  const { t, api, el, showError, clearError, status } = VRS;
  const KEY = "vrs.municipality";
  let auth = null;
  let action = null;

  function base() { return "/v1/municipalities/" + encodeURIComponent(auth.code); }

  function restore() {
    try { auth = JSON.parse(sessionStorage.getItem(KEY)); } catch (err) { auth = null; }
    return auth;
  }

  async function signIn(code, token) {
    auth = { code, token };
    await api("GET", base() + "/review?limit=1", { token });  // proves the credential and tenancy
    sessionStorage.setItem(KEY, JSON.stringify(auth));
  }

  function showConsole() {
    document.getElementById("signin").hidden = true;
    document.getElementById("console").hidden = false;
    status(t("muni.title") + " " + auth.code);
    loadReview().catch(showError);
    loadCharts().catch(showError);
  }

  // --- imports -------------------------------------------------------------------------
  function importResult(result) {
    const box = document.getElementById("import-result");
    box.replaceChildren(el("p", { class: "ok", text: t("muni.import.ok") }),
      el("pre", { text: JSON.stringify(result, null, 2) }));
  }
  function importProblem(err) {
    const box = document.getElementById("import-result");
    const body = err.body || {};
    box.replaceChildren(el("p", { class: "error", id: "import-failed", text: t("muni.import.failed") + " — " + body.code + ": " + (body.detail || "") }));
    if (Array.isArray(body.errors) && body.errors.length) {
      const rows = el("tbody");
      for (const e of body.errors) {
        rows.append(el("tr", { class: "import-error" }, el("td", { text: String(e.line) }),
          el("td", { text: e.column || "" }), el("td", { text: e.code + ": " + e.message })));
      }
      box.append(el("table", { "aria-label": t("muni.import.failed") },
        el("thead", {}, el("tr", {}, el("th", { scope: "col", text: t("muni.line") }),
          el("th", { scope: "col", text: t("muni.column") }), el("th", { scope: "col", text: t("muni.problem") }))),
        rows));
    }
  }
  async function upload(event) {
    event.preventDefault();
    clearError();
    const form = event.target;
    const file = form.file.files[0];
    if (!file) return;
    const kind = form.querySelector("input[name=kind]:checked").value;
    const path = base() + (kind === "residents" ? "/residents/import" : "/dose-records/import");
    const progress = document.getElementById("import-progress");
    progress.hidden = false;
    document.getElementById("import-result").textContent = t("muni.import.busy");
    try {
      importResult(await api("POST", path, { token: auth.token, body: file, contentType: "text/csv" }));
      await loadReview();
      await loadCharts();
    } catch (err) {
      if (err.body && err.body.code) importProblem(err); else showError(err);
    } finally {
      progress.hidden = true;
    }
  }

  // --- review --------------------------------------------------------------------------
  function recordText(r) {
    return "#" + r.dose_number + " " + r.vaccinated_on + " " + r.product + " " + r.lot + " @" + r.site_code +
      " (v" + r.version + (r.locked ? ", locked" : "") + ", " + r.status + ")";
  }
  async function loadReview() {
    const form = document.getElementById("review-filter");
    const query = new URLSearchParams();
    for (const name of ["rule", "severity", "site", "from", "to"]) {
      const value = form.elements[name].value.trim();
      if (value) query.append(name, value);
    }
    const page = await api("GET", base() + "/review?" + query.toString(), { token: auth.token });
    document.getElementById("review-total").textContent = page.total + " " + t("muni.review.total");
    const rows = document.getElementById("review");
    rows.replaceChildren();
    if (!page.items.length) rows.append(el("tr", {}, el("td", { colspan: "5", text: t("muni.review.empty") })));
    for (const item of page.items) {
      const r = item.record;
      const buttons = el("div");
      for (const [kind, label] of [["history", "muni.history"], ["correct", "muni.correct"], ["verify", "muni.verify"], ["void", "muni.void"]]) {
        const button = el("button", { type: "button", class: "secondary", "data-action": kind, text: t(label),
          "aria-label": t(label) + " — " + r.coupon_number + " #" + r.dose_number });
        button.addEventListener("click", () => startAction(kind, r).catch(showError));
        buttons.append(button, " ");
      }
      rows.append(el("tr", { class: "review-item", "data-rule": item.rule_code },
        el("td", { text: item.rule_code + " (" + item.severity + ")" }), el("td", { text: item.message }),
        el("td", { text: r.coupon_number }), el("td", { text: recordText(r) }), el("td", {}, buttons)));
    }
  }

  async function showHistory(record) {
    const history = await api("GET", base() + "/dose-records/" + record.id + "/history", { token: auth.token });
    const list = document.getElementById("history-list");
    list.replaceChildren();
    for (const ev of history.events) {
      const why = ev.reason ? " — " + ev.reason : "";
      list.append(el("li", { text: ev.at + " " + ev.kind + why + (ev.after ? " → " + JSON.stringify(ev.after) : "") }));
    }
    document.getElementById("history").hidden = false;
    document.getElementById("history-h").focus();
  }

  async function startAction(kind, record) {
    clearError();
    if (kind === "history") return showHistory(record);
    action = { kind, record };
    document.getElementById("action-h").textContent = t("muni." + kind) + " — " + recordText(record);
    document.getElementById("correct-fields").hidden = kind !== "correct";
    document.getElementById("reason-fields").hidden = kind === "verify";
    document.getElementById("a-reason").required = kind !== "verify";
    document.getElementById("action-error").hidden = true;
    document.getElementById("action-dialog").showModal();
  }

  async function applyAction(event) {
    event.preventDefault();
    const { kind, record } = action;
    const form = event.target;
    const path = base() + "/dose-records/" + record.id + "/" + (kind === "correct" ? "corrections" : kind);
    const body = { version: record.version };
    if (kind !== "verify") body.reason = form.reason.value.trim();
    if (kind === "correct") {
      let value = form.value.value.trim();
      if (form.field.value === "dose_number") value = Number(value);
      body.changes = { [form.field.value]: value };
    }
    try {
      const changed = await api("POST", path, { token: auth.token, json: body });
      document.getElementById("action-dialog").close();
      status(t("muni.done") + " — " + recordText(changed.record) + "; " + t("muni.revoked") + ": " + changed.revoked_certificates);
      await loadReview();
      await showHistory(changed.record);
      await loadCharts();
    } catch (err) {
      const box = document.getElementById("action-error");
      box.textContent = t("error.prefix") + ": " + err.message;
      box.hidden = false;
    }
  }

  // --- coupons -------------------------------------------------------------------------
  async function issueCoupons() {
    clearError();
    const result = await api("POST", base() + "/coupons", { token: auth.token, json: {} });
    document.getElementById("coupons-result").textContent = JSON.stringify(result);
  }

  let sheetUrl = null;
  async function printCoupons(event) {
    event.preventDefault();
    clearError();
    const dose = Number(event.target.dose.value);
    const pdf = await api("POST", base() + "/coupons/print", {
      token: auth.token, json: { dose, format: "pdf" }, accept: "application/pdf" });
    if (sheetUrl) URL.revokeObjectURL(sheetUrl);
    sheetUrl = URL.createObjectURL(pdf);
    const link = document.getElementById("print-download");
    link.href = sheetUrl;
    link.download = "coupons-" + auth.code + "-dose" + dose + ".pdf";
    link.hidden = false;
    link.focus();
  }

  // --- charts (inline SVG) -------------------------------------------------------------
  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  }
  function barChart(container, titleId, bars) {
    container.replaceChildren();
    if (!bars.length) { container.append(el("p", { text: t("muni.chart.empty") })); return; }
    const max = Math.max(9, ...bars.map((b) => b.value || 0));
    const rowH = 22, labelW = 150, width = 560;
    const chart = svg("svg", { viewBox: `0 0 ${width} ${rowH * bars.length + 4}`, width: "100%", role: "img", "aria-labelledby": titleId });
    bars.forEach((b, i) => {
      const y = i * rowH + 2;
      const label = svg("text", { x: 0, y: y + 15 });
      label.textContent = b.label;
      chart.append(label);
      // a suppressed cell (1-9 doses) is drawn as a faint bar up to 9
      const w = Math.max(1, ((width - labelW - 60) * (b.value === null ? 9 : b.value)) / max);
      const fill = b.value === null ? "#9db3d9" : "#0b3d91";
      chart.append(svg("rect", { x: labelW, y, width: w, height: rowH - 6, fill }));
      const value = svg("text", { x: labelW + w + 4, y: y + 15 });
      value.textContent = b.value === null ? "<10" : String(b.value);
      chart.append(value);
    });
    container.append(chart);
    // The same numbers as a table for screen readers and copying.
    const rows = el("tbody");
    for (const b of bars) rows.append(el("tr", {}, el("th", { scope: "row", text: b.label }), el("td", { text: b.value === null ? "<10" : String(b.value) })));
    container.append(el("table", { class: "sr-table", "aria-labelledby": titleId }, rows));
  }
  async function loadCharts() {
    const byDay = await api("GET", "/v1/stats/doses?group_by=date,municipality");
    const day = byDay.cells.filter((c) => c.municipality === auth.code)
      .sort((a, b) => (a.date < b.date ? -1 : 1)).slice(-31)
      .map((c) => ({ label: c.date, value: c.doses }));
    barChart(document.getElementById("chart-day"), "chart-day-h", day);
    const byProduct = await api("GET", "/v1/stats/doses?group_by=product,municipality");
    const product = byProduct.cells.filter((c) => c.municipality === auth.code)
      .map((c) => ({ label: c.product, value: c.doses }));
    barChart(document.getElementById("chart-product"), "chart-product-h", product);
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("signin-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      clearError();
      try {
        await signIn(event.target.code.value.trim(), event.target.token.value.trim());
        showConsole();
      } catch (err) {
        auth = null;
        showError(err);
      }
    });
    document.getElementById("import-form").addEventListener("submit", upload);
    document.getElementById("review-filter").addEventListener("submit", (event) => {
      event.preventDefault();
      loadReview().catch(showError);
    });
    document.getElementById("action-form").addEventListener("submit", applyAction);
    document.getElementById("action-cancel").addEventListener("click", () => document.getElementById("action-dialog").close());
    document.getElementById("issue-coupons").addEventListener("click", () => issueCoupons().catch(showError));
    document.getElementById("print-form").addEventListener("submit", (event) => printCoupons(event).catch(showError));
    if (restore()) showConsole();
  });
})();
