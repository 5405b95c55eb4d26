// Measures (not asserts) the front end's idle memory and the cost of re-rendering a growing
// streamed reply through markdown + sanitizer each frame. Run after `npm run build:test`:
//   node bench/render.mjs
import { startServer, launch, openApp, chatSeed } from '../tests/helpers.mjs';

const server = await startServer();
const browser = await launch();
const context = await browser.newContext(server.url);
try {
  const page = await openApp(context, server.url, chatSeed());
  const cdp = await context.newCDPSession(page);
  await cdp.send('HeapProfiler.collectGarbage');
  const metrics = Object.fromEntries((await cdp.send('Performance.enable').then(() => cdp.send('Performance.getMetrics'))).metrics.map((m) => [m.name, m.value]));
  console.log(`idle: JS heap used ${(metrics.JSHeapUsedSize / 1048576).toFixed(1)} MiB, DOM nodes ${metrics.Nodes}`);

  const box = page.getByRole('textbox', { name: 'Message' });
  await box.fill('write a long answer');
  await box.press('Enter');
  await page.waitForFunction(() => window.__hearthMock.streaming());
  // About 2000 tokens of mixed prose, lists and code; one frame is painted every 8 tokens.
  const result = await page.evaluate(async () => {
    const words = ['The', ' quick', ' **brown**', ' fox', ' jumps', ' over', ' `lazy`', ' dogs.', '\n\n- item', ' one\n- item', ' two\n\n', '```python\n', 'def f(x):\n', '    return x * 2\n', '```\n\n'];
    const frames = [];
    for (let i = 0; i < 2000; i++) {
      window.__hearthMock.token(words[i % words.length]);
      if (i % 8 === 7) {
        const t0 = performance.now();
        await new Promise((r) => requestAnimationFrame(() => r()));
        frames.push(performance.now() - t0);
      }
    }
    const el = document.querySelector('.streaming .msg-body');
    return { frames, chars: el ? el.textContent.length : 0 };
  });
  const f = result.frames.sort((a, b) => a - b);
  const last = result.frames.slice(-20);
  console.log(`stream: 2000 tokens, ${result.chars} chars rendered; frame time median ${f[Math.floor(f.length / 2)].toFixed(1)} ms, p95 ${f[Math.floor(f.length * 0.95)].toFixed(1)} ms, max ${f[f.length - 1].toFixed(1)} ms`);
  void last;
  await cdp.send('HeapProfiler.collectGarbage');
  const after = Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
  console.log(`after stream: JS heap used ${(after.JSHeapUsedSize / 1048576).toFixed(1)} MiB, DOM nodes ${after.Nodes}`);
} finally {
  await context.close();
  await browser.close();
  await server.close();
}
