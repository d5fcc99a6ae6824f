package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/imgpipe/imgpipe/functions"
)

// Who may reach what. The four private functions trust a token whose
// signature Cloud Run removed once IAM admitted the caller, so the
// pusher must be the only member that may invoke them; allUsers and
// allAuthenticatedUsers appear nowhere but on the api's invoker and, when
// output_urls = "public", on a grant of storage.objects.get alone on the
// images bucket.

const (
	allUsers              = "allUsers"
	allAuthenticatedUsers = "allAuthenticatedUsers"
)

// privateFunctions answer only Pub/Sub pushes, Cloud Tasks and Cloud
// Scheduler, all of which call as the pusher.
var privateFunctions = []string{functions.FnCompress, functions.FnDeadLetter, functions.FnDeliver, functions.FnSweep}

// storageRolePermissions are the storage permissions of the predefined
// roles that may appear on a bucket, from Google's IAM roles reference
// (Cloud Storage roles). Only these matter here: whether a role lets its
// member read objects (get) or enumerate them (list).
var storageRolePermissions = map[string][]string{
	"roles/storage.legacyObjectReader": {"storage.objects.get"},
	"roles/storage.legacyObjectOwner":  {"storage.objects.get", "storage.objects.update", "storage.objects.getIamPolicy", "storage.objects.setIamPolicy"},
	"roles/storage.legacyBucketReader": {"storage.buckets.get", "storage.objects.list", "storage.multipartUploads.list"},
	"roles/storage.legacyBucketWriter": {"storage.buckets.get", "storage.objects.list", "storage.objects.create", "storage.objects.delete", "storage.multipartUploads.list"},
	"roles/storage.legacyBucketOwner":  {"storage.buckets.get", "storage.buckets.update", "storage.buckets.getIamPolicy", "storage.buckets.setIamPolicy", "storage.objects.list", "storage.objects.create", "storage.objects.delete"},
	"roles/storage.objectViewer":       {"storage.objects.get", "storage.objects.list", "storage.folders.get", "storage.folders.list", "storage.managedFolders.get", "storage.managedFolders.list"},
	"roles/storage.objectCreator":      {"storage.objects.create", "storage.multipartUploads.create", "storage.multipartUploads.abort", "storage.multipartUploads.listParts", "storage.managedFolders.create"},
	"roles/storage.objectUser":         {"storage.objects.get", "storage.objects.list", "storage.objects.create", "storage.objects.delete", "storage.objects.update", "storage.objects.restore"},
	"roles/storage.objectAdmin":        {"storage.objects.get", "storage.objects.list", "storage.objects.create", "storage.objects.delete", "storage.objects.update", "storage.objects.getIamPolicy", "storage.objects.setIamPolicy"},
	"roles/storage.admin":              {"storage.buckets.get", "storage.buckets.update", "storage.buckets.delete", "storage.buckets.setIamPolicy", "storage.objects.get", "storage.objects.list", "storage.objects.create", "storage.objects.delete"},
}

// serviceViewerRoles may be held on a function by anyone: they read its
// configuration and cannot invoke it (run.routes.invoke) or change who can.
var serviceViewerRoles = map[string]bool{"roles/run.viewer": true, "roles/cloudfunctions.viewer": true}

// projectInvokeRoles, held on the project, let their member invoke every
// function, the private ones included, or grant that to others.
var projectInvokeRoles = map[string]bool{
	"roles/run.invoker": true, "roles/run.servicesInvoker": true, "roles/run.developer": true, "roles/run.admin": true,
	"roles/cloudfunctions.invoker": true, "roles/cloudfunctions.developer": true, "roles/cloudfunctions.admin": true,
	"roles/editor": true, "roles/owner": true,
}

// invokerRoles are the roles that let a member call a function.
var invokerRoles = map[string]bool{"roles/run.invoker": true, "roles/cloudfunctions.invoker": true}

