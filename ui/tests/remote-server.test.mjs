// Issue 13, the app's side: remote models on the Models page (list, add with a key sent once and
// never shown, check answers or the typed error, use, remove) and the Settings page's local API
// server switch (URL and key shown, a taken port's typed error), in English and Korean.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useApp, chatSeed, mock, screenshot } from './helpers.mjs';

const { withApp } = useApp();

const KEY = 'sk-remoteSECRET-123456';
const BIG = { name: 'big-27b', url: 'http://10.0.0.5:8080', model: 'gemma-3-27b-it', hasKey: true, addedAt: '2026-11-27T09:00:00.000Z' };

async function openModels(page, name = 'Models') {
  await page.getByRole('button', { name, exact: true }).click();
  await page.waitForSelector('#remote-section');
}

const row = (page, name) => page.locator(`[data-remote="${name}"]`);

test('remote models: listed, added (the key sent once and never shown), checked, used and removed', async () => {
  await withApp(chatSeed({ remote: [BIG], remoteAnswers: { 'http://10.0.0.5:8080': ['gemma-3-27b-it'] } }), async (page) => {
    await openModels(page);
    const big = row(page, 'big-27b');
    assert.match(await big.textContent(), /http:\/\/10\.0\.0\.5:8080/);
    assert.match(await big.textContent(), /gemma-3-27b-it · key stored/);

    // A server that answers shows what it offers.
    await big.getByRole('button', { name: 'Check: big-27b' }).click();
    await page.waitForSelector('[data-remote="big-27b"] .remote-check[data-ok="true"]');
    assert.equal(await big.locator('.remote-check').textContent(), 'Answers: gemma-3-27b-it');

    // The form refuses an empty name before asking the shell.
    await page.getByRole('button', { name: 'Add remote model' }).click();
    assert.equal(await page.locator('#remote-error').textContent(), 'Enter a name');
    assert.equal((await mock(page, 'callsOf', 'add_remote_model')).length, 0);

    assert.equal(await page.getByLabel('API key (optional)').getAttribute('type'), 'password');
    await page.getByLabel('Name', { exact: true }).fill('laptop-2');
    await page.getByLabel('Server address').fill('http://10.0.0.9:8080/v1');
    await page.getByLabel('API key (optional)').fill(KEY);
    await page.getByRole('button', { name: 'Add remote model' }).click();
    await page.waitForSelector('[data-remote="laptop-2"] .remote-check[data-error-code="remote"]');
    assert.deepEqual((await mock(page, 'callsOf', 'add_remote_model')).map((c) => c.args), [{ name: 'laptop-2', url: 'http://10.0.0.9:8080/v1', model: null, apiKey: KEY }]);
    // Added, then checked at once: this server does not answer, and the row says so in words.
    const added = row(page, 'laptop-2');
    assert.match(await added.textContent(), /first model the server lists · key stored/);
    assert.equal(await added.locator('.error-sentence').textContent(), 'The model server "laptop-2" at http://10.0.0.9:8080 failed. Check that it is running and reachable, and its key.');
    assert.equal(await page.getByLabel('API key (optional)').inputValue(), '', 'the key leaves the form');
    const html = await page.evaluate(() => document.documentElement.outerHTML);
    assert.ok(!html.includes(KEY), 'the key appears nowhere in the page');
    await screenshot(page, 'models-remote-en');

    // Use: loaded like a local model, shown as running on its server, with no local device.
    await big.getByRole('button', { name: 'Use: big-27b' }).click();
    await page.waitForSelector('[data-remote="big-27b"] [data-runs-on]');
    assert.equal(await big.locator('[data-runs-on]').textContent(), 'Runs on http://10.0.0.5:8080');
    assert.deepEqual((await mock(page, 'callsOf', 'load_model')).map((c) => c.args.modelId), ['big-27b']);
    await page.getByRole('button', { name: 'Settings' }).click();
    await page.waitForSelector('#set-device');
    assert.equal(await page.locator('#device-in-use').textContent(), 'Runs on http://10.0.0.5:8080');

    // The one in use cannot be removed; another can.
    await openModels(page);
    await row(page, 'big-27b').getByRole('button', { name: 'Remove: big-27b' }).click();
    await row(page, 'big-27b').locator('[data-action="confirm-remove"]').click();
    await page.waitForFunction(() => [...document.querySelectorAll('.toast-error .error-code code')].some((c) => c.textContent === 'model_in_use'));
    await row(page, 'laptop-2').getByRole('button', { name: 'Remove: laptop-2' }).click();
    assert.equal(await row(page, 'laptop-2').locator('.confirm .small').textContent(), 'Forget laptop-2 and its key?');
    await row(page, 'laptop-2').locator('[data-action="confirm-remove"]').click();
    await page.waitForFunction(() => !document.querySelector('[data-remote="laptop-2"]'));
    assert.deepEqual((await mock(page, 'callsOf', 'remove_remote_model')).map((c) => c.args.name), ['big-27b', 'laptop-2']);
    assert.equal(await row(page, 'big-27b').count(), 1);
  });
});

