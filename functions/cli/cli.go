// Package cli is the imgpipe command a user runs (functions/cmd/imgpipe):
// upload a catalogue and watch it finish, read a request's status and
// report, download its outputs, check a captured webhook delivery. It
// talks to the HTTP API only, as any client would.
//
// Exit codes: 0 when every image is done, 2 when the request finished with
// failed images, 1 on any error; every error says what to do next.
package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/webhook"
	"github.com/imgpipe/imgpipe/shared/wire"
)

// Exit codes.
const (
	ExitOK     = 0 // every image done
	ExitError  = 1 // the command failed
	ExitFailed = 2 // the request finished with failed images
)

// Env is what a run reads besides its arguments.
type Env struct {
	Getenv func(string) string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Terminal says whether Stdout is a terminal (a live bar) or not
	// (plain progress lines).
	Terminal bool
	// Poll is the status polling interval of --wait (default 1 s).
	Poll time.Duration
	// Client is the HTTP client (default: 30 s timeout).
	Client *http.Client
}

// OSEnv is the process's environment.
func OSEnv() Env {
	return Env{Getenv: os.Getenv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Terminal: term.IsTerminal(int(os.Stdout.Fd()))}
}

const usage = `imgpipe: compress a catalogue's images with an imgpipe deployment.

  imgpipe upload FILE.csv|FILE.json [--quality N] [--webhook URL] [--wait]
                 [--max-width W] [--max-height H] [--sizes thumb:200,medium:800x800]
  imgpipe status ID
  imgpipe report ID [-o FILE.csv]
  imgpipe download ID -d DIR
  imgpipe verify-webhook [--secret whsec_...] < delivery.http

Every command takes --url (or IMGPIPE_URL), --key (or IMGPIPE_API_KEY) and
--json (machine-readable output). The key goes over https://, or over plain
http:// to this machine only; --insecure-http allows http:// to another host.
verify-webhook reads the secret from --secret or IMGPIPE_WEBHOOK_SECRET.
Exit codes: 0 every image done, 2 the request finished with failed images,
1 an error.
`

// Run runs the command in args (without the program name) and returns its
// exit code.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Poll == 0 {
		env.Poll = time.Second
	}
	if env.Client == nil {
		env.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(env.Stderr, usage)
		if len(args) == 0 {
			return ExitError
		}
		return ExitOK
	}
	// Secrets are never flag defaults: the flag package prints defaults in
	// every usage text. The environment is read after parsing instead.
	c := &command{env: env}
	fs := flag.NewFlagSet("imgpipe "+args[0], flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.StringVar(&c.base, "url", "", "API base URL (default: the IMGPIPE_URL variable)")
	fs.StringVar(&c.key, "key", "", "API key (default: the IMGPIPE_API_KEY variable, which keeps it out of the process list)")
	fs.BoolVar(&c.insecureHTTP, "insecure-http", false, "allow sending the API key over plain http:// to a host other than this machine")
	fs.BoolVar(&c.json, "json", false, "machine-readable output")
	var run func(args []string) (int, error)
	switch args[0] {
	case "upload":
		quality := fs.Int("quality", 0, "JPEG quality of the outputs, 1-100 (the server's default: 50)")
		hook := fs.String("webhook", "", "URL to notify when the request finishes")
		wait := fs.Bool("wait", false, "show progress until the request finishes")
		var o uploadOptions
		fs.StringVar(&o.maxWidth, "max-width", "", "fit the main outputs inside this width, in pixels (never enlarged)")
		fs.StringVar(&o.maxHeight, "max-height", "", "fit the main outputs inside this height, in pixels")
		fs.StringVar(&o.sizes, "sizes", "", "up to 5 extra outputs per image: name:WIDTH, name:WIDTHxHEIGHT or name:xHEIGHT, comma-separated")
		run = func(a []string) (int, error) {
			o.quality, o.hook = *quality, *hook
			return c.upload(ctx, a, o, *wait)
		}
	case "status":
		run = func(a []string) (int, error) { return c.status(ctx, a) }
	case "report":
		out := fs.String("o", "", "write the report to this file (default: standard output)")
		run = func(a []string) (int, error) { return c.report(ctx, a, *out) }
	case "download":
		dir := fs.String("d", "", "folder for the outputs (created if missing)")
		run = func(a []string) (int, error) { return c.download(ctx, a, *dir) }
	case "verify-webhook":
		fs.StringVar(&c.secret, "secret", "", "the webhook signing secret, whsec_... (default: the IMGPIPE_WEBHOOK_SECRET variable)")
		run = func(a []string) (int, error) { return c.verifyWebhook(a, c.secret) }
	default:
		fmt.Fprintf(env.Stderr, "imgpipe: unknown command %q\n\n%s", args[0], usage)
		return ExitError
	}
	// Flags may come before or after the positional arguments.
	var positional []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			return ExitError
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for name, v := range map[string]*string{"url": &c.base, "key": &c.key, "secret": &c.secret} {
		if !given[name] {
			*v = env.Getenv(flagVariables[name])
		}
	}
	code, err := run(positional)
	if err != nil {
		msg := c.redact(err.Error())
		if c.json {
			_ = json.NewEncoder(env.Stdout).Encode(map[string]string{"error": msg})
		}
		fmt.Fprintln(env.Stderr, "imgpipe:", msg)
		return ExitError
	}
	return code
}

