// Package fault is imgpipe's one error type. An Error carries a Kind that the
// edge maps, in one place each, to an HTTP status (HTTPStatus) and to
// ack-or-retry for Pub/Sub (Retryable), and a Reason code that users see per
// image (too_large, http_404, …).
package fault

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Kind classifies an error by what the caller should do about it.
type Kind string

const (
	Invalid         Kind = "invalid"         // the caller's input is wrong: 400, never retried
	Unauthenticated Kind = "unauthenticated" // no or unknown API key: 401
	NotFound        Kind = "not_found"       // 404
	TooLarge        Kind = "too_large"       // the input exceeds a limit: 413
	Unsupported     Kind = "unsupported"     // 415
	RateLimited     Kind = "rate_limited"    // 429
	Permanent       Kind = "permanent"       // will fail again the same way: record it and move on
	Transient       Kind = "transient"       // may succeed later: retry (Pub/Sub redelivery, 503)
	Internal        Kind = "internal"        // a bug: 500, retried
)

// Error is an error with a kind, a reason code and a message for people.
type Error struct {
	Kind    Kind
	Reason  string // machine-readable, e.g. "http_404"; empty for request-level errors
	Message string
	Details []string // e.g. every validation problem, by line and column
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter time.Duration
	Err        error // the cause, if any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an Error of kind k.
func New(k Kind, reason, format string, args ...any) *Error {
	return &Error{Kind: k, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an Error of kind k whose cause is err.
func Wrap(k Kind, reason string, err error, format string, args ...any) *Error {
	return &Error{Kind: k, Reason: reason, Message: fmt.Sprintf(format, args...), Err: err}
}

// KindOf returns the kind of the first Error in err's chain; Internal for
// other non-nil errors; "" for nil.
func KindOf(err error) Kind {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// ReasonOf returns the reason code of err, or "internal".
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Reason != "" {
		return e.Reason
	}
	return "internal"
}

// HTTPStatus maps err's kind to an HTTP status.
func HTTPStatus(err error) int {
	switch KindOf(err) {
	case "":
		return http.StatusOK
	case Invalid, Permanent:
		return http.StatusBadRequest
	case Unauthenticated:
		return http.StatusUnauthorized
	case NotFound:
		return http.StatusNotFound
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case Unsupported:
		return http.StatusUnsupportedMediaType
	case RateLimited:
		return http.StatusTooManyRequests
	case Transient:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// Retryable reports whether a message whose handling failed with err should
// be redelivered (true) or recorded as failed and acknowledged (false).
func Retryable(err error) bool {
	switch KindOf(err) {
	case Transient, Internal:
		return true
	default:
		return false
	}
}
