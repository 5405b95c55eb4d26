// Chat behaviour in headless Chromium against the mock backend: streaming, stop, regenerate,
// edit-branch, keyboard shortcuts, attachments, errors, context meter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useApp, chatSeed, mock, screenshot } from './helpers.mjs';

const { withApp } = useApp();

async function openConv(page, title) {
  await page.getByRole('button', { name: title, exact: true }).click();
  await page.waitForSelector('.messages .msg');
}

async function sendText(page, text) {
  const box = page.getByRole('textbox', { name: 'Message' });
  await box.fill(text);
  await box.press('Enter');
  await page.waitForFunction(() => window.__hearthMock.streaming());
}

const assistantTexts = (page) => page.$$eval('.messages .msg-assistant .msg-body', (els) => els.map((e) => e.textContent.trim()));

test('streamed markdown renders code, tables and math, then shows token stats', async () => {
  await withApp(chatSeed(), async (page) => {
    await sendText(page, 'Show me some code');
    // The user's turn shows at once, before any token.
    await page.waitForSelector('.msg-user >> text=Show me some code');
    assert.equal(await page.locator('#stop-btn').count(), 1, 'send button turns into stop');

    const tokens = ['Here', ' is', ' **bold**', '\n\n```rust\nfn main() {', '\n    println!("hi");\n}\n```', '\n\n| a | b |\n|---|---|\n| 1 | 2 |', '\n\nEuler: $e^{i\\pi}+1=0$'];
    await mock(page, 'token', tokens[0]);
    await page.waitForSelector('.streaming .msg-body >> text=Here');
    for (const tok of tokens.slice(1, 4)) await mock(page, 'token', tok);
    // An unterminated fence is already shown as a code block while streaming.
    await page.waitForSelector('.streaming pre code');
    for (const tok of tokens.slice(4)) await mock(page, 'token', tok);
    await page.waitForSelector('.streaming table');
    await page.waitForSelector('.streaming .katex');
    // The block-by-block streaming render must match the full render of the stored reply.
    const norm = (html) => html.replace(/>\s+</g, '><').trim();
    const streamedHtml = norm(await page.locator('.streaming .msg-body').innerHTML());
    await mock(page, 'done', 27.25);
    await page.waitForSelector('.msg-assistant:not(.streaming) .stats');

    const last = page.locator('.msg-assistant').last();
    assert.equal(await last.locator('strong').textContent(), 'bold');
    assert.match(await last.locator('pre code.hljs.language-rust').textContent(), /println!\("hi"\);/);
    assert.ok((await last.locator('pre code .hljs-keyword').count()) > 0, 'rust keywords highlighted');
    assert.equal(await last.locator('.code-frame [data-action="copy-code"]').count(), 1);
    assert.equal(await last.locator('table td').allTextContents().then((x) => x.join(',')), '1,2');
    await last.locator('.katex').first().waitFor();
    assert.equal(norm(await last.locator('.msg-body').innerHTML()), streamedHtml);
    const stats = await last.locator('.stats').textContent();
    assert.match(stats, /^\d+ tokens · 27\.3 tok\/s$/);
    assert.equal(await page.locator('#send-btn').count(), 1, 'stop button turns back into send');
    const meter = page.locator('#context-meter');
    assert.ok(Number(await meter.getAttribute('aria-valuenow')) > 0);
    assert.equal(await meter.getAttribute('aria-valuemax'), '4096');
    await page.mouse.move(0, 0);
    await screenshot(page, 'chat-light-en');

    // Copy button on the code block puts the code (not the frame's label) on the clipboard.
    await last.locator('[data-action="copy-code"]').click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), 'fn main() {\n    println!("hi");\n}');
    const send = mock(page, 'callsOf', 'send_message');
    assert.deepEqual((await send).map((c) => c.args.text), ['Show me some code']);
  });
});

