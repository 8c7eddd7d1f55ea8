// Drives Debian's Chromium (headless) through socialauth's demo page: the
// provider's button, the test provider's login and consent forms, and back
// to the page, which shows the user. Prints one JSON line with what the page
// showed; keeps screenshots.
//
//   node demo.mjs <demo URL> <provider> <username> <password> <screenshot dir>
//
// SOCIALAUTH_CHROMIUM names the browser (default /usr/bin/chromium). Every
// address it is given is 127.0.0.1; the flags keep Chromium from reaching
// out on its own.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const [demoUrl, provider, username, password, shots] = process.argv.slice(2);
if (!shots) {
  console.error('usage: node demo.mjs <demo URL> <provider> <username> <password> <screenshot dir>');
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.SOCIALAUTH_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-dev-shm-usage',
  ],
});
const problems = [];
const requests = [];
try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  // A failed load is reported with its address below; its console line
  // says less.
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      problems.push(`console: ${message.text()}`);
    }
  });
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  const posts = [];
  page.on('request', (request) => {
    requests.push(new URL(request.url()).host);
    if (request.method() === 'POST') posts.push(new URL(request.url()).pathname);
  });

  // An address with an answer in it, opened in a fresh tab: what the page
  // makes of an answer to a login it did not start.
  if (new URL(demoUrl).search) {
    await page.goto(demoUrl);
    await page.locator('#result:not([hidden]), #failure:not([hidden])').first().waitFor();
    const failure = (await page.locator('#failure:not([hidden])').count())
      ? await page.locator('#failure-text').textContent()
      : null;
    console.log(JSON.stringify({ failure, finalUrl: page.url(), posts, problems }));
  } else {
    await page.goto(demoUrl);
    const button = page.locator(`button[data-provider="${provider}"]`);
    await button.waitFor({ state: 'visible' });
    const buttons = await page.locator('#provider-list button').allTextContents();
    await page.screenshot({ path: join(shots, 'demo-providers.png'), fullPage: true });

    await button.click();
    // The test providers' own pages: the OpenID Connect provider's login form
    // then its consent form, or the OAuth 1.0a provider's one form.
    const form = page.locator('form#login, form#oauth_form').first();
    await form.waitFor();
    const providerLogin = page.url();
    await form.locator('input[name="login"]').fill(username);
    await form.locator('input[name="password"]').fill(password);
    await form.locator('button[type="submit"]').first().click();
    await page.locator('form#consent, #result:not([hidden]), #failure:not([hidden])').first().waitFor();
    if (await page.locator('form#consent').count()) {
      await page.click('form#consent button[type="submit"]');
    }

    await page.locator('#result:not([hidden]), #failure:not([hidden])').first().waitFor();
    const failure = (await page.locator('#failure:not([hidden])').count())
      ? await page.locator('#failure-text').textContent()
      : null;
    const text = async (id) => (await page.locator(`#${id}`).textContent()) ?? '';
    const accounts = await page.locator('#accounts tbody tr').evaluateAll((rows) =>
      rows.map((row) => Array.from(row.cells, (cell) => cell.textContent)),
    );
    await page.screenshot({ path: join(shots, 'demo.png'), fullPage: true });
    const result = {
      buttons,
      providerLogin,
      finalUrl: page.url(),
      failure,
      outcome: await text('outcome'),
      user: {
        id: await text('user-id'),
        username: await text('user-username'),
        email: await text('user-email'),
        emailVerified: await text('user-email-verified'),
        name: await text('user-name'),
      },
      accounts,
      problems,
      hosts: [...new Set(requests)],
    };
    console.log(JSON.stringify(result));
  }
} catch (error) {
  console.log(JSON.stringify({ error: String(error), problems, hosts: [...new Set(requests)] }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
