package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// dependencyGraph maps each resource, data source and local to what it
// refers to (its arguments and depends_on).
func dependencyGraph(blocks []tfBlock) map[string][]string {
	deps := map[string][]string{}
	for _, b := range blocks {
		switch b.Type {
		case "resource", "data":
			deps[b.Addr()] = references(b.Body)
		case "locals":
			for name, a := range b.Body.Attributes {
				deps["local."+name] = traversalRefs(a.Expr.Variables())
			}
		}
	}
	return deps
}

// reaches reports whether from depends, directly or through others, on to.
func reaches(deps map[string][]string, from, to string) bool {
	return reachesAny(deps, from, func(addr string) bool { return addr == to })
}

// reachesAny reports whether from is, or depends directly or through
// others on, an address that target accepts.
func reachesAny(deps map[string][]string, from string, target func(string) bool) bool {
	seen := map[string]bool{}
	var walk func(string) bool
	walk = func(addr string) bool {
		if target(addr) {
			return true
		}
		if seen[addr] {
			return false
		}
		seen[addr] = true
		return slices.ContainsFunc(deps[addr], walk)
	}
	return walk(from)
}

// sleepOf is the create_duration of a time_sleep, or 0.
func sleepOf(blocks []tfBlock, name string) time.Duration {
	b, ok := find(blocks, "resource", "time_sleep", name)
	if !ok {
		return 0
	}
	a, ok := b.Body.Attributes["create_duration"]
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(strings.Trim(exprText(a.Expr), `"`))
	if err != nil {
		return 0
	}
	return d
}

// waitProblems checks the two pauses a new project needs: every resource
// waits for the APIs' pause (services just enabled are eventually
// consistent), and the functions wait for the grants' pause, which follows
// every IAM grant to the accounts they are built and run as.
func waitProblems(blocks []tfBlock) []string {
	var problems []string
	deps := dependencyGraph(blocks)
	const apis, apisReady = "google_project_service.apis", "time_sleep.apis_ready"
	if d := sleepOf(blocks, "apis_ready"); d < 60*time.Second {
		problems = append(problems, fmt.Sprintf("%s waits %v after enabling the APIs, want at least 60s", apisReady, d))
	}
	if !slices.Contains(deps[apisReady], apis) {
		problems = append(problems, apisReady+" does not follow "+apis)
	}
	for addr := range deps {
		if strings.HasPrefix(addr, "local.") || addr == apis || addr == apisReady {
			continue
		}
		if !reaches(deps, addr, apisReady) {
			problems = append(problems, addr+" may be created before the APIs it needs answer (it does not wait for "+apisReady+")")
		}
	}

	const grants = "time_sleep.grants_propagated"
	if d := sleepOf(blocks, "grants_propagated"); d < 60*time.Second {
		problems = append(problems, fmt.Sprintf("%s waits %v after the grants, want at least 60s", grants, d))
	}
	fn := "google_cloudfunctions2_function.fn"
	if !reaches(deps, fn, grants) {
		problems = append(problems, "the functions are built without waiting for "+grants)
	}
	for _, b := range blocks {
		if b.Type != "resource" || !strings.HasSuffix(b.Labels[0], "_iam_member") {
			continue
		}
		member := ""
		if a, ok := b.Body.Attributes["member"]; ok {
			member = exprText(a.Expr)
		}
		if !strings.Contains(member, "google_service_account.build.") && !strings.Contains(member, "google_service_account.functions.") {
			continue
		}
		if !reaches(deps, grants, b.Addr()) {
			problems = append(problems, fmt.Sprintf("%s grants the build or runtime account a role, and %s does not wait for it", b.Addr(), grants))
		}
	}
	return problems
}

// Each missing wait is caught.
func TestWaitCheckFindsMistakes(t *testing.T) {
	for name, ed := range map[string]tfEdit{
		"no pause after the APIs":        {File: "apis.tf", Old: `create_duration = "60s"`, New: `create_duration = "1s"`},
		"a bucket on the bare APIs":      {File: "storage.tf", Old: "depends_on                  = [time_sleep.apis_ready]", New: "depends_on                  = [google_project_service.apis]"},
		"functions without the pause":    {File: "functions.tf", Old: "time_sleep.grants_propagated,", New: ""},
		"a grant the pause misses":       {File: "iam.tf", Old: "google_artifact_registry_repository_iam_member.build_writer,\n    google_project_iam_member.functions,", New: "google_project_iam_member.functions,"},
		"a secret grant the pause skips": {File: "iam.tf", Old: "google_secret_manager_secret_iam_member.functions_read_webhook,", New: ""},
	} {
		if len(waitProblems(terraformWith(t, ed))) == 0 {
			t.Errorf("%s: not caught", name)
		}
	}
}

