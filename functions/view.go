package functions

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"cloud.google.com/go/storage"
	"golang.org/x/time/rate"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/fault"
	"github.com/imgpipe/imgpipe/shared/pipeline"
	"github.com/imgpipe/imgpipe/shared/wire"
)

// The status page: a read-only view of one request, opened with the signed
// link an upload answers (viewUrl) instead of an API key. It is rendered on
// the server, works without JavaScript, and shows a page of products at a
// time with a thumbnail of each output (never the images themselves: the
// thumbnails are made when the images are compressed and kept in the
// private bucket). A wrong or expired token, or one whose owner's key was
// revoked, is answered like a request that does not exist.
//
// Who sees what: the holder of the link sees that one request (names,
// input URLs, outputs, report) until the link expires. The first visit
// trades the token in the URL for a cookie scoped to the request's path
// and redirects to the URL without it, so the token leaves the address
// bar, the history and later Referer headers. Every view request counts
// against a per-token limit on this instance; the page, its progress and
// the report also count against the owner key's rate, in a budget apart
// from the key's own calls.

// viewPerPage is how many products one page of the view shows.
const viewPerPage = 20

// viewCookie carries the token after the first visit.
const viewCookie = "imgpipe_view"

// viewTokenRate and viewTokenBurst bound one token's requests on one
// instance: a page of thumbnails at once, then about two a second.
const (
	viewTokenRate  = 2
	viewTokenBurst = 60
)

//go:embed view.html
var viewHTML string

var viewTemplate = template.Must(template.New("view").Funcs(template.FuncMap{
	// Replaced per page by one that knows the request.
	"thumb": func(string, string) string { return "" },
	"bytes": wire.FormatBytes,
}).Parse(viewHTML))

var viewMux = func() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /api/view/{id}", viewPage)
	m.HandleFunc("GET /api/view/{id}/progress", viewProgress)
	m.HandleFunc("GET /api/view/{id}/thumb/{image}/{which}", viewThumb)
	m.HandleFunc("GET /api/view/{id}/report.csv", viewReport)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { viewNotFound(w) })
	return m
}()

// viewURL is the status page link of request id, owned by key owner.
func viewURL(d *deps, base, id, owner string) string {
	tok := d.views.Token(id, owner, time.Now().Add(d.cfg.ViewLinkTTL))
	return base + "/api/view/" + url.PathEscape(id) + "?t=" + tok
}

func viewNotFound(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "not found", http.StatusNotFound)
}

// viewLimits holds a rate limiter per token seen by this instance; the
// map is cleared when it grows past viewLimitsMax tokens.
var viewLimits = struct {
	sync.Mutex
	m map[string]*rate.Limiter
}{}

const viewLimitsMax = 10_000

func allowToken(tok string) bool {
	viewLimits.Lock()
	defer viewLimits.Unlock()
	l := viewLimits.m[tok]
	if l == nil {
		if viewLimits.m == nil || len(viewLimits.m) >= viewLimitsMax {
			viewLimits.m = map[string]*rate.Limiter{}
		}
		l = rate.NewLimiter(viewTokenRate, viewTokenBurst)
		viewLimits.m[tok] = l
	}
	return l.Allow()
}

// viewToken is the link's token: on the page, the query's on a first
// visit; everywhere else, and on the page after that, the cookie's, so the
// token is in no other URL. fromQuery says which.
func viewToken(r *http.Request) (tok string, fromQuery bool) {
	if t := r.URL.Query().Get("t"); t != "" && r.Pattern == "GET /api/view/{id}" {
		return t, true
	}
	if c, err := r.Cookie(viewCookie); err == nil {
		return c.Value, false
	}
	return "", false
}

// viewRequest checks the link's token, its owner's key and limits, and
// reads its request; it answers itself and returns false when any fails.
// countOwner charges the call to the owner's API rate too.
func viewRequest(w http.ResponseWriter, r *http.Request, countOwner bool) (*deps, batch.Request, bool) {
	d, err := loadDeps()
	if err != nil {
		writeError(w, fault.Wrap(fault.Internal, "", err, "configuration"))
		return nil, batch.Request{}, false
	}
	id := r.PathValue("id")
	tok, _ := viewToken(r)
	checked, err := d.views.Check(id, tok, time.Now())
	if err != nil {
		viewNotFound(w)
		return nil, batch.Request{}, false
	}
	if !allowToken(tok) {
		writeError(w, &fault.Error{Kind: fault.RateLimited, RetryAfter: time.Second, Message: "too many requests with this link; retry in a second"})
		return nil, batch.Request{}, false
	}
	req, err := d.svc.Request(r.Context(), id)
	if fault.KindOf(err) == fault.NotFound || (err == nil && checked.Owner(req.Owner) != nil) {
		viewNotFound(w)
		return nil, batch.Request{}, false
	}
	if err != nil {
		writeError(w, err)
		return nil, req, false
	}
	owner, err := d.keys.Active(r.Context(), req.Owner)
	if fault.KindOf(err) == fault.NotFound {
		viewNotFound(w) // the owner's key was revoked: so are its links
		return nil, req, false
	}
	if err == nil && countOwner {
		err = d.keys.AllowView(r.Context(), owner)
	}
	if err != nil {
		writeError(w, err)
		return nil, req, false
	}
	// Keep the page out of other sites' frames, Referer headers and caches.
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("X-Robots-Tag", "noindex")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	return d, req, true
}

// viewData is what the template shows.
type viewData struct {
	ID, Status                     string
	Total, Done, Processed, Failed int
	Percent                        int
	InputBytes, OutputBytes        int64
	SavedPercent                   float64
	Finished                       bool
	Products, From, To, PerPage    int
	Page                           []pipeline.ProductPage
	ReportURL, ProgressURL         string
	PrevURL, NextURL               string
	Sizing                         string // how outputs are sized; "" when at their own size
	Nonce                          string // the CSP nonce of the page's script and style
}

