package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

const tfDir = "../../terraform"

// tfBlock is one top-level block of the Terraform files.
type tfBlock struct {
	Type   string // resource, data, variable, locals, output, terraform, provider
	Labels []string
	Body   *hclsyntax.Body
	File   string
}

// Addr is how other blocks refer to it: TYPE.NAME, data.TYPE.NAME, var.NAME.
func (b tfBlock) Addr() string {
	switch b.Type {
	case "resource":
		return b.Labels[0] + "." + b.Labels[1]
	case "data":
		return "data." + b.Labels[0] + "." + b.Labels[1]
	case "variable":
		return "var." + b.Labels[0]
	}
	return b.Type
}

// loadTerraform parses every .tf file in dir.
func loadTerraform(t *testing.T, dir string) []tfBlock {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Terraform files in %s (%v)", dir, err)
	}
	p := hclparse.NewParser()
	var out []tfBlock
	for _, f := range files {
		file, diags := p.ParseHCLFile(f)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", f, diags.Error())
		}
		for _, b := range file.Body.(*hclsyntax.Body).Blocks {
			out = append(out, tfBlock{Type: b.Type, Labels: b.Labels, Body: b.Body, File: filepath.Base(f)})
		}
	}
	return out
}

func find(blocks []tfBlock, typ string, labels ...string) (tfBlock, bool) {
	for _, b := range blocks {
		if b.Type == typ && strings.Join(b.Labels, ".") == strings.Join(labels, ".") {
			return b, true
		}
	}
	return tfBlock{}, false
}

func mustFind(t *testing.T, blocks []tfBlock, typ string, labels ...string) tfBlock {
	t.Helper()
	b, ok := find(blocks, typ, labels...)
	if !ok {
		t.Fatalf("terraform: no %s %q", typ, strings.Join(labels, "."))
	}
	return b
}

func ofType(blocks []tfBlock, typ, resourceType string) []tfBlock {
	var out []tfBlock
	for _, b := range blocks {
		if b.Type == typ && b.Labels[0] == resourceType {
			out = append(out, b)
		}
	}
	return out
}

// childBlocks returns the nested blocks of body named name.
func childBlocks(body *hclsyntax.Body, name string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, b := range body.Blocks {
		if b.Type == name {
			out = append(out, b)
		}
	}
	return out
}

// ---- evaluation ----

// tfFunctions are the Terraform functions the files use, from go-cty's
// standard library where it has them.
var tfFunctions = map[string]function.Function{
	"ceil": stdlib.CeilFunc,
	"join": stdlib.JoinFunc,
	"sort": stdlib.SortFunc,
	"startswith": function.New(&function.Spec{
		Params: []function.Parameter{{Name: "s", Type: cty.String}, {Name: "prefix", Type: cty.String}},
		Type:   function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.BoolVal(strings.HasPrefix(args[0].AsString(), args[1].AsString())), nil
		},
	}),
	"concat":     stdlib.ConcatFunc,
	"contains":   stdlib.ContainsFunc,
	"length":     stdlib.LengthFunc,
	"lower":      stdlib.LowerFunc,
	"max":        stdlib.MaxFunc,
	"min":        stdlib.MinFunc,
	"pow":        stdlib.PowFunc,
	"range":      stdlib.RangeFunc,
	"slice":      stdlib.SliceFunc,
	"sum":        sumFunc,
	"tonumber":   conversion(cty.Number),
	"tostring":   conversion(cty.String),
	"trimsuffix": stdlib.TrimSuffixFunc,
	"toset":      conversion(cty.Set(cty.DynamicPseudoType)),
	"filesha256": function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func([]cty.Value, cty.Type) (cty.Value, error) {
			return cty.StringVal(strings.Repeat("ab", 32)), nil
		},
	}),
}

