// The portal in a real browser: Debian's headless Chromium driven by playwright-core.
// Usage: node portal.mjs BASE_URL OPEN_RESOURCE CONDITIONAL_RESOURCE OUT_DIR
// Prints TAP lines (ok / not ok), one per step, and keeps a screenshot of every page in
// OUT_DIR. Exit status 0 when every step passed.
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';

const [base, open, cond, out] = process.argv.slice(2);
let n = 0, failed = 0;
const step = async (name, fn) => {
    n++;
    try {
        await fn();
        console.log(`ok ${n} - browser: ${name}`);
    } catch (e) {
        failed++;
        console.log(`not ok ${n} - browser: ${name}\n# ${String(e.message).split('\n').join('\n# ')}`);
    }
};
const must = (cond, what) => { if (!cond) throw new Error(what); };

const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const context = await browser.newContext({ acceptDownloads: true, locale: 'zh-CN' });
const page = await context.newPage();
page.setDefaultTimeout(15000);
const shot = (name) => page.screenshot({ path: `${out}/${name}.png`, fullPage: true });

await step('search in Chinese from the home page (keyboard only)', async () => {
    await page.goto(`${base}/`);
    await shot('01-home');
    await page.getByLabel('搜索数据（标题、摘要、关键词）').fill('空气质量');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/dataset\?q=/);
    must((await page.locator('#results li').count()) >= 1, 'no results');
    must(await page.getByRole('link', { name: '网关测试 空气质量日报' }).isVisible(), 'the entry is not listed');
    await shot('02-results');
});

await step('open a dataset: metadata, dictionary, preview', async () => {
    await page.getByRole('link', { name: '网关测试 空气质量日报' }).click();
    await page.waitForURL(new RegExp(`/dataset/${open}$`));
    must(await page.getByRole('heading', { name: '数据字典' }).isVisible(), 'no dictionary');
    must((await page.locator('#preview-table tbody tr').count()) === 20, 'the preview has not 20 rows');
    await shot('03-dataset');
});

await step('page the preview', async () => {
    await page.locator('a[rel=next]').click();
    await page.waitForURL(/page=2/);
    must((await page.locator('#preview-table').innerText()).includes('第 21 行, 含逗号'), 'page 2 does not start at row 21');
    await shot('04-preview-page-2');
});

await step('download the CSV', async () => {
    const [dl] = await Promise.all([
        page.waitForEvent('download'),
        page.locator(`a[href^="/datastore/dump/${open}-v1?format=csv"]`).click(),
    ]);
    const path = `${out}/download.csv`;
    await dl.saveAs(path);
    const text = readFileSync(path, 'utf8').replace(/^\uFEFF/, '');
    const lines = text.trim().split(/\r?\n/);
    must(lines[0] === 'id,day,note', `header ${lines[0]}`);
    must(lines.length === 51, `${lines.length - 1} rows`);
});

await step('sign up', async () => {
    await page.goto(`${base}/user/register`);
    await shot('05-register');
    await page.getByLabel('用户名').fill('browser.user');
    await page.getByLabel('姓名（可选）').fill('李四');
    await page.getByLabel('密码（至少 8 位）').fill('correct horse battery');
    await page.getByRole('button', { name: '注册' }).click();
    await page.waitForURL(/\/user$/);
    must((await page.locator('h1').innerText()).includes('browser.user'), 'not signed in');
    await shot('06-my-page');
});

await step('apply for conditional data', async () => {
    await page.goto(`${base}/dataset/${cond}`);
    await shot('07-conditional');
    await page.getByLabel('用途').fill('城市信用研究');
    await page.getByLabel('所需字段与范围').fill('全部字段');
    await page.getByLabel('使用期限 自（YYYY-MM-DD）').fill('2026-01-01');
    await page.getByLabel('至').fill('2026-12-31');
    await page.getByRole('button', { name: '提交申请' }).click();
    await page.getByText('申请已提交').first().waitFor();
    await shot('08-applied');
    await page.goto(`${base}/user`);
    must((await page.locator('main').innerText()).includes(cond), 'the application is not listed');
    await shot('09-my-applications');
});

await browser.close();
console.log(`1..${n}`);
process.exit(failed ? 1 : 0);
