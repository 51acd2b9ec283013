// a) A platform admin signs in, opens a pending merchant, activates it through the
// dialog (theme, plan, subdomain with live availability) and watches provisioning finish
// live on the provisioning page.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const NAME = 'admin-activation';
let souk;
let browser;

before(async () => {
  souk = await h.startSouk(NAME);
  browser = await h.launchBrowser();
});

after(async () => {
  await browser?.close();
  await souk?.stop();
});

test('admin activates a pending merchant and sees provisioning complete live', async () => {
  const shot = h.screenshots(NAME);
  const token = await souk.login(souk.admin.email, souk.admin.password);
  const merchantName = `Browser Pending ${Date.now()}`;
  const merchant = await souk.api(
    'POST',
    '/api/v1/admin/merchants',
    { name: merchantName, owner_email: `owner-${Date.now()}@shop.test`, owner_name: 'Pat Owner' },
    token,
  );
  assert.equal(merchant.status, 'pending');

  const page = await browser.newPage();
  page.setDefaultTimeout(h.TIMEOUT);
  try {
    await page.goto(`${souk.base}/admin/login`);
    await shot(page, 'login');
    await page.getByLabel('E-mail').fill(souk.admin.email);
    await page.getByLabel('Password').fill(souk.admin.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => u.pathname.startsWith('/admin') && !u.pathname.endsWith('/login'));
    // The merchants list, through the navigation (sign-in may land on the overview).
    if (!new URL(page.url()).pathname.startsWith('/admin/merchants')) {
      await page.getByRole('navigation').getByRole('link', { name: 'Merchants', exact: true }).first().click();
    }
    await page.waitForURL(/\/admin\/merchants/);
    await page.getByRole('link', { name: merchantName }).first().waitFor();
    await shot(page, 'merchants');

    await page.getByRole('link', { name: merchantName }).first().click();
    await page.waitForURL(new RegExp(`/admin/merchants/${merchant.id}$`));
    await page.getByRole('heading', { name: merchantName }).first().waitFor();
    await shot(page, 'merchant-detail');

    await page.getByRole('button', { name: 'Activate', exact: true }).first().click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor({ state: 'visible' });
    await dialog.getByRole('group', { name: 'Theme' }).getByLabel('Classic').check();
    const plan = dialog.getByLabel('Plan');
    const planValues = await plan.locator('option').evaluateAll((os) => os.map((o) => o.value));
    assert.ok(planValues.length > 0, 'the Plan select has options');
    await plan.selectOption(planValues.includes('starter') ? 'starter' : planValues[0]);
    const subdomain = h.uniqueHandle('brw');
    const sub = dialog.getByLabel('Subdomain');
    await sub.fill(subdomain);
    // The live availability check writes its verdict next to the field.
    const outputId = await sub.getAttribute('data-check-output');
    assert.ok(outputId, 'the Subdomain input declares data-check-output');
    const verdict = await h.waitForText(page.locator(`[id="${outputId}"]`), /available/i);
    assert.doesNotMatch(verdict, /not available|taken|unavailable/i, `availability verdict: ${verdict}`);
    await dialog.getByLabel('Custom domain (optional)').waitFor();
    await shot(page, 'activate-dialog');

    await dialog.getByRole('button', { name: 'Activate' }).click();
    await page.waitForURL(new RegExp(`/admin/merchants/${merchant.id}/provisioning`));
    // Marker: it must survive until the end, so the updates arrived without a reload.
    await page.evaluate(() => {
      window.__soukNoReload = true;
    });
    await shot(page, 'provisioning-started');

    const steps = page.locator('li[data-step]');
    await steps.first().waitFor();
    await h.waitForText(page.locator('#provisioning-status'), /Completed/);
    const stepCount = await steps.count();
    assert.ok(stepCount >= 3, `expected several provisioning steps, saw ${stepCount}`);
    const total = await h.waitForText(page.locator('#provisioning-total'), /Total:\s*[\d.,]+\s*ms/);
    assert.match(total, /Total:\s*[\d.,]+\s*ms/);
    assert.equal(await page.evaluate(() => window.__soukNoReload === true), true, 'page was not reloaded');
    await shot(page, 'provisioning-completed');

    const after = await souk.api('GET', `/api/v1/admin/merchants/${merchant.id}`, undefined, token);
    assert.equal(after.status, 'active');
    assert.equal(after.handle, subdomain);
    // Every step finished: the page shows each step's API status, `completed`.
    const stepStates = await steps.evaluateAll((ls) => ls.map((li) => li.dataset.status));
    assert.ok(!stepStates.some((st) => /fail|pending|running|progress/.test(st || '')), `steps: ${stepStates}`);
    // Every step ends with data-status="completed" (the API's step status).
    await page
      .waitForFunction(
        () => [...document.querySelectorAll('li[data-step]')].every((li) => li.dataset.status === 'completed'),
        undefined,
        { timeout: 5000 },
      )
      .catch(async () => {
        const seen = await steps.evaluateAll((ls) => ls.map((li) => `${li.dataset.step}=${li.dataset.status}`));
        throw new Error(`provisioning steps after "Completed": ${seen.join(', ')}; expected data-status="completed" on each`);
      });
  } catch (e) {
    await shot(page, 'failure');
    throw e;
  } finally {
    await page.close();
  }
});
