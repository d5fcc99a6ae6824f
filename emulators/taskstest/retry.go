package taskstest

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Defaults Cloud Tasks gives a queue whose fields are left unset.
const (
	defaultMaxAttempts             = 100
	defaultMinBackoff              = 100 * time.Millisecond
	defaultMaxBackoff              = time.Hour
	defaultMaxDoublings            = 16
	defaultMaxDispatchesPerSecond  = 500
	maxMaxDispatchesPerSecond      = 500
	defaultMaxConcurrentDispatches = 1000
	maxMaxConcurrentDispatches     = 5000
	defaultDispatchDeadline        = 10 * time.Minute
)

// retryPolicy is a queue's (or task's) RetryConfig with the defaults applied.
type retryPolicy struct {
	maxAttempts      int32 // counts the first attempt; -1 is unlimited
	maxRetryDuration time.Duration
	minBackoff       time.Duration
	maxBackoff       time.Duration
	maxDoublings     int32
}

// normalizeRetryConfig fills unset fields with the service defaults and
// validates the rest, as CreateQueue does.
func normalizeRetryConfig(rc *cloudtaskspb.RetryConfig) (*cloudtaskspb.RetryConfig, error) {
	out := &cloudtaskspb.RetryConfig{
		MaxAttempts:      defaultMaxAttempts,
		MaxRetryDuration: durationpb.New(0),
		MinBackoff:       durationpb.New(defaultMinBackoff),
		MaxBackoff:       durationpb.New(defaultMaxBackoff),
		MaxDoublings:     defaultMaxDoublings,
	}
	if rc == nil {
		return out, nil
	}
	if rc.MaxAttempts < -1 {
		return nil, status.Errorf(codes.InvalidArgument, "retry_config.max_attempts must be -1 (unlimited) or positive, got %d", rc.MaxAttempts)
	}
	if rc.MaxAttempts != 0 {
		out.MaxAttempts = rc.MaxAttempts
	}
	for _, d := range []struct {
		name string
		in   *durationpb.Duration
		out  **durationpb.Duration
	}{
		{"max_retry_duration", rc.MaxRetryDuration, &out.MaxRetryDuration},
		{"min_backoff", rc.MinBackoff, &out.MinBackoff},
		{"max_backoff", rc.MaxBackoff, &out.MaxBackoff},
	} {
		if d.in == nil {
			continue
		}
		if err := d.in.CheckValid(); err != nil || d.in.AsDuration() < 0 {
			return nil, status.Errorf(codes.InvalidArgument, "retry_config.%s must be a non-negative duration", d.name)
		}
		if d.name == "max_retry_duration" || d.in.AsDuration() > 0 {
			*d.out = durationpb.New(d.in.AsDuration())
		}
	}
	if out.MinBackoff.AsDuration() > out.MaxBackoff.AsDuration() {
		return nil, status.Errorf(codes.InvalidArgument, "retry_config.min_backoff (%v) must not exceed max_backoff (%v)", out.MinBackoff.AsDuration(), out.MaxBackoff.AsDuration())
	}
	if rc.MaxDoublings < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "retry_config.max_doublings must not be negative")
	}
	if rc.MaxDoublings != 0 {
		out.MaxDoublings = rc.MaxDoublings
	}
	return out, nil
}

func policyOf(rc *cloudtaskspb.RetryConfig) retryPolicy {
	return retryPolicy{
		maxAttempts:      rc.GetMaxAttempts(),
		maxRetryDuration: rc.GetMaxRetryDuration().AsDuration(),
		minBackoff:       rc.GetMinBackoff().AsDuration(),
		maxBackoff:       rc.GetMaxBackoff().AsDuration(),
		maxDoublings:     rc.GetMaxDoublings(),
	}
}

// backoff is the delay before retry k (k ≥ 1, the k-th retry, i.e. after k
// failed attempts): the interval doubles max_doublings times, then grows
// linearly by the last doubled step, never beyond max_backoff.
//
//	min(max_backoff, k ≤ D+1 ? min_backoff·2^(k−1) : min_backoff·2^D·(k−D))
func (p retryPolicy) backoff(k int32) time.Duration {
	if k < 1 {
		k = 1
	}
	d := p.maxDoublings
	var f float64
	if k <= d+1 {
		f = math.Ldexp(1, int(k-1))
	} else {
		f = math.Ldexp(1, int(d)) * float64(k-d)
	}
	delay := float64(p.minBackoff) * f
	if delay >= float64(p.maxBackoff) || math.IsInf(delay, 0) {
		return p.maxBackoff
	}
	return time.Duration(delay)
}

// exhausted reports whether a task that has been attempted `attempts` times,
// the first at `first`, may not be retried at `now`. When both limits are set
// the task is retried until both are reached; a zero max_retry_duration means
// only max_attempts counts, max_attempts -1 means only the duration counts.
func (p retryPolicy) exhausted(attempts int32, first, now time.Time) bool {
	attemptsSet := p.maxAttempts > 0
	durationSet := p.maxRetryDuration > 0
	attemptsReached := attemptsSet && attempts >= p.maxAttempts
	durationReached := durationSet && now.Sub(first) >= p.maxRetryDuration
	switch {
	case attemptsSet && durationSet:
		return attemptsReached && durationReached
	case attemptsSet:
		return attemptsReached
	case durationSet:
		return durationReached
	default:
		return false
	}
}

// retryAfter parses a Retry-After header (seconds or HTTP date).
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	if h == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(h); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := t.Sub(now); d > 0 {
			return d, true
		}
		return 0, true
	}
	return 0, false
}

// httpToCode maps a handler's HTTP status to the google.rpc code Cloud Tasks
// records in Attempt.response_status.
func httpToCode(sc int) codes.Code {
	switch {
	case sc >= 200 && sc < 300:
		return codes.OK
	case sc == http.StatusBadRequest:
		return codes.InvalidArgument
	case sc == http.StatusUnauthorized:
		return codes.Unauthenticated
	case sc == http.StatusForbidden:
		return codes.PermissionDenied
	case sc == http.StatusNotFound:
		return codes.NotFound
	case sc == http.StatusConflict:
		return codes.Aborted
	case sc == http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case sc == 499:
		return codes.Canceled
	case sc == http.StatusNotImplemented:
		return codes.Unimplemented
	case sc == http.StatusServiceUnavailable:
		return codes.Unavailable
	case sc == http.StatusGatewayTimeout:
		return codes.DeadlineExceeded
	case sc >= 300 && sc < 500:
		return codes.FailedPrecondition
	default:
		return codes.Internal
	}
}
