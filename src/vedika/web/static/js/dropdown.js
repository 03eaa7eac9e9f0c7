// The model dropdown: a button and a listbox (WAI-ARIA "select-only combobox" pattern
// without typing: focus moves to the listbox, aria-activedescendant marks the option).
// The listbox is a popover of the button (`popover`, so the top layer and light
// dismiss come from the browser) and CSS anchor positioning places it (app.css,
// `.model-list`): below the button when it fits, else on the side with more room,
// capped to that room, so it is always fully inside the viewport.

import { el } from "./util.js";

export const BEST = {
  id: "best",
  name: "Best (auto-select)",
  description: "Picks a fitting model for each question and says why.",
  available: true,
};

let counter = 0;

export class ModelDropdown {
  constructor(root, { onChange } = {}) {
    this.root = root;
    this.button = root.querySelector("[data-testid=model-dropdown]");
    this.label = root.querySelector(".model-current");
    this.list = root.querySelector("[role=listbox]");
    this.onChange = onChange || (() => {});
    this.models = [BEST];
    this.value = "best";
    this.active = -1;
    this.which = "selected"; // the option to start on when it opens ("last" for ArrowUp)
    this.uid = `model-${++counter}`;
    this.list.id = `${this.uid}-list`;
    this.button.setAttribute("aria-controls", this.list.id);
    this.button.popoverTargetElement = this.list; // its click toggles the list (no light dismiss)
    this.#bind();
    this.#renderOptions();
  }

  get isOpen() {
    return this.list.matches(":popover-open");
  }

  setModels(models) {
    this.models = [BEST, ...models];
    if (!this.models.some((m) => m.id === this.value)) this.value = "best";
    this.#renderOptions();
  }

  /** Select a model by id (unknown ids fall back to Best). Returns the id kept. */
  select(id, { notify = false } = {}) {
    const model = this.models.find((m) => m.id === id && m.available !== false) || BEST;
    const changed = model.id !== this.value;
    this.value = model.id;
    this.label.textContent = model.id === "best" ? "Best" : model.name || model.id;
    this.button.title = `Model: ${model.name || model.id}`;
    this.button.setAttribute("aria-label", `Model: ${model.id === "best" ? "Best (auto-select)" : model.name || model.id}`);
    for (const option of this.list.children) option.setAttribute("aria-selected", String(option.dataset.value === model.id));
    if (notify && changed) this.onChange(model.id);
    return model.id;
  }

  // ---------------------------------------------------------------- DOM

  #renderOptions() {
    const options = this.models.map((model, i) => {
      const chips = [];
      if (model.speed) chips.push(el("span", { class: "chip", title: "Speed" }, `⚡ ${model.speed}`));
      if (model.cost) chips.push(el("span", { class: "chip", title: "Cost" }, `◈ ${model.cost}`));
      if (Number.isFinite(model.coins_per_message)) chips.push(el("span", { class: "chip", title: "Coins per message" }, `${model.coins_per_message} coin${model.coins_per_message === 1 ? "" : "s"}`));
      const bestFor = Array.isArray(model.best_for) ? model.best_for.join(", ") : model.best_for;
      return el(
        "li",
        {
          id: `${this.uid}-opt-${i}`,
          role: "option",
          class: "model-option",
          "aria-selected": String(model.id === this.value),
          "aria-disabled": model.available === false ? "true" : false,
          dataset: { value: model.id, testid: `model-option-${model.id}` },
        },
        el("span", { class: "model-name" }, model.name || model.id, model.available === false ? el("span", { class: "muted", text: " · unavailable" }) : null),
        model.description ? el("span", { class: "model-desc", text: model.description }) : null,
        chips.length || bestFor
          ? el("span", { class: "model-facts" }, chips, bestFor ? el("span", { class: "model-bestfor", text: `Best for: ${bestFor}` }) : null)
          : null,
      );
    });
    this.list.replaceChildren(...options);
    this.select(this.value);
  }

  #bind() {
    this.button.addEventListener("keydown", (event) => {
      if (["ArrowDown", "ArrowUp", "Enter", " "].includes(event.key)) {
        event.preventDefault();
        this.open(event.key === "ArrowUp" ? "last" : "selected");
      }
    });
    this.list.addEventListener("keydown", (event) => this.#onListKey(event));
    this.list.addEventListener("click", (event) => {
      const option = event.target.closest("[role=option]");
      if (option && option.getAttribute("aria-disabled") !== "true") this.#choose(option.dataset.value);
    });
    this.list.addEventListener("mousemove", (event) => {
      const option = event.target.closest("[role=option]");
      if (option) this.#setActive([...this.list.children].indexOf(option), false);
    });
    this.list.addEventListener("focusout", (event) => {
      if (this.isOpen && !this.root.contains(event.relatedTarget)) this.close(false);
    });
    // However it opens or closes (a click on the button, open(), close(), a click
    // outside, Escape), the ARIA state follows; focus moves in once it is shown.
    this.list.addEventListener("beforetoggle", (event) => this.#sync(event.newState === "open"));
    this.list.addEventListener("toggle", () => this.isOpen && this.#shown());
  }

  #onListKey(event) {
    const options = [...this.list.children];
    const step = (from, delta) => {
      for (let i = from + delta; i >= 0 && i < options.length; i += delta) {
        if (options[i].getAttribute("aria-disabled") !== "true") return i;
      }
      return from;
    };
    switch (event.key) {
      case "ArrowDown":
        this.#setActive(step(this.active, 1));
        break;
      case "ArrowUp":
        this.#setActive(step(this.active, -1));
        break;
      case "Home":
        this.#setActive(step(-1, 1));
        break;
      case "End":
        this.#setActive(step(options.length, -1));
        break;
      case "Enter":
      case " ":
        if (this.active >= 0) this.#choose(options[this.active].dataset.value);
        break;
      case "Escape":
        this.close();
        break;
      case "Tab":
        this.close(false);
        return; // let the focus move on
      default:
        return;
    }
    event.preventDefault();
  }

  #setActive(index, scroll = true) {
    const options = [...this.list.children];
    if (index < 0 || index >= options.length) return;
    options[this.active]?.classList.remove("active");
    this.active = index;
    options[index].classList.add("active");
    this.list.setAttribute("aria-activedescendant", options[index].id);
    if (scroll) options[index].scrollIntoView({ block: "nearest" });
  }

  #choose(id) {
    this.select(id, { notify: true });
    this.close();
  }

  open(which = "selected") {
    if (this.isOpen) return;
    this.which = which;
    this.list.showPopover();
    this.#shown();
  }

  close(returnFocus = true) {
    if (!this.isOpen) return;
    this.list.hidePopover();
    if (returnFocus) this.button.focus();
  }

  #sync(open) {
    this.button.setAttribute("aria-expanded", String(open));
    this.root.classList.toggle("open", open);
    if (!open) {
      this.list.removeAttribute("aria-activedescendant");
      return;
    }
    const options = [...this.list.children];
    const selected = options.findIndex((o) => o.dataset.value === this.value);
    this.#setActive(this.which === "last" ? options.length - 1 : Math.max(selected, 0), false);
    this.which = "selected";
  }

  /** Once visible: focus, the active option in view, and where CSS placed the list. */
  #shown() {
    if (document.activeElement !== this.list) this.list.focus({ preventScroll: true });
    this.list.children[this.active]?.scrollIntoView({ block: "nearest" });
    const up = this.list.getBoundingClientRect().bottom <= this.button.getBoundingClientRect().top + 1;
    this.list.dataset.placement = up ? "up" : "down";
  }
}
