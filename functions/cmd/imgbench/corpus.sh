#!/usr/bin/env bash
# Fetches the benchmark corpus: real photographs and artwork from Debian
# wallpaper packages (apt-get download + dpkg -x, never committed). Keeps
# every JPEG of at least 100 KB (of Plasma's wallpapers, which come in many
# sizes each, only the largest size), and six PNGs over 1 MB.
set -euo pipefail
dir=${1:-.bench}
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
echo "corpus: $(ls corpus | wc -l) files in $dir/corpus"
