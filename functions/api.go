package functions

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/imgpipe/imgpipe/shared/access"
	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/blob"
	"github.com/imgpipe/imgpipe/shared/fault"
	"github.com/imgpipe/imgpipe/shared/pipeline"
	"github.com/imgpipe/imgpipe/shared/wire"
)

// apiMux routes the HTTP API. One function serves it all, so users see one
// base URL and one warm instance answers uploads, status and reports.
var apiMux = func() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("POST /api/upload", upload)
	m.HandleFunc("GET /api/status/{id}", status)
	m.HandleFunc("GET /api/report/{id}", report)
	m.HandleFunc("GET /api/download/{id}", report)
	m.HandleFunc("POST /api/requests/{id}/webhook/redeliver", redeliver)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, fault.New(fault.NotFound, "", "no such endpoint: %s %s (the API: POST /api/upload, GET /api/status/{id}, GET /api/report/{id}, GET /api/download/{id}, POST /api/requests/{id}/webhook/redeliver; the contract: GET /api/openapi.yaml)", r.Method, r.URL.Path))
	})
	return m
}()

// OpenAPI is the API's contract (openapi.yaml), served at
// /api/openapi.yaml without a key.
//
//go:embed openapi.yaml
var OpenAPI []byte

// api authenticates the caller's API key and counts the call against the
// key's rate before routing. The contract needs no key.
func api(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/view/") {
		viewMux.ServeHTTP(w, r) // its signed link is the key
		return
	}
	if r.URL.Path == "/api/openapi.yaml" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		w.Header().Set("Content-Type", "application/yaml")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(OpenAPI)
		return
	}
	d, err := loadDeps()
	if err != nil {
		writeError(w, fault.Wrap(fault.Internal, "", err, "configuration"))
		return
	}
	key, err := d.keys.Authenticate(r.Context(), access.SecretFrom(r), access.ClientAddress(r))
	if err == nil {
		err = d.keys.Allow(r.Context(), key)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	apiMux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyCtx{}, key)))
}

type keyCtx struct{}

// caller is the authenticated key of a request that went through api.
func caller(r *http.Request) access.Key {
	k, _ := r.Context().Value(keyCtx{}).(access.Key)
	return k
}

// callerID is the ID of the authenticated key, the owner every read is
// checked against. A request that reached a handler without one is
// refused: an empty owner would mean "anyone's".
func callerID(r *http.Request) (string, error) {
	if k := caller(r); k.ID != "" {
		return k.ID, nil
	}
	return "", fault.New(fault.Unauthenticated, "", "an API key is required: Authorization: Bearer KEY, or X-API-Key: KEY")
}

func writeError(w http.ResponseWriter, err error) {
	writeErrorFor(w, err, "")
}

