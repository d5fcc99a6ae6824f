package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/wire"
)

// uploadOptions are upload's flags; the sizing ones as given.
type uploadOptions struct {
	quality                    int
	hook                       string
	maxWidth, maxHeight, sizes string
	wait                       bool
}

// uploadFlags adds upload's flags to fs.
func uploadFlags(fs *flag.FlagSet) *uploadOptions {
	o := &uploadOptions{}
	fs.IntVar(&o.quality, "quality", 0, "JPEG quality of the outputs, 1-100 (the server's default: 50)")
	fs.StringVar(&o.hook, "webhook", "", "URL to notify when the request finishes")
	fs.BoolVar(&o.wait, "wait", false, "show progress until the request finishes")
	fs.StringVar(&o.maxWidth, "max-width", "", "fit the main outputs inside this width, in pixels (never enlarged)")
	fs.StringVar(&o.maxHeight, "max-height", "", "fit the main outputs inside this height, in pixels")
	fs.StringVar(&o.sizes, "sizes", "", "up to 5 extra outputs per image: name:WIDTH, name:WIDTHxHEIGHT or name:xHEIGHT, comma-separated")
	return o
}

// option is one upload option as the API names it, and its value.
type option struct {
	name  string
	value any // an int, a string, or the sizes
}

// options are the options the flags set, checked; an option left at the
// server's default is not sent.
func (o uploadOptions) options() ([]option, error) {
	if o.quality != 0 && (o.quality < 1 || o.quality > 100) {
		return nil, fmt.Errorf("--quality %d: want 1 to 100", o.quality)
	}
	sizing, probs := batch.ParseSizing(o.maxWidth, o.maxHeight, o.sizes)
	if len(probs) > 0 {
		return nil, fmt.Errorf("the sizing flags: %s (--max-width, --max-height, --sizes)", strings.Join(probs, "; "))
	}
	var opts []option
	add := func(set bool, name string, value any) {
		if set {
			opts = append(opts, option{name, value})
		}
	}
	add(o.quality != 0, batch.OptQuality, o.quality)
	add(o.hook != "", batch.OptWebhookURL, o.hook)
	add(sizing.MaxWidth > 0, batch.OptMaxWidth, sizing.MaxWidth)
	add(sizing.MaxHeight > 0, batch.OptMaxHeight, sizing.MaxHeight)
	add(len(sizing.Sizes) > 0, batch.OptSizes, sizing.Sizes)
	return opts, nil
}

// formValue is an option's value as a form field: a string as it is,
// anything else as JSON.
func formValue(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// uploadBody is the upload of the catalogue file name holding data, with
// opts, and its content type: a JSON catalogue as one document (the
// options join its members), anything else as a form with the file in
// field "csv" and each option a field.
func uploadBody(name string, data []byte, opts []option) (*bytes.Buffer, string, error) {
	var body bytes.Buffer
	if strings.EqualFold(filepath.Ext(name), ".json") || bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		var doc map[string]any
		if err := json.Unmarshal(data, &doc); err != nil {
			return nil, "", fmt.Errorf("%s is not valid JSON (%v): fix it, or give a CSV", name, err)
		}
		for _, o := range opts {
			doc[o.name] = o.value
		}
		_ = json.NewEncoder(&body).Encode(doc)
		return &body, "application/json", nil
	}
	mw := multipart.NewWriter(&body)
	for _, o := range opts {
		_ = mw.WriteField(o.name, formValue(o.value))
	}
	fw, _ := mw.CreateFormFile("csv", filepath.Base(name))
	_, _ = fw.Write(data)
	_ = mw.Close()
	return &body, mw.FormDataContentType(), nil
}

// upload sends the catalogue in args and prints the request it became;
// with --wait, it shows progress until the request finishes and exits as
// the request ended.
func (c *command) upload(ctx context.Context, args []string, o uploadOptions) (int, error) {
	if len(args) != 1 {
		return ExitError, errors.New("upload takes one file: imgpipe upload products.csv [--wait]")
	}
	if err := c.needServer(); err != nil {
		return ExitError, err
	}
	opts, err := o.options()
	if err != nil {
		return ExitError, err
	}
	data, err := os.ReadFile(args[0])
	if err != nil {
		return ExitError, fmt.Errorf("reading %s: %w", args[0], err)
	}
	body, contentType, err := uploadBody(args[0], data, opts)
	if err != nil {
		return ExitError, err
	}
	u, err := c.send(ctx, body, contentType)
	if err != nil {
		return ExitError, err
	}
	if !o.wait {
		c.accepted(u)
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

// send posts an upload and returns the API's answer.
func (c *command) send(ctx context.Context, body *bytes.Buffer, contentType string) (wire.Upload, error) {
	var u wire.Upload
	resp, err := c.call(ctx, http.MethodPost, "/api/upload", contentType, body)
	if err != nil {
		return u, err
	}
	err = json.NewDecoder(resp.Body).Decode(&u)
	resp.Body.Close()
	if err == nil && u.RequestID == "" {
		err = errors.New("no requestId")
	}
	if err != nil {
		return u, errNotTheAPI("the upload", err)
	}
	return u, nil
}

// accepted prints the upload's answer, and how to follow the request.
func (c *command) accepted(u wire.Upload) {
	if c.json {
		_ = json.NewEncoder(c.env.Stdout).Encode(u)
		return
	}
	c.out("request %s accepted: %d images\n  status: imgpipe status %s\n", u.RequestID, u.TotalImages, u.RequestID)
	if u.ViewURL != "" {
		c.out("  view:   %s\n", u.ViewURL)
	}
}

// watch polls the status until the request finishes, showing progress: a
// live bar on a terminal, a plain line every few seconds otherwise.
func (c *command) watch(ctx context.Context, id string, total int) (wire.Status, error) {
	p := c.newProgress(total)
	for {
		var s wire.Status
		if err := c.getJSON(ctx, countsPath(id), &s); err != nil {
			return s, err
		}
		p.show(s)
		if finished(s) {
			p.finish()
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
	err := c.eachPage(ctx, id, func(s wire.Status) error {
		for _, p := range s.Products {
			for _, e := range p.Errors {
				out[e.Reason]++
			}
		}
		return nil
	})
	return out, err
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
	code := failedCode(s.FailedImages)
	if c.json {
		_ = json.NewEncoder(c.env.Stdout).Encode(map[string]any{
			"requestId": s.RequestID, "status": s.Status, "totalImages": s.TotalImages, "processedImages": s.ProcessedImages,
			"failedImages": s.FailedImages, "inputBytes": s.InputBytes, "outputBytes": s.OutputBytes, "savedBytes": s.SavedBytes,
			"savedPercent": s.SavedPercent, "failuresByReason": reasons, "reportUrl": u.ReportURL, "viewUrl": u.ViewURL,
		})
		return code, nil
	}
	c.out("%s: %d of %d images compressed, %d failed\n", s.Status, s.ProcessedImages, s.TotalImages, s.FailedImages)
	c.out("bytes: %s → %s, saved %s (%.1f %%)\n", wire.FormatBytes(s.InputBytes), wire.FormatBytes(s.OutputBytes), wire.FormatBytes(s.SavedBytes), s.SavedPercent)
	c.sizes(s)
	c.reasons(reasons)
	c.out("report: imgpipe report %s -o report.csv  (%s)\n", s.RequestID, u.ReportURL)
	if u.ViewURL != "" {
		c.out("view:   %s\n", u.ViewURL)
	}
	return code, nil
}

// reasons prints the failure counts, the most frequent reason first.
func (c *command) reasons(reasons map[string]int) {
	if len(reasons) == 0 {
		return
	}
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
