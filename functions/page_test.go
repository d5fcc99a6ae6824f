package functions

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/shared/fault"
	"github.com/imgpipe/imgpipe/shared/pipeline"
)

// A page of products is read as asked or refused with what is wrong.
func TestPageParameters(t *testing.T) {
	for query, want := range map[string][2]int{
		"": {0, pipeline.MaxPage}, "offset=20": {20, pipeline.MaxPage}, "offset=0&limit=1": {0, 1}, "limit=1000": {0, 1000},
	} {
		off, lim, err := page(httptest.NewRequest(http.MethodGet, "/api/status/x?"+query, nil))
		if err != nil || off != want[0] || lim != want[1] {
			t.Errorf("?%s: offset %d limit %d (%v), want %v", query, off, lim, err, want)
		}
	}
	for _, query := range []string{"offset=-1", "offset=abc", "offset=1.5", "limit=0", "limit=1001", "limit=x", "limit=-3&offset=2"} {
		_, _, err := page(httptest.NewRequest(http.MethodGet, "/api/status/x?"+query, nil))
		var fe *fault.Error
		if err == nil || fault.HTTPStatus(err) != http.StatusBadRequest || !errors.As(err, &fe) || !strings.Contains(strings.Join(fe.Details, " "), strings.SplitN(query, "=", 2)[0]) {
			t.Errorf("?%s: %v, want 400 naming the parameter", query, err)
		}
	}
}

// Without an authenticated key in its context, a handler refuses (401)
// instead of serving any owner's request.
func TestHandlersFailClosedWithoutKey(t *testing.T) {
	for _, h := range []struct {
		name string
		fn   http.HandlerFunc
		path string
	}{{"status", status, "/api/status/x"}, {"report", report, "/api/report/x"}, {"redeliver", redeliver, "/api/requests/x/webhook/redeliver"}} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, h.path, nil)
		req.SetPathValue("id", "x")
		h.fn(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("%s without a key: %d %s, want 401", h.name, rec.Code, rec.Body)
		}
	}
}

// An upload's trace comes from the header the platform sets, in either form.
func TestTraceOf(t *testing.T) {
	for h, want := range map[[2]string]string{
		{"X-Cloud-Trace-Context", "105445aa7843bc8bf206b12000100000/1;o=1"}:        "projects/p1/traces/105445aa7843bc8bf206b12000100000",
		{"traceparent", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"}: "projects/p1/traces/4bf92f3577b34da6a3ce929d0e0e4736",
		{"X-Cloud-Trace-Context", "not-a-trace/1"}:                                 "",
		{"traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}: "",
		{"X-Cloud-Trace-Context", "105445aa7843bc8bf206b1200010000/1"}:             "",
		{"User-Agent", "curl"}: "",
	} {
		r := httptest.NewRequest(http.MethodPost, "/api/upload", nil)
		r.Header.Set(h[0], h[1])
		if got := traceOf(r, "p1"); got != want {
			t.Errorf("%s: %s → %q, want %q", h[0], h[1], got, want)
		}
	}
}