test('Shift+Enter adds a line and Enter sends the whole text', async () => {
  await withApp(chatSeed(), async (page) => {
    const box = page.getByRole('textbox', { name: 'Message' });
    await box.click();
    await page.keyboard.type('line one');
    await page.keyboard.press('Shift+Enter');
    await page.keyboard.type('line two');
    assert.equal((await mock(page, 'callsOf', 'send_message')).length, 0, 'Shift+Enter does not send');
    // Enter that confirms a Korean IME composition must not send either.
    await box.evaluate((el) => el.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', isComposing: true, bubbles: true, cancelable: true })));
    assert.equal((await mock(page, 'callsOf', 'send_message')).length, 0, 'composing Enter does not send');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => window.__hearthMock.streaming());
    const [call] = await mock(page, 'callsOf', 'send_message');
    assert.equal(call.args.text, 'line one\nline two');
    assert.equal(await box.inputValue(), '', 'composer clears after sending');
  });
});

test('Esc stops a streaming reply and keeps the partial text', async () => {
  await withApp(chatSeed(), async (page) => {
    await openConv(page, 'Rust lifetimes');
    await sendText(page, 'Tell me a long story');
    await mock(page, 'token', 'Once upon');
    await mock(page, 'token', ' a time');
    await page.waitForSelector('.streaming >> text=Once upon a time');
    await page.keyboard.press('Escape');
    await page.waitForSelector('.msg-assistant .badge >> text=Stopped');
    assert.equal((await mock(page, 'callsOf', 'stop_generation')).length, 1);
    assert.equal(await mock(page, 'streaming'), false);
    const texts = await assistantTexts(page);
    assert.equal(texts[texts.length - 1], 'Once upon a time');
    // The stop button also stops: start another reply and click it.
    await sendText(page, 'again');
    await mock(page, 'token', 'partial');
    await page.locator('#stop-btn').click();
    await page.waitForFunction(() => !window.__hearthMock.streaming());
    assert.equal((await mock(page, 'callsOf', 'stop_generation')).length, 2);
  });
});

test('regenerate creates a sibling reply that can be switched back', async () => {
  await withApp(chatSeed(), async (page) => {
    await openConv(page, 'Rust lifetimes');
    const original = 'A lifetime names how long a borrow is valid.';
    assert.deepEqual(await assistantTexts(page), [original]);
    await page.getByRole('button', { name: 'Regenerate' }).click();
    await page.waitForFunction(() => window.__hearthMock.streaming());
    const [call] = await mock(page, 'callsOf', 'regenerate');
    assert.match(call.args.messageId, /^m\d+$/);
    await mock(page, 'token', 'Lifetimes are regions of code.');
    await mock(page, 'done');
    await page.waitForSelector('.msg-assistant .branch-pos >> text=2 / 2');
    assert.deepEqual(await assistantTexts(page), ['Lifetimes are regions of code.']);
    await page.getByRole('button', { name: 'Previous version' }).click();
    await page.waitForSelector('.msg-assistant .branch-pos >> text=1 / 2');
    assert.deepEqual(await assistantTexts(page), [original]);
    assert.equal((await mock(page, 'callsOf', 'select_branch')).length, 1);
  });
});

test('a search hit in an older version opens that version, scrolled to the hit', async () => {
  await withApp(chatSeed(), async (page) => {
    await openConv(page, 'Rust lifetimes');
    await page.getByRole('button', { name: 'Regenerate' }).click();
    await page.waitForFunction(() => window.__hearthMock.streaming());
    await mock(page, 'token', 'Lifetimes are regions of code.');
    await mock(page, 'done');
    await page.waitForSelector('.msg-assistant .branch-pos >> text=2 / 2');
    // The first reply is now hidden behind the new version; search still finds it.
    await page.locator('#search').fill('names how long');
    await page.locator('.hit button').first().click();
    await page.waitForSelector('.msg-assistant .branch-pos >> text=1 / 2');
    assert.deepEqual(await assistantTexts(page), ['A lifetime names how long a borrow is valid.']);
    assert.equal((await mock(page, 'callsOf', 'select_branch')).length, 1);
    assert.equal(await page.locator('.msg.search-target').count(), 1);
    // A hit already on the active path opens without switching versions.
    await page.locator('#search').fill('');
    await page.locator('#search').fill('names how long');
    await page.locator('.hit button').first().click();
    await page.waitForSelector('.msg.search-target');
    assert.equal((await mock(page, 'callsOf', 'select_branch')).length, 1);
  });
});

