// Drives the classroom server's web page in Debian's Chromium with playwright-core.
// Driven by tests/web_page.rs; prints one JSON object (the observations) on stdout.
//
// usage: node browse.mjs BASE_URL LIVE_ROOM_ID MOD_USER MOD_PASS PART_USER PART_PASS MEDIA_ID SCREENSHOT_DIR
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium } from 'playwright-core';

const [base, liveRoom, modUser, modPass, partUser, partPass, mediaId, shots] = process.argv.slice(2);
const out = {};

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'classroom-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required'],
});

async function signIn(page, user, pass) {
  await page.goto(base + '/');
  await page.getByLabel('Username').fill(user);
  await page.getByLabel('Password').fill(pass);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForLoadState('load');
}

try {
  // The moderator: home → Breakout recordings → a recording → play and seek.
  const page = await context.newPage();
  const downloads = [];
  page.on('response', (r) => {
    if (r.url().includes('/download')) downloads.push({ status: r.status(), range: r.request().headers()['range'] || null });
  });
  await signIn(page, modUser, modPass);
  out.moderatorHome = await page.locator('main').innerText();
  await page.getByRole('link', { name: 'Breakout recordings' }).first().click();
  await page.waitForLoadState('load');
  out.folders = await page.locator('section.folder').evaluateAll((sections) => sections.map((s) => ({
    room: s.dataset.breakoutRoom,
    titles: [...s.querySelectorAll('tr.recording a')].map((a) => a.textContent),
  })));
  await page.screenshot({ path: path.join(shots, 'breakout-recordings.png'), fullPage: true });
  await page.locator(`tr[data-media-id="${mediaId}"] a`).click();
  await page.waitForLoadState('load');
  out.mediaTitle = await page.locator('h1').innerText();
  const video = page.locator('video#player');
  await video.evaluate((v) => new Promise((resolve, reject) => {
    if (v.readyState >= 1) return resolve();
    v.addEventListener('loadedmetadata', resolve, { once: true });
    v.addEventListener('error', () => reject(new Error('video error ' + (v.error && v.error.code))), { once: true });
    setTimeout(() => reject(new Error('no metadata after 20 s')), 20000);
  }));
  out.duration = await video.evaluate((v) => v.duration);
  out.videoSize = await video.evaluate((v) => [v.videoWidth, v.videoHeight]);
  // Plays: time advances.
  out.playedTo = await video.evaluate(async (v) => {
    v.muted = true;
    await v.play();
    const t0 = performance.now();
    while (v.currentTime < 0.5 && performance.now() - t0 < 15000) await new Promise((r) => setTimeout(r, 50));
    v.pause();
    return v.currentTime;
  });
  // Seeks: to 3.5 s, then back to 1 s.
  out.seeks = [];
  for (const target of [3.5, 1.0]) {
    out.seeks.push(await video.evaluate((v, target) => new Promise((resolve, reject) => {
      v.addEventListener('seeked', () => resolve({ target, currentTime: v.currentTime, readyState: v.readyState }), { once: true });
      setTimeout(() => reject(new Error('no seeked event')), 15000);
      v.currentTime = target;
    }), target));
  }
  out.videoError = await video.evaluate((v) => (v.error ? v.error.code : null));
  await page.screenshot({ path: path.join(shots, 'player.png') });
  out.downloads = downloads;

  // The participant: no Breakout recordings anywhere, and the folder's URL is refused.
  await context.clearCookies();
  const p2 = await context.newPage();
  await signIn(p2, partUser, partPass);
  out.participantHome = await p2.locator('main').innerText();
  out.participantLinks = await p2.getByRole('link', { name: 'Breakout recordings' }).count();
  const direct = await p2.goto(`${base}/live-rooms/${liveRoom}/recordings`);
  out.participantFolderStatus = direct.status();
  out.participantFolderSections = await p2.locator('section.folder').count();
  const media = await p2.goto(`${base}/media/${mediaId}`);
  out.participantMediaStatus = media.status();
  const dl = await p2.request.get(`${base}/api/media/${mediaId}/download`, { headers: { Range: 'bytes=0-99' } });
  out.participantDownloadStatus = dl.status();
  await p2.screenshot({ path: path.join(shots, 'participant.png') });
} catch (e) {
  out.failure = String(e && e.stack || e);
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(out) + '\n');
