package taskstest

import (
	"testing"
	"time"
)

func TestBackoffFormula(t *testing.T) {
	s := time.Second
	tests := []struct {
		name string
		p    retryPolicy
		want []time.Duration
	}{
		{"documented example 10s/300s/3", retryPolicy{minBackoff: 10 * s, maxBackoff: 300 * s, maxDoublings: 3},
			[]time.Duration{10 * s, 20 * s, 40 * s, 80 * s, 160 * s, 240 * s, 300 * s, 300 * s}},
		{"1s/8s/3", retryPolicy{minBackoff: s, maxBackoff: 8 * s, maxDoublings: 3},
			[]time.Duration{s, 2 * s, 4 * s, 8 * s, 8 * s}},
		{"no doublings is linear", retryPolicy{minBackoff: s, maxBackoff: time.Hour, maxDoublings: 0},
			[]time.Duration{s, 2 * s, 3 * s, 4 * s}},
		{"huge k stays at max", retryPolicy{minBackoff: s, maxBackoff: time.Hour, maxDoublings: 16},
			[]time.Duration{s, 2 * s, 4 * s}},
	}
	for _, tt := range tests {
		for i, want := range tt.want {
			if got := tt.p.backoff(int32(i + 1)); got != want {
				t.Errorf("%s: backoff(%d) = %v, want %v", tt.name, i+1, got, want)
			}
		}
	}
	if got := (retryPolicy{minBackoff: s, maxBackoff: time.Hour, maxDoublings: 16}).backoff(1000); got != time.Hour {
		t.Errorf("backoff(1000) = %v, want max_backoff", got)
	}
}

func TestExhausted(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name     string
		p        retryPolicy
		attempts int32
		elapsed  time.Duration
		want     bool
	}{
		{"attempts only, below", retryPolicy{maxAttempts: 5}, 4, time.Hour, false},
		{"attempts only, reached", retryPolicy{maxAttempts: 5}, 5, 0, true},
		{"both, attempts reached, duration not", retryPolicy{maxAttempts: 5, maxRetryDuration: time.Minute}, 5, time.Second, false},
		{"both, duration reached, attempts not", retryPolicy{maxAttempts: 5, maxRetryDuration: time.Minute}, 2, time.Hour, false},
		{"both reached", retryPolicy{maxAttempts: 5, maxRetryDuration: time.Minute}, 5, time.Hour, true},
		{"unlimited attempts, duration reached", retryPolicy{maxAttempts: -1, maxRetryDuration: time.Minute}, 99, time.Minute, true},
		{"unlimited everything", retryPolicy{maxAttempts: -1}, 1 << 30, 1000 * time.Hour, false},
	}
	for _, tt := range tests {
		if got := tt.p.exhausted(tt.attempts, t0, t0.Add(tt.elapsed)); got != tt.want {
			t.Errorf("%s: exhausted = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"3", 3 * time.Second, true},
		{"Sun, 22 Nov 2026 12:00:10 GMT", 10 * time.Second, true},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		got, ok := retryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
