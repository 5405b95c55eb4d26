// End-to-end, documents: the real app window with the real 270M model, loaded at a small context
// so that a plain text file of about a thousand words is summarized in parts (map-reduce, a few
// steps): a document dropped on the window shows its card and summary plan → its text opens →
// a summary runs with its progress bar moving → it is cancelled mid-run and nothing is saved →
// summarized again (the finished part is reused), it completes and is saved as a conversation
// holding the document → quit, delete the file, relaunch → the summary and the document's text
// are still there. Screenshots: docs/screenshots/app-document-*.png.
//
// Needs what app.test.mjs needs; tests/e2e/run provides it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session, sleep } from './webdriver.mjs';
import { APP, BASE, MODEL, REPLY_TIMEOUT, dropFiles, importAndLoad, look, shot, startDriver, stopDriver, waitReady } from './harness.mjs';

// The smallest context the summary planner takes is 512; at 1024 the text below is cut into two
// parts and their summaries are combined: three steps, and the progress bar moves between them.
const CONTEXT = 1024;
// A line the extracted text must hold (checked in the text dialog, before and after relaunch).
const MARKER = 'The lighthouse keeper of Varn counted 4,117 ships in the year of the long winter.';

/** About 800 words of plain prose (two parts at CONTEXT), varied enough that no two paragraphs are the same. */
function documentText() {
  const places = ['Varn', 'Osterly', 'the Gray Coast', 'Millbrook', 'Harrowgate', 'the salt marshes', 'Kellin Bay', 'the northern ridge'];
  const trades = ['fishing', 'weaving', 'salt making', 'boat building', 'rope making', 'bee keeping', 'stone cutting', 'bread baking'];
  const paras = [`# A short history of Varn\n\n${MARKER}`];
  for (let i = 0; i < 14; i++) {
    const place = places[i % places.length];
    const trade = trades[(i * 3) % trades.length];
    paras.push(
      `In year ${1200 + i * 7}, the people of ${place} turned to ${trade}. ` +
      `The council recorded ${30 + i * 11} families working in ${trade} that season, and ${i % 3 === 0 ? 'a storm' : i % 3 === 1 ? 'a drought' : 'a fever'} ` +
      `cost them ${i + 2} weeks of work. Traders from ${places[(i + 3) % places.length]} paid ${5 + i} silver coins for each cart of goods, ` +
      `and the road between the two towns was repaired ${1 + (i % 4)} times before the next harvest.`,
    );
  }
  return `${paras.join('\n\n')}\n`;
}

let run;
let files;

before(() => {
  assert.ok(existsSync(MODEL), `test model missing at ${MODEL}: run scripts/fetch-test-model (or set HEARTH_TEST_MODEL)`);
  run = startDriver('hearth-e2e-documents-');
  files = mkdtempSync(join(tmpdir(), 'hearth-e2e-documents-files-'));
});

after(async () => {
  await stopDriver(run);
  if (files) rmSync(files, { recursive: true, force: true });
});

/** The summary's progress bar: [tokens read, tokens total], or null when none is shown. */
const progress = (s) => s.exec(`
  const bar = document.querySelector('.doc-card .doc-progress [role=progressbar]');
  return bar ? [Number(bar.getAttribute('aria-valuenow')), Number(bar.getAttribute('aria-valuemax'))] : null;`);

async function waitProgress(s, ok, what) {
  const end = Date.now() + REPLY_TIMEOUT;
  let p;
  while (!ok((p = await progress(s)))) {
    assert.ok(Date.now() < end, `timed out waiting for ${what} (progress ${JSON.stringify(p)})`);
    await sleep(100);
  }
  return p;
}

/** Opens a document's text dialog with `button` and answers the text it shows. */
async function dialogText(s, button) {
  // A long reply scrolls the message holding the document out of view (under the header).
  await s.exec(`document.querySelector(arguments[0]).scrollIntoView({ block: 'center' });`, [button]);
  await s.clickOn(button);
  const pre = await s.waitFor('dialog.text-dialog[open] pre.doc-text', { text: (t) => t.includes(MARKER), timeout: 30000 });
  return s.text(pre);
}