// flagVariables are the environment variables that stand in for a flag
// the user did not give.
var flagVariables = map[string]string{"url": "IMGPIPE_URL", "key": "IMGPIPE_API_KEY", "secret": "IMGPIPE_WEBHOOK_SECRET"}

type command struct {
	env          Env
	base         string
	key          string
	secret       string // verify-webhook's
	insecureHTTP bool
	json         bool
}

// redact blanks the API key and the webhook secret out of msg: an error
// may quote what a server answered, and a server (or whatever --url points
// at) may echo the request's Authorization header.
func (c *command) redact(msg string) string {
	for _, secret := range []string{c.key, c.secret} {
		if len(secret) >= minRedacted {
			msg = strings.ReplaceAll(msg, secret, "[redacted]")
		}
	}
	return msg
}

// minRedacted is the shortest secret redact blanks out; a shorter one is
// no real key, and blanking it would garble the message.
const minRedacted = 8

func (c *command) out(format string, a ...any) { fmt.Fprintf(c.env.Stdout, format, a...) }

// needServer checks --url and --key.
func (c *command) needServer() error {
	if c.base == "" {
		return errors.New("no server: set IMGPIPE_URL or --url to the API's base URL (make dev prints it; terraform output api_url)")
	}
	u, err := url.Parse(c.base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url %q is not an http(s) URL such as https://REGION-PROJECT.cloudfunctions.net/imgpipe-api", c.base)
	}
	if err := c.keyMayGoTo(u); err != nil {
		return err
	}
	if c.key == "" {
		return errors.New("no API key: set IMGPIPE_API_KEY or --key (an operator creates keys with imgpipe-keys create)")
	}
	c.base = strings.TrimRight(c.base, "/")
	return nil
}

// errPlainHTTP refuses to send the API key in clear text across a network.
var errPlainHTTP = errors.New("the API key would travel unencrypted")