test('remote models in Korean: the empty list, a refused address as a translated error', async () => {
  await withApp(chatSeed({ settings: { theme: 'light', language: 'ko' } }), async (page) => {
    await openModels(page, '모델');
    assert.equal(await page.getByRole('heading', { name: '다른 컴퓨터의 모델' }).count(), 1);
    assert.equal(await page.locator('#remote-none').textContent(), '아직 원격 모델이 없습니다.');
    await page.getByLabel('이름', { exact: true }).fill('x');
    await page.getByLabel('서버 주소').fill('ftp://nowhere');
    await page.getByRole('button', { name: '원격 모델 추가' }).click();
    await page.waitForSelector('#remote-error[data-error-code="invalid_url"]');
  });
});

async function openSettings(page, name = 'Settings') {
  await page.getByRole('button', { name }).click();
  await page.waitForSelector('#server-section #set-server:not([disabled])');
}

test('the local API server: on shows its URL and key, a taken port is a clear error, off stops it', async () => {
  await withApp(chatSeed({ takenPorts: [11435] }), async (page) => {
    await openSettings(page);
    const sw = page.getByRole('switch', { name: 'Run the OpenAI-compatible API server' });
    assert.equal(await sw.isChecked(), false);
    assert.equal(await page.locator('#server-status').textContent(), 'Off');
    assert.equal(await page.locator('#server-key').count(), 0, 'no key before the first switch-on');

    // The default port is taken by another program: the typed error, the switch stays off.
    await sw.click();
    await page.waitForSelector('#server-error[data-error-code="port_in_use"]');
    assert.equal(await page.locator('#server-error .error-sentence').textContent(), 'Another program is already using 127.0.0.1:11435. Choose another port for the local API server.');
    assert.equal(await page.getByRole('switch').isChecked(), false);
    assert.equal(await mock(page, 'serverRunning'), false);

    await page.getByLabel('Port').fill('18080');
    await page.getByRole('switch').check();
    await page.waitForSelector('#server-url');
    assert.equal(await page.locator('#server-url').textContent(), 'http://127.0.0.1:18080/v1');
    assert.equal(await page.locator('#server-status').textContent(), 'Running at http://127.0.0.1:18080/v1');
    assert.match(await page.locator('#server-key').textContent(), /^hearth-[0-9a-f]{64}$/);
    assert.equal(await page.locator('#server-error').count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Copy API key' }).count(), 1);
    assert.equal(await page.getByRole('button', { name: 'Copy address' }).count(), 1);
    assert.equal(await page.getByLabel('Store API conversations in the chat history').isChecked(), false, 'off by default');
    await page.locator('#server-section').scrollIntoViewIfNeeded();
    await screenshot(page, 'settings-server-en');

    await page.getByLabel('Store API conversations in the chat history').check();
    await page.getByRole('switch').uncheck();
    await page.waitForSelector('#server-status >> text=Off');
    assert.equal(await mock(page, 'serverRunning'), false);
    assert.deepEqual((await mock(page, 'callsOf', 'set_local_server')).map((c) => c.args.settings), [
      { enabled: true, port: 11435, store: false, requireKey: false },
      { enabled: true, port: 18080, store: false, requireKey: false },
      { enabled: true, port: 18080, store: true, requireKey: false },
      { enabled: false, port: 18080, store: true, requireKey: false },
    ]);
    // The key stays shown (it is kept for the next switch-on).
    assert.equal(await page.locator('#server-key').count(), 1);
  });
});

test('the local API server in Korean: on at start but its port taken shows the error', async () => {
  await withApp(chatSeed({ settings: { theme: 'light', language: 'ko' }, server: { enabled: true, port: 11435 }, takenPorts: [11435] }), async (page) => {
    await openSettings(page, '설정');
    assert.equal(await page.getByRole('heading', { name: '로컬 API 서버' }).count(), 1);
    assert.equal(await page.getByRole('switch', { name: 'OpenAI 호환 API 서버 실행' }).isChecked(), true);
    assert.equal(await page.locator('#server-status').textContent(), '꺼짐');
    assert.equal(await page.locator('#server-error .error-sentence').textContent(), '다른 프로그램이 이미 127.0.0.1:11435를 사용하고 있습니다. 로컬 API 서버에 다른 포트를 고르세요.');
    await mock(page, 'takePort', 11435, false);
    // Applying again once the port is free starts it.
    await page.getByLabel('포트').fill('11435');
    await page.getByLabel('포트').dispatchEvent('change');
    await page.waitForSelector('#server-url');
    assert.equal(await page.locator('#server-status').textContent(), 'http://127.0.0.1:11435/v1에서 실행 중');
    assert.equal(await page.getByRole('button', { name: 'API 키 복사' }).count(), 1);
  });
});
