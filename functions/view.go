package functions

import (
	"bytes"
	_ "embed"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"cloud.google.com/go/storage"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/fault"
	"github.com/imgpipe/imgpipe/shared/pipeline"
)

// The status page: a read-only view of one request, opened with the signed
// link an upload answers (viewUrl) instead of an API key. It is rendered on
// the server, works without JavaScript, and shows a page of products at a
// time with a thumbnail of each output (never the images themselves: the
// thumbnails are made when the images are compressed and kept in the
// private bucket). A wrong or expired token is answered like a request that
// does not exist.

// viewPerPage is how many products one page of the view shows.
const viewPerPage = 20

//go:embed view.html
var viewHTML string

var viewTemplate = template.Must(template.New("view").Funcs(template.FuncMap{
	// Replaced per page by one that knows the request and token.
	"thumb": func(string, string) string { return "" },
	"bytes": humanBytes,
}).Parse(viewHTML))

// humanBytes writes n for people: 1.2 MB, 340 kB, 12 B.
func humanBytes(n int64) string {
	switch {
	case n >= 1e9:
		return strconv.FormatFloat(float64(n)/1e9, 'f', 2, 64) + " GB"
	case n >= 1e6:
		return strconv.FormatFloat(float64(n)/1e6, 'f', 1, 64) + " MB"
	case n >= 1e3:
		return strconv.FormatFloat(float64(n)/1e3, 'f', 1, 64) + " kB"
	default:
		return strconv.FormatInt(n, 10) + " B"
	}
}

var viewMux = func() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /api/view/{id}", viewPage)
	m.HandleFunc("GET /api/view/{id}/progress", viewProgress)
	m.HandleFunc("GET /api/view/{id}/thumb/{image}/{which}", viewThumb)
	m.HandleFunc("GET /api/view/{id}/report.csv", viewReport)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { viewNotFound(w) })
	return m
}()

// viewURL is the status page link of request id.
func viewURL(d *deps, base, id string) string {
	tok := d.views.Token(id, time.Now().Add(d.cfg.ViewLinkTTL))
	return base + "/api/view/" + url.PathEscape(id) + "?t=" + tok
}

func viewNotFound(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "not found", http.StatusNotFound)
}

// viewRequest checks the link's token and reads its request; it answers
// 404 itself and returns false when either fails.
func viewRequest(w http.ResponseWriter, r *http.Request) (*deps, batch.Request, string, bool) {
	d, err := loadDeps()
	if err != nil {
		writeError(w, fault.Wrap(fault.Internal, "", err, "configuration"))
		return nil, batch.Request{}, "", false
	}
	id, tok := r.PathValue("id"), r.URL.Query().Get("t")
	if d.views.Check(id, tok, time.Now()) != nil {
		viewNotFound(w)
		return nil, batch.Request{}, "", false
	}
	req, err := d.svc.Request(r.Context(), id)
	if fault.KindOf(err) == fault.NotFound {
		viewNotFound(w)
		return nil, req, "", false
	}
	if err != nil {
		writeError(w, err)
		return nil, req, "", false
	}
	// The token is in the URL: keep it out of Referer headers and caches.
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("X-Robots-Tag", "noindex")
	return d, req, tok, true
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
}

func viewPage(w http.ResponseWriter, r *http.Request) {
	d, req, tok, ok := viewRequest(w, r)
	if !ok {
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
	q := "?t=" + url.QueryEscape(tok)
	v := viewData{
		ID: req.ID, Status: string(st.Status), Total: st.TotalImages, Processed: st.ProcessedImages, Failed: st.FailedImages,
		Done: st.ProcessedImages + st.FailedImages, InputBytes: st.InputBytes, OutputBytes: st.OutputBytes, SavedPercent: st.SavedPercent,
		Finished: st.Status == batch.Completed || st.Status == batch.Failed,
		Products: req.ProductCount, From: from + 1, To: from + len(products), PerPage: viewPerPage, Page: products,
		ReportURL: base + "/report.csv" + q, ProgressURL: base + "/progress" + q,
	}
	if req.Sizing != nil {
		v.Sizing = req.Sizing.Describe()
	}
	if st.TotalImages > 0 {
		v.Percent = 100 * v.Done / st.TotalImages
	}
	if from > 0 {
		v.PrevURL = base + q + "&page=" + strconv.Itoa(from/viewPerPage)
	}
	if from+viewPerPage < req.ProductCount {
		v.NextURL = base + q + "&page=" + strconv.Itoa(from/viewPerPage+2)
	}
	t, err := viewTemplate.Clone()
	if err == nil {
		t.Funcs(template.FuncMap{"thumb": func(image, which string) string {
			return base + "/thumb/" + url.PathEscape(image) + "/" + which + q
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
	w.Header().Set("Content-Security-Policy", "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'")
	_, _ = w.Write(out.Bytes())
}

func viewProgress(w http.ResponseWriter, r *http.Request) {
	d, req, _, ok := viewRequest(w, r)
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
	writeJSON(w, http.StatusOK, map[string]any{
		"status": st.Status, "done": done, "percent": percent, "totalImages": st.TotalImages,
		"processedImages": st.ProcessedImages, "failedImages": st.FailedImages,
		"finished": st.Status == batch.Completed || st.Status == batch.Failed,
	})
}

// viewThumb answers an image's thumbnail: the small JPEG of its output
// stored in the private bucket when the image was compressed (which is
// "out", the one kind). A page view thus never fetches an input nor
// decodes an image; an image without a thumbnail (pending, failed, or its
// thumbnail not stored) is 404.
func viewThumb(w http.ResponseWriter, r *http.Request) {
	d, req, _, ok := viewRequest(w, r)
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
	d, req, _, ok := viewRequest(w, r)
	if !ok {
		return
	}
	serveReport(w, r, d, req.ID, "")
}
