// The digitserve page: draw or upload a digit, show the prediction, the probabilities and
// the 28x28 image the model saw; or, in number mode, a whole number with a box on each digit.
// Same-origin requests only; no external resources.
"use strict";

const PEN_WIDTH = 20; // about MNIST's pen, relative to a digit drawn across most of the canvas
const PREDICT_DELAY_MS = 250;
// A phone photo (12 megapixels, 3-10 MB) is often over the service's 5 MB upload limit, and the
// model reads 28x28 pixels: larger images are sent as a smaller copy made here.
const SHRINK_OVER_BYTES = 1.5 * 1024 * 1024;
const SHRINK_TO_SIDE = 1600;
const JPEG_QUALITY = 0.9;
// Number mode draws on a canvas three digits wide, at the same pen and digit height as digit mode.
const MODES = {
  digit: {
    width: 280,
    height: 280,
    label: "Drawing area: draw one digit with a mouse, finger or pen",
    idle: "No digit yet.",
    failed: "No prediction.",
  },
  number: {
    width: 840,
    height: 280,
    label: "Drawing area: draw a number, its digits side by side, with a mouse, finger or pen",
    idle: "No number yet.",
    failed: "No number read.",
  },
};

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
const numberOutput = document.getElementById("number");
const canvasBoxes = document.getElementById("canvas-boxes");
const previewBoxes = document.getElementById("preview-boxes");

let mode = "digit";

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