// keyMayGoTo says whether the API key may be sent to u: always over
// https://, over http:// only to this machine (localhost, 127.0.0.0/8,
// ::1) unless the user passed --insecure-http.
func (c *command) keyMayGoTo(u *url.URL) error {
	if u.Scheme != "http" || c.insecureHTTP || isLoopback(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("%w: %s is plain http:// to another machine, where anyone on the path can read the key; use https://, or pass --insecure-http if that network is yours", errPlainHTTP, u.Redacted())
}

// isLoopback says whether host (a URL's host name, without port) is this
// machine: localhost or a loopback address.
func isLoopback(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// apiClient is the HTTP client for calls that carry the API key: it
// follows a redirect only where the key may go (an https:// API that
// redirects to http:// on the same host would otherwise resend the key in
// clear text).
func (c *command) apiClient() *http.Client {
	cl := *c.env.Client
	next := cl.CheckRedirect
	cl.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := c.keyMayGoTo(req.URL); err != nil {
			return fmt.Errorf("the server redirected to %s: %w", req.URL.Redacted(), err)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &cl
}

// call sends a request to the API and returns the response, or an error
// that says what to do next.
func (c *command) call(ctx context.Context, method, path, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("User-Agent", "imgpipe-cli/1")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.apiClient().Do(req)
	if err != nil {
		if errors.Is(err, errPlainHTTP) {
			return nil, unwrapURLError(err)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("%s did not answer in time: try again, or check the server's logs", c.base)
		}
		return nil, fmt.Errorf("cannot reach %s (%v): is the server running, and is IMGPIPE_URL (or --url) right?", c.base, unwrapURLError(err))
	}
	if resp.StatusCode < 400 {
		return resp, nil
	}
	defer resp.Body.Close()
	var e wire.ErrorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = json.Unmarshal(b, &e)
	msg := e.Error.Message
	if msg == "" {
		msg = strings.TrimSpace(string(b))
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return nil, fmt.Errorf("the server refused the API key (401 %s): check IMGPIPE_API_KEY or --key", msg)
	case http.StatusNotFound:
		return nil, fmt.Errorf("not found (404): %s; check the request ID (it belongs to the key that uploaded it)", msg)
	case http.StatusTooManyRequests:
		return nil, fmt.Errorf("too many requests (429): %s; retry in %s s", msg, or(resp.Header.Get("Retry-After"), "a few"))
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		var sb strings.Builder
		fmt.Fprintf(&sb, "the server refused the upload (%d): %s", resp.StatusCode, msg)
		for _, d := range e.Error.Details {
			sb.WriteString("\n  " + d)
		}
		sb.WriteString("\nfix the file and upload it again")
		return nil, errors.New(sb.String())
	default:
		id := ""
		if e.RequestID != "" {
			id = " (request " + e.RequestID + ")"
		}
		return nil, fmt.Errorf("the server failed (%d): %s%s; try again in a minute", resp.StatusCode, msg, id)
	}
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// getJSON reads a JSON answer into v.
func (c *command) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.call(ctx, http.MethodGet, path, "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("the server's answer to %s is not what imgpipe expects (%v): is --url the imgpipe API?", path, err)
	}
	return nil
}

// uploadOptions are upload's flags; the sizing ones as given.
type uploadOptions struct {
	quality                    int
	hook                       string
	maxWidth, maxHeight, sizes string
}

func (c *command) upload(ctx context.Context, args []string, o uploadOptions, wait bool) (int, error) {
	if len(args) != 1 {
		return ExitError, errors.New("upload takes one file: imgpipe upload products.csv [--wait]")
	}
	if err := c.needServer(); err != nil {
		return ExitError, err
	}
	quality, hook := o.quality, o.hook
	if quality != 0 && (quality < 1 || quality > 100) {
		return ExitError, fmt.Errorf("--quality %d: want 1 to 100", quality)
	}
	sizing, probs := batch.ParseSizing(o.maxWidth, o.maxHeight, o.sizes)
	if len(probs) > 0 {
		return ExitError, fmt.Errorf("the sizing flags: %s (--max-width, --max-height, --sizes)", strings.Join(probs, "; "))
	}
	data, err := os.ReadFile(args[0])
	if err != nil {
		return ExitError, fmt.Errorf("reading %s: %w", args[0], err)
	}
	var body bytes.Buffer
	contentType := ""
	if strings.EqualFold(filepath.Ext(args[0]), ".json") || bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		// Options join the JSON document.
		var doc map[string]any
		if err := json.Unmarshal(data, &doc); err != nil {
			return ExitError, fmt.Errorf("%s is not valid JSON (%v): fix it, or give a CSV", args[0], err)
		}
		if quality != 0 {
			doc["quality"] = quality
		}
		if hook != "" {
			doc["webhookUrl"] = hook
		}
		if sizing.MaxWidth > 0 {
			doc["maxWidth"] = sizing.MaxWidth
		}
		if sizing.MaxHeight > 0 {
			doc["maxHeight"] = sizing.MaxHeight
		}
		if len(sizing.Sizes) > 0 {
			doc["sizes"] = sizing.Sizes
		}
		_ = json.NewEncoder(&body).Encode(doc)
		contentType = "application/json"
	} else {
		mw := multipart.NewWriter(&body)
		if quality != 0 {
			_ = mw.WriteField("quality", fmt.Sprint(quality))
		}
		if hook != "" {
			_ = mw.WriteField("webhookUrl", hook)
		}
		if sizing.MaxWidth > 0 {
			_ = mw.WriteField("maxWidth", fmt.Sprint(sizing.MaxWidth))
		}
		if sizing.MaxHeight > 0 {
			_ = mw.WriteField("maxHeight", fmt.Sprint(sizing.MaxHeight))
		}
		if len(sizing.Sizes) > 0 {
			sizes, _ := json.Marshal(sizing.Sizes)
			_ = mw.WriteField("sizes", string(sizes))
		}
		fw, _ := mw.CreateFormFile("csv", filepath.Base(args[0]))
		_, _ = fw.Write(data)
		_ = mw.Close()
		contentType = mw.FormDataContentType()
	}
	resp, err := c.call(ctx, http.MethodPost, "/api/upload", contentType, &body)
	if err != nil {
		return ExitError, err
	}
	var u wire.Upload
	err = json.NewDecoder(resp.Body).Decode(&u)
	resp.Body.Close()
	if err != nil || u.RequestID == "" {
		return ExitError, fmt.Errorf("the server's answer to the upload is not what imgpipe expects (%v): is --url the imgpipe API?", err)
	}
	if !wait {
		if c.json {
			_ = json.NewEncoder(c.env.Stdout).Encode(u)
		} else {
			c.out("request %s accepted: %d images\n  status: imgpipe status %s\n", u.RequestID, u.TotalImages, u.RequestID)
			if u.ViewURL != "" {
				c.out("  view:   %s\n", u.ViewURL)
			}
		}
		return ExitOK, nil
	}
	if !c.json {
		c.out("request %s accepted: %d images\n", u.RequestID, u.TotalImages)
		if u.ViewURL != "" {
			c.out("view it in a browser: %s\n", u.ViewURL)
		}
	}
	s, err := c.watch(ctx, u.RequestID, u.TotalImages)
	if err != nil {
		return ExitError, err
	}
	return c.summary(ctx, s, u)
}

func finished(s wire.Status) bool { return s.Status == batch.Completed || s.Status == batch.Failed }

// watch polls the status until the request finishes, showing progress: a
// live bar on a terminal, a plain line every few seconds otherwise.
func (c *command) watch(ctx context.Context, id string, total int) (wire.Status, error) {
	var bar *progressbar.ProgressBar
	if c.env.Terminal && !c.json {
		bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(c.env.Stdout), progressbar.OptionSetDescription("compressing"),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("images"),
			progressbar.OptionSetPredictTime(true), progressbar.OptionFullWidth(), progressbar.OptionThrottle(100*time.Millisecond))
	}
	start, lastLine := time.Now(), time.Time{}
	for {
		var s wire.Status
		if err := c.getJSON(ctx, "/api/status/"+url.PathEscape(id)+"?limit=1", &s); err != nil {
			return s, err
		}
		done := s.ProcessedImages + s.FailedImages
		switch {
		case bar != nil:
			_ = bar.Set(done)
			if s.FailedImages > 0 {
				bar.Describe(fmt.Sprintf("compressing (%d failed)", s.FailedImages))
			}
		case !c.json && (time.Since(lastLine) >= 2*time.Second || finished(s)):
			lastLine = time.Now()
			rate := float64(done) / time.Since(start).Seconds()
			eta := "–"
			if rate > 0 && !finished(s) {
				eta = (time.Duration(float64(s.TotalImages-done)/rate) * time.Second).Round(time.Second).String()
			}
			c.out("progress: %d/%d (%d processed, %d failed), %.1f images/s, ETA %s\n",
				done, s.TotalImages, s.ProcessedImages, s.FailedImages, rate, eta)
		}
		if finished(s) {
			if bar != nil {
				_ = bar.Finish()
				c.out("\n")
			}
			return s, nil
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-time.After(c.env.Poll):
		}
	}
}

// failures counts the request's failed images by reason, reading every
// page of its products.
func (c *command) failures(ctx context.Context, id string) (map[string]int, error) {
	out := map[string]int{}
	offset := 0
	for {
		var s wire.Status
		if err := c.getJSON(ctx, fmt.Sprintf("/api/status/%s?offset=%d", url.PathEscape(id), offset), &s); err != nil {
			return nil, err
		}
		for _, p := range s.Products {
			for _, e := range p.Errors {
				out[e.Reason]++
			}
		}
		if s.Page.NextOffset == nil {
			return out, nil
		}
		if *s.Page.NextOffset <= offset {
			return nil, pagesDoNotAdvance(offset, *s.Page.NextOffset)
		}
		offset = *s.Page.NextOffset
	}
}

// pagesDoNotAdvance refuses a status page whose next offset is not past
// its own: reading on would never end.
func pagesDoNotAdvance(offset, next int) error {
	return fmt.Errorf("the server's status pages do not advance (offset %d, then %d): is --url the imgpipe API?", offset, next)
}

// summary prints how the request ended and returns the exit code.
func (c *command) summary(ctx context.Context, s wire.Status, u wire.Upload) (int, error) {
	var reasons map[string]int
	if s.FailedImages > 0 {
		var err error
		if reasons, err = c.failures(ctx, s.RequestID); err != nil {
			return ExitError, err
		}
	}
	code := ExitOK
	if s.FailedImages > 0 {
		code = ExitFailed
	}
	if c.json {
		_ = json.NewEncoder(c.env.Stdout).Encode(map[string]any{
			"requestId": s.RequestID, "status": s.Status, "totalImages": s.TotalImages, "processedImages": s.ProcessedImages,
			"failedImages": s.FailedImages, "inputBytes": s.InputBytes, "outputBytes": s.OutputBytes, "savedBytes": s.SavedBytes,
			"savedPercent": s.SavedPercent, "failuresByReason": reasons, "reportUrl": u.ReportURL, "viewUrl": u.ViewURL,
		})
		return code, nil
	}
	c.out("%s: %d of %d images compressed, %d failed\n", s.Status, s.ProcessedImages, s.TotalImages, s.FailedImages)
	c.out("bytes: %s → %s, saved %s (%.1f %%)\n", humanBytes(s.InputBytes), humanBytes(s.OutputBytes), humanBytes(s.SavedBytes), s.SavedPercent)
	if s.Sizing != nil {
		c.out("sizes: %s\n", s.Sizing.Describe())
	}
	if len(reasons) > 0 {
		keys := make([]string, 0, len(reasons))
		for k := range reasons {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			return reasons[keys[i]] > reasons[keys[j]] || (reasons[keys[i]] == reasons[keys[j]] && keys[i] < keys[j])
		})
		c.out("failed images by reason:\n")
		for _, k := range keys {
			c.out("  %-20s %d\n", k, reasons[k])
		}
	}
	c.out("report: imgpipe report %s -o report.csv  (%s)\n", s.RequestID, u.ReportURL)
	if u.ViewURL != "" {
		c.out("view:   %s\n", u.ViewURL)
	}
	return code, nil
}

