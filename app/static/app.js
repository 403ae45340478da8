// The digitserve page: draw or upload a digit, show the prediction, the probabilities and
// the 28x28 image the model saw. Same-origin requests only; no external resources.
"use strict";

const PEN_WIDTH = 20; // about MNIST's pen, relative to a digit drawn across most of the canvas
const PREDICT_DELAY_MS = 250;
// A phone photo (12 megapixels, 3-10 MB) is often over the service's 5 MB upload limit, and the
// model reads 28x28 pixels: larger images are sent as a smaller copy made here.
const SHRINK_OVER_BYTES = 1.5 * 1024 * 1024;
const SHRINK_TO_SIDE = 1600;
const JPEG_QUALITY = 0.9;

const canvas = document.getElementById("canvas");
const context = canvas.getContext("2d");
const fileInput = document.getElementById("file");
const dropzone = document.getElementById("dropzone");
const preview = document.getElementById("preview");
const errorBox = document.getElementById("error");
const summary = document.getElementById("summary");
const digitOutput = document.getElementById("digit");
const seenImage = document.getElementById("seen");
const bars = document.getElementById("bars");
const heatmapToggle = document.getElementById("heatmap-toggle");

let drawing = false;
let hasInk = false;
let predictTimer = null;
let requestNumber = 0;
let lastUpload = null; // {blob, name, inputImage, overlay} of the latest good prediction

function buildBars() {
  for (let digit = 0; digit < 10; digit++) {
    // Built node by node: the Content-Security-Policy forbids inline style attributes.
    const item = document.createElement("li");
    item.dataset.digit = String(digit);
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = String(digit);
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.style.width = "0%";
    bar.appendChild(fill);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = "-";
    item.append(label, bar, value);
    bars.appendChild(item);
  }
}

function clearCanvas() {
  context.fillStyle = "#fff";
  context.fillRect(0, 0, canvas.width, canvas.height);
  hasInk = false;
}

function canvasPoint(event) {
  const box = canvas.getBoundingClientRect();
  return {
    x: (event.clientX - box.left) * (canvas.width / box.width),
    y: (event.clientY - box.top) * (canvas.height / box.height),
  };
}

function startStroke(event) {
  event.preventDefault();
  drawing = true;
  canvas.setPointerCapture?.(event.pointerId);
  const point = canvasPoint(event);
  context.beginPath();
  context.moveTo(point.x, point.y);
  context.lineTo(point.x + 0.01, point.y);
  context.stroke();
  hasInk = true;
  clearTimeout(predictTimer);
}

function continueStroke(event) {
  if (!drawing) return;
  event.preventDefault();
  const point = canvasPoint(event);
  context.lineTo(point.x, point.y);
  context.stroke();
}

function endStroke() {
  if (!drawing) return;
  drawing = false;
  clearTimeout(predictTimer);
  predictTimer = setTimeout(predictCanvas, PREDICT_DELAY_MS);
}

function predictCanvas() {
  if (!hasInk) return;
  canvas.toBlob((blob) => blob && predict({ blob, name: "drawing.png" }), "image/png");
}

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
}

function clearError() {
  errorBox.hidden = true;
  errorBox.textContent = "";
}

function resetAnswer(text) {
  lastUpload = null;
  summary.textContent = text;
  digitOutput.textContent = "?";
  digitOutput.classList.remove("uncertain");
  seenImage.hidden = true;
  for (const item of bars.children) {
    item.classList.remove("best");
    item.querySelector(".bar span").style.width = "0%";
    item.querySelector(".value").textContent = "-";
  }
}

// What the page says when the service answers its best guess for an image that is not one digit.
const NOT_A_DIGIT = {
  several_digits: "Looks like several digits: draw or upload one digit at a time.",
  not_a_digit: "This doesn't look like a digit.",
};

function showAnswer(answer) {
  const percent = (value) => `${(value * 100).toFixed(1)}%`;
  if (answer.is_digit === false) {
    const verdict = NOT_A_DIGIT[answer.reason] || NOT_A_DIGIT.not_a_digit;
    summary.textContent = `${verdict} Best guess: ${answer.digit} (${percent(answer.confidence)}).`;
  } else {
    summary.textContent = `The model reads a ${answer.digit} with ${percent(answer.confidence)} confidence.`;
  }
  digitOutput.classList.toggle("uncertain", answer.is_digit === false);
  digitOutput.textContent = String(answer.digit);
  answer.probabilities.forEach((probability, digit) => {
    const item = bars.children[digit];
    item.classList.toggle("best", digit === answer.digit);
    item.querySelector(".bar span").style.width = percent(probability);
    item.querySelector(".value").textContent = percent(probability);
  });
  if (answer.input_image) {
    seenImage.src = answer.input_image;
    seenImage.hidden = false;
  }
}

async function showHeatmap() {
  if (!lastUpload) return;
  if (!heatmapToggle.checked) {
    seenImage.src = lastUpload.inputImage;
    seenImage.alt = "The 28 by 28 image the model saw";
    return;
  }
  if (!lastUpload.overlay) {
    const upload = lastUpload;
    const form = new FormData();
    form.append("file", upload.blob, upload.name);
    try {
      const response = await fetch("/explain?accept_uncertain=true", { method: "POST", body: form });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) {
        showError(body.detail || `The server answered ${response.status}.`);
        return;
      }
      upload.overlay = body.explanation.overlay;
    } catch (error) {
      showError("The service could not be reached. Check your connection and try again.");
      return;
    }
    if (upload !== lastUpload || !heatmapToggle.checked) return;
  }
  seenImage.src = lastUpload.overlay;
  seenImage.alt = "Heatmap over the 28 by 28 input: brighter, warmer pixels drove the prediction more";
}