// functionIAMTypes are the resources that grant roles on one function,
// with the argument naming it.
var functionIAMTypes = map[string]string{
	"google_cloud_run_service_iam_member": "service", "google_cloud_run_service_iam_binding": "service",
	"google_cloud_run_v2_service_iam_member": "name", "google_cloud_run_v2_service_iam_binding": "name",
	"google_cloudfunctions2_function_iam_member": "cloud_function", "google_cloudfunctions2_function_iam_binding": "cloud_function",
	"google_cloudfunctions_function_iam_member": "cloud_function", "google_cloudfunctions_function_iam_binding": "cloud_function",
}

// iamGrant is one member given one role by one instance of an IAM resource.
type iamGrant struct {
	Addr   string // resource address, with the instance key
	Type   string // resource type
	Target string // what it is granted on: bucket, service, secret…; "" for the project
	Role   string
	Member string
}

func isPublicMember(m string) bool { return m == allUsers || m == allAuthenticatedUsers }

// instanceContexts are the evaluation contexts of a block's instances:
// one per count.index or for_each element, or the evaluator's own.
func (e *evaluator) instanceContexts(b tfBlock) ([]string, []*hcl.EvalContext, error) {
	if a, ok := b.Body.Attributes["count"]; ok {
		v, diags := a.Expr.Value(e.ctx)
		if diags.HasErrors() || !v.IsKnown() || v.IsNull() {
			return nil, nil, fmt.Errorf("%s: count does not evaluate: %s", b.Addr(), diags.Error())
		}
		n, _ := v.AsBigFloat().Int64()
		var keys []string
		var ctxs []*hcl.EvalContext
		for i := int64(0); i < n; i++ {
			c := e.ctx.NewChild()
			c.Variables = map[string]cty.Value{"count": cty.ObjectVal(map[string]cty.Value{"index": cty.NumberIntVal(i)})}
			keys = append(keys, fmt.Sprintf("%s[%d]", b.Addr(), i))
			ctxs = append(ctxs, c)
		}
		return keys, ctxs, nil
	}
	if a, ok := b.Body.Attributes["for_each"]; ok {
		v, diags := a.Expr.Value(e.ctx)
		if diags.HasErrors() || !v.IsKnown() || v.IsNull() {
			return nil, nil, fmt.Errorf("%s: for_each does not evaluate: %s", b.Addr(), diags.Error())
		}
		var keys []string
		var ctxs []*hcl.EvalContext
		for it := v.ElementIterator(); it.Next(); {
			k, val := it.Element()
			if v.Type().IsSetType() {
				k = val
			}
			c := e.ctx.NewChild()
			c.Variables = map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{"key": k, "value": val})}
			keys = append(keys, fmt.Sprintf("%s[%q]", b.Addr(), k.AsString()))
			ctxs = append(ctxs, c)
		}
		return keys, ctxs, nil
	}
	return []string{b.Addr()}, []*hcl.EvalContext{e.ctx}, nil
}

func evalString(ctx *hcl.EvalContext, body hclsyntax.Attributes, name string) (string, bool) {
	a, ok := body[name]
	if !ok {
		return "", false
	}
	v, diags := a.Expr.Value(ctx)
	if diags.HasErrors() || !v.IsKnown() || v.IsNull() || v.Type() != cty.String {
		return "", false
	}
	return v.AsString(), true
}