func humanBytes(n int64) string {
	switch a := max(n, -n); {
	case a >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case a >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case a >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%d B", n)
	}
}

func (c *command) status(ctx context.Context, args []string) (int, error) {
	if len(args) != 1 {
		return ExitError, errors.New("status takes a request ID: imgpipe status ID")
	}
	if err := c.needServer(); err != nil {
		return ExitError, err
	}
	resp, err := c.call(ctx, http.MethodGet, "/api/status/"+url.PathEscape(args[0])+"?limit=1", "", nil)
	if err != nil {
		return ExitError, err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return ExitError, fmt.Errorf("reading the status: %w", err)
	}
	var s wire.Status
	if err := json.Unmarshal(raw, &s); err != nil {
		return ExitError, fmt.Errorf("the server's answer is not an imgpipe status (%v): is --url the imgpipe API?", err)
	}
	code := ExitOK
	if finished(s) && s.FailedImages > 0 {
		code = ExitFailed
	}
	if c.json {
		_, _ = c.env.Stdout.Write(raw)
		return code, nil
	}
	c.out("%s %s: %d of %d images compressed, %d failed", s.RequestID, s.Status, s.ProcessedImages, s.TotalImages, s.FailedImages)
	if s.InputBytes > 0 {
		c.out("; %s → %s (saved %.1f %%)", humanBytes(s.InputBytes), humanBytes(s.OutputBytes), s.SavedPercent)
	}
	c.out("\n")
	if s.Sizing != nil {
		c.out("sizes: %s\n", s.Sizing.Describe())
	}
	return code, nil
}

