// Command imgpipe-source writes the function source archive that Terraform
// uploads: the files the Go buildpack needs, zipped reproducibly and named
// by their hash. It prints the archive's path, size and file count.
//
//	imgpipe-source -root . -o .bin/source
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/imgpipe/imgpipe/functions/deploy"
)

func main() {
	root := flag.String("root", ".", "root of the module (where go.mod is)")
	outDir := flag.String("o", ".bin/source", "folder to write the archive to")
	flag.Parse()
	a, err := deploy.BuildArchive(*root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "imgpipe-source:", err)
		os.Exit(1)
	}
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "imgpipe-source:", err)
		os.Exit(1)
	}
	path := filepath.Join(*outDir, a.Name())
	if err := os.WriteFile(path, a.Zip, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "imgpipe-source:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "imgpipe-source: %d files, %d bytes\n", len(a.Files), len(a.Zip))
	fmt.Println(path)
}
