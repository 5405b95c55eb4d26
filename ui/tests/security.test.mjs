// Untrusted text (model output, conversation titles, search snippets, file names) must render inert.
// Each attack sets window.__pwned if it ever runs; the DOM is also checked directly, so these tests
// fail on a sanitizer regression even though the page's CSP would block inline handlers as well.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useApp, chatSeed, mock } from './helpers.mjs';

const { withApp } = useApp({ failOnPageErrors: false });

/** Everything that would show an attack got through, anywhere in the document. */
async function inertness(page) {
  return page.evaluate(() => {
    const all = Array.from(document.querySelectorAll('*'));
    return {
      pwned: window.__pwned ?? null,
      scripts: Array.from(document.querySelectorAll('body script')).length,
      handlers: all.flatMap((el) => Array.from(el.attributes).filter((a) => a.name.startsWith('on')).map((a) => `${el.tagName}[${a.name}]`)),
      jsUrls: all.flatMap((el) => ['href', 'src', 'action', 'formaction', 'xlink:href', 'data'].map((n) => el.getAttribute(n)).filter((v) => v && /^\s*(javascript|vbscript|data):/i.test(v))),
      imgs: document.querySelectorAll('.messages img, .sidebar img, .chips img').length,
      iframes: document.querySelectorAll('iframe, object, embed').length,
      styleTags: document.querySelectorAll('.messages style').length,
    };
  });
}

const CLEAN = { pwned: null, scripts: 0, handlers: [], jsUrls: [], imgs: 0, iframes: 0, styleTags: 0 };

const ATTACKS = [
  'Hello <img src=x onerror="window.__pwned=\'img\'">',
  '\n\n<script>window.__pwned="script"</script>',
  '\n\n[click me](javascript:window.__pwned=\'link\')',
  '\n\n<a href="javascript:window.__pwned=\'a\'">raw link</a>',
  '\n\n<svg onload="window.__pwned=\'svg\'"><circle r=5 /></svg>',
  '\n\n<iframe srcdoc="<script>parent.__pwned=\'iframe\'</script>"></iframe>',
  '\n\n<div style="position:fixed;inset:0" onmouseover="window.__pwned=\'div\'">cover</div>',
  '\n\n<a href="JaVaScRiPt&colon;window.__pwned=\'entity\'">entity link</a>',
  '\n\n<math><mtext><table><mglyph><style><img src=x onerror="window.__pwned=\'mxss\'"></style></mglyph></table></mtext></math>',
  '\n\n<form action="javascript:window.__pwned=\'form\'"><button>go</button></form>',
  '\n\n$\\href{javascript:window.__pwned=\'katex\'}{math link}$',
];

test('hostile model output streamed token by token renders inert', async () => {
  await withApp(chatSeed(), async (page) => {
    const box = page.getByRole('textbox', { name: 'Message' });
    await box.fill('say something nasty');
    await box.press('Enter');
    await page.waitForFunction(() => window.__hearthMock.streaming());
    // Split each payload mid-tag so intermediate frames hold partial HTML.
    for (const attack of ATTACKS) {
      for (let i = 0; i < attack.length; i += 7) await mock(page, 'token', attack.slice(i, i + 7));
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      assert.deepEqual(await inertness(page), CLEAN, `while streaming: ${attack}`);
    }
    await mock(page, 'done');
    await page.waitForSelector('.msg-assistant:not(.streaming) .stats');
    await page.waitForSelector('.msg-assistant:not(.streaming) .katex'); // lazy KaTeX typeset the \href attempt
    assert.deepEqual(await inertness(page), CLEAN, 'after the final render');

    // Hover and click everything in the reply: nothing runs and nothing navigates.
    const url = page.url();
    for (const el of await page.locator('.msg-assistant .msg-body *').all()) {
      await el.hover({ force: true }).catch(() => {});
    }
    for (const name of ['click me', 'raw link', 'entity link']) {
      const link = page.locator('.msg-assistant').getByText(name, { exact: true });
      if ((await link.count()) > 0) await link.first().click();
    }
    await page.waitForTimeout(100);
    assert.equal(page.url(), url);
    assert.deepEqual(await inertness(page), CLEAN, 'after hovering and clicking');
    const opened = (await mock(page, 'callsOf', 'open_external')).map((c) => c.args.url);
    assert.deepEqual(opened, [], 'no javascript: URL reached open_external');
    // The text itself is still visible to the reader.
    assert.match(await page.locator('.msg-assistant').last().textContent(), /Hello/);
    assert.match(await page.locator('.msg-assistant').last().textContent(), /cover/);
  });
});