// `upload` is {blob, name}, or a promise of it while a photo is being shrunk.
async function predict(upload) {
  const thisRequest = ++requestNumber;
  clearError();
  summary.textContent = "Reading…";
  const { blob, name } = await upload;
  if (thisRequest !== requestNumber) return;
  const form = new FormData();
  form.append("file", blob, name);
  try {
    const response = await fetch("/predict?include_image=true&accept_uncertain=true", { method: "POST", body: form });
    const body = await response.json().catch(() => ({}));
    if (thisRequest !== requestNumber) return; // a newer drawing or upload has taken over
    if (!response.ok) {
      resetAnswer("No prediction.");
      showError(body.detail || `The server answered ${response.status}.`);
      return;
    }
    showAnswer(body);
    lastUpload = { blob, name, inputImage: body.input_image, overlay: null };
    if (heatmapToggle.checked) showHeatmap();
  } catch (error) {
    if (thisRequest !== requestNumber) return;
    resetAnswer("No prediction.");
    showError("The service could not be reached. Check your connection and try again.");
  }
}

// The file as it is when it is small, else a copy at most SHRINK_TO_SIDE pixels a side; the
// file as it is too when the browser cannot decode it, so that the service gives its answer.
async function uploadable(file) {
  const original = { blob: file, name: file.name };
  let bitmap;
  try {
    // "from-image" applies the EXIF orientation, so the copy, which carries no EXIF, is upright.
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch (error) {
    return original;
  }
  try {
    const scale = Math.min(1, SHRINK_TO_SIDE / Math.max(bitmap.width, bitmap.height));
    if (scale === 1 && file.size <= SHRINK_OVER_BYTES) return original;
    const copy = await scaledCopy(bitmap, scale, file.type !== "image/jpeg");
    // Re-encoding at the same size pays only when it makes the file smaller.
    if (!copy || (scale === 1 && copy.size >= file.size)) return original;
    const extension = copy.type === "image/png" ? ".png" : ".jpg";
    return { blob: copy, name: (file.name.replace(/\.[^.]*$/, "") || "image") + extension };
  } catch (error) {
    return original;
  } finally {
    bitmap.close();
  }
}

function scaledCopy(bitmap, scale, mayBeTransparent) {
  const copy = document.createElement("canvas");
  copy.width = Math.max(1, Math.round(bitmap.width * scale));
  copy.height = Math.max(1, Math.round(bitmap.height * scale));
  const copyContext = copy.getContext("2d");
  copyContext.imageSmoothingQuality = "high";
  copyContext.drawImage(bitmap, 0, 0, copy.width, copy.height);
  // JPEG has no alpha channel: a drawing on a transparent background stays PNG, so that the
  // service can still tell its strokes from the background.
  const transparent = mayBeTransparent && hasTransparency(copyContext, copy.width, copy.height);
  return new Promise((resolve) => copy.toBlob(resolve, transparent ? "image/png" : "image/jpeg", JPEG_QUALITY));
}

function hasTransparency(imageContext, width, height) {
  const pixels = imageContext.getImageData(0, 0, width, height).data;
  for (let index = 3; index < pixels.length; index += 4) {
    if (pixels[index] < 255) return true;
  }
  return false;
}

function handleFile(file) {
  if (!file) return;
  if (preview.src) URL.revokeObjectURL(preview.src);
  if (file.type.startsWith("image/")) {
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
  } else {
    preview.hidden = true;
    preview.removeAttribute("src");
  }
  predict(uploadable(file));
}

function setUp() {
  buildBars();
  context.lineWidth = PEN_WIDTH;
  context.lineCap = "round";
  context.lineJoin = "round";
  context.strokeStyle = "#000";
  clearCanvas();

  canvas.addEventListener("pointerdown", startStroke);
  canvas.addEventListener("pointermove", continueStroke);
  canvas.addEventListener("pointerup", endStroke);
  canvas.addEventListener("pointercancel", endStroke);
  canvas.addEventListener("pointerleave", endStroke);
  document.getElementById("clear").addEventListener("click", () => {
    clearCanvas();
    clearError();
    resetAnswer("No digit yet.");
    canvas.focus();
  });

  heatmapToggle.addEventListener("change", showHeatmap);
  fileInput.addEventListener("change", () => handleFile(fileInput.files[0]));
  for (const type of ["dragenter", "dragover"]) {
    dropzone.addEventListener(type, (event) => { event.preventDefault(); dropzone.classList.add("dragging"); });
  }
  for (const type of ["dragleave", "drop"]) {
    dropzone.addEventListener(type, () => dropzone.classList.remove("dragging"));
  }
  dropzone.addEventListener("drop", (event) => {
    event.preventDefault();
    handleFile(event.dataTransfer.files[0]);
  });
  document.addEventListener("paste", (event) => {
    const item = [...event.clipboardData.items].find((entry) => entry.kind === "file");
    if (item) handleFile(item.getAsFile());
  });
}

setUp();
