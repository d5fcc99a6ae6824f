package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The archive, unpacked alone, builds and vets the way the buildpack builds
// it: root module only, no emulators/, go.sum as it is (-mod=readonly).
func TestArchiveBuildsAlone(t *testing.T) {
	a, err := BuildArchive("../..")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("source archive: %d files, %d bytes, sha256 %s", len(a.Files), len(a.Zip), a.SHA256[:16])
	has := map[string]bool{}
	for _, f := range a.Files {
		has[f] = true
		switch {
		case strings.HasSuffix(f, "_test.go"), strings.HasPrefix(f, "emulators/"), strings.HasPrefix(f, "testdata/"),
			strings.HasPrefix(f, "functions/cmd/"), strings.HasPrefix(f, "terraform/"):
			t.Errorf("the archive holds %s, which the deployed functions do not need", f)
		}
	}
	for _, f := range []string{"go.mod", "go.sum", "function.go", "functions/functions.go"} {
		if !has[f] {
			t.Errorf("the archive lacks %s", f)
		}
	}
	again, err := BuildArchive("../..")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Zip, again.Zip) {
		t.Error("two archives of the same source differ: a redeploy would rebuild for nothing")
	}

	dir := t.TempDir()
	if err := Unpack(a.Zip, dir); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"build", "./..."}, {"vet", "./..."}, {"build", "-o", os.DevNull, "."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GOWORK=off", "GOPROXY=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("go %s in the unpacked archive: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// Imports run one way: nothing under shared/ depends on the edge.
func TestSharedDoesNotImportFunctions(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./shared/...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, Module+"/functions") {
			t.Errorf("a package under shared/ depends on %s", p)
		}
	}
}
