// Drives VS Code (code-server) in headless Chromium: open a Python file, type, wait for codeloop's grey
// ghost text, screenshot it, press Tab, read the line back. Prints one JSON object.
// Env: CODE_URL (workbench URL with ?folder=), PLAYWRIGHT (path to playwright-core), SCREENSHOT (png path),
//      FILE_NAME (file to open), LINE (1-based), TYPE (text to type at the end of that line).
const { chromium } = require(process.env.PLAYWRIGHT);

async function main() {
  const out = { ok: false };
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 700 } });
    await page.goto(process.env.CODE_URL, { waitUntil: 'domcontentloaded', timeout: 60000 });
    await page.waitForSelector('.monaco-workbench', { timeout: 60000 });
    await page.waitForTimeout(3000);
    // open the file from the Explorer (quick open is racy while the workbench is still loading)
    const row = `.monaco-list-row:has-text("${process.env.FILE_NAME}")`;
    await page.waitForSelector(row, { timeout: 60000 });
    for (let i = 0; i < 5; i++) {
      await page.click(row);
      try {
        await page.waitForSelector('.monaco-editor .view-lines .view-line', { timeout: 5000 });
        break;
      } catch (e) { /* retry */ }
    }
    await page.waitForTimeout(1500);
    // go to the line: the quick input may take keys before it is ready on a busy machine, so wait for it
    // to open, and for it to close after Enter, and start over if it did not
    for (let i = 0; i < 5; i++) {
      await page.click('.monaco-editor .view-lines');
      await page.keyboard.press('Control+G');
      try {
        await page.waitForSelector('.quick-input-widget', { state: 'visible', timeout: 5000 });
        await page.keyboard.type(process.env.LINE);
        await page.waitForTimeout(300);
        await page.keyboard.press('Enter');
        await page.waitForSelector('.quick-input-widget', { state: 'hidden', timeout: 5000 });
        break;
      } catch (e) {
        await page.keyboard.press('Escape');
      }
    }
    await page.keyboard.press('End');
    // the language server may still be starting: type, and retype until ghost text shows
    let ghost = null;
    for (let attempt = 0; attempt < 6 && !ghost; attempt++) {
      if (attempt > 0) {
        for (let i = 0; i < process.env.TYPE.length; i++) await page.keyboard.press('Backspace');
      }
      await page.keyboard.type(process.env.TYPE, { delay: 80 });
      try {
        ghost = await page.waitForSelector('.ghost-text-decoration, .ghost-text', { timeout: 8000 });
      } catch (e) { ghost = null; }
    }
    if (!ghost) throw new Error('no ghost text appeared');
    out.ghost_text = (await page.$$eval('.ghost-text-decoration, .ghost-text', els => els.map(e => e.textContent).join('')));
    out.ghost_color = await ghost.evaluate(e => getComputedStyle(e).color);
    await page.screenshot({ path: process.env.SCREENSHOT });
    await page.keyboard.press('Tab');
    await page.waitForTimeout(800);
    out.lines = await page.$$eval('.monaco-editor .view-line', els => els.map(e => e.textContent.replace(/\u00a0/g, ' ')));
    // the status-bar item: ready after the suggestion, "off" after a click (the toggle)
    const item = '.statusbar-item:has-text("codeloop")';
    out.status = (await page.textContent(item)).trim();
    await page.click(item);
    await page.waitForSelector('.statusbar-item:has-text("codeloop off")', { timeout: 10000 }).catch(() => {});
    out.status_after_click = (await page.textContent(item)).trim();
    out.ok = true;
  } catch (e) {
    out.error = String(e && e.stack || e);
    try { await (await browser.contexts()[0].pages()[0]).screenshot({ path: process.env.SCREENSHOT + '.fail.png' }); } catch (_) {}
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
}
main();