// sumFunc is Terraform's sum: the total of a list, tuple or set of
// numbers, which must not be empty.
var sumFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "list", Type: cty.DynamicPseudoType}},
	Type:   function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		l := args[0]
		if !l.CanIterateElements() || l.LengthInt() == 0 {
			return cty.NilVal, fmt.Errorf("sum takes a non-empty collection of numbers")
		}
		total := cty.Zero
		for it := l.ElementIterator(); it.Next(); {
			_, v := it.Element()
			n, err := convert.Convert(v, cty.Number)
			if err != nil {
				return cty.NilVal, err
			}
			total = total.Add(n)
		}
		return total, nil
	},
})

func conversion(to cty.Type) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "v", Type: cty.DynamicPseudoType, AllowUnknown: true, AllowNull: true}},
		Type: func(args []cty.Value) (cty.Type, error) {
			if to == cty.Set(cty.DynamicPseudoType) && args[0].Type().IsTupleType() {
				return cty.Set(cty.String), nil
			}
			return to, nil
		},
		Impl: func(args []cty.Value, ret cty.Type) (cty.Value, error) { return convert.Convert(args[0], ret) },
	})
}

// evaluator evaluates expressions of the Terraform files with the
// variables' defaults (or overrides), the locals, and stand-ins for the
// attributes resources only have once created.
type evaluator struct {
	ctx *hcl.EvalContext
}

// functionURI is the stand-in for a function's Cloud Run URL.
func functionURI(key string) string {
	return "https://imgpipe-" + strings.ToLower(key) + "-abc123-uc.a.run.app"
}

func newEvaluator(t *testing.T, blocks []tfBlock, overrides map[string]cty.Value) *evaluator {
	t.Helper()
	vars := map[string]cty.Value{}
	for _, b := range blocks {
		if b.Type != "variable" {
			continue
		}
		v := cty.NullVal(cty.DynamicPseudoType)
		if a, ok := b.Body.Attributes["default"]; ok {
			dv, diags := a.Expr.Value(nil)
			if diags.HasErrors() {
				t.Fatalf("variable %s: default: %s", b.Labels[0], diags.Error())
			}
			v = dv
		}
		vars[b.Labels[0]] = v
	}
	vars["project"] = cty.StringVal("acme-prod")
	vars["source_archive"] = cty.StringVal("/tmp/imgpipe-source.zip")
	for k, v := range overrides {
		vars[k] = v
	}
	e := &evaluator{ctx: &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(vars)}, Functions: tfFunctions}}

	// Resources: their own arguments where those evaluate, plus the
	// attributes only a created function has.
	resources := map[string]map[string]cty.Value{}
	for pass := 0; pass < 3; pass++ {
		e.setResources(resources)
		for _, b := range blocks {
			if b.Type != "resource" {
				continue
			}
			attrs := map[string]cty.Value{}
			for name, a := range b.Body.Attributes {
				if v, diags := a.Expr.Value(e.ctx); !diags.HasErrors() {
					attrs[name] = v
				}
			}
			if _, ok := attrs["id"]; !ok {
				attrs["id"] = cty.StringVal("id-of-" + b.Addr())
			}
			if b.Labels[0] == "google_service_account" {
				id := attrs["account_id"].AsString()
				attrs["email"] = cty.StringVal(id + "@acme-prod.iam.gserviceaccount.com")
				attrs["name"] = cty.StringVal("projects/acme-prod/serviceAccounts/" + id + "@acme-prod.iam.gserviceaccount.com")
				attrs["id"] = attrs["name"]
			}
			if b.Labels[0] == "google_project_iam_custom_role" {
				if id, ok := attrs["role_id"]; ok && id.Type() == cty.String {
					attrs["name"] = cty.StringVal("projects/acme-prod/roles/" + id.AsString())
					attrs["id"] = attrs["name"]
				}
			}
			if resources[b.Labels[0]] == nil {
				resources[b.Labels[0]] = map[string]cty.Value{}
			}
			resources[b.Labels[0]][b.Labels[1]] = cty.ObjectVal(attrs)
		}
		e.evalLocals(blocks)
	}
	fns := map[string]cty.Value{}
	if m, ok := e.local("functions"); ok {
		for it := m.ElementIterator(); it.Next(); {
			k, _ := it.Element()
			fns[k.AsString()] = cty.ObjectVal(map[string]cty.Value{
				"name": cty.StringVal("imgpipe-" + strings.ToLower(k.AsString())),
				"service_config": cty.TupleVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{
					"uri": cty.StringVal(functionURI(k.AsString())), "service": cty.StringVal("imgpipe-" + strings.ToLower(k.AsString())),
				})}),
			})
		}
	}
	if len(fns) > 0 {
		resources["google_cloudfunctions2_function"]["fn"] = cty.ObjectVal(fns)
	}
	e.setResources(resources)
	e.ctx.Variables["data"] = cty.ObjectVal(map[string]cty.Value{"google_project": cty.ObjectVal(map[string]cty.Value{
		"this": cty.ObjectVal(map[string]cty.Value{"number": cty.StringVal("123456789012")})})})
	e.evalLocals(blocks)
	return e
}

