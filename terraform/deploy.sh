#!/usr/bin/env bash
# Applies terraform/ to a project with the two secrets kept consistent
# between this machine and Secret Manager (make deploy, make rotate-secrets;
# the Makefile builds the source archive and passes its absolute path).
#
#   terraform/deploy.sh deploy PROJECT ARCHIVE [terraform apply arguments…]
#   terraform/deploy.sh rotate PROJECT ARCHIVE [terraform apply arguments…]
#
# Secret Manager is the one record of each secret; the files below are this
# machine's copy of its newest enabled version:
#   terraform/.webhook-secrets   the webhook signing secrets (receivers hold them too)
#   terraform/.view-link-keys    the status link keys (server-only)
#
# deploy: a secret that has never had a version (the first deploy) gets its
# file generated when missing, and the apply writes it as version 1. A
# secret that has versions is compared with the file: a missing file is
# fetched (another machine), a file that differs stops the deploy (a
# rotation not asked for, or a copy older than Secret Manager's), an equal
# one goes on. The apply pins the functions to each secret's newest enabled
# version.
# rotate: the same, but a file that differs is checked and written as a new
# version first, so the apply moves the functions onto it.
# After a successful apply, the versions older than the pinned ones are
# disabled, unless another deploy added a newer version meanwhile; before
# it, they stay readable, so no instance starts against a version that is
# gone.
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
export CLOUDSDK_CORE_DISABLE_PROMPTS=1

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

# well_formed checks a value before it becomes a version: comma-separated
# whsec_<base64> secrets, or base64 keys of at least 32 bytes (44 characters).
well_formed() {
  local item
  local IFS=,
  for item in $2; do
    case $1 in
    webhook_secrets) [[ $item =~ ^whsec_[A-Za-z0-9+/]{32,}=*$ ]] || return 1 ;;
    view_link_keys) [[ $item =~ ^[A-Za-z0-9+/]{43,}=*$ ]] || return 1 ;;
    esac
  done
  [ -n "$2" ]
}

# exists reports whether a secret exists; not when Secret Manager is not
# enabled yet (a new project). Any other failure (credentials, rights)
# stops the deploy: taking it for "no secret" would generate a new one.
exists() {
  local id out
  id=$(secret_id "$1")
  out=$("$gcloud" secrets describe "$id" --project="$project" --format="value(name)" 2>&1) && return 0
  grep -qE 'NOT_FOUND|SERVICE_DISABLED|has not been used|it is disabled' <<<"$out" && return 1
  echo "deploy: reading secret $id: $out" >&2
  exit 1
}

# versions lists an existing secret's versions (newest first) in one
# state, or in any state with ANY.
versions() {
  local filter=()
  [ "$2" = ANY ] || filter=(--filter="state=$2")
  "$gcloud" secrets versions list "$(secret_id "$1")" --project="$project" "${filter[@]}" \
    --sort-by="~createTime" --format="value(name.basename())"
}

# The value of a version, without the trailing newline the files end with.
value() {
  "$gcloud" secrets versions access "$2" --secret="$(secret_id "$1")" --project="$project"
}

for s in webhook_secrets view_link_keys; do
  f=$(file_of "$s")
  all=
  if exists "$s"; then all=$(versions "$s" ANY); fi
  if [ -z "$all" ]; then
    if [ ! -s "$f" ]; then
      (umask 077 && generate "$s" >"$f")
      echo "deploy: generated $f (terraform/README.md, Secrets, says who gets it)"
    fi
    printf -v "pinned_$s" '%s' 1 # the apply writes the first version
    continue
  fi
  enabled=$(versions "$s" ENABLED)
  v=${enabled%%$'\n'*}
  if [ -z "$v" ]; then
    echo "deploy: $(secret_id "$s") has versions but none enabled: enable the one to use" >&2
    echo "  (gcloud secrets versions enable N --secret=$(secret_id "$s") --project=$project), then deploy again" >&2
    exit 1
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
    if ! well_formed "$s" "$(cat "$f")"; then
      echo "deploy: $f is not a comma-separated list of $([ "$s" = webhook_secrets ] && echo 'whsec_<base64> secrets' || echo 'base64 keys of 32 bytes or more'): not written" >&2
      exit 1
    fi
    v=$(printf '%s' "$(cat "$f")" | "$gcloud" secrets versions add "$(secret_id "$s")" --project="$project" \
      --data-file=- --format="value(name.basename())")
    echo "deploy: $f written to Secret Manager as version $v"
  fi
  printf -v "pinned_$s" '%s' "$v"
done

TF_IN_AUTOMATION=1 "$terraform" -chdir="$dir" init -input=false >/dev/null
TF_IN_AUTOMATION=1 TF_VAR_webhook_secrets="$(cat "$(file_of webhook_secrets)")" \
  TF_VAR_view_link_keys="$(cat "$(file_of view_link_keys)")" \
  "$terraform" -chdir="$dir" apply -input=false \
  -var project="$project" -var source_archive="$archive" \
  -var webhook_secrets_version="$pinned_webhook_secrets" \
  -var view_link_keys_version="$pinned_view_link_keys" "$@"

# Every function now reads the pinned versions: the older ones can go. If a
# newer version appeared meanwhile (another machine's rotation), the next
# deploy moves onto it, and nothing is disabled now.
for s in webhook_secrets view_link_keys; do
  pin=pinned_$s
  v=${!pin}
  enabled=$(versions "$s" ENABLED)
  if [ "${enabled%%$'\n'*}" != "$v" ]; then
    echo "deploy: $(secret_id "$s") has a version newer than $v, or $v is not enabled: nothing disabled; deploy again"
    continue
  fi
  for old in $enabled; do
    if [ "$old" -lt "$v" ]; then
      "$gcloud" secrets versions disable "$old" --secret="$(secret_id "$s")" --project="$project" >/dev/null
      echo "deploy: disabled version $old of $(secret_id "$s"): the functions read version $v"
    fi
  done
done
