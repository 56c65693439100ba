// Site behaviour without inline scripts (the Content-Security-Policy allows scripts from 'self' only).
// <select data-autosubmit> submits its form when changed.
document.addEventListener("change", (event) => {
  const el = event.target;
  if (el.matches("select[data-autosubmit]") && el.form) el.form.requestSubmit();
});

// <form data-confirm="Question?"> asks before it is sent (cancelling a booking moves money back): Cancel keeps the
// page as it is. htmx forms use hx-confirm instead.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);

// <details data-fold-narrow open> (a page's filter panel) starts folded on a phone-wide screen, so the results show
// first; data-keep-open (a filter has an error) keeps it open. Without scripts it stays open.
const narrow = window.matchMedia("(max-width: 767px)");
for (const panel of document.querySelectorAll("details[data-fold-narrow]")) {
  if (narrow.matches && !panel.hasAttribute("data-keep-open")) panel.open = false;
}