func (e *evaluator) setResources(rs map[string]map[string]cty.Value) {
	for typ, byName := range rs {
		e.ctx.Variables[typ] = cty.ObjectVal(byName)
	}
}

func (e *evaluator) evalLocals(blocks []tfBlock) {
	locals := map[string]cty.Value{}
	if l, ok := e.ctx.Variables["local"]; ok {
		locals = l.AsValueMap()
	}
	for pass := 0; pass < 4; pass++ {
		for _, b := range blocks {
			if b.Type != "locals" {
				continue
			}
			for name, a := range b.Body.Attributes {
				if v, diags := a.Expr.Value(e.ctx); !diags.HasErrors() {
					locals[name] = v
				}
			}
			e.ctx.Variables["local"] = cty.ObjectVal(locals)
		}
	}
}

func (e *evaluator) local(name string) (cty.Value, bool) {
	l, ok := e.ctx.Variables["local"]
	if !ok || !l.Type().HasAttribute(name) {
		return cty.NilVal, false
	}
	return l.GetAttr(name), true
}

func (e *evaluator) value(t *testing.T, expr hcl.Expression) cty.Value {
	t.Helper()
	v, diags := expr.Value(e.ctx)
	if diags.HasErrors() {
		t.Fatalf("evaluating %s: %s", exprText(expr), diags.Error())
	}
	return v
}

func (e *evaluator) str(t *testing.T, body *hclsyntax.Body, attr string) string {
	t.Helper()
	a, ok := body.Attributes[attr]
	if !ok {
		t.Fatalf("no attribute %s", attr)
	}
	v := e.value(t, a.Expr)
	if v.Type() == cty.Number {
		return v.AsBigFloat().Text('f', -1)
	}
	if v.Type() != cty.String || !v.IsKnown() || v.IsNull() {
		t.Fatalf("%s is %#v, not a known string", attr, v)
	}
	return v.AsString()
}

// traversalRefs turns references into addresses: var.X, local.X,
// TYPE.NAME, data.TYPE.NAME.
func traversalRefs(trs []hcl.Traversal) []string {
	var out []string
	for _, tr := range trs {
		parts := []string{tr.RootName()}
		for _, step := range tr[1:] {
			if a, ok := step.(hcl.TraverseAttr); ok {
				parts = append(parts, a.Name)
			}
			if len(parts) == 3 {
				break
			}
		}
		switch parts[0] {
		case "data": // data.TYPE.NAME
			out = append(out, strings.Join(parts, "."))
		default: // var.X, local.X, TYPE.NAME
			out = append(out, strings.Join(parts[:min(2, len(parts))], "."))
		}
	}
	return out
}

// references lists the addresses a block's arguments refer to.
func references(body *hclsyntax.Body) []string {
	var out []string
	var walk func(b *hclsyntax.Body)
	walk = func(b *hclsyntax.Body) {
		for _, a := range b.Attributes {
			out = append(out, traversalRefs(a.Expr.Variables())...)
		}
		for _, c := range b.Blocks {
			walk(c.Body)
		}
	}
	walk(body)
	return out
}

