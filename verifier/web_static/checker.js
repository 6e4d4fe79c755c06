"use strict";
// The checker's page: camera frames or a picked photo go to this device's own vrs-verify
// server (POST /verify); the verdict is shown large with name and birth date only.
(() => {
  const t = JSON.parse(document.getElementById("messages").textContent);
  const WORD = { VALID: t.valid, INVALID: t.invalid, ERROR: t.error };
  let stream = null;
  let timer = null;
  let busy = false;

  async function check(body) {
    const response = await fetch("/verify", { method: "POST", body, cache: "no-store" });
    return response.json();
  }

  function show(doc) {
    const box = document.getElementById("verdict");
    box.className = "verdict " + doc.status;
    document.getElementById("verdict-word").textContent = WORD[doc.status] || doc.status;
    document.getElementById("verdict-name").textContent = [doc.name, doc.name_standardised].filter(Boolean).join(" / ") || "—";
    document.getElementById("verdict-birth").textContent = doc.date_of_birth || "—";
    const reason = doc.code === "NO_QR_FOUND" ? t.noqr : doc.code;
    document.getElementById("verdict-code").textContent = reason || "—";
    box.hidden = false;
  }

  async function frame(video, canvas) {
    if (busy || !video.videoWidth) return;
    busy = true;
    try {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      canvas.getContext("2d").drawImage(video, 0, 0);
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));
      const doc = await check(blob);
      if (doc.code !== "NO_QR_FOUND") show(doc);
    } finally {
      busy = false;
    }
  }

  async function startCamera() {
    const video = document.getElementById("video");
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment", width: 1280, height: 720 } });
    } catch (err) {
      show({ status: "ERROR", code: t["camera.denied"] });
      return;
    }
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    const canvas = document.createElement("canvas");
    timer = setInterval(() => frame(video, canvas).catch(() => {}), 400);
    document.getElementById("camera-start").hidden = true;
    document.getElementById("camera-stop").hidden = false;
  }

  function stopCamera() {
    clearInterval(timer);
    if (stream) for (const track of stream.getTracks()) track.stop();
    stream = null;
    document.getElementById("video").hidden = true;
    document.getElementById("camera-start").hidden = false;
    document.getElementById("camera-stop").hidden = true;
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("camera-start").addEventListener("click", startCamera);
    document.getElementById("camera-stop").addEventListener("click", stopCamera);
    document.getElementById("photo-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const file = document.getElementById("photo").files[0];
      if (!file) return;
      show(await check(file));
      document.getElementById("verdict").focus?.();
    });
  });
})();
