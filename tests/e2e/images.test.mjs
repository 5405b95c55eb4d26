// End-to-end, images: the real app window with the tiny vision model pair (a Gemma 3 GGUF and its
// mmproj, random weights, so its reply is gibberish: what is checked is that a reply streams and
// is stored, never its words). Import finds the projector beside the model and the loaded model
// reads images → an image dropped on the window and one pasted into the composer show as
// thumbnails → sending streams a reply that read both images → the message in the history shows
// them → quit, delete the dropped file, relaunch → both images are still in the conversation.
// Screenshots: docs/screenshots/app-image-*.png.
//
// Needs what app.test.mjs needs (tests/e2e/run provides it), but not the 270M model.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session, sleep } from './webdriver.mjs';
import { APP, BASE, REPLY_TIMEOUT, ROOT, dropFiles, importAndLoad, look, shot, startDriver, stopDriver, streamed, waitReady, watchStream } from './harness.mjs';

const FIXTURES = join(ROOT, 'tests/fixtures/vision');
// Two images (256 soft tokens each) and the question fit, with room for a short reply.
const CONTEXT = 768;
let run;
let files;

before(() => {
  run = startDriver('hearth-e2e-images-');
  // The pair as a download leaves it: the model and an `mmproj*.gguf` in one folder, which is
  // how import finds the projector.
  files = mkdtempSync(join(tmpdir(), 'hearth-e2e-images-files-'));
  copyFileSync(join(FIXTURES, 'tiny-gemma3-vision.gguf'), join(files, 'tiny-gemma3-vision.gguf'));
  copyFileSync(join(FIXTURES, 'tiny-gemma3-mmproj.gguf'), join(files, 'mmproj-tiny-gemma3.gguf'));
  copyFileSync(join(FIXTURES, 'wide.png'), join(files, 'dropped-wide.png'));
});

after(async () => {
  await stopDriver(run);
  if (files) rmSync(files, { recursive: true, force: true });
});

const userThumbs = '.messages .msg-user .msg-chips img.chip-thumb';
// Thumbnails load one by one: both are shown when the first chip and the second have their <img>.
const bothThumbs = '.messages .msg-user .msg-chips li:first-child:has(img.chip-thumb) + li:has(img.chip-thumb)';

const sha256 = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** The sha256 of each image the vision tower encoded, from its cache in the data folder. */
function encodedImages() {
  const cache = join(run.dataDir, 'cache/image-embeddings');
  if (!existsSync(cache)) return [];
  return readdirSync(cache).flatMap((tower) => readdirSync(join(cache, tower))).filter((f) => f.endsWith('.emb')).map((f) => f.slice(0, -4)).sort();
}

/** For each <img> matching `css`: whether it decodes to a real picture. */
const imagesDecoded = (s, css) => s.exec(`
  const imgs = [...document.querySelectorAll(arguments[0])];
  return Promise.all(imgs.map((i) => i.decode().then(() => i.naturalWidth > 0, () => false)));`, [css]);

