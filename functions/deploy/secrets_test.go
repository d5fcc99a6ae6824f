package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// secretVersionProblems checks how the secrets' versions are kept: the
// first version of each is written once from its ephemeral variable and
// never replaced, deleted or re-enabled by Terraform; the functions read
// the version a variable names, "latest" unless make deploy pins one, and
// are created only once a first version exists. So no apply, with or
// without make, from any machine, writes an older value over a newer one
// or leaves an instance without a readable version.
func secretVersionProblems(blocks []tfBlock) []string {
	var problems []string
	fn, ok := find(blocks, "resource", "google_cloudfunctions2_function", "fn")
	if !ok {
		return []string{"no functions"}
	}
	sc := childBlocks(fn.Body, "service_config")[0].Body
	fromSecret := map[string]*hclsyntax.Body{}
	for _, s := range childBlocks(sc, "secret_environment_variables") {
		fromSecret[strings.Trim(exprText(s.Body.Attributes["key"].Expr), `"`)] = s.Body
	}
	fnDeps := ""
	if a, ok := fn.Body.Attributes["depends_on"]; ok {
		fnDeps = exprText(a.Expr)
	}
	versions := ofType(blocks, "resource", "google_secret_manager_secret_version")
	for _, sec := range secretsOfTerraform {
		var v *tfBlock
		for i, b := range versions {
			if a, ok := b.Body.Attributes["secret"]; ok && exprText(a.Expr) == "google_secret_manager_secret."+sec.resource+".id" {
				if v != nil {
					problems = append(problems, fmt.Sprintf("%s: more than one version resource; later versions come from make rotate-secrets", sec.env))
				}
				v = &versions[i]
			}
		}
		if v == nil {
			problems = append(problems, fmt.Sprintf("%s: no first version written by Terraform", sec.env))
			continue
		}
		if _, ok := v.Body.Attributes["secret_data"]; ok {
			problems = append(problems, fmt.Sprintf("%s: secret_data is kept in Terraform's state; use secret_data_wo", v.Addr()))
		}
		if a, ok := v.Body.Attributes["secret_data_wo"]; !ok || exprText(a.Expr) != "var."+sec.variable {
			problems = append(problems, fmt.Sprintf("%s is not written from var.%s", v.Addr(), sec.variable))
		}
		// A secret_data_wo_version that follows an input replaces the
		// version whenever the input differs: an apply without make, or
		// from a machine that counted differently, would write an old
		// value over the live one and delete the live one.
		if a, ok := v.Body.Attributes["secret_data_wo_version"]; !ok {
			problems = append(problems, fmt.Sprintf("%s: no secret_data_wo_version, so the value is never written", v.Addr()))
		} else if _, isLiteral := a.Expr.(*hclsyntax.LiteralValueExpr); !isLiteral {
			problems = append(problems, fmt.Sprintf("%s: secret_data_wo_version = %s follows an input; a different input replaces the live version", v.Addr(), exprText(a.Expr)))
		}
		if a, ok := v.Body.Attributes["deletion_policy"]; !ok || exprText(a.Expr) != `"ABANDON"` {
			problems = append(problems, fmt.Sprintf("%s: deletion_policy is not ABANDON: removing or replacing the resource would delete a version instances read", v.Addr()))
		}
		ignored := ""
		for _, l := range childBlocks(v.Body, "lifecycle") {
			if a, ok := l.Body.Attributes["ignore_changes"]; ok {
				ignored = exprText(a.Expr)
			}
		}
		if !strings.Contains(ignored, "enabled") {
			problems = append(problems, fmt.Sprintf("%s: enabled is not ignored: an apply would re-enable the version a rotation disabled", v.Addr()))
		}
		if !strings.Contains(fnDeps, v.Addr()) {
			problems = append(problems, fmt.Sprintf("the functions may start before %s exists", v.Addr()))
		}
		// Deployments whose version resource had the secret's own name
		// keep their live version: a moved block, not a replacement.
		moved := false
		for _, m := range blocks {
			if m.Type == "moved" && exprText(m.Body.Attributes["from"].Expr) == "google_secret_manager_secret_version."+sec.resource &&
				exprText(m.Body.Attributes["to"].Expr) == v.Addr() {
				moved = true
			}
		}
		if !moved {
			problems = append(problems, fmt.Sprintf("no moved block from google_secret_manager_secret_version.%s to %s: an existing deployment's live version would be destroyed", sec.resource, v.Addr()))
		}
		if b, ok := fromSecret[sec.env]; ok {
			if got := exprText(b.Attributes["version"].Expr); got != "var."+sec.variable+"_version" {
				problems = append(problems, fmt.Sprintf("%s reads version %s, not var.%s_version (make deploy pins the newest enabled version)", sec.env, got, sec.variable))
			}
		}
		if vv, ok := find(blocks, "variable", sec.variable+"_version"); !ok {
			problems = append(problems, fmt.Sprintf("no variable %s_version", sec.variable))
		} else if a, ok := vv.Body.Attributes["default"]; !ok || exprText(a.Expr) != `"latest"` {
			problems = append(problems, fmt.Sprintf("var.%s_version does not default to latest: an apply without make would roll the functions back", sec.variable))
		}
	}
	return problems
}

