/* The recycle page: "all" ticks every item, and the page says what the ticked items weigh (the most the recovered
 * lot may weigh). The form works without it. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("recycle-form");
    if (!form) return;
    const boxes = Array.from(form.querySelectorAll('input[name="item"]'));
    const all = document.getElementById("select-all");
    const status = document.getElementById("selected-grams");
    const update = () => {
      const ticked = boxes.filter((b) => b.checked);
      const grams = ticked.reduce((sum, b) => sum + Number(b.dataset.grams), 0);
      all.checked = ticked.length === boxes.length;
      status.textContent = `The ${ticked.length} items ticked weigh ${grams.toLocaleString("en")} g: the recovered lot can weigh at most that.`;
    };
    all.addEventListener("change", () => { boxes.forEach((b) => { b.checked = all.checked; }); update(); });
    boxes.forEach((b) => b.addEventListener("change", update));
    update();
  });
})();
