package cli_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/wire"
)

// fakeAPI is the imgpipe API of one request, r1, in memory: its status in
// pages of at most pageSize products, its outputs under /o/, its report,
// and an upload that answers it. It records every call.
type fakeAPI struct {
	srv      *httptest.Server
	pageSize int

	mu sync.Mutex
	// states are the answers to successive status reads, products aside;
	// the last one repeats.
	states   []wire.Status
	products []wire.Product
	report   string
	calls    []apiCall
	reads    int // status reads so far
}

// apiCall is one request the fake received.
type apiCall struct {
	Method, Path string
	Query        map[string]string
	ContentType  string
	Body         []byte
}

func newFakeAPI(t *testing.T, pageSize int) *fakeAPI {
	a := &fakeAPI{pageSize: pageSize}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

// link is the URL of output name, which answers "output name".
func (a *fakeAPI) link(name string) string { return a.srv.URL + "/o/" + name }

// vars are the variables that point the command at the fake.
func (a *fakeAPI) vars() map[string]string {
	return map[string]string{"IMGPIPE_URL": a.srv.URL, "IMGPIPE_API_KEY": keySentinel}
}

// sent returns the calls whose path starts with prefix.
func (a *fakeAPI) sent(prefix string) []apiCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []apiCall
	for _, c := range a.calls {
		if strings.HasPrefix(c.Path, prefix) {
			out = append(out, c)
		}
	}
	return out
}

func (a *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	q := map[string]string{}
	for k, v := range r.URL.Query() {
		q[k] = v[0]
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !strings.HasPrefix(r.URL.Path, "/o/") {
		a.calls = append(a.calls, apiCall{Method: r.Method, Path: r.URL.Path, Query: q, ContentType: r.Header.Get("Content-Type"), Body: body})
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/o/"):
		fmt.Fprintf(w, "output %s", strings.TrimPrefix(r.URL.Path, "/o/"))
	case r.Method == http.MethodPost && r.URL.Path == "/api/upload":
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(wire.Upload{RequestID: "r1", Status: batch.Pending, TotalImages: a.state(0).TotalImages,
			StatusURL: a.srv.URL + "/api/status/r1", ReportURL: a.srv.URL + "/api/report/r1", ViewURL: a.srv.URL + "/api/view/r1?t=tok"})
	case r.URL.Path == "/api/status/r1":
		_ = json.NewEncoder(w).Encode(a.page(q))
	case r.URL.Path == "/api/report/r1":
		w.Header().Set("Content-Type", "text/csv")
		fmt.Fprint(w, a.report)
	default:
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(wire.ErrorBody{Error: wire.ErrorDetail{Code: "not_found", Message: "request not found"}})
	}
}

// state is the answer to status read n, products aside.
func (a *fakeAPI) state(n int) wire.Status {
	if len(a.states) == 0 {
		return wire.Status{RequestID: "r1", Status: batch.Completed}
	}
	return a.states[min(n, len(a.states)-1)]
}

// page answers one status read: the state of this read and the products
// [offset, offset+limit), limit capped at pageSize as the API caps it.
func (a *fakeAPI) page(q map[string]string) wire.Status {
	s := a.state(a.reads)
	a.reads++
	offset, _ := strconv.Atoi(q["offset"])
	limit, err := strconv.Atoi(q["limit"])
	if err != nil || limit > a.pageSize {
		limit = a.pageSize
	}
	s.Page = wire.Page{Offset: offset, Limit: limit, TotalProducts: len(a.products)}
	s.Products = []wire.Product{}
	if offset < len(a.products) {
		s.Products = a.products[offset:min(offset+limit, len(a.products))]
	}
	if next := offset + limit; next < len(a.products) {
		s.Page.NextOffset = &next
	}
	return s
}
