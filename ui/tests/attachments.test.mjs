// Attachments in the composer against the mock backend: the file picker, pasted images, image
// thumbnails (composer and history), document cards (plan, typed error, no model), the summary's
// progress bar and cancel, the saved summary opening, and the extracted text shown as text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useApp, chatSeed, mock, screenshot } from './helpers.mjs';

const { withApp } = useApp();

const REPORT = '/home/me/docs/report.md';
const SCAN = '/home/me/docs/scan.pdf';
const PHOTO = '/home/me/pictures/cat.png';
const LONG = '/home/me/docs/long.txt';

const documents = {
  [REPORT]: { kind: 'markdown', text: '# Quarterly report\n\nSales grew in every region. '.repeat(20) },
  [SCAN]: { sizeBytes: 734_003, error: { code: 'document_no_text', message: `${SCAN} has no text layer (a scanned PDF?)`, details: { path: SCAN } } },
  [LONG]: { kind: 'text', text: 'A long line of text about the harvest. '.repeat(1200) },
};

async function attach(page, paths) {
  await page.evaluate((p) => window.__TAURI_INTERNALS__.invoke('plugin:event|emit', { event: 'tauri://drag-drop', payload: { paths: p, position: { x: 1, y: 1 } } }), paths);
}

const card = (page, name) => page.locator('.doc-card', { has: page.locator('.doc-name', { hasText: name }) });

test('the attach button opens the picker and its files become chips and cards', async () => {
  await withApp(chatSeed({ pickFiles: [REPORT, PHOTO], documents }), async (page) => {
    await page.getByRole('button', { name: 'Attach files' }).click();
    await page.waitForSelector('.composer .chip >> text=report.md');
    assert.equal((await mock(page, 'callsOf', 'pick_attachment_files')).length, 1);
    // The image gets a thumbnail chip, the document a card.
    await page.waitForSelector('.composer .chip img.chip-thumb');
    assert.equal(await page.locator('.composer .chip img.chip-thumb').getAttribute('alt'), 'Preview of cat.png');
    assert.match(await page.locator('.composer .chip img.chip-thumb').getAttribute('src'), /^data:image\/png;base64,/);
    assert.equal(await page.locator('.doc-card').count(), 1, 'images have no document card');
    const [thumb] = await mock(page, 'callsOf', 'image_thumbnail');
    assert.equal(thumb.args.path, PHOTO);
  });
});

test('a document card shows kind, size, tokens and the plan for the loaded model', async () => {
  await withApp(chatSeed({ documents, promptSpeed: 500 }), async (page) => {
    await attach(page, [REPORT, LONG]);
    const report = card(page, 'report.md');
    await report.locator('.doc-plan').waitFor();
    const chars = documents[REPORT].text.length;
    const facts = await report.locator('.doc-facts').textContent();
    assert.match(facts, new RegExp(`^Markdown · \\d+(\\.\\d)? (B|KB) · ${Math.ceil(chars / 4)} tokens$`));
    assert.equal(await report.locator('.doc-plan').getAttribute('data-mode'), 'whole');
    assert.equal(await report.locator('.plan-mode').textContent(), 'Summarized in one pass (context 4,096 tokens)');
    // The time comes from the plan's prompt tokens at the measured speed (500 tok/s here).
    assert.match(await report.locator('.plan-time').textContent(), /^About \d+s$/);
    assert.match(await report.locator('.plan-memory').textContent(), /^Memory \d+(\.\d)? MB \(fits\)$/);
    // Too long for the context: map-reduce, with its parts.
    const long = card(page, 'long.txt');
    await long.locator('.doc-plan').waitFor();
    assert.equal(await long.locator('.doc-plan').getAttribute('data-mode'), 'map_reduce');
    assert.match(await long.locator('.plan-mode').textContent(), /^Summarized in \d+ parts, then combined in 1 round\(s\)$/);
    await screenshot(page, 'document-card-en');
    // Korean.
    await page.evaluate(() => window.__TAURI_INTERNALS__.invoke('set_settings', { patch: { language: 'ko' } }));
    await page.reload();
    await page.waitForSelector('html[data-ready="1"]');
    await attach(page, [REPORT]);
    await card(page, 'report.md').locator('.doc-plan').waitFor();
    assert.equal(await card(page, 'report.md').locator('.plan-mode').textContent(), '한 번에 요약 (컨텍스트 4,096토큰)');
    assert.match(await card(page, 'report.md').locator('.doc-facts').textContent(), /^마크다운 · .+ · [\d,]+토큰$/);
    await screenshot(page, 'document-card-ko');
  });
});

