// Remakes docs/screenshot.png, the README's picture of the page: serves www/ (build the wasm
// first: ./build.sh wasm), drops three of the fixture photos on WebGPU, enlarges a conv1 map
// and photographs the top of the page.  Usage: node tools/screenshot.mjs [out.png]
import { join } from 'node:path';
import { ROOT, WAIT, drop, launch, photo, settled, startServer } from '../tests/browser/lib.mjs';

const out = process.argv[2] || join(ROOT, 'docs/screenshot.png');
const { srv, url } = await startServer();
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1500 } });
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', WAIT);
  await drop(page, 'drop-zone', [photo('chelsea.png'), photo('coffee.png'), photo('astronaut.png')]);
  await settled(page, 'astronaut.png');
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="activations"] details[open]')]
    .every((d) => d.querySelector('canvas')), null, WAIT);
  await page.locator('[data-testid="activations"] details[data-layer="conv1"] canvas').first().click({ position: { x: 40, y: 8 } });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: out });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  srv.kill();
}
