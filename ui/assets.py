"""The page's CSS and its one script (citations, copy, examples, the question counter).

The script uses event delegation on ``document``, so it keeps working when Gradio
re-renders the chat HTML; it never builds markup from text (only ``textContent``).
"""

from __future__ import annotations

CSS = """
.gradio-container { max-width: 1200px !important; }
.gradio-container .main.app { padding: min(32px, 2vw) !important; }
.rag-header h1 { font-size: 1.35em; margin: 0 0 .2em; }
.rag-loaded summary { cursor: pointer; opacity: .85; }
.rag-doclist { list-style: none; padding: 0; margin: .3em 0; }
.rag-doc { padding: .25em 0; border-bottom: 1px solid var(--border-color-primary); }
.rag-doc-title { display: block; font-weight: 600; overflow-wrap: anywhere; }
.rag-doc-meta, .rag-meta { display: block; font-size: .8em; opacity: .75; }
.rag-file { font-family: var(--font-mono); overflow-wrap: anywhere; }
.rag-examples { display: flex; flex-wrap: wrap; gap: .4em; }
.rag-example { border: 1px solid var(--border-color-primary); border-radius: 999px;
  padding: .3em .8em; background: var(--background-fill-secondary); cursor: pointer;
  font-size: .9em; text-align: left; }
.rag-example:hover, .rag-example:focus-visible { border-color: var(--color-accent); }
#chat .rag-chat { height: clamp(280px, calc(100dvh - 420px), 640px); overflow-y: auto;
  position: relative;
  border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .6em; }
.rag-intro { opacity: .8; margin: 1em .5em; }
.rag-turn { margin-bottom: 1em; }
.rag-user { margin-left: auto; max-width: 85%; width: fit-content;
  background: var(--color-accent-soft); border-radius: 12px; padding: .45em .8em;
  overflow-wrap: anywhere; }
.rag-answer { margin-top: .5em; line-height: 1.5; overflow-wrap: anywhere; }
.rag-marker { font: inherit; font-weight: 600; color: var(--color-accent); background: none;
  border: none; padding: 0 .1em; cursor: pointer; text-decoration: underline dotted; }
.rag-sources { margin-top: .5em; border-top: 1px solid var(--border-color-primary);
  padding-top: .3em; }
.rag-sources-title { font-size: .75em; text-transform: uppercase; letter-spacing: .05em;
  opacity: .7; }
.rag-source { margin: .35em 0; border-radius: 6px; padding: .2em .3em; }
.rag-source.rag-flash { background: var(--color-accent-soft); }
.rag-source summary { cursor: pointer; }
.rag-n { font-weight: 600; color: var(--color-accent); }
.rag-title { font-weight: 600; }
.rag-quote { display: block; margin: .2em 0 0 1.2em; font-style: italic;
  border-left: 2px solid var(--color-accent); padding-left: .5em; }
.rag-more { display: block; margin-left: 1.2em; font-size: .8em; color: var(--color-accent); }
details[open] > summary .rag-more { display: none; }
.rag-passage { margin: .4em 0 .4em 1.2em; padding-left: .6em; font-size: .95em;
  border-left: 3px solid var(--border-color-primary); }
.rag-passage mark { background: var(--color-accent-soft); color: inherit;
  border-bottom: 2px solid var(--color-accent); padding: 0 .1em; }
.rag-searched { font-size: .8em; opacity: .75; margin-top: .3em; }
.rag-footer { display: flex; gap: .6em; align-items: center; justify-content: space-between;
  margin-top: .3em; }
.rag-note { font-size: .75em; opacity: .65; }
.rag-fallback { color: var(--color-orange-600, #c2410c); opacity: 1; }
.rag-copy { font-size: .8em; border: 1px solid var(--border-color-primary); border-radius: 6px;
  background: none; padding: .1em .6em; cursor: pointer; }
.rag-declined { font-weight: 600; }
.rag-not-answer { display: inline-block; margin-right: .4em; padding: 0 .35em; border-radius: 4px;
  font-size: .8em; font-weight: 600; background: var(--color-accent-soft); }
.rag-unsupported { text-decoration: underline dotted var(--color-orange-600, #c2410c);
  text-underline-offset: .2em; }
.rag-flag { font-size: .8em; color: var(--color-orange-600, #c2410c); }
.rag-removed { font-size: .8em; margin-top: .3em; color: var(--color-orange-600, #c2410c); }
.rag-gloss { font-size: .9em; margin: .15em 0 .4em 1.2em; opacity: .85; }
.rag-gloss-label { display: block; font-size: .8em; font-style: italic; opacity: .8; }
.rag-status { opacity: .75; font-style: italic; }
.rag-error { color: var(--error-text-color, #b91c1c); }
#question { position: relative; }
#question textarea { padding-bottom: 1.4em; }
#question-count { position: absolute; right: .9em; bottom: .45em; font-size: .75em;
  opacity: .6; pointer-events: none; }
#question-count.rag-over { color: var(--error-text-color, #b91c1c); opacity: 1; }
#question-note:empty { display: none; }
.rag-progress progress { width: 100%; height: .8em; accent-color: var(--color-accent); }
.rag-progress-text { font-size: .85em; overflow-wrap: anywhere; }
.rag-report-line { font-size: .9em; }
#remove-confirm { border: 1px solid var(--error-border-color, #fca5a5); border-radius: 8px;
  padding: .4em; }
@media (max-width: 640px) {
  .rag-header h1 { font-size: 1.1em; }
  #chat .rag-chat { height: calc(100dvh - 320px); min-height: 240px; }
  .rag-examples { flex-wrap: nowrap; overflow-x: auto; }
  .rag-example { white-space: nowrap; }
}
"""

