// Command demo runs imgpipe's main job once on the local emulators, the way
// a user would: it serves testdata/images on 127.0.0.1:8090, starts the
// function host and wires it, uploads testdata/sample.csv to /api/upload,
// then does what a user does, with the imgpipe command (functions/cli):
// uploads testdata/sample.csv and watches it finish, prints the report and
// downloads the outputs. `make demo` starts the emulators around it.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/imgpipe/imgpipe/functions/cli"
	"github.com/imgpipe/imgpipe/functions/localstack"
	"github.com/imgpipe/imgpipe/shared/config"
)

func main() {
	hostAddr := flag.String("addr", "127.0.0.1:28080", "function host address")
	imagesAddr := flag.String("images", "127.0.0.1:8090", "address serving testdata/images (the URLs in the CSV)")
	csvPath := flag.String("csv", "testdata/sample.csv", "CSV to upload")
	flag.Parse()
	if err := run(*hostAddr, *imagesAddr, *csvPath); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(hostAddr, imagesAddr, csvPath string) error {
	ctx := context.Background()
	localstack.LocalDefaults("http://" + hostAddr)
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", imagesAddr)
	if err != nil {
		return fmt.Errorf("serving test images: %w", err)
	}
	go http.Serve(l, http.FileServer(http.Dir("testdata/images")))
	base, err := localstack.StartHost(ctx, hostAddr)
	if err != nil {
		return err
	}
	if err := localstack.Wire(ctx, localstack.ProductionWiring(cfg, base)); err != nil {
		return err
	}
	key, err := localstack.DevKey(ctx, cfg.Project, "make demo")
	if err != nil {
		return err
	}
	fmt.Printf("== API key for this demo: %s\n", key)
	csvBytes, err := os.ReadFile(csvPath)
	if err != nil {
		return err
	}
	fmt.Printf("== %s\n%s\n", csvPath, csvBytes)
	// The rest is what a user types, through the imgpipe command.
	env := cli.OSEnv()
	env.Getenv = func(k string) string {
		return map[string]string{"IMGPIPE_URL": base, "IMGPIPE_API_KEY": key}[k]
	}
	env.Poll = 250 * time.Millisecond
	var out bytes.Buffer
	env.Stdout = io.MultiWriter(os.Stdout, &out)
	fmt.Printf("== imgpipe upload %s --wait\n", csvPath)
	if code := cli.Run(ctx, []string{"upload", csvPath, "--wait"}, env); code != cli.ExitOK && code != cli.ExitFailed {
		return fmt.Errorf("imgpipe upload exited %d", code)
	}
	m := regexp.MustCompile(`request (\S+) accepted`).FindStringSubmatch(out.String())
	if m == nil {
		return fmt.Errorf("imgpipe upload named no request")
	}
	id := m[1]
	env.Stdout = os.Stdout
	fmt.Printf("\n== imgpipe report %s\n", id)
	if code := cli.Run(ctx, []string{"report", id}, env); code != cli.ExitOK {
		return fmt.Errorf("imgpipe report exited %d", code)
	}
	// The emulators stop with the demo: keep copies of the outputs.
	dir := filepath.Join(".stack", "demo", "outputs", id)
	fmt.Printf("\n== imgpipe download %s -d %s  (objects requests/%s/P-U.jpg in bucket %s)\n", id, dir, id, cfg.Bucket)
	if code := cli.Run(ctx, []string{"download", id, "-d", dir}, env); code != cli.ExitOK && code != cli.ExitFailed {
		return fmt.Errorf("imgpipe download exited %d", code)
	}
	return nil
}