func exprText(expr hcl.Expression) string {
	r := expr.Range()
	src, err := os.ReadFile(r.Filename)
	if err != nil {
		return r.String()
	}
	return string(src[r.Start.Byte:r.End.Byte])
}

// ---- the schema check ----

type schemaAttr struct {
	Required bool   `json:"required"`
	Type     string `json:"type"`
}

type schemaBlock struct {
	Attributes map[string]schemaAttr `json:"attributes"`
	Blocks     map[string]struct {
		Required bool        `json:"required"`
		MaxOne   bool        `json:"max_one"`
		Block    schemaBlock `json:"block"`
	} `json:"blocks"`
}

type providerSchema struct {
	Provider string                 `json:"provider"`
	Version  string                 `json:"version"`
	Source   string                 `json:"source"`
	Resource map[string]schemaBlock `json:"resource"`
	Data     map[string]schemaBlock `json:"data"`
}

// loadSchemas reads each provider's schema in terraform/schema.
func loadSchemas(t *testing.T) []providerSchema {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(tfDir, "schema", "*.json"))
	var out []providerSchema
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var s providerSchema
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		t.Fatal("no provider schema in terraform/schema")
	}
	return out
}

// loadSchema is every provider's resource and data source types in one.
func loadSchema(t *testing.T) providerSchema {
	t.Helper()
	all := providerSchema{Resource: map[string]schemaBlock{}, Data: map[string]schemaBlock{}}
	for _, s := range loadSchemas(t) {
		maps.Copy(all.Resource, s.Resource)
		maps.Copy(all.Data, s.Data)
	}
	return all
}

// Meta-arguments Terraform itself accepts in every resource and data block.
var (
	metaAttributes = map[string]bool{"count": true, "for_each": true, "depends_on": true, "provider": true}
	metaBlocks     = map[string]bool{"lifecycle": true, "provisioner": true, "connection": true}
)

// checkBody reports every argument of body that the schema does not have,
// every required one missing, and blocks repeated that may appear once.
func checkBody(where string, body *hclsyntax.Body, s schemaBlock, top bool) []string {
	var problems []string
	for name, a := range body.Attributes {
		if top && metaAttributes[name] {
			continue
		}
		if _, ok := s.Attributes[name]; ok {
			continue
		}
		if _, isBlock := s.Blocks[name]; isBlock {
			problems = append(problems, fmt.Sprintf("%s: %s is a block, written as an argument (%s)", where, name, a.SrcRange))
		} else {
			problems = append(problems, fmt.Sprintf("%s: no argument %q in the provider's schema (%s)", where, name, a.SrcRange))
		}
	}
	seen := map[string]int{}
	for _, b := range body.Blocks {
		name := b.Type
		content := b.Body
		if name == "dynamic" && len(b.Labels) == 1 {
			name = b.Labels[0]
			if c := childBlocks(b.Body, "content"); len(c) == 1 {
				content = c[0].Body
			}
		}
		if top && metaBlocks[name] {
			continue
		}
		sb, ok := s.Blocks[name]
		if !ok {
			if _, isAttr := s.Attributes[name]; isAttr {
				problems = append(problems, fmt.Sprintf("%s: %s is an argument, written as a block (%s)", where, name, b.TypeRange))
			} else {
				problems = append(problems, fmt.Sprintf("%s: no block %q in the provider's schema (%s)", where, name, b.TypeRange))
			}
			continue
		}
		seen[name]++
		if sb.MaxOne && seen[name] == 2 {
			problems = append(problems, fmt.Sprintf("%s: block %s may appear once (%s)", where, name, b.TypeRange))
		}
		problems = append(problems, checkBody(where+"."+name, content, sb.Block, false)...)
	}
	for name, a := range s.Attributes {
		if _, ok := body.Attributes[name]; a.Required && !ok {
			problems = append(problems, fmt.Sprintf("%s: the required argument %s is missing", where, name))
		}
	}
	for name, b := range s.Blocks {
		if b.Required && seen[name] == 0 {
			problems = append(problems, fmt.Sprintf("%s: the required block %s is missing", where, name))
		}
	}
	sort.Strings(problems)
	return problems
}