test('editing a message branches the conversation and keeps the old branch', async () => {
  await withApp(chatSeed(), async (page) => {
    await openConv(page, 'Trip to Jeju');
    await page.locator('.msg-user').first().hover();
    await page.getByRole('button', { name: 'Edit', exact: true }).click();
    const area = page.getByRole('textbox', { name: 'Edit message' });
    assert.equal(await area.inputValue(), 'Plan a 3 day trip to Jeju');
    await area.fill('Plan a 2 day trip to Busan');
    await area.press('Enter');
    await page.waitForFunction(() => window.__hearthMock.streaming());
    const [call] = await mock(page, 'callsOf', 'edit_message');
    assert.equal(call.args.text, 'Plan a 2 day trip to Busan');
    // While the new reply streams, the old reply is not shown under the edited question.
    assert.deepEqual(await page.$$eval('.msg-user .msg-body', (e) => e.map((x) => x.textContent)), ['Plan a 2 day trip to Busan']);
    assert.equal(await page.locator('.msg-assistant:not(.streaming)').count(), 0);
    await mock(page, 'token', 'Day 1: Haeundae.');
    await mock(page, 'done');
    await page.waitForSelector('.msg-user .branch-pos >> text=2 / 2');
    assert.deepEqual(await assistantTexts(page), ['Day 1: Haeundae.']);
    await page.locator('.msg-user').getByRole('button', { name: 'Previous version' }).click();
    await page.waitForSelector('.msg-user .branch-pos >> text=1 / 2');
    assert.deepEqual(await page.$$eval('.msg-user .msg-body', (e) => e.map((x) => x.textContent)), ['Plan a 3 day trip to Jeju']);
    assert.deepEqual(await assistantTexts(page), ['Day 1: Hallasan. Day 2: the east coast. Day 3: Udo island.']);
  });
});

test('Escape cancels an edit without sending', async () => {
  await withApp(chatSeed(), async (page) => {
    await openConv(page, 'Trip to Jeju');
    await page.locator('.msg-user').first().hover();
    await page.getByRole('button', { name: 'Edit', exact: true }).click();
    await page.getByRole('textbox', { name: 'Edit message' }).press('Escape');
    assert.equal(await page.locator('.edit-input').count(), 0);
    assert.equal((await mock(page, 'callsOf', 'edit_message')).length, 0);
  });
});

test('keyboard: Ctrl+N starts a new chat, Ctrl+K focuses search, a new chat is created on first send', async () => {
  await withApp(chatSeed(), async (page) => {
    await openConv(page, 'Rust lifetimes');
    await page.keyboard.press('Control+k');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'search');
    await page.keyboard.press('Control+n');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'composer-input');
    assert.equal(await page.locator('.messages .msg').count(), 0, 'new chat is empty');
    assert.equal(await page.locator('.chat-title').textContent(), 'New chat');
    await page.keyboard.type('hello there');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => window.__hearthMock.streaming());
    assert.equal((await mock(page, 'callsOf', 'create_conversation')).length, 1);
    await mock(page, 'done');
    // The backend titled it from the first message; the sidebar shows it as the active chat.
    await page.waitForSelector('.conv-item.active >> text=hello there');
    // ...and so does the chat's header (it kept the title from before the first message).
    await page.waitForSelector('.chat-title >> text=hello there', { timeout: 5000 });
    // The whole flow is reachable with Tab: from the composer, Tab reaches the send button.
    await page.locator('#composer-input').focus();
    await page.keyboard.type('x');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'send-btn');
  });
});

