#!/usr/bin/env bash
# Applies terraform/ to a project, with the two secrets kept consistent
# between this machine and Secret Manager (make deploy, make rotate-secrets).
#
#   terraform/deploy.sh deploy PROJECT ARCHIVE [terraform apply arguments…]
#   terraform/deploy.sh rotate PROJECT ARCHIVE [terraform apply arguments…]
#
# Secret Manager is the one record of each secret; the files below are this
# machine's copy of its newest enabled version:
#   terraform/.webhook-secrets   the webhook signing secrets (receivers hold them too)
#   terraform/.view-link-keys    the status link keys (server-only)
#
# deploy: a secret with no version yet (the first deploy) gets its file
# generated when missing, and the apply writes it as version 1. A secret that
# has versions is compared with the file: a missing file is fetched (another
# machine), a file that differs stops the deploy (a rotation not asked for, or
# a copy older than Secret Manager's), an equal one goes on. The apply pins
# the functions to each secret's newest enabled version.
# rotate: the same, but a file that differs is written as a new version
# first, so the apply moves the functions onto it.
# After a successful apply, the versions the functions no longer read are
# disabled; before it, they stay readable, so no instance ever starts
# against a version that is gone.
set -euo pipefail

if [ $# -lt 3 ] || { [ "$1" != deploy ] && [ "$1" != rotate ]; }; then
  echo "usage: $0 deploy|rotate PROJECT ARCHIVE [terraform apply arguments…]" >&2
  exit 2
fi
mode=$1 project=$2 archive=$3
shift 3
dir=$(cd "$(dirname "$0")" && pwd)
gcloud=${GCLOUD:-gcloud}
terraform=${TERRAFORM:-terraform}

secret_id() {
  case $1 in
  webhook_secrets) echo imgpipe-webhook-secrets ;;
  view_link_keys) echo imgpipe-view-link-keys ;;
  esac
}
file_of() {
  case $1 in
  webhook_secrets) echo "$dir/.webhook-secrets" ;;
  view_link_keys) echo "$dir/.view-link-keys" ;;
  esac
}
generate() {
  case $1 in
  webhook_secrets) echo "whsec_$(head -c 32 /dev/urandom | base64)" ;;
  view_link_keys) head -c 32 /dev/urandom | base64 ;;
  esac
}

# The newest enabled version's number; empty when the secret does not exist
# yet or has no enabled version. Any other failure (credentials, rights)
# stops the deploy: guessing "no version" would generate a new secret.
newest() {
  local id out
  id=$(secret_id "$1")
  if ! out=$("$gcloud" secrets describe "$id" --project="$project" --format="value(name)" 2>&1); then
    if grep -q NOT_FOUND <<<"$out"; then return 0; fi
    echo "deploy: reading secret $id: $out" >&2
    return 1
  fi
  "$gcloud" secrets versions list "$id" --project="$project" --filter="state=ENABLED" \
    --sort-by="~createTime" --limit=1 --format="value(name.basename())"
}

# The value of a version, without the trailing newline the files end with.
value() {
  "$gcloud" secrets versions access "$2" --secret="$(secret_id "$1")" --project="$project"
}

declare -A pinned
for s in webhook_secrets view_link_keys; do
  f=$(file_of "$s")
  v=$(newest "$s")
  if [ -z "$v" ]; then
    if [ ! -s "$f" ]; then
      (umask 077 && generate "$s" >"$f")
      echo "deploy: generated $f (see terraform/README.md, Who gets which secret)"
    fi
    pinned[$s]=latest
    continue
  fi
  current=$(value "$s" "$v")
  if [ ! -s "$f" ]; then
    (umask 077 && printf '%s\n' "$current" >"$f")
    echo "deploy: $f fetched from Secret Manager (version $v)"
  elif [ "$(cat "$f")" != "$current" ]; then
    if [ "$mode" != rotate ]; then
      echo "deploy: $f differs from version $v of $(secret_id "$s") in Secret Manager." >&2
      echo "  To rotate to the file's value: make rotate-secrets PROJECT=$project" >&2
      echo "  To use Secret Manager's value: delete $f and deploy again" >&2
      exit 1
    fi
    tmp=$(mktemp)
    printf '%s' "$(cat "$f")" >"$tmp"
    "$gcloud" secrets versions add "$(secret_id "$s")" --project="$project" --data-file="$tmp" >/dev/null
    rm -f "$tmp"
    v=$(newest "$s")
    echo "deploy: $f written to Secret Manager as version $v"
  fi
  pinned[$s]=$v
done

TF_IN_AUTOMATION=1 "$terraform" -chdir="$dir" init -input=false >/dev/null
TF_IN_AUTOMATION=1 TF_VAR_webhook_secrets="$(cat "$(file_of webhook_secrets)")" \
  TF_VAR_view_link_keys="$(cat "$(file_of view_link_keys)")" \
  "$terraform" -chdir="$dir" apply -input=false \
  -var project="$project" -var source_archive="$archive" \
  -var webhook_secrets_version="${pinned[webhook_secrets]}" \
  -var view_link_keys_version="${pinned[view_link_keys]}" "$@"

# Every function now reads the pinned versions: the others can go.
for s in webhook_secrets view_link_keys; do
  v=${pinned[$s]}
  [ "$v" = latest ] && continue
  for old in $("$gcloud" secrets versions list "$(secret_id "$s")" --project="$project" \
    --filter="state=ENABLED" --format="value(name.basename())"); do
    if [ "$old" != "$v" ]; then
      "$gcloud" secrets versions disable "$old" --secret="$(secret_id "$s")" --project="$project" --quiet >/dev/null
      echo "deploy: disabled version $old of $(secret_id "$s"): the functions read version $v"
    fi
  done
done
