// Breakout Recorder room view: wiring for the placeholder toolbar.
// The 3 Dots menu itself arrives later; for now the button only takes keyboard focus.

const moreOptions = document.getElementById("more-options");

// Start with focus on the toolbar so keyboard users can act without hunting for it.
moreOptions?.focus({ preventScroll: true });

// Escape anywhere returns focus to the 3 Dots button, as the menu and dialogs will expect.
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && moreOptions) {
    moreOptions.focus();
  }
});