test('a failed command shows the sentence for its code, with the raw message behind details', async () => {
  await withApp(chatSeed(), async (page) => {
    await mock(page, 'fail', 'send_message', 'context_full', 'the conversation no longer fits the context', { needed: 5000, limit: 4096 });
    await openConv(page, 'Rust lifetimes');
    const box = page.getByRole('textbox', { name: 'Message' });
    await box.fill('one more');
    await box.press('Enter');
    const toast = page.locator('.toast-error');
    await toast.waitFor();
    assert.match(await toast.locator('strong').textContent(), /^This conversation no longer fits in the model's context: it needs 5,000 tokens and the context holds 4,096\./);
    assert.equal(await toast.locator('details').getAttribute('open'), null, 'details start collapsed');
    assert.equal(await toast.locator('details .error-raw').textContent(), 'the conversation no longer fits the context');
    assert.equal(await page.locator('#send-btn').count(), 1, 'composer usable again');
    // A stream that ends with an error event is shown too.
    await sendText(page, 'try again');
    await mock(page, 'token', 'half');
    await mock(page, 'error', 'tokenizer failed: bad byte');
    await page.waitForSelector('.toast-error >> text=The model failed while writing the reply.');
    // The failed reply keeps its error: the sentence under the message, the raw text behind details.
    const failed = page.locator('.msg-assistant.state-error');
    await failed.locator('.msg-error .error-sentence >> text=The model failed while writing the reply.').waitFor();
    assert.equal(await failed.locator('.badge-error').textContent(), 'Generation failed');
    assert.equal(await failed.locator('.msg-error .error-raw').textContent(), 'tokenizer failed: bad byte');
  });
});

test('dropped files become chips and their paths go along with the message', async () => {
  await withApp(chatSeed(), async (page) => {
    // The shell's drag events highlight the composer as a drop target.
    const emit = (event, payload) => page.evaluate(([e, p]) => window.__TAURI_INTERNALS__.invoke('plugin:event|emit', { event: e, payload: p }), [event, payload]);
    await emit('tauri://drag-enter', { paths: ['/home/me/docs/report.pdf'], position: { x: 1, y: 1 } });
    assert.equal(await page.locator('.composer.dragging').count(), 1);
    await emit('tauri://drag-leave', null);
    assert.equal(await page.locator('.composer.dragging').count(), 0);
    // A drop from the shell carries real paths.
    await page.evaluate(() => window.__TAURI_INTERNALS__.invoke('plugin:event|emit', { event: 'tauri://drag-drop', payload: { paths: ['/home/me/docs/report.pdf'], position: { x: 1, y: 1 } } }));
    await page.waitForSelector('.composer .chip >> text=report.pdf');
    // An HTML5 drop (no path available) still shows the name.
    await page.evaluate(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(['x'], 'photo.png', { type: 'image/png' }));
      document.querySelector('.composer').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    await page.waitForSelector('.composer .chip >> text=photo.png');
    await page.getByRole('button', { name: 'Remove photo.png' }).click();
    assert.equal(await page.locator('.composer .chip').count(), 1);
    await sendText(page, 'summarise this');
    const [call] = await mock(page, 'callsOf', 'send_message');
    assert.deepEqual(call.args.attachments, ['/home/me/docs/report.pdf']);
    assert.equal(await page.locator('.composer .chip').count(), 0, 'chips clear after sending');
    await page.waitForSelector('.msg-user .chip >> text=report.pdf');
  });
});

test('links in replies open through open_external only after a click', async () => {
  await withApp(chatSeed(), async (page) => {
    await sendText(page, 'link please');
    await mock(page, 'token', 'See [the docs](https://example.org/docs).');
    await mock(page, 'done');
    const link = page.locator('.msg-assistant a');
    await link.waitFor();
    assert.equal((await mock(page, 'callsOf', 'open_external')).length, 0);
    const before = page.url();
    await link.click();
    await page.waitForFunction(() => window.__hearthMock.callsOf('open_external').length === 1);
    assert.deepEqual((await mock(page, 'callsOf', 'open_external'))[0].args, { url: 'https://example.org/docs' });
    assert.equal(page.url(), before, 'the app itself did not navigate');
  });
});

test('leaving a chat mid-reply and coming back shows one live reply, not a duplicate', async () => {
  await withApp(chatSeed(), async (page) => {
    await openConv(page, 'Rust lifetimes');
    await sendText(page, 'keep going');
    await mock(page, 'token', 'first half');
    await page.getByRole('button', { name: 'Trip to Jeju', exact: true }).click();
    await page.waitForSelector('.msg-user >> text=Plan a 3 day trip to Jeju');
    assert.equal(await page.locator('.streaming').count(), 0, 'the other chat shows no stream');
    await mock(page, 'token', ' second half');
    await openConv(page, 'Rust lifetimes');
    await page.waitForSelector('.streaming >> text=first half second half');
    assert.deepEqual(await page.$$eval('.msg-user .msg-body', (e) => e.map((x) => x.textContent)), ['Explain lifetimes briefly', 'keep going']);
    await mock(page, 'done');
    await page.waitForSelector('.msg-assistant:not(.streaming) >> text=first half second half');
    assert.equal(await page.locator('.msg-assistant').count(), 2);
  });
});