// iamGrants evaluates every IAM member and binding of the files, and
// reports what it cannot read: a grant whose role, member or target does
// not evaluate, a whole-policy resource, and allUsers or
// allAuthenticatedUsers written anywhere but in an IAM member or binding
// (an ACL, a policy document).
func iamGrants(e *evaluator, blocks []tfBlock) ([]iamGrant, []string) {
	var grants []iamGrant
	var problems []string
	for _, b := range blocks {
		if b.Type != "resource" && b.Type != "data" {
			continue
		}
		typ := b.Labels[0]
		isMember, isBinding := strings.HasSuffix(typ, "_iam_member"), strings.HasSuffix(typ, "_iam_binding")
		if b.Type == "data" || (!isMember && !isBinding) {
			if strings.HasSuffix(typ, "_iam_policy") {
				problems = append(problems, fmt.Sprintf("%s sets a whole IAM policy, which this check does not read: grant with an _iam_member resource", b.Addr()))
			}
			if text := blockText(b); strings.Contains(text, allUsers) || strings.Contains(text, allAuthenticatedUsers) {
				problems = append(problems, fmt.Sprintf("%s names allUsers or allAuthenticatedUsers outside an IAM member: public access where no variable asks for it", b.Addr()))
			}
			continue
		}
		keys, ctxs, err := e.instanceContexts(b)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		hattrs := b.Body.Attributes
		for i, ctx := range ctxs {
			role, ok := evalString(ctx, hattrs, "role")
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: its role does not evaluate", keys[i]))
				continue
			}
			target := ""
			if typ != "google_project_iam_member" && typ != "google_project_iam_binding" {
				arg := functionIAMTypes[typ]
				for _, name := range []string{"bucket", "secret_id", "topic", "subscription", "service_account_id", "repository"} {
					if arg == "" && hattrs[name] != nil {
						arg = name
					}
				}
				if target, ok = evalString(ctx, hattrs, arg); !ok {
					if functionIAMTypes[typ] != "" {
						problems = append(problems, fmt.Sprintf("%s: the function it grants on (%s) does not evaluate", keys[i], arg))
						continue
					}
					// Known once created (an ID, say): named by its
					// expression, which matches no bucket or function.
					if a := hattrs[arg]; a != nil {
						target = exprText(a.Expr)
					}
				}
			}
			var members []string
			if isMember {
				m, ok := evalString(ctx, hattrs, "member")
				if !ok {
					problems = append(problems, fmt.Sprintf("%s: its member does not evaluate", keys[i]))
					continue
				}
				members = []string{m}
			} else {
				v, diags := hattrs["members"].Expr.Value(ctx)
				if diags.HasErrors() || !v.IsWhollyKnown() || v.IsNull() {
					problems = append(problems, fmt.Sprintf("%s: its members do not evaluate", keys[i]))
					continue
				}
				for it := v.ElementIterator(); it.Next(); {
					_, m := it.Element()
					members = append(members, m.AsString())
				}
			}
			for _, m := range members {
				grants = append(grants, iamGrant{Addr: keys[i], Type: typ, Target: target, Role: role, Member: m})
			}
		}
	}
	return grants, problems
}

// blockText is a block's source.
func blockText(b tfBlock) string {
	r := b.Body.SrcRange
	src, err := os.ReadFile(r.Filename)
	if err != nil || r.End.Byte > len(src) {
		return ""
	}
	return string(src[r.Start.Byte:r.End.Byte])
}

// rolePermissions is what a role grants: from the table for a predefined
// role, from its resource for a custom role of these files.
func rolePermissions(e *evaluator, blocks []tfBlock, role string) ([]string, bool) {
	if p, ok := storageRolePermissions[role]; ok {
		return p, true
	}
	for _, b := range ofType(blocks, "resource", "google_project_iam_custom_role") {
		r, ok := e.ctx.Variables["google_project_iam_custom_role"]
		if !ok || !r.Type().HasAttribute(b.Labels[1]) {
			continue
		}
		cr := r.GetAttr(b.Labels[1])
		if !cr.Type().HasAttribute("name") || cr.GetAttr("name").AsString() != role || !cr.Type().HasAttribute("permissions") {
			continue
		}
		var perms []string
		for it := cr.GetAttr("permissions").ElementIterator(); it.Next(); {
			_, p := it.Element()
			perms = append(perms, p.AsString())
		}
		return perms, true
	}
	return nil, false
}

