/* Scanning pages (a recycler's intake, a retailer's sales). Written here; its only dependency is zxing-wasm's QR
 * reader (pinned through npm, served from /static/console/vendor), used where the browser has no BarcodeDetector.
 * - Each code (camera, typed, pasted) is looked up at once: the item and its state appear in the list (a typed
 *   code on Enter, as a barcode scanner that types sends it).
 * - The list is kept in sessionStorage: a reload, a failed write or an expired session loses nothing.
 * - One action records a step for every item, sent in chunks (each with its own key, so a chunk sent twice records
 *   nothing twice), with a progress bar and a result per item. */
(function () {
  "use strict";
  const CHUNK = 25;
  const $ = (id) => document.getElementById(id);

  document.addEventListener("DOMContentLoaded", () => {
    const page = $("scan-page");
    if (!page) return;
    const which = page.dataset.which;
    const storeKey = `circular-console-${which}`;
    const api = window.circularConsole;
    let basket = load();
    let busy = false;

    function load() {
      try { return JSON.parse(sessionStorage.getItem(storeKey) || "[]"); } catch (e) { return []; }
    }
    function save() { sessionStorage.setItem(storeKey, JSON.stringify(basket)); }
    const keyOf = (item) => `${item.gtin}/${item.serial}`;

    function render() {
      const list = $("basket");
      list.replaceChildren();
      for (const item of basket) {
        const li = document.createElement("li");
        li.dataset.serial = item.serial;
        const serial = document.createElement("strong");
        serial.className = "mono";
        serial.textContent = item.serial;
        const what = document.createElement("span");
        what.className = "what";
        what.textContent = `${item.product} · ${item.brand} · ${item.stateWords}` +
          (item.dropOffCode ? ` · return ${item.dropOffCode}` : "");
        li.append(serial, what);
        if (item.result) {
          const result = document.createElement("span");
          result.className = item.result.ok ? "result-ok" : "result-bad";
          result.textContent = item.result.ok ? `✓ ${item.result.stateWords}` : item.result.message;
          li.append(result);
        }
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "secondary";
        remove.textContent = "Remove";
        remove.setAttribute("aria-label", `Remove ${item.serial}`);
        remove.addEventListener("click", () => { basket = basket.filter((b) => b !== item); save(); render(); });
        li.append(remove);
        list.append(li);
      }
      const pending = basket.filter((b) => !(b.result && b.result.ok)).length;
      $("count").textContent = String(basket.length);
      const apply = $("apply");
      const label = ($("action").selectedOptions ? $("action").selectedOptions[0].textContent : apply.dataset.label);
      apply.textContent = `${label} ${pending} item${pending === 1 ? "" : "s"}`;
      apply.disabled = busy || pending === 0;
      const next = $("next");
      if (next) next.hidden = !basket.some((b) => b.result && b.result.ok);
    }

    async function add(code) {
      code = code.trim();
      if (!code) return;
      const answer = await api.call("/console/api/lookup", { code });
      if (!answer.ok) {
        $("codes-error").textContent = answer.data.message || "This code could not be read.";
        return false;
      }
      const item = answer.data.item;
      if (basket.some((b) => keyOf(b) === keyOf(item))) {
        $("last").textContent = `${item.serial} is in the list already.`;
        return true;
      }
      basket.push(item);
      save();
      render();
      $("last").textContent = `Added ${item.product} ${item.serial} (${item.brand}): ${item.stateWords}.`;
      if (navigator.vibrate) navigator.vibrate(60);
      return true;
    }

    $("typed").addEventListener("submit", async (event) => {
      event.preventDefault();
      $("codes-error").textContent = "";
      const lines = $("codes").value.split(/\n+/).map((l) => l.trim()).filter(Boolean);
      const failed = [];
      for (const line of lines) {
        if (!(await add(line))) failed.push(line);
      }
      $("codes").value = failed.join("\n");  // what could not be added stays, to be corrected
      if (failed.length > 1) $("codes-error").textContent = `${failed.length} lines could not be added: they are still above.`;
    });

    // Enter adds what was typed at once (a barcode scanner that types ends each code with Enter); Shift+Enter starts
    // a new line, and pasted lines wait for the button.
    $("codes").addEventListener("keydown", (event) => {
      if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
      event.preventDefault();
      $("typed").requestSubmit();
    });

    $("clear").addEventListener("click", () => { basket = []; save(); render(); $("last").textContent = "The list is empty."; });
    if ($("action").tagName === "SELECT") $("action").addEventListener("change", render);

    $("apply").addEventListener("click", async () => {
      const todo = basket.filter((b) => !(b.result && b.result.ok));
      if (!todo.length || busy) return;
      busy = true;
      render();
      const action = $("action").value;
      const box = $("progress-box");
      box.hidden = false;
      $("progress-text").textContent = `Sending ${todo.length}…`;
      $("progress").max = todo.length;
      $("progress").value = 0;
      let done = 0, ok = 0;
      for (let start = 0; start < todo.length; start += CHUNK) {
        const chunk = todo.slice(start, start + CHUNK);
        // A chunk whose answer was lost is sent again with the same key: the server answers with what it did then.
        const earlier = chunk[0].pendingKey;
        const key = earlier && chunk.every((b) => b.pendingKey === earlier) ? earlier : api.newKey();
        chunk.forEach((b) => { b.pendingKey = key; });
        save();
        const answer = await api.call("/console/api/steps", {
          key, action, items: chunk.map((b) => (b.dropOffCode && action === "collected"
            ? { gtin: b.gtin, serial: b.serial, dropOffCode: b.dropOffCode } : { gtin: b.gtin, serial: b.serial })),
        });
        if (!answer.ok) {
          $("progress-text").textContent = answer.data.message || "The server did not answer; nothing is lost: try again.";
          break;
        }
        for (const result of answer.data.results) {
          const item = chunk.find((b) => b.gtin === result.gtin && b.serial === result.serial);
          if (!item) continue;
          item.result = result;
          delete item.pendingKey;
          if (result.ok) { item.state = result.state; item.stateWords = result.stateWords; ok += 1; }
        }
        done += chunk.length;
        $("progress").value = done;
        $("progress-text").textContent = `${done} of ${todo.length} sent: ${ok} recorded.`;
        save();
        render();
      }
      busy = false;
      render();
      if (done === todo.length) {
        const failed = done - ok;
        $("progress-text").textContent = `${ok} of ${todo.length} recorded` + (failed ? `; ${failed} refused (see the list).` : ".");
      }
    });

    // -- the camera ------------------------------------------------------------------------------------------------
    let stream = null, timer = null, seen = new Map();
    async function decoder() {
      if ("BarcodeDetector" in window) {
        try {
          const formats = await window.BarcodeDetector.getSupportedFormats();
          if (formats.includes("qr_code")) {
            const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
            return async (video) => (await detector.detect(video)).map((c) => c.rawValue);
          }
        } catch (e) { /* fall back to zxing-wasm */ }
      }
      if (!window.ZXingWASM) {
        await new Promise((resolve, reject) => {
          const script = document.createElement("script");
          script.src = "/static/console/vendor/zxing-reader.js";
          script.onload = resolve;
          script.onerror = () => reject(new Error("the QR reader could not be loaded"));
          document.head.append(script);
        });
        window.ZXingWASM.prepareZXingModule({
          overrides: { locateFile: (path, prefix) => (path.endsWith(".wasm") ? "/static/console/vendor/zxing_reader.wasm" : prefix + path) },
        });
      }
      const canvas = document.createElement("canvas");
      const context = canvas.getContext("2d", { willReadFrequently: true });
      return async (video) => {
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        context.drawImage(video, 0, 0);
        const image = context.getImageData(0, 0, canvas.width, canvas.height);
        const results = await window.ZXingWASM.readBarcodes(image, { formats: ["QRCode"], tryHarder: true, maxNumberOfSymbols: 4 });
        return results.filter((r) => r.isValid).map((r) => r.text);
      };
    }

    $("camera-start").addEventListener("click", async () => {
      const status = $("camera-status");
      try {
        status.textContent = "Starting the camera…";
        const read = await decoder();
        stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
        const video = $("camera");
        video.srcObject = stream;
        video.hidden = false;
        await video.play();
        $("camera-start").hidden = true;
        $("camera-stop").hidden = false;
        status.textContent = "Point the camera at a QR code.";
        let reading = false;
        timer = setInterval(async () => {
          if (reading || video.readyState < 2) return;
          reading = true;
          try {
            for (const text of await read(video)) {
              const last = seen.get(text) || 0;
              if (Date.now() - last < 3000) continue;  // the same code in view: once every 3 s at most
              seen.set(text, Date.now());
              await add(text);
            }
          } catch (e) {
            status.textContent = `The QR reader failed: ${e.message}`;
          } finally {
            reading = false;
          }
        }, 250);
      } catch (e) {
        status.textContent = `No camera: ${e.message}. Type or paste the serials instead.`;
      }
    });
    $("camera-stop").addEventListener("click", () => {
      if (timer) clearInterval(timer);
      if (stream) stream.getTracks().forEach((t) => t.stop());
      $("camera").hidden = true;
      $("camera-start").hidden = false;
      $("camera-stop").hidden = true;
      $("camera-status").textContent = "The camera is off.";
    });

    render();
  });
})();
