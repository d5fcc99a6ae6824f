// Compresses every file of a folder with sharp at quality 50, one core,
// and prints one JSON line per file: median milliseconds of the runs and
// the output's size; outputs go to the second folder for SSIM.
import sharp from 'sharp';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, outDir, reps = '3'] = process.argv.slice(2);
sharp.concurrency(1);
sharp.cache(false);
// Untimed runs first: a fresh process's first two runs are several times
// slower than the rest (measured), which would count against the first file.
{
  const names = readdirSync(dir).sort();
  if (names.length) {
    const warm = readFileSync(join(dir, names[0]));
    for (let r = 0; r < 2; r++) await sharp(warm).jpeg({ quality: 50 }).toBuffer();
  }
}
for (const name of readdirSync(dir).sort()) {
  const buf = readFileSync(join(dir, name));
  const ms = [];
  let out;
  for (let r = 0; r < Number(reps); r++) {
    const t0 = process.hrtime.bigint();
    out = await sharp(buf).jpeg({ quality: 50 }).toBuffer();
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  ms.sort((a, b) => a - b);
  writeFileSync(join(outDir, name + '.jpg'), out);
  console.log(JSON.stringify({ file: name, ms: ms[Math.floor(ms.length / 2)], bytes: out.length }));
}
