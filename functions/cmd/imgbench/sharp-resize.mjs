// Resizes every file of a folder with sharp, one core: fit inside
// 1600×1600 and inside 200×200 (never enlarged), JPEG quality 50. Prints
// one JSON line per file with the median milliseconds and output bytes of
// each; the outputs go to the second folder (NAME.fit.jpg, NAME.thumb.jpg)
// for SSIM.
import sharp from 'sharp';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, outDir, reps = '3'] = process.argv.slice(2);
sharp.concurrency(1);
sharp.cache(false);
const sizes = { fit: 1600, thumb: 200 };
const resize = (buf, side) =>
  sharp(buf).resize(side, side, { fit: 'inside', withoutEnlargement: true }).jpeg({ quality: 50 }).toBuffer();
// Untimed runs first: a fresh process's first runs are slower.
{
  const names = readdirSync(dir).sort();
  if (names.length) {
    const warm = readFileSync(join(dir, names[0]));
    for (let r = 0; r < 2; r++) for (const side of Object.values(sizes)) await resize(warm, side);
  }
}
for (const name of readdirSync(dir).sort()) {
  const buf = readFileSync(join(dir, name));
  const line = { file: name };
  for (const [label, side] of Object.entries(sizes)) {
    const ms = [];
    let out;
    for (let r = 0; r < Number(reps); r++) {
      const t0 = process.hrtime.bigint();
      out = await resize(buf, side);
      ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    ms.sort((a, b) => a - b);
    writeFileSync(join(outDir, `${name}.${label}.jpg`), out);
    line[label] = { ms: ms[Math.floor(ms.length / 2)], bytes: out.length };
  }
  console.log(JSON.stringify(line));
}