func TestSecretVersionsNeverRollBack(t *testing.T) {
	for _, p := range secretVersionProblems(loadTerraform(t, tfDir)) {
		t.Error(p)
	}
}

// Each way of rolling a secret back is caught.
func TestSecretVersionCheckFindsMistakes(t *testing.T) {
	for name, ed := range map[string]tfEdit{
		"version from a variable":  {File: "secrets.tf", Old: "secret_data_wo_version = 1", New: "secret_data_wo_version = var.webhook_secrets_version"},
		"deleted with Terraform":   {File: "secrets.tf", Old: `deletion_policy        = "ABANDON"`, New: `deletion_policy        = "DELETE"`},
		"re-enabled by an apply":   {File: "secrets.tf", Old: "ignore_changes = [enabled, secret_data_wo_version]", New: "ignore_changes = [secret_data_wo_version]"},
		"pinned to Terraform's":    {File: "functions.tf", Old: "version    = var.webhook_secrets_version", New: "version    = google_secret_manager_secret_version.webhook_first.version"},
		"pinned by default":        {File: "variables.tf", Old: `default     = "latest"`, New: `default     = "1"`},
		"started before a version": {File: "functions.tf", Old: "google_secret_manager_secret_version.view_link_keys_first,", New: ""},
		"live version replaced":    {File: "secrets.tf", Old: "from = google_secret_manager_secret_version.webhook\n", New: "from = google_secret_manager_secret_version.webhook_old\n"},
	} {
		if len(secretVersionProblems(terraformWith(t, ed))) == 0 {
			t.Errorf("%s: not caught", name)
		}
	}
}

