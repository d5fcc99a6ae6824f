package fault

import (
	"errors"
	"fmt"
	"testing"
)

func TestMapping(t *testing.T) {
	tests := []struct {
		err       error
		status    int
		retryable bool
		reason    string
	}{
		{nil, 200, false, "internal"},
		{New(Invalid, "", "bad csv"), 400, false, "internal"},
		{fmt.Errorf("wrapped: %w", New(NotFound, "http_404", "gone")), 404, false, "http_404"},
		{New(TooLarge, "too_large", "big"), 413, false, "too_large"},
		{New(Transient, "timeout", "slow"), 503, true, "timeout"},
		{New(Permanent, "not_an_image", "text"), 400, false, "not_an_image"},
		{errors.New("plain"), 500, true, "internal"},
	}
	for _, tt := range tests {
		if got := HTTPStatus(tt.err); got != tt.status {
			t.Errorf("HTTPStatus(%v) = %d, want %d", tt.err, got, tt.status)
		}
		if got := Retryable(tt.err); got != tt.retryable {
			t.Errorf("Retryable(%v) = %v, want %v", tt.err, got, tt.retryable)
		}
		if got := ReasonOf(tt.err); got != tt.reason {
			t.Errorf("ReasonOf(%v) = %q, want %q", tt.err, got, tt.reason)
		}
	}
	if e := Wrap(Transient, "x", errors.New("cause"), "storage %s", "write"); e.Error() != "storage write: cause" || !errors.Is(e, e.Err) {
		t.Errorf("Wrap: %v", e)
	}
}
