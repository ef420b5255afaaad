import * as zlib from 'node:zlib';

/** Small generated assets for the browser tests: PNG and SVG images, CSS, scripts, JSON. */

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** A w×h RGB PNG: a diagonal gradient from `rgb` to white, so each image looks different. */
export function makePng(w: number, h: number, rgb: [number, number, number]): Buffer {
  const raw = Buffer.alloc((w * 3 + 1) * h);
  let o = 0;
  for (let y = 0; y < h; y++) {
    raw[o++] = 0; // filter: none
    for (let x = 0; x < w; x++) {
      const t = (x + y) / (w + h - 2 || 1);
      for (const c of rgb) raw[o++] = Math.round(c + (255 - c) * t);
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: truecolour
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

export function makeSvg(i: number): string {
  const hue = (i * 83) % 360;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">`
    + `<rect width="64" height="64" rx="10" fill="hsl(${hue},70%,55%)"/>`
    + `<text x="32" y="42" font-size="28" text-anchor="middle" fill="#fff" font-family="sans-serif">${i}</text></svg>`;
}

export interface Asset { path: string; type: string; body: string | Buffer }

/**
 * The forced-h3 page and its 20 sub-resources: 2 stylesheets, a CSS background image, 5 PNG and
 * 4 SVG <img>s, 3 scripts and 5 fetch() calls (JSON, text, binary) made by /js/app.js, which
 * then sets document.title to "done: ..." (or "error: ...").
 */
export function makeSite(): { page: string; assets: Asset[]; subresources: string[]; fetched: string[] } {
  const assets: Asset[] = [];
  const colours: Array<[number, number, number]> = [[220, 40, 40], [40, 160, 60], [40, 80, 220], [200, 140, 20], [140, 40, 180]];
  colours.forEach((c, i) => assets.push({ path: `/img/p${i + 1}.png`, type: 'image/png', body: makePng(64, 64, c) }));
  for (let i = 1; i <= 4; i++) assets.push({ path: `/img/s${i}.svg`, type: 'image/svg+xml', body: makeSvg(i) });
  assets.push({ path: '/img/bg.png', type: 'image/png', body: makePng(32, 32, [250, 230, 180]) });
  assets.push({ path: '/css/main.css', type: 'text/css; charset=utf-8', body:
    'body{font-family:sans-serif;margin:16px;background:#fafafa}'
    + '.hero{background:url(/img/bg.png) repeat;padding:12px;border:2px solid #444}'
    + '.grid img{width:64px;height:64px;margin:4px}' });
  assets.push({ path: '/css/extra.css', type: 'text/css; charset=utf-8', body: 'h1{color:#204080}#out{background:#eef;padding:8px;white-space:pre-wrap}' });
  assets.push({ path: '/js/a.js', type: 'text/javascript; charset=utf-8', body: 'window.harrier = { scripts: ["a"] };' });
  assets.push({ path: '/js/b.js', type: 'text/javascript; charset=utf-8', body: 'window.harrier.scripts.push("b");' });
  const fetched = ['/api/item/1', '/api/item/2', '/api/item/3', '/api/text', '/api/bytes'];
  assets.push({ path: '/js/app.js', type: 'text/javascript; charset=utf-8', body: `
window.harrier.scripts.push("app");
window.addEventListener('load', async () => {
  const out = document.getElementById('out');
  try {
    const opts = { cache: 'no-store' };
    const items = await Promise.all([1, 2, 3].map((i) => fetch('/api/item/' + i, opts).then((r) => r.json())));
    const text = await fetch('/api/text', opts).then((r) => r.text());
    const bytes = new Uint8Array(await fetch('/api/bytes', opts).then((r) => r.arrayBuffer()));
    let sum = 0;
    for (const b of bytes) sum = (sum + b) % 65536;
    const ids = items.map((x) => x.id).join(',');
    out.textContent = 'scripts: ' + window.harrier.scripts.join(',') + '\\nitems: ' + ids + '\\ntext: ' + text
      + '\\nbytes: ' + bytes.length + ' (sum ' + sum + ')\\nprotocol: ' + performance.getEntriesByType('navigation')[0].nextHopProtocol;
    document.title = 'done: ' + window.harrier.scripts.join(',') + ' items=' + ids + ' text=' + text + ' bytes=' + bytes.length + ' sum=' + sum;
  } catch (e) {
    document.title = 'error: ' + e;
  }
});
` });
  for (let i = 1; i <= 3; i++) assets.push({ path: `/api/item/${i}`, type: 'application/json', body: JSON.stringify({ id: i, name: `item ${i}` }) });
  assets.push({ path: '/api/text', type: 'text/plain; charset=utf-8', body: 'hello from harrier' });
  const bytes = Buffer.alloc(4096);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) & 0xff;
  assets.push({ path: '/api/bytes', type: 'application/octet-stream', body: bytes });

  const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>loading</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/css/main.css">
<link rel="stylesheet" href="/css/extra.css">
<script src="/js/a.js"></script>
<script src="/js/b.js"></script>
</head><body>
<h1>Harrier over HTTP/3</h1>
<div class="hero">20 sub-resources: stylesheets, a CSS background, PNG and SVG images, scripts, fetch()</div>
<div class="grid">
${colours.map((_, i) => `<img src="/img/p${i + 1}.png" alt="png ${i + 1}">`).join('\n')}
${[1, 2, 3, 4].map((i) => `<img src="/img/s${i}.svg" alt="svg ${i}">`).join('\n')}
</div>
<pre id="out">running...</pre>
<script src="/js/app.js"></script>
</body></html>
`;
  const subresources = assets.map((a) => a.path);
  return { page, assets, subresources, fetched };
}