test('drop a document, see the plan, cancel one summary, finish another, and it is there after a relaunch', async () => {
  const doc = join(files, 'varn-history.txt');
  writeFileSync(doc, documentText());
  let s = await Session.start(BASE, APP);
  let convId;
  let summary;
  try {
    await s.waitFor('#first-run-cta', { timeout: 60000 });
    // The context is the model's at load time, so it is set first.
    await s.invoke('set_settings', { patch: { temperature: 0, seed: 1, contextSize: CONTEXT } });
    await look(s, 'light', 'en');
    const model = await importAndLoad(s, MODEL);
    assert.equal(model.contextSize, CONTEXT);
    await s.clickOn('#new-chat');
    await s.waitFor('#composer-input');

    // Drop: the card reads the file and shows the plan for the loaded model.
    await dropFiles(s, [doc]);
    await s.waitFor('.doc-card .doc-plan', { timeout: 60000 });
    const card = await s.invoke('describe_document', { path: doc });
    assert.equal(card.kind, 'text');
    assert.equal(card.error, null);
    assert.equal(card.plan.mode, 'map_reduce', `a text this long is summarized in parts at ${CONTEXT} tokens`);
    assert.equal(card.plan.context, CONTEXT);
    assert.ok(card.plan.chunks >= 2, `chunks: ${card.plan.chunks}`);
    const shownPlan = await s.exec(`
      const plan = document.querySelector('.doc-card .doc-plan');
      return { mode: plan.dataset.mode, text: plan.textContent, facts: document.querySelector('.doc-card .doc-facts').textContent };`);
    assert.equal(shownPlan.mode, 'map_reduce');
    assert.match(shownPlan.text, new RegExp(`\\b${card.plan.chunks}\\b`), `the plan shows the chunk count: ${shownPlan.text}`);
    assert.match(shownPlan.facts, new RegExp(card.tokens.toLocaleString('en-US')), `the card shows the token count: ${shownPlan.facts}`);
    await shot(s, 'document-plan');

    // Its extracted text, as plain text in a dialog.
    assert.ok((await dialogText(s, '.doc-card [data-action="view-text"]')).includes('Kellin Bay'));
    await shot(s, 'document-text');
    await s.clickOn('dialog.text-dialog [data-action="close-text"]');

    // A run with its progress: the bar fills as steps finish; cancelled mid-run, nothing is saved.
    await s.clickOn('.doc-card [data-action="summarize"]');
    const [, total] = await waitProgress(s, (p) => p && p[1] > 0, 'the run to start');
    const [read] = await waitProgress(s, (p) => p && p[0] > 0, 'the first step to finish');
    assert.ok(read < total, `cancelled before the last step: ${read} of ${total}`);
    await shot(s, 'document-progress');
    await s.clickOn('.doc-card [data-action="cancel-summary"]');
    await s.waitFor('.toast', { text: (t) => /Summary stopped/.test(t), timeout: REPLY_TIMEOUT });
    await s.waitFor('.doc-card [data-action="summarize"]', { timeout: 30000 });
    assert.equal((await s.find('.doc-card .doc-progress')).length, 0);
    let convs = await s.invoke('list_conversations', { cursor: null, limit: 50, archived: false });
    assert.equal(convs.items.length, 0, 'a cancelled summary saves no conversation');
    await shot(s, 'document-cancelled');

    // Another run: it completes, and the summary opens as a new conversation with the document.
    await s.clickOn('.doc-card [data-action="summarize"]');
    await s.waitFor('.doc-card .doc-progress', { timeout: 30000 });
    await s.waitFor('.messages .msg-assistant .msg-body', { timeout: REPLY_TIMEOUT, text: (t) => t.trim().length > 0 });
    convs = await s.invoke('list_conversations', { cursor: null, limit: 50, archived: false });
    assert.deepEqual(convs.items.map((c) => c.title), ['Summary: varn-history.txt']);
    convId = convs.items[0].id;
    const list = await s.invoke('list_messages', { conversationId: convId });
    assert.deepEqual(list.messages.map((m) => [m.role, m.state]), [['user', 'complete'], ['assistant', 'complete']]);
    assert.deepEqual(list.messages[0].attachmentItems.map((a) => [a.name, a.kind]), [['varn-history.txt', 'document']]);
    summary = list.messages[1].text;
    assert.ok(summary.trim().length > 0, 'the summary has text');
    assert.equal((await s.find('.doc-card')).length, 0, 'the summarized document left the composer');
    await s.waitFor(`.conv-item.active[data-id="${convId}"]`);
    await shot(s, 'document-summary');
  } finally {
    await s.end();
  }

  // Relaunch without the file: the conversation holds the summary and the document's text.
  rmSync(doc);
  await sleep(1000);
  s = await Session.start(BASE, APP);
  try {
    await s.clickOn(`.conv-item[data-id="${convId}"] .conv-open`, { timeout: 60000 });
    const body = await s.waitFor('.messages .msg-assistant .msg-body', { text: (t) => t.trim().length > 0 });
    assert.ok((await s.text(body)).trim().length > 0);
    const list = await s.invoke('list_messages', { conversationId: convId });
    assert.equal(list.messages[1].text, summary, 'the same summary is stored');
    await s.waitFor('.messages .msg-user .msg-chips [data-action="attachment-text"]');
    await waitReady(s);
    await s.exec(`document.querySelector('.messages').scrollTop = 0;`);
    await shot(s, 'document-relaunch');
    assert.ok((await dialogText(s, '.messages .msg-user [data-action="attachment-text"]')).includes('Kellin Bay'));
  } finally {
    await s.end();
  }
});
