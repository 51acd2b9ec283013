// c) An invited Editor accepts the invitation, signs in, sees no "Team" link, and the
// team page answers with the 403 "Not allowed" page.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const NAME = 'editor-forbidden';
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

test('an invited editor joins, has no Team link and gets "Not allowed" on /dashboard/team', async () => {
  const shot = h.screenshots(NAME);
  const adminToken = await souk.login(souk.admin.email, souk.admin.password);
  const ownerEmail = `owner-${Date.now()}@editor.test`;
  const ownerPassword = 'Owner-Browser-Passw0rd';
  await h.provisionedMerchant(souk, adminToken, {
    name: 'Browser Editor Shop',
    ownerEmail,
    ownerName: 'Otto Owner',
    subdomain: h.uniqueHandle('edt'),
    plan: 'growth',
  });
  // The owner sets a password with the welcome link's token and invites an editor (REST).
  const welcome = await h.waitForMailLink(souk, ownerEmail, '/set-password?token=');
  await souk.api('POST', '/api/v1/auth/set-password', { token: h.tokenOf(welcome), password: ownerPassword });
  const ownerToken = await souk.login(ownerEmail, ownerPassword);
  const editorEmail = `editor-${Date.now()}@editor.test`;
  const editorPassword = 'Editor-Browser-Passw0rd';
  const inv = await souk.api('POST', '/api/v1/team/invitations', { email: editorEmail, role: 'editor' }, ownerToken);
  assert.equal(inv.role, 'editor');
  const link = await h.waitForMailLink(souk, editorEmail, '/invitations/accept?token=');

  const page = await h.newPage(browser);
  try {
    await page.goto(link);
    await page.getByLabel('Your name').fill('Eddie Editor');
    await page.getByLabel('Choose a password').fill(editorPassword);
    await shot(page, 'accept-invitation');
    await page.getByRole('button', { name: 'Join' }).click();
    await page.waitForURL((u) => u.pathname === '/invitations/accept');
    await h.waitForText(page.locator('body'), /joined/i);
    await shot(page, 'joined');

    await h.signIn(page, souk.base, 'dashboard', editorEmail, editorPassword);
    // The navigation is there (Products for an editor) but not Team.
    const nav = page.getByRole('navigation').filter({ has: page.getByRole('link', { name: 'Products' }) });
    await nav.first().waitFor();
    assert.equal(await page.getByRole('link', { name: 'Team', exact: true }).count(), 0, 'no Team link for an editor');
    await shot(page, 'editor-dashboard');

    const resp = await page.goto(`${souk.base}/dashboard/team`);
    assert.equal(resp.status(), 403);
    assert.match(await page.title(), /^Not allowed/);
    await page.getByRole('heading', { name: 'Not allowed' }).waitFor();
    await shot(page, 'team-not-allowed');

    // The API behind the page refuses too.
    const editorToken = await souk.login(editorEmail, editorPassword);
    await assert.rejects(souk.api('GET', '/api/v1/team/members', undefined, editorToken), / 403: /);
  } catch (e) {
    await shot(page, 'failure');
    throw e;
  } finally {
    await page.context().close();
  }
});