// exposureProblems evaluates the files with overrides and says every way
// in which someone other than the expected caller may invoke a private
// function, or the public may reach something no variable opened to it.
func exposureProblems(t *testing.T, blocks []tfBlock, overrides map[string]cty.Value) []string {
	t.Helper()
	e := newEvaluator(t, blocks, overrides)
	grants, problems := iamGrants(e, blocks)
	res := func(typ, name, attr string) string {
		r, ok := e.ctx.Variables[typ]
		if !ok || !r.Type().HasAttribute(name) || !r.GetAttr(name).Type().HasAttribute(attr) {
			t.Fatalf("terraform: no %s.%s.%s", typ, name, attr)
		}
		return r.GetAttr(name).GetAttr(attr).AsString()
	}
	pusher := "serviceAccount:" + res("google_service_account", "pusher", "email")
	images := res("google_storage_bucket", "images", "name")
	public := e.ctx.Variables["var"].GetAttr("output_urls").AsString() == "public"
	service := func(fn string) string { return "imgpipe-" + strings.ToLower(fn) }
	private := map[string]string{}
	for _, fn := range privateFunctions {
		private[service(fn)] = fn
	}
	pusherInvokes := map[string]bool{}

	for _, g := range grants {
		pub := isPublicMember(g.Member)
		switch {
		case functionIAMTypes[g.Type] != "":
			svc := g.Target[strings.LastIndex(g.Target, "/")+1:]
			if fn, ok := private[svc]; ok {
				if g.Member == pusher {
					pusherInvokes[fn] = pusherInvokes[fn] || invokerRoles[g.Role]
				} else if !serviceViewerRoles[g.Role] {
					problems = append(problems, fmt.Sprintf("%s gives %s %s on the private function %s: only the pusher may invoke it", g.Addr, g.Member, g.Role, fn))
				}
			} else if pub && (svc != service(functions.FnAPI) || g.Member != allUsers || !invokerRoles[g.Role]) {
				problems = append(problems, fmt.Sprintf("%s gives %s %s on %s: the public may only invoke the api", g.Addr, g.Member, g.Role, svc))
			}
		case g.Type == "google_project_iam_member" || g.Type == "google_project_iam_binding":
			if pub {
				problems = append(problems, fmt.Sprintf("%s gives %s %s on the project", g.Addr, g.Member, g.Role))
			} else if projectInvokeRoles[g.Role] && g.Member != pusher {
				problems = append(problems, fmt.Sprintf("%s gives %s %s on the project: it may invoke every function, the private ones included", g.Addr, g.Member, g.Role))
			}
		case strings.HasPrefix(g.Type, "google_storage_bucket_iam_"):
			if !pub {
				continue
			}
			perms, known := rolePermissions(e, blocks, g.Role)
			switch {
			case !known:
				problems = append(problems, fmt.Sprintf("%s gives %s %s on bucket %s: a role not in the permission table (add it from Google's IAM roles reference)", g.Addr, g.Member, g.Role, g.Target))
			case slices.Contains(perms, "storage.objects.list"):
				problems = append(problems, fmt.Sprintf("%s lets %s list bucket %s: %s has storage.objects.list", g.Addr, g.Member, g.Target, g.Role))
			}
			if !(public && g.Target == images && g.Member == allUsers && known && slices.Equal(perms, []string{"storage.objects.get"})) {
				problems = append(problems, fmt.Sprintf("%s gives %s %s on bucket %s where no variable asks for it (output_urls = \"public\" allows storage.objects.get alone, for allUsers, on %s)", g.Addr, g.Member, g.Role, g.Target, images))
			}
		default:
			if pub {
				problems = append(problems, fmt.Sprintf("%s gives %s %s on %s", g.Addr, g.Member, g.Role, g.Target))
			}
		}
	}
	for _, fn := range privateFunctions {
		if !pusherInvokes[fn] {
			problems = append(problems, fmt.Sprintf("the pusher may not invoke %s: its pushes would be refused", fn))
		}
	}
	sort.Strings(problems)
	return problems
}

// bucketGrants are the grants on one bucket.
func bucketGrants(t *testing.T, blocks []tfBlock, overrides map[string]cty.Value, bucket string) []iamGrant {
	t.Helper()
	grants, problems := iamGrants(newEvaluator(t, blocks, overrides), blocks)
	if len(problems) > 0 {
		t.Fatalf("the grants do not evaluate: %v", problems)
	}
	var out []iamGrant
	for _, g := range grants {
		if strings.HasPrefix(g.Type, "google_storage_bucket_iam_") && g.Target == bucket {
			out = append(out, g)
		}
	}
	return out
}

