// Package deploy builds what Terraform deploys besides its own resources:
// the function source archive. Its tests are the offline deploy check: the
// Terraform files against the provider's schema and against the product's
// code and local wiring, and the archive built the way the buildpack builds it.
package deploy

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Module is the root module's path.
const Module = "github.com/imgpipe/imgpipe"

// Archive is a zipped function source.
type Archive struct {
	Zip    []byte
	Files  []string // paths inside the zip, sorted
	SHA256 string   // hex digest of Zip
}

// Name is the file name the archive is stored under: named by content, so
// a changed source is a new object and the functions rebuild.
func (a Archive) Name() string { return "imgpipe-source-" + a.SHA256[:16] + ".zip" }

// BuildArchive zips what the Cloud Functions Go buildpack needs to build the
// root package of the module at root: go.mod, go.sum, and the non-test Go
// files (and embedded files) of every package of this module the root
// package imports, directly or not. Nothing else goes in: no tests, no
// commands, no emulators, no test data. The zip is byte-for-byte the same
// for the same sources (sorted entries, fixed times), so its hash changes
// only when the source does.
func BuildArchive(root string) (Archive, error) {
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Dir,GoFiles,CgoFiles,EmbedFiles,Module", ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return Archive{}, fmt.Errorf("go list: %w: %s", err, stderr.String())
	}
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return Archive{}, err
	}
	files := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p struct {
			ImportPath, Dir               string
			GoFiles, CgoFiles, EmbedFiles []string
			Module                        *struct{ Path string }
		}
		if err := dec.Decode(&p); err != nil {
			return Archive{}, fmt.Errorf("go list output: %w", err)
		}
		if p.Module == nil || p.Module.Path != Module {
			continue
		}
		rel, err := filepath.Rel(absRoot, p.Dir)
		if err != nil || strings.HasPrefix(rel, "..") {
			return Archive{}, fmt.Errorf("package %s is outside %s", p.ImportPath, root)
		}
		for _, group := range [][]string{p.GoFiles, p.CgoFiles, p.EmbedFiles} {
			for _, f := range group {
				files = append(files, filepath.ToSlash(filepath.Join(rel, f)))
			}
		}
	}
	sort.Strings(files)

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	stamp := time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if err != nil {
			return Archive{}, err
		}
		h := &zip.FileHeader{Name: f, Method: zip.Deflate, Modified: stamp}
		h.SetMode(0o644)
		w, err := zw.CreateHeader(h)
		if err != nil {
			return Archive{}, fmt.Errorf("zip.Writer.CreateHeader: %w", err)
		}
		if _, err := w.Write(data); err != nil {
			return Archive{}, fmt.Errorf("zip: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return Archive{}, fmt.Errorf("zip.Writer.Close: %w", err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return Archive{Zip: buf.Bytes(), Files: files, SHA256: hex.EncodeToString(sum[:])}, nil
}

// Unpack writes the archive's files under dir.
func Unpack(zipped []byte, dir string) error {
	zr, err := zip.NewReader(bytes.NewReader(zipped), int64(len(zipped)))
	if err != nil {
		return fmt.Errorf("zip.NewReader: %w", err)
	}
	for _, f := range zr.File {
		dst := filepath.Join(dir, filepath.FromSlash(f.Name))
		if !strings.HasPrefix(dst, filepath.Clean(dir)+string(filepath.Separator)) {
			return fmt.Errorf("zip entry %q leaves %s", f.Name, dir)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		r, err := f.Open()
		if err != nil {
			return err
		}
		data, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