// deployerRole is the service a resource type's role must belong to: the
// README's deployer roles table is checked against it.
var deployerRoleService = map[string]string{
	"google_project_service":                         "serviceusage",
	"google_service_account":                         "iam",
	"google_service_account_iam_member":              "iam",
	"google_project_iam_member":                      "resourcemanager",
	"google_project":                                 "resourcemanager",
	"google_artifact_registry_repository":            "artifactregistry",
	"google_artifact_registry_repository_iam_member": "artifactregistry",
	"google_cloud_run_service_iam_member":            "run",
	"google_cloud_scheduler_job":                     "cloudscheduler",
	"google_cloud_tasks_queue":                       "cloudtasks",
	"google_cloudfunctions2_function":                "cloudfunctions",
	"google_firestore_database":                      "datastore",
	"google_firestore_field":                         "datastore",
	"google_logging_metric":                          "logging",
	"google_monitoring_alert_policy":                 "monitoring",
	"google_monitoring_dashboard":                    "monitoring",
	"google_monitoring_notification_channel":         "monitoring",
	"google_pubsub_topic":                            "pubsub",
	"google_pubsub_subscription":                     "pubsub",
	"google_pubsub_topic_iam_member":                 "pubsub",
	"google_pubsub_subscription_iam_member":          "pubsub",
	"google_secret_manager_secret":                   "secretmanager",
	"google_secret_manager_secret_version":           "secretmanager",
	"google_secret_manager_secret_iam_member":        "secretmanager",
	"google_storage_bucket":                          "storage",
	"google_storage_bucket_iam_member":               "storage",
	"google_storage_bucket_object":                   "storage",
}