func (c *command) report(ctx context.Context, args []string, out string) (int, error) {
	if len(args) != 1 {
		return ExitError, errors.New("report takes a request ID: imgpipe report ID [-o report.csv]")
	}
	if err := c.needServer(); err != nil {
		return ExitError, err
	}
	resp, err := c.call(ctx, http.MethodGet, "/api/report/"+url.PathEscape(args[0]), "", nil)
	if err != nil {
		return ExitError, err
	}
	defer resp.Body.Close()
	w := c.env.Stdout
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return ExitError, fmt.Errorf("creating %s: %w", out, err)
		}
		defer f.Close()
		w = f
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return ExitError, fmt.Errorf("reading the report: %w", err)
	}
	if out != "" && !c.json {
		fmt.Fprintf(c.env.Stderr, "report of %s: %s written to %s\n", args[0], humanBytes(n), out)
	}
	return ExitOK, nil
}

// download saves every output of the request into dir, named
// SERIAL-N.jpg (N counts the product's images from 1), and each extra size
// as SERIAL-N-NAME.jpg, with a bar. Every part of a name that comes from
// the server or the catalogue is made safe by namePart; a name already
// taken in this download gets ~2, ~3… before .jpg (see outputNames).
func (c *command) download(ctx context.Context, args []string, dir string) (int, error) {
	if len(args) != 1 || dir == "" {
		return ExitError, errors.New("download takes a request ID and a folder: imgpipe download ID -d DIR")
	}
	if err := c.needServer(); err != nil {
		return ExitError, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return ExitError, fmt.Errorf("creating %s: %w", dir, err)
	}
	// Files are created through root: no name, and no symbolic link
	// already in dir, leads out of it.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return ExitError, fmt.Errorf("opening %s: %w", dir, err)
	}
	defer root.Close()
	type item struct{ name, url string }
	var items []item
	names := outputNames{}
	failed, offset := 0, 0
	total := 0
	var status batch.Status
	for {
		var s wire.Status
		if err := c.getJSON(ctx, fmt.Sprintf("/api/status/%s?offset=%d", url.PathEscape(args[0]), offset), &s); err != nil {
			return ExitError, err
		}
		status, total = s.Status, s.TotalImages
		for _, p := range s.Products {
			serial := namePart(p.SerialNumber, "product", maxSerialPart)
			for i, o := range p.OutputImageURLs {
				if o == "" {
					failed++
					continue
				}
				name, err := names.take(fmt.Sprintf("%s-%d", serial, i+1))
				if err != nil {
					return ExitError, err
				}
				items = append(items, item{name: name, url: o})
			}
			for _, out := range p.Outputs {
				sizes := make([]string, 0, len(out.Sizes))
				for size := range out.Sizes {
					sizes = append(sizes, size)
				}
				sort.Strings(sizes)
				for _, size := range sizes {
					name, err := names.take(fmt.Sprintf("%s-%d-%s", serial, out.Index+1, namePart(size, "size", maxSizePart)))
					if err != nil {
						return ExitError, err
					}
					items = append(items, item{name: name, url: out.Sizes[size].URL})
				}
			}
		}
		if s.Page.NextOffset == nil {
			break
		}
		if *s.Page.NextOffset <= offset {
			return ExitError, pagesDoNotAdvance(offset, *s.Page.NextOffset)
		}
		offset = *s.Page.NextOffset
	}
	var bar *progressbar.ProgressBar
	if c.env.Terminal && !c.json {
		bar = progressbar.NewOptions(len(items), progressbar.OptionSetWriter(c.env.Stdout), progressbar.OptionSetDescription("downloading"),
			progressbar.OptionShowCount(), progressbar.OptionFullWidth(), progressbar.OptionThrottle(100*time.Millisecond))
	}
	var bytesTotal int64
	for i, it := range items {
		n, err := c.fetchTo(ctx, it.url, root, dir, it.name)
		if err != nil {
			return ExitError, err
		}
		bytesTotal += n
		if bar != nil {
			_ = bar.Add(1)
		} else if !c.json && ((i+1)%50 == 0 || i+1 == len(items)) {
			c.out("downloaded %d/%d\n", i+1, len(items))
		}
	}
	if bar != nil {
		_ = bar.Finish()
		c.out("\n")
	}
	if c.json {
		_ = json.NewEncoder(c.env.Stdout).Encode(map[string]any{"requestId": args[0], "files": len(items), "bytes": bytesTotal, "dir": dir, "missing": failed})
	} else {
		c.out("%d outputs (%s) in %s; %d of %d images have none (failed or not done yet: %s)\n", len(items), humanBytes(bytesTotal), dir, failed, total, status)
	}
	if failed > 0 {
		return ExitFailed, nil
	}
	return ExitOK, nil
}