func checkAgainstSchema(blocks []tfBlock, s providerSchema) []string {
	var problems []string
	for _, b := range blocks {
		var sb schemaBlock
		var ok bool
		switch b.Type {
		case "resource":
			sb, ok = s.Resource[b.Labels[0]]
		case "data":
			sb, ok = s.Data[b.Labels[0]]
		default:
			continue
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("%s (%s): type not in terraform/schema: run make tf-schema", b.Addr(), b.File))
			continue
		}
		problems = append(problems, checkBody(b.Addr(), b.Body, sb, true)...)
	}
	return problems
}

// Every resource and data source matches the schema of the pinned provider.
func TestTerraformMatchesProviderSchema(t *testing.T) {
	blocks := loadTerraform(t, tfDir)
	s := loadSchema(t)
	for _, p := range checkAgainstSchema(blocks, s) {
		t.Error(p)
	}
	// Each provider's pin and its schema are of one version.
	tf := mustFind(t, blocks, "terraform")
	rp := childBlocks(tf.Body, "required_providers")
	if len(rp) != 1 {
		t.Fatal("terraform: no required_providers block")
	}
	for _, sch := range loadSchemas(t) {
		name := sch.Provider[strings.LastIndex(sch.Provider, "/")+1:]
		a, ok := rp[0].Body.Attributes[name]
		if !ok {
			t.Errorf("terraform/schema has %s, required_providers does not", sch.Provider)
			continue
		}
		req, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		pin := req.GetAttr("version").AsString()
		minor := sch.Version[:strings.LastIndex(sch.Version, ".")]
		if !strings.HasPrefix(pin, "~> "+minor+".") {
			t.Errorf("%s is pinned to %q, its schema is of %s: pin \"~> %s\" or regenerate the schema", name, pin, sch.Version, sch.Version)
		}
	}
}

// The check finds the mistakes it is there for.
func TestSchemaCheckFindsMistakes(t *testing.T) {
	dir := t.TempDir()
	bad := `resource "google_pubsub_subscription" "s" {
  topic        = "t"
  ack_deadline = 10
  push_config {
    push_endpoint = "https://x"
    oidc_token = { service_account_email = "a@b" }
  }
  retry_policy {
    minimum_backoff = "1s"
  }
  retry_policy {
    minimum_backoff = "2s"
  }
  expiration_policy {}
}
resource "google_cloudfunctions2_function" "f" {
  name     = "f"
  location = "us-central1"
  service_config {
    cpu = "1"
  }
}
`
	if err := os.WriteFile(filepath.Join(dir, "bad.tf"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(checkAgainstSchema(loadTerraform(t, dir), loadSchema(t)), "\n")
	for _, want := range []string{
		`google_pubsub_subscription.s: no argument "ack_deadline"`,
		`google_pubsub_subscription.s: the required argument name is missing`,
		`google_pubsub_subscription.s.push_config: oidc_token is a block, written as an argument`,
		`google_pubsub_subscription.s: block retry_policy may appear once`,
		`google_pubsub_subscription.s.expiration_policy: the required argument ttl is missing`,
		`google_cloudfunctions2_function.f.service_config: no argument "cpu"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the check missed: %s\nit found:\n%s", want, got)
		}
	}
}

// The files are formatted as terraform fmt formats them (hclwrite is the
// formatter terraform fmt builds on), so the check holds where the
// terraform binary is not installed.
func TestTerraformFormatted(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(tfDir, "*.tf"))
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := hclwrite.Format(src); !bytes.Equal(got, src) {
			t.Errorf("%s is not formatted: run terraform fmt terraform", f)
		}
	}
}
