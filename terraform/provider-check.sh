#!/usr/bin/env bash
# terraform validate and terraform test (terraform/tests, mocked providers)
# on a copy of terraform/, where the real providers can be installed: from
# the registry, or from a filesystem mirror named by TF_PROVIDER_MIRROR (a
# folder holding registry.terraform.io/hashicorp/{google,time}/VERSION/
# linux_amd64/, for example providers built from source). Where neither
# works, it says in one line that it skipped them and why, and succeeds:
# the offline checks of make deploy-check still ran. Part of make
# deploy-check.
set -euo pipefail

dir=$(cd "$(dirname "$0")" && pwd)
command -v terraform >/dev/null || {
  echo "deploy-check: terraform validate and terraform test skipped: no terraform binary"
  exit 0
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$dir"/*.tf "$work"/
cp -r "$dir/tests" "$work/tests"

if [ -n "${TF_PROVIDER_MIRROR:-}" ]; then
  # Providers built from source have other checksums than the registry's:
  # the committed lock file is left out, and init writes its own.
  cat >"$work/cli.tfrc" <<EOF
provider_installation {
  filesystem_mirror {
    path    = "$TF_PROVIDER_MIRROR"
    include = ["registry.terraform.io/hashicorp/*"]
  }
}
EOF
  export TF_CLI_CONFIG_FILE="$work/cli.tfrc"
  from="the mirror $TF_PROVIDER_MIRROR"
else
  cp "$dir/.terraform.lock.hcl" "$work/"
  export TF_CLI_CONFIG_FILE=/dev/null
  from="the registry"
fi

# Only a provider that cannot be reached skips the checks; any other init
# failure (a checksum that does not match the lock file, a version outside
# the pins, a configuration error) fails them.
if ! out=$(cd "$work" && timeout 300 terraform init -backend=false -input=false -no-color 2>&1); then
  if grep -qiE 'Failed to query available provider packages|could not connect|no such host|dial tcp|timeout|provider registry|Failed to retrieve' <<<"$out" &&
    ! grep -qiE 'checksum|does not match|doesn.t match|locked' <<<"$out"; then
    why=$(grep -m1 -iE 'error' <<<"$out" | sed 's/^[│ ]*//' || true)
    echo "deploy-check: terraform validate and terraform test skipped: the providers could not be installed from $from (${why:-terraform init failed})"
    exit 0
  fi
  echo "$out" >&2
  echo "deploy-check: terraform init failed" >&2
  exit 1
fi
(cd "$work" && terraform validate -no-color)
(cd "$work" && terraform test -no-color)
echo "deploy-check: terraform validate and terraform test passed (providers from $from)"