test('drop and paste images, a streamed reply reads them, and they are still there after a relaunch', async () => {
  const dropped = join(files, 'dropped-wide.png');
  let s = await Session.start(BASE, APP);
  let convId;
  try {
    await s.waitFor('#first-run-cta', { timeout: 60000 });
    // Random weights never choose to stop: a small context ends the reply (context_full) after a
    // couple of hundred tokens instead of the app's 2048-token reply limit. It is the model's at
    // load time, so it is set first.
    await s.invoke('set_settings', { patch: { temperature: 0, seed: 1, contextSize: CONTEXT } });
    const model = await importAndLoad(s, join(files, 'tiny-gemma3-vision.gguf'));
    assert.equal(model.readsImages, true, `the projector beside the model was found and loaded: ${JSON.stringify(model)}`);
    await look(s, 'light', 'en');
    await s.clickOn('#new-chat');
    await s.waitFor('#composer-input');

    // Drop: the shell's drag-drop event with the file's path.
    await dropFiles(s, [dropped]);
    await s.waitFor('form.composer .chip img.chip-thumb', { timeout: 30000 });
    assert.equal((await s.find('form.composer.dragging')).length, 0, 'the drop target highlight ends with the drop');

    // Paste: a clipboard holding a PNG file, as a screenshot tool leaves it; the backend saves it.
    const pasted = await s.exec(`
      const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'image.png', { type: 'image/png' }));
      const input = document.querySelector('#composer-input');
      input.focus();
      let ev = new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true });
      if (!ev.clipboardData || ev.clipboardData.items.length === 0) {
        // An engine whose ClipboardEvent constructor drops clipboardData: give the event its data.
        ev = new Event('paste', { bubbles: true, cancelable: true });
        Object.defineProperty(ev, 'clipboardData', { value: dt });
      }
      input.dispatchEvent(ev);
      return ev.clipboardData.items.length;`, [readFileSync(join(FIXTURES, 'square.png')).toString('base64')]);
    assert.equal(pasted, 1);
    await s.waitFor('form.composer .chip:nth-child(2) img.chip-thumb', { timeout: 30000 });
    const chips = await s.exec(`return [...document.querySelectorAll('form.composer .chip')].map((c) => c.title);`);
    assert.equal(chips.length, 2, JSON.stringify(chips));
    assert.equal(chips[0], dropped, 'the dropped file is attached by its path');
    assert.match(chips[1], /\.png$/, 'the pasted image was saved as a PNG file');
    assert.deepEqual(await imagesDecoded(s, 'form.composer img.chip-thumb'), [true, true]);
    await s.typeInto('#composer-input', 'What is in these pictures?');
    await shot(s, 'image-composer');

    // Send: the reply streams, and the message in the history shows both images.
    await watchStream(s);
    await s.clickOn('#send-btn');
    await s.waitFor('.messages .msg-assistant:not(.streaming) .msg-body', { timeout: REPLY_TIMEOUT, text: (t) => t.trim().length > 0 });
    await s.waitFor('#send-btn', { timeout: REPLY_TIMEOUT });
    const shown = await streamed(s);
    assert.ok(shown.length >= 2, `the reply was shown while it streamed, growing (${shown.length} states)`);
    assert.equal(await s.find('form.composer .chip').then((c) => c.length), 0, 'sending empties the composer');

    const convs = await s.invoke('list_conversations', { cursor: null, limit: 50, archived: false });
    assert.equal(convs.items.length, 1);
    convId = convs.items[0].id;
    const list = await s.invoke('list_messages', { conversationId: convId });
    assert.deepEqual(list.messages.map((m) => [m.role, m.state]), [['user', 'complete'], ['assistant', 'complete']]);
    const [user, reply] = list.messages;
    assert.deepEqual(user.attachmentItems.map((a) => [a.name, a.kind]), [['dropped-wide.png', 'image'], [chips[1].split('/').pop(), 'image']]);
    assert.ok(reply.text.trim().length > 0 && reply.stats.tokens > 0, 'a reply was stored');
    assert.ok(['eos', 'max_tokens', 'context_full'].includes(reply.stats.stopReason), reply.stats.stopReason);
    // The model saw both images: the vision tower encoded exactly these bytes (its cache keeps
    // each encoding under the image's sha256).
    assert.deepEqual(encodedImages(), [sha256(join(FIXTURES, 'square.png')), sha256(join(FIXTURES, 'wide.png'))].sort());
    // The context meter counts the images' soft tokens (256 each), not only the text.
    assert.ok(list.contextTokens > 2 * 256, `context tokens ${list.contextTokens}`);
    await s.waitFor(bothThumbs, { timeout: 30000 });
    assert.deepEqual(await imagesDecoded(s, userThumbs), [true, true]);
    await shot(s, 'image-chat');
  } finally {
    await s.end();
  }

  // The stored copy is what the conversation shows, not the file that was dropped.
  rmSync(dropped);
  await sleep(1000);
  s = await Session.start(BASE, APP);
  try {
    await s.clickOn(`.conv-item[data-id="${convId}"] .conv-open`, { timeout: 60000 });
    await s.waitFor('.messages .msg-assistant');
    await s.waitFor(bothThumbs, { timeout: 30000 });
    assert.deepEqual(await imagesDecoded(s, userThumbs), [true, true]);
    const names = await s.exec(`return [...document.querySelectorAll('.messages .msg-user .msg-chips .chip-name')].map((n) => n.textContent);`);
    assert.equal(names[0], 'dropped-wide.png');
    const list = await s.invoke('list_messages', { conversationId: convId });
    assert.deepEqual(list.messages.map((m) => m.role), ['user', 'assistant']);
    assert.equal(list.messages[0].attachmentItems.length, 2);
    // The last-used model loads again by itself, with its projector.
    assert.equal((await waitReady(s)).readsImages, true);
    // Once it is ready, the context meter counts the stored conversation, both images' soft
    // tokens included (it reads 0 while no model is loaded).
    const meterEnd = Date.now() + 30000;
    let counted;
    while ((counted = Number(await s.exec(`return document.querySelector('#context-meter')?.getAttribute('aria-valuenow') ?? '0';`))) <= 2 * 256) {
      if (Date.now() > meterEnd) assert.fail(`the context meter reads ${counted} tokens after the model became ready`);
      await sleep(200);
    }
    await shot(s, 'image-relaunch');
  } finally {
    await s.end();
  }
});