// fakeGcloud is Secret Manager as far as terraform/deploy.sh uses it,
// kept in a folder: secrets/ID/N holds version N, N.disabled or
// N.destroyed mark its state; a file "disabled-api" makes every call
// answer as a project where Secret Manager is not enabled yet.
// fakeTerraform records its arguments and, on apply, enables the API and
// writes each secret's first version from TF_VAR_* as the provider would
// (once); FAIL_APPLY makes the apply fail, DURING_APPLY runs a command
// while it applies (another machine at work).
const fakeGcloud = `#!/usr/bin/env bash
set -euo pipefail
root=$FAKE_SM
[ "$1" = secrets ] || { echo "fake gcloud: $*" >&2; exit 2; }
shift
if [ -e "$root/disabled-api" ]; then
  echo "ERROR: (gcloud.secrets.$1) PERMISSION_DENIED: Secret Manager API has not been used in project p before or it is disabled. reason: SERVICE_DISABLED" >&2; exit 1
fi
arg() { for a in "$@"; do case $a in --$want=*) echo "${a#--$want=}";; esac; done; }
if [ "$1" = describe ]; then
  [ -d "$root/$2" ] && { echo "projects/p/secrets/$2"; exit 0; }
  echo "ERROR: (gcloud.secrets.describe) NOT_FOUND: Secret [$2] not found." >&2; exit 1
fi
[ "$1" = versions ] || exit 2
verb=$2; shift 2
case $verb in
list)
  id=$1; want=filter; filter=$(arg "$@"); want=limit; limit=$(arg "$@"); out=()
  for v in $(ls "$root/$id" 2>/dev/null | grep -E '^[0-9]+$' | sort -rn); do
    state=ENABLED
    [ -e "$root/$id/$v.disabled" ] && state=DISABLED
    [ -e "$root/$id/$v.destroyed" ] && state=DESTROYED
    case $filter in ""|"state=$state") out+=("$v");; state=*) ;; *) echo "fake gcloud: filter $filter" >&2; exit 2;; esac
  done
  n=${limit:-${#out[@]}}
  for v in "${out[@]:0:$n}"; do echo "$v"; done ;;
access)
  want=secret; id=$(arg "$@"); v=$1
  [ -e "$root/$id/$v.disabled" ] || [ -e "$root/$id/$v.destroyed" ] && { echo "FAILED_PRECONDITION: not enabled" >&2; exit 1; }
  cat "$root/$id/$v" ;;
add)
  id=$1; want=data-file; f=$(arg "$@")
  [ "$f" = - ] || { echo "fake gcloud: write the secret from stdin" >&2; exit 2; }
  n=$(( $(ls "$root/$id" | grep -E '^[0-9]+$' | sort -n | tail -1) + 1 ))
  cat > "$root/$id/$n"
  echo "$n" ;;
disable)
  want=secret; id=$(arg "$@"); touch "$root/$id/$1.disabled" ;;
*) exit 2 ;;
esac
`

const fakeTerraform = `#!/usr/bin/env bash
set -euo pipefail
echo "$*" >> "$FAKE_SM/terraform.log"
case " $* " in
*" apply "*)
  [ -n "${FAIL_APPLY:-}" ] && { echo "fake apply failed" >&2; exit 1; }
  rm -f "$FAKE_SM/disabled-api"
  for pair in imgpipe-webhook-secrets:TF_VAR_webhook_secrets imgpipe-view-link-keys:TF_VAR_view_link_keys; do
    id=${pair%%:*}; var=${pair#*:}
    if [ ! -d "$FAKE_SM/$id" ]; then mkdir -p "$FAKE_SM/$id"; printf '%s' "${!var}" > "$FAKE_SM/$id/1"; fi
  done
  if [ -n "${DURING_APPLY:-}" ]; then bash -c "$DURING_APPLY"; fi ;;
esac
`

type deployRun struct {
	t    *testing.T
	root string // the copy of terraform/ deploy.sh runs in
	sm   string // the fake Secret Manager
	bin  string
}

