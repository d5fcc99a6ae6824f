package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/imgpipe/imgpipe/shared/fault"
)

// An output whose link cannot be made (a signing failure) makes the
// status and the report fail with a transient error that the caller
// retries: never an output shown with an empty link.
func TestSigningFailureIsAnError(t *testing.T) {
	h := newHarness(t)
	r := h.submit(2, 1)
	h.deliverAllAtOnce(1)
	ctx := context.Background()
	if _, err := h.svc.Status(ctx, r.ID, "owner", 0, 10); err != nil {
		t.Fatalf("status with working links: %v", err)
	}
	h.svc.Bucket.(*bucket).URLFn = func(string) (string, error) { return "", errors.New("signBlob: permission denied") }
	v, err := h.svc.Status(ctx, r.ID, "owner", 0, 10)
	if err == nil || fault.KindOf(err) != fault.Transient {
		t.Errorf("status: %v (%+v), want a transient error", err, v.Products)
	}
	var out bytes.Buffer
	if err := h.svc.Report(ctx, r.ID, "owner", &out); err == nil || fault.KindOf(err) != fault.Transient {
		t.Errorf("report: %v, want a transient error", err)
	}
	if _, err := h.svc.PageProducts(ctx, r, 0, 2); err == nil {
		t.Error("the page's products came without their links")
	}
}