test('a document that cannot be read shows its typed error on the card, in both languages', async () => {
  await withApp(chatSeed({ documents }), async (page) => {
    await attach(page, [SCAN]);
    const scan = card(page, 'scan.pdf');
    await scan.locator('.error-block').waitFor();
    assert.equal(await scan.locator('.error-block').getAttribute('data-error-code'), 'document_no_text');
    assert.match(await scan.locator('.error-sentence').textContent(), /scan\.pdf/);
    assert.equal(await scan.locator('[data-action="summarize"]').count(), 0, 'nothing to summarize');
    assert.equal(await scan.locator('[data-action="view-text"]').count(), 0, 'no text to view');
    const en = await scan.locator('.error-sentence').textContent();
    await page.evaluate(() => window.__TAURI_INTERNALS__.invoke('set_settings', { patch: { language: 'ko' } }));
    await page.reload();
    await page.waitForSelector('html[data-ready="1"]');
    await attach(page, [SCAN]);
    await card(page, 'scan.pdf').locator('.error-sentence').waitFor();
    const ko = await card(page, 'scan.pdf').locator('.error-sentence').textContent();
    assert.notEqual(ko, en);
    assert.match(ko, /[가-힣]/);
  });
});

test('without a loaded model the card says so instead of a plan', async () => {
  await withApp(chatSeed({ loaded: null, documents }), async (page) => {
    await attach(page, [REPORT]);
    const report = card(page, 'report.md');
    await report.locator('.doc-no-model').waitFor();
    assert.equal(await report.locator('.doc-no-model').textContent(), 'No model is loaded. Load one to see how this document would be summarized.');
    assert.equal(await report.locator('.doc-plan').count(), 0);
    assert.equal(await report.locator('[data-action="summarize"]').count(), 0);
    // Still readable without a model.
    assert.match(await report.locator('.doc-facts').textContent(), new RegExp(`^Markdown · .+ · ${documents[REPORT].text.length.toLocaleString('en-US')} characters$`));
    // Loading the model brings the plan.
    await page.locator('#model-picker').selectOption('gemma-3-270m');
    await report.locator('.doc-plan').waitFor();
  });
});

test('summarize shows a progress bar, can be cancelled, and a finished summary opens as a conversation', async () => {
  await withApp(chatSeed({ documents }), async (page) => {
    await attach(page, [REPORT]);
    const report = card(page, 'report.md');
    await report.getByRole('button', { name: 'Summarize' }).click();
    await page.waitForFunction(() => window.__hearthMock.summarizing());
    const bar = report.getByRole('progressbar');
    await bar.waitFor();
    await mock(page, 'summaryProgress', 120, 400, 85.5, 3.2);
    await page.waitForFunction(() => document.querySelector('.doc-progress .progress')?.getAttribute('aria-valuenow') === '120');
    assert.equal(await bar.getAttribute('aria-valuemax'), '400');
    assert.equal(await report.locator('.doc-progress-text').textContent(), '120 of 400 tokens read · 85.5 tok/s · 3s left');
    assert.equal(await report.locator('.progress-fill').getAttribute('style'), 'width:30%');
    await screenshot(page, 'document-summary-progress-en');
    // Cancel: the backend is asked to stop, the bar goes, the document stays attached.
    await report.getByRole('button', { name: 'Cancel' }).click();
    await page.waitForFunction(() => !window.__hearthMock.summarizing());
    assert.equal((await mock(page, 'callsOf', 'cancel_summary')).length, 1);
    await page.waitForSelector('.toast >> text=Summary stopped');
    await report.getByRole('button', { name: 'Summarize' }).waitFor();
    assert.equal(await report.getByRole('progressbar').count(), 0);

    // Again, to the end: the saved conversation opens with the document on the user's message.
    await report.getByRole('button', { name: 'Summarize' }).click();
    await page.waitForFunction(() => window.__hearthMock.summarizing());
    await mock(page, 'summaryProgress', 400, 400, 90, 0);
    await mock(page, 'summaryDone', 'Sales grew everywhere.');
    await page.waitForSelector('.msg-assistant >> text=Sales grew everywhere.');
    assert.equal(await page.locator('.msg-user .chip-name').textContent(), 'report.md');
    assert.equal(await page.locator('.chat-title').textContent(), 'Summary: report.md');
    assert.equal(await page.locator('.doc-card').count(), 0, 'the summarized document left the composer');
    const [call] = await mock(page, 'callsOf', 'summarize_documents');
    assert.deepEqual(call.args.paths, [REPORT]);
    // The attached document's text opens from the history too.
    await page.getByRole('button', { name: 'Show the text of report.md' }).click();
    const dialog = page.getByRole('dialog', { name: 'Text of report.md' });
    await dialog.waitFor();
    await page.waitForFunction((t) => document.querySelector('.text-dialog pre')?.textContent === t, documents[REPORT].text);
    await dialog.getByRole('button', { name: 'Close' }).click();
  });
});

