// The layout check of tests/e2e/test_layout.py, run in the page: what a person would see as broken.
// Returns {scrollWidth, innerWidth, lang, overflows: [...], english: [...], narrowFields: [...]}.
(args) => {
  const { denylist, checkEnglish, minFieldWidth } = args;
  const TOLERANCE = 1;  // px: sub-pixel rounding
  const visible = (el) => {
    const style = getComputedStyle(el);
    if (style.display === "none" || style.visibility === "hidden" || style.opacity === "0") return false;
    const rect = el.getBoundingClientRect();
    return rect.width > 0 && rect.height > 0;
  };
  const describe = (el) => {
    let name = el.tagName.toLowerCase();
    if (el.id) name += "#" + el.id;
    else if (el.classList.length) name += "." + [...el.classList].join(".");
    const text = (el.innerText || el.value || "").trim().replace(/\s+/g, " ").slice(0, 40);
    return text ? `${name} "${text}"` : name;
  };
  const path = (el) => {
    const parts = [];
    for (let node = el; node && node !== document.body && parts.length < 4; node = node.parentElement) {
      parts.unshift(describe(node).split(" ")[0]);
    }
    return parts.join(" > ");
  };
  // A box whose content may scroll or is clipped on purpose (a table's own scroll box, a code block).
  const clips = (el) => ["auto", "scroll", "hidden", "clip"].includes(getComputedStyle(el).overflowX);
  const insideScroller = (el) => {
    for (let node = el.parentElement; node && node !== document.documentElement; node = node.parentElement) {
      if (clips(node)) return true;
    }
    return false;
  };

  const overflows = [];
  for (const el of document.body.querySelectorAll("*")) {
    if (["SCRIPT", "STYLE", "OPTION", "BR", "TEMPLATE"].includes(el.tagName)) continue;
    const parent = el.parentElement;
    if (!parent || !visible(el) || clips(parent) || insideScroller(el)) continue;
    const style = getComputedStyle(el);
    if (style.position === "absolute" || style.position === "fixed") continue;
    const rect = el.getBoundingClientRect();
    const box = parent.getBoundingClientRect();
    // outside the parent's border box; a negative margin pulls a box out on purpose (Pico's nav lists do)
    const right = parseFloat(style.marginRight) < 0 ? 0 : rect.right - box.right;
    const left = parseFloat(style.marginLeft) < 0 ? 0 : box.left - rect.left;
    if (right > TOLERANCE || left > TOLERANCE) {
      overflows.push(`${path(el)} sticks out of its parent by ${Math.round(Math.max(right, left))}px`);
    }
  }

  const english = [];
  if (checkEnglish) {
    const word = new RegExp(`(^|[^A-Za-z])(${denylist.join("|")})([^A-Za-z]|$)`);
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const text = node.textContent.trim();
      const el = node.parentElement;
      if (!text || !el || el.closest("script, style, code, pre, option, [translate='no']")) continue;
      const marked = el.closest("[lang]");  // a part marked as English inside the page (the language switch)
      if (marked && marked !== document.documentElement && marked.lang.startsWith("en")) continue;
      if (!visible(el)) continue;
      const match = text.match(word);
      if (match) english.push(`"${match[2]}" in ${describe(el)}`);
    }
    for (const el of document.querySelectorAll("input[type=submit], input[type=button], [placeholder]")) {
      const text = el.value && el.type !== "text" ? el.value : el.getAttribute("placeholder") || "";
      const match = text.match(word);
      if (match && visible(el)) english.push(`"${match[2]}" in ${describe(el)}`);
    }
  }

  const narrowFields = [];
  if (minFieldWidth) {
    const fields = "input:not([type=checkbox]):not([type=radio]):not([type=hidden]), select, textarea";
    for (const el of document.querySelectorAll(fields)) {
      if (!visible(el) || el.closest(".language-switch, [data-compact]")) continue;
      const width = el.getBoundingClientRect().width;
      if (width < minFieldWidth) narrowFields.push(`${describe(el)}[name=${el.name}] is ${Math.round(width)}px wide`);
    }
  }

  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    lang: document.documentElement.getAttribute("lang"),
    overflows,
    english,
    narrowFields,
  };
}