var outputModes = []struct {
	name      string
	overrides map[string]cty.Value
}{
	{"defaults", nil},
	{`output_urls = "public"`, map[string]cty.Value{"output_urls": cty.StringVal("public")}},
}

// With the default variables and with public outputs, only the pusher
// may invoke the private functions, the private bucket is private, no
// allUsers binding lets anyone list a bucket, and the defaults make no
// bucket public at all.
func TestNothingPublicButWhatIsAskedFor(t *testing.T) {
	blocks := loadTerraform(t, tfDir)
	for _, mode := range outputModes {
		t.Run(mode.name, func(t *testing.T) {
			for _, p := range exposureProblems(t, blocks, mode.overrides) {
				t.Error(p)
			}
			e := newEvaluator(t, blocks, mode.overrides)
			priv := mustFind(t, blocks, "resource", "google_storage_bucket", "private").Body
			img := mustFind(t, blocks, "resource", "google_storage_bucket", "images").Body
			if got := e.str(t, priv, "public_access_prevention"); got != "enforced" {
				t.Errorf("the private bucket's public access prevention is %q, want enforced", got)
			}
			if e.value(t, priv.Attributes["uniform_bucket_level_access"].Expr) != cty.True {
				t.Error("the private bucket lacks uniform bucket-level access: object ACLs could make objects public")
			}
			privName, imgName := e.str(t, priv, "name"), e.str(t, img, "name")
			if privName == imgName {
				t.Fatal("the private bucket is the images bucket")
			}
			for _, g := range bucketGrants(t, blocks, mode.overrides, privName) {
				if isPublicMember(g.Member) {
					t.Errorf("%s gives %s %s on the private bucket", g.Addr, g.Member, g.Role)
				}
			}
			var public []iamGrant
			all, _ := iamGrants(e, blocks)
			for _, g := range all {
				if strings.HasPrefix(g.Type, "google_storage_bucket_iam_") && isPublicMember(g.Member) {
					public = append(public, g)
					if perms, known := rolePermissions(e, blocks, g.Role); !known || slices.Contains(perms, "storage.objects.list") {
						t.Errorf("%s gives %s %s on %s, which lists objects (or is not in the table)", g.Addr, g.Member, g.Role, g.Target)
					}
				}
			}
			pap := e.str(t, img, "public_access_prevention")
			if mode.overrides == nil {
				if len(public) > 0 {
					t.Errorf("with the defaults, %d public bucket grants (%v): the default must apply where allUsers bindings are refused", len(public), public)
				}
				if pap != "enforced" {
					t.Errorf("with the defaults, the images bucket's public access prevention is %q, want enforced", pap)
				}
				if got := e.str(t, mustFind(t, blocks, "variable", "output_urls").Body, "default"); got != "signed" {
					t.Errorf("output_urls defaults to %q, want signed", got)
				}
			} else {
				if len(public) != 1 || public[0].Target != imgName || public[0].Member != allUsers {
					t.Errorf("public outputs: public grants %v, want one for allUsers on %s", public, imgName)
				}
				if pap != "inherited" {
					t.Errorf("public outputs: the images bucket's public access prevention is %q: the allUsers grant would be refused", pap)
				}
			}
		})
	}
}

// tfEdit changes one Terraform file of a copy: Old, which must occur in
// File, becomes New; an empty Old appends New to File.
type tfEdit struct{ File, Old, New string }

