// End-to-end: the real app binary under Xvfb, driven through tauri-driver and WebKitWebDriver,
// with the real 270M model. First run → import by path → load → a streamed reply → a reply
// stopped mid-stream → quit → relaunch → the conversation and its messages are still there, the
// model loads again by itself, and regenerating a reply keeps both versions.
// Screenshots (light/dark, en/ko) go to docs/screenshots/app-*.png.
//
// Needs: HEARTH_APP (the app binary, built with the custom protocol), tauri-driver on PATH (or
// TAURI_DRIVER), a display (run under xvfb-run), and the model at HEARTH_TEST_MODEL or the
// default path. tests/e2e/run does all of this.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Session, sleep } from './webdriver.mjs';
import { APP, BASE, MODEL, REPLY_TIMEOUT, look, shot, startDriver, stopDriver } from './harness.mjs';

let run;
let dataDir;

before(async () => {
  assert.ok(existsSync(MODEL), `test model missing at ${MODEL}: run scripts/fetch-test-model (or set HEARTH_TEST_MODEL)`);
  run = startDriver();
  dataDir = run.dataDir;
});

after(() => stopDriver(run));

const lastAssistant = '.messages .msg-assistant:last-of-type .msg-body';

test('first run, import, stream, stop, quit and relaunch keep the conversation', async () => {
  let s = await Session.start(BASE, APP);
  let convId;
  try {
    // First run: no model yet, so the welcome screen leads to the models page.
    await s.waitFor('#first-run-cta', { timeout: 60000 });
    await shot(s, 'first-run-light-ko');
    await s.clickOn('#first-run-cta');
    await s.typeInto('#import-path', MODEL);
    await s.clickOn('#import-btn');
    const row = await s.waitFor('.rows [data-model]', { timeout: 120000 });
    assert.ok(row);
    const installed = await s.invoke('list_installed_models');
    assert.equal(installed.length, 1);
    assert.equal(installed[0].path, MODEL);
    assert.ok(installed[0].contextLength > 0, 'context length read from the GGUF header');

    // Importing a file that is not a GGUF gives a specific error in the form.
    const bad = join(dataDir, 'not-a-model.gguf');
    writeFileSync(bad, 'hello');
    await assert.rejects(s.invoke('import_model', { path: bad }), /not_gguf|GGUF/i);

    await s.clickOn('.rows [data-model] .row-actions button.btn:not([data-action])');
    await s.waitFor('.rows [data-model] .badge-ok', { timeout: 120000 });
    const model = await s.invoke('current_model');
    assert.equal(model.state, 'ready');
    assert.ok(model.contextSize > 0);

    // Greedy sampling keeps the run repeatable.
    await s.invoke('set_settings', { patch: { temperature: 0, seed: 1, language: 'en', theme: 'light' } });
    await look(s, 'light', 'en');
    await shot(s, 'home-light-en');

    // Chat: a streamed reply.
    await s.clickOn('#new-chat');
    await s.typeInto('#composer-input', 'Name three colors.');
    await s.clickOn('#send-btn');
    await s.waitFor('.streaming .msg-body', { timeout: REPLY_TIMEOUT, text: (t) => t.trim().length > 0 });
    await s.waitFor('#send-btn', { timeout: REPLY_TIMEOUT });
    const first = await s.text(await s.waitFor(lastAssistant, { text: (t) => t.trim().length > 0 }));
    assert.ok(first.trim().length > 0, 'the reply has text');

    const convs = await s.invoke('list_conversations', { cursor: null, limit: 50, archived: false });
    assert.equal(convs.items.length, 1);
    convId = convs.items[0].id;
    assert.equal(convs.items[0].title, 'Name three colors.', 'the title comes from the first message');
    let list = await s.invoke('list_messages', { conversationId: convId });
    assert.deepEqual(list.messages.map((m) => [m.role, m.state]), [['user', 'complete'], ['assistant', 'complete']]);
    assert.ok(list.messages[1].stats.tokens > 0);
    assert.ok(list.contextTokens > 0, 'context meter counts the stored turn');
    await shot(s, 'chat-light-en');

    // A second request while one streams is refused, never interleaved; then stop mid-stream.
    await s.typeInto('#composer-input', 'Write a long story about a dragon who learns to bake bread.');
    await s.clickOn('#send-btn');
    await s.waitFor('.streaming .msg-body', { timeout: REPLY_TIMEOUT, text: (t) => t.trim().length > 0 });
    const busy = await s.exec(`
      try {
        // A Channel argument is sent as '__CHANNEL__:<callback id>', as @tauri-apps/api does.
        const id = window.__TAURI_INTERNALS__.transformCallback(() => {});
        await window.__TAURI_INTERNALS__.invoke('send_message', { conversationId: arguments[0], text: 'again', attachments: [], onEvent: '__CHANNEL__:' + id });
        return 'accepted';
      } catch (e) { return e.code; }`, [convId]);
    assert.equal(busy, 'busy');
    await s.clickOn('#stop-btn');
    await s.waitFor('#send-btn', { timeout: 60000 });
    list = await s.invoke('list_messages', { conversationId: convId });
    assert.equal(list.messages.length, 4);
    const stopped = list.messages[3];
    assert.equal(stopped.state, 'complete', 'a stopped reply is kept as a finished message');
    assert.equal(stopped.stats.stopReason, 'stopped');
    assert.ok(stopped.text.trim().length > 0, 'the partial text is kept');

    await look(s, 'dark', 'ko');
    await s.clickOn(`.conv-item[data-id="${convId}"] .conv-open`);
    await s.waitFor('.messages .msg-assistant');
    await shot(s, 'chat-dark-ko');
  } finally {
    // Quit: ending the session closes the window and the app.
    await s.end();
  }

  // Relaunch on the same data folder: everything is still there.
  await sleep(1000);
  s = await Session.start(BASE, APP);
  try {
    await s.waitFor(`.conv-item[data-id="${convId}"]`, { timeout: 60000 });
    const list = await s.invoke('list_messages', { conversationId: convId });
    assert.deepEqual(list.messages.map((m) => m.role), ['user', 'assistant', 'user', 'assistant']);
    assert.ok(list.messages.every((m) => m.state === 'complete'), JSON.stringify(list.messages.map((m) => m.state)));
    assert.equal((await s.invoke('get_settings')).theme, 'dark', 'settings persist');
    await s.clickOn(`.conv-item[data-id="${convId}"] .conv-open`);
    await s.waitFor('.messages .msg-assistant');

    // The last-used model loads again by itself, in the background, without a click.
    const loadedBy = Date.now() + 120000;
    let st;
    while ((st = await s.invoke('current_model')).state !== 'ready') {
      assert.notEqual(st.state, 'none', 'the last-used model is not being reloaded');
      assert.ok(Date.now() < loadedBy, `the last-used model did not load: ${JSON.stringify(st)}`);
      await sleep(200);
    }

    // Regenerate the stopped reply: a second version beside it; the first is kept and selectable.
    const oldReply = list.messages[3].id;
    await s.clickOn('[data-action="regenerate"]');
    await s.waitFor('.streaming .msg-body', { timeout: REPLY_TIMEOUT, text: (t) => t.trim().length > 0 });
    await s.clickOn('#stop-btn');
    await s.waitFor('#send-btn', { timeout: 60000 });
    await s.waitFor('.branch-nav');
    const regen = await s.invoke('list_messages', { conversationId: convId });
    assert.equal(regen.messages.length, 4, 'the new version replaces the old one in the active path');
    const newReply = regen.messages[3];
    assert.notEqual(newReply.id, oldReply);
    assert.deepEqual(newReply.branch, { index: 1, count: 2, siblingIds: [oldReply, newReply.id] });
    const back = await s.invoke('select_branch', { messageId: oldReply });
    assert.equal(back.messages[3].id, oldReply, 'the first version can be shown again');
    await look(s, 'light', 'ko');
    await s.clickOn(`.conv-item[data-id="${convId}"] .conv-open`);
    await s.waitFor('.messages .msg-assistant');
    await shot(s, 'chat-light-ko');
    // The other main screens, in the real window: the models page (the catalog's fit badges are
    // this machine's) and settings.
    await s.clickOn('.nav-btn[data-view="models"]');
    await s.waitFor('.models-page .cards');
    await shot(s, 'models-light-ko');
    await look(s, 'dark', 'en');
    await shot(s, 'home-dark-en');
    await s.clickOn('.nav-btn[data-view="models"]');
    await s.waitFor('.models-page .cards');
    await shot(s, 'models-dark-en');
    await s.clickOn('.nav-btn[data-view="settings"]');
    await s.waitFor('.settings-page .page-section');
    await shot(s, 'settings-dark-en');
  } finally {
    await s.end();
  }
});