function setPen() {
  context.lineWidth = PEN_WIDTH;
  context.lineCap = "round";
  context.lineJoin = "round";
  context.strokeStyle = "#000";
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
  clearBoxes(canvasBoxes); // they would no longer match the drawing
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
  const { width, height } = canvas;
  canvas.toBlob((blob) => blob && predict({ blob, name: "drawing.png", width, height, boxLayer: canvasBoxes }), "image/png");
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
  numberOutput.textContent = "?";
  clearBoxes(canvasBoxes);
  clearBoxes(previewBoxes);
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

function showNumber(reading, sent) {
  const percent = (value) => `${Math.round(value * 100)}%`;
  numberOutput.textContent = reading.number;
  const each = reading.digits.map((item) => `${item.digit} (${percent(item.confidence)})`).join(", ");
  summary.textContent = `The model reads ${reading.number}: ${each}.`;
  if (!sent.boxLayer || !sent.width || !sent.height) return;
  for (const { digit, confidence, box, is_digit: isDigit } of reading.digits) {
    const element = boxElement(`${digit} · ${percent(confidence)}`, box, sent.width, sent.height);
    element.classList.toggle("uncertain", isDigit === false); // greyed, as digit mode greys a doubtful guess
    sent.boxLayer.appendChild(element);
  }
  sent.boxLayer.dataset.boxes = String(reading.digits.length);
}

// A box is placed in percentages of the image that was sent, so it stays on its digit at any
// displayed size; a photo shrunk before sending keeps its proportions, so the same percentages
// place the box on the original that the preview shows.
function boxElement(text, [x, y, width, height], imageWidth, imageHeight) {
  const box = document.createElement("div");
  box.className = "box";
  box.style.left = `${(100 * x) / imageWidth}%`;
  box.style.top = `${(100 * y) / imageHeight}%`;
  box.style.width = `${(100 * width) / imageWidth}%`;
  box.style.height = `${(100 * height) / imageHeight}%`;
  const label = document.createElement("span");
  label.className = "box-label";
  // Above the box where there is room, else below it, else inside it, so it stays on the image.
  if (y / imageHeight < 0.12) label.classList.add((y + height) / imageHeight <= 0.88 ? "below" : "inside");
  label.textContent = text;
  box.appendChild(label);
  return box;
}

function clearBoxes(layer) {
  layer.replaceChildren();
  layer.dataset.boxes = "0";
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

// `upload` is {blob, name, width, height, boxLayer}, or a promise of it while a photo is being
// shrunk: the image to send, its size in pixels, and the layer over it where number mode draws boxes.
async function predict(upload) {
  const thisRequest = ++requestNumber;
  const readsNumber = mode === "number";
  clearError();
  summary.textContent = "Reading…";
  const sent = await upload;
  const { blob, name } = sent;
  if (thisRequest !== requestNumber) return;
  const form = new FormData();
  form.append("file", blob, name);
  try {
    const url = readsNumber ? "/read" : "/predict?include_image=true&accept_uncertain=true";
    const response = await fetch(url, { method: "POST", body: form });
    const body = await response.json().catch(() => ({}));
    if (thisRequest !== requestNumber) return; // a newer drawing, upload or mode has taken over
    if (!response.ok) {
      resetAnswer(MODES[mode].failed);
      showError(body.detail || `The server answered ${response.status}.`);
      return;
    }
    if (readsNumber) {
      resetAnswer("");
      showNumber(body, sent);
      return;
    }
    showAnswer(body);
    lastUpload = { blob, name, inputImage: body.input_image, overlay: null };
    if (heatmapToggle.checked) showHeatmap();
  } catch (error) {
    if (thisRequest !== requestNumber) return;
    resetAnswer(MODES[mode].failed);
    showError("The service could not be reached. Check your connection and try again.");
  }
}

// The file as it is when it is small, else a copy at most SHRINK_TO_SIDE pixels a side, each with
// its upright size in pixels; the file as it is, of unknown size, when the browser cannot decode
// it, so that the service gives its answer.
async function uploadable(file) {
  const undecoded = { blob: file, name: file.name };
  let bitmap;
  try {
    // "from-image" applies the EXIF orientation, so the copy, which carries no EXIF, is upright.
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch (error) {
    return undecoded;
  }
  // The service applies the EXIF orientation too, so its boxes are in these upright pixels.
  const original = { ...undecoded, width: bitmap.width, height: bitmap.height };
  try {
    const scale = Math.min(1, SHRINK_TO_SIDE / Math.max(bitmap.width, bitmap.height));
    if (scale === 1 && file.size <= SHRINK_OVER_BYTES) return original;
    const width = Math.max(1, Math.round(bitmap.width * scale));
    const height = Math.max(1, Math.round(bitmap.height * scale));
    const copy = await scaledCopy(bitmap, width, height, file.type !== "image/jpeg");
    // Re-encoding at the same size pays only when it makes the file smaller.
    if (!copy || (scale === 1 && copy.size >= file.size)) return original;
    const extension = copy.type === "image/png" ? ".png" : ".jpg";
    return { blob: copy, name: (file.name.replace(/\.[^.]*$/, "") || "image") + extension, width, height };
  } catch (error) {
    return original;
  } finally {
    bitmap.close();
  }
}

function scaledCopy(bitmap, width, height, mayBeTransparent) {
  const copy = document.createElement("canvas");
  copy.width = width;
  copy.height = height;
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
  clearBoxes(previewBoxes);
  predict(uploadable(file).then((sent) => ({ ...sent, boxLayer: preview.hidden ? null : previewBoxes })));
}

// Switching mode starts afresh: a canvas of the mode's size, no answer, and none still to come.
function setMode(name) {
  mode = name;
  document.body.dataset.mode = name;
  requestNumber++;
  clearTimeout(predictTimer);
  drawing = false;
  canvas.width = MODES[name].width;
  canvas.height = MODES[name].height;
  canvas.setAttribute("aria-label", MODES[name].label);
  setPen(); // resizing a canvas resets its drawing state
  clearCanvas();
  clearError();
  resetAnswer(MODES[name].idle);
}

function setUp() {
  buildBars();
  setPen();
  clearCanvas();
  document.body.dataset.mode = mode;

  canvas.addEventListener("pointerdown", startStroke);
  canvas.addEventListener("pointermove", continueStroke);
  canvas.addEventListener("pointerup", endStroke);
  canvas.addEventListener("pointercancel", endStroke);
  canvas.addEventListener("pointerleave", endStroke);
  document.getElementById("clear").addEventListener("click", () => {
    clearCanvas();
    clearError();
    resetAnswer(MODES[mode].idle);
    canvas.focus();
  });
  for (const choice of document.querySelectorAll('input[name="mode"]')) {
    choice.addEventListener("change", () => choice.checked && setMode(choice.value));
  }

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
