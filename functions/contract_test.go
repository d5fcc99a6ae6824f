//go:build faults

package functions_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	verrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/helpers"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"

	"github.com/imgpipe/imgpipe/functions"
)

// Built with the end-to-end suite (-tags faults, as make test runs it): the
// validator and its dependencies are too heavy for the fuzz builds of this
// package, which instrument every package they link.
func init() {
	var c *contract
	contractCheck = func(next http.RoundTripper) (http.RoundTripper, error) {
		var err error
		c, err = newContract(next)
		webhookCheck = func(body []byte) string { return c.checkWebhook(body) }
		return c, err
	}
	contractVerdict = func() bool {
		checked, mismatches := c.report()
		fmt.Printf("contract: %d API exchanges checked against openapi.yaml, %d did not match\n", checked, len(mismatches))
		for _, m := range mismatches {
			fmt.Println("  contract mismatch:", m)
		}
		return len(mismatches) > 0
	}
}

// contract checks every exchange the tests have with the API against
// openapi.yaml, with a real OpenAPI 3.1 validator: each response (status,
// headers, body), and each request the API accepted (a request it refused
// may break the contract on purpose; its error answer is still checked).
type contract struct {
	v       validator.Validator
	next    http.RoundTripper
	webhook *base.Schema // the webhook payload's schema

	mu         sync.Mutex
	checked    int
	mismatches []string
}

func newContract(next http.RoundTripper) (*contract, error) {
	doc, err := libopenapi.NewDocument(functions.OpenAPI)
	if err != nil {
		return nil, fmt.Errorf("libopenapi.NewDocument: %w", err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		return nil, fmt.Errorf("validator.NewValidator: %v", errs)
	}
	if ok, errs := v.ValidateDocument(); !ok {
		return nil, fmt.Errorf("openapi.yaml is not a valid OpenAPI document: %s", describe(errs))
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("libopenapi.BuildV3Model: %w", err)
	}
	proxy, ok := model.Model.Components.Schemas.Get("WebhookPayload")
	if !ok {
		return nil, fmt.Errorf("openapi.yaml has no WebhookPayload schema")
	}
	return &contract{v: v, next: next, webhook: proxy.Schema()}, nil
}

// checkWebhook validates a webhook delivery's body against the document's
// webhook payload; "" when it matches. Receivers in the tests call it on
// every delivery.
func (c *contract) checkWebhook(body []byte) string {
	ok, errs := schema_validation.NewSchemaValidator().ValidateSchemaBytes(c.webhook, body)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checked++
	if ok {
		return ""
	}
	msg := fmt.Sprintf("webhook delivery: %s (body: %.300s)", describe(errs), body)
	c.mismatches = append(c.mismatches, msg)
	return msg
}

func (c *contract) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasPrefix(r.URL.Path, "/api/") {
		return c.next.RoundTrip(r)
	}
	var body []byte
	if r.Body != nil {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			return nil, err
		}
		r.Body.Close()
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := c.next.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(got))
	if err != nil {
		return resp, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checked++
	if problems := c.check(r, body, resp, got); problems != "" {
		c.mismatches = append(c.mismatches, fmt.Sprintf("%s %s → %d: %s", r.Method, r.URL.RequestURI(), resp.StatusCode, problems))
	}
	return resp, nil
}

// check validates one exchange; "" when it matches the document.
func (c *contract) check(r *http.Request, reqBody []byte, resp *http.Response, respBody []byte) string {
	req := r.Clone(r.Context())
	req.Body = io.NopCloser(bytes.NewReader(reqBody))
	rs := *resp
	rs.Body = io.NopCloser(bytes.NewReader(respBody))
	rs.Request = req
	var problems []*verrors.ValidationError
	if resp.StatusCode < 300 {
		if ok, errs := c.v.ValidateHttpRequestSync(req); !ok {
			problems = append(problems, errs...)
		}
	}
	if ok, errs := c.v.ValidateHttpResponse(req, &rs); !ok {
		if unknownPath(errs) {
			// A path the API does not have: the answer must be the
			// documented error, not_found.
			return notFoundError(resp, respBody)
		}
		problems = append(problems, errs...)
	}
	if len(problems) == 0 {
		return ""
	}
	return describe(problems) + fmt.Sprintf(" (body: %.300s)", respBody)
}