func writeErrorFor(w http.ResponseWriter, err error, requestID string) {
	var b wire.ErrorBody
	b.RequestID = requestID
	b.Error.Code = string(fault.KindOf(err))
	var fe *fault.Error
	if errors.As(err, &fe) {
		b.Error.Message, b.Error.Details = fe.Message, fe.Details
	} else {
		b.Error.Message = "internal error"
	}
	st := fault.HTTPStatus(err)
	if fe != nil && fe.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(fe.RetryAfter.Seconds()+0.5)))
	}
	if st == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="imgpipe"`)
	}
	if st >= 500 {
		logger.Error("api error", "status", st, "error", err.Error())
		if st == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "5")
		}
	}
	writeJSON(w, st, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// baseURL is the API's public base: IMGPIPE_PUBLIC_URL, or the request's own.
func baseURL(r *http.Request, configured string) string {
	if configured != "" {
		return strings.TrimSuffix(configured, "/")
	}
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// upload accepts multipart/form-data (file in field "csv", optional fields
// webhookUrl, quality, maxWidth, maxHeight and sizes), a raw text/csv body
// (options as query parameters) or JSON.
func upload(w http.ResponseWriter, r *http.Request) {
	d, err := loadDeps()
	if err != nil {
		writeError(w, fault.Wrap(fault.Internal, "", err, "configuration"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, d.limits.MaxBytes)
	// A key's images in flight, read before anything is stored: a key at
	// its cap is refused before its upload is read.
	key := caller(r)
	inFlight := 0
	if key.MaxInFlight > 0 {
		if inFlight, err = d.store.InFlightImages(r.Context(), key.ID); err != nil {
			writeError(w, err)
			return
		}
	}
	overCap := func(more int) error {
		if key.MaxInFlight == 0 || inFlight+more <= key.MaxInFlight {
			return nil
		}
		return &fault.Error{Kind: fault.RateLimited, RetryAfter: 30 * time.Second, Message: fmt.Sprintf(
			"this API key has %d images in flight; %d more would pass its cap of %d: retry when requests finish", inFlight, more, key.MaxInFlight)}
	}
	if err := overCap(1); err != nil {
		writeError(w, err)
		return
	}
	// The products are stored as the body is read; a refused upload's are
	// deleted again.
	st := d.svc.NewUpload(r.Context())
	sub, err := readSubmission(r, d.limits, st.Add)
	if err == nil {
		err = overCap(st.Images() + sub.TotalImages())
	}
	if err != nil {
		st.Discard(r.Context())
		writeError(w, err)
		return
	}
	base := baseURL(r, d.cfg.PublicURL)
	sub.Trace = traceOf(r, d.cfg.Project)
	req, err := d.svc.Submit(r.Context(), st, sub, key.ID, base)
	if err != nil {
		writeErrorFor(w, err, req.ID)
		return
	}
	writeJSON(w, http.StatusAccepted, wire.Upload{
		RequestID: req.ID, Status: batch.Pending, TotalImages: req.TotalImages,
		StatusURL: base + "/api/status/" + req.ID, ReportURL: base + "/api/report/" + req.ID,
		ViewURL: viewURL(d, base, req.ID, key.ID),
	})
}

// traceOf names the request's Cloud Trace, projects/P/traces/ID, from the
// header the platform sets (X-Cloud-Trace-Context: ID/SPAN;o=1, or W3C
// traceparent: 00-ID-SPAN-FLAGS); "" when there is none.
func traceOf(r *http.Request, project string) string {
	id := ""
	if h := r.Header.Get("X-Cloud-Trace-Context"); h != "" {
		id, _, _ = strings.Cut(h, "/")
	} else if parts := strings.Split(r.Header.Get("traceparent"), "-"); len(parts) == 4 {
		id = parts[1]
	}
	if len(id) != 32 || strings.Trim(strings.ToLower(id), "0123456789abcdef") != "" || strings.Trim(id, "0") == "" {
		return ""
	}
	return "projects/" + project + "/traces/" + strings.ToLower(id)
}

// readSubmission reads an upload's options and products: a CSV's products
// go to add as they are parsed; a JSON body's come back in Products.
func readSubmission(r *http.Request, lim batch.Limits, add func(batch.Product) error) (batch.Submission, error) {
	ct, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil && r.Header.Get("Content-Type") != "" {
		return batch.Submission{}, fault.New(fault.Unsupported, "", "invalid Content-Type %q", r.Header.Get("Content-Type"))
	}
	switch ct {
	case "application/json":
		return batch.ParseJSON(r.Body, lim)
	case "text/csv", "application/csv", "text/plain":
		opts, err := queryOptions(r.URL.RawQuery)
		if err != nil {
			return batch.Submission{}, err
		}
		return csvSubmission(r.Body, opts, lim, add)
	case "multipart/form-data":
		return multipartSubmission(multipart.NewReader(r.Body, params["boundary"]), lim, add)
	default:
		return batch.Submission{}, fault.New(fault.Unsupported, "",
			"Content-Type %q is not accepted: send multipart/form-data with the file in field \"csv\", text/csv, or application/json", ct)
	}
}

// csvOptions are the options that come beside a CSV, as query or form
// fields, unparsed.
type csvOptions struct {
	webhookURL, quality, maxWidth, maxHeight, sizes string
}

// optionFields are the form fields csvOptions come from.
var optionFields = map[string]func(*csvOptions) *string{
	batch.OptWebhookURL: func(o *csvOptions) *string { return &o.webhookURL },
	batch.OptQuality:    func(o *csvOptions) *string { return &o.quality },
	batch.OptMaxWidth:   func(o *csvOptions) *string { return &o.maxWidth },
	batch.OptMaxHeight:  func(o *csvOptions) *string { return &o.maxHeight },
	batch.OptSizes:      func(o *csvOptions) *string { return &o.sizes },
}

// queryOptions reads the options of a query, as url.Values.Get would (the
// first of a name counts, other names are ignored), but a value is looked
// at in place and unescaped only when it is within three times its bound
// (percent-encoded, it can be no longer), so nothing is allocated for a
// value past it.
func queryOptions(raw string) (csvOptions, error) {
	var o csvOptions
	seen := map[string]bool{}
	for raw != "" {
		var pair, k, v string
		pair, raw, _ = strings.Cut(raw, "&")
		k, v, _ = strings.Cut(pair, "=")
		if len(k) > 64 {
			continue // no option's name, even percent-encoded
		}
		name, err := url.QueryUnescape(k)
		field, ok := optionFields[name]
		if err != nil || !ok || seen[name] {
			continue
		}
		seen[name] = true
		if len(v) > 3*batch.OptionBound(name) {
			return csvOptions{}, batch.TooLong(name).Fault()
		}
		if *field(&o), err = url.QueryUnescape(v); err != nil {
			return csvOptions{}, &fault.Error{Kind: fault.Invalid, Message: "invalid upload options",
				Details: []string{fmt.Sprintf("%s: the query value is not validly percent-encoded: %v", name, err)}}
		}
	}
	return o, nil
}

// submission validates the options that come beside a CSV, reporting
// every problem at once.
func (o csvOptions) submission(lim batch.Limits) (batch.Submission, error) {
	var problems []string
	q, err := batch.ParseQuality(o.quality)
	if err != nil {
		problems = append(problems, "quality: "+err.Error())
	}
	if err := batch.CheckWebhookURL(o.webhookURL); err != nil {
		problems = append(problems, "webhookUrl: "+err.Error())
	}
	sizing, sp := batch.ParseSizing(o.maxWidth, o.maxHeight, o.sizes)
	if len(sp) == 0 {
		if err := sizing.CheckPixels(lim.ImageLimits()); err != nil {
			sp = []string{err.Error()}
		}
	}
	problems = append(problems, sp...)
	if len(problems) > 0 {
		return batch.Submission{}, &fault.Error{Kind: fault.Invalid, Message: "invalid upload options", Details: problems}
	}
	return batch.Submission{WebhookURL: o.webhookURL, Quality: q, Sizing: sizing}, nil
}

func csvSubmission(body io.Reader, o csvOptions, lim batch.Limits, add func(batch.Product) error) (batch.Submission, error) {
	sub, err := o.submission(lim)
	if err != nil {
		return batch.Submission{}, err
	}
	if err := batch.ParseCSVTo(body, lim, add); err != nil {
		return batch.Submission{}, err
	}
	return sub, nil
}

// multipartSubmission streams the parts: the CSV is parsed as it arrives;
// option fields may come before or after it.
func multipartSubmission(mr *multipart.Reader, lim batch.Limits, add func(batch.Product) error) (batch.Submission, error) {
	var sawCSV bool
	var opts csvOptions
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return batch.Submission{}, fault.New(fault.TooLarge, "", "the upload is larger than %d bytes (the limit)", mbe.Limit)
			}
			return batch.Submission{}, fault.New(fault.Invalid, "", "invalid multipart body: %v", err)
		}
		switch name := part.FormName(); name {
		case "csv":
			if sawCSV {
				return batch.Submission{}, fault.New(fault.Invalid, "", `more than one "csv" part`)
			}
			sawCSV = true
			if err := batch.ParseCSVTo(part, lim, add); err != nil {
				return batch.Submission{}, err
			}
		default:
			field, ok := optionFields[name]
			if !ok {
				_, _ = io.Copy(io.Discard, part)
				continue
			}
			// One byte past the bound tells a value that is too long
			// from one that just fits, without reading the rest.
			b, err := io.ReadAll(io.LimitReader(part, int64(batch.OptionBound(name))+1))
			if err != nil {
				return batch.Submission{}, fault.New(fault.Invalid, "", "reading field %q: %v", name, err)
			}
			if len(b) > batch.OptionBound(name) {
				return batch.Submission{}, batch.TooLong(name).Fault()
			}
			*field(&opts) = strings.TrimSpace(string(b))
		}
	}
	if !sawCSV {
		return batch.Submission{}, fault.New(fault.Invalid, "", `the form has no "csv" file field`)
	}
	return opts.submission(lim)
}

func status(w http.ResponseWriter, r *http.Request) {
	d, err := loadDeps()
	if err != nil {
		writeError(w, fault.Wrap(fault.Internal, "", err, "configuration"))
		return
	}
	owner, err := callerID(r)
	if err != nil {
		writeError(w, err)
		return
	}
	offset, limit, err := page(r)
	if err != nil {
		writeError(w, err)
		return
	}
	v, err := d.svc.Status(r.Context(), r.PathValue("id"), owner, offset, limit)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// page reads ?offset= (default 0) and ?limit= (1 to pipeline.MaxPage,
// default the most): anything else is refused, not guessed at.
func page(r *http.Request) (offset, limit int, err error) {
	q := r.URL.Query()
	offset, limit = 0, pipeline.MaxPage
	var problems []string
	if v := q.Get("offset"); v != "" {
		if n, e := strconv.Atoi(v); e != nil || n < 0 {
			problems = append(problems, fmt.Sprintf("offset=%q: want a whole number ≥ 0", v))
		} else {
			offset = n
		}
	}
	if v := q.Get("limit"); v != "" {
		if n, e := strconv.Atoi(v); e != nil || n < 1 || n > pipeline.MaxPage {
			problems = append(problems, fmt.Sprintf("limit=%q: want a whole number from 1 to %d", v, pipeline.MaxPage))
		} else {
			limit = n
		}
	}
	if len(problems) > 0 {
		return 0, 0, &fault.Error{Kind: fault.Invalid, Message: "invalid page of products", Details: problems}
	}
	return offset, limit, nil
}

// report answers the CSV report: in the response while it is small, else
// (Cloud Run caps a response at 32 MiB) as an object in the private bucket
// behind a 303 See Other to a link valid for reportLinkTTL.
func report(w http.ResponseWriter, r *http.Request) {
	d, err := loadDeps()
	if err != nil {
		writeError(w, fault.Wrap(fault.Internal, "", err, "configuration"))
		return
	}
	owner, err := callerID(r)
	if err != nil {
		writeError(w, err)
		return
	}
	serveReport(w, r, d, r.PathValue("id"), owner)
}

// reportLinkTTL is how long the link to a stored report works.
const reportLinkTTL = time.Hour

// keptReport is where a finished request's report is kept once built.
func keptReport(id string) string { return "reports/" + id + "/report.csv" }

// serveReport answers request id's report; owner, when not empty, must own
// it. A finished request's report does not change, so it is built once and
// kept in the private bucket; it is built again once it is a quarter of
// the signed links' lifetime old. Links are made with more than half
// their lifetime left (blob.Bucket.URL), so a report always hands out
// links with at least a quarter of theirs left.
func serveReport(w http.ResponseWriter, r *http.Request, d *deps, id, owner string) {
	req, err := d.svc.Owned(r.Context(), id, owner)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Cache-Control", "private, no-store")
	finished := req.Status == batch.Completed || req.Status == batch.Failed
	if finished {
		size, built, err := d.private.Stat(r.Context(), keptReport(id))
		if err == nil && time.Since(built) < d.cfg.SignedURLTTL/4 {
			serveKeptReport(w, r, d, id, size)
			return
		}
		if err != nil && !errors.Is(err, blob.ErrNotExist) {
			logger.Warn("reading the kept report", "requestId", id, "error", err.Error())
		}
	}
	object := "reports/" + id + "/" + strconv.FormatInt(time.Now().UnixNano(), 10) + ".csv"
	if finished {
		object = keptReport(id)
	}
	// Cancelling the object's context before Close abandons it unfinished.
	objCtx, abandon := context.WithCancel(r.Context())
	defer abandon()
	out := &spillWriter{limit: d.cfg.ReportInlineMaxBytes, open: func() io.WriteCloser {
		return d.private.Create(objCtx, object, reportContentType, reportDisposition(id))
	}}
	if err := d.svc.Report(r.Context(), id, owner, out); err != nil {
		abandon()
		writeErrorFor(w, err, id)
		return
	}
	if !out.spilled() {
		if finished {
			out.spill() // kept for the next call
			if err := out.Close(); err != nil {
				logger.Warn("keeping the report", "requestId", id, "error", err.Error())
			}
		}
		writeReportBody(w, id, out.buf.Bytes())
		return
	}
	if err := out.Close(); err != nil {
		writeErrorFor(w, fault.Wrap(fault.Transient, "", err, "storing the report"), id)
		return
	}
	redirectToReport(w, d, id, object, out.n)
}

const reportContentType = "text/csv; charset=utf-8"

func reportDisposition(id string) string { return `attachment; filename="imgpipe-` + id + `.csv"` }

func writeReportBody(w http.ResponseWriter, id string, b []byte) {
	w.Header().Set("Content-Type", reportContentType)
	w.Header().Set("Content-Disposition", reportDisposition(id))
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// serveKeptReport answers a kept report: its bytes while small, else a
// link to it.
func serveKeptReport(w http.ResponseWriter, r *http.Request, d *deps, id string, size int64) {
	if size > d.cfg.ReportInlineMaxBytes {
		redirectToReport(w, d, id, keptReport(id), size)
		return
	}
	b, err := d.private.Get(r.Context(), keptReport(id))
	if err != nil {
		writeErrorFor(w, fault.Wrap(fault.Transient, "", err, "reading the report"), id)
		return
	}
	writeReportBody(w, id, b)
}

// redirectToReport answers 303 See Other to a link to a stored report.
func redirectToReport(w http.ResponseWriter, d *deps, id, object string, size int64) {
	link, err := d.private.PrivateURL(object, reportLinkTTL)
	if err != nil {
		writeErrorFor(w, fault.Wrap(fault.Internal, "", err, "signing the report's link"), id)
		return
	}
	w.Header().Set("Location", link)
	writeJSON(w, http.StatusSeeOther, map[string]any{
		"requestId": id, "reportUrl": link, "expiresAt": time.Now().Add(reportLinkTTL).UTC().Format(time.RFC3339),
		"bytes": size,
	})
}

// spillWriter keeps what is written in memory up to limit bytes; past it,
// it opens the writer open gives, hands it what it kept, and writes
// through from then on.
type spillWriter struct {
	limit int64
	open  func() io.WriteCloser
	buf   bytes.Buffer
	to    io.WriteCloser
	n     int64
	err   error // of a spill's first write
}

func (s *spillWriter) Write(p []byte) (int, error) {
	s.n += int64(len(p))
	if s.to == nil && int64(s.buf.Len()+len(p)) <= s.limit {
		return s.buf.Write(p)
	}
	if s.to == nil {
		s.to = s.open()
		if _, err := s.to.Write(s.buf.Bytes()); err != nil {
			return 0, err
		}
		s.buf = bytes.Buffer{}
	}
	return s.to.Write(p)
}

func (s *spillWriter) spilled() bool { return s.to != nil }

// spill opens the writer and hands it what was kept, keeping it in buf
// too.
func (s *spillWriter) spill() {
	if s.to == nil {
		s.to = s.open()
		if _, err := s.to.Write(s.buf.Bytes()); err != nil {
			s.err = err
		}
	}
}

// Close finishes the spilled object.
func (s *spillWriter) Close() error {
	if s.to == nil {
		return nil
	}
	return errors.Join(s.err, s.to.Close())
}

func redeliver(w http.ResponseWriter, r *http.Request) {
	d, err := loadDeps()
	if err != nil {
		writeError(w, fault.Wrap(fault.Internal, "", err, "configuration"))
		return
	}
	owner, err := callerID(r)
	if err != nil {
		writeError(w, err)
		return
	}
	n, err := d.svc.RedeliverWebhook(r.Context(), r.PathValue("id"), owner)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"requestId": r.PathValue("id"), "redelivery": n, "webhook": "DELIVERING"})
}
