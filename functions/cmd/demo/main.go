// Command demo runs imgpipe's main job once on the local emulators, the way
// a user would: it serves testdata/images on 127.0.0.1:8090, starts the
// function host and wires it, uploads testdata/sample.csv to /api/upload,
// waits for the request to finish, and prints the status, the report and
// where the outputs are. `make demo` starts the emulators around it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

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
	http.DefaultTransport = withKey{key: key, next: http.DefaultTransport}
	csvBytes, err := os.ReadFile(csvPath)
	if err != nil {
		return err
	}
	fmt.Printf("== uploading %s to %s/api/upload\n%s\n", csvPath, base, csvBytes)

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("csv", "sample.csv")
	fw.Write(csvBytes)
	mw.Close()
	start := time.Now()
	resp, err := http.Post(base+"/api/upload", mw.FormDataContentType(), &body)
	if err != nil {
		return err
	}
	up, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("== %s\n%s\n", resp.Status, up)
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("upload refused")
	}
	var accepted struct {
		RequestID string `json:"requestId"`
		StatusURL string `json:"statusUrl"`
		ReportURL string `json:"reportUrl"`
	}
	if err := json.Unmarshal(up, &accepted); err != nil {
		return err
	}

	var status []byte
	for {
		resp, err := http.Get(accepted.StatusURL)
		if err != nil {
			return err
		}
		status, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		var s struct{ Status string }
		_ = json.Unmarshal(status, &s)
		if s.Status == "COMPLETED" || s.Status == "FAILED" {
			break
		}
		if time.Since(start) > 2*time.Minute {
			return fmt.Errorf("request still %s after 2 minutes", s.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Printf("== finished in %.1fs: GET %s\n%s\n", time.Since(start).Seconds(), accepted.StatusURL, status)

	resp, err = http.Get(accepted.ReportURL)
	if err != nil {
		return err
	}
	report, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("== GET %s\n%s\n", accepted.ReportURL, report)
	// The emulators stop with the demo: keep copies of the outputs.
	var st struct {
		Products []struct {
			SerialNumber    string   `json:"serialNumber"`
			InputImageURLs  []string `json:"inputImageUrls"`
			OutputImageURLs []string `json:"outputImageUrls"`
		} `json:"products"`
	}
	if err := json.Unmarshal(status, &st); err != nil {
		return err
	}
	dir := filepath.Join(".stack", "demo", "outputs", accepted.RequestID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	fmt.Printf("== outputs (objects requests/%s/P-U.jpg in bucket %s; copies in %s):\n", accepted.RequestID, cfg.Bucket, dir)
	for pi, p := range st.Products {
		for ui, u := range p.OutputImageURLs {
			if u == "" {
				fmt.Printf("   %-4s %-48s failed (see errors above)\n", p.SerialNumber, p.InputImageURLs[ui])
				continue
			}
			resp, err := http.Get(u)
			if err != nil {
				return err
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			in, _ := os.Stat(filepath.Join("testdata", "images", filepath.Base(p.InputImageURLs[ui])))
			path := filepath.Join(dir, fmt.Sprintf("%d-%d.jpg", pi, ui))
			if err := os.WriteFile(path, b, 0o644); err != nil {
				return err
			}
			inSize := int64(0)
			if in != nil {
				inSize = in.Size()
			}
			fmt.Printf("   %-4s %-48s %7d → %6d bytes  %s\n", p.SerialNumber, p.InputImageURLs[ui], inSize, len(b), path)
		}
	}
	return nil
}

// withKey sends the API key with every call to the API.
type withKey struct {
	key  string
	next http.RoundTripper
}

func (t withKey) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		r = r.Clone(r.Context())
		r.Header.Set("X-API-Key", t.key)
	}
	return t.next.RoundTrip(r)
}