test('a stored reply with hostile markup renders inert when a conversation is opened', async () => {
  const seed = chatSeed({ conversations: [{ title: 'Stored', messages: [['hi', ATTACKS.join('')]] }] });
  await withApp(seed, async (page) => {
    await page.getByRole('button', { name: 'Stored', exact: true }).click();
    await page.waitForSelector('.msg-assistant .katex');
    assert.deepEqual(await inertness(page), CLEAN);
  });
});

test('hostile conversation titles and search snippets render as text', async () => {
  const title = '<img src=x onerror="window.__pwned=\'title\'">Evil';
  const seed = chatSeed({ conversations: [{ title, messages: [['find <b onmouseover=window.__pwned=1>needle</b> <script>window.__pwned=2</script>', 'ok']] }] });
  await withApp(seed, async (page) => {
    assert.equal(await page.locator('.conv-title').first().textContent(), title);
    await page.locator('#search').fill('needle');
    await page.waitForSelector('.hit mark');
    assert.equal(await page.locator('.hit mark').textContent(), 'needle');
    assert.match(await page.locator('.hit .snippet').textContent(), /=window.__pwned=1>needle<\/b> <script>window/);
    await page.locator('.hit button').first().click();
    await page.waitForSelector('.chat-title');
    assert.equal(await page.locator('.chat-title').textContent(), title);
    assert.deepEqual(await inertness(page), CLEAN);
  });
});

test('hostile file names in drops become plain chip text', async () => {
  await withApp(chatSeed(), async (page) => {
    const evil = '<img src=x onerror="window.__pwned=\'file\'">.png';
    await page.evaluate((name) => {
      const dt = new DataTransfer();
      dt.items.add(new File(['x'], name, { type: 'image/png' }));
      document.querySelector('.composer').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, evil);
    await page.evaluate((name) => window.__TAURI_INTERNALS__.invoke('plugin:event|emit', { event: 'tauri://drag-drop', payload: { paths: [`/tmp/"><script>window.__pwned='path'</script>/${name}`], position: { x: 0, y: 0 } } }), '<svg onload=window.__pwned=1>.txt');
    await page.waitForFunction(() => document.querySelectorAll('.composer .chip').length === 2);
    assert.deepEqual(await page.$$eval('.composer .chip-name', (e) => e.map((x) => x.textContent)), [evil, '<svg onload=window.__pwned=1>.txt']);
    // The chip's remove button label carries the name as text too.
    assert.equal(await page.getByRole('button', { name: `Remove ${evil}` }).count(), 1);
    const box = page.getByRole('textbox', { name: 'Message' });
    await box.fill('look');
    await box.press('Enter');
    await page.waitForSelector('.msg-user .chip');
    assert.deepEqual(await inertness(page), CLEAN);
    // Importing a hostile path on the models page shows it only as text.
    await page.getByRole('button', { name: 'Models' }).click();
    await page.getByLabel('Path to a .gguf file').fill('/tmp/<img src=x onerror="window.__pwned=\'import\'">.gguf');
    await page.getByLabel('Path to a .gguf file').press('Enter');
    await page.waitForSelector('.row .path');
    assert.deepEqual(await inertness(page), CLEAN);
  });
});