test('a summary refused by the backend shows the error and no progress bar', async () => {
  await withApp(chatSeed({ documents }), async (page) => {
    await attach(page, [REPORT]);
    await mock(page, 'busy', 'summarize_documents');
    await card(page, 'report.md').getByRole('button', { name: 'Summarize' }).click();
    await page.waitForSelector('.toast-error');
    await card(page, 'report.md').getByRole('button', { name: 'Summarize' }).waitFor();
    assert.equal(await page.getByRole('progressbar').count(), 0);
  });
});

test('pasting an image saves it through the backend and attaches it with a thumbnail', async () => {
  await withApp(chatSeed(), async (page) => {
    const box = page.getByRole('textbox', { name: 'Message' });
    await box.focus();
    await page.evaluate(() => {
      const png = Uint8Array.from(atob('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII='), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([png], 'image.png', { type: 'image/png' }));
      document.querySelector('#composer-input').dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
    });
    await page.waitForSelector('.composer .chip img.chip-thumb');
    const saved = await mock(page, 'pastedImages');
    assert.equal(saved.length, 1);
    assert.equal(saved[0], 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=', 'the exact bytes, base64');
    const name = await page.locator('.composer .chip-name').textContent();
    assert.match(name, /^pasted-.*\.png$/);
    // Sent with the message like a dropped file; the history shows its thumbnail too.
    await box.fill('What is in this picture?');
    await box.press('Enter');
    await page.waitForFunction(() => window.__hearthMock.streaming());
    const [call] = await mock(page, 'callsOf', 'send_message');
    assert.equal(call.args.attachments.length, 1);
    assert.match(call.args.attachments[0], /^\/data\/pasted\/pasted-.*\.png$/);
    await mock(page, 'done');
    await page.waitForSelector('.msg-user .chip img.chip-thumb');
    assert.ok((await mock(page, 'callsOf', 'attachment_thumbnail')).length >= 1, 'stored images are shown by attachment id');
    // A plain-text paste is left to the textarea and saves nothing.
    await box.focus();
    await page.evaluate(() => {
      const dt = new DataTransfer();
      dt.setData('text/plain', 'hello');
      document.querySelector('#composer-input').dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
    });
    assert.equal((await mock(page, 'pastedImages')).length, 1);
  });
});

test('an image that cannot be read keeps a plain file chip', async () => {
  await withApp(chatSeed(), async (page) => {
    await attach(page, ['/tmp/broken.png']);
    await page.waitForSelector('.composer .chip >> text=broken.png');
    await page.waitForFunction(() => window.__hearthMock.callsOf('image_thumbnail').length === 1);
    // No picture to show: an icon, no <img>.
    assert.equal(await page.locator('.composer .chip img').count(), 0);
    assert.equal(await page.locator('.composer .chip svg.icon').count() >= 1, true);
  });
});

test('the extracted text opens in a dialog as plain text, never as markup', async () => {
  const hostile = '/home/me/docs/evil.html';
  const text = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>\nline two & <b>bold</b>';
  await withApp(chatSeed({ documents: { [hostile]: { kind: 'html', text } } }), async (page) => {
    await attach(page, [hostile]);
    const c = card(page, 'evil.html');
    await c.getByRole('button', { name: 'View text' }).click();
    const dialog = page.getByRole('dialog', { name: 'Text of evil.html' });
    await dialog.waitFor();
    await page.waitForFunction((t) => document.querySelector('.text-dialog pre')?.textContent === t, text);
    assert.equal(await dialog.locator('pre img, pre script, pre b').count(), 0, 'no element made from the text');
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    await screenshot(page, 'document-text-dialog-en');
    await dialog.getByRole('button', { name: 'Close' }).click();
    await page.waitForSelector('.text-dialog', { state: 'detached' });
  });
});
