// Site behaviour without inline scripts (the Content-Security-Policy allows scripts from 'self' only).
// <select data-autosubmit> submits its form when changed.
document.addEventListener("change", (event) => {
  const el = event.target;
  if (el.matches("select[data-autosubmit]") && el.form) el.form.requestSubmit();
});
