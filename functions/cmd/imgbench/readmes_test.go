package main

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// runNarration is what marks a line of documentation as the record of a
// run rather than a description of the system: a date, a run named as
// such, the machine it ran on, an experiment's outcome.
var runNarration = regexp.MustCompile(`(?i)` + strings.Join([]string{
	`\b20\d\d-\d\d-\d\d\b`,                // 2026-12-02
	`\bmeasured (on )?20\d\d`,             // Measured 2026…
	`\bthis run\b`,                        // this run's figures
	`\bthe run before\b`,                  //
	`\brun \d\b`,                          // run 1, run 2
	`\bon this ([\w'’-]+ ){0,2}machine\b`, // on this machine, on this 2-core machine, on this project's build machine
	`\btried and dropped\b`,               //
}, "|"))

// resultsFile is the one Markdown file that holds a run's figures.
const resultsFile = "functions/cmd/imgbench/RESULTS.md"

// narrations lists the lines of the Markdown files under root that
// narrate a run, as "path:line: text". The results file, benchmark and
// stack scratch folders and test data are not documentation.
func narrations(root string) ([]string, error) {
	var found []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			switch d.Name() {
			case ".git", ".bench", ".stack", ".bin", "testdata", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(d.Name(), ".md") || rel == resultsFile {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for n := 1; sc.Scan(); n++ {
			if m := runNarration.FindString(sc.Text()); m != "" {
				found = append(found, fmt.Sprintf("%s:%d: %q in %s", rel, n, m, strings.TrimSpace(sc.Text())))
			}
		}
		return sc.Err()
	})
	return found, err
}

// READMEs describe the system; the figures of a run live in the results
// file make bench writes, which they link to.
func TestREADMEsNarrateNoRun(t *testing.T) {
	found, err := narrations(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		t.Errorf("%s\n\tmove the figures to %s (make bench writes it) and describe what is measured instead", f, resultsFile)
	}
}

// The check finds each kind of narration in a copy of the repository's
// layout, and leaves the results file, the scratch folders and prose
// that only looks close alone.
func TestNarrationsAreFound(t *testing.T) {
	root := t.TempDir()
	write := func(rel, text string) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bad := []string{
		"Measured 2026-12-02 on the build machine:",
		"Measured 2026 on two cores.",
		"the goals with this run's figures",
		"The run before gave 0.85×.",
		"| class | run 1 | run 2 |",
		"Ratios move between runs on this machine by up to 0.4.",
		"on this 2-core machine. One run:",
		"Measured on this project's build machine (2 cores)",
		"| tried and dropped: a pool | 4422 | 4306 | none |",
	}
	write("shared/x/README.md", "# x\n\nWhat it does.\n\n"+strings.Join(bad, "\n")+"\n")
	write(resultsFile, "| date | 2026-12-02 |\nthis run\n")
	write(".bench/table.md", "2026-12-02\n")
	write(".stack/test/notes.md", "this run\n")
	write("testdata/images/LICENSES.md", "run 1\n")
	write("README.md", "Go 1.26 leaves support in February 2027. Each run uses its own names; make test runs 6 fuzz targets.\n")
	found, err := narrations(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != len(bad) {
		t.Errorf("found %d narrations, want %d (one per line of shared/x/README.md after its first three):\n%s", len(found), len(bad), strings.Join(found, "\n"))
	}
	for i, f := range found {
		if want := fmt.Sprintf("shared/x/README.md:%d:", i+5); !strings.HasPrefix(f, want) {
			t.Errorf("narration %d is %s, want it at %s", i, f, want)
		}
	}
}
