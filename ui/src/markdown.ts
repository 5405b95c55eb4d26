// Renders untrusted model output: markdown -> HTML -> DOMPurify -> DOM fragment.
// Every render (including each streaming frame) goes through the sanitizer, so a half-written tag
// can never slip through between frames. Math and copy buttons are added afterwards by our own
// code on the sanitized DOM, never by widening what the sanitizer lets in.
import { Marked, type Tokens, type TokensList, type TokenizerAndRendererExtension } from 'marked';
import DOMPurify from 'dompurify';
import hljs from 'highlight.js/lib/core';
import bash from 'highlight.js/lib/languages/bash';
import c from 'highlight.js/lib/languages/c';
import cpp from 'highlight.js/lib/languages/cpp';
import css from 'highlight.js/lib/languages/css';
import go from 'highlight.js/lib/languages/go';
import java from 'highlight.js/lib/languages/java';
import javascript from 'highlight.js/lib/languages/javascript';
import json from 'highlight.js/lib/languages/json';
import python from 'highlight.js/lib/languages/python';
import rust from 'highlight.js/lib/languages/rust';
import sql from 'highlight.js/lib/languages/sql';
import typescript from 'highlight.js/lib/languages/typescript';
import xml from 'highlight.js/lib/languages/xml';
import yaml from 'highlight.js/lib/languages/yaml';
import { t } from './i18n';

for (const [name, lang] of Object.entries({ bash, c, cpp, css, go, java, javascript, json, python, rust, sql, typescript, xml, yaml })) {
  hljs.registerLanguage(name, lang);
}
hljs.registerAliases(['sh', 'shell', 'zsh'], { languageName: 'bash' });
hljs.registerAliases(['js', 'jsx'], { languageName: 'javascript' });
hljs.registerAliases(['ts', 'tsx'], { languageName: 'typescript' });
hljs.registerAliases(['py'], { languageName: 'python' });
hljs.registerAliases(['rs'], { languageName: 'rust' });
hljs.registerAliases(['html', 'svg'], { languageName: 'xml' });
hljs.registerAliases(['yml'], { languageName: 'yaml' });

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

// Math is emitted as an empty placeholder carrying the TeX source; KaTeX fills it in after sanitizing.
function mathPlaceholder(tex: string, display: boolean): string {
  const tag = display ? 'div' : 'span';
  return `<${tag} class="math" data-display="${display ? '1' : '0'}" data-tex="${escapeHtml(tex)}">${escapeHtml(tex)}</${tag}>`;
}

const blockMath: TokenizerAndRendererExtension = {
  name: 'blockMath',
  level: 'block',
  start: (src) => src.match(/\$\$|\\\[/)?.index,
  tokenizer(src) {
    const m = /^\$\$([\s\S]+?)\$\$|^\\\[([\s\S]+?)\\\]/.exec(src);
    if (m) return { type: 'blockMath', raw: m[0], text: (m[1] ?? m[2]).trim() };
    return undefined;
  },
  renderer: (token) => mathPlaceholder(String(token.text), true),
};

const inlineMath: TokenizerAndRendererExtension = {
  name: 'inlineMath',
  level: 'inline',
  start: (src) => src.match(/\$|\\\(/)?.index,
  tokenizer(src) {
    // `$x$` needs non-space right inside the dollars, so prices like "$5 and $6" stay text.
    const m = /^\$(?!\s)([^$\n]+?)(?<!\s)\$(?!\d)|^\\\(([\s\S]+?)\\\)/.exec(src);
    if (m) return { type: 'inlineMath', raw: m[0], text: m[1] ?? m[2] };
    return undefined;
  },
  renderer: (token) => mathPlaceholder(String(token.text), false),
};

const marked = new Marked({
  gfm: true,
  breaks: false,
  extensions: [blockMath, inlineMath],
  renderer: {
    code({ text, lang }: Tokens.Code): string {
      const language = (lang ?? '').trim().split(/\s+/)[0].toLowerCase();
      const known = language !== '' && hljs.getLanguage(language) !== undefined;
      const body = known ? hljs.highlight(text, { language, ignoreIllegals: true }).value : escapeHtml(text);
      return `<pre data-lang="${escapeHtml(language)}"><code class="hljs${known ? ` language-${escapeHtml(language)}` : ''}">${body}</code></pre>`;
    },
  },
});

const SAFE_URI = /^(?:https?:|mailto:)/i;

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.nodeName === 'A') {
    const href = node.getAttribute('href');
    if (href !== null && !SAFE_URI.test(href.trim())) node.removeAttribute('href');
    // Links never navigate the app's own webview: the click handler routes them through open_external.
    node.removeAttribute('target');
    node.setAttribute('rel', 'noopener noreferrer');
  }
});

