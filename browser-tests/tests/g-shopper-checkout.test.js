// g) Shoppers buy on a demo storefront: a guest adds a product to the cart, checks out
// with bank transfer and lands on the confirmation page; a shopper creates an account,
// buys with cash on delivery and finds the order in the account; the owner fulfils the
// guest's order from the dashboard with a tracking number.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const NAME = 'shopper-checkout';
let souk;
let browser;

before(async () => {
  souk = await h.startSouk(NAME, { demo: true });
  browser = await h.launchBrowser();
});

after(async () => {
  await browser?.close();
  await souk?.stop();
});

async function addFirstProduct(page, store) {
  await page.goto(`${store}/products`);
  await page.locator('a[href*="/products/"]').first().click();
  await page.waitForURL((u) => /\/products\/[^/]+$/.test(u.pathname));
  await page.getByRole('button', { name: 'Add to cart' }).click();
  await page.waitForURL((u) => u.pathname.endsWith('/cart'));
  await page.getByRole('heading', { name: 'Your cart' }).waitFor();
}

async function checkout(page, email, payment) {
  await page.getByRole('link', { name: 'Check out' }).click();
  await page.waitForURL((u) => u.pathname.endsWith('/checkout'));
  await page.getByLabel('E-mail', { exact: true }).fill(email);
  await page.getByLabel('Full name', { exact: true }).fill('Browser Shopper');
  await page.getByLabel('Address', { exact: true }).fill('12 Rue de la Gare');
  await page.getByLabel('Postal code', { exact: true }).fill('L-1611');
  await page.getByLabel('City', { exact: true }).fill('Luxembourg');
  await page.getByLabel('Country code (e.g. LU)').fill('LU');
  await page.getByRole('button', { name: 'Save address' }).click();
  await page.locator('#shipping').waitFor();
  await page.getByRole('radio', { name: new RegExp(`^${payment}`) }).check();
  await page.getByRole('button', { name: /Place order/ }).click();
  await page.waitForURL((u) => /\/orders\/[0-9a-f-]+$/.test(u.pathname));
  const heading = await page.getByRole('heading', { name: /Order #\d+/ }).textContent();
  return { url: page.url(), number: heading.match(/#(\d+)/)[1] };
}

test('a guest and a customer buy on the demo storefront; the owner fulfils the order', async () => {
  const shot = h.screenshots(NAME);
  const store = `${souk.base}/s/roastery`;
  const guest = await h.newPage(browser);
  let guestOrder;
  try {
    await addFirstProduct(guest, store);
    await shot(guest, 'cart');
    guestOrder = await checkout(guest, 'guest@shopper.test', 'Bank transfer');
    await h.waitForText(guest.locator('body'), /How to pay/);
    await shot(guest, 'confirmation');
  } finally {
    await guest.context().close();
  }

  const member = await h.newPage(browser);
  try {
    await member.goto(`${store}/account`);
    const reg = member.locator('form[action$="/account/register"]');
    await reg.getByLabel('First name').fill('Mia');
    await reg.getByLabel('E-mail').fill('mia@shopper.test');
    await reg.getByLabel(/^Password/).fill('Mia-Shopper-Passw0rd');
    await reg.getByRole('button', { name: 'Create account' }).click();
    await member.getByRole('heading', { name: 'Hello Mia' }).waitFor();
    await addFirstProduct(member, store);
    const order = await checkout(member, 'mia@shopper.test', 'Cash on delivery');
    await member.goto(`${store}/account`);
    await h.waitForText(member.locator('body'), new RegExp(`#${order.number}`));
    await shot(member, 'account-orders');
  } finally {
    await member.context().close();
  }

  const owner = await h.newPage(browser);
  try {
    await h.signIn(owner, souk.base, 'dashboard', 'owner@roastery.example', 'demo-owner-password');
    // The demo owner's password is an initial one: the dashboard asks for a new one first.
    if (new URL(owner.url()).pathname.endsWith('/password')) {
      await owner.getByLabel('Current password').fill('demo-owner-password');
      await owner.getByLabel('New password').fill('Roastery-Owner-Passw0rd');
      await owner.getByRole('button', { name: 'Change password' }).click();
      await owner.waitForURL((u) => !u.pathname.endsWith('/password'));
      if (new URL(owner.url()).pathname.endsWith('/login')) {
        await h.signIn(owner, souk.base, 'dashboard', 'owner@roastery.example', 'Roastery-Owner-Passw0rd');
      }
    }
    const id = guestOrder.url.split('/orders/')[1];
    await owner.goto(`${souk.base}/dashboard/orders/${id}`);
    await shot(owner, 'order-page');
    await owner.getByRole('heading', { name: `Order #${guestOrder.number}` }).waitFor();
    await owner.getByLabel('Carrier').fill('Post Luxembourg');
    await owner.getByLabel('Tracking number').fill('LU000111222');
    await owner.getByRole('button', { name: 'Fulfil all items' }).click();
    await h.waitForText(owner.locator('body'), /Order fulfilled/);
    await h.waitForText(owner.locator('body'), /tracking LU000111222/);
    await shot(owner, 'fulfilled');
  } finally {
    await owner.context().close();
  }
  // The guest's confirmation e-mail links to the order.
  const link = await h.waitForMailLink(souk, 'guest@shopper.test', '/orders/');
  assert.ok(link.endsWith(guestOrder.url.split('/orders/')[1]), link);
});
