// Issue 9: the Settings page offers only the devices this build can use (available_devices) and
// shows what the loaded model runs on (current_model's device and threads), in English and Korean.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useApp, chatSeed, mock, screenshot } from './helpers.mjs';

const { withApp } = useApp();

const deviceOptions = (page) => page.locator('#set-device option').evaluateAll((os) => os.map((o) => ({ value: o.value, text: o.textContent, disabled: o.disabled })));

async function openSettings(page, name = 'Settings') {
  await page.getByRole('button', { name }).click();
  await page.waitForSelector('#set-device');
}

test('a CPU-only build offers no GPU, and the device in use is shown', async () => {
  await withApp(chatSeed(), async (page) => {
    assert.equal((await mock(page, 'callsOf', 'available_devices')).length, 1);
    await openSettings(page);
    assert.deepEqual((await deviceOptions(page)).map((o) => o.value), ['auto', 'cpu']);
    assert.equal(await page.getByLabel('Device').inputValue(), 'auto');
    assert.equal(await page.locator('#device-in-use').textContent(), 'In use: CPU · 2 threads');
    assert.equal(await page.getByLabel('Device').getAttribute('aria-describedby'), 'device-in-use');
  });
});

test('a build with a GPU offers it; threads apply at once and a device change reloads', async () => {
  await withApp(chatSeed({ devices: ['cpu', 'cuda'] }), async (page) => {
    await openSettings(page);
    assert.deepEqual(await deviceOptions(page), [
      { value: 'auto', text: 'Automatic', disabled: false },
      { value: 'cpu', text: 'CPU', disabled: false },
      { value: 'gpu', text: 'GPU', disabled: false },
    ]);
    assert.equal(await page.locator('#device-in-use').textContent(), 'In use: GPU (CUDA) · 2 threads');

    await page.getByLabel('Threads (empty = automatic)').fill('6');
    await page.getByLabel('Threads (empty = automatic)').press('Tab');
    await page.waitForSelector('#device-in-use >> text=In use: GPU (CUDA) · 6 threads');

    // A new device reloads the model in the background (the mock's reload takes 150 ms); the page
    // follows current_model until it is ready again and shows the new device.
    await page.getByLabel('Device').selectOption('cpu');
    await page.waitForSelector('#device-in-use >> text=In use: CPU · 6 threads');
    assert.equal(await page.getByLabel('Device').inputValue(), 'cpu');
    assert.ok((await mock(page, 'callsOf', 'current_model')).length >= 2, 'the model status was asked again');
    await page.getByLabel('Threads (empty = automatic)').fill('1');
    await page.getByLabel('Threads (empty = automatic)').press('Tab');
    await page.waitForSelector('#device-in-use >> text=In use: CPU · 1 thread');
    await screenshot(page, 'settings-devices-en');
  });
});

test('a stored GPU choice without a GPU stays chosen, marked unavailable', async () => {
  await withApp(chatSeed({ settings: { theme: 'light', language: 'en', device: 'gpu' } }), async (page) => {
    await openSettings(page);
    assert.deepEqual(await deviceOptions(page), [
      { value: 'auto', text: 'Automatic', disabled: false },
      { value: 'cpu', text: 'CPU', disabled: false },
      { value: 'gpu', text: 'GPU (not available here)', disabled: true },
    ]);
    assert.equal(await page.getByLabel('Device').inputValue(), 'gpu');
    await page.waitForSelector('#device-note >> text=This build found no GPU it can use here, so the model runs on the CPU.');
    assert.equal(await page.locator('#device-in-use').textContent(), 'In use: CPU · 2 threads');
    // Nothing was saved on the user's behalf.
    assert.equal((await mock(page, 'callsOf', 'set_settings')).length, 0);
  });
});

test('the device in use is shown in Korean, and nothing when no model is loaded', async () => {
  await withApp(chatSeed({ settings: { theme: 'light', language: 'ko', threads: 4 } }), async (page) => {
    await openSettings(page, '설정');
    assert.equal(await page.locator('#device-in-use').textContent(), '사용 중: CPU · 스레드 4개');
    assert.deepEqual((await deviceOptions(page)).map((o) => o.text), ['자동', 'CPU']);
  });
  await withApp(chatSeed({ loaded: null }), async (page) => {
    await openSettings(page);
    assert.equal(await page.locator('#device-in-use').count(), 0);
    assert.equal(await page.getByLabel('Device').getAttribute('aria-describedby'), null);
  });
});