const PURIFY_CONFIG = {
  // Images and media are dropped: loading a remote URL chosen by the model would leak that the chat happened.
  FORBID_TAGS: ['style', 'img', 'svg', 'math', 'form', 'input', 'button', 'textarea', 'select', 'iframe', 'object', 'embed', 'video', 'audio', 'source', 'picture', 'link', 'meta', 'base'],
  FORBID_ATTR: ['style', 'srcset', 'action', 'formaction'],
  ALLOWED_URI_REGEXP: SAFE_URI,
  ALLOW_DATA_ATTR: true,
  RETURN_DOM_FRAGMENT: true as const,
};

/** Markdown to a sanitized fragment. Pure apart from the sanitizer; safe for any input. */
export function renderMarkdown(src: string): DocumentFragment {
  return sanitizeToFragment(marked.parse(src, { async: false }) as string);
}

function sanitizeToFragment(html: string): DocumentFragment {
  const frag = DOMPurify.sanitize(html, PURIFY_CONFIG) as DocumentFragment;
  decorateCode(frag);
  return frag;
}

/**
 * Renders a reply that grows token by token. The text is split into top-level markdown blocks;
 * blocks whose source is unchanged keep their DOM, and every changed or new block is parsed and
 * sanitized again in full. Each block's HTML goes through the sanitizer on its own and blocks are
 * joined as DOM nodes, never as strings, so no partial tag can span two blocks.
 */
export class StreamRenderer {
  private blocks: { raw: string; nodes: Node[] }[] = [];

  constructor(private readonly root: HTMLElement) {}

  update(src: string): void {
    const tokens = marked.lexer(src);
    let same = 0;
    while (same < tokens.length && same < this.blocks.length && this.blocks[same].raw === tokens[same].raw) same++;
    for (const b of this.blocks.splice(same)) for (const n of b.nodes) (n as ChildNode).remove();
    for (let i = same; i < tokens.length; i++) {
      // Keep the document's link definitions so reference-style links resolve inside any block.
      const one = Object.assign([tokens[i]], { links: tokens.links }) as unknown as TokensList;
      const frag = sanitizeToFragment(marked.parser(one));
      const nodes = Array.from(frag.childNodes);
      this.root.append(frag);
      this.blocks.push({ raw: tokens[i].raw, nodes });
    }
  }
}

// Wraps each <pre> in a frame with a language label and a copy button (our trusted DOM, built with createElement).
function decorateCode(root: DocumentFragment): void {
  for (const pre of Array.from(root.querySelectorAll('pre'))) {
    const frame = document.createElement('div');
    frame.className = 'code-frame';
    const bar = document.createElement('div');
    bar.className = 'code-bar';
    const label = document.createElement('span');
    label.textContent = pre.getAttribute('data-lang') || 'text';
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'copy-code';
    btn.dataset.action = 'copy-code';
    btn.textContent = t('chat.copyCode');
    btn.setAttribute('aria-label', t('chat.copyCode'));
    bar.append(label, btn);
    pre.replaceWith(frame);
    frame.append(bar, pre);
  }
}

type KatexModule = typeof import('katex');
let katexPromise: Promise<KatexModule> | null = null;

function loadKatex(): Promise<KatexModule> {
  katexPromise ??= Promise.all([import('katex'), import('katex/dist/katex.min.css')]).then(([m]) => ((m as unknown as { default?: KatexModule }).default ?? m) as KatexModule);
  return katexPromise;
}

/** Typesets math placeholders inside `root`. KaTeX is loaded on first use only. */
export function typesetMath(root: ParentNode): void {
  const nodes = Array.from(root.querySelectorAll<HTMLElement>('.math[data-tex]:not([data-done])'));
  if (nodes.length === 0) return;
  void loadKatex().then((katex) => {
    for (const el of nodes) {
      if (!el.isConnected) continue;
      try {
        // trust:false keeps \href, \url and friends from producing links or HTML.
        katex.render(el.dataset.tex ?? '', el, { displayMode: el.dataset.display === '1', throwOnError: false, trust: false, strict: 'ignore', maxExpand: 1000, maxSize: 20 });
        el.dataset.done = '1';
      } catch {
        // Leave the TeX source visible as text.
      }
    }
  });
}

/** The text of a code frame for the copy button. */
export function codeText(button: Element): string {
  return button.closest('.code-frame')?.querySelector('code')?.textContent ?? '';
}
