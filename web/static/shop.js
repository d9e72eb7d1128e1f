// Progressive enhancement: every form and link works without this file.
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content;

  async function feedback(body) {
    const response = await fetch(document.body.dataset.feedback, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      credentials: "same-origin",
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error((await response.json()).error.message);
    return response.json();
  }

  function say(form, text) {
    const status = form.closest(".feedback")?.querySelector(".feedback-status");
    if (status) status.textContent = text;
  }

  // Like buttons: toggle in place.
  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!form.matches(".like-form")) return;
    event.preventDefault();
    const field = form.querySelector('input[name="liked"]');
    const like = field.value === "1";
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const state = await feedback({
        item_id: form.dataset.item,
        kind: like ? "like" : "unlike",
      });
      field.value = state.liked ? "0" : "1";
      button.setAttribute("aria-pressed", String(state.liked));
      if (button.classList.contains("wide")) {
        button.textContent = state.liked ? "♥ Liked" : "♡ Like";
      } else {
        button.textContent = state.liked ? "♥" : "♡";
        const title = button.getAttribute("aria-label").replace(/^(Unlike|Like) /, "");
        button.setAttribute("aria-label", (state.liked ? "Unlike " : "Like ") + title);
      }
      say(form, state.liked ? "Added to your likes." : "Removed from your likes.");
    } catch (error) {
      form.submit();
    } finally {
      button.disabled = false;
    }
  });

  // Star ratings: save at once and show the new rating.
  document.querySelectorAll("form.stars").forEach((form) => {
    form.addEventListener("click", async (event) => {
      const button = event.target.closest("button[name=stars]");
      if (!button) return;
      event.preventDefault();
      const stars = Number(button.value);
      try {
        const state = await feedback({
          item_id: form.dataset.item,
          kind: "rating",
          stars,
        });
        form.querySelectorAll("button[name=stars]").forEach((b) => {
          b.classList.toggle("on", Number(b.value) <= state.rating);
          b.setAttribute("aria-pressed", String(Number(b.value) === state.rating));
        });
        const legend = form.querySelector("legend");
        const label = `${state.rating} star${state.rating === 1 ? "" : "s"}`;
        legend.textContent = `Your rating: ${label}`;
        say(form, `Thanks! You rated this ${label}.`);
      } catch (error) {
        const hidden = document.createElement("input");
        hidden.type = "hidden";
        hidden.name = "stars";
        hidden.value = String(stars);
        form.appendChild(hidden);
        form.submit();
      }
    });
  });

  // On a phone, filters start folded away under their summary.
  if (window.matchMedia("(max-width: 760px)").matches) {
    document
      .querySelectorAll("details.facets-fold")
      .forEach((fold) => fold.removeAttribute("open"));
  }

  // Sort menus apply on change.
  document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
    select.addEventListener("change", () => select.form.submit());
    select.form.querySelector("button")?.classList.add("js-hidden");
  });

  // Suggestions as you type, into the search box's datalist.
  const box = document.querySelector("input[data-suggest]");
  const list = document.getElementById("suggestions");
  let timer = null;
  let controller = null;
  box?.addEventListener("input", () => {
    clearTimeout(timer);
    const text = box.value.trim();
    if (text.length < 2) return;
    timer = setTimeout(async () => {
      controller?.abort();
      controller = new AbortController();
      try {
        const url = `${box.dataset.suggest}?q=${encodeURIComponent(text)}&k=8`;
        const response = await fetch(url, { signal: controller.signal });
        if (!response.ok) return;
        const body = await response.json();
        list.replaceChildren(
          ...body.suggestions.map((s) => {
            const option = document.createElement("option");
            option.value = s.text;
            if (s.kind === "category") option.label = "Category";
            return option;
          }),
        );
      } catch (error) {
        /* a newer keystroke aborted this one */
      }
    }, 150);
  });
})();