// fetchTo saves the output at link (a bucket link: no API key) as name
// inside root, the folder dir.
func (c *command) fetchTo(ctx context.Context, link string, root *os.Root, dir, name string) (int64, error) {
	path := filepath.Join(dir, name)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return 0, fmt.Errorf("output link %q: %w", link, err)
	}
	resp, err := c.env.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("downloading %s: %v; check your connection and run download again", link, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("downloading %s: %s (a signed link expires: run download again for fresh ones)", link, resp.Status)
	}
	f, err := root.Create(name)
	if err != nil {
		return 0, fmt.Errorf("creating %s: %w", path, err)
	}
	n, err := io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("writing %s: %w", path, err)
	}
	return n, nil
}

// Bounds of the parts of a downloaded file's name, in bytes: with the
// image number, a ~N suffix and .jpg, a name stays far below the 255 bytes
// file systems allow.
const (
	maxSerialPart = 80
	maxSizePart   = 40
)

// namePart makes s, a serial number or a size name as the server sent it,
// a safe piece of a file name: ASCII letters, digits, '.', '_' and '-'
// are kept, anything else (path separators, NUL and control bytes,
// non-ASCII) becomes '_'; at most max bytes; a leading '.' or '-' becomes
// '_' (no hidden file, no "..", nothing a shell reads as an option); a
// Windows device name (CON, NUL, COM1…) gets a leading '_'; empty becomes
// fallback.
func namePart(s, fallback string, max int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= max {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	part := b.String()
	if part == "" {
		return fallback
	}
	if part[0] == '.' || part[0] == '-' {
		part = "_" + part[1:]
	}
	stem, _, _ := strings.Cut(part, ".")
	if windowsDevice(stem) {
		part = "_" + part
	}
	return part
}

// windowsDevice says whether stem is a name Windows reserves for a device
// in every folder, whatever the extension.
func windowsDevice(stem string) bool {
	switch u := strings.ToUpper(stem); {
	case u == "CON", u == "PRN", u == "AUX", u == "NUL":
		return true
	case len(u) == 4 && (strings.HasPrefix(u, "COM") || strings.HasPrefix(u, "LPT")) && u[3] >= '0' && u[3] <= '9':
		return true
	}
	return false
}

// outputNames hands out the file names of one download: distinct even on
// a file system that ignores case, so two products whose serial numbers
// differ only in what namePart replaced never overwrite each other. It
// counts the times each stem (lower-cased) was asked for.
type outputNames map[string]int

// take returns stem.jpg the first time, then stem~2.jpg, stem~3.jpg…, and
// refuses a name that is not local to the output folder. Stems are made of
// namePart's characters, digits and '-', never '~', so a numbered name
// never equals another stem's.
func (n outputNames) take(stem string) (string, error) {
	key := strings.ToLower(stem)
	n[key]++
	name := stem + ".jpg"
	if k := n[key]; k > 1 {
		name = fmt.Sprintf("%s~%d.jpg", stem, k)
	}
	if !filepath.IsLocal(name) || filepath.Base(name) != name {
		return "", fmt.Errorf("the output name %q would leave the download folder: refused", name)
	}
	return name, nil
}

// verifyWebhook checks a captured delivery: an HTTP request as received
// (request line, headers, body), or a bare body with the webhook-* headers
// given as "Name: value" lines before a blank line.
func (c *command) verifyWebhook(args []string, secret string) (int, error) {
	if len(args) != 0 {
		return ExitError, errors.New("verify-webhook reads the delivery from standard input: imgpipe verify-webhook --secret whsec_... < delivery.http")
	}
	if secret == "" {
		return ExitError, errors.New("no secret: set IMGPIPE_WEBHOOK_SECRET or pass --secret whsec_..., the secret the operator gave you")
	}
	v, err := webhook.NewVerifier(secret)
	if err != nil {
		return ExitError, fmt.Errorf("--secret is not a webhook secret (%v): it looks like whsec_ followed by base64", err)
	}
	raw, err := io.ReadAll(io.LimitReader(c.env.Stdin, 64<<20))
	if err != nil {
		return ExitError, fmt.Errorf("reading the delivery: %w", err)
	}
	h, body, err := parseDelivery(raw)
	if err != nil {
		return ExitError, err
	}
	p, err := v.Verify(body, h)
	if err != nil {
		return ExitError, fmt.Errorf("the delivery does not verify: %v (the wrong secret, a changed body, or a timestamp over 5 minutes old)", err)
	}
	if c.json {
		_ = json.NewEncoder(c.env.Stdout).Encode(map[string]any{"valid": true, "webhookId": h.Get(webhook.HeaderID), "payload": p})
		return ExitOK, nil
	}
	c.out("valid: delivery %s, %s for request %s (%s: %d processed, %d failed)\n",
		h.Get(webhook.HeaderID), p.Event, p.RequestID, p.Status, p.ProcessedImages, p.FailedImages)
	return ExitOK, nil
}

// parseDelivery splits a captured delivery into headers and body.
func parseDelivery(raw []byte) (http.Header, []byte, error) {
	norm := bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
	head, body, ok := bytes.Cut(norm, []byte("\n\n"))
	if !ok {
		return nil, nil, errors.New("the delivery has no blank line between headers and body: capture the whole request")
	}
	h := http.Header{}
	for i, line := range strings.Split(string(head), "\n") {
		if i == 0 && (strings.HasPrefix(line, "POST ") || strings.HasPrefix(line, "PUT ")) {
			continue // the request line
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, nil, fmt.Errorf("header line %d %q has no colon", i+1, line)
		}
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if h.Get(webhook.HeaderSignature) == "" {
		return nil, nil, fmt.Errorf("the delivery has no %s header: capture the headers as well as the body", webhook.HeaderSignature)
	}
	// The body is exactly what was sent: take it from the raw bytes.
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 && bytes.Equal(bytes.ReplaceAll(raw[:i], []byte("\r\n"), []byte("\n")), head) {
		body = raw[i+4:]
	}
	return h, body, nil
}