// terraformWith loads a copy of terraform/ with edits applied.
func terraformWith(t *testing.T, edits ...tfEdit) []tfBlock {
	t.Helper()
	dir := t.TempDir()
	files, _ := filepath.Glob(filepath.Join(tfDir, "*.tf"))
	src := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src[filepath.Base(f)] = string(b)
	}
	for _, ed := range edits {
		s, ok := src[ed.File]
		switch {
		case !ok:
			t.Fatalf("no terraform/%s", ed.File)
		case ed.Old == "":
			src[ed.File] = s + "\n" + ed.New
		case !strings.Contains(s, ed.Old):
			t.Fatalf("terraform/%s no longer contains %q: update the broken copy", ed.File, ed.Old)
		default:
			src[ed.File] = strings.Replace(s, ed.Old, ed.New, 1)
		}
	}
	for name, s := range src {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return loadTerraform(t, dir)
}

// The check finds each kind of exposure in a deliberately broken copy of
// the files, and accepts a public grant of storage.objects.get alone.
func TestExposureCheckFindsMistakes(t *testing.T) {
	public := map[string]cty.Value{"output_urls": cty.StringVal("public")}
	cases := []struct {
		name      string
		edits     []tfEdit
		overrides map[string]cty.Value
		want      []string // each must be in some problem; none means no problem at all
	}{
		{
			name: "another member invokes a private function through Cloud Run",
			edits: []tfEdit{{File: "functions.tf", New: `resource "google_cloud_run_service_iam_member" "debug" {
  location = var.region
  service  = google_cloudfunctions2_function.fn["sweep"].service_config[0].service
  role     = "roles/run.invoker"
  member   = "user:eve@example.com"
}
`}},
			want: []string{`google_cloud_run_service_iam_member.debug gives user:eve@example.com roles/run.invoker on the private function sweep`},
		},
		{
			name: "allUsers invokes a private function through Cloud Functions",
			edits: []tfEdit{{File: "functions.tf", New: `resource "google_cloudfunctions2_function_iam_member" "open" {
  location       = var.region
  cloud_function = google_cloudfunctions2_function.fn["deliverWebhook"].name
  role           = "roles/cloudfunctions.invoker"
  member         = "allUsers"
}
`}},
			want: []string{`google_cloudfunctions2_function_iam_member.open gives allUsers roles/cloudfunctions.invoker on the private function deliverWebhook`},
		},
		{
			name:  "the private functions' binding names the functions' account instead of the pusher",
			edits: []tfEdit{{File: "functions.tf", Old: `member   = "serviceAccount:${google_service_account.pusher.email}"`, New: `member   = "serviceAccount:${google_service_account.functions.email}"`}},
			want: []string{
				`google_cloud_run_service_iam_member.pusher["compressImage"] gives serviceAccount:imgpipe-functions@acme-prod.iam.gserviceaccount.com roles/run.invoker on the private function compressImage`,
				`the pusher may not invoke sweep`,
			},
		},
		{
			name: "a run.invoker binding on the project",
			edits: []tfEdit{{File: "iam.tf", New: `resource "google_project_iam_binding" "invokers" {
  project = var.project
  role    = "roles/run.invoker"
  members = ["group:ops@example.com"]
}
`}},
			want: []string{`google_project_iam_binding.invokers gives group:ops@example.com roles/run.invoker on the project`},
		},
		{
			name:      "public outputs through objectViewer, which lists",
			edits:     []tfEdit{{File: "storage.tf", Old: `role   = "roles/storage.legacyObjectReader"`, New: `role   = "roles/storage.objectViewer"`}},
			overrides: public,
			want: []string{
				`google_storage_bucket_iam_member.public_read[0] lets allUsers list bucket acme-prod-imgpipe-images: roles/storage.objectViewer has storage.objects.list`,
				`google_storage_bucket_iam_member.public_read[0] gives allUsers roles/storage.objectViewer on bucket acme-prod-imgpipe-images where no variable asks for it`,
			},
		},
		{
			name:  "the public grant made whatever output_urls says",
			edits: []tfEdit{{File: "storage.tf", Old: `count  = var.output_urls == "public" ? 1 : 0`, New: `count  = 1`}},
			want:  []string{`google_storage_bucket_iam_member.public_read[0] gives allUsers roles/storage.legacyObjectReader on bucket acme-prod-imgpipe-images where no variable asks for it`},
		},
		{
			name:      "allAuthenticatedUsers reads the images bucket",
			edits:     []tfEdit{{File: "storage.tf", Old: `member = "allUsers"`, New: `member = "allAuthenticatedUsers"`}},
			overrides: public,
			want:      []string{`google_storage_bucket_iam_member.public_read[0] gives allAuthenticatedUsers roles/storage.legacyObjectReader on bucket acme-prod-imgpipe-images where no variable asks for it`},
		},
		{
			name: "the private bucket read by allUsers",
			edits: []tfEdit{{File: "storage.tf", New: `resource "google_storage_bucket_iam_member" "thumbs_public" {
  count  = var.output_urls == "public" ? 1 : 0
  bucket = google_storage_bucket.private.name
  role   = "roles/storage.legacyObjectReader"
  member = "allUsers"
}
`}},
			overrides: public,
			want:      []string{`google_storage_bucket_iam_member.thumbs_public[0] gives allUsers roles/storage.legacyObjectReader on bucket acme-prod-imgpipe-private where no variable asks for it`},
		},
		{
			name: "a custom role with list",
			edits: []tfEdit{
				{File: "iam.tf", New: `resource "google_project_iam_custom_role" "public_read" {
  role_id     = "imgpipePublicRead"
  title       = "imgpipe public read"
  permissions = ["storage.objects.get", "storage.objects.list"]
}
`},
				{File: "storage.tf", Old: `role   = "roles/storage.legacyObjectReader"`, New: `role   = google_project_iam_custom_role.public_read.name`},
			},
			overrides: public,
			want:      []string{`google_storage_bucket_iam_member.public_read[0] lets allUsers list bucket acme-prod-imgpipe-images: projects/acme-prod/roles/imgpipePublicRead has storage.objects.list`},
		},
		{
			name: "a custom role with storage.objects.get alone is accepted",
			edits: []tfEdit{
				{File: "iam.tf", New: `resource "google_project_iam_custom_role" "public_read" {
  role_id     = "imgpipePublicRead"
  title       = "imgpipe public read"
  permissions = ["storage.objects.get"]
}
`},
				{File: "storage.tf", Old: `role   = "roles/storage.legacyObjectReader"`, New: `role   = google_project_iam_custom_role.public_read.name`},
			},
			overrides: public,
		},
		{
			name:      "a role the table does not know",
			edits:     []tfEdit{{File: "storage.tf", Old: `role   = "roles/storage.legacyObjectReader"`, New: `role   = "roles/storage.insightsCollectorService"`}},
			overrides: public,
			want:      []string{`gives allUsers roles/storage.insightsCollectorService on bucket acme-prod-imgpipe-images: a role not in the permission table`},
		},
		{
			name: "allUsers in an ACL",
			edits: []tfEdit{{File: "storage.tf", New: `resource "google_storage_bucket_acl" "open" {
  bucket      = google_storage_bucket.private.name
  role_entity = ["READER:allUsers"]
}
`}},
			want: []string{`google_storage_bucket_acl.open names allUsers or allAuthenticatedUsers outside an IAM member`},
		},
		{
			name: "allUsers gets more than invoking the api",
			edits: []tfEdit{{File: "functions.tf", Old: `role     = "roles/run.invoker"
  member   = "allUsers"`, New: `role     = "roles/run.developer"
  member   = "allUsers"`}},
			want: []string{`google_cloud_run_service_iam_member.public_api gives allUsers roles/run.developer on imgpipe-api: the public may only invoke the api`},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := exposureProblems(t, terraformWith(t, c.edits...), c.overrides)
			if len(c.want) == 0 && len(got) > 0 {
				t.Errorf("the check refuses an acceptable copy:\n%s", strings.Join(got, "\n"))
			}
			for _, w := range c.want {
				if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, w) }) {
					t.Errorf("the check missed: %s\nit found:\n%s", w, strings.Join(got, "\n"))
				}
			}
		})
	}
}
