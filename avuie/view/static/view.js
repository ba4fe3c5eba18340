// avuie view: mask overlays and the audio timeline. Plain JS, no build step, nothing fetched from elsewhere.
"use strict";

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("cannot load " + url));
    img.src = url;
  });
}

function hexToRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

// Paint every foreground pixel (value > 127) of each mask PNG in its colour onto the overlay canvas, whose pixel
// grid is the frame's: canvas pixel (x, y) is mask pixel (x, y).
async function drawMasks(canvas) {
  const masks = JSON.parse(canvas.dataset.masks || "[]");
  const w = canvas.width, h = canvas.height;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const out = ctx.createImageData(w, h);
  const scratch = document.createElement("canvas");
  scratch.width = w;
  scratch.height = h;
  const sctx = scratch.getContext("2d", { willReadFrequently: true });
  sctx.imageSmoothingEnabled = false;
  for (const mask of masks) {
    const img = await loadImage(mask.url);
    sctx.clearRect(0, 0, w, h);
    sctx.drawImage(img, 0, 0, w, h);
    const px = sctx.getImageData(0, 0, w, h).data;
    const [r, g, b] = hexToRgb(mask.color);
    for (let i = 0; i < px.length; i += 4) {
      if (px[i] > 127) {
        out.data[i] = r;
        out.data[i + 1] = g;
        out.data[i + 2] = b;
        out.data[i + 3] = 130;
      }
    }
  }
  ctx.putImageData(out, 0, 0);
  canvas.dataset.drawn = String(masks.length);
}

// Move each timeline's playhead with its audio; clicking a frame or an event span seeks the audio there.
function wireTimelines() {
  for (const block of document.querySelectorAll(".audio")) {
    const audio = block.querySelector("audio");
    const svg = block.querySelector("svg.timeline");
    if (!audio || !svg) continue;
    const head = svg.querySelector(".playhead");
    const duration = parseFloat(svg.dataset.duration);
    const gutter = parseFloat(svg.dataset.gutter), span = parseFloat(svg.dataset.span);
    audio.addEventListener("timeupdate", () => {
      const x = gutter + span * Math.min(audio.currentTime / duration, 1);
      head.setAttribute("x1", x);
      head.setAttribute("x2", x);
    });
  }
  const first = document.querySelector(".media audio");
  if (!first) return;
  for (const el of document.querySelectorAll("[data-seek]")) {
    el.addEventListener("click", () => {
      first.currentTime = parseFloat(el.dataset.seek);
      first.play();
    });
  }
}

// Rejects: a raw entry's lines are fetched the first time its <details> opens.
function wireRawEntries() {
  for (const details of document.querySelectorAll("details[data-src]")) {
    details.addEventListener("toggle", async () => {
      if (!details.open || details.dataset.loaded) return;
      details.dataset.loaded = "1";
      const response = await fetch(details.dataset.src);
      details.querySelector("pre").innerHTML = await response.text();
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  wireRawEntries();
  for (const canvas of document.querySelectorAll("canvas.mask-overlay")) {
    drawMasks(canvas).catch((err) => {
      canvas.dataset.error = String(err);
    });
  }
  wireTimelines();
});