// deployerRoles reads the README's table: resource type → roles.
func deployerRoles(readme string) map[string][]string {
	out := map[string][]string{}
	i := strings.Index(readme, "## Deployer roles")
	if i < 0 {
		return out
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z0-9_]+)` \\| (.*) \\|$")
	for _, m := range row.FindAllStringSubmatch(readme[i:], -1) {
		out[m[1]] = regexp.MustCompile("roles/[A-Za-z0-9._]+|none").FindAllString(m[2], -1)
	}
	return out
}

func deployerRoleProblems(blocks []tfBlock, readme string) []string {
	var problems []string
	roles := deployerRoles(readme)
	types := map[string]bool{}
	for _, b := range blocks {
		if b.Type == "resource" || b.Type == "data" {
			types[b.Labels[0]] = true
		}
	}
	for typ := range types {
		rs := roles[typ]
		switch {
		case len(rs) == 0:
			problems = append(problems, fmt.Sprintf("terraform/README.md, Deployer roles: no role listed for %s", typ))
		case strings.HasPrefix(typ, "time_"):
			if !slices.Equal(rs, []string{"none"}) {
				problems = append(problems, fmt.Sprintf("%s calls no Google API; list it with none, not %v", typ, rs))
			}
		default:
			svc, ok := deployerRoleService[typ]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: the test does not know which service's role it needs (add it to deployerRoleService)", typ))
				continue
			}
			if !slices.ContainsFunc(rs, func(r string) bool { return strings.HasPrefix(r, "roles/"+svc+".") }) {
				problems = append(problems, fmt.Sprintf("%s needs a roles/%s.* role; the README lists %v", typ, svc, rs))
			}
		}
	}
	for typ := range roles {
		if !types[typ] {
			problems = append(problems, fmt.Sprintf("terraform/README.md lists a role for %s, which terraform/ does not use", typ))
		}
	}
	return problems
}

func TestDeployerRolesCoverEveryResourceType(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(tfDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := loadTerraform(t, tfDir)
	for _, p := range deployerRoleProblems(blocks, string(readme)) {
		t.Error(p)
	}
	// A new resource type without a row, and a row with another service's
	// role, are caught.
	extra := terraformWith(t, tfEdit{File: "scheduler.tf", New: `resource "google_cloud_run_v2_job" "x" {}`})
	if len(deployerRoleProblems(extra, string(readme))) == 0 {
		t.Error("a resource type without a deployer role is not caught")
	}
	wrong := strings.Replace(string(readme), "| `google_cloud_scheduler_job` | `roles/cloudscheduler.admin` |", "| `google_cloud_scheduler_job` | `roles/run.admin` |", 1)
	if wrong == string(readme) || len(deployerRoleProblems(blocks, wrong)) == 0 {
		t.Error("a deployer role of the wrong service is not caught")
	}
}

// make deploy passes -var region only when REGION is given to make, so
// terraform.tfvars can set it.
func TestDeployLeavesRegionToTfvars(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is needed")
	}
	dry := func(args ...string) string {
		cmd := exec.Command("make", append([]string{"-n", "-C", "../..", "deploy", "PROJECT=acme-prod"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make -n deploy: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := dry(); strings.Contains(out, "-var region") {
		t.Errorf("make deploy without REGION passes a region, overriding terraform.tfvars:\n%s", out)
	}
	if out := dry("REGION=europe-west4"); !strings.Contains(out, "-var region=europe-west4") {
		t.Errorf("make deploy REGION=europe-west4 does not pass the region:\n%s", out)
	}
}

// Firestore follows the region unless its location is set.
func TestFirestoreFollowsTheRegion(t *testing.T) {
	blocks := loadTerraform(t, tfDir)
	for _, c := range []struct{ region, set, want string }{
		{"us-central1", "", "nam5"}, {"us-east4", "", "nam5"}, {"europe-west4", "", "eur3"},
		{"asia-northeast1", "", "asia-northeast1"}, {"europe-west1", "europe-west1", "europe-west1"},
	} {
		e := newEvaluator(t, blocks, map[string]cty.Value{"region": cty.StringVal(c.region), "firestore_location": cty.StringVal(c.set)})
		db := mustFind(t, blocks, "resource", "google_firestore_database", "default")
		if got := e.str(t, db.Body, "location_id"); got != c.want {
			t.Errorf("region %s, firestore_location %q: Firestore in %s, want %s", c.region, c.set, got, c.want)
		}
	}
}

// The lock file is committed, names each required provider at a version
// its pin admits and the schema was made from, with the registry's
// checksums of every platform's package.
func TestProviderLockCommitted(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(tfDir, ".terraform.lock.hcl"))
	if err != nil {
		t.Fatal("terraform/.terraform.lock.hcl is missing: terraform init would pick provider builds nobody checked")
	}
	if out, err := exec.Command("git", "-C", tfDir, "check-ignore", "-q", ".terraform.lock.hcl").CombinedOutput(); err == nil {
		t.Errorf("git ignores terraform/.terraform.lock.hcl: commit it (%s)", out)
	}
	f, diags := hclsyntax.ParseConfig(b, ".terraform.lock.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	locked := map[string]string{}
	for _, p := range f.Body.(*hclsyntax.Body).Blocks {
		v, _ := p.Body.Attributes["version"].Expr.Value(nil)
		locked[p.Labels[0]] = v.AsString()
		h, _ := p.Body.Attributes["hashes"].Expr.Value(nil)
		zh := 0
		for it := h.ElementIterator(); it.Next(); {
			if _, x := it.Element(); strings.HasPrefix(x.AsString(), "zh:") {
				zh++
			}
		}
		if zh < 10 {
			t.Errorf("%s: %d zh: checksums, want one for each platform's package", p.Labels[0], zh)
		}
	}
	blocks := loadTerraform(t, tfDir)
	tf := mustFind(t, blocks, "terraform")
	rp := childBlocks(tf.Body, "required_providers")[0]
	for name, a := range rp.Body.Attributes {
		req, _ := a.Expr.Value(nil)
		source := "registry.terraform.io/" + req.GetAttr("source").AsString()
		v, ok := locked[source]
		if !ok {
			t.Errorf("the lock file has no %s", source)
			continue
		}
		pin := strings.TrimPrefix(req.GetAttr("version").AsString(), "~> ")
		if !strings.HasPrefix(v, pin[:strings.LastIndex(pin, ".")]+".") || v < pin {
			t.Errorf("%s: locked at %s, outside the pin ~> %s", name, v, pin)
		}
	}
	for _, s := range loadSchemas(t) {
		if got := locked[s.Provider]; got != s.Version {
			t.Errorf("the schema of %s is of %s, the lock file has %s", s.Provider, s.Version, got)
		}
	}
}

// The runtime the functions are built on is the go line of go.mod.
func TestRuntimeMatchesGoMod(t *testing.T) {
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go 1\.(\d+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	blocks := loadTerraform(t, tfDir)
	e := newEvaluator(t, blocks, nil)
	fn := mustFind(t, blocks, "resource", "google_cloudfunctions2_function", "fn")
	bc := childBlocks(fn.Body, "build_config")[0]
	if got, want := e.str(t, bc.Body, "runtime"), "go1"+string(m[1]); got != want {
		t.Errorf("the functions are built on %s, go.mod says %s", got, want)
	}
}

// The README's commands that name the source archive name it by an
// absolute path: terraform -chdir resolves a relative one inside
// terraform/.
func TestReadmeArchivePathsAbsolute(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(tfDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(readme), "\n") {
		if i := strings.Index(l, "source_archive="); i >= 0 && strings.Contains(l, "-chdir") {
			n++
			if v := strings.TrimLeft(l[i+len("source_archive="):], `"`); !strings.HasPrefix(v, "$PWD/") && !strings.HasPrefix(v, "/") {
				t.Errorf("terraform/README.md: %q passes a relative source archive", strings.TrimSpace(l))
			}
		}
	}
	if n == 0 {
		t.Error("terraform/README.md has no teardown command naming the source archive")
	}
}