func unknownPath(errs []*verrors.ValidationError) bool {
	for _, e := range errs {
		if e.ValidationType != helpers.PathValidation {
			return false
		}
	}
	return len(errs) > 0
}

// notFoundError checks an answer to a path the API does not have: 404 with
// the documented error body, code not_found.
func notFoundError(resp *http.Response, body []byte) string {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
		dec.Decode(&e) != nil || e.Error.Code != "not_found" || e.Error.Message == "" {
		return fmt.Sprintf("a path the API does not have answered %d %.200s, not the not_found error", resp.StatusCode, body)
	}
	return ""
}

func describe(errs []*verrors.ValidationError) string {
	var out []string
	for _, e := range errs {
		s := e.Message
		if e.Reason != "" {
			s += ": " + e.Reason
		}
		for _, f := range e.SchemaValidationErrors {
			s += fmt.Sprintf(" [%s: %s]", f.FieldPath, f.Reason)
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

// report says how many exchanges were checked and which did not match.
func (c *contract) report() (checked int, mismatches []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checked, append([]string(nil), c.mismatches...)
}

// A response that leaves the contract fails the check: a status answer
// without a required field, with a field the document does not know, with
// a wrong type, and an error answer without its code.
func TestContractCatchesAMismatch(t *testing.T) {
	c, err := newContract(http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	good := `{"requestId":"r1","status":"PENDING","totalImages":1,"processedImages":0,"failedImages":0,"inputBytes":0,"outputBytes":0,` +
		`"savedBytes":0,"savedPercent":0,"createdAt":"2026-12-01T10:00:00Z","updatedAt":"2026-12-01T10:00:00Z","products":[],"page":{"offset":0,"limit":1000,"totalProducts":1}}`
	cases := []struct {
		name, path string
		code       int
		body       string
		wantOK     bool
	}{
		{"status as documented", "/api/status/r1", 200, good, true},
		{"status without totalImages", "/api/status/r1", 200, strings.Replace(good, `"totalImages":1,`, "", 1), false},
		{"status with an undocumented field", "/api/status/r1", 200, strings.Replace(good, `"status"`, `"colour":"red","status"`, 1), false},
		{"status with a string count", "/api/status/r1", 200, strings.Replace(good, `"failedImages":0`, `"failedImages":"0"`, 1), false},
		{"an unknown status", "/api/status/r1", 200, strings.Replace(good, `PENDING`, `DONE`, 1), false},
		{"an error as documented", "/api/status/r1", 404, `{"error":{"code":"not_found","message":"no such request"}}`, true},
		{"an error without its code", "/api/status/r1", 404, `{"error":{"message":"no such request"}}`, false},
		{"an undocumented status code", "/api/status/r1", 418, `{"error":{"code":"internal","message":"teapot"}}`, false},
		{"an unknown path answered not_found", "/api/nothing", 404, `{"error":{"code":"not_found","message":"no such endpoint"}}`, true},
		{"an unknown path answered otherwise", "/api/nothing", 200, `{"ok":true}`, false},
	}
	hook := `{"event":"request.completed","requestId":"r1","status":"COMPLETED","totalImages":1,"processedImages":1,"failedImages":0,` +
		`"completedAt":"2026-12-01T10:00:00Z","statusUrl":"https://x/api/status/r1","reportUrl":"https://x/api/report/r1","products":[]}`
	if p := c.checkWebhook([]byte(hook)); p != "" {
		t.Errorf("a documented webhook payload: %s", p)
	}
	if p := c.checkWebhook([]byte(strings.Replace(hook, `"status":"COMPLETED"`, `"status":"DONE"`, 1))); p == "" {
		t.Error("a webhook payload with an undocumented status passed")
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:8080"+tc.path, nil)
		req.Header.Set("X-API-Key", "k")
		resp := &http.Response{StatusCode: tc.code, Header: http.Header{"Content-Type": {"application/json"}}}
		problems := c.check(req, nil, resp, []byte(tc.body))
		if (problems == "") != tc.wantOK {
			t.Errorf("%s: problems %q, want ok=%v", tc.name, problems, tc.wantOK)
		}
	}
}