func newDeployRun(t *testing.T) *deployRun {
	r := &deployRun{t: t, root: t.TempDir(), sm: t.TempDir(), bin: t.TempDir()}
	script, err := os.ReadFile(filepath.Join(tfDir, "deploy.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		filepath.Join(r.root, "deploy.sh"): string(script), filepath.Join(r.bin, "gcloud"): fakeGcloud,
		filepath.Join(r.bin, "terraform"): fakeTerraform,
	} {
		if err := os.WriteFile(name, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// run runs deploy.sh as a machine whose terraform/ folder is root.
func (r *deployRun) run(mode string, env ...string) (string, error) {
	cmd := exec.Command("bash", filepath.Join(r.root, "deploy.sh"), mode, "acme-prod", "/abs/source.zip")
	cmd.Env = append(os.Environ(), append([]string{"FAKE_SM=" + r.sm, "PATH=" + r.bin + ":" + os.Getenv("PATH")}, env...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (r *deployRun) file(name string) string {
	b, err := os.ReadFile(filepath.Join(r.root, name))
	if err != nil {
		r.t.Fatal(err)
	}
	return strings.TrimRight(string(b), "\n")
}

func (r *deployRun) version(id, v string) string {
	b, err := os.ReadFile(filepath.Join(r.sm, id, v))
	if err != nil {
		r.t.Fatal(err)
	}
	return string(b)
}

func (r *deployRun) enabled(id string) []string {
	var out []string
	entries, _ := os.ReadDir(filepath.Join(r.sm, id))
	for _, e := range entries {
		n := e.Name()
		if strings.Contains(n, ".") {
			continue
		}
		_, disabled := os.Stat(filepath.Join(r.sm, id, n+".disabled"))
		_, destroyed := os.Stat(filepath.Join(r.sm, id, n+".destroyed"))
		if disabled != nil && destroyed != nil {
			out = append(out, n)
		}
	}
	return out
}

func (r *deployRun) write(name, content string) {
	if err := os.WriteFile(filepath.Join(r.root, name), []byte(content), 0o600); err != nil {
		r.t.Fatal(err)
	}
}

func (r *deployRun) applies() int {
	b, _ := os.ReadFile(filepath.Join(r.sm, "terraform.log"))
	return strings.Count(string(b), " apply ")
}

func (r *deployRun) lastApply() string {
	b, _ := os.ReadFile(filepath.Join(r.sm, "terraform.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], " apply ") {
			return lines[i]
		}
	}
	return ""
}

// The life of the two secrets across deploys, machines and rotations, on
// a fake Secret Manager: there is always an enabled version, the one the
// functions are pinned to; nothing rolls a secret back.
func TestDeployKeepsSecretsInStep(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("bash is needed to run terraform/deploy.sh")
	}
	const wh, vl = "imgpipe-webhook-secrets", "imgpipe-view-link-keys"
	r := newDeployRun(t)
	must := func(what string, out string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, out)
		}
	}

	// First deploy on a new project, Secret Manager not enabled yet:
	// secrets generated, written by the apply as version 1, which the
	// functions are pinned to.
	if err := os.WriteFile(filepath.Join(r.sm, "disabled-api"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := r.run("deploy")
	must("first deploy", out, err)
	first := r.file(".webhook-secrets")
	if !strings.HasPrefix(first, "whsec_") || len(first) < 40 {
		t.Fatalf("generated webhook secret %q", first)
	}
	if fi, _ := os.Stat(filepath.Join(r.root, ".view-link-keys")); fi.Mode().Perm() != 0o600 {
		t.Errorf("the status link key file has mode %v, want 600", fi.Mode().Perm())
	}
	if got := r.version(wh, "1"); got != first {
		t.Errorf("version 1 holds %q, the file %q", got, first)
	}
	if a := r.lastApply(); !strings.Contains(a, "webhook_secrets_version=1") || !strings.Contains(a, "source_archive=/abs/source.zip") {
		t.Errorf("first apply: %s", a)
	}

	// Again from the same machine: pinned to version 1, nothing disabled.
	out, err = r.run("deploy")
	must("second deploy", out, err)
	if a := r.lastApply(); !strings.Contains(a, "webhook_secrets_version=1") || !strings.Contains(a, "view_link_keys_version=1") {
		t.Errorf("second apply is not pinned to version 1: %s", a)
	}

	// Another machine, without the files: they are fetched, not made anew.
	other := newDeployRun(t)
	other.sm = r.sm
	out, err = other.run("deploy")
	must("deploy from another machine", out, err)
	if other.file(".webhook-secrets") != first || other.file(".view-link-keys") != r.file(".view-link-keys") {
		t.Error("another machine's deploy did not fetch the secrets from Secret Manager")
	}

	// A file that differs stops a plain deploy before anything is applied.
	n := r.applies()
	other.write(".webhook-secrets", "whsec_stale\n")
	if out, err := other.run("deploy"); err == nil || !strings.Contains(out, "make rotate-secrets") {
		t.Errorf("a differing file did not stop the deploy: %v\n%s", err, out)
	}
	// A malformed file is not written as a version, even when rotating.
	if out, err := other.run("rotate"); err == nil || !strings.Contains(out, "not written") {
		t.Errorf("a malformed file was rotated in: %v\n%s", err, out)
	}
	if r.applies() != n || !slices.Equal(r.enabled(wh), []string{"1"}) {
		t.Error("a refused deploy applied or wrote a version")
	}
	other.write(".webhook-secrets", first+"\n")

	// Rotation: both secrets listed, newest first; written as version 2,
	// the functions pinned to it, version 1 disabled after the apply.
	rotated := "whsec_" + strings.Repeat("N", 43) + "=," + first
	r.write(".webhook-secrets", rotated+"\n")
	out, err = r.run("rotate")
	must("rotate", out, err)
	if got := r.version(wh, "2"); got != rotated {
		t.Errorf("version 2 holds %q, want %q", got, rotated)
	}
	if a := r.lastApply(); !strings.Contains(a, "webhook_secrets_version=2") || !strings.Contains(a, "view_link_keys_version=1") {
		t.Errorf("the rotation's apply: %s", a)
	}
	if got := r.enabled(wh); !slices.Equal(got, []string{"2"}) {
		t.Errorf("after the rotation, enabled versions %v, want [2]", got)
	}
	if got := r.enabled(vl); !slices.Equal(got, []string{"1"}) {
		t.Errorf("the status link key changed versions %v in a webhook rotation", got)
	}

	// A rotation whose apply fails leaves the version the functions read
	// enabled; the next deploy moves them on and disables it.
	third := "whsec_" + strings.Repeat("M", 43) + "="
	r.write(".webhook-secrets", third+"\n")
	if out, err := r.run("rotate", "FAIL_APPLY=1"); err == nil {
		t.Fatalf("rotate with a failing apply succeeded:\n%s", out)
	}
	if got := r.enabled(wh); !slices.Equal(got, []string{"2", "3"}) {
		t.Errorf("after a failed apply, enabled versions %v, want [2 3]", got)
	}
	out, err = r.run("deploy")
	must("deploy after a failed rotation", out, err)
	if a := r.lastApply(); !strings.Contains(a, "webhook_secrets_version=3") || !slices.Equal(r.enabled(wh), []string{"3"}) {
		t.Errorf("after the deploy that follows a failed rotation: %s, enabled %v", a, r.enabled(wh))
	}

	// Another machine deploys while this one rotates: the deploy pinned to
	// version 3 disables nothing once it sees version 4.
	other.write(".webhook-secrets", third+"\n")
	fourth := "whsec_" + strings.Repeat("Q", 43) + "="
	during := fmt.Sprintf("printf %%s %s | gcloud secrets versions add %s --project=acme-prod --data-file=- >/dev/null", fourth, wh)
	out, err = other.run("deploy", "DURING_APPLY="+during)
	must("deploy during a rotation", out, err)
	if got := r.enabled(wh); !slices.Equal(got, []string{"3", "4"}) {
		t.Errorf("a deploy that overlapped a rotation left enabled %v, want [3 4]", got)
	}
}

// A deployment made when Terraform replaced a version on every change has
// its newest version enabled and older ones destroyed; the first deploy
// with this script pins that version and disables nothing it reads.
func TestDeployOverAnEarlierDeployment(t *testing.T) {
	const wh, vl = "imgpipe-webhook-secrets", "imgpipe-view-link-keys"
	r := newDeployRun(t)
	secret, key := "whsec_"+strings.Repeat("W", 43)+"=", strings.Repeat("K", 43)+"="
	for id, v := range map[string]string{wh: secret, vl: key} {
		if err := os.MkdirAll(filepath.Join(r.sm, id), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, body := range map[string]string{"1": "old", "1.destroyed": "", "2": v} {
			if err := os.WriteFile(filepath.Join(r.sm, id, name), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	r.write(".webhook-secrets", secret+"\n")
	r.write(".view-link-keys", key+"\n")
	if out, err := r.run("deploy"); err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	if a := r.lastApply(); !strings.Contains(a, "webhook_secrets_version=2") || !strings.Contains(a, "view_link_keys_version=2") {
		t.Errorf("the apply is not pinned to the live versions: %s", a)
	}
	if !slices.Equal(r.enabled(wh), []string{"2"}) || !slices.Equal(r.enabled(vl), []string{"2"}) {
		t.Errorf("enabled %v and %v, want the live version 2 of each", r.enabled(wh), r.enabled(vl))
	}
	// All versions disabled: the deploy stops rather than pin one.
	if err := os.WriteFile(filepath.Join(r.sm, wh, "2.disabled"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := r.run("deploy"); err == nil || !strings.Contains(out, "none enabled") {
		t.Errorf("a secret without an enabled version did not stop the deploy: %v\n%s", err, out)
	}
}
