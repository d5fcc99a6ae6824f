package functions

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/shared/config"
)

// block returns the text of `name = {` … its closing brace in src.
func block(t *testing.T, src, name string) string {
	t.Helper()
	i := regexp.MustCompile(`(?m)^\s*` + name + `\s*=\s*\{`).FindStringIndex(src)
	if i == nil {
		t.Fatalf("terraform: no %s block", name)
	}
	depth := 0
	for j := i[1] - 1; j < len(src); j++ {
		switch src[j] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return src[i[1]:j]
			}
		}
	}
	t.Fatalf("terraform: %s block not closed", name)
	return ""
}

// Terraform deploys what the code has: every entry point, and only
// environment variables config knows, including every required one.
func TestTerraformMatchesCode(t *testing.T) {
	var src strings.Builder
	files, _ := filepath.Glob(filepath.Join("..", "terraform", "*.tf"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src.Write(b)
	}
	key := regexp.MustCompile(`(?m)^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=`)
	keys := func(body string) []string {
		var out []string
		depth := 0
		for _, line := range strings.Split(body, "\n") {
			if depth == 0 {
				if m := key.FindStringSubmatch(line); m != nil {
					out = append(out, m[1])
				}
			}
			depth += strings.Count(line, "{") - strings.Count(line, "}")
		}
		sort.Strings(out)
		return out
	}

	fns := keys(block(t, src.String(), "functions"))
	want := []string{FnAPI, FnCompress, FnDeadLetter, FnDeliver}
	sort.Strings(want)
	if strings.Join(fns, ",") != strings.Join(want, ",") {
		t.Errorf("terraform deploys functions %v, the code registers %v", fns, want)
	}

	known := map[string]config.Variable{}
	for _, v := range config.Variables {
		known[v.Name] = v
	}
	set := map[string]bool{}
	for _, name := range keys(block(t, src.String(), "env")) {
		set[name] = true
		if _, ok := known[name]; !ok {
			t.Errorf("terraform sets %s, which config does not read", name)
		}
	}
	for _, v := range config.Variables {
		if strings.Contains(v.Doc, "(required)") && !set[v.Name] {
			t.Errorf("terraform does not set the required %s", v.Name)
		}
	}
}
