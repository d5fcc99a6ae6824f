#!/usr/bin/env bash
# Fetches the benchmark corpus: real photographs and artwork from Debian
# wallpaper packages (apt-get download + dpkg -x, never committed). Keeps
# every JPEG of at least 100 KB (of Plasma's wallpapers, which come in many
# sizes each, only the largest size), and six PNGs over 1 MB. Then 16
# JPEGs written as cameras and photo editors write them: libjpeg-turbo's
# cjpeg at quality 90-95, 4:4:4 and 4:2:2, baseline and progressive, from
# lossless sources: the eight largest other PNGs, and the eight largest
# JPEGs halved (which washes out their own JPEG artefacts). imgbench (the
# second argument) decodes the sources to PPM.
set -euo pipefail
dir=${1:-.bench}
imgbench=$(realpath "${2:-imgbench}")
debs="ukui-wallpapers lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 mate-backgrounds plasma-workspace-wallpapers"
mkdir -p "$dir/debs" "$dir/x" "$dir/corpus"
if [ -n "$(ls -A "$dir/corpus")" ]; then echo "corpus: $(ls "$dir/corpus" | wc -l) files in $dir/corpus (delete it to fetch again)"; exit 0; fi
cd "$dir/debs"
if ! apt-get download $debs >/dev/null 2>&1; then
  apt-get update -qq && apt-get download $debs >/dev/null
fi
for d in *.deb; do dpkg -x "$d" ../x; done
cd ..
pick() { # files matching the find expression; one (the largest) per Plasma wallpaper
  find x -type f "$@" -printf '%h\t%s\t%p\n' | sort -t$'\t' -k1,1 -k2,2nr \
    | awk -F'\t' '{key = ($1 ~ /contents\/images/) ? $1 : $3} !seen[key]++ {print $2 "\t" $3}'
}
pick \( -iname '*.jpg' -o -iname '*.jpeg' \) -size +100k | while IFS=$'\t' read -r _ f; do
  cp "$f" "corpus/$(printf '%s' "$f" | md5sum | cut -c1-6)-$(basename "$f" | tr ' ' _)"
done
pick -iname '*.png' -size +1M | sort -n | head -6 | while IFS=$'\t' read -r _ f; do
  cp "$f" "corpus/$(printf '%s' "$f" | md5sum | cut -c1-6)-$(basename "$f" | tr ' ' _)"
done
if ! command -v cjpeg >/dev/null; then
  apt-get install -y -qq libjpeg-turbo-progs >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq libjpeg-turbo-progs >/dev/null; }
fi
# quality, sampling (cjpeg -sample), coding: one per source, in turn
combos=("95 1x1 progressive" "92 2x1 baseline" "90 1x1 baseline" "95 2x1 progressive"
        "95 1x1 baseline" "90 2x1 progressive" "92 1x1 progressive" "95 2x1 baseline")
camera() { # n source half?
  read -r q s coding <<<"${combos[$(($1 % 8))]}"
  local flags=(-quality "$q" -sample "$s" -optimize) name sub=444
  [ "$s" = 2x1 ] && sub=422
  [ "$coding" = progressive ] && flags+=(-progressive)
  name="cam-q$q-$sub-${coding:0:4}-$(basename "${2%.*}" | tr ' ' _ | cut -c1-24).jpg"
  "$imgbench" -ppm "$2" $3 | cjpeg "${flags[@]}" > "corpus/$name"
}
n=0
while IFS= read -r f; do camera $n "$f" ""; n=$((n + 1)); done < <(pick -iname '*.png' -size +1M | sort -n | tail -8 | cut -f2)
while IFS= read -r f; do camera $n "$f" -half; n=$((n + 1)); done < <(ls -S corpus/*.jpg | head -8)
echo "corpus: $(ls corpus | wc -l) files in $dir/corpus"