_JS = r"""
() => {
  const LIMIT = __LIMIT__;
  const $ = (s, root = document) => root.querySelector(s);
  function counter() {
    const box = $('#question textarea');
    if (!box) return null;
    let c = $('#question-count');
    if (!c) {
      c = document.createElement('span');
      c.id = 'question-count';
      c.setAttribute('aria-live', 'polite');
      box.parentElement.style.position = 'relative';
      box.parentElement.appendChild(c);
    }
    return [box, c];
  }
  function update() {
    const got = counter();
    const ask = $('#ask');
    if (!got || !ask) return;
    const [box, c] = got;
    const n = box.value.length;
    const text = n + ' / ' + LIMIT;
    if (c.textContent !== text) c.textContent = text;
    c.classList.toggle('rag-over', n > LIMIT);
    c.title = n > LIMIT ? 'Too long: shorten the question to ask it' : 'Characters used';
    const off = !box.value.trim() || n > LIMIT;
    if (ask.disabled !== off) { ask.disabled = off; ask.setAttribute('aria-disabled', off); }
  }
  function openSource(marker) {
    const answer = marker.closest('.rag-answer');
    const src = answer && answer.querySelector('.rag-source[data-n="' + marker.dataset.n + '"]');
    if (!src) return;
    src.open = true;
    src.classList.add('rag-flash');
    setTimeout(() => src.classList.remove('rag-flash'), 1200);
    const box = src.closest('.rag-chat');
    if (box) {  // scroll the conversation only, never the page under it
      const top = src.getBoundingClientRect().top - box.getBoundingClientRect().top;
      const bottom = top + src.getBoundingClientRect().height;
      const over = bottom - box.clientHeight + 8;
      if (top < 0 || over > 8) box.scrollTop += Math.min(top - 8, over);
    }
    src.querySelector('summary').focus({preventScroll: true});
  }
  async function copy(button) {
    const text = button.dataset.copy || '';
    try { await navigator.clipboard.writeText(text); }
    catch (e) {
      const t = document.createElement('textarea');
      t.value = text; document.body.appendChild(t); t.select();
      document.execCommand('copy'); t.remove();
    }
    button.textContent = 'Copied';
    setTimeout(() => { button.textContent = 'Copy'; }, 1500);
  }
  function askExample(button) {
    const got = counter();
    if (!got) return;
    got[0].value = button.dataset.q || '';
    got[0].dispatchEvent(new Event('input', {bubbles: true}));
    update();
    setTimeout(() => $('#ask').click(), 50);
  }
  document.addEventListener('click', (e) => {
    const t = e.target.closest('.rag-marker, .rag-copy, .rag-example');
    if (!t) return;
    if (t.classList.contains('rag-marker')) openSource(t);
    else if (t.classList.contains('rag-copy')) copy(t);
    else askExample(t);
  });
  document.addEventListener('input', (e) => { if (e.target.closest('#question')) update(); });
  setInterval(update, 250);
  let lastHtml = '';
  new MutationObserver(() => {
    const box = $('#chat .rag-chat');
    const turns = document.querySelectorAll('#chat .rag-turn');
    if (!box || !turns.length || box.innerHTML === lastHtml) return;
    lastHtml = box.innerHTML;
    const last = turns[turns.length - 1];
    box.scrollTop = last.offsetTop - box.offsetTop - 6;
  }).observe(document.body, {childList: true, subtree: true});
}
"""


def page_js(max_question_chars: int) -> str:
    """The page script with the question length limit filled in."""
    return _JS.replace("__LIMIT__", str(int(max_question_chars)))