func viewPage(w http.ResponseWriter, r *http.Request) {
	d, req, ok := viewRequest(w, r, true)
	if !ok {
		return
	}
	if tok, fromQuery := viewToken(r); fromQuery {
		// Trade the token for a cookie on this request's paths, then show
		// the page at its URL without the token.
		base := "/api/view/" + url.PathEscape(req.ID)
		checked, _ := d.views.Check(req.ID, tok, time.Now())
		http.SetCookie(w, &http.Cookie{Name: viewCookie, Value: tok, Path: base, Expires: checked.Expires,
			HttpOnly: true, Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https", SameSite: http.SameSiteLaxMode})
		q := r.URL.Query()
		q.Del("t")
		to := base
		if len(q) > 0 {
			to += "?" + q.Encode()
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	page, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || page < 1 {
		page = 1
	}
	from := min((page-1)*viewPerPage, max(0, req.ProductCount-1))
	from -= from % viewPerPage
	st, err := d.svc.Status(r.Context(), req.ID, "", 0, 1)
	if err != nil {
		writeError(w, err)
		return
	}
	products, err := d.svc.PageProducts(r.Context(), req, from, from+viewPerPage)
	if err != nil {
		writeError(w, err)
		return
	}
	base := "/api/view/" + url.PathEscape(req.ID)
	nonce, err := newNonce()
	if err != nil {
		writeError(w, fault.Wrap(fault.Internal, "", err, "rendering the status page"))
		return
	}
	v := viewData{
		ID: req.ID, Status: string(st.Status), Total: st.TotalImages, Processed: st.ProcessedImages, Failed: st.FailedImages,
		Done: st.ProcessedImages + st.FailedImages, InputBytes: st.InputBytes, OutputBytes: st.OutputBytes, SavedPercent: st.SavedPercent,
		Finished: st.Status == batch.Completed || st.Status == batch.Failed,
		Products: req.ProductCount, From: from + 1, To: from + len(products), PerPage: viewPerPage, Page: products,
		ReportURL: base + "/report.csv", ProgressURL: base + "/progress", Nonce: nonce,
	}
	if req.Sizing != nil {
		v.Sizing = req.Sizing.Describe()
	}
	if st.TotalImages > 0 {
		v.Percent = 100 * v.Done / st.TotalImages
	}
	if from > 0 {
		v.PrevURL = base + "?page=" + strconv.Itoa(from/viewPerPage)
	}
	if from+viewPerPage < req.ProductCount {
		v.NextURL = base + "?page=" + strconv.Itoa(from/viewPerPage+2)
	}
	t, err := viewTemplate.Clone()
	if err == nil {
		t.Funcs(template.FuncMap{"thumb": func(image, which string) string {
			return base + "/thumb/" + url.PathEscape(image) + "/" + which
		}})
	}
	var out bytes.Buffer
	if err == nil {
		err = t.Execute(&out, v)
	}
	if err != nil {
		writeError(w, fault.Wrap(fault.Internal, "", err, "rendering the status page"))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", viewCSP(nonce))
	_, _ = w.Write(out.Bytes())
}

// viewCSP is the page's policy: its own script and style by nonce, no
// other script, images and fetches from itself only, never in a frame.
func viewCSP(nonce string) string {
	return "default-src 'none'; img-src 'self'; style-src 'nonce-" + nonce + "'; script-src 'nonce-" + nonce +
		"'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// newNonce is a fresh CSP nonce: 128 random bits.
func newNonce() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawStdEncoding.EncodeToString(b), nil
}

func viewProgress(w http.ResponseWriter, r *http.Request) {
	d, req, ok := viewRequest(w, r, true)
	if !ok {
		return
	}
	st, err := d.svc.Status(r.Context(), req.ID, "", 0, 1)
	if err != nil {
		writeError(w, err)
		return
	}
	done := st.ProcessedImages + st.FailedImages
	percent := 0
	if st.TotalImages > 0 {
		percent = 100 * done / st.TotalImages
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, wire.Progress{
		Status: st.Status, Done: done, Percent: percent, TotalImages: st.TotalImages,
		ProcessedImages: st.ProcessedImages, FailedImages: st.FailedImages,
		Finished: st.Status == batch.Completed || st.Status == batch.Failed,
	})
}

// viewThumb answers an image's thumbnail: the small JPEG of its output
// stored in the private bucket when the image was compressed (which is
// "out", the one kind). A page view thus never fetches an input nor
// decodes an image; an image without a thumbnail (pending, failed, or its
// thumbnail not stored) is 404.
func viewThumb(w http.ResponseWriter, r *http.Request) {
	d, req, ok := viewRequest(w, r, false)
	if !ok {
		return
	}
	ref, err := batch.ParseImageID(r.PathValue("image"))
	if err != nil || r.PathValue("which") != "out" || ref.Product < 0 || ref.Product >= req.ProductCount {
		viewNotFound(w)
		return
	}
	data, err := d.private.Get(r.Context(), batch.ThumbObjectName(req.ID, ref))
	if errors.Is(err, storage.ErrObjectNotExist) {
		viewNotFound(w)
		return
	}
	if err != nil {
		writeError(w, fault.Wrap(fault.Transient, batch.ReasonStorageUnavailable, err, "reading the thumbnail of image %s", ref.ID()))
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "private, max-age=86400")
	_, _ = w.Write(data)
}

func viewReport(w http.ResponseWriter, r *http.Request) {
	d, req, ok := viewRequest(w, r, true)
	if !ok {
		return
	}
	serveReport(w, r, d, req.ID, "")
}
